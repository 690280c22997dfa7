//! The few operating-system calls the core makes itself, one function per need, with a
//! Unix and a Windows body (`unix.rs`, `windows.rs`). Everything larger is a trait in
//! [`crate::platform`], implemented by `guestlink-platform`.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

/// The signal that asks a program to end (Unix's number; nothing to send on Windows).
pub const SIGTERM: i32 = 15;
/// The signal that ends a program at once (Unix's number; nothing to send on Windows).
pub const SIGKILL: i32 = 9;
