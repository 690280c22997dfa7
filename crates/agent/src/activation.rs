//! Sockets passed by systemd (socket activation, `sd_listen_fds(3)`).
//!
//! systemd hands a started service its listening sockets as descriptors 3, 4, ...
//! with `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`. guestlinkd takes them once at
//! start, before any thread exists, and clears the variables so that the programs it
//! runs (`guest-exec`, hooks) do not see them:
//!
//! - the socket named `guest` (`FileDescriptorName=guest`, as `guestlinkd.socket`
//!   names it) is the guest-side socket for session programs;
//! - any other one is a host channel, as qemu-ga takes its socket from systemd: at most
//!   one, served as QGA.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

/// The name that marks the guest socket.
pub const GUEST_NAME: &str = "guest";

const SD_LISTEN_FDS_START: RawFd = 3;

/// The sockets not yet taken, with their names.
static PASSED: Mutex<Vec<(String, OwnedFd)>> = Mutex::new(Vec::new());

fn passed() -> std::sync::MutexGuard<'static, Vec<(String, OwnedFd)>> {
    PASSED.lock().unwrap_or_else(|e| e.into_inner())
}

/// The sockets systemd passed, if the variables are meant for this process.
fn from_env(pid: Option<&str>, fds: Option<&str>, names: Option<&str>) -> Vec<(String, RawFd)> {
    let for_us = pid
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    let count = fds.and_then(|n| n.parse::<i32>().ok()).unwrap_or(0);
    if !for_us || count <= 0 {
        return Vec::new();
    }
    let mut names = names.unwrap_or("").split(':');
    (0..count.min(64))
        .map(|i| {
            let name = names.next().unwrap_or("").to_string();
            (name, SD_LISTEN_FDS_START + i)
        })
        .collect()
}

/// Takes the sockets systemd passed. Call once, first thing in `main`, while the
/// process has one thread (it changes the environment).
pub fn init() {
    let var = |k: &str| std::env::var(k).ok();
    let found = from_env(
        var("LISTEN_PID").as_deref(),
        var("LISTEN_FDS").as_deref(),
        var("LISTEN_FDNAMES").as_deref(),
    );
    for k in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(k);
    }
    let mut list = passed();
    for (name, fd) in found {
        // SAFETY: systemd passed these descriptors to this process (LISTEN_PID is ours),
        // and nothing else in it owns them: they are taken once, here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let _ = nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
        list.push((name, fd));
    }
}

/// Whether systemd passed a host channel.
pub fn has_channel() -> bool {
    passed().iter().any(|(n, _)| n != GUEST_NAME)
}

/// Takes the host channel socket systemd passed.
pub fn take_channel() -> io::Result<Option<OwnedFd>> {
    let mut list = passed();
    let channels = list.iter().filter(|(n, _)| n != GUEST_NAME).count();
    if channels > 1 {
        return Err(io::Error::other(format!(
            "expected 1 channel socket from systemd, got {channels}"
        )));
    }
    let at = list.iter().position(|(n, _)| n != GUEST_NAME);
    Ok(at.map(|i| list.remove(i).1))
}

/// Takes the guest socket systemd passed.
pub fn take_guest() -> Option<OwnedFd> {
    let mut list = passed();
    let at = list.iter().position(|(n, _)| n == GUEST_NAME)?;
    Some(list.remove(at).1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_for_another_process_are_ignored() {
        let me = std::process::id().to_string();
        assert!(from_env(Some("1"), Some("2"), None).is_empty());
        assert!(from_env(None, Some("2"), None).is_empty());
        assert!(from_env(Some(&me), Some("0"), None).is_empty());
        assert!(from_env(Some(&me), Some("x"), None).is_empty());
        assert_eq!(
            from_env(Some(&me), Some("2"), Some("guest:qga")),
            [("guest".to_string(), 3), ("qga".to_string(), 4)]
        );
        assert_eq!(from_env(Some(&me), Some("1"), None), [(String::new(), 3)]);
    }
}
