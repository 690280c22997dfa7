//! The QEMU Guest Agent front end.
//!
//! Bytes go through the QGA decoder; each frame is answered in order, one at a time, as
//! qemu-ga does: a decode error becomes a `GenericError` reply without `id`; a value is
//! checked as a request envelope, then run through the core. Unknown and disabled
//! commands are `CommandNotFound`, everything else `GenericError`. The reply to
//! `guest-sync-delimited` is preceded by 0xFF. Commands declared without a success
//! response (shutdown, suspend) are silent when they succeed.
//!
//! Replies with bulk data (a 48 MiB `guest-file-read`) are not built in memory: they
//! are encoded on a blocking thread in 256 KiB pieces that are written to the channel
//! as they come, so the only large buffer is the data itself.

use std::io;

use guestlink_core::{Agent, CallContext, DispatchError, Reply};
use guestlink_proto_qga::{
    encode_error, encode_return, write_return, Decoder, ErrorClass, Frame, Request,
};
use guestlink_vocabulary::commands::GuestSyncDelimited;
use guestlink_vocabulary::Command;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Bytes read from the channel at once.
const READ_CHUNK: usize = 64 << 10;
/// Replies whose bulk data is larger than this are streamed.
const STREAM_THRESHOLD: usize = 1 << 20;
/// Size of the pieces a streamed reply is written in.
const STREAM_PIECE: usize = 256 << 10;

/// A reply to be streamed rather than built.
pub struct Streamed {
    reply: Reply,
    id: Option<Value>,
    delimited: bool,
}

/// Serves one connection (or one device, for its whole life) until EOF or an I/O error.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    agent: &Agent,
    call: &CallContext,
    mut io: S,
) -> io::Result<()> {
    let mut decoder = Decoder::default();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut out = Vec::new();
    loop {
        let n = io.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        tracing::trace!(channel = %call.channel.name, bytes = n, "read");
        decoder.feed(&buf[..n]);
        while let Some(frame) = decoder.next_frame() {
            let streamed = answer(agent, call, frame, &mut out).await;
            if !out.is_empty() {
                io.write_all(&out).await?;
                out.clear();
                if out.capacity() > READ_CHUNK {
                    out = Vec::new();
                }
            }
            if let Some(s) = streamed {
                write_streamed(&mut io, s).await?;
            }
        }
    }
}

/// An `io::Write` that hands full pieces to the async writer.
struct PieceSink {
    tx: mpsc::Sender<Vec<u8>>,
    piece: Vec<u8>,
}

impl PieceSink {
    fn send(&mut self) -> io::Result<()> {
        let piece = std::mem::replace(&mut self.piece, Vec::with_capacity(STREAM_PIECE));
        self.tx
            .blocking_send(piece)
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

impl io::Write for PieceSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.piece.extend_from_slice(data);
        if self.piece.len() >= STREAM_PIECE {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.piece.is_empty() {
            Ok(())
        } else {
            self.send()
        }
    }
}

async fn write_streamed<S: AsyncWrite + Unpin>(io: &mut S, s: Streamed) -> io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(2);
    let producer = tokio::task::spawn_blocking(move || {
        let mut sink = PieceSink {
            tx,
            piece: Vec::with_capacity(STREAM_PIECE),
        };
        write_return(&mut sink, s.reply.value(), s.id.as_ref(), s.delimited)?;
        io::Write::flush(&mut sink).map_err(serde_json::Error::io)
    });
    while let Some(piece) = rx.recv().await {
        io.write_all(&piece).await?;
    }
    match producer.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(io::Error::other(format!("cannot encode reply: {e}"))),
        Err(e) => Err(io::Error::other(format!("reply encoder failed: {e}"))),
    }
}

/// Appends the reply to one frame (nothing for a successful no-reply command), or
/// returns it for streaming when it carries bulk data.
pub async fn answer(
    agent: &Agent,
    call: &CallContext,
    frame: Frame,
    out: &mut Vec<u8>,
) -> Option<Streamed> {
    let value = match frame {
        Frame::Error(e) => {
            encode_error(out, ErrorClass::GenericError, &e.to_string(), None);
            return None;
        }
        Frame::Value(v) => v,
    };
    let req = match Request::from_value(value) {
        Ok(req) => req,
        Err((e, id)) => {
            encode_error(out, ErrorClass::GenericError, &e.to_string(), id.as_ref());
            return None;
        }
    };
    let id = req.id.as_ref();
    match agent.execute(call, &req.execute, req.arguments).await {
        Ok(reply) if !reply.has_response() => {}
        Ok(reply) => {
            let delimited = req.execute == GuestSyncDelimited::NAME;
            if reply.size_hint() > STREAM_THRESHOLD {
                return Some(Streamed {
                    reply,
                    id: req.id,
                    delimited,
                });
            }
            if let Err(e) = encode_return(out, reply.value(), id, delimited) {
                tracing::error!(command = %req.execute, "cannot encode reply: {e}");
                encode_error(
                    out,
                    ErrorClass::GenericError,
                    "internal error: cannot encode reply",
                    id,
                );
            }
        }
        Err(e @ (DispatchError::NotFound(_) | DispatchError::Disabled { .. })) => {
            encode_error(out, ErrorClass::CommandNotFound, &e.to_string(), id)
        }
        Err(e) => encode_error(out, ErrorClass::GenericError, &e.to_string(), id),
    }
    None
}
