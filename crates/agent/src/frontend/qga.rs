//! The QEMU Guest Agent front end.
//!
//! Bytes go through the QGA decoder; each frame is answered in order, one at a time, as
//! qemu-ga does: a decode error becomes a `GenericError` reply without `id`; a value is
//! checked as a request envelope, then run through the core. Unknown and disabled
//! commands are `CommandNotFound`, everything else `GenericError`. The reply to
//! `guest-sync-delimited` is preceded by 0xFF. Commands declared without a success
//! response (shutdown, suspend) are silent when they succeed.
//!
//! With bulk transfer turned on (`__org.guestlink_bulk-enable`, per connection, until
//! the next sync), a request with a payload is followed by `arguments.count` raw
//! bytes, read before the command runs (so a refused command still consumes them), and
//! a reply with a payload by `return.count` raw bytes.
//!
//! Events (`__org.guestlink_events-subscribe`, per connection, until the next sync)
//! are written between replies, never inside one; a connection that did not subscribe
//! never sees an event line.
//!
//! Replies with bulk data (a 48 MiB `guest-file-read`) are not built in memory: they
//! are encoded on a blocking thread in 256 KiB pieces that are written to the channel
//! as they come, so the only large buffer is the data itself.

use guestlink_core::Call;
use std::io;

use guestlink_core::limits::payload_max;
use guestlink_core::{Agent, Bulk, CallContext, Connection, DispatchError, EventRecord, Reply};
use guestlink_proto_qga::{
    encode_error, encode_event, encode_return, write_return, Decoder, ErrorClass, Frame, Request,
};
use guestlink_vocabulary::commands::{
    GuestSync, GuestSyncDelimited, GuestlinkBulkEnable, GuestlinkStreamEnable, Payload,
};
use guestlink_vocabulary::Command;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::limits::Charge;

/// Bytes read from the channel at once.
const READ_CHUNK: usize = 64 << 10;
/// Replies whose bulk data is larger than this are streamed.
const STREAM_THRESHOLD: usize = 1 << 20;
/// Size of the pieces a streamed reply is written in.
const STREAM_PIECE: usize = 256 << 10;

/// A reply to be streamed rather than built.
#[derive(Debug)]
pub struct Streamed {
    reply: Reply,
    id: Option<Value>,
    delimited: bool,
}

/// What the front end remembers about one connection.
#[derive(Debug, Default)]
struct Session {
    /// The client turned bulk transfer on (`__org.guestlink_bulk-enable`) and has not
    /// synchronised since.
    bulk: bool,
    /// The client turned live streams on: the conversation goes on in [`super::live`].
    live: bool,
}

/// What goes to the channel after the reply text of one request.
#[derive(Debug)]
pub enum After {
    Nothing,
    /// A reply too large to build, encoded on the way out.
    Streamed(Streamed),
    /// Raw bytes that follow the reply line (bulk transfer).
    Raw(Vec<u8>),
}

/// Serves one connection (or one device, for its whole life) until EOF or an I/O error.
/// A client of a listening socket is charged for what its partial messages hold, and
/// closed with an error naming the limit when the budget runs out.
///
/// On a device (`device`), end-of-file means the host went away (the port reports
/// hang-ups): its partial message, bulk mode, event subscription and live streams
/// end, and the port is read on for the next host.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    agent: &Agent,
    call: &CallContext,
    mut io: S,
    charge: Option<Charge>,
    device: bool,
) -> io::Result<()> {
    let mut charge = charge;
    loop {
        let (conn, mut events) = agent.connect(call.clone());
        let result = converse(agent, &conn, &mut events, &mut io, charge.take()).await;
        agent.disconnect(&conn);
        match result {
            Ok(()) if device => {
                tracing::debug!(channel = %call.channel.name, "the host went away");
                // A port with no host reports its end again and again: wait a little
                // (the device's own poll) rather than spin.
                tokio::time::sleep(super::DETACHED_POLL).await;
            }
            other => return other,
        }
    }
}

async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    agent: &Agent,
    conn: &Connection,
    events: &mut guestlink_core::Subscription,
    io: &mut S,
    mut charge: Option<Charge>,
) -> io::Result<()> {
    let call = &conn.call;
    let mut decoder = Decoder::default();
    let mut session = Session::default();
    let mut buf = super::read_buffer::ReadBuffer::new(READ_CHUNK);
    let mut out = Vec::new();
    loop {
        // Reading is cancel-safe: an event that arrives first is written, and the read
        // starts again. Events waiting are written before the next request is read, so
        // an event raised by a command comes before the reply to any later request.
        let n = tokio::select! {
            biased;
            event = events.next() => {
                encode_event_line(&mut out, &event);
                flush(io, &mut out).await?;
                continue;
            }
            n = buf.read_from(io) => n?,
        };
        if n == 0 {
            return Ok(());
        }
        tracing::trace!(channel = %call.channel.name, bytes = n, "read");
        let mut pos = 0;
        while pos < n {
            // One frame at a time: the bytes after a bulk request are its payload, not
            // JSON.
            pos += decoder.feed_frame(&buf[pos..n]);
            if let Some(Err(why)) = charge.as_mut().map(|c| c.set(decoder.buffered())) {
                return over_budget(io, call, &mut out, why).await;
            }
            let Some(frame) = decoder.next_frame() else {
                continue;
            };
            let Some(req) = request_of(frame, &mut out) else {
                flush(io, &mut out).await?;
                continue;
            };
            let input = match payload_length(agent, session.bulk, &req) {
                Some(len) => {
                    // The payload is held whole before the request runs: charged first.
                    let held = decoder.buffered() + len;
                    if let Some(Err(why)) = charge.as_mut().map(|c| c.set(held)) {
                        return over_budget(io, call, &mut out, why).await;
                    }
                    let (data, used) = read_payload(io, &buf[pos..n], len).await?;
                    pos += used;
                    // Complete now, and the request's: no longer charged (less, so Ok).
                    if let Some(c) = charge.as_mut() {
                        let _ = c.set(decoder.buffered());
                    }
                    Some(data)
                }
                None => None,
            };
            tracing::trace!(channel = %call.channel.name, command = %req.execute, "request");
            let after = answer(agent, conn, &mut session, req, input, &mut out).await;
            flush(io, &mut out).await?;
            write_after(io, after).await?;
            if session.live {
                let leftover = buf[pos..n].to_vec();
                let resume = super::live::Resume {
                    decoder: &mut decoder,
                    leftover,
                    bulk: session.bulk,
                    charge: charge.as_mut(),
                };
                return super::live::converse(agent, conn, events, io, resume).await;
            }
        }
    }
}

/// Tells a client why it is turned away, without holding up the caller.
#[cfg(unix)]
pub fn refuse<S: AsyncWrite + Unpin + Send + 'static>(mut stream: S, why: String) {
    tokio::spawn(async move {
        let mut out = Vec::new();
        encode_error(&mut out, ErrorClass::GenericError, &why, None);
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(1), stream.write_all(&out)).await;
    });
}

/// Appends an event line.
pub fn encode_event_line(out: &mut Vec<u8>, event: &EventRecord) {
    let (seconds, micros) = event.seconds_micros();
    // Event data is a JSON value already; encoding it cannot fail.
    let _ = encode_event(out, event.name, &event.data, seconds, micros);
}

/// Writes what follows a reply.
pub async fn write_after<S: AsyncWrite + Unpin>(io: &mut S, after: After) -> io::Result<()> {
    match after {
        After::Nothing => Ok(()),
        After::Streamed(s) => write_streamed(io, s).await,
        After::Raw(data) => io.write_all(&data).await,
    }
}

/// Tells a client of a listening socket which limit its partial messages passed, and
/// ends the conversation.
async fn over_budget<S: AsyncWrite + Unpin>(
    io: &mut S,
    call: &CallContext,
    out: &mut Vec<u8>,
    why: String,
) -> io::Result<()> {
    tracing::warn!(channel = %call.channel.name, "client closed: {why}");
    encode_error(out, ErrorClass::GenericError, &why, None);
    flush(io, out).await?;
    Err(io::Error::other(why))
}

async fn flush<S: AsyncWrite + Unpin>(io: &mut S, out: &mut Vec<u8>) -> io::Result<()> {
    if !out.is_empty() {
        io.write_all(out).await?;
        out.clear();
        if out.capacity() > READ_CHUNK {
            *out = Vec::new();
        }
    }
    Ok(())
}

/// How many raw bytes follow this request: `arguments.count` of a command with a
/// request payload, on a connection in bulk mode, when it is an integer in range.
/// Anything else has no payload (and fails in the handler with an argument error).
pub(super) fn payload_length(agent: &Agent, bulk: bool, req: &Request) -> Option<usize> {
    if !bulk {
        return None;
    }
    let info = agent.command_info(&req.execute)?;
    if info.payload != Payload::Request {
        return None;
    }
    let count = req.arguments.get("count")?.as_i64()?;
    (0..=payload_max(&req.execute))
        .contains(&count)
        .then_some(count as usize)
}

/// Collects `len` payload bytes: first from what was already read (`have`), then from
/// the channel. Returns the payload and how much of `have` it used. EOF before the end
/// is an error: the host went away in the middle of a transfer.
pub(super) async fn read_payload<S: AsyncRead + Unpin>(
    io: &mut S,
    have: &[u8],
    len: usize,
) -> io::Result<(Vec<u8>, usize)> {
    let used = have.len().min(len);
    let mut data = Vec::new();
    data.try_reserve_exact(len)
        .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    data.extend_from_slice(&have[..used]);
    data.resize(len, 0);
    io.read_exact(&mut data[used..]).await?;
    Ok((data, used))
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
    let write = async {
        while let Some(piece) = rx.recv().await {
            io.write_all(&piece).await?;
        }
        Ok::<(), io::Error>(())
    };
    let (written, produced) = tokio::join!(write, produce_streamed(s, tx));
    written?;
    produced
}

/// Encodes a streamed reply on a blocking thread, handing its pieces to `tx` as they
/// fill.
pub(super) async fn produce_streamed(s: Streamed, tx: mpsc::Sender<Vec<u8>>) -> io::Result<()> {
    let producer = tokio::task::spawn_blocking(move || {
        let mut sink = PieceSink {
            tx,
            piece: Vec::with_capacity(STREAM_PIECE),
        };
        write_return(&mut sink, s.reply.value(), s.id.as_ref(), s.delimited)?;
        io::Write::flush(&mut sink).map_err(serde_json::Error::io)
    });
    match producer.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(io::Error::other(format!("cannot encode reply: {e}"))),
        Err(e) => Err(io::Error::other(format!("reply encoder failed: {e}"))),
    }
}

/// A request envelope from a frame, or the error reply to it appended to `out`.
pub fn request_of(frame: Frame, out: &mut Vec<u8>) -> Option<Request> {
    let value = match frame {
        Frame::Error(e) => {
            encode_error(out, ErrorClass::GenericError, &e.to_string(), None);
            return None;
        }
        Frame::Value(v) => v,
    };
    match Request::from_value(value) {
        Ok(req) => Some(req),
        Err((e, id)) => {
            encode_error(out, ErrorClass::GenericError, &e.to_string(), id.as_ref());
            None
        }
    }
}

/// Runs one request and appends its reply (nothing for a successful no-reply command)
/// to `out`; returns what must follow it.
async fn answer(
    agent: &Agent,
    conn: &Connection,
    session: &mut Session,
    req: Request,
    input: Option<Vec<u8>>,
    out: &mut Vec<u8>,
) -> After {
    let name = req.execute.as_str();
    if name == GuestSyncDelimited::NAME || name == GuestSync::NAME {
        // A new conversation: whoever synchronises has not asked for bulk transfer or
        // events.
        session.bulk = false;
        conn.events.clear();
    }
    let bulk = session.bulk.then(|| Bulk::new(input));
    let result = agent
        .execute(Call::on(conn, name, req.arguments).with_bulk(bulk.as_ref()))
        .await;
    if result.is_ok() && name == GuestlinkBulkEnable::NAME {
        session.bulk = true;
    }
    if result.is_ok() && name == GuestlinkStreamEnable::NAME {
        session.live = true;
    }
    encode_outcome(name, req.id, result, out)
}

/// Appends the reply to a call's result (nothing for a successful no-reply command) to
/// `out`; returns what must follow it.
pub fn encode_outcome(
    name: &str,
    req_id: Option<Value>,
    result: Result<Reply, DispatchError>,
    out: &mut Vec<u8>,
) -> After {
    let id = req_id.as_ref();
    match result {
        Ok(reply) if !reply.has_response() => {}
        Ok(mut reply) => {
            let delimited = name == GuestSyncDelimited::NAME;
            let payload = reply.take_payload();
            if payload.is_none() && reply.size_hint() > STREAM_THRESHOLD {
                return After::Streamed(Streamed {
                    reply,
                    id: req_id,
                    delimited,
                });
            }
            if let Err(e) = encode_return(out, reply.value(), id, delimited) {
                tracing::error!(command = %name, "cannot encode reply: {e}");
                encode_error(
                    out,
                    ErrorClass::GenericError,
                    "internal error: cannot encode reply",
                    id,
                );
            } else if let Some(data) = payload {
                return After::Raw(data);
            }
        }
        Err(e @ (DispatchError::NotFound(_) | DispatchError::Disabled { .. })) => {
            encode_error(out, ErrorClass::CommandNotFound, &e.to_string(), id)
        }
        Err(e) => encode_error(out, ErrorClass::GenericError, &e.to_string(), id),
    }
    After::Nothing
}
