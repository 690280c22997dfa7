//! The QEMU Guest Agent front end.
//!
//! Bytes go through the QGA decoder; each frame is answered in order, one at a time, as
//! qemu-ga does: a decode error becomes a `GenericError` reply without `id`; a value is
//! checked as a request envelope, then run through the core. Unknown and disabled
//! commands are `CommandNotFound`, everything else `GenericError`. The reply to
//! `guest-sync-delimited` is preceded by 0xFF. Commands declared without a success
//! response (shutdown, suspend) are silent when they succeed.

use std::io;

use guestlink_core::{Agent, CallContext, DispatchError};
use guestlink_proto_qga::{encode_error, encode_return, Decoder, ErrorClass, Frame, Request};
use guestlink_vocabulary::commands::GuestSyncDelimited;
use guestlink_vocabulary::Command;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes read from the channel at once.
const READ_CHUNK: usize = 64 << 10;

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
            answer(agent, call, frame, &mut out).await;
            if !out.is_empty() {
                io.write_all(&out).await?;
                out.clear();
                if out.capacity() > READ_CHUNK {
                    out = Vec::new();
                }
            }
        }
    }
}

/// Appends the reply to one frame (nothing for a successful no-reply command).
pub async fn answer(agent: &Agent, call: &CallContext, frame: Frame, out: &mut Vec<u8>) {
    let value = match frame {
        Frame::Error(e) => {
            return encode_error(out, ErrorClass::GenericError, &e.to_string(), None)
        }
        Frame::Value(v) => v,
    };
    let req = match Request::from_value(value) {
        Ok(req) => req,
        Err((e, id)) => {
            return encode_error(out, ErrorClass::GenericError, &e.to_string(), id.as_ref())
        }
    };
    let id = req.id.as_ref();
    match agent.execute(call, &req.execute, req.arguments).await {
        Ok(reply) if !reply.has_response() => {}
        Ok(reply) => {
            let delimited = req.execute == GuestSyncDelimited::NAME;
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
}
