//! The host side of live streams: a connection on which the agent turned streams on
//! (`__org.guestlink_stream-enable`), where calls and many streams run at once.
//!
//! [`Client::into_live`] turns a client into a [`Live`]: a task reads the channel,
//! taking each reply to the call waiting for it (replies come in order) and each frame
//! to its stream. A [`LiveStream`] gives what its guest side sends ([`StreamEvent`])
//! and grants the agent credit for more as the caller comes back for the next event,
//! so a caller that stops reading stops the guest side, not the others. Its
//! [`StreamWriter`] sends within the agent's credit.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guestlink_fdio::Credit;
use guestlink_proto_stream::{
    self as stream, encode, encode_data, ExitStatus, Frame, Kind, StreamId, MAGIC, MAX_PAYLOAD,
};
use guestlink_vocabulary::commands::GuestlinkStreamEnable;
use guestlink_vocabulary::types::{Empty, StreamInfo};
use guestlink_vocabulary::Command;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::client::{reply_of, request_text, Client};
use crate::error::ClientError;

/// What a stream's guest side sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// Bytes (a program's standard output, a connection's data).
    Data(Vec<u8>),
    /// Bytes a program wrote to its standard error.
    Stderr(Vec<u8>),
    /// The guest side sends no more data.
    Eof,
    /// The program ended; nothing follows.
    Exit(ExitStatus),
    /// The stream is gone, with the agent's reason; nothing follows.
    Reset(String),
}

/// A reply line, and the stream it opened.
type Reply = (Vec<u8>, Option<LiveStream>);

struct StreamState {
    /// Bounded by the credit for data; the end frames come once (a repeated one is
    /// dropped).
    events: mpsc::UnboundedSender<StreamEvent>,
    credit: Arc<Credit>,
    /// The agent sent its EOF.
    eof: bool,
}

/// Streams one connection may have registered at once: the agent's own limit is far
/// below it, so only an agent that announces connections without end reaches it.
const MAX_STREAMS: usize = 1024;

#[derive(Default)]
struct Routes {
    streams: HashMap<StreamId, StreamState>,
    listeners: HashMap<StreamId, mpsc::UnboundedSender<(LiveStream, String)>>,
    /// Calls waiting for their reply, in order; `true` for a call that opens a stream,
    /// whose stream the reader registers before it reads on.
    replies: VecDeque<(oneshot::Sender<Result<Reply, ClientError>>, bool)>,
    closed: bool,
}

/// How much of a stream's data this side lets the agent have in flight. The agent's
/// own window (what it announces) is where each stream starts; a deeper one keeps a
/// slow channel busy while credit travels back (over virtio-serial under emulation, a
/// 256 KiB window leaves the port idle part of the time).
const RECEIVE_WINDOW: u32 = 1 << 20;

struct Shared {
    routes: Mutex<Routes>,
    out: mpsc::Sender<Vec<u8>>,
    /// The agent's window: what either side may send before it has credit.
    window: u32,
}

impl Shared {
    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stream(self: &Arc<Self>, id: StreamId) -> LiveStream {
        let (tx, rx) = mpsc::unbounded_channel();
        let credit = Arc::new(Credit::new(self.window, stream::MAX_WINDOW));
        self.routes().streams.insert(
            id,
            StreamState {
                events: tx,
                credit: credit.clone(),
                eof: false,
            },
        );
        // The credit beyond the agent's window, granted at once. Were the queue full,
        // the stream would simply start with the agent's window.
        if let Some(extra) = RECEIVE_WINDOW.checked_sub(self.window).filter(|&b| b > 0) {
            let mut b = Vec::new();
            encode(
                &mut b,
                &Frame::Credit {
                    stream: id,
                    bytes: extra,
                },
            );
            let _ = self.out.try_send(b);
        }
        LiveStream {
            id,
            events: rx,
            unacked: 0,
            writer: StreamWriter {
                id,
                shared: self.clone(),
                credit,
            },
        }
    }
}

/// A connection with live streams on.
pub struct Live {
    shared: Arc<Shared>,
    calls: tokio::sync::Mutex<()>,
    timeout: Duration,
    info: StreamInfo,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Client {
    /// Whether the agent offers live streams (a stock qemu-ga does not).
    pub async fn offers_streams(&mut self) -> Result<bool, ClientError> {
        self.offers(GuestlinkStreamEnable::NAME).await
    }

    /// Turns live streams on and hands the connection to a [`Live`].
    pub async fn into_live(mut self) -> Result<Live, ClientError> {
        let info = self.call::<GuestlinkStreamEnable>(&Empty {}).await?;
        let timeout = self.timeout();
        let (buffered, stream) = self.into_parts();
        let (rd, mut wr) = tokio::io::split(stream);
        let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(256);
        let window = u32::try_from(info.window).unwrap_or(stream::INITIAL_WINDOW);
        let shared = Arc::new(Shared {
            routes: Mutex::default(),
            out: out_tx,
            window,
        });
        let writer = tokio::spawn(async move {
            let mut batch = Vec::new();
            while let Some(b) = out_rx.recv().await {
                batch.extend_from_slice(&b);
                while batch.len() < (256 << 10) {
                    match out_rx.try_recv() {
                        Ok(b) => batch.extend_from_slice(&b),
                        Err(_) => break,
                    }
                }
                if wr.write_all(&batch).await.is_err() {
                    return;
                }
                batch.clear();
            }
        });
        let reader = tokio::spawn(read_loop(shared.clone(), rd, buffered));
        Ok(Live {
            shared,
            calls: tokio::sync::Mutex::new(()),
            timeout,
            info,
            tasks: vec![writer, reader],
        })
    }
}

fn closed_all(shared: &Shared, why: &str) {
    let mut routes = shared.routes();
    routes.closed = true;
    for (_, s) in routes.streams.drain() {
        let _ = s.events.send(StreamEvent::Reset(why.to_string()));
    }
    routes.listeners.clear();
    for (r, _) in routes.replies.drain(..) {
        let _ = r.send(Err(ClientError::Closed));
    }
}

async fn read_loop(
    shared: Arc<Shared>,
    mut rd: tokio::io::ReadHalf<crate::endpoint::BoxStream>,
    buffered: Vec<u8>,
) {
    let mut frames = stream::Decoder::new();
    let mut line = Vec::new();
    let mut buf = buffered;
    let mut n = buf.len();
    let mut first = true;
    loop {
        if !first || n == 0 {
            buf.resize(256 << 10, 0);
            n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    closed_all(&shared, "the connection to the agent ended");
                    return;
                }
                Ok(n) => n,
            };
        }
        first = false;
        let mut pos = 0;
        while pos < n {
            if frames.in_frame() || (line.is_empty() && buf[pos] == MAGIC) {
                let (used, f) = frames.feed(&buf[pos..n]);
                pos += used;
                match f {
                    Some(Ok(f)) => route(&shared, f),
                    Some(Err(e)) => tracing::warn!("bad stream frame from the agent: {e}"),
                    None => {}
                }
                continue;
            }
            let end = memchr::memchr(b'\n', &buf[pos..n]).map(|i| pos + i + 1);
            let stop = end.unwrap_or(n);
            line.extend_from_slice(&buf[pos..stop]);
            pos = stop;
            if end.is_none() {
                if line.len() > crate::client::MAX_REPLY {
                    closed_all(&shared, "a reply was too long");
                    return;
                }
                continue;
            }
            let text = std::mem::take(&mut line);
            let body = text.strip_prefix(&[0xFF][..]).unwrap_or(&text);
            if body.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if is_reply(body) {
                let waiting = shared.routes().replies.pop_front();
                if let Some((tx, opens)) = waiting {
                    // The stream exists before the next frame is read: none of its
                    // bytes can arrive unclaimed.
                    let stream = opens
                        .then(|| stream_of(body))
                        .flatten()
                        .map(|id| shared.stream(id));
                    let _ = tx.send(Ok((body.to_vec(), stream)));
                }
            }
            // Events are not taken on a live connection: subscribe on another.
        }
    }
}

/// The `return.stream` of a reply.
fn stream_of(line: &[u8]) -> Option<StreamId> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    StreamId::try_from(v.get("return")?.get("stream")?.as_u64()?).ok()
}

fn is_reply(line: &[u8]) -> bool {
    let head = &line[..line.len().min(16)];
    if [&b"{\"return\""[..], b"{\"error\"", b"{\"id\""]
        .iter()
        .any(|p| head.starts_with(p))
    {
        return true;
    }
    serde_json::from_slice::<serde_json::Value>(line)
        .map(|v| v.get("return").is_some() || v.get("error").is_some())
        .unwrap_or(false)
}

fn route(shared: &Arc<Shared>, f: Frame) {
    let id = f.stream();
    match f {
        Frame::Accept { listener, peer, .. } => {
            if shared.routes().streams.len() >= MAX_STREAMS {
                tracing::warn!(
                    stream = id,
                    "the agent announced more connections than {MAX_STREAMS}"
                );
                let mut b = Vec::new();
                encode(
                    &mut b,
                    &Frame::Reset {
                        stream: id,
                        reason: "too many streams".into(),
                    },
                );
                let _ = shared.out.try_send(b);
                return;
            }
            let s = shared.stream(id);
            let tx = shared.routes().listeners.get(&listener).cloned();
            match tx {
                Some(tx) => {
                    let _ = tx.send((s, peer));
                }
                None => s.writer.reset_now("nobody accepts on this listener"),
            }
        }
        Frame::Credit { bytes, .. } => {
            if let Some(s) = shared.routes().streams.get(&id) {
                s.credit.grant(bytes);
            }
        }
        Frame::Data { data, .. } => send(shared, id, StreamEvent::Data(data), false),
        Frame::Stderr { data, .. } => send(shared, id, StreamEvent::Stderr(data), false),
        Frame::Eof { .. } => send(shared, id, StreamEvent::Eof, false),
        Frame::Exit { status, .. } => send(shared, id, StreamEvent::Exit(status), true),
        Frame::Reset { reason, .. } => {
            shared.routes().listeners.remove(&id);
            send(shared, id, StreamEvent::Reset(reason), true)
        }
        Frame::Resize { .. } | Frame::Signal { .. } => {
            tracing::debug!(stream = id, "the agent sent a frame only hosts send");
        }
    }
}

fn send(shared: &Shared, id: StreamId, event: StreamEvent, last: bool) {
    let mut routes = shared.routes();
    if let Some(s) = routes.streams.get_mut(&id) {
        let data = matches!(event, StreamEvent::Data(_) | StreamEvent::Stderr(_));
        if s.eof && (data || event == StreamEvent::Eof) {
            tracing::debug!(stream = id, "the agent sent more after its end of data");
        } else {
            s.eof |= event == StreamEvent::Eof;
            let _ = s.events.send(event);
        }
    }
    if last {
        routes.streams.remove(&id);
    }
}

impl Live {
    /// The agent's stream parameters.
    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    async fn exchange(&self, request: Vec<u8>, opens: bool) -> Result<Reply, ClientError> {
        let rx = {
            let _turn = self.calls.lock().await;
            let (tx, rx) = oneshot::channel();
            {
                let mut routes = self.shared.routes();
                if routes.closed {
                    return Err(ClientError::Closed);
                }
                routes.replies.push_back((tx, opens));
            }
            self.shared
                .out
                .send(request)
                .await
                .map_err(|_| ClientError::Closed)?;
            rx
        };
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout(self.timeout)),
        }
    }

    /// Runs a command of the vocabulary; other calls and streams go on meanwhile.
    pub async fn call<C: Command>(&self, args: &C::Args) -> Result<C::Returns, ClientError>
    where
        C::Args: Serialize,
    {
        let mut text = request_text::<C>(args)?;
        text.push(b'\n');
        let (line, _) = self.exchange(text, false).await?;
        reply_of::<C>(&line)
    }

    /// Runs a command that opens a stream (its result has a `stream` member) and
    /// returns the stream with the result. The stream is registered as its reply is
    /// read, so nothing it carries is lost.
    pub async fn open<C: Command>(
        &self,
        args: &C::Args,
    ) -> Result<(LiveStream, C::Returns), ClientError>
    where
        C::Args: Serialize,
    {
        let mut text = request_text::<C>(args)?;
        text.push(b'\n');
        let (line, stream) = self.exchange(text, true).await?;
        let ret = reply_of::<C>(&line)?;
        let stream = stream
            .ok_or_else(|| ClientError::Protocol(format!("{}: no stream in the reply", C::NAME)))?;
        Ok((stream, ret))
    }

    /// Registers a listening stream: each connection the agent accepts on it arrives
    /// here with the peer's address.
    pub fn accepts(&self, listener: i64) -> mpsc::UnboundedReceiver<(LiveStream, String)> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(id) = StreamId::try_from(listener) {
            self.shared.routes().listeners.insert(id, tx);
        }
        rx
    }
}

/// One stream.
#[derive(Debug)]
pub struct LiveStream {
    id: StreamId,
    events: mpsc::UnboundedReceiver<StreamEvent>,
    unacked: u32,
    writer: StreamWriter,
}

impl LiveStream {
    /// Its number.
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// The next event; `None` after the last. Data returned before is taken as
    /// consumed: the agent gets credit for it before this waits, or once a quarter of
    /// the window has been consumed while events keep coming.
    pub async fn recv(&mut self) -> Option<StreamEvent> {
        use tokio::sync::mpsc::error::TryRecvError;
        let ready = self.events.try_recv();
        let window = RECEIVE_WINDOW.max(self.writer.shared.window);
        let busy = ready.is_ok() && self.unacked < window / 4;
        if !busy && self.unacked > 0 {
            let bytes = std::mem::take(&mut self.unacked);
            self.writer
                .frame(&Frame::Credit {
                    stream: self.id,
                    bytes,
                })
                .await;
        }
        let e = match ready {
            Ok(e) => e,
            Err(TryRecvError::Empty) => self.events.recv().await?,
            Err(TryRecvError::Disconnected) => return None,
        };
        if let StreamEvent::Data(d) | StreamEvent::Stderr(d) = &e {
            self.unacked += d.len() as u32;
        }
        Some(e)
    }

    /// A writer for the stream, usable from another task.
    pub fn writer(&self) -> StreamWriter {
        self.writer.clone()
    }
}

/// Sends to a stream's guest side.
#[derive(Clone)]
pub struct StreamWriter {
    id: StreamId,
    shared: Arc<Shared>,
    credit: Arc<Credit>,
}

impl std::fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriter")
            .field("id", &self.id)
            .finish()
    }
}

impl StreamWriter {
    async fn frame(&self, f: &Frame) -> bool {
        let mut b = Vec::new();
        encode(&mut b, f);
        self.shared.out.send(b).await.is_ok()
    }

    fn reset_now(&self, reason: &str) {
        let mut b = Vec::new();
        encode(
            &mut b,
            &Frame::Reset {
                stream: self.id,
                reason: reason.to_string(),
            },
        );
        let _ = self.shared.out.try_send(b);
        self.shared.routes().streams.remove(&self.id);
    }

    /// Sends `data`, waiting for credit as needed. False when the connection is gone.
    pub async fn write(&self, mut data: &[u8]) -> bool {
        while !data.is_empty() {
            let k = self.credit.take(data.len().min(MAX_PAYLOAD)).await;
            let mut b = Vec::with_capacity(k + stream::HEADER);
            encode_data(&mut b, Kind::Data, self.id, &data[..k]);
            if self.shared.out.send(b).await.is_err() {
                return false;
            }
            data = &data[k..];
        }
        true
    }

    /// No more data (the program's standard input ends; the connection half-closes).
    pub async fn eof(&self) -> bool {
        self.frame(&Frame::Eof { stream: self.id }).await
    }

    /// The terminal's new size.
    pub async fn resize(&self, rows: u16, cols: u16) -> bool {
        self.frame(&Frame::Resize {
            stream: self.id,
            rows,
            cols,
        })
        .await
    }

    /// Sends a signal to the program.
    pub async fn signal(&self, signal: u32) -> bool {
        self.frame(&Frame::Signal {
            stream: self.id,
            signal,
        })
        .await
    }

    /// Ends the stream at once.
    pub fn reset(&self, reason: &str) {
        self.reset_now(reason);
    }
}
