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

/// What a scan looks for.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The channel's name: the socket's file name (`org.qemu.guest_agent.0`).
    pub channel: String,
}

impl Pattern {
    /// Whether `file` (a name in `dir`, which is `depth` levels below the root) is one
    /// of the channel's sockets, and if so the VM's name.
    fn vm_name(&self, root: &Path, dir: &Path, file: &str) -> Option<String> {
        let rel = dir.strip_prefix(root).ok()?;
        if file == self.channel {
            if rel.as_os_str().is_empty() {
                return Some(self.channel.clone());
            }
            let leaf = rel.file_name()?.to_string_lossy();
            return Some(match libvirt_domain_dir(&leaf) {
                Some(name) if rel.components().count() == 1 => name.to_string(),
                _ => rel.to_string_lossy().into_owned(),
            });
        }
        // Old libvirt: NAME.CHANNEL at the top.
        if rel.as_os_str().is_empty() {
            let name = file
                .strip_suffix(self.channel.as_str())?
                .strip_suffix('.')?;
            if !name.is_empty() {
                return Some(name.to_string());
            }
        }
        None
    }
}

/// The domain name in a `domain-ID-NAME` directory name.
fn libvirt_domain_dir(dir: &str) -> Option<&str> {
    let rest = dir.strip_prefix("domain-")?;
    let (id, name) = rest.split_once('-')?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty()).then_some(name)
}

/// Lists the agent sockets under `root` (the root and one level of directories below
/// it), by path, with their VM names. A directory that cannot be read is skipped; only
/// sockets count.
pub fn scan(root: &Path, pattern: &Pattern) -> BTreeMap<PathBuf, String> {
    let mut found = BTreeMap::new();
    scan_dir(root, root, pattern, 1, &mut found);
    found
}

fn scan_dir(
    root: &Path,
    dir: &Path,
    pattern: &Pattern,
    depth_left: usize,
    found: &mut BTreeMap<PathBuf, String>,
) {
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
            if let Some(vm) = pattern.vm_name(root, dir, &name) {
                found.insert(entry.path(), vm);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qga() -> Pattern {
        Pattern {
            channel: "org.qemu.guest_agent.0".into(),
        }
    }

    #[test]
    fn libvirt_layouts_name_the_domain() {
        let root = Path::new("/t");
        let p = qga();
        let name = |dir: &str, file: &str| p.vm_name(root, Path::new(dir), file);
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
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
