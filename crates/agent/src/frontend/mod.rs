//! Protocol front ends: wire messages in, vocabulary calls to the core, wire messages
//! out.

use guestlink_core::Protocol;

#[cfg(unix)]
pub mod guest_socket;
pub mod limits;
pub mod live;
#[cfg(unix)]
pub mod noise;
#[cfg(unix)]
pub mod ovirt;
pub mod qga;
pub mod read_buffer;
#[cfg(unix)]
pub mod vdagent;

/// Whether guestlinkd has a front end for this protocol on a host channel (the guest
/// socket is served apart).
pub fn has_front_end(protocol: Protocol) -> bool {
    if cfg!(windows) {
        // The SPICE and oVirt agents for Windows are not written yet.
        return protocol == Protocol::Qga;
    }
    matches!(
        protocol,
        Protocol::Qga | Protocol::Vdagent | Protocol::Ovirt
    )
}

/// The pause between reads of a device port that has no host.
#[cfg(unix)]
pub use guestlink_fdio::DETACHED_POLL;
/// The pause between reads of a device port that has no host.
#[cfg(windows)]
pub const DETACHED_POLL: std::time::Duration = std::time::Duration::from_millis(100);
