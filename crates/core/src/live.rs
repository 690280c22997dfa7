//! The live channel's streams on one connection: what a handler opened (a program, a
//! connection, a listener) on its way to the front end that carries its bytes.
//!
//! A connection's [`StreamSlot`] is empty until the front end turns streams on
//! (`__org.guestlink_stream-enable`) and attaches to it. Handlers then open streams
//! through it: each gets a number and goes to the front end over a channel, after the
//! reply that names it. The front end owns every stream from then on; dropping one
//! ends it: a program's process group gets SIGHUP (SIGKILL if its leader is still there
//! two seconds later) and is reaped, a socket closes, a listener's socket file goes.
//! Detaching (a sync, a disconnection) drops every stream not yet taken.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};

use crate::limits::STREAMS;

/// A reading end.
pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
/// A writing end.
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;
/// A future that resolves when the process has been reaped.
pub type ExitFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = io::Result<std::process::ExitStatus>> + Send>,
>;

/// How long a process group has between SIGHUP and SIGKILL when its stream ends.
pub const HANGUP_GRACE: Duration = Duration::from_secs(2);

/// A program to run on a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCommand {
    /// The program, or `None` for the user's login shell.
    pub program: Option<String>,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment entries added to the base one (HOME, USER, LOGNAME, SHELL, PATH,
    /// TERM).
    pub env: Vec<(String, String)>,
    /// Working directory; the user's home when `None`.
    pub cwd: Option<PathBuf>,
    /// The user to run as.
    pub user: String,
    /// A pseudo-terminal instead of pipes.
    pub terminal: Option<TerminalSize>,
    /// Run the shell as a login shell (`-sh` as its name).
    pub login: bool,
}

/// A terminal's size and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalSize {
    /// Rows.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
    /// TERM.
    pub term: String,
}

/// A pseudo-terminal's master, for resizing.
pub trait Terminal: Send + Sync {
    /// Sets the window size (the program gets SIGWINCH).
    fn resize(&self, rows: u16, cols: u16) -> io::Result<()>;
}

/// A program the platform started for a stream. Its process group is its pid.
pub struct LiveChild {
    /// Process id (and process group).
    pub pid: i32,
    /// Standard input (the terminal, with one).
    pub input: Option<BoxWrite>,
    /// Standard output (the terminal, with one).
    pub output: BoxRead,
    /// Standard error, when it is not the terminal.
    pub errors: Option<BoxRead>,
    /// The terminal.
    pub terminal: Option<Box<dyn Terminal>>,
    /// Reaps it.
    pub exit: ExitFuture,
}

impl std::fmt::Debug for LiveChild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveChild")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// Starting programs for streams.
pub trait Processes: Send + Sync {
    /// Starts `cmd` in a process group (and a session, with a terminal) of its own.
    fn spawn(&self, cmd: &LiveCommand) -> Result<LiveChild, String>;
}

/// How a stream's program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Exit code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// A running program of a stream, as the front end holds it: its pipes, its terminal,
/// its end, and the guard that ends its process group when the stream goes.
pub struct Process {
    /// Process id.
    pub pid: i32,
    /// Standard input.
    pub input: Option<BoxWrite>,
    /// Standard output.
    pub output: BoxRead,
    /// Standard error, when separate.
    pub errors: Option<BoxRead>,
    /// The terminal.
    pub terminal: Option<Box<dyn Terminal>>,
    /// Becomes `Some` when the program has ended and been reaped.
    pub ended: watch::Receiver<Option<Ended>>,
    /// Seconds it may run.
    pub timeout: Option<Duration>,
    /// Signals the group; hangs it up when dropped.
    pub group: Group,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// A process group that is hung up when its stream ends.
#[derive(Debug)]
pub struct Group {
    pgid: i32,
    reaped: Arc<AtomicBool>,
}

impl Group {
    /// Sends `signal` to the group. A signal number that does not exist is an error.
    pub fn signal(&self, signal: i32) -> Result<(), String> {
        crate::os::signal_group(self.pgid, signal)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // Whatever the group still holds (the program, or jobs it left behind) is hung
        // up; the leader, if it ignores that, is killed after the grace period.
        crate::os::hang_up_group(self.pgid);
        if self.reaped.load(Ordering::Acquire) {
            return;
        }
        let pgid = self.pgid;
        let reaped = self.reaped.clone();
        let kill = move || {
            if !reaped.load(Ordering::Acquire) && pgid > 1 {
                crate::os::kill_group(pgid as u32);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(async move {
                    tokio::time::sleep(HANGUP_GRACE).await;
                    kill();
                });
            }
            Err(_) => {
                std::thread::spawn(move || {
                    std::thread::sleep(HANGUP_GRACE);
                    kill();
                });
            }
        }
    }
}

impl Process {
    /// Takes over a child the platform started: a task reaps it whatever happens to
    /// the stream, then runs `on_exit` with how it ended.
    pub fn adopt(
        child: LiveChild,
        timeout: Option<Duration>,
        on_exit: impl FnOnce(Option<Ended>) + Send + 'static,
    ) -> Process {
        let (tx, rx) = watch::channel(None);
        let reaped = Arc::new(AtomicBool::new(false));
        let flag = reaped.clone();
        let pid = child.pid;
        let exit = child.exit;
        tokio::spawn(async move {
            let ended = match exit.await {
                Ok(status) => match (status.code(), crate::os::exit_signal(&status)) {
                    (Some(c), _) => Some(Ended::Code(c)),
                    (None, Some(s)) => Some(Ended::Signal(s)),
                    _ => None,
                },
                Err(e) => {
                    tracing::warn!(pid, "cannot wait for the program of a stream: {e}");
                    None
                }
            };
            flag.store(true, Ordering::Release);
            on_exit(ended);
            let _ = tx.send(Some(ended.unwrap_or(Ended::Code(-1))));
        });
        Process {
            pid,
            input: child.input,
            output: child.output,
            errors: child.errors,
            terminal: child.terminal,
            ended: rx,
            timeout,
            group: Group { pgid: pid, reaped },
        }
    }
}

/// A guest-side listener of a reverse forward.
#[derive(Debug)]
pub enum LiveListener {
    /// TCP.
    Tcp(tokio::net::TcpListener),
    /// A unix socket; its file is removed when the listener goes.
    #[cfg(unix)]
    Unix(tokio::net::UnixListener, UnlinkOnDrop),
}

/// Removes a socket file when dropped.
#[derive(Debug)]
pub struct UnlinkOnDrop(pub PathBuf);

impl Drop for UnlinkOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What a stream carries on the guest side.
pub enum Endpoint {
    /// A program.
    Process(Process),
    /// A connection.
    Socket {
        /// Its reading half.
        read: BoxRead,
        /// Its writing half.
        write: BoxWrite,
        /// Where it goes, for logs.
        peer: String,
    },
    /// A listening socket: connections become new streams.
    Listener(LiveListener),
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Process(p) => p.fmt(f),
            Endpoint::Socket { peer, .. } => f.debug_struct("Socket").field("peer", peer).finish(),
            Endpoint::Listener(l) => l.fmt(f),
        }
    }
}

impl std::fmt::Debug for dyn Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Terminal")
    }
}

/// Counts a connection's open streams; dropping it frees the place.
#[derive(Debug)]
pub struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A stream opened by a handler, for the front end.
#[derive(Debug)]
pub struct Opened {
    /// Its number.
    pub id: u32,
    /// What it carries.
    pub endpoint: Endpoint,
    /// Its place among the connection's streams.
    pub place: Place,
}

/// Numbers and places for a connection's streams, shared by the handlers that open
/// them and the front end's listeners that accept connections.
#[derive(Debug)]
pub struct Ids {
    next: Mutex<u32>,
    open: Arc<AtomicUsize>,
}

impl Ids {
    /// A number and a place for a new stream.
    pub fn reserve(&self) -> Result<(u32, Place), SlotError> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= STREAMS {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(SlotError::Full);
        }
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let id = *next;
        *next = next.checked_add(1).unwrap_or(1);
        Ok((id, Place(self.open.clone())))
    }

    fn full(&self) -> bool {
        self.open.load(Ordering::Acquire) >= STREAMS
    }
}

#[derive(Debug)]
struct Attached {
    tx: mpsc::UnboundedSender<Opened>,
    ids: Arc<Ids>,
}

/// Why a stream cannot be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// Streams are not on for the connection.
    #[error("needs live streams: call __org.guestlink_stream-enable first")]
    Disabled,
    /// The connection has [`STREAMS`] open.
    #[error("too many streams open on this connection (limit streams: {STREAMS})")]
    Full,
}

/// A connection's streams, as handlers see them.
#[derive(Debug, Default)]
pub struct StreamSlot {
    inner: Mutex<Option<Attached>>,
}

impl StreamSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Attached>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Turns streams on; the front end receives the streams handlers open, and shares
    /// their numbering. A previous receiver gets nothing more.
    pub fn attach(&self) -> (mpsc::UnboundedReceiver<Opened>, Arc<Ids>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let ids = Arc::new(Ids {
            next: Mutex::new(1),
            open: Arc::new(AtomicUsize::new(0)),
        });
        *self.lock() = Some(Attached {
            tx,
            ids: ids.clone(),
        });
        (rx, ids)
    }

    /// Turns streams off.
    pub fn detach(&self) {
        *self.lock() = None;
    }

    /// Whether streams are on.
    pub fn enabled(&self) -> bool {
        self.lock().is_some()
    }

    /// Checks that a stream could be opened now (before a handler starts anything).
    pub fn check(&self) -> Result<(), SlotError> {
        match &*self.lock() {
            None => Err(SlotError::Disabled),
            Some(a) if a.ids.full() => Err(SlotError::Full),
            Some(_) => Ok(()),
        }
    }

    /// A number and a place for a new stream.
    pub fn reserve(&self) -> Result<(u32, Place), SlotError> {
        let ids = self.lock().as_ref().ok_or(SlotError::Disabled)?.ids.clone();
        ids.reserve()
    }

    /// Hands a stream to the front end; returns its number.
    pub fn open(&self, endpoint: Endpoint) -> Result<u32, SlotError> {
        let (id, place) = self.reserve()?;
        let guard = self.lock();
        let a = guard.as_ref().ok_or(SlotError::Disabled)?;
        a.tx.send(Opened {
            id,
            endpoint,
            place,
        })
        .map_err(|_| SlotError::Disabled)?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_refuses_until_attached_and_counts_places() {
        let slot = StreamSlot::default();
        assert_eq!(slot.check(), Err(SlotError::Disabled));
        let _rx = slot.attach();
        let mut places = Vec::new();
        for want in 1..=STREAMS as u32 {
            let (id, p) = slot.reserve().unwrap();
            assert_eq!(id, want);
            places.push(p);
        }
        assert_eq!(slot.check(), Err(SlotError::Full));
        assert!(slot.reserve().is_err());
        places.pop();
        assert!(slot.check().is_ok());
        slot.detach();
        assert_eq!(slot.reserve().unwrap_err(), SlotError::Disabled);
    }
}
