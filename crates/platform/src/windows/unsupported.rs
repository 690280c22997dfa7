//! What has no Windows back end yet, each saying so in the error the host sees:
//! freezing through VSS (a requester is planned; qemu-ga ships a VSS provider DLL),
//! acting on user sessions (lock, log off, single sign-on), and the programs of live
//! streams (ConPTY).

use std::io;
use std::path::Path;
use std::time::Duration;

use guestlink_core::live::{LiveChild, LiveCommand, Processes};
use guestlink_core::platform::{BoxFuture, Filesystems, FreezableMount, SessionManager, TrimError};

/// Freezing and trimming: not built for Windows yet.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoVss;

fn no_vss() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "freezing through VSS is not available in this guestlinkd",
    )
}

impl Filesystems for NoVss {
    fn mounts(&self) -> io::Result<Vec<FreezableMount>> {
        Err(no_vss())
    }

    fn freeze(&self, _dir: &Path) -> io::Result<()> {
        Err(no_vss())
    }

    fn thaw(&self, _dir: &Path) -> io::Result<bool> {
        Ok(false)
    }

    fn trim(&self, _dir: &Path, _minimum: u64) -> Result<u64, TrimError> {
        Err(TrimError::Trim(io::Error::new(
            io::ErrorKind::Unsupported,
            "trimming is not available in this guestlinkd",
        )))
    }
}

/// Acting on sessions: not built for Windows yet.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSessions;

const NO_SESSIONS: &str = "acting on user sessions is not available on Windows yet";

impl SessionManager for NoSessions {
    fn lock(&self, _session: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Err(NO_SESSIONS.to_string()) })
    }

    fn terminate(&self, _session: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Err(NO_SESSIONS.to_string()) })
    }

    fn hand_off_credentials(
        &self,
        _blob: Vec<u8>,
        _wait: Duration,
    ) -> BoxFuture<'_, Result<bool, String>> {
        Box::pin(async { Err(NO_SESSIONS.to_string()) })
    }
}

/// Live streams' programs: not built for Windows yet.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLiveProcesses;

impl Processes for NoLiveProcesses {
    fn spawn(&self, _cmd: &LiveCommand) -> Result<LiveChild, String> {
        Err("live streams are not available on Windows yet".into())
    }
}
