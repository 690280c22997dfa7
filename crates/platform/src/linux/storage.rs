//! Filesystems and disks from sysfs: what `guest-get-fsinfo`, `guest-get-disks` and
//! `guest-get-diskstats` report, including the address libvirt matches a disk by
//! (PCI controller, bus type, bus/target/unit).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use guestlink_vocabulary::types::{
    GuestDiskAddress, GuestDiskBusType, GuestDiskInfo, GuestDiskStats, GuestDiskStatsInfo,
    GuestFilesystemInfo, GuestPCIAddress,
};

use crate::linux::mounts;

fn read_trimmed(path: impl AsRef<Path>) -> Option<String> {
    crate::linux::sysfs::attr(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn base_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Where the sysfs link `dir/name` points, with one readlink(2): sysfs links are
/// relative (`../devices/...`) and resolve lexically, which `canonicalize` does with a
/// system call per path component. A real directory (old kernels) is resolved the slow
/// way; `None` when there is nothing there.
fn resolve_sys_link(dir: &Path, name: &str) -> Option<PathBuf> {
    let Ok(target) = fs::read_link(dir.join(name)) else {
        return fs::canonicalize(dir.join(name)).ok();
    };
    let mut out = dir.to_path_buf();
    for c in target.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::RootDir => out = PathBuf::from("/"),
            _ => {}
        }
    }
    Some(out)
}

/// The sysfs directory of block device `major:minor`.
fn sysfs_of(major: u32, minor: u32) -> io::Result<PathBuf> {
    resolve_sys_link(Path::new("/sys/dev/block"), &format!("{major}:{minor}"))
        .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
}

/// Parses `dddd:bb:ss.f`.
fn parse_pci(s: &str) -> Option<GuestPCIAddress> {
    let (domain, rest) = s.split_once(':')?;
    let (bus, rest) = rest.split_once(':')?;
    let (slot, function) = rest.split_once('.')?;
    if domain.len() != 4 || bus.len() != 2 || slot.len() != 2 || function.len() != 1 {
        return None;
    }
    let hex = |x: &str| i64::from_str_radix(x, 16).ok();
    Some(GuestPCIAddress {
        domain: hex(domain)?,
        bus: hex(bus)?,
        slot: hex(slot)?,
        function: hex(function)?,
    })
}

/// Parses a SCSI address `host:channel:target:lun`.
fn parse_hctl(s: &str) -> Option<[i64; 4]> {
    let v: Vec<i64> = s
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    <[i64; 4]>::try_from(v).ok()
}

/// The serial number udev recorded, or the device's own `serial` attribute.
fn serial_of(syspath: &Path, walk: &mut Walk) -> Option<String> {
    let dev = read_trimmed(syspath.join("dev"))?;
    if let Ok(db) = fs::read_to_string(format!("/run/udev/data/b{dev}")) {
        if let Some(s) = db.lines().find_map(|l| l.strip_prefix("E:ID_SERIAL=")) {
            return Some(s.to_string());
        }
    }
    let seq = read_trimmed(syspath.join("diskseq")).and_then(|s| s.parse().ok());
    match (seq, walk.may_wait) {
        (Some(seq), true) => SERIALS.get_or_read(seq, || device_serial(syspath)),
        (None, true) => device_serial(syspath),
        (Some(seq), false) => SERIALS.get(seq).unwrap_or_else(|| {
            walk.missed = true;
            None
        }),
        (None, false) => {
            walk.missed = true;
            None
        }
    }
}

/// How a look-up of disks goes: whether it may ask a device (and so wait for it), and
/// whether it needed to and did not.
#[derive(Debug)]
struct Walk {
    may_wait: bool,
    missed: bool,
}

impl Walk {
    /// Asks the devices what is not known yet: off the async thread only.
    fn waiting() -> Walk {
        Walk {
            may_wait: true,
            missed: false,
        }
    }

    /// Reads only what never waits (sysfs attributes the kernel holds, known serials).
    fn now() -> Walk {
        Walk {
            may_wait: false,
            missed: false,
        }
    }

    /// What the look-up found, unless it had to stop short of a device.
    fn done<T>(self, found: T) -> Option<T> {
        (!self.missed).then_some(found)
    }
}

/// The device's own serial attribute. On virtio-blk that is a request to the device,
/// which waits for the host: it is asked once per disk (see [`SerialCache`]).
fn device_serial(syspath: &Path) -> Option<String> {
    read_trimmed(syspath.join("serial")).or_else(|| read_trimmed(syspath.join("device/serial")))
}

static SERIALS: SerialCache = SerialCache::new();

/// Serial numbers by the disk's `diskseq`, which the kernel gives each disk it creates
/// and never gives again until reboot: a disk unplugged and another plugged in its
/// place have different sequence numbers, so an answer never outlives its disk.
struct SerialCache(std::sync::Mutex<Vec<(u64, Option<String>)>>);

/// Disks remembered at most; past that the cache starts again.
const SERIALS_KEPT: usize = 256;

impl SerialCache {
    const fn new() -> SerialCache {
        SerialCache(std::sync::Mutex::new(Vec::new()))
    }

    fn get(&self, seq: u64) -> Option<Option<String>> {
        let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        known
            .iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, serial)| serial.clone())
    }

    fn get_or_read(&self, seq: u64, read: impl FnOnce() -> Option<String>) -> Option<String> {
        if let Some(serial) = self.get(seq) {
            return serial;
        }
        // Read without the lock: another disk's look-up need not wait for this device.
        let serial = read();
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= SERIALS_KEPT {
            known.clear();
        }
        if !known.iter().any(|(s, _)| *s == seq) {
            known.push((seq, serial.clone()));
        }
        serial
    }
}

/// The address of the whole disk at `syspath`, if it hangs off a PCI device.
pub fn disk_address(syspath: &Path) -> Option<GuestDiskAddress> {
    address_of(syspath, &mut Walk::waiting())
}

fn address_of(syspath: &Path, walk: &mut Walk) -> Option<GuestDiskAddress> {
    let parts: Vec<String> = syspath
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let pci_index = parts.iter().rposition(|p| parse_pci(p).is_some())?;
    let pci = parse_pci(&parts[pci_index])?;
    let pci_dir: PathBuf = parts[..=pci_index].iter().collect();
    let driver = fs::read_link(pci_dir.join("driver"))
        .map(|p| base_name(&p))
        .unwrap_or_default();
    let below = &parts[pci_index + 1..];
    let hctl = below.iter().find_map(|p| parse_hctl(p));
    let ata_index = below.iter().find(|p| p.starts_with("ata")).and_then(|ata| {
        let mut ports: Vec<String> = fs::read_dir(&pci_dir)
            .ok()?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("ata"))
            .collect();
        ports.sort_by_key(|n| n[3..].parse::<u32>().unwrap_or(u32::MAX));
        ports.iter().position(|n| n == ata).map(|i| i as i64)
    });
    let has_host = below.iter().any(|p| p.starts_with("host"));
    let [_, channel, target, lun] = hctl.unwrap_or([0; 4]);
    let (bus_type, bus, target, unit) = match driver.as_str() {
        "virtio-pci" if has_host => (GuestDiskBusType::Scsi, channel, target, lun),
        "virtio-pci" => (GuestDiskBusType::Virtio, 0, 0, 0),
        "ahci" => (GuestDiskBusType::Sata, 0, 0, ata_index.unwrap_or(0)),
        "ata_piix" | "pata_acpi" | "ata_generic" => {
            (GuestDiskBusType::Ide, ata_index.unwrap_or(0), 0, target)
        }
        "nvme" => (GuestDiskBusType::Nvme, 0, 0, 0),
        "xhci_hcd" | "ehci-pci" | "uhci_hcd" | "ohci-pci" => (GuestDiskBusType::Usb, 0, 0, 0),
        _ if hctl.is_some() => (GuestDiskBusType::Scsi, channel, target, lun),
        _ => (GuestDiskBusType::Unknown, 0, 0, 0),
    };
    Some(GuestDiskAddress {
        pci_controller: pci,
        bus_type,
        bus,
        target,
        unit,
        serial: serial_of(syspath, walk),
        dev: Some(format!("/dev/{}", base_name(syspath))),
        ccw_address: None,
    })
}

fn slaves(syspath: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(syspath.join("slaves"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The physical disks under the block device at `syspath` (through dm/md layers).
fn disks_under(syspath: &Path, depth: usize, out: &mut Vec<GuestDiskAddress>, walk: &mut Walk) {
    let below = slaves(syspath);
    if !below.is_empty() && depth < 16 {
        for s in below {
            if let Some(p) = resolve_sys_link(Path::new("/sys/class/block"), &s) {
                disks_under(&p, depth + 1, out, walk);
            }
        }
        return;
    }
    let disk = if syspath.join("partition").exists() {
        syspath.parent().unwrap_or(syspath)
    } else {
        syspath
    };
    out.extend(address_of(disk, walk));
}

/// `guest-get-fsinfo`.
pub fn filesystems() -> io::Result<Vec<GuestFilesystemInfo>> {
    Ok(filesystems_of(mounts::mounts()?, &mut Walk::waiting()))
}

/// `guest-get-fsinfo` when nothing in it can wait: `None` when a mount's size could
/// hang on a FUSE daemon or a cluster (`may_wait`), or a disk's serial number is
/// not known yet (reading it is a request to the device).
pub fn filesystems_now() -> Option<io::Result<Vec<GuestFilesystemInfo>>> {
    let list = match mounts::mounts() {
        Ok(list) => list,
        Err(e) => return Some(Err(e)),
    };
    if list.iter().any(|m| may_wait(&m.fstype)) {
        return None;
    }
    let mut walk = Walk::now();
    let found = filesystems_of(list, &mut walk);
    walk.done(Ok(found))
}

/// Whether statvfs(2) of a block-device mount of this type may wait on something
/// outside the kernel: a FUSE daemon (`fuseblk`: ntfs-3g, exfat-fuse) or a cluster's
/// lock manager. A local filesystem answers from its in-memory superblock.
fn may_wait(fstype: &str) -> bool {
    fstype.starts_with("fuse") || matches!(fstype, "gfs2" | "ocfs2" | "ceph" | "glusterfs")
}

fn filesystems_of(list: Vec<mounts::Mount>, walk: &mut Walk) -> Vec<GuestFilesystemInfo> {
    let mut out = Vec::new();
    for m in list {
        let Ok(syspath) = sysfs_of(m.major, m.minor) else {
            continue;
        };
        let mut disk = Vec::new();
        disks_under(&syspath, 0, &mut disk, walk);
        if walk.missed {
            break;
        }
        let mut info = GuestFilesystemInfo {
            name: base_name(&syspath),
            mountpoint: m.dir,
            type_: m.fstype,
            disk,
            ..Default::default()
        };
        if let Ok(st) = nix::sys::statvfs::statvfs(info.mountpoint.as_str()) {
            let frsize = st.fragment_size();
            let used = st.blocks().saturating_sub(st.blocks_free()) * frsize;
            info.used_bytes = Some(used);
            info.total_bytes = Some(used + st.blocks_available() * frsize);
            info.total_bytes_privileged = Some(st.blocks() * frsize);
        }
        out.push(info);
    }
    out
}

/// `guest-get-disks`: whole disks and virtual block devices, then their partitions.
pub fn disks() -> io::Result<Vec<GuestDiskInfo>> {
    disks_walk(&mut Walk::waiting())
}

/// `guest-get-disks` when no disk's serial number is still to be asked of the device;
/// `None` otherwise.
pub fn disks_now() -> Option<io::Result<Vec<GuestDiskInfo>>> {
    let mut walk = Walk::now();
    let found = disks_walk(&mut walk);
    walk.done(found)
}

fn disks_walk(walk: &mut Walk) -> io::Result<Vec<GuestDiskInfo>> {
    let mut names: Vec<String> = fs::read_dir("/sys/block")?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let Some(syspath) = resolve_sys_link(Path::new("/sys/block"), &name) else {
            continue;
        };
        let deps = slaves(&syspath);
        let physical = syspath.join("device").exists();
        if !physical && deps.is_empty() {
            continue;
        }
        out.push(GuestDiskInfo {
            name: format!("/dev/{name}"),
            partition: false,
            dependencies: Some(deps.iter().map(|d| format!("/dev/{d}")).collect()),
            address: if physical {
                address_of(&syspath, walk)
            } else {
                None
            },
            alias: read_trimmed(syspath.join("dm/name")),
            smart: None,
        });
        // A partition's directory is named after its disk (sda1, nvme0n1p1): only those
        // entries are looked at, not every attribute.
        let mut parts: Vec<String> = fs::read_dir(&syspath)?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(name.as_str()))
            .filter(|e| e.path().join("partition").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        parts.sort();
        out.extend(parts.into_iter().map(|p| GuestDiskInfo {
            name: format!("/dev/{p}"),
            partition: true,
            dependencies: Some(vec![format!("/dev/{name}")]),
            ..Default::default()
        }));
    }
    Ok(out)
}

/// Parses /proc/diskstats.
pub fn parse_diskstats(text: &str) -> Vec<GuestDiskStatsInfo> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 7 {
                return None;
            }
            let n: Vec<Option<u64>> = f.iter().map(|x| x.parse().ok()).collect();
            let at = |i: usize| n.get(i).copied().flatten();
            let mut s = GuestDiskStats::default();
            if f.len() == 7 {
                // Old partition format: reads, read sectors, writes, write sectors.
                (s.read_ios, s.read_sectors, s.write_ios, s.write_sectors) =
                    (at(3), at(4), at(5), at(6));
            } else {
                (s.read_ios, s.read_merges, s.read_sectors, s.read_ticks) =
                    (at(3), at(4), at(5), at(6));
                (s.write_ios, s.write_merges, s.write_sectors, s.write_ticks) =
                    (at(7), at(8), at(9), at(10));
                (s.ios_pgr, s.total_ticks, s.weight_ticks) = (at(11), at(12), at(13));
                if f.len() >= 18 {
                    (
                        s.discard_ios,
                        s.discard_merges,
                        s.discard_sectors,
                        s.discard_ticks,
                    ) = (at(14), at(15), at(16), at(17));
                }
                if f.len() >= 20 {
                    (s.flush_ios, s.flush_ticks) = (at(18), at(19));
                }
            }
            Some(GuestDiskStatsInfo {
                name: f[2].to_string(),
                major: at(0)?,
                minor: at(1)?,
                stats: s,
            })
        })
        .collect()
}

/// `guest-get-diskstats`.
pub fn disk_stats() -> io::Result<Vec<GuestDiskStatsInfo>> {
    Ok(parse_diskstats(&crate::linux::sysfs::attr(
        "/proc/diskstats",
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fuse_and_cluster_filesystems_may_make_fsinfo_wait() {
        for t in ["fuseblk", "fuse", "gfs2", "ocfs2", "ceph", "glusterfs"] {
            assert!(may_wait(t), "{t}");
        }
        for t in [
            "ext4", "xfs", "btrfs", "vfat", "iso9660", "squashfs", "ntfs3",
        ] {
            assert!(!may_wait(t), "{t}");
        }
    }

    #[test]
    fn a_walk_that_may_not_wait_reports_what_it_missed() {
        assert_eq!(Walk::now().done(1), Some(1));
        let missed = Walk {
            may_wait: false,
            missed: true,
        };
        assert_eq!(missed.done(1), None);
        assert!(Walk::waiting().may_wait && !Walk::now().may_wait);
    }

    #[test]
    fn a_disk_serial_is_read_once_per_disk_sequence_number() {
        let cache = SerialCache::new();
        let mut reads = 0;
        let mut read = |v: &str| {
            reads += 1;
            Some(v.to_string())
        };
        assert_eq!(cache.get_or_read(7, || read("A")).as_deref(), Some("A"));
        assert_eq!(
            cache.get_or_read(7, || read("changed")).as_deref(),
            Some("A")
        );
        // Another disk in the same slot has another sequence number.
        assert_eq!(cache.get_or_read(8, || read("B")).as_deref(), Some("B"));
        assert_eq!(reads, 2);
        assert_eq!(cache.get(7), Some(Some("A".into())));
        assert_eq!(cache.get(1234), None);
        // A disk without a serial is remembered as such.
        assert_eq!(cache.get_or_read(9, || None), None);
        assert_eq!(cache.get_or_read(9, || Some("late".into())), None);
        // Bounded.
        for seq in 100..100 + SERIALS_KEPT as u64 + 5 {
            cache.get_or_read(seq, || None);
        }
        assert!(cache.0.lock().unwrap().len() <= SERIALS_KEPT);
    }

    #[test]
    fn addresses_and_stats_parse() {
        assert_eq!(
            parse_pci("0000:00:1f.2"),
            Some(GuestPCIAddress {
                domain: 0,
                bus: 0,
                slot: 31,
                function: 2
            })
        );
        assert_eq!(parse_pci("virtio1"), None);
        assert_eq!(parse_hctl("2:0:1:3"), Some([2, 0, 1, 3]));
        let s = parse_diskstats(
            " 254       0 vda 10 1 20 5 30 2 40 6 0 7 8 1 0 9 2\n   7 0 loop0 1 2 3 4\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].major, s[0].minor, s[0].name.as_str()),
            (254, 0, "vda")
        );
        assert_eq!(s[0].stats.read_sectors, Some(20));
        assert_eq!(s[0].stats.discard_sectors, Some(9));
        assert_eq!(s[0].stats.flush_ios, None);
        assert_eq!(s[1].stats.write_sectors, Some(4));
    }
}
