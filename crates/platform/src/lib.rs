//! Linux back ends for the platform traits of `guestlink-core`.
//!
//! - [`LinuxSystem`]: `uname(2)`, os-release (honouring `QGA_OS_RELEASE`), the host
//!   name, the local time zone and utmp login records.
//! - [`SystemClock`]: the real-time clock.

mod clock;
mod system;

use std::sync::Arc;

pub use clock::SystemClock;
use guestlink_core::Platform;
pub use system::LinuxSystem;

/// The platform of the machine this process runs on.
pub fn linux() -> Platform {
    Platform {
        system: Arc::new(LinuxSystem),
        clock: Arc::new(SystemClock),
    }
}
