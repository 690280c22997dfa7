//! State that outlives a single call, with one owner: the agent.
//!
//! - the frozen flag, persisted as qemu-ga's marker file `<statedir>/qga.state.isfrozen`
//!   so that an agent restarted while filesystems are frozen comes back in frozen mode,
//!   and the list of what is frozen;
//! - open file handles ([`files`]), numbered from the counter qemu-ga keeps in
//!   `<statedir>/qga.state`;
//! - the table of processes started by `guest-exec` ([`exec`]);
//! - user sessions and their session agents ([`sessions`]);
//! - requests forwarded to another party and waiting for its answer ([`pending`]);
//! - files being received from the host ([`transfers`]);
//! - paths watched for the host ([`watches`]).

pub mod exec;
pub mod files;
pub mod pending;
mod persist;
pub mod sessions;
pub mod transfers;
pub mod watches;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub use exec::{Captured, ExecLookup, ExecOutcome, ExecRecord, ExecTable};
pub use files::{FileTable, OpenFile};

/// Name of the marker file that says filesystems are frozen.
pub const FROZEN_MARKER: &str = "qga.state.isfrozen";

/// What `guest-fsfreeze-*` froze.
#[derive(Debug, Default)]
pub struct FreezeState {
    /// Mount points frozen, in the order they were frozen. `None` when the agent
    /// started from a frozen marker and does not know.
    pub frozen: Option<Vec<PathBuf>>,
}

/// The agent's persistent and shared state.
#[derive(Debug)]
pub struct AgentState {
    statedir: PathBuf,
    frozen: AtomicBool,
    freeze_generation: AtomicU64,
    freeze_events: tokio::sync::watch::Sender<(u64, Instant)>,
    /// Serialises freeze and thaw and records what is frozen.
    pub freeze: tokio::sync::Mutex<FreezeState>,
    /// Open files.
    pub files: FileTable,
    /// Processes started by `guest-exec`.
    pub exec: ExecTable,
    /// User sessions and their session agents.
    pub sessions: sessions::Sessions,
    /// Requests forwarded to the host or to a session agent, waiting for the answer.
    pub pending: pending::Pending,
    /// Files being received.
    pub transfers: transfers::Transfers,
    /// Paths watched for the host.
    pub watches: watches::Watches,
    /// A new guestlinkd being received.
    pub update: crate::update::upload::Uploads,
    /// Held while credentials are offered to the greeter: one hand-off at a time.
    pub credentials: tokio::sync::Mutex<()>,
    shutting_down: Mutex<()>,
}

impl AgentState {
    /// State kept in `statedir`; starts frozen if the marker file exists there.
    pub fn load(statedir: impl Into<PathBuf>) -> AgentState {
        let statedir = statedir.into();
        let frozen = statedir.join(FROZEN_MARKER).exists();
        let files = FileTable::new(persist::StateFile::new(&statedir));
        AgentState {
            statedir,
            frozen: AtomicBool::new(frozen),
            freeze_generation: AtomicU64::new(0),
            freeze_events: tokio::sync::watch::Sender::new((0, Instant::now())),
            freeze: tokio::sync::Mutex::new(FreezeState::default()),
            files,
            exec: ExecTable::default(),
            sessions: sessions::Sessions::default(),
            pending: pending::Pending::default(),
            transfers: transfers::Transfers::default(),
            watches: watches::Watches::default(),
            update: Default::default(),
            credentials: tokio::sync::Mutex::new(()),
            shutting_down: Mutex::new(()),
        }
    }

    /// The state directory.
    pub fn statedir(&self) -> &Path {
        &self.statedir
    }

    /// Whether filesystems are frozen.
    pub fn frozen(&self) -> bool {
        self.frozen.load(Ordering::SeqCst)
    }

    /// A number that changes on every freeze, so a watchdog can tell whether the
    /// freeze it was started for is still the current one.
    pub fn freeze_generation(&self) -> u64 {
        self.freeze_generation.load(Ordering::SeqCst)
    }

    /// Freeze events: the generation and the instant of each freeze.
    pub fn freeze_events(&self) -> tokio::sync::watch::Receiver<(u64, Instant)> {
        self.freeze_events.subscribe()
    }

    /// Records the frozen state, creating or removing the marker file.
    pub fn set_frozen(&self, frozen: bool) -> io::Result<()> {
        let _guard = self.shutting_down.lock().unwrap_or_else(|e| e.into_inner());
        let marker = self.statedir.join(FROZEN_MARKER);
        if frozen {
            std::fs::write(&marker, b"")?;
            let generation = self.freeze_generation.fetch_add(1, Ordering::SeqCst) + 1;
            self.freeze_events
                .send_replace((generation, Instant::now()));
        } else {
            match std::fs::remove_file(&marker) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        self.frozen.store(frozen, Ordering::SeqCst);
        Ok(())
    }
}
