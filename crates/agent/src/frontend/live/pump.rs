//! The streams of one live connection: a table of them, and a task per stream that
//! moves its bytes between the guest side (a program, a socket, a listener) and frames
//! for the host, within the host's credit.
//!
//! A stream's task owns what the stream carries; aborting the task (a reset, the end of
//! the connection) drops it, and with it the process group (hung up), the socket or
//! the listener.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guestlink_core::limits::STREAM_WINDOW;
use guestlink_core::live::{Ended, Endpoint, Ids, LiveListener, Place, Process};
use guestlink_proto_stream::{encode, encode_data, ExitStatus, Frame, Kind, StreamId, MAX_PAYLOAD};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use guestlink_fdio::Credit;

/// How long the output of a program that ended may still flow (a background job
/// holding its pipe open does not keep the stream alive).
const OUTPUT_GRACE: Duration = Duration::from_secs(1);
/// Resizes and signals waiting for one stream.
const CONTROL_QUEUE: usize = 16;
/// Between SIGTERM and SIGKILL when a program's time is up.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// What goes to the channel, in order.
#[derive(Debug)]
pub enum Out {
    /// Bytes: a reply, an event line, frames.
    Bytes(Vec<u8>),
    /// A reply written in pieces as they are encoded; nothing else comes between.
    Piped(mpsc::Receiver<Vec<u8>>),
}

/// Requests from the host about a program, beside its data.
#[derive(Debug)]
enum Control {
    Resize(u16, u16),
    Signal(u32),
}

struct Entry {
    /// Host data for the stream; `None` is its end (EOF). Bounded by the credit: the
    /// host cannot have more than a window unacknowledged.
    data: mpsc::UnboundedSender<Option<Vec<u8>>>,
    /// The host sent its EOF: nothing more may come.
    host_eof: bool,
    /// Resizes and signals; a host that sends them faster than they are acted on
    /// loses the excess.
    control: mpsc::Sender<Control>,
    credit: Arc<Credit>,
    /// Bytes the host sent that the stream has not given credit back for.
    unacked: Arc<AtomicU64>,
    task: AbortHandle,
}

/// The streams of one connection. Cloning shares them.
#[derive(Clone)]
pub struct Hub {
    table: Arc<Mutex<HashMap<StreamId, Entry>>>,
    out: mpsc::Sender<Out>,
    ids: Arc<Ids>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

fn frame(f: &Frame) -> Out {
    let mut b = Vec::new();
    encode(&mut b, f);
    Out::Bytes(b)
}

impl Hub {
    /// Streams written to `out`, numbered by `ids`.
    pub fn new(out: mpsc::Sender<Out>, ids: Arc<Ids>) -> Hub {
        Hub {
            table: Arc::default(),
            out,
            ids,
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<StreamId, Entry>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts carrying a stream a handler opened.
    pub fn start(&self, id: StreamId, endpoint: Endpoint, place: Place) {
        let (data_tx, data_rx) = mpsc::unbounded_channel();
        let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
        let credit = Arc::new(Credit::new(
            STREAM_WINDOW,
            guestlink_proto_stream::MAX_WINDOW,
        ));
        let unacked = Arc::new(AtomicU64::new(0));
        let io = StreamIo {
            id,
            data: data_rx,
            credit: credit.clone(),
            unacked: unacked.clone(),
            out: self.out.clone(),
        };
        let hub = self.clone();
        // The table is locked while the task starts, so that it cannot end (and remove
        // its entry) before the entry is there.
        let mut table = self.table();
        let task = tokio::spawn(async move {
            let _place = place;
            match endpoint {
                Endpoint::Process(p) => run_process(io, p, control_rx).await,
                Endpoint::Socket { read, write, peer } => {
                    tracing::debug!(stream = id, %peer, "stream carries a connection");
                    run_socket(io, read, write).await
                }
                Endpoint::Listener(l) => run_listener(&hub, id, l).await,
            }
            hub.table().remove(&id);
        });
        table.insert(
            id,
            Entry {
                data: data_tx,
                host_eof: false,
                control: control_tx,
                credit,
                unacked,
                task: task.abort_handle(),
            },
        );
    }

    /// Ends a stream at once and tells the host why.
    fn reset(&self, id: StreamId, reason: &str) {
        if let Some(e) = self.table().remove(&id) {
            e.task.abort();
        }
        tracing::debug!(stream = id, "stream reset: {reason}");
        let _ = self.out.try_send(frame(&Frame::Reset {
            stream: id,
            reason: reason.to_string(),
        }));
    }

    /// Acts on a frame from the host.
    pub fn deliver(&self, f: Frame) {
        let id = f.stream();
        let mut table = self.table();
        let Some(e) = table.get_mut(&id) else {
            // A stream that ended meanwhile: what the host sent for it is moot.
            tracing::trace!(stream = id, "frame for a stream that is gone");
            return;
        };
        let refuse = match f {
            Frame::Data { .. } | Frame::Eof { .. } if e.host_eof => {
                Some("the host sent more after its end of data")
            }
            Frame::Data { data, .. } => {
                let unacked =
                    e.unacked.fetch_add(data.len() as u64, Ordering::AcqRel) + data.len() as u64;
                if unacked > u64::from(STREAM_WINDOW) {
                    Some("the host sent more than its credit")
                } else {
                    let _ = e.data.send(Some(data));
                    None
                }
            }
            Frame::Eof { .. } => {
                e.host_eof = true;
                let _ = e.data.send(None);
                None
            }
            Frame::Credit { bytes, .. } => {
                (!e.credit.grant(bytes)).then_some("the host granted more credit than allowed")
            }
            Frame::Resize { rows, cols, .. } => {
                let _ = e.control.try_send(Control::Resize(rows, cols));
                None
            }
            Frame::Signal { signal, .. } => {
                let _ = e.control.try_send(Control::Signal(signal));
                None
            }
            Frame::Reset { reason, .. } => {
                tracing::debug!(stream = id, "the host reset the stream: {reason}");
                e.task.abort();
                drop(table);
                self.table().remove(&id);
                return;
            }
            Frame::Stderr { .. } | Frame::Exit { .. } | Frame::Accept { .. } => {
                Some("the host sent a frame only the guest sends")
            }
        };
        drop(table);
        if let Some(reason) = refuse {
            self.reset(id, reason);
        }
    }

    /// Ends every stream: programs are hung up, sockets and listeners closed.
    pub fn teardown(&self) {
        let entries: Vec<Entry> = self.table().drain().map(|(_, e)| e).collect();
        if !entries.is_empty() {
            tracing::info!(streams = entries.len(), "live streams torn down");
        }
        for e in entries {
            e.task.abort();
        }
    }
}

/// A stream's side of the connection.
struct StreamIo {
    id: StreamId,
    data: mpsc::UnboundedReceiver<Option<Vec<u8>>>,
    credit: Arc<Credit>,
    unacked: Arc<AtomicU64>,
    out: mpsc::Sender<Out>,
}

/// Sends what `r` gives as frames of `kind`, within the credit, until its end (an
/// error counts as the end; it is returned). Bytes are read straight into the frame
/// that carries them: one copy from the kernel, none more on the way out.
async fn copy_out(
    mut r: impl AsyncRead + Unpin,
    kind: Kind,
    id: StreamId,
    credit: &Credit,
    out: &mpsc::Sender<Out>,
) -> std::io::Result<()> {
    let header = guestlink_proto_stream::HEADER;
    loop {
        // Read into the spare capacity: no pass to zero the buffer first. A whole
        // payload is 64 KiB, a pipe's whole buffer: a read that empties the pipe
        // leaves no sliver behind for a tiny frame of its own.
        let mut frame = Vec::with_capacity(header + MAX_PAYLOAD);
        frame.resize(header, 0);
        let n = match r.read_buf(&mut frame).await {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let k = credit.take(n).await;
        let rest = frame[header + k..header + n].to_vec();
        frame.truncate(header + k);
        let mut head = Vec::with_capacity(header);
        encode_data(&mut head, kind, id, &[]);
        frame[..header].copy_from_slice(&head);
        frame[6..10].copy_from_slice(&(k as u32).to_be_bytes());
        if out.send(Out::Bytes(frame)).await.is_err() {
            return Ok(());
        }
        // What the credit did not cover goes as it comes.
        let mut rest = &rest[..];
        while !rest.is_empty() {
            let k = credit.take(rest.len()).await;
            let mut b = Vec::with_capacity(k + header);
            encode_data(&mut b, kind, id, &rest[..k]);
            if out.send(Out::Bytes(b)).await.is_err() {
                return Ok(());
            }
            rest = &rest[k..];
        }
    }
}

/// Gives the host credit for `owed` bytes it sent.
async fn grant(io: &StreamIo, owed: &mut u32) {
    if *owed == 0 {
        return;
    }
    let bytes = std::mem::take(owed);
    io.unacked.fetch_sub(u64::from(bytes), Ordering::AcqRel);
    let _ = io
        .out
        .send(frame(&Frame::Credit {
            stream: io.id,
            bytes,
        }))
        .await;
}

/// Writes the host's data to `w` and gives credit back as it goes (before it waits
/// for more, or once a quarter of the window is owed while data keeps coming); at the
/// host's EOF, `at_eof` runs and it returns. An error of `w` other than a closed pipe
/// is returned.
async fn copy_in<W: AsyncWrite + Unpin>(
    io: &mut StreamIo,
    w: &mut Option<W>,
    at_eof: impl FnOnce(&mut Option<W>),
) -> std::io::Result<()> {
    use tokio::sync::mpsc::error::TryRecvError;
    let mut owed = 0u32;
    loop {
        let item = match io.data.try_recv() {
            Ok(item) => {
                if owed >= STREAM_WINDOW / 4 {
                    grant(io, &mut owed).await;
                }
                item
            }
            Err(TryRecvError::Empty) => {
                grant(io, &mut owed).await;
                match io.data.recv().await {
                    Some(item) => item,
                    None => return Ok(()),
                }
            }
            Err(TryRecvError::Disconnected) => return Ok(()),
        };
        let Some(data) = item else {
            if let Some(w) = w.as_mut() {
                let _ = w.flush().await;
            }
            grant(io, &mut owed).await;
            at_eof(w);
            return Ok(());
        };
        let result = match w.as_mut() {
            Some(w) => match w.write_all(&data).await {
                Ok(()) => w.flush().await,
                Err(e) => Err(e),
            },
            // The program closed its input: what comes is dropped, and credited so
            // the host is not stuck.
            None => Ok(()),
        };
        owed += data.len() as u32;
        if let Err(e) = result {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(e);
            }
            *w = None;
        }
    }
}

async fn run_process(mut io: StreamIo, p: Process, mut control: mpsc::Receiver<Control>) {
    let Process {
        pid,
        input,
        output,
        errors,
        terminal,
        mut ended,
        timeout,
        group,
    } = p;
    let id = io.id;
    let has_terminal = terminal.is_some();
    let out = io.out.clone();
    let credit = io.credit.clone();
    let mut input = input;
    // The program's input may end long before the program: that ends nothing.
    let to_guest = async {
        copy_in(&mut io, &mut input, |w| {
            if has_terminal {
                // The end of input on a terminal is its EOF character, as a keyboard's ^D.
                if let Some(w) = w.as_mut() {
                    let _ = write_eof_char(w);
                }
            } else {
                *w = None;
            }
        })
        .await?;
        std::future::pending::<std::io::Result<()>>().await
    };
    let outputs = async {
        let stdout = copy_out(output, Kind::Data, id, &credit, &out);
        let stderr = async {
            match errors {
                Some(e) => copy_out(e, Kind::Stderr, id, &credit, &out).await,
                None => Ok(()),
            }
        };
        let _ = tokio::join!(stdout, stderr);
    };
    let to_host = async {
        tokio::pin!(outputs);
        let mut outputs_done = false;
        tokio::select! {
            () = &mut outputs => outputs_done = true,
            _ = ended.wait_for(Option::is_some) => {}
        }
        if outputs_done {
            let _ = ended.wait_for(Option::is_some).await;
        } else {
            let _ = tokio::time::timeout(OUTPUT_GRACE, &mut outputs).await;
        }
        let status = *ended.borrow();
        let status = match status {
            Some(Ended::Signal(s)) => ExitStatus::Signal(s),
            Some(Ended::Code(c)) => ExitStatus::Code(c),
            None => ExitStatus::Code(-1),
        };
        let _ = out.send(frame(&Frame::Exit { stream: id, status })).await;
    };
    let controls = async {
        while let Some(c) = control.recv().await {
            match c {
                Control::Resize(rows, cols) => {
                    if let Some(t) = &terminal {
                        if let Err(e) = t.resize(rows, cols) {
                            tracing::debug!(pid, "cannot resize the terminal: {e}");
                        }
                    }
                }
                Control::Signal(s) => {
                    if let Err(e) = group.signal(s as i32) {
                        tracing::debug!(pid, "cannot signal the program: {e}");
                    }
                }
            }
        }
        std::future::pending::<()>().await
    };
    let timer = async {
        match timeout {
            Some(t) => {
                tokio::time::sleep(t).await;
                tracing::warn!(
                    pid,
                    "stream-exec: the program's time is up ({}s); terminating it",
                    t.as_secs()
                );
                let _ = group.signal(guestlink_core::os::SIGTERM);
                tokio::time::sleep(KILL_GRACE).await;
                let _ = group.signal(guestlink_core::os::SIGKILL);
                std::future::pending::<()>().await
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = to_host => {}
        r = to_guest => if let Err(e) = r {
            tracing::debug!(pid, "cannot write to the program: {e}");
        },
        () = controls => {}
        () = timer => {}
    }
}

/// Writes the terminal's EOF character (^D) without waiting: a terminal that cannot
/// take one byte now has a reader that is not reading anyway.
fn write_eof_char<W: AsyncWrite + Unpin>(w: &mut W) -> std::io::Result<()> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match std::pin::Pin::new(w).poll_write(&mut cx, &[0x04]) {
        std::task::Poll::Ready(r) => r.map(|_| ()),
        std::task::Poll::Pending => Ok(()),
    }
}

async fn run_socket(
    mut io: StreamIo,
    read: guestlink_core::live::BoxRead,
    write: guestlink_core::live::BoxWrite,
) {
    let id = io.id;
    let out = io.out.clone();
    let credit = io.credit.clone();
    let to_host = async {
        let r = copy_out(read, Kind::Data, id, &credit, &out).await;
        if r.is_ok() {
            let _ = out.send(frame(&Frame::Eof { stream: id })).await;
        }
        r
    };
    let mut write = Some(write);
    // The host's end half-closes the socket: dropping the writing half shuts its
    // sending side down, and the peer reads its end while our side keeps reading.
    let to_guest = copy_in(&mut io, &mut write, |w| *w = None);
    tokio::pin!(to_host, to_guest);
    // Each direction ends on its own (half-close); the stream ends when both have, or
    // at the first error.
    let (mut sent_all, mut got_all) = (false, false);
    let reason = loop {
        tokio::select! {
            r = &mut to_host, if !sent_all => match r {
                Ok(()) => sent_all = true,
                Err(e) => break Some(e.to_string()),
            },
            r = &mut to_guest, if !got_all => match r {
                Ok(()) => got_all = true,
                Err(e) => break Some(e.to_string()),
            },
        }
        if sent_all && got_all {
            break None;
        }
    };
    if let Some(reason) = reason {
        let _ = out.send(frame(&Frame::Reset { stream: id, reason })).await;
    }
}

async fn run_listener(hub: &Hub, id: StreamId, listener: LiveListener) {
    loop {
        let accepted = match &listener {
            LiveListener::Tcp(l) => l.accept().await.map(|(s, peer)| {
                let _ = s.set_nodelay(true);
                let (r, w) = s.into_split();
                (
                    Box::new(r) as guestlink_core::live::BoxRead,
                    Box::new(w) as guestlink_core::live::BoxWrite,
                    peer.to_string(),
                )
            }),
            #[cfg(unix)]
            LiveListener::Unix(l, _) => l.accept().await.map(|(s, _)| {
                let (r, w) = s.into_split();
                (
                    Box::new(r) as guestlink_core::live::BoxRead,
                    Box::new(w) as guestlink_core::live::BoxWrite,
                    "unix".to_string(),
                )
            }),
        };
        let (read, write, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(stream = id, "reverse forward: cannot accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (new, place) = match hub.ids.reserve() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(stream = id, %peer, "reverse forward: connection refused: {e}");
                continue;
            }
        };
        let accept = frame(&Frame::Accept {
            stream: new,
            listener: id,
            peer: peer.clone(),
        });
        if hub.out.send(accept).await.is_err() {
            return;
        }
        hub.start(new, Endpoint::Socket { read, write, peer }, place);
    }
}
