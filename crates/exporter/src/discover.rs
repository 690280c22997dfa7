//! Finding the agent sockets of a directory, and naming their VMs.
//!
//! libvirt puts the host end of each domain's channels in
//! `/var/lib/libvirt/qemu/channel/target/domain-ID-NAME/CHANNEL` (since 1.3; the name
//! cut at 20 characters), and older versions in `.../target/NAME.CHANNEL`. Both are
//! recognised; any other layout is named by the socket's directory, relative to the
//! watched one, or by its file name when it sits at the top.

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// libvirt's directory of per-domain channel sockets.
pub const LIBVIRT_CHANNEL_DIR: &str = "/var/lib/libvirt/qemu/channel/target";

/// The channel guestlinkd serves for the exporter alone (libvirt holds the agent's own).
pub const EXPORTER_CHANNEL: &str = "org.guestlink.exporter.0";
/// The QEMU guest agent's channel.
pub const QGA_CHANNEL: &str = "org.qemu.guest_agent.0";

/// What a scan looks for.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The channels' names (the sockets' file names), the preferred first: a VM with
    /// sockets for several is watched on the first it has.
    pub channels: Vec<String>,
}

impl Pattern {
    /// Whether `file` (a name in `dir`, under `root`) is a socket of one of the
    /// channels: the VM's name and the channel's rank.
    fn vm_name(&self, root: &Path, dir: &Path, file: &str) -> Option<(String, usize)> {
        self.channels
            .iter()
            .enumerate()
            .find_map(|(rank, channel)| Some((vm_name_for(root, dir, file, channel)?, rank)))
    }
}

/// The VM's name if `file` in `dir` is a socket of `channel`.
fn vm_name_for(root: &Path, dir: &Path, file: &str, channel: &str) -> Option<String> {
    let rel = dir.strip_prefix(root).ok()?;
    if file == channel {
        if rel.as_os_str().is_empty() {
            return Some(channel.to_string());
        }
        let leaf = rel.file_name()?.to_string_lossy();
        return Some(match libvirt_domain_dir(&leaf) {
            Some(name) if rel.components().count() == 1 => name.to_string(),
            _ => rel.to_string_lossy().into_owned(),
        });
    }
    // Old libvirt: NAME.CHANNEL at the top.
    if rel.as_os_str().is_empty() {
        let name = file.strip_suffix(channel)?.strip_suffix('.')?;
        if !name.is_empty() {
            return Some(name.to_string());
        }
    }
    None
}

/// The domain name in a `domain-ID-NAME` directory name.
fn libvirt_domain_dir(dir: &str) -> Option<&str> {
    let rest = dir.strip_prefix("domain-")?;
    let (id, name) = rest.split_once('-')?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty()).then_some(name)
}

/// Lists the agent sockets under `root` (the root and one level of directories below
/// it), by path, with their VM names: one socket per VM, of the preferred channel it
/// has. A directory that cannot be read is skipped; only sockets count.
pub fn scan(root: &Path, pattern: &Pattern) -> BTreeMap<PathBuf, String> {
    let mut best = BTreeMap::new();
    scan_dir(root, root, pattern, 1, &mut best);
    best.into_iter()
        .map(|((_, vm), (_, path))| (path, vm))
        .collect()
}

/// A VM: its directory and name; the rank of the channel found and its socket.
type Found = BTreeMap<(PathBuf, String), (usize, PathBuf)>;

fn scan_dir(root: &Path, dir: &Path, pattern: &Pattern, depth_left: usize, found: &mut Found) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() && depth_left > 0 {
            scan_dir(root, &entry.path(), pattern, depth_left - 1, found);
        } else if kind.is_socket() {
            if let Some((vm, rank)) = pattern.vm_name(root, dir, &name) {
                let slot = found
                    .entry((dir.to_path_buf(), vm))
                    .or_insert((rank, entry.path()));
                if rank < slot.0 {
                    *slot = (rank, entry.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qga() -> Pattern {
        Pattern {
            channels: vec![EXPORTER_CHANNEL.into(), QGA_CHANNEL.into()],
        }
    }

    #[test]
    fn libvirt_layouts_name_the_domain() {
        let root = Path::new("/t");
        let p = qga();
        let name = |dir: &str, file: &str| p.vm_name(root, Path::new(dir), file).map(|v| v.0);
        assert_eq!(
            name("/t/domain-12-web-01", "org.qemu.guest_agent.0").as_deref(),
            Some("web-01")
        );
        assert_eq!(
            name("/t", "db.org.qemu.guest_agent.0").as_deref(),
            Some("db")
        );
        // Other channels of the same domain are not agents.
        assert_eq!(name("/t/domain-12-web-01", "com.redhat.spice.0"), None);
        assert_eq!(name("/t", "org.qemu.guest_agent.0x"), None);
        assert_eq!(name("/t", ".org.qemu.guest_agent.0"), None);
        // Not libvirt's layout: the directory names it.
        assert_eq!(
            name("/t/vm7", "org.qemu.guest_agent.0").as_deref(),
            Some("vm7")
        );
        assert_eq!(
            name("/t/domain-x-y", "org.qemu.guest_agent.0").as_deref(),
            Some("domain-x-y")
        );
    }

    #[test]
    fn scan_finds_sockets_only() {
        let dir = std::env::temp_dir().join(format!("gl-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("domain-1-a")).unwrap();
        std::fs::create_dir_all(dir.join("domain-2-b")).unwrap();
        let _a =
            std::os::unix::net::UnixListener::bind(dir.join("domain-1-a/org.qemu.guest_agent.0"))
                .unwrap();
        // A regular file with the right name is not an agent.
        std::fs::write(dir.join("domain-2-b/org.qemu.guest_agent.0"), b"").unwrap();
        let _c =
            std::os::unix::net::UnixListener::bind(dir.join("c.org.qemu.guest_agent.0")).unwrap();
        let found = scan(&dir, &qga());
        let names: Vec<&str> = found.values().map(String::as_str).collect();
        assert_eq!(names, ["c", "a"]);
        // A VM with the exporter's own channel is watched there, not on the agent's
        // (which libvirt holds).
        let _b =
            std::os::unix::net::UnixListener::bind(dir.join("domain-1-a").join(EXPORTER_CHANNEL))
                .unwrap();
        let found = scan(&dir, &qga());
        assert_eq!(found.len(), 2);
        assert_eq!(
            found
                .get(&dir.join("domain-1-a").join(EXPORTER_CHANNEL))
                .map(String::as_str),
            Some("a")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
