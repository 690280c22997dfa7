//! Types of the filesystem and storage commands: freeze, trim, fsinfo, disks,
//! diskstats.

qapi_enum! {
    /// Whether the agent has frozen filesystems.
    pub enum GuestFsfreezeStatus as "GuestFsfreezeStatus" {
        /// Not frozen.
        Thawed = "thawed",
        /// Frozen by `guest-fsfreeze-freeze`.
        Frozen = "frozen",
    }
}

qapi_struct! {
    /// Arguments of `guest-fsfreeze-freeze-list`.
    pub struct GuestFsfreezeFreezeListArgs as "q_obj_guest-fsfreeze-freeze-list-arg" {
        /// Mount points to freeze; all when absent. Unknown ones are ignored.
        mountpoints: Option<Vec<String>> = "mountpoints",
    }
}

qapi_struct! {
    /// Arguments of `guest-fstrim`.
    pub struct GuestFstrimArgs as "q_obj_guest-fstrim-arg" {
        /// Smallest free range to discard, in bytes; default 0.
        minimum: Option<i64> = "minimum",
    }
}

qapi_struct! {
    /// One mount's `guest-fstrim` outcome.
    pub struct GuestFilesystemTrimResult as "GuestFilesystemTrimResult" {
        /// Mount point.
        path: String = "path",
        /// Bytes trimmed.
        trimmed: Option<i64> = "trimmed",
        /// The minimum used.
        minimum: Option<i64> = "minimum",
        /// Why trimming failed.
        error: Option<String> = "error",
    }
}

qapi_struct! {
    /// The result of `guest-fstrim`.
    pub struct GuestFilesystemTrimResponse as "GuestFilesystemTrimResponse" {
        /// One entry per mount.
        paths: Vec<GuestFilesystemTrimResult> = "paths",
    }
}

qapi_struct! {
    /// A PCI address; -1 where unknown.
    pub struct GuestPCIAddress as "GuestPCIAddress" {
        /// PCI domain.
        domain: i64 = "domain",
        /// Bus.
        bus: i64 = "bus",
        /// Slot.
        slot: i64 = "slot",
        /// Function.
        function: i64 = "function",
    }
}

qapi_struct! {
    /// An s390 channel I/O address.
    pub struct GuestCCWAddress as "GuestCCWAddress" {
        /// Channel subsystem image id.
        cssid: i64 = "cssid",
        /// Subchannel set id.
        ssid: i64 = "ssid",
        /// Subchannel number.
        subchno: i64 = "subchno",
        /// Device number.
        devno: i64 = "devno",
    }
}

qapi_enum! {
    /// How a disk is attached.
    pub enum GuestDiskBusType as "GuestDiskBusType" {
        /// IDE.
        Ide = "ide",
        /// Floppy.
        Fdc = "fdc",
        /// SCSI.
        Scsi = "scsi",
        /// virtio-blk.
        Virtio = "virtio",
        /// Xen.
        Xen = "xen",
        /// USB.
        Usb = "usb",
        /// User-mode Linux.
        Uml = "uml",
        /// SATA.
        Sata = "sata",
        /// SD card.
        Sd = "sd",
        /// Unknown.
        Unknown = "unknown",
        /// FireWire.
        Ieee1394 = "ieee1394",
        /// SSA.
        Ssa = "ssa",
        /// Fibre channel.
        Fibre = "fibre",
        /// RAID.
        Raid = "raid",
        /// iSCSI.
        Iscsi = "iscsi",
        /// SAS.
        Sas = "sas",
        /// MMC.
        Mmc = "mmc",
        /// Virtual.
        Virtual = "virtual",
        /// File-backed virtual.
        FileBackedVirtual = "file-backed-virtual",
        /// NVMe.
        Nvme = "nvme",
    }
}

qapi_struct! {
    /// Where a disk sits: what libvirt matches against the domain's disks.
    pub struct GuestDiskAddress as "GuestDiskAddress" {
        /// The PCI controller's address.
        pci_controller: GuestPCIAddress = "pci-controller",
        /// Bus type.
        bus_type: GuestDiskBusType = "bus-type",
        /// Bus number (SCSI host channel, IDE bus).
        bus: i64 = "bus",
        /// Target.
        target: i64 = "target",
        /// Unit (LUN).
        unit: i64 = "unit",
        /// Serial number.
        serial: Option<String> = "serial",
        /// Device node.
        dev: Option<String> = "dev",
        /// s390 address.
        ccw_address: Option<GuestCCWAddress> = "ccw-address",
    }
}

qapi_struct! {
    /// A mounted filesystem.
    pub struct GuestFilesystemInfo as "GuestFilesystemInfo" {
        /// Kernel name of the device (e.g. `vda1`, `dm-0`).
        name: String = "name",
        /// Mount point.
        mountpoint: String = "mountpoint",
        /// Filesystem type.
        type_: String = "type",
        /// Bytes used.
        used_bytes: Option<u64> = "used-bytes",
        /// Bytes available to unprivileged users plus used.
        total_bytes: Option<u64> = "total-bytes",
        /// Total size including reserved blocks.
        total_bytes_privileged: Option<u64> = "total-bytes-privileged",
        /// The disks under it.
        disk: Vec<GuestDiskAddress> = "disk",
    }
}

qapi_struct! {
    /// Health data of a disk; NVMe members only for `type: nvme`.
    pub struct GuestDiskSmart as "GuestDiskSmart" {
        /// The disk's bus type (the union's discriminator).
        type_: GuestDiskBusType = "type",
        /// NVMe critical warning bits.
        critical_warning: Option<i64> = "critical-warning",
        /// Temperature in kelvin.
        temperature: Option<i64> = "temperature",
        /// Available spare, percent.
        available_spare: Option<i64> = "available-spare",
        /// Spare threshold, percent.
        available_spare_threshold: Option<i64> = "available-spare-threshold",
        /// Life used, percent.
        percentage_used: Option<i64> = "percentage-used",
        /// Data units read (low 64 bits).
        data_units_read_lo: Option<u64> = "data-units-read-lo",
        /// Data units read (high 64 bits).
        data_units_read_hi: Option<u64> = "data-units-read-hi",
        /// Data units written (low).
        data_units_written_lo: Option<u64> = "data-units-written-lo",
        /// Data units written (high).
        data_units_written_hi: Option<u64> = "data-units-written-hi",
        /// Host read commands (low).
        host_read_commands_lo: Option<u64> = "host-read-commands-lo",
        /// Host read commands (high).
        host_read_commands_hi: Option<u64> = "host-read-commands-hi",
        /// Host write commands (low).
        host_write_commands_lo: Option<u64> = "host-write-commands-lo",
        /// Host write commands (high).
        host_write_commands_hi: Option<u64> = "host-write-commands-hi",
        /// Controller busy time (low).
        controller_busy_time_lo: Option<u64> = "controller-busy-time-lo",
        /// Controller busy time (high).
        controller_busy_time_hi: Option<u64> = "controller-busy-time-hi",
        /// Power cycles (low).
        power_cycles_lo: Option<u64> = "power-cycles-lo",
        /// Power cycles (high).
        power_cycles_hi: Option<u64> = "power-cycles-hi",
        /// Power-on hours (low).
        power_on_hours_lo: Option<u64> = "power-on-hours-lo",
        /// Power-on hours (high).
        power_on_hours_hi: Option<u64> = "power-on-hours-hi",
        /// Unsafe shutdowns (low).
        unsafe_shutdowns_lo: Option<u64> = "unsafe-shutdowns-lo",
        /// Unsafe shutdowns (high).
        unsafe_shutdowns_hi: Option<u64> = "unsafe-shutdowns-hi",
        /// Media errors (low).
        media_errors_lo: Option<u64> = "media-errors-lo",
        /// Media errors (high).
        media_errors_hi: Option<u64> = "media-errors-hi",
        /// Error log entries (low).
        number_of_error_log_entries_lo: Option<u64> = "number-of-error-log-entries-lo",
        /// Error log entries (high).
        number_of_error_log_entries_hi: Option<u64> = "number-of-error-log-entries-hi",
    }
}

qapi_struct! {
    /// A block device: a whole disk, a partition or a virtual device (dm, md).
    pub struct GuestDiskInfo as "GuestDiskInfo" {
        /// Device node, e.g. `/dev/vda`.
        name: String = "name",
        /// Whether it is a partition.
        partition: bool = "partition",
        /// Device nodes it is built on.
        dependencies: Option<Vec<String>> = "dependencies",
        /// Its address, for physical disks.
        address: Option<GuestDiskAddress> = "address",
        /// Device-mapper name, for dm devices.
        alias: Option<String> = "alias",
        /// Health data.
        smart: Option<GuestDiskSmart> = "smart",
    }
}

qapi_struct! {
    /// I/O counters of a block device, as in /proc/diskstats.
    pub struct GuestDiskStats as "GuestDiskStats" {
        /// Sectors read.
        read_sectors: Option<u64> = "read-sectors",
        /// Reads completed.
        read_ios: Option<u64> = "read-ios",
        /// Reads merged.
        read_merges: Option<u64> = "read-merges",
        /// Sectors written.
        write_sectors: Option<u64> = "write-sectors",
        /// Writes completed.
        write_ios: Option<u64> = "write-ios",
        /// Writes merged.
        write_merges: Option<u64> = "write-merges",
        /// Sectors discarded.
        discard_sectors: Option<u64> = "discard-sectors",
        /// Discards completed.
        discard_ios: Option<u64> = "discard-ios",
        /// Discards merged.
        discard_merges: Option<u64> = "discard-merges",
        /// Flushes completed.
        flush_ios: Option<u64> = "flush-ios",
        /// Milliseconds reading.
        read_ticks: Option<u64> = "read-ticks",
        /// Milliseconds writing.
        write_ticks: Option<u64> = "write-ticks",
        /// Milliseconds discarding.
        discard_ticks: Option<u64> = "discard-ticks",
        /// Milliseconds flushing.
        flush_ticks: Option<u64> = "flush-ticks",
        /// I/Os in progress.
        ios_pgr: Option<u64> = "ios-pgr",
        /// Milliseconds doing I/O.
        total_ticks: Option<u64> = "total-ticks",
        /// Weighted milliseconds doing I/O.
        weight_ticks: Option<u64> = "weight-ticks",
    }
}

qapi_struct! {
    /// One device's counters.
    pub struct GuestDiskStatsInfo as "GuestDiskStatsInfo" {
        /// Kernel device name.
        name: String = "name",
        /// Major number.
        major: u64 = "major",
        /// Minor number.
        minor: u64 = "minor",
        /// Counters.
        stats: GuestDiskStats = "stats",
    }
}
