//! The few operating-system calls the core makes itself, one function per need, with a
//! Unix and a Windows body (`unix.rs`, `windows.rs`). Everything larger is a trait in
//! [`crate::platform`], implemented by `guestlink-platform`.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;
#[cfg(unix)]
pub mod users;
#[cfg(target_os = "linux")]
pub mod watch;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

/// The signal that asks a program to end (Unix's number; nothing to send on Windows).
pub const SIGTERM: i32 = 15;
/// The signal that ends a program at once (Unix's number; nothing to send on Windows).
pub const SIGKILL: i32 = 9;

/// The account streamed programs and shells run as when the host names none: root, or
/// on Windows the agent's own account (LocalSystem for the service).
#[cfg(unix)]
pub const DEFAULT_LIVE_USER: &str = "root";
/// The account streamed programs and shells run as when the host names none: root, or
/// on Windows the agent's own account (LocalSystem for the service).
#[cfg(windows)]
pub const DEFAULT_LIVE_USER: &str = "SYSTEM";

/// How the login shell is given one command: `sh -c`, `cmd /c`.
#[cfg(unix)]
pub const SHELL_COMMAND_FLAG: &str = "-c";
/// How the login shell is given one command: `sh -c`, `cmd /c`.
#[cfg(windows)]
pub const SHELL_COMMAND_FLAG: &str = "/c";
