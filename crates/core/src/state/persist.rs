//! qemu-ga's persistent state file, `<statedir>/qga.state`: a key file with the next
//! file handle number, `[global] fd_counter=N`, written on every open.

use std::io;
use std::path::{Path, PathBuf};

/// The first handle number on a fresh state directory.
pub const FIRST_HANDLE: i64 = 1000;

/// The state file and the counter it holds.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    next: Option<i64>,
}

impl StateFile {
    /// The state file in `statedir`; read on first use.
    pub fn new(statedir: &Path) -> StateFile {
        StateFile {
            path: statedir.join("qga.state"),
            next: None,
        }
    }

    fn read(&self) -> i64 {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return FIRST_HANDLE;
        };
        let mut in_global = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_global = line == "[global]";
            } else if let Some(v) = line.strip_prefix("fd_counter=") {
                if in_global {
                    if let Ok(n) = v.trim().parse::<i64>() {
                        return n;
                    }
                }
            }
        }
        FIRST_HANDLE
    }

    /// Takes the next handle number and records the one after it.
    pub fn take_handle(&mut self) -> io::Result<i64> {
        let handle = match self.next {
            Some(n) => n,
            None => self.read(),
        };
        let next = if handle == i64::MAX {
            FIRST_HANDLE
        } else {
            handle + 1
        };
        std::fs::write(&self.path, format!("[global]\nfd_counter={next}\n"))?;
        self.next = Some(next);
        Ok(handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_starts_at_1000_and_survives_restarts() {
        let dir = std::env::temp_dir().join(format!("gl-persist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::fs::remove_file(dir.join("qga.state"));
        let mut s = StateFile::new(&dir);
        assert_eq!(s.take_handle().unwrap(), 1000);
        assert_eq!(s.take_handle().unwrap(), 1001);
        assert_eq!(
            std::fs::read_to_string(dir.join("qga.state")).unwrap(),
            "[global]\nfd_counter=1002\n"
        );
        let mut again = StateFile::new(&dir);
        assert_eq!(again.take_handle().unwrap(), 1002);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
