//! Command handlers, grouped by what they touch. Each implements
//! [`Handler`](crate::dispatch::Handler) for a command type of the vocabulary.
//!
//! - `protocol` — ping, sync, info
//! - `system` — time, host name, time zone, users, OS
//! - [`file`](mod@file) — `guest-file-*`
//! - [`path`] — files and directories by path: stat, list, mkdir, remove, rename, modes
//! - [`exec`] — `guest-exec`, `guest-exec-status`
//! - [`freeze`] — `guest-fsfreeze-*`, `guest-fstrim`
//! - [`grow`] — a partition and its file system grown to fill the disk
//! - [`inventory`] — fsinfo, disks, diskstats, network, CPUs, memory, load
//! - [`machine`] — shutdown, suspend, set-time, set-vcpus, set-memory-blocks
//! - [`accounts`] — passwords and SSH keys
//! - [`events`] — event subscriptions, guest requests to the host and their answers
//! - [`services`] — system services (systemd units)
//! - [`sessions`] — user sessions and session agents
//! - [`clipboard`] — a session's clipboard, through its session agent
//! - [`transfer`] — files from the host into a user's download directory; displays
//! - [`control`] — locking and ending sessions, single sign-on
//! - [`live`] — the live channel: streamed programs, shells, forwards
//! - [`hooks`] — lifecycle hooks around migration and hibernation
//! - [`action`] — the administrator's actions, run for the host

pub mod accounts;
pub mod action;
#[cfg(unix)]
mod authorized_keys;
#[cfg(windows)]
#[path = "authorized_keys_windows.rs"]
mod authorized_keys;
pub mod clipboard;
pub mod control;
#[cfg(unix)]
mod download_dir;
pub mod events;
pub mod exec;
pub mod file;
pub mod freeze;
pub mod grow;
pub mod hooks;
pub mod inventory;
pub mod live;
pub mod machine;
mod osrelease;
pub mod path;
mod protocol;
pub mod services;
pub mod sessions;
mod system;
pub mod transfer;
pub mod update;
#[cfg(unix)]
mod user_files;
#[cfg(windows)]
#[path = "user_files_windows.rs"]
mod user_files;
pub mod watch;

pub use osrelease::parse_os_release;

use crate::error::CommandError;

/// The raw bytes that came after a request (bulk), which must be the `count` its
/// arguments announce.
pub(crate) fn payload(
    ctx: &crate::context::Context<'_>,
    count: i64,
) -> Result<Vec<u8>, CommandError> {
    let data = ctx.bulk.and_then(|b| b.take_input()).unwrap_or_default();
    if data.len() as i64 != count {
        return Err(CommandError::new(format!(
            "Parameter 'count' says {count} bytes but {} came",
            data.len()
        )));
    }
    Ok(data)
}

/// Sends `data` raw after the reply; its length, for the reply's `count`. The dispatcher
/// admits a command with a reply payload only on a connection in bulk mode.
pub(crate) fn send_raw(
    ctx: &crate::context::Context<'_>,
    data: Vec<u8>,
) -> Result<i64, CommandError> {
    let bulk = ctx
        .bulk
        .ok_or_else(|| CommandError::new("raw bytes need bulk transfer"))?;
    let count = data.len() as i64;
    bulk.set_output(data);
    Ok(count)
}

/// Runs platform code that may block (ioctls, sysfs on a hung device, helper programs)
/// on tokio's blocking pool, so other channels keep being served. A panic in it is
/// logged and becomes a command error instead of taking the channel down.
pub(crate) async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CommandError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!("platform operation failed: {e}");
        CommandError::new("internal error: the operation failed unexpectedly")
    })
}
