//! Protocol front ends: wire messages in, vocabulary calls to the core, wire messages
//! out.

use guestlink_core::Protocol;

pub mod guest_socket;
pub mod limits;
pub mod live;
pub mod noise;
pub mod ovirt;
pub mod qga;
pub mod read_buffer;
pub mod vdagent;

/// Whether guestlinkd has a front end for this protocol on a host channel (the guest
/// socket is served apart).
pub fn has_front_end(protocol: Protocol) -> bool {
    matches!(
        protocol,
        Protocol::Qga | Protocol::Vdagent | Protocol::Ovirt
    )
}
