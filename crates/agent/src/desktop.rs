//! What the desktop channels need, made once at start: the pointer a SPICE host drives
//! (`--pointer uinput|record:PATH|none`) and what the oVirt channel reports.

use guestlink_core::Protocol;
use guestlink_platform::pointer::{Pointer, Recorder, Uinput};

use crate::channel::ChannelSpec;
use crate::frontend::vdagent::mouse::DEFAULT_SIZE;
use crate::frontend::vdagent::Desktop;

/// Makes the pointer chosen. Without a vdagent channel nothing is made; a uinput
/// device that cannot be made is logged and leaves the mouse capability unannounced
/// (a host would otherwise route its pointer into nothing).
pub fn open(
    pointer: Option<&str>,
    channels: &[ChannelSpec],
    ovirt: crate::frontend::ovirt::Options,
) -> anyhow::Result<Desktop> {
    if !channels.iter().any(|c| c.protocol == Protocol::Vdagent) {
        return Ok(Desktop {
            pointer: None,
            ovirt,
            sysfs: sysfs(),
        });
    }
    let made: Option<Box<dyn Pointer>> = match pointer.unwrap_or("uinput") {
        "none" => None,
        "uinput" => match Uinput::open(DEFAULT_SIZE.0, DEFAULT_SIZE.1) {
            Ok(u) => Some(Box::new(u)),
            Err(e) => {
                tracing::warn!(
                    "no uinput pointer ({e}): the SPICE mouse is not offered to the host"
                );
                None
            }
        },
        other => match other.strip_prefix("record:") {
            Some(path) if !path.is_empty() => {
                Some(Box::new(Recorder::open(path.as_ref()).map_err(|e| {
                    anyhow::anyhow!("cannot open pointer record file '{path}': {e}")
                })?))
            }
            _ => {
                return Err(anyhow::anyhow!(
                    "unknown pointer '{other}' (expected uinput, record:PATH or none)"
                ))
            }
        },
    };
    Ok(Desktop {
        pointer: made.map(std::sync::Mutex::new),
        ovirt,
        sysfs: sysfs(),
    })
}

/// `/sys`, or the tree a test names in `GUESTLINK_SYSFS`.
fn sysfs() -> std::path::PathBuf {
    std::env::var_os("GUESTLINK_SYSFS").map_or_else(|| "/sys".into(), Into::into)
}
