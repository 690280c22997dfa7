//! Resize automation in the daemon: the kernel's device events read as they come
//! (`guestlink_platform::uevent`), each CPU or memory block the host adds onlined and
//! each disk it resizes reported (and grown with `--grow-on-resize`), by
//! [`guestlink_core::hotplug::apply`]. `--hotplug` says how much of it runs.

use std::sync::Arc;

use guestlink_core::hotplug::{apply, Options};
use guestlink_core::Agent;
use guestlink_platform::uevent::Listener;

/// The options of `--hotplug MODE` and `--grow-on-resize`; `None` for `off`.
pub fn options(mode: Option<&str>, grow: bool) -> Result<Option<Options>, String> {
    let online = match mode.unwrap_or("online") {
        "online" => true,
        "report" => false,
        "off" => return Ok(None),
        other => {
            return Err(format!(
                "unknown hotplug mode '{other}' (expected online, report or off)"
            ))
        }
    };
    Ok(Some(Options { online, grow }))
}

/// Acts on device events until the socket fails; a socket that cannot be opened (no
/// netlink in a container) is logged and the rest of the agent goes on.
pub async fn run(agent: Arc<Agent>, opts: Options) {
    let mut events = match Listener::open() {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "device events are not available: hot-added CPUs and memory are not onlined");
            return;
        }
    };
    tracing::debug!(?opts, "listening for device events");
    loop {
        match events.next().await {
            Ok(change) => apply(&agent, change, opts).await,
            Err(e) => {
                tracing::warn!(error = %e, "device events stopped");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::options;

    #[test]
    fn modes() {
        let on = options(None, false).unwrap().unwrap();
        assert!(on.online && !on.grow);
        let report = options(Some("report"), true).unwrap().unwrap();
        assert!(!report.online && report.grow);
        assert_eq!(options(Some("off"), true).unwrap(), None);
        assert!(options(Some("yes"), false).unwrap_err().contains("'yes'"));
    }
}
