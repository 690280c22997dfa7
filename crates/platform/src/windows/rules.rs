//! What guestlinkd decides from what Windows returns, apart from the calls: the
//! release table of `guest-get-osinfo`, time conversions, address formatting, device
//! ids. Plain functions, so they are tested on any host (the crate's tests include
//! this file on Linux too).

/// The running Windows: version numbers and whether it is a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// Major version (10 for Windows 10, 11 and Server 2016 on).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Build number.
    pub build: u32,
    /// A server edition.
    pub server: bool,
}

/// qemu-ga's name and id of a release, e.g. ("Microsoft Windows 10", "10") or
/// ("Microsoft Windows Server 2019", "2019").
pub fn release_name(v: Version) -> (String, String) {
    let (name, id) = match (v.major, v.minor, v.server) {
        (5, 0, _) => ("Windows 2000", "2000"),
        (5, 1, false) => ("Windows XP", "xp"),
        (5, 2, true) => ("Windows Server 2003", "2003"),
        (6, 0, false) => ("Windows Vista", "vista"),
        (6, 0, true) => ("Windows Server 2008", "2008"),
        (6, 1, false) => ("Windows 7", "7"),
        (6, 1, true) => ("Windows Server 2008 R2", "2008r2"),
        (6, 2, false) => ("Windows 8", "8"),
        (6, 2, true) => ("Windows Server 2012", "2012"),
        (6, 3, false) => ("Windows 8.1", "8.1"),
        (6, 3, true) => ("Windows Server 2012 R2", "2012r2"),
        (10, 0, false) if v.build >= 22000 => ("Windows 11", "11"),
        (10, 0, false) => ("Windows 10", "10"),
        (10, 0, true) if v.build >= 26100 => ("Windows Server 2025", "2025"),
        (10, 0, true) if v.build >= 20344 => ("Windows Server 2022", "2022"),
        (10, 0, true) if v.build >= 17763 => ("Windows Server 2019", "2019"),
        (10, 0, true) => ("Windows Server 2016", "2016"),
        _ => {
            return (
                format!("Microsoft Windows {}.{}", v.major, v.minor),
                format!("{}.{}", v.major, v.minor),
            )
        }
    };
    (format!("Microsoft {name}"), id.to_string())
}

/// The product name as users know it: the registry's, with Windows 11 named so.
pub fn pretty_name(product: &str, v: Version) -> String {
    if !v.server && v.major == 10 && v.build >= 22000 {
        product.replacen("Windows 10", "Windows 11", 1)
    } else {
        product.to_string()
    }
}

/// The facts of `guest-get-osinfo` as os-release text.
pub fn os_release_text(v: Version, product: Option<&str>) -> String {
    let (version, version_id) = release_name(v);
    let variant = if v.server { "server" } else { "client" };
    let mut text = format!(
        "ID=mswindows\nNAME=\"Microsoft Windows\"\nVERSION=\"{version}\"\nVERSION_ID=\"{version_id}\"\nVARIANT={variant}\nVARIANT_ID={variant}\n"
    );
    if let Some(p) = product {
        text.push_str(&format!(
            "PRETTY_NAME=\"{}\"\n",
            pretty_name(p, v).replace('"', "")
        ));
    }
    text
}

/// Seconds since the Unix epoch of a FILETIME (100 ns units since 1601).
pub fn filetime_to_unix(ft: i64) -> f64 {
    const EPOCH_DIFF: i64 = 116_444_736_000_000_000;
    (ft - EPOCH_DIFF) as f64 / 1e7
}

/// A hardware address as qemu-ga writes it (`52:54:00:12:34:56`); none when empty.
pub fn mac_address(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return None;
    }
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(parts.join(":"))
}

/// The address in a raw `SOCKADDR` (family in the first two bytes, little-endian:
/// 2 for IPv4, 23 for IPv6).
pub fn sockaddr_ip(raw: &[u8]) -> Option<std::net::IpAddr> {
    let family = u16::from_le_bytes([*raw.first()?, *raw.get(1)?]);
    match family {
        2 => {
            let b: [u8; 4] = raw.get(4..8)?.try_into().ok()?;
            Some(std::net::Ipv4Addr::from(b).into())
        }
        23 => {
            let b: [u8; 16] = raw.get(8..24)?.try_into().ok()?;
            Some(std::net::Ipv6Addr::from(b).into())
        }
        _ => None,
    }
}

/// A Unix time as a FILETIME (100 ns units since 1601).
pub fn unix_to_filetime(secs: i64, micros: i64) -> u64 {
    const EPOCH_DIFF: i64 = 116_444_736_000_000_000;
    (secs * 10_000_000 + micros * 10 + EPOCH_DIFF) as u64
}

/// The text of a NetAPI status, as qemu-ga words the common ones.
pub fn net_api_error(status: u32) -> String {
    match status {
        5 => "Access is denied.".into(),
        86 => "The specified network password is not correct.".into(),
        2221 => "The user name could not be found.".into(),
        2245 => "The password does not meet the password policy requirements.".into(),
        other => format!("error {other}"),
    }
}

/// The vendor and device ids of a PCI hardware id (`PCI\VEN_1AF4&DEV_1003&SUBSYS_...`).
pub fn pci_ids(hardware_id: &str) -> Option<(u16, u16)> {
    let rest = hardware_id.strip_prefix("PCI\\")?;
    let mut vendor = None;
    let mut device = None;
    for part in rest.split('&') {
        if let Some(v) = part.strip_prefix("VEN_") {
            vendor = u16::from_str_radix(v, 16).ok();
        } else if let Some(d) = part.strip_prefix("DEV_") {
            device = u16::from_str_radix(d, 16).ok();
        }
    }
    Some((vendor?, device?))
}

/// Seconds between two load samples (Linux's and qemu-ga's).
pub const LOAD_PERIOD_SECS: u64 = 5;

/// Cumulative processor times (100 ns units), as `GetSystemTimes` gives them: kernel
/// time includes idle time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    /// Idle.
    pub idle: u64,
    /// Kernel, idle included.
    pub kernel: u64,
    /// User.
    pub user: u64,
}

/// The fraction of processor time spent working between two readings.
pub fn busy_fraction(a: CpuTimes, b: CpuTimes) -> f64 {
    let total = (b.kernel + b.user).saturating_sub(a.kernel + a.user);
    let idle = b.idle.saturating_sub(a.idle);
    if total == 0 {
        return 0.0;
    }
    (total.saturating_sub(idle)) as f64 / total as f64
}

/// One step of the 1, 5 and 15 minute averages with a new sample, as Linux decays them.
pub fn decay_loads(loads: [f64; 3], sample: f64) -> [f64; 3] {
    let period = LOAD_PERIOD_SECS as f64;
    let mut out = loads;
    for (l, minutes) in out.iter_mut().zip([1.0f64, 5.0, 15.0]) {
        let e = (-period / (minutes * 60.0)).exp();
        *l = *l * e + sample * (1.0 - e);
    }
    out
}

/// The bus of a disk as QGA names it, from Windows' `STORAGE_BUS_TYPE` (qemu-ga's table).
pub fn bus_type(code: u32) -> guestlink_vocabulary::types::GuestDiskBusType {
    use guestlink_vocabulary::types::GuestDiskBusType as B;
    match code {
        1 => B::Scsi,
        2 | 3 => B::Ide,
        4 => B::Ieee1394,
        5 => B::Ssa,
        6 => B::Fibre,
        7 => B::Usb,
        8 => B::Raid,
        9 => B::Iscsi,
        10 => B::Sas,
        11 => B::Sata,
        12 => B::Sd,
        13 => B::Mmc,
        14 => B::Virtual,
        15 => B::FileBackedVirtual,
        17 => B::Nvme,
        _ => B::Unknown,
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The bus type and serial number in a `STORAGE_DEVICE_DESCRIPTOR` (the reply to
/// `IOCTL_STORAGE_QUERY_PROPERTY`); offsets outside the reply are ignored.
pub fn device_descriptor(b: &[u8]) -> Option<(u32, Option<String>)> {
    let bus = u32_at(b, 28)?;
    let serial = match u32_at(b, 24)? as usize {
        0 => None,
        at => b.get(at..).and_then(|rest| {
            let end = rest.iter().position(|&c| c == 0)?;
            let text = String::from_utf8_lossy(&rest[..end]).trim().to_string();
            (!text.is_empty()).then_some(text)
        }),
    };
    Some((bus, serial))
}

/// The disk numbers in a `VOLUME_DISK_EXTENTS` (the reply to
/// `IOCTL_VOLUME_GET_VOLUME_DISK_EXTENTS`).
pub fn volume_disks(b: &[u8]) -> Vec<u32> {
    let n = u32_at(b, 0).unwrap_or(0) as usize;
    (0..n).filter_map(|i| u32_at(b, 8 + 24 * i)).collect()
}

/// systemd's words for the state of a Windows service (`dwCurrentState`, and the exit
/// code of a stopped one): (active-state, sub-state). A service that stopped with an
/// error is `failed`, as a unit whose process failed is; one never started has the
/// exit code ERROR_SERVICE_NEVER_STARTED and is only `inactive`.
pub fn service_state(state: u32, exit_code: u32) -> (&'static str, &'static str) {
    const ERROR_SERVICE_NEVER_STARTED: u32 = 1077;
    match state {
        1 if exit_code != 0 && exit_code != ERROR_SERVICE_NEVER_STARTED => ("failed", "stopped"),
        1 => ("inactive", "stopped"),
        2 => ("activating", "start-pending"),
        3 => ("deactivating", "stop-pending"),
        4 => ("active", "running"),
        5 => ("activating", "continue-pending"),
        6 => ("deactivating", "pause-pending"),
        7 => ("active", "paused"),
        _ => ("unknown", "unknown"),
    }
}

/// systemd's unit-file state for a Windows start type: started at boot (automatic,
/// boot, system) is `enabled`; on demand (manual) is `disabled`, as `systemctl disable`
/// leaves a unit that can still be started; Windows' Disabled, which refuses every
/// start, is `masked`.
pub fn start_type_state(start_type: u32) -> &'static str {
    match start_type {
        0..=2 => "enabled",
        3 => "disabled",
        4 => "masked",
        _ => "unknown",
    }
}

/// A Windows service name as the service control manager takes it: at most 256
/// characters, no slashes or backslashes, no control characters. Names are not
/// case-sensitive for Windows, but the policy's patterns are: a different spelling is
/// refused there, never let through.
pub fn service_name(name: &str) -> Result<String, String> {
    let valid = !name.is_empty()
        && name.chars().count() <= 256
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control);
    if valid {
        Ok(name.to_string())
    } else {
        Err(format!("invalid service name '{}'", name.escape_debug()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32, build: u32, server: bool) -> Version {
        Version {
            major,
            minor,
            build,
            server,
        }
    }

    #[test]
    fn releases_are_named_as_qemu_ga_names_them() {
        let name = |x| release_name(x);
        assert_eq!(
            name(v(10, 0, 19045, false)),
            ("Microsoft Windows 10".into(), "10".into())
        );
        assert_eq!(
            name(v(10, 0, 22631, false)),
            ("Microsoft Windows 11".into(), "11".into())
        );
        assert_eq!(
            name(v(10, 0, 17763, true)),
            ("Microsoft Windows Server 2019".into(), "2019".into())
        );
        assert_eq!(name(v(10, 0, 14393, true)).1, "2016");
        assert_eq!(name(v(10, 0, 20348, true)).1, "2022");
        assert_eq!(name(v(10, 0, 26100, true)).1, "2025");
        assert_eq!(name(v(6, 1, 7601, false)).1, "7");
        assert_eq!(name(v(6, 3, 9600, true)).1, "2012r2");
        assert_eq!(name(v(12, 1, 1, false)).1, "12.1");
    }

    #[test]
    fn windows_11_is_called_so_whatever_the_registry_says() {
        assert_eq!(
            pretty_name("Windows 10 Pro", v(10, 0, 22631, false)),
            "Windows 11 Pro"
        );
        assert_eq!(
            pretty_name("Windows 10 Pro", v(10, 0, 19045, false)),
            "Windows 10 Pro"
        );
        let text = os_release_text(v(10, 0, 17763, true), Some("Windows Server 2019 Standard"));
        assert!(text.contains("ID=mswindows\n"), "{text}");
        assert!(text.contains("VARIANT_ID=server\n"), "{text}");
        assert!(
            text.contains("PRETTY_NAME=\"Windows Server 2019 Standard\"\n"),
            "{text}"
        );
        assert!(
            text.contains("VERSION=\"Microsoft Windows Server 2019\"\n"),
            "{text}"
        );
    }

    #[test]
    fn filetimes_become_unix_seconds() {
        assert_eq!(filetime_to_unix(116_444_736_000_000_000), 0.0);
        assert_eq!(filetime_to_unix(116_444_736_015_000_000), 1.5);
    }

    #[test]
    fn addresses_are_read_and_written_as_qemu_ga_does() {
        assert_eq!(
            mac_address(&[0x52, 0x54, 0, 0x12, 0xab, 0x56]).unwrap(),
            "52:54:00:12:ab:56"
        );
        assert_eq!(mac_address(&[]), None);
        let mut v4 = vec![2, 0, 0, 80, 10, 0, 2, 15];
        v4.extend([0; 8]);
        assert_eq!(sockaddr_ip(&v4).unwrap().to_string(), "10.0.2.15");
        let mut v6 = vec![23, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0x80];
        v6.extend([0; 13]);
        v6.push(1);
        v6.extend([0; 4]);
        assert_eq!(sockaddr_ip(&v6).unwrap().to_string(), "fe80::1");
        assert_eq!(sockaddr_ip(&[2, 0, 1]), None, "short");
        assert_eq!(
            sockaddr_ip(&[1, 0, 0, 0, 0, 0, 0, 0]),
            None,
            "unknown family"
        );
    }

    #[test]
    fn times_and_net_errors() {
        assert_eq!(unix_to_filetime(0, 0), 116_444_736_000_000_000);
        assert_eq!(
            filetime_to_unix(unix_to_filetime(1_700_000_000, 500_000) as i64),
            1_700_000_000.5
        );
        assert_eq!(net_api_error(2221), "The user name could not be found.");
        assert_eq!(net_api_error(1), "error 1");
    }

    #[test]
    fn pci_hardware_ids() {
        assert_eq!(
            pci_ids(r"PCI\VEN_1AF4&DEV_1003&SUBSYS_00031AF4&REV_00"),
            Some((0x1af4, 0x1003))
        );
        assert_eq!(pci_ids(r"PCI\VEN_8086&DEV_7010"), Some((0x8086, 0x7010)));
        assert_eq!(pci_ids(r"USB\VID_0627&PID_0001"), None);
        assert_eq!(pci_ids(r"PCI\VEN_ZZZZ&DEV_1000"), None);
    }

    #[test]
    fn load_averages_decay_as_linux_does() {
        let t = |idle, kernel, user| CpuTimes { idle, kernel, user };
        assert_eq!(busy_fraction(t(0, 0, 0), t(50, 100, 100)), 0.75);
        assert_eq!(busy_fraction(t(0, 0, 0), t(0, 0, 0)), 0.0);
        // Two busy processors for a minute: the 1-minute average reaches 1 - 1/e.
        let mut l = [0.0; 3];
        for _ in 0..12 {
            l = decay_loads(l, 2.0);
        }
        assert!((l[0] - 2.0 * (1.0 - (-1.0f64).exp())).abs() < 1e-9, "{l:?}");
        assert!(l[0] > l[1] && l[1] > l[2], "{l:?}");
    }

    #[test]
    fn storage_replies_are_read() {
        use guestlink_vocabulary::types::GuestDiskBusType as B;
        assert_eq!(bus_type(1), B::Scsi);
        assert_eq!(bus_type(3), B::Ide);
        assert_eq!(bus_type(11), B::Sata);
        assert_eq!(bus_type(17), B::Nvme);
        assert_eq!(bus_type(99), B::Unknown);
        let mut d = vec![0u8; 40];
        d[24..28].copy_from_slice(&40u32.to_le_bytes());
        d[28..32].copy_from_slice(&1u32.to_le_bytes());
        d.extend_from_slice(b"  QM0001\0");
        assert_eq!(device_descriptor(&d), Some((1, Some("QM0001".into()))));
        d[24..28].copy_from_slice(&4000u32.to_le_bytes());
        assert_eq!(
            device_descriptor(&d),
            Some((1, None)),
            "serial offset outside"
        );
        assert_eq!(device_descriptor(&d[..20]), None, "short");
        let mut e = vec![0u8; 8 + 48];
        e[0..4].copy_from_slice(&2u32.to_le_bytes());
        e[8..12].copy_from_slice(&3u32.to_le_bytes());
        e[32..36].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(volume_disks(&e), vec![3, 5]);
        assert_eq!(
            volume_disks(&e[..20]),
            vec![3],
            "a short reply keeps what it has"
        );
    }

    #[test]
    fn services_in_systemds_words() {
        assert_eq!(service_state(4, 0), ("active", "running"));
        assert_eq!(service_state(1, 0), ("inactive", "stopped"));
        assert_eq!(service_state(1, 1066), ("failed", "stopped"));
        assert_eq!(service_state(1, 1077), ("inactive", "stopped"));
        assert_eq!(service_state(2, 0), ("activating", "start-pending"));
        assert_eq!(service_state(7, 0), ("active", "paused"));
        assert_eq!(service_state(99, 0), ("unknown", "unknown"));
        assert_eq!(start_type_state(2), "enabled");
        assert_eq!(start_type_state(3), "disabled");
        assert_eq!(start_type_state(4), "masked");
        assert_eq!(service_name("Spooler").unwrap(), "Spooler");
        assert_eq!(service_name("wuauserv").unwrap(), "wuauserv");
        for bad in ["", "a/b", "a\\b", "x\ny", &"n".repeat(257)] {
            assert!(service_name(bad).is_err(), "{bad:?}");
        }
    }
}
