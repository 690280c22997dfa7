//! Reading sysfs attributes and procfs files cheaply: into a buffer on the stack, with
//! no size query first (`fs::read_to_string` asks for a size these files do not have).
//! Reads go on until end of file: a procfs file hands over whole records per read, so
//! a short read is not the end. Commands such as guest-get-memory-blocks read hundreds
//! of attributes.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Bytes read at once.
const ATTR_MAX: usize = 4096;

/// The text of a sysfs (or procfs) attribute.
pub fn attr(path: impl AsRef<Path>) -> io::Result<String> {
    attr_until(path, |_| false)
}

/// The text of a procfs file up to the first read after which `enough` says the bytes
/// so far suffice (or all of it): for files whose useful part comes first.
pub fn attr_until(path: impl AsRef<Path>, enough: impl Fn(&[u8]) -> bool) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut buf = [0u8; ATTR_MAX];
    let mut text = Vec::new();
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                text.extend_from_slice(&buf[..n]);
                if enough(&text) {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_files_read_whole() {
        let dir = std::env::temp_dir().join(format!("gl-sysfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for len in [0, 1, ATTR_MAX - 1, ATTR_MAX, ATTR_MAX + 1, 3 * ATTR_MAX + 7] {
            let text: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            let p = dir.join(format!("f{len}"));
            std::fs::write(&p, &text).unwrap();
            assert_eq!(attr(&p).unwrap(), text, "{len}");
        }
        assert!(attr(dir.join("missing")).is_err());
        // Up to the read that brings what is wanted.
        let long = dir.join(format!("f{}", 3 * ATTR_MAX + 7));
        let head = attr_until(&long, |t| t.len() > 10).unwrap();
        assert_eq!(head.len(), ATTR_MAX);
        // A procfs file, read a record at a time: all of it.
        assert_eq!(
            attr("/proc/self/mountinfo").unwrap(),
            std::fs::read_to_string("/proc/self/mountinfo").unwrap()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
