//! State that outlives a single call, with one owner: the agent.
//!
//! Today: the frozen flag, persisted as qemu-ga's marker file
//! `<statedir>/qga.state.isfrozen` so that an agent restarted while filesystems are
//! frozen comes back in frozen mode.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Name of the marker file that says filesystems are frozen.
pub const FROZEN_MARKER: &str = "qga.state.isfrozen";

/// The agent's persistent and shared state.
#[derive(Debug)]
pub struct AgentState {
    statedir: PathBuf,
    frozen: AtomicBool,
}

impl AgentState {
    /// State kept in `statedir`; starts frozen if the marker file exists there.
    pub fn load(statedir: impl Into<PathBuf>) -> AgentState {
        let statedir = statedir.into();
        let frozen = statedir.join(FROZEN_MARKER).exists();
        AgentState {
            statedir,
            frozen: AtomicBool::new(frozen),
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

    /// Records the frozen state, creating or removing the marker file.
    pub fn set_frozen(&self, frozen: bool) -> io::Result<()> {
        let marker = self.statedir.join(FROZEN_MARKER);
        if frozen {
            std::fs::write(&marker, b"")?;
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
