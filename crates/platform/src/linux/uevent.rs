//! The kernel's device events (uevents) read from a netlink socket
//! (`NETLINK_KOBJECT_UEVENT`, the kernel's multicast group, as udev itself listens),
//! turned into the [`Change`]s of resize automation: a CPU or a memory block added,
//! a disk resized (`RESIZE=1` on a block device's change event).
//!
//! A message is `ACTION@DEVPATH` then `KEY=VALUE` fields, each ended by a NUL. Only
//! messages from the kernel itself (netlink port 0) are read; udev's re-broadcasts go
//! to another group.

use std::os::fd::{AsRawFd, OwnedFd};

use guestlink_core::hotplug::Change;
use nix::sys::socket::{
    bind, recvfrom, setsockopt, socket, sockopt, AddressFamily, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use tokio::io::unix::AsyncFd;

/// The kernel's uevent multicast group.
const KERNEL_GROUP: u32 = 1;

/// One uevent's action, device path and fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent<'a> {
    /// `add`, `remove`, `change`, `online`, ...
    pub action: &'a str,
    /// The device's path under /sys (`/devices/system/cpu/cpu1`).
    pub devpath: &'a str,
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Uevent<'a> {
    /// Parses one message; `None` when it is not a kernel uevent.
    pub fn parse(msg: &'a [u8]) -> Option<Uevent<'a>> {
        let text = std::str::from_utf8(msg).ok()?;
        let mut parts = text.split('\0').filter(|p| !p.is_empty());
        let (action, devpath) = parts.next()?.split_once('@')?;
        let fields = parts.filter_map(|p| p.split_once('=')).collect();
        Some(Uevent {
            action,
            devpath,
            fields,
        })
    }

    /// A field's value.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// The resize automation change this event is, if any. `disk_size` gives a disk's
    /// size in bytes by kernel name.
    pub fn change(&self, disk_size: impl Fn(&str) -> Option<u64>) -> Option<Change> {
        let name = self.devpath.rsplit('/').next()?;
        match (self.action, self.get("SUBSYSTEM")?) {
            ("add", "cpu") => Some(Change::CpuAdded(name.strip_prefix("cpu")?.parse().ok()?)),
            ("add", "memory") => Some(Change::MemoryAdded(
                name.strip_prefix("memory")?.parse().ok()?,
            )),
            ("change", "block") if self.get("RESIZE") == Some("1") => {
                let name = self.get("DEVNAME").unwrap_or(name);
                let name = name.rsplit('/').next()?.to_string();
                let size = disk_size(&name)?;
                Some(Change::DiskResized { name, size })
            }
            _ => None,
        }
    }
}

/// A disk's size in bytes, from sysfs (`size` counts 512-byte sectors whatever the
/// disk's own sector size).
pub fn disk_size(name: &str) -> Option<u64> {
    if name.contains('/') || name.starts_with('.') {
        return None;
    }
    let sectors = crate::linux::sysfs::attr(format!("/sys/class/block/{name}/size")).ok()?;
    sectors.trim().parse::<u64>().ok()?.checked_mul(512)
}

/// A socket subscribed to the kernel's uevents.
#[derive(Debug)]
pub struct Listener {
    fd: AsyncFd<OwnedFd>,
    buf: Vec<u8>,
}

impl Listener {
    /// Subscribes.
    pub fn open() -> std::io::Result<Listener> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkKObjectUEvent,
        )?;
        // Room for a burst (a memory DIMM is one event per block).
        let _ = setsockopt(&fd, sockopt::RcvBuf, &(1 << 20));
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, KERNEL_GROUP))?;
        Ok(Listener {
            fd: guestlink_fdio::register(fd)?,
            buf: vec![0; 8192],
        })
    }

    /// The next change, skipping the events that are none.
    pub async fn next(&mut self) -> std::io::Result<Change> {
        loop {
            let mut guard = self.fd.readable().await?;
            let buf = &mut self.buf;
            let got = guard.try_io(|fd| {
                recvfrom::<NetlinkAddr>(fd.get_ref().as_raw_fd(), buf).map_err(Into::into)
            });
            let (n, from) = match got {
                Ok(Ok(r)) => r,
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    tracing::warn!("uevents were lost (the socket's buffer overflowed)");
                    continue;
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            };
            if from.is_none_or(|a| a.pid() != 0) {
                continue;
            }
            let change = Uevent::parse(&self.buf[..n]).and_then(|u| u.change(disk_size));
            if let Some(c) = change {
                return Ok(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(parts: &[&str]) -> Vec<u8> {
        let mut m = Vec::new();
        for p in parts {
            m.extend_from_slice(p.as_bytes());
            m.push(0);
        }
        m
    }

    #[test]
    fn cpu_memory_and_disk_events_are_changes() {
        let cpu = msg(&[
            "add@/devices/system/cpu/cpu3",
            "ACTION=add",
            "DEVPATH=/devices/system/cpu/cpu3",
            "SUBSYSTEM=cpu",
            "SEQNUM=1234",
        ]);
        let u = Uevent::parse(&cpu).unwrap();
        assert_eq!((u.action, u.get("SEQNUM")), ("add", Some("1234")));
        assert_eq!(u.change(|_| None), Some(Change::CpuAdded(3)));
        let mem = msg(&[
            "add@/devices/system/memory/memory40",
            "ACTION=add",
            "SUBSYSTEM=memory",
        ]);
        assert_eq!(
            Uevent::parse(&mem).unwrap().change(|_| None),
            Some(Change::MemoryAdded(40))
        );
        let disk = msg(&[
            "change@/devices/pci0000:00/0000:00:04.0/virtio2/block/vdb",
            "ACTION=change",
            "SUBSYSTEM=block",
            "DEVNAME=vdb",
            "DEVTYPE=disk",
            "RESIZE=1",
        ]);
        let sizes = |n: &str| (n == "vdb").then_some(2 << 30);
        assert_eq!(
            Uevent::parse(&disk).unwrap().change(sizes),
            Some(Change::DiskResized {
                name: "vdb".into(),
                size: 2 << 30
            })
        );
    }

    #[test]
    fn other_and_malformed_events_are_not() {
        for parts in [
            &["remove@/devices/system/cpu/cpu3", "SUBSYSTEM=cpu"][..],
            &["change@/devices/virtual/block/loop0", "SUBSYSTEM=block"],
            &["add@/devices/system/cpu/cpufreq", "SUBSYSTEM=cpu"],
            &["add@/devices/system/memory/memoryX", "SUBSYSTEM=memory"],
            &["libudev", "SUBSYSTEM=cpu"],
            &["add@/devices/system/cpu/cpu1"],
        ] {
            let m = msg(parts);
            let c = Uevent::parse(&m).and_then(|u| u.change(|_| Some(1)));
            assert_eq!(c, None, "{parts:?}");
        }
        assert!(Uevent::parse(&[0xff, 0xfe, 0]).is_none());
        assert!(Uevent::parse(b"").is_none());
        // A disk whose size cannot be read is not reported.
        let m = msg(&["change@/devices/x/block/vdz", "SUBSYSTEM=block", "RESIZE=1"]);
        assert_eq!(Uevent::parse(&m).unwrap().change(|_| None), None);
        assert_eq!(disk_size("../../etc"), None);
    }
}
