//! Drop-in directories with systemd's override rules: files are read from a list of
//! directories, vendor first; a file replaces the same-named file of an earlier
//! directory; the result is taken in file-name order. Used by the policy files and by
//! the actions directories.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The winning file for every name in `sub` of each of `dirs`, by name; names `keep`
/// refuses (hidden files, other extensions) are left out.
pub fn merge(
    dirs: &[PathBuf],
    sub: &Path,
    keep: impl Fn(&str) -> bool,
) -> BTreeMap<String, PathBuf> {
    let mut winners = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') || !keep(&name) {
                continue;
            }
            winners.insert(name, entry.path());
        }
    }
    winners
}

/// Whether `path` is a link to `/dev/null`: systemd's way of masking a vendor file.
pub fn masked(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
        && std::fs::canonicalize(path).is_ok_and(|t| t == Path::new("/dev/null"))
}
