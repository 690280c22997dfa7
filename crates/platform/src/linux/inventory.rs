//! The Linux [`Inventory`]: each query delegates to the module that reads it.

use std::io;

use guestlink_core::platform::Inventory;
use guestlink_vocabulary::types::{
    GuestCpuStats, GuestDiskInfo, GuestDiskStatsInfo, GuestFilesystemInfo, GuestLoadAverage,
    GuestLogicalProcessor, GuestMemoryBlock, GuestNetworkInterface, GuestNetworkRoute,
    GuestlinkMemoryStats,
};

use crate::linux::{cpu_memory, net, packages, storage};

/// Inventory of this machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxInventory;

impl Inventory for LinuxInventory {
    fn filesystems(&self) -> io::Result<Vec<GuestFilesystemInfo>> {
        storage::filesystems()
    }
    fn filesystems_now(&self) -> Option<io::Result<Vec<GuestFilesystemInfo>>> {
        storage::filesystems_now()
    }
    fn disks(&self) -> io::Result<Vec<GuestDiskInfo>> {
        storage::disks()
    }
    fn disks_now(&self) -> Option<io::Result<Vec<GuestDiskInfo>>> {
        storage::disks_now()
    }
    fn disk_stats(&self) -> io::Result<Vec<GuestDiskStatsInfo>> {
        storage::disk_stats()
    }
    fn interfaces(&self) -> io::Result<Vec<GuestNetworkInterface>> {
        net::interfaces()
    }
    fn routes(&self) -> io::Result<Vec<GuestNetworkRoute>> {
        net::routes()
    }
    fn cpu_stats(&self) -> io::Result<Vec<GuestCpuStats>> {
        cpu_memory::cpu_stats()
    }
    fn load(&self) -> io::Result<GuestLoadAverage> {
        cpu_memory::load()
    }
    fn vcpus(&self) -> io::Result<Vec<GuestLogicalProcessor>> {
        cpu_memory::vcpus()
    }
    fn memory_blocks(&self) -> io::Result<Vec<GuestMemoryBlock>> {
        cpu_memory::memory_blocks()
    }
    fn memory_block_size(&self) -> io::Result<u64> {
        cpu_memory::memory_block_size()
    }
    fn memory_stats(&self) -> io::Result<GuestlinkMemoryStats> {
        cpu_memory::memory_stats()
    }
    fn applications(&self, names: &[String]) -> io::Result<Vec<String>> {
        packages::installed(names)
    }
    fn packages(&self) -> io::Result<Vec<guestlink_vocabulary::types::GuestlinkPackage>> {
        packages::all()
    }
}
