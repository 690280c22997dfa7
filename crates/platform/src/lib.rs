//! The back ends of `guestlink-core`'s platform traits, one module per operating
//! system, side by side:
//!
//! - `linux/`: procfs and sysfs, ioctls, utmp, logind over a D-Bus client of its own,
//!   uinput ([`linux()`] builds the platform);
//! - `windows/`: Win32 through `windows-sys` (`windows()` builds the platform).
//!
//! What both share is here: [`SystemClock`].

mod clock;
#[cfg(not(windows))]
mod linux;
#[cfg(windows)]
pub mod windows;
/// The Windows back ends' pure rules, tested on the build host too.
#[cfg(all(test, not(windows)))]
#[path = "windows/rules.rs"]
mod windows_rules;

pub use clock::SystemClock;
#[cfg(not(windows))]
pub use linux::*;
#[cfg(windows)]
pub use windows::windows;
