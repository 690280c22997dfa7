//! Protocol front ends: wire messages in, vocabulary calls to the core, wire messages
//! out.

mod call;
pub mod guest_socket;
pub mod limits;
pub mod live;
pub mod noise;
pub mod ovirt;
pub mod qga;
pub mod vdagent;
