//! Types of resize automation: CPUs and memory hot-added to the guest, disks grown
//! under it (`CPU_ADDED`, `MEMORY_ADDED`, `DISK_RESIZED`), and `__org.guestlink_grow`,
//! which grows a partition and its file system to fill the disk.

qapi_struct! {
    /// Data of the `CPU_ADDED` event.
    pub struct GuestlinkCpuAdded as "__org.guestlink_CpuAdded" {
        /// The CPU's logical id (`cpuN`).
        logical_id: i64 = "logical-id",
        /// Whether it is online now (the agent onlines it unless told not to).
        online: bool = "online",
        /// Why onlining it failed.
        error: Option<String> = "error",
    }
}

qapi_struct! {
    /// Data of the `MEMORY_ADDED` event: one memory block.
    pub struct GuestlinkMemoryAdded as "__org.guestlink_MemoryAdded" {
        /// The block's physical index (`memoryN`).
        phys_index: u64 = "phys-index",
        /// The block's size in bytes.
        size: u64 = "size",
        /// Whether it is online now (the agent onlines it unless told not to).
        online: bool = "online",
        /// Why onlining it failed.
        error: Option<String> = "error",
    }
}

qapi_struct! {
    /// Data of the `DISK_RESIZED` event.
    pub struct GuestlinkDiskResized as "__org.guestlink_DiskResized" {
        /// The disk's kernel name (`vdb`).
        name: String = "name",
        /// Its new size in bytes.
        size: u64 = "size",
        /// The mount points grown with it (with the agent's automatic growing on).
        grown: Vec<GuestlinkGrown> = "grown",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_grow`.
    pub struct GuestlinkGrowArgs as "q_obj___org.guestlink_grow-arg" {
        /// A mount point, or any path on the file system to grow.
        path: String = "path",
    }
}

qapi_struct! {
    /// What `__org.guestlink_grow` did.
    pub struct GuestlinkGrown as "__org.guestlink_Grown" {
        /// The mount point.
        mountpoint: String = "mountpoint",
        /// The block device mounted there (`/dev/vda1`).
        device: String = "device",
        /// The file system type (`ext4`, `xfs`).
        fstype: String = "fstype",
        /// The partition's size before, in bytes (the device's, when it is a whole
        /// disk).
        old_size: u64 = "old-size",
        /// Its size now.
        new_size: u64 = "new-size",
        /// Whether the partition table was changed.
        partition_grown: bool = "partition-grown",
        /// Whether the file system was grown to the partition's size.
        filesystem_grown: bool = "filesystem-grown",
    }
}
