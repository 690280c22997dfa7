//! Protocol front ends: wire messages in, vocabulary calls to the core, wire messages
//! out.

pub mod guest_socket;
pub mod qga;
pub mod vdagent;
