//! systemd's service notification protocol (`sd_notify`), for `Type=notify` units:
//! `READY=1` once every channel is being served, `WATCHDOG=1` at half the interval in
//! `WATCHDOG_USEC`, `RELOADING=1` and then `READY=1` around a SIGHUP reload, and
//! `STOPPING=1` on the way out. Without `NOTIFY_SOCKET` (not started by systemd)
//! nothing is sent. The socket may be a path or an abstract name (`@name`).

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where notifications go, if anywhere.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`.
    pub fn from_env() -> Notifier {
        let target = std::env::var("NOTIFY_SOCKET").ok().and_then(|name| {
            let addr = match name.strip_prefix('@') {
                Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes()),
                None => SocketAddr::from_pathname(&name),
            };
            match (UnixDatagram::unbound(), addr) {
                (Ok(sock), Ok(addr)) => Some((sock, addr)),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!("NOTIFY_SOCKET '{name}' cannot be used: {e}");
                    None
                }
            }
        });
        Notifier { target }
    }

    /// Sends `state` (lines of `KEY=value`).
    pub fn send(&self, state: &str) {
        if let Some((sock, addr)) = &self.target {
            if let Err(e) = sock.send_to_addr(state.as_bytes(), addr) {
                tracing::debug!("sd_notify failed: {e}");
            }
        }
    }

    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, when it is meant for
    /// this process (`WATCHDOG_PID` absent or ours).
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.target.as_ref()?;
        if let Ok(pid) = std::env::var("WATCHDOG_PID") {
            if pid.trim() != std::process::id().to_string() {
                return None;
            }
        }
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
        (usec > 0).then(|| Duration::from_micros(usec / 2))
    }

    /// `RELOADING=1` with the monotonic time systemd wants beside it.
    pub fn reloading(&self) {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we own.
        let now = match unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) } {
            0 => t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1000,
            _ => 0,
        };
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={now}"));
    }
}
