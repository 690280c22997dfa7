//! What has no Windows back end yet, each saying so in the error the host sees: acting
//! on user sessions (lock, log off, single sign-on) and the programs of live streams
//! (ConPTY). The commands that need them are not listed on Windows.

use std::time::Duration;

use guestlink_core::live::{LiveChild, LiveCommand, Processes};
use guestlink_core::platform::{BoxFuture, SessionManager};

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
