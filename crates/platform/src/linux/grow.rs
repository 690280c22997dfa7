//! Growing a mounted file system to fill its disk, as cloud images' growpart and
//! resize2fs do at boot: the partition table is changed with [`partition::plan`], the
//! kernel told the partition's new size (BLKPG, which works while it is mounted),
//! then the file system grown online by its own tool: resize2fs (ext2/3/4, from
//! e2fsprogs), xfs_growfs (xfsprogs) or `btrfs filesystem resize` (btrfs-progs). When
//! the tool is missing the partition is still grown and the error names the package.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use guestlink_vocabulary::types::GuestlinkGrown;

use crate::linux::machine::find_program;
use crate::linux::{mounts, partition, sysfs};

const BLKPG: libc::c_ulong = 0x1269;
const BLKPG_RESIZE_PARTITION: libc::c_int = 3;

#[repr(C)]
struct BlkpgPartition {
    start: libc::c_longlong,
    length: libc::c_longlong,
    pno: libc::c_int,
    devname: [libc::c_char; 64],
    volname: [libc::c_char; 64],
}

#[repr(C)]
struct BlkpgIoctlArg {
    op: libc::c_int,
    flags: libc::c_int,
    datalen: libc::c_int,
    data: *mut libc::c_void,
}

/// A block device as sysfs has it.
struct Device {
    /// Its kernel name (`vda1`).
    name: String,
    /// Its sysfs directory.
    sys: PathBuf,
    /// The disk it is a partition of, with its number; `None` for a whole disk.
    partition: Option<(String, u32)>,
}

fn read_u64(path: impl AsRef<Path>) -> Option<u64> {
    sysfs::attr(path).ok()?.trim().parse().ok()
}

fn device(major: u32, minor: u32) -> Option<Device> {
    let sys = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    let name = sys.file_name()?.to_str()?.to_string();
    let partition = match read_u64(sys.join("partition")) {
        Some(n) => {
            let disk = sys.parent()?.file_name()?.to_str()?.to_string();
            Some((disk, u32::try_from(n).ok()?))
        }
        None => None,
    };
    Some(Device {
        name,
        sys,
        partition,
    })
}

/// The block device of a mount: its source's device numbers when the source is a
/// device node (btrfs reports anonymous numbers in the mount table), else the mount
/// table's.
fn device_of(m: &mounts::Mount) -> Option<Device> {
    use nix::sys::stat::{major, minor, stat, SFlag};
    let node = stat(m.source.as_str())
        .ok()
        .filter(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFBLK);
    match node {
        Some(st) => device(major(st.st_rdev) as u32, minor(st.st_rdev) as u32),
        None => device(m.major, m.minor),
    }
}

/// The mount holding `path`: the block device mount whose device `path` is on (a path
/// on tmpfs, proc or another mount without a device is refused, not taken for the
/// root's).
fn mount_of(path: &Path) -> Result<mounts::Mount, String> {
    use nix::sys::stat::{major, minor, stat};
    let st = stat(path).map_err(|e| format!("cannot stat '{}': {}", path.display(), e.desc()))?;
    let (maj, min) = (major(st.st_dev) as u32, minor(st.st_dev) as u32);
    let all = mounts::mounts().map_err(|e| format!("cannot read the mount table: {e}"))?;
    let mut on_dev = all.into_iter().filter(|m| m.major == maj && m.minor == min);
    on_dev.next().ok_or_else(|| {
        format!(
            "'{}' is not on a block device's file system",
            path.display()
        )
    })
}

/// The mount points of file systems on `disk` or its partitions.
pub fn mounts_on_disk(disk: &str) -> Vec<PathBuf> {
    let Ok(all) = mounts::mounts() else {
        return Vec::new();
    };
    all.into_iter()
        .filter(|m| {
            device_of(m).is_some_and(|d| {
                d.name == disk || d.partition.as_ref().is_some_and(|(p, _)| p == disk)
            })
        })
        .map(|m| PathBuf::from(m.dir))
        .collect()
}

/// The size of the file system mounted at `dir`, in bytes.
fn fs_size(dir: &str) -> u64 {
    nix::sys::statvfs::statvfs(dir)
        .map(|s| s.blocks() * s.fragment_size())
        .unwrap_or(0)
}

/// Grows the partition `pno` of `disk` that starts at byte `start`; its size before
/// and after.
fn grow_partition(disk: &str, pno: u32, start: u64) -> Result<(u64, u64, bool), String> {
    let dev = format!("/dev/{disk}");
    let sector =
        read_u64(format!("/sys/class/block/{disk}/queue/logical_block_size")).unwrap_or(512);
    let disk_size = read_u64(format!("/sys/class/block/{disk}/size"))
        .ok_or_else(|| format!("cannot read the size of {disk}"))?
        * 512;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&dev)
        .map_err(|e| format!("cannot open {dev}: {e}"))?;
    let mut head = vec![0u8; partition::HEAD.min(disk_size as usize)];
    f.read_exact_at(&mut head, 0)
        .map_err(|e| format!("cannot read {dev}: {e}"))?;
    let plan =
        partition::plan(&head, sector, disk_size, start).map_err(|e| format!("{dev}: {e}"))?;
    if plan.writes.is_empty() {
        return Ok((plan.old_size, plan.new_size, false));
    }
    for w in &plan.writes {
        f.write_all_at(&w.data, w.offset)
            .map_err(|e| format!("cannot write the partition table of {dev}: {e}"))?;
    }
    f.sync_all()
        .map_err(|e| format!("cannot write the partition table of {dev}: {e}"))?;
    tell_kernel(&f, pno, start, plan.new_size)
        .map_err(|e| format!("the partition table of {dev} was grown, but the kernel did not take partition {pno}'s new size: {e}"))?;
    Ok((plan.old_size, plan.new_size, true))
}

/// BLKPG_RESIZE_PARTITION: the kernel's view of partition `pno`.
fn tell_kernel(disk: &File, pno: u32, start: u64, size: u64) -> io::Result<()> {
    let mut part = BlkpgPartition {
        start: start as libc::c_longlong,
        length: size as libc::c_longlong,
        pno: pno as libc::c_int,
        devname: [0; 64],
        volname: [0; 64],
    };
    let mut arg = BlkpgIoctlArg {
        op: BLKPG_RESIZE_PARTITION,
        flags: 0,
        datalen: std::mem::size_of::<BlkpgPartition>() as libc::c_int,
        data: (&mut part as *mut BlkpgPartition).cast(),
    };
    // SAFETY: BLKPG reads a blkpg_ioctl_arg whose data points at a blkpg_partition of
    // the size given; both live across the call, on an open block device.
    let r = unsafe { libc::ioctl(disk.as_raw_fd(), BLKPG as _, &mut arg) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Runs a file system's grow tool.
fn run_tool(program: &str, package: &str, args: &[&str]) -> Result<(), String> {
    let exe = find_program(program).ok_or_else(|| {
        format!("{program} was not found: install {package} to grow this file system")
    })?;
    let out = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("failed to run {program}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    Err(format!("{program} failed: {}", last.trim()))
}

/// `Filesystems::grow` on Linux.
pub fn grow(path: &Path) -> Result<GuestlinkGrown, String> {
    let m = mount_of(path)?;
    let dev =
        device_of(&m).ok_or_else(|| format!("{} is not a block device's file system", m.dir))?;
    let devnode = format!("/dev/{}", dev.name);
    let (old_size, new_size, partition_grown) = match &dev.partition {
        Some((disk, pno)) => {
            let start =
                read_u64(dev.sys.join("start")).ok_or("cannot read the partition's start")? * 512;
            grow_partition(disk, *pno, start)?
        }
        None => {
            let size = read_u64(dev.sys.join("size")).unwrap_or(0) * 512;
            (size, size, false)
        }
    };
    let before = fs_size(&m.dir);
    match m.fstype.as_str() {
        "ext2" | "ext3" | "ext4" => run_tool("resize2fs", "e2fsprogs", &[&devnode])?,
        "xfs" => run_tool("xfs_growfs", "xfsprogs", &[&m.dir])?,
        "btrfs" => run_tool(
            "btrfs",
            "btrfs-progs",
            &["filesystem", "resize", "max", &m.dir],
        )?,
        other => return Err(format!("growing {other} file systems is not supported")),
    }
    tracing::info!(mountpoint = %m.dir, device = %devnode, old_size, new_size, "grown");
    Ok(GuestlinkGrown {
        filesystem_grown: fs_size(&m.dir) > before,
        mountpoint: m.dir,
        device: devnode,
        fstype: m.fstype,
        old_size,
        new_size,
        partition_grown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Only paths that cannot be on a disk: a test must never grow the build machine's.
    #[test]
    fn paths_off_any_disk_are_refused() {
        let e = grow(Path::new("/proc/self/status")).unwrap_err();
        assert!(e.contains("is not on a block device's file system"), "{e}");
        let e = grow(Path::new("/nonexistent/guestlink")).unwrap_err();
        assert!(e.starts_with("cannot stat '/nonexistent/guestlink'"), "{e}");
    }
}
