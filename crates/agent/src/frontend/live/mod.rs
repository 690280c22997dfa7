//! The QGA conversation once live streams are on (`__org.guestlink_stream-enable`).
//!
//! Until then the QGA front end answers one request at a time on the channel; from
//! then on three parts share it:
//! - the reader takes bytes apart: a frame starts with 0xFE at a message boundary
//!   ([`guestlink_proto_stream`]) and goes to its stream; everything else is QGA JSON
//!   as before (bulk payloads included) and goes to the executor;
//! - the executor answers requests in order, as the plain front end does, writes
//!   events between replies, and starts the streams handlers open, after the reply that
//!   names them;
//! - the writer writes what both produce, whole: a frame never lands inside a reply.
//!
//! A stream's bytes flow only within the credit the host granted, so a host that
//! stops reading one stream costs at most a window per stream and holds up no other.
//! A sync (`guest-sync`, `guest-sync-delimited`) ends every stream and turns streams,
//! bulk transfer and events off, as it does on a plain connection; the end of the
//! connection ends them too.

mod pump;

use guestlink_core::Call;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use guestlink_core::live::Opened;
use guestlink_core::{Agent, Bulk, Connection, Subscription};
use guestlink_proto_qga::{Decoder, Request};
use guestlink_proto_stream::{self as stream, MAGIC};
use guestlink_vocabulary::commands::{
    GuestSync, GuestSyncDelimited, GuestlinkBulkEnable, GuestlinkStreamEnable,
};
use guestlink_vocabulary::Command;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

pub use pump::{Hub, Out};

use super::limits::Charge;
use super::qga::{self, After};

/// Bytes read from the channel at once.
const READ_CHUNK: usize = 256 << 10;
/// Bytes gathered into one write.
const WRITE_BATCH: usize = 256 << 10;
/// What a virtio-serial port takes in one write.
const PORT_WRITE: usize = 32 << 10;
/// Pieces at least this large are written without copying them into a batch.
const DIRECT_WRITE: usize = 16 << 10;
/// Items queued for the writer.
const OUT_QUEUE: usize = 256;

/// What the reader and the executor share.
#[derive(Debug, Default)]
struct Shared {
    bulk: AtomicBool,
    streams: AtomicBool,
    hub: Mutex<Option<Hub>>,
}

impl Shared {
    fn hub(&self) -> Option<Hub> {
        self.hub.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_hub(&self, hub: Option<Hub>) -> Option<Hub> {
        std::mem::replace(
            &mut *self.hub.lock().unwrap_or_else(|e| e.into_inner()),
            hub,
        )
    }
}

/// A request on its way to the executor, or an error reply to send in its turn.
enum Incoming {
    Request {
        req: Request,
        input: Option<Vec<u8>>,
        /// Told when the request has run: the reader waits for requests that change
        /// how it must read (sync, bulk, streams).
        done: Option<oneshot::Sender<()>>,
    },
    Error(Vec<u8>),
}

/// Whether the reader must wait for this request before reading on.
fn changes_mode(name: &str) -> bool {
    [
        GuestSync::NAME,
        GuestSyncDelimited::NAME,
        GuestlinkBulkEnable::NAME,
        GuestlinkStreamEnable::NAME,
    ]
    .contains(&name)
}

/// Where the plain conversation left off when its client turned streams on.
#[derive(Debug)]
pub struct Resume<'a> {
    /// The JSON decoder, with anything it holds.
    pub decoder: &'a mut Decoder,
    /// Bytes already read after the enabling request.
    pub leftover: Vec<u8>,
    /// Whether bulk transfer was on.
    pub bulk: bool,
    /// What the client is charged for partial messages (a listening channel's).
    pub charge: Option<&'a mut Charge>,
}

/// Serves a connection whose client just turned streams on, until its end.
pub async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    agent: &Agent,
    conn: &Connection,
    events: &mut Subscription,
    io: &mut S,
    resume: Resume<'_>,
) -> io::Result<()> {
    let Resume {
        decoder,
        leftover,
        bulk,
        charge,
    } = resume;
    let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
    let shared = Shared::default();
    shared.bulk.store(bulk, Ordering::Release);
    let mut opened = Some(enable(conn, &shared, &out_tx));
    let (rd, wr) = tokio::io::split(io);
    let (req_tx, req_rx) = mpsc::channel(8);
    let result = tokio::select! {
        r = read_loop(agent, rd, decoder, leftover, req_tx, &shared, charge) => r,
        r = write_loop(wr, out_rx) => r,
        () = exec_loop(agent, conn, events, req_rx, &out_tx, &shared, &mut opened) => Ok(()),
    };
    if let Some(hub) = shared.set_hub(None) {
        hub.teardown();
    }
    conn.streams.detach();
    result
}

/// Turns streams on for the connection.
fn enable(
    conn: &Connection,
    shared: &Shared,
    out: &mpsc::Sender<Out>,
) -> mpsc::UnboundedReceiver<Opened> {
    let (rx, ids) = conn.streams.attach();
    shared.set_hub(Some(Hub::new(out.clone(), ids)));
    shared.streams.store(true, Ordering::Release);
    rx
}

async fn read_loop<R: AsyncRead + Unpin>(
    agent: &Agent,
    mut rd: R,
    decoder: &mut Decoder,
    leftover: Vec<u8>,
    req_tx: mpsc::Sender<Incoming>,
    shared: &Shared,
    mut charge: Option<&mut Charge>,
) -> io::Result<()> {
    let mut frames = stream::Decoder::new();
    let mut buf = leftover;
    let mut n = buf.len();
    let mut first = true;
    loop {
        if !first || n == 0 {
            if buf.len() < READ_CHUNK {
                buf.resize(READ_CHUNK, 0);
            }
            n = rd.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
        }
        first = false;
        let mut pos = 0;
        while pos < n {
            let streams = shared.streams.load(Ordering::Acquire);
            if frames.in_frame() || (streams && decoder.is_idle() && buf[pos] == MAGIC) {
                let (used, f) = frames.feed(&buf[pos..n]);
                pos += used;
                match f {
                    Some(Ok(f)) => match shared.hub() {
                        Some(hub) => hub.deliver(f),
                        None => tracing::debug!("a stream frame with streams off"),
                    },
                    Some(Err(e)) => tracing::warn!("bad stream frame from the host: {e}"),
                    None => {}
                }
                continue;
            }
            // JSON, up to the next frame: 0xFE never occurs in JSON text.
            let end = if streams {
                memchr::memchr(MAGIC, &buf[pos + 1..n]).map_or(n, |i| pos + 1 + i)
            } else {
                n
            };
            pos += decoder.feed_frame(&buf[pos..end]);
            if let Some(Err(why)) = charge.as_mut().map(|c| c.set(decoder.buffered())) {
                tracing::warn!("client closed: {why}");
                let mut out = Vec::new();
                guestlink_proto_qga::encode_error(
                    &mut out,
                    guestlink_proto_qga::ErrorClass::GenericError,
                    &why,
                    None,
                );
                let _ = req_tx.send(Incoming::Error(out)).await;
                return Err(io::Error::other(why));
            }
            let Some(frame) = decoder.next_frame() else {
                continue;
            };
            let mut err = Vec::new();
            let Some(req) = qga::request_of(frame, &mut err) else {
                if req_tx.send(Incoming::Error(err)).await.is_err() {
                    return Ok(());
                }
                continue;
            };
            let input = match qga::payload_length(agent, shared.bulk.load(Ordering::Acquire), &req)
            {
                Some(len) => {
                    let (data, used) = qga::read_payload(&mut rd, &buf[pos..n], len).await?;
                    pos += used;
                    Some(data)
                }
                None => None,
            };
            let (done, wait) = if changes_mode(&req.execute) {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            } else {
                (None, None)
            };
            if req_tx
                .send(Incoming::Request { req, input, done })
                .await
                .is_err()
            {
                return Ok(());
            }
            if let Some(wait) = wait {
                let _ = wait.await;
            }
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<Out>,
) -> io::Result<()> {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while let Some(item) = rx.recv().await {
        let mut next = Some(item);
        // Gather what is queued into one write.
        while let Some(item) = next.take() {
            match item {
                // A large piece is written as it is, not copied into the batch.
                Out::Bytes(b) if b.len() >= DIRECT_WRITE => {
                    if !batch.is_empty() {
                        wr.write_all(&batch).await?;
                        batch.clear();
                    }
                    // Whole port writes go as they are; the tail joins what comes
                    // next, so that a frame's last few bytes are not a write alone.
                    let whole = b.len() - b.len() % PORT_WRITE;
                    wr.write_all(&b[..whole]).await?;
                    batch.extend_from_slice(&b[whole..]);
                    next = rx.try_recv().ok();
                }
                Out::Bytes(b) => {
                    batch.extend_from_slice(&b);
                    if batch.len() < WRITE_BATCH {
                        next = rx.try_recv().ok();
                    }
                }
                Out::Piped(mut pieces) => {
                    wr.write_all(&batch).await?;
                    batch.clear();
                    while let Some(p) = pieces.recv().await {
                        wr.write_all(&p).await?;
                    }
                }
            }
        }
        if !batch.is_empty() {
            wr.write_all(&batch).await?;
            batch.clear();
        }
        if batch.capacity() > 4 * WRITE_BATCH {
            batch = Vec::with_capacity(WRITE_BATCH);
        }
    }
    Ok(())
}

async fn exec_loop(
    agent: &Agent,
    conn: &Connection,
    events: &mut Subscription,
    mut req_rx: mpsc::Receiver<Incoming>,
    out: &mpsc::Sender<Out>,
    shared: &Shared,
    opened: &mut Option<mpsc::UnboundedReceiver<Opened>>,
) {
    loop {
        let incoming = tokio::select! {
            biased;
            event = events.next() => {
                let mut line = Vec::new();
                qga::encode_event_line(&mut line, &event);
                if out.send(Out::Bytes(line)).await.is_err() {
                    return;
                }
                continue;
            }
            i = req_rx.recv() => i,
        };
        let (req, input, done) = match incoming {
            None => return,
            Some(Incoming::Error(bytes)) => {
                if out.send(Out::Bytes(bytes)).await.is_err() {
                    return;
                }
                continue;
            }
            Some(Incoming::Request { req, input, done }) => (req, input, done),
        };
        let name = req.execute.as_str();
        if name == GuestSyncDelimited::NAME || name == GuestSync::NAME {
            // A new conversation: streams, bulk transfer and events end.
            if let Some(hub) = shared.set_hub(None) {
                hub.teardown();
            }
            conn.streams.detach();
            *opened = None;
            shared.streams.store(false, Ordering::Release);
            shared.bulk.store(false, Ordering::Release);
            conn.events.clear();
        }
        let bulk = shared
            .bulk
            .load(Ordering::Acquire)
            .then(|| Bulk::new(input));
        let result = agent
            .execute(Call::on(conn, name, req.arguments).with_bulk(bulk.as_ref()))
            .await;
        if result.is_ok() && name == GuestlinkBulkEnable::NAME {
            shared.bulk.store(true, Ordering::Release);
        }
        if result.is_ok() && name == GuestlinkStreamEnable::NAME && !conn.streams.enabled() {
            *opened = Some(enable(conn, shared, out));
        }
        let mut line = Vec::new();
        let after = qga::encode_outcome(name, req.id, result, &mut line);
        let sent = match after {
            After::Nothing => out.send(Out::Bytes(line)).await,
            After::Raw(data) => {
                line.extend_from_slice(&data);
                out.send(Out::Bytes(line)).await
            }
            After::Streamed(s) => {
                let (tx, rx) = mpsc::channel(2);
                let sent = out.send(Out::Piped(rx)).await;
                if let Err(e) = qga::produce_streamed(s, tx).await {
                    tracing::error!(command = %name, "{e}");
                }
                sent
            }
        };
        if let Some(done) = done {
            let _ = done.send(());
        }
        if sent.is_err() {
            return;
        }
        // Streams the command opened start after its reply, which names them.
        if let (Some(rx), Some(hub)) = (opened.as_mut(), shared.hub()) {
            while let Ok(o) = rx.try_recv() {
                hub.start(o.id, o.endpoint, o.place);
            }
        }
    }
}
