//! The mount table, as qemu-ga filters it for freeze, trim and fsinfo: mounts of
//! block devices (a source that starts with `/`), not smbfs/cifs, not bind mounts of a
//! subdirectory, each device once.

use std::io;

/// One mount from /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Device numbers.
    pub major: u32,
    /// Device numbers.
    pub minor: u32,
    /// Mount point.
    pub dir: String,
    /// Filesystem type.
    pub fstype: String,
    /// Mount source, e.g. `/dev/vda1`.
    pub source: String,
}

/// Undoes the octal escapes (`\040` for a space) of mountinfo fields.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text, keeping what qemu-ga would freeze.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut mounts: Vec<Mount> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() < sep + 3 || sep < 5 {
            continue;
        }
        let (root, dir) = (fields[3], unescape(fields[4]));
        let (fstype, source) = (fields[sep + 1], unescape(fields[sep + 2]));
        let Some((major, minor)) = fields[2]
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        else {
            continue;
        };
        if !source.starts_with('/') || fstype == "smbfs" || fstype == "cifs" || root != "/" {
            continue;
        }
        if mounts.iter().any(|m| m.major == major && m.minor == minor) {
            continue;
        }
        mounts.push(Mount {
            major,
            minor,
            dir,
            fstype: fstype.to_string(),
            source,
        });
    }
    mounts
}

/// The current mounts.
pub fn mounts() -> io::Result<Vec<Mount>> {
    Ok(parse_mountinfo(&crate::linux::sysfs::attr(
        "/proc/self/mountinfo",
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_block_devices_once() {
        let text = "\
21 1 0:21 / /proc rw - proc proc rw
26 1 254:0 / / rw - ext4 /dev/vda rw
27 26 254:1 / /mnt/my\\040disk rw - xfs /dev/vdb1 rw
28 26 254:1 /sub /srv rw - xfs /dev/vdb1 rw
29 26 254:0 / /again rw - ext4 /dev/vda rw
30 26 0:50 / /net rw - cifs //server/share rw
";
        let m = parse_mountinfo(text);
        let dirs: Vec<&str> = m.iter().map(|m| m.dir.as_str()).collect();
        assert_eq!(dirs, ["/", "/mnt/my disk"]);
        assert_eq!(
            (m[1].major, m[1].minor, m[1].fstype.as_str()),
            (254, 1, "xfs")
        );
    }
}
