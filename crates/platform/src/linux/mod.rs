//! The Linux back ends.
//!
//! - [`LinuxSystem`]: `uname(2)`, os-release (honouring `QGA_OS_RELEASE`), the host
//!   name, the local time zone and utmp login records.
//! - [`LinuxInventory`]: filesystems and disks ([`storage`], over [`mounts`]), network
//!   ([`net`]), CPUs, memory and load ([`cpu_memory`]).
//! - [`LinuxFilesystems`]: FIFREEZE, FITHAW, FITRIM.
//! - [`LinuxMachine`]: power, clock, hotplug, passwords.
//! - [`LinuxAccounts`] — getpwnam.
//! - [`logind::Logind`]: locking and ending sessions; single sign-on ([`credentials`]);
//!   both over [`dbus`], a small client of its own.
//! - [`systemd::Systemd`]: system services, over the same client.

mod accounts;
pub mod cpu_memory;
pub mod credentials;
pub mod dbus;
mod filesystems;
mod grow;
mod inventory;
pub mod logind;
mod machine;
pub mod mounts;
pub mod net;
pub mod packages;
pub mod partition;
pub mod pointer;
mod processes;
pub mod storage;
pub mod sysfs;
mod system;
pub mod systemd;
pub mod uevent;

use std::sync::Arc;

pub use accounts::LinuxAccounts;
pub use filesystems::LinuxFilesystems;
use guestlink_core::Platform;
pub use inventory::LinuxInventory;
pub use machine::LinuxMachine;
pub use system::LinuxSystem;

use crate::SystemClock;

/// The platform of the machine this process runs on.
pub fn linux() -> Platform {
    Platform {
        system: Arc::new(LinuxSystem),
        clock: Arc::new(SystemClock),
        inventory: Arc::new(LinuxInventory),
        filesystems: Arc::new(LinuxFilesystems),
        machine: Arc::new(LinuxMachine),
        accounts: Arc::new(LinuxAccounts),
        session_manager: Arc::new(logind::Logind),
        processes: Arc::new(processes::LinuxProcesses),
        services: Arc::new(systemd::Systemd),
    }
}
