//! Self-update (`__org.guestlink_update-*`): a new guestlinkd sent by the host through
//! the agent's own channel, staged beside the running executable, checked (size,
//! SHA-256, an ed25519 signature when the guest has an update key, that it runs), and
//! swapped in with one rename. The old executable stays as `<exe>.old` until the new
//! agent confirms it serves; a guard process started from the old executable puts it
//! back and restarts it when no confirmation comes within the trial period.
//!
//! - [`upload`]: the staged file while its bytes arrive (removed when the connection
//!   that sends it ends first);
//! - [`check`]: the checks before the swap;
//! - [`marker`]: `<statedir>/guestlinkd.update.json`, what the old agent, the new agent and the
//!   guard tell each other (under a lock), and what `update-status` reports.
//!
//! Restarting (through systemd or by re-executing) is the agent binary's part.

pub mod check;
pub mod marker;
pub mod upload;

use std::path::PathBuf;
use std::time::Duration;

/// guestlinkd's own version: the workspace's, or `GUESTLINK_VERSION` at build time (a
/// distribution's or a test build's).
pub const VERSION: &str = match option_env!("GUESTLINK_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// What `guestlinkd -V` prints.
pub fn version_line() -> String {
    format!(
        "QEMU Guest Agent {} (guestlinkd {VERSION})",
        guestlink_vocabulary::QGA_COMPAT_VERSION
    )
}

/// How the agent restarts on a new executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restart {
    /// `systemctl restart UNIT`: the agent runs as this systemd unit.
    Systemd(String),
    /// Re-execute in place (same pid, same arguments).
    Exec,
}

impl Restart {
    /// The name `update-commit` reports.
    pub fn name(&self) -> &'static str {
        match self {
            Restart::Systemd(_) => "systemd",
            Restart::Exec => "exec",
        }
    }
}

/// Where and how updates happen.
#[derive(Debug, Clone)]
pub struct UpdateConfig {
    /// The running executable; `None` turns updates off ("cannot update: ...").
    pub exe: Option<PathBuf>,
    /// The ed25519 public key file; when it exists, updates must be signed by it.
    pub key: PathBuf,
    /// How long the new agent has to confirm it serves.
    pub trial: Duration,
    /// How the agent restarts.
    pub restart: Restart,
    /// The agent's arguments, for a re-execution and for a rollback without systemd.
    pub argv: Vec<String>,
}

/// The default update key.
pub const DEFAULT_KEY: &str = "/etc/guestlink/update.pub";
/// The default trial period.
pub const DEFAULT_TRIAL: Duration = Duration::from_secs(30);

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            exe: None,
            key: PathBuf::from(DEFAULT_KEY),
            trial: DEFAULT_TRIAL,
            restart: Restart::Exec,
            argv: Vec::new(),
        }
    }
}
