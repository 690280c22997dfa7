//! Types of the CPU, memory, network, load, time and power commands.

qapi_struct! {
    /// A virtual CPU and whether it is online.
    pub struct GuestLogicalProcessor as "GuestLogicalProcessor" {
        /// CPU number.
        logical_id: i64 = "logical-id",
        /// Whether it is online.
        online: bool = "online",
        /// Whether it can be taken offline.
        can_offline: Option<bool> = "can-offline",
    }
}

qapi_struct! {
    /// Arguments of `guest-set-vcpus`.
    pub struct GuestSetVcpusArgs as "q_obj_guest-set-vcpus-arg" {
        /// The wanted state of each CPU, processed in order.
        vcpus: Vec<GuestLogicalProcessor> = "vcpus",
    }
}

qapi_struct! {
    /// A memory block and whether it is online.
    pub struct GuestMemoryBlock as "GuestMemoryBlock" {
        /// Block number (`memoryN`).
        phys_index: u64 = "phys-index",
        /// Whether it is online.
        online: bool = "online",
        /// Whether it can be taken offline.
        can_offline: Option<bool> = "can-offline",
    }
}

qapi_struct! {
    /// Arguments of `guest-set-memory-blocks`.
    pub struct GuestSetMemoryBlocksArgs as "q_obj_guest-set-memory-blocks-arg" {
        /// The wanted state of each block.
        mem_blks: Vec<GuestMemoryBlock> = "mem-blks",
    }
}

qapi_enum! {
    /// Outcome of changing one memory block.
    pub enum GuestMemoryBlockResponseType as "GuestMemoryBlockResponseType" {
        /// Done (or already so).
        Success = "success",
        /// No such block.
        NotFound = "not-found",
        /// The block cannot change state.
        OperationNotSupported = "operation-not-supported",
        /// The change failed; see `error-code`.
        OperationFailed = "operation-failed",
    }
}

qapi_struct! {
    /// One block's outcome in `guest-set-memory-blocks`.
    pub struct GuestMemoryBlockResponse as "GuestMemoryBlockResponse" {
        /// Block number.
        phys_index: u64 = "phys-index",
        /// Outcome.
        response: GuestMemoryBlockResponseType = "response",
        /// errno of a failure.
        error_code: Option<i64> = "error-code",
    }
}

qapi_struct! {
    /// The result of `guest-get-memory-block-info`.
    pub struct GuestMemoryBlockInfo as "GuestMemoryBlockInfo" {
        /// Size of one memory block in bytes.
        size: u64 = "size",
    }
}

qapi_enum! {
    /// IP version of an address.
    pub enum GuestIpAddressType as "GuestIpAddressType" {
        /// IPv4.
        Ipv4 = "ipv4",
        /// IPv6.
        Ipv6 = "ipv6",
    }
}

qapi_struct! {
    /// An address of an interface.
    pub struct GuestIpAddress as "GuestIpAddress" {
        /// The address.
        ip_address: String = "ip-address",
        /// Its version.
        ip_address_type: GuestIpAddressType = "ip-address-type",
        /// Prefix length.
        prefix: i64 = "prefix",
    }
}

qapi_struct! {
    /// Counters of an interface, from /proc/net/dev.
    pub struct GuestNetworkInterfaceStat as "GuestNetworkInterfaceStat" {
        /// Bytes received.
        rx_bytes: u64 = "rx-bytes",
        /// Packets received.
        rx_packets: u64 = "rx-packets",
        /// Receive errors.
        rx_errs: u64 = "rx-errs",
        /// Received packets dropped.
        rx_dropped: u64 = "rx-dropped",
        /// Bytes sent.
        tx_bytes: u64 = "tx-bytes",
        /// Packets sent.
        tx_packets: u64 = "tx-packets",
        /// Send errors.
        tx_errs: u64 = "tx-errs",
        /// Sent packets dropped.
        tx_dropped: u64 = "tx-dropped",
    }
}

qapi_struct! {
    /// A network interface.
    pub struct GuestNetworkInterface as "GuestNetworkInterface" {
        /// Interface name (aliases as `eth0:1`).
        name: String = "name",
        /// MAC address.
        hardware_address: Option<String> = "hardware-address",
        /// Addresses.
        ip_addresses: Option<Vec<GuestIpAddress>> = "ip-addresses",
        /// Counters.
        statistics: Option<GuestNetworkInterfaceStat> = "statistics",
    }
}

qapi_struct! {
    /// A route from /proc/net/route or /proc/net/ipv6_route.
    pub struct GuestNetworkRoute as "GuestNetworkRoute" {
        /// Interface.
        iface: String = "iface",
        /// Destination address.
        destination: String = "destination",
        /// Metric.
        metric: i64 = "metric",
        /// Gateway (IPv4).
        gateway: Option<String> = "gateway",
        /// Netmask (IPv4).
        mask: Option<String> = "mask",
        /// Initial round trip time (IPv4).
        irtt: Option<i64> = "irtt",
        /// Route flags.
        flags: Option<u64> = "flags",
        /// Reference count.
        refcnt: Option<i64> = "refcnt",
        /// Use count.
        use_: Option<i64> = "use",
        /// TCP window (IPv4).
        window: Option<i64> = "window",
        /// MTU (IPv4).
        mtu: Option<i64> = "mtu",
        /// Destination prefix length (IPv6, hex).
        desprefixlen: Option<String> = "desprefixlen",
        /// Source address (IPv6).
        source: Option<String> = "source",
        /// Source prefix length (IPv6, hex).
        srcprefixlen: Option<String> = "srcprefixlen",
        /// Next hop (IPv6).
        nexthop: Option<String> = "nexthop",
        /// 4 or 6.
        version: i64 = "version",
    }
}

qapi_enum! {
    /// Discriminator of `GuestCpuStats`.
    pub enum GuestCpuStatsType as "GuestCpuStatsType" {
        /// Linux /proc/stat counters.
        Linux = "linux",
    }
}

qapi_struct! {
    /// One CPU's time counters from /proc/stat, in milliseconds.
    pub struct GuestCpuStats as "GuestCpuStats" {
        /// Always `linux`.
        type_: GuestCpuStatsType = "type",
        /// CPU number.
        cpu: i64 = "cpu",
        /// User time.
        user: u64 = "user",
        /// Niced user time.
        nice: u64 = "nice",
        /// System time.
        system: u64 = "system",
        /// Idle time.
        idle: u64 = "idle",
        /// I/O wait.
        iowait: Option<u64> = "iowait",
        /// Interrupts.
        irq: Option<u64> = "irq",
        /// Soft interrupts.
        softirq: Option<u64> = "softirq",
        /// Stolen time.
        steal: Option<u64> = "steal",
        /// Guest time.
        guest: Option<u64> = "guest",
        /// Niced guest time.
        guestnice: Option<u64> = "guestnice",
    }
}

qapi_struct! {
    /// The result of `guest-get-load`.
    pub struct GuestLoadAverage as "GuestLoadAverage" {
        /// One-minute load average.
        load1m: f64 = "load1m",
        /// Five-minute load average.
        load5m: f64 = "load5m",
        /// Fifteen-minute load average.
        load15m: f64 = "load15m",
    }
}

qapi_struct! {
    /// The result of `__org.guestlink_get-memory-stats`: `/proc/meminfo` figures in KiB
    /// and `/proc/vmstat` counters since boot.
    pub struct GuestlinkMemoryStats as "GuestlinkMemoryStats" {
        /// MemTotal.
        total: i64 = "total",
        /// MemFree.
        free: i64 = "free",
        /// MemAvailable, when the kernel reports it.
        available: Option<i64> = "available",
        /// Buffers.
        buffers: i64 = "buffers",
        /// Cached.
        cached: i64 = "cached",
        /// SwapTotal.
        swap_total: i64 = "swap-total",
        /// SwapFree.
        swap_free: i64 = "swap-free",
        /// Pages swapped in (pswpin).
        swap_in: i64 = "swap-in",
        /// Pages swapped out (pswpout).
        swap_out: i64 = "swap-out",
        /// Page faults (pgfault).
        page_faults: i64 = "page-faults",
        /// Major page faults (pgmajfault).
        major_faults: i64 = "major-faults",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_get-applications`.
    pub struct GuestlinkApplicationsArgs as "q_obj___org.guestlink_get-applications-arg" {
        /// Package names to look for.
        names: Vec<String> = "names",
    }
}

qapi_struct! {
    /// An installed package, as the package manager's database has it.
    pub struct GuestlinkPackage as "GuestlinkPackage" {
        /// Its name.
        name: String = "name",
        /// Its version (dpkg's, or rpm's `[epoch:]version-release`).
        version: String = "version",
        /// Its architecture (`amd64`, `all`, `x86_64`, `noarch`, ...).
        arch: String = "arch",
    }
}

qapi_struct! {
    /// Arguments of `guest-set-time`.
    pub struct GuestSetTimeArgs as "q_obj_guest-set-time-arg" {
        /// Nanoseconds since the epoch; absent means set the clock from the RTC.
        time: Option<i64> = "time",
    }
}

qapi_struct! {
    /// Arguments of `guest-shutdown`.
    pub struct GuestShutdownArgs as "q_obj_guest-shutdown-arg" {
        /// `powerdown` (default), `halt` or `reboot`.
        mode: Option<String> = "mode",
    }
}

qapi_struct! {
    /// PCI ids of a device (Windows).
    pub struct GuestDeviceId as "GuestDeviceId" {
        /// Always `pci`.
        type_: String = "type",
        /// Vendor id.
        vendor_id: i64 = "vendor-id",
        /// Device id.
        device_id: i64 = "device-id",
    }
}

qapi_struct! {
    /// A device and its driver (Windows).
    pub struct GuestDeviceInfo as "GuestDeviceInfo" {
        /// Driver name.
        driver_name: String = "driver-name",
        /// Driver date, nanoseconds since the epoch.
        driver_date: Option<i64> = "driver-date",
        /// Driver version.
        driver_version: Option<String> = "driver-version",
        /// Device ids.
        id: Option<GuestDeviceId> = "id",
    }
}
