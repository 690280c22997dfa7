//! The Windows back ends, through `windows-sys`:
//!
//! - [`WindowsSystem`]: the version (`RtlGetVersion`) and edition (the registry) as
//!   qemu-ga reports them, the computer name, the time zone, WTS sessions;
//! - [`WindowsInventory`]: adapters with their counters (IP Helper), processors,
//!   volumes and the disks under them with their buses (`disks.rs`), PCI devices and
//!   drivers (SetupAPI), an emulated load average (`load.rs`);
//! - [`WindowsFilesystems`]: fixed volumes, trimmed by `defrag.exe /L` as qemu-ga does;
//! - [`WindowsMachine`]: shutdown and suspend with the privileges they need, the
//!   clock, passwords (`NetUserSetInfo`);
//! - [`WindowsAccounts`]: local accounts and their profiles;
//! - `processes.rs`: the programs of live streams (pipes, the agent's own account);
//! - `services.rs`: services through the service control manager;
//! - `unsupported.rs`: what has no Windows back end yet (acting on sessions), saying so;
//!   freezing (VSS) is refused by [`WindowsFilesystems`].
//!
//! The parts that decide something from what Windows returns (the version table,
//! address formatting, counters, device ids) are plain functions, tested on any host.

mod accounts;
mod devices;
mod disks;
mod filesystems;
mod inventory;
mod load;
mod machine;
mod privilege;
mod processes;
pub mod rules;
mod services;
mod system;
mod unsupported;
mod volumes;
mod wide;

use std::sync::Arc;

use guestlink_core::Platform;

pub use accounts::WindowsAccounts;
pub use filesystems::WindowsFilesystems;
pub use inventory::WindowsInventory;
pub use machine::WindowsMachine;
pub use system::WindowsSystem;

use crate::SystemClock;

/// The platform of the machine this process runs on.
pub fn windows() -> Platform {
    load::start();
    Platform {
        system: Arc::new(WindowsSystem),
        clock: Arc::new(SystemClock),
        inventory: Arc::new(WindowsInventory),
        filesystems: Arc::new(filesystems::WindowsFilesystems),
        machine: Arc::new(WindowsMachine),
        accounts: Arc::new(WindowsAccounts),
        session_manager: Arc::new(unsupported::NoSessions),
        processes: Arc::new(processes::WindowsProcesses),
        services: Arc::new(services::WindowsServices),
    }
}
