//! A conformance suite for QEMU Guest Agent implementations.
//!
//! The cases are QEMU's own agent tests (`tests/unit/test-qga.c`, T01–T29), the SSH
//! key unit tests (S1–S6) and cases derived from observed qemu-ga behaviour that real
//! clients depend on (X1–X22), written anew from the protocol facts. They speak raw
//! bytes over a stream socket, so the same suite runs against:
//! - an agent binary the suite starts itself ([`Target::Launch`]): every case applies,
//!   including those that need their own instance (`-b`, `-a`, `-D`, an empty
//!   environment) and out-of-band checks of files in the agent's working directory;
//! - an agent already running behind a socket ([`Target::Socket`]), such as the host
//!   end of a VM's virtio-serial port: the cases that need to start an instance are
//!   reported as not applicable, never silently dropped.
//!
//! Cases that change the machine (SSH keys of the agent's user) run only when the
//! caller says the guest is disposable.

#![forbid(unsafe_code)]

pub mod cases;
pub mod conn;
pub mod launcher;
pub mod runner;

pub use conn::Conn;
pub use launcher::{Instance, Launcher};
pub use runner::{run, Outcome, Report, Target};

/// Why a case failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

/// Fails the case with a formatted message unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::Failure(format!($($msg)+)));
        }
    };
}
