//! The optional file scope: the directories `guest-file-open` may read from and write
//! to, from a policy file's `[files]` table.
//!
//! ```toml
//! [files]
//! read = ["/var/log", "/etc/os-release"]
//! write = ["/var/lib/guestlink/inbox"]
//! ```
//!
//! Without it, the host's `guest-file-*` reach every file root can, as with qemu-ga.
//! With it, an open is allowed only when the file (for a file not there yet: its
//! directory) resolves, links followed, to a listed path or below one: opening for
//! reading needs `read`, for writing or appending `write`, `r+`/`w+`/`a+` both. The
//! path is checked before the open, so a refused open creates nothing, and the opened
//! descriptor is checked again, so a link swapped in meanwhile does not get past.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Where the host's file commands may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileScope {
    /// Paths (and everything below them) that may be opened for reading.
    pub read: Vec<PathBuf>,
    /// Paths (and everything below them) that may be opened for writing.
    pub write: Vec<PathBuf>,
}

/// What an open asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Reading.
    pub read: bool,
    /// Writing, appending or creating.
    pub write: bool,
}

impl FileScope {
    /// Whether `resolved` (a path with links resolved) may be opened for `access`.
    pub fn allows(&self, resolved: &Path, access: Access) -> bool {
        let within = |roots: &[PathBuf]| roots.iter().any(|r| resolved.starts_with(r));
        (!access.read || within(&self.read)) && (!access.write || within(&self.write))
    }

    /// Checks `path` for `access`: the error says what the scope allows.
    pub fn check(&self, path: &Path, access: Access) -> Result<(), String> {
        let resolved = resolve(path).map_err(|e| format!("cannot resolve the path: {e}"))?;
        self.check_resolved(&resolved, access)
    }

    /// Checks `path` itself, not what a link there points to (for a removal, a rename,
    /// a new link): its directory's links are resolved, its last component is not.
    pub fn check_entry(&self, path: &Path, access: Access) -> Result<(), String> {
        let resolved = resolve_entry(path).map_err(|e| format!("cannot resolve the path: {e}"))?;
        self.check_resolved(&resolved, access)
    }

    /// Checks a path whose links are already resolved.
    pub fn check_resolved(&self, resolved: &Path, access: Access) -> Result<(), String> {
        if self.allows(resolved, access) {
            return Ok(());
        }
        let listed = |roots: &[PathBuf]| {
            if roots.is_empty() {
                "nowhere".to_string()
            } else {
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        Err(format!(
            "{} is outside the file scope of the policy (read: {}; write: {})",
            resolved.display(),
            listed(&self.read),
            listed(&self.write)
        ))
    }
}

/// `path` with every link resolved; for a file that does not exist yet, its
/// directory's resolved path joined with its name. Relative paths and `..` as the
/// last component are refused.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    if !path.is_absolute() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path is not absolute",
        ));
    }
    match std::fs::canonicalize(path) {
        Ok(p) => Ok(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let name = match path.components().next_back() {
                Some(Component::Normal(n)) => n,
                _ => return Err(e),
            };
            let dir = path.parent().ok_or(e)?;
            Ok(std::fs::canonicalize(dir)?.join(name))
        }
        Err(e) => Err(e),
    }
}

/// `path` with its directory's links resolved and its last component kept as it is:
/// the entry a removal, a rename or an lstat acts on. `/` stays `/`; relative paths
/// and `..` or `.` as the last component are refused.
pub fn resolve_entry(path: &Path) -> io::Result<PathBuf> {
    if !path.is_absolute() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path is not absolute",
        ));
    }
    // `Path::components` drops a trailing `.` (`/tmp/.` reads as `/tmp`): look at the
    // path as it is spelt.
    let spelt = path.as_os_str().as_encoded_bytes();
    let last = spelt
        .split(|b| *b == b'/')
        .rfind(|c| !c.is_empty())
        .unwrap_or_default();
    if last == b"." || last == b".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path ends in . or ..",
        ));
    }
    match path.components().next_back() {
        Some(Component::Normal(name)) => {
            let dir = path.parent().unwrap_or(Path::new("/"));
            Ok(std::fs::canonicalize(dir)?.join(name))
        }
        Some(Component::RootDir) => Ok(PathBuf::from("/")),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path ends in . or ..",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_stay_in_their_directories() {
        let base = std::env::temp_dir().join(format!("gl-scope-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (logs, inbox) = (base.join("logs"), base.join("inbox"));
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::create_dir_all(&inbox).unwrap();
        std::fs::write(logs.join("a.log"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", logs.join("shadow")).unwrap();
        std::os::unix::fs::symlink(&logs, inbox.join("back")).unwrap();
        let scope = FileScope {
            read: vec![logs.clone(), inbox.clone()],
            write: vec![inbox.clone()],
        };
        let (r, w, rw) = (
            Access {
                read: true,
                write: false,
            },
            Access {
                read: false,
                write: true,
            },
            Access {
                read: true,
                write: true,
            },
        );
        assert!(scope.check(&logs.join("a.log"), r).is_ok());
        assert!(scope.check(&logs.join("a.log"), w).is_err());
        assert!(scope.check(&inbox.join("new.bin"), rw).is_ok());
        // Links are followed before the check: out of the scope is out.
        let e = scope.check(&logs.join("shadow"), r).unwrap_err();
        assert!(e.starts_with("/etc/shadow is outside"), "{e}");
        assert!(scope.check(&inbox.join("back/a.log"), w).is_err());
        assert!(scope.check(&inbox.join("../logs/a.log"), w).is_err());
        assert!(scope.check(Path::new("relative"), r).is_err());
        assert!(scope.check(&base.join("nowhere/x"), w).is_err());
        // A prefix of a name is not a directory.
        assert!(!scope.allows(&base.join("logs2/x"), r));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
