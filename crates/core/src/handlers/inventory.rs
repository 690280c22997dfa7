//! Read-only inventory: filesystems, disks, disk counters, network, CPUs, memory,
//! load. The platform gathers the data; these handlers only word the failures.

use std::io;

use guestlink_vocabulary::commands::{
    GuestGetCpustats, GuestGetDevices, GuestGetDisks, GuestGetDiskstats, GuestGetFsinfo,
    GuestGetLoad, GuestGetMemoryBlockInfo, GuestGetMemoryBlocks, GuestGetVcpus,
    GuestNetworkGetInterfaces, GuestNetworkGetRoute, GuestlinkGetApplications,
    GuestlinkGetMemoryStats, GuestlinkGetPackages,
};
use guestlink_vocabulary::types::{
    Empty, GuestCpuStats, GuestDeviceInfo, GuestDiskInfo, GuestDiskStatsInfo, GuestFilesystemInfo,
    GuestLoadAverage, GuestLogicalProcessor, GuestMemoryBlock, GuestMemoryBlockInfo,
    GuestNetworkInterface, GuestNetworkRoute, GuestlinkApplicationsArgs, GuestlinkMemoryStats,
    GuestlinkPackage,
};

use super::file::with_errno;
use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;
use crate::limits::APPLICATIONS;
use crate::platform::Inventory;

/// Runs an inventory query on the async thread: for the kernel's own figures
/// (/proc/stat, /proc/loadavg, CPU and memory sysfs, netlink), which never wait for a
/// device, so that the cheapest commands cost no thread hand-off.
fn query_now<T>(
    ctx: &Context<'_>,
    what: &'static str,
    f: impl FnOnce(&dyn Inventory) -> io::Result<T>,
) -> Result<T, CommandError> {
    f(&*ctx.agent.platform().inventory)
        .map_err(|e| with_errno(format!("failed to read {what}"), &e))
}

/// Runs an inventory query that may wait for a device or a daemon (a filesystem's
/// size, a disk's serial number): on the async thread when `now` can answer without
/// waiting, else off it, so that a hung device never stalls the agent.
async fn query<T: Send + 'static>(
    ctx: &Context<'_>,
    what: &'static str,
    now: impl FnOnce(&dyn Inventory) -> Option<io::Result<T>>,
    f: impl FnOnce(&dyn Inventory) -> io::Result<T> + Send + 'static,
) -> Result<T, CommandError> {
    let inv = ctx.agent.platform().inventory.clone();
    let found = match now(&*inv) {
        Some(found) => found,
        None => super::off_thread(move || f(&*inv)).await?,
    };
    found.map_err(|e| with_errno(format!("failed to read {what}"), &e))
}

impl Handler for GuestGetFsinfo {
    async fn handle(
        ctx: Context<'_>,
        _args: Empty,
    ) -> Result<Vec<GuestFilesystemInfo>, CommandError> {
        query(
            &ctx,
            "filesystems",
            |i| i.filesystems_now(),
            |i| i.filesystems(),
        )
        .await
    }
}

impl Handler for GuestGetDisks {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<Vec<GuestDiskInfo>, CommandError> {
        query(&ctx, "disks", |i| i.disks_now(), |i| i.disks()).await
    }
}

impl Handler for GuestGetDiskstats {
    async fn handle(
        ctx: Context<'_>,
        _args: Empty,
    ) -> Result<Vec<GuestDiskStatsInfo>, CommandError> {
        query_now(&ctx, "/proc/diskstats", |i| i.disk_stats())
    }
}

impl Handler for GuestNetworkGetInterfaces {
    async fn handle(
        ctx: Context<'_>,
        _args: Empty,
    ) -> Result<Vec<GuestNetworkInterface>, CommandError> {
        query_now(&ctx, "network interfaces", |i| i.interfaces())
    }
}

impl Handler for GuestNetworkGetRoute {
    async fn handle(
        ctx: Context<'_>,
        _args: Empty,
    ) -> Result<Vec<GuestNetworkRoute>, CommandError> {
        query_now(&ctx, "routes", |i| i.routes())
    }
}

impl Handler for GuestGetCpustats {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<Vec<GuestCpuStats>, CommandError> {
        query_now(&ctx, "/proc/stat", |i| i.cpu_stats())
    }
}

impl Handler for GuestGetLoad {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<GuestLoadAverage, CommandError> {
        query_now(&ctx, "load average", |i| i.load())
    }
}

impl Handler for GuestGetVcpus {
    async fn handle(
        ctx: Context<'_>,
        _args: Empty,
    ) -> Result<Vec<GuestLogicalProcessor>, CommandError> {
        query_now(&ctx, "CPUs", |i| i.vcpus())
    }
}

impl Handler for GuestGetMemoryBlocks {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<Vec<GuestMemoryBlock>, CommandError> {
        query_now(&ctx, "memory blocks", |i| i.memory_blocks())
    }
}

impl Handler for GuestGetMemoryBlockInfo {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<GuestMemoryBlockInfo, CommandError> {
        let size = query_now(&ctx, "memory block size", |i| i.memory_block_size())?;
        Ok(GuestMemoryBlockInfo { size })
    }
}

/// Declared for Windows only, so never in a Linux agent's table.
impl Handler for GuestGetDevices {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<Vec<GuestDeviceInfo>, CommandError> {
        query(&ctx, "devices", |_| None, |i| i.devices()).await
    }
}

impl Handler for GuestlinkGetMemoryStats {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<GuestlinkMemoryStats, CommandError> {
        query_now(&ctx, "/proc/meminfo", |i| i.memory_stats())
    }
}

impl Handler for GuestlinkGetPackages {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<Vec<GuestlinkPackage>, CommandError> {
        query(&ctx, "the package database", |_| None, |i| i.packages()).await
    }
}

impl Handler for GuestlinkGetApplications {
    async fn handle(
        ctx: Context<'_>,
        args: GuestlinkApplicationsArgs,
    ) -> Result<Vec<String>, CommandError> {
        if args.names.len() > APPLICATIONS {
            return Err(CommandError::new(format!(
                "{} package names is more than the limit applications ({APPLICATIONS})",
                args.names.len()
            )));
        }
        // A package database is a file that may be large: always off the async thread.
        query(
            &ctx,
            "the package database",
            |_| None,
            move |i| i.applications(&args.names),
        )
        .await
    }
}
