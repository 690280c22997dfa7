//! What has no Windows back end yet, saying so in the error the host sees: acting on
//! user sessions (lock, log off, single sign-on). The commands that need it are not
//! listed on Windows.

use std::time::Duration;

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
