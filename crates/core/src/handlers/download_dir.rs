//! Where a file from the host goes: the directory (an explicit one, or the user's XDG
//! download or desktop directory) and a free name in it (`name (1).ext`, ...), the same
//! on every platform.

use std::path::{Path, PathBuf};

use crate::state::transfers::TransferDir;

/// Names tried for one file: the name itself and 63 numbered variants.
pub(crate) const NAME_ATTEMPTS: u32 = 64;

/// `name`, or its `n`th variant: `report (2).pdf`.
pub fn variant(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_string();
    }
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{} ({n}){}", &name[..dot], &name[dot..]),
        _ => format!("{name} ({n})"),
    }
}

/// The value of `key` in an XDG `user-dirs.dirs` file, with `$HOME` expanded.
pub fn xdg_user_dir(text: &str, key: &str, home: &Path) -> Option<PathBuf> {
    text.lines().find_map(|line| {
        let value = line.trim().strip_prefix(key)?.strip_prefix('=')?;
        let value = value.trim().trim_matches('"');
        match value.strip_prefix("$HOME") {
            Some(rest) => Some(home.join(rest.trim_start_matches('/'))),
            None if value.starts_with('/') => Some(PathBuf::from(value)),
            None => None,
        }
    })
}

/// The directory files for `uid` go to.
pub(crate) fn directory(config: &TransferDir, home: &Path) -> PathBuf {
    let (key, default) = match config {
        TransferDir::Path(p) => return p.clone(),
        TransferDir::XdgDownload => ("XDG_DOWNLOAD_DIR", "Downloads"),
        TransferDir::XdgDesktop => ("XDG_DESKTOP_DIR", "Desktop"),
    };
    std::fs::read_to_string(home.join(".config/user-dirs.dirs"))
        .ok()
        .and_then(|t| xdg_user_dir(&t, key, home))
        .unwrap_or_else(|| home.join(default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdg_dirs() {
        let text = "# comment\nXDG_DESKTOP_DIR=\"$HOME/Desk\"\nXDG_DOWNLOAD_DIR=\"$HOME/Téléchargements\"\n";
        let home = Path::new("/home/a");
        assert_eq!(
            xdg_user_dir(text, "XDG_DOWNLOAD_DIR", home).unwrap(),
            Path::new("/home/a/Téléchargements")
        );
        assert_eq!(xdg_user_dir(text, "XDG_MUSIC_DIR", home), None);
        assert_eq!(
            xdg_user_dir("XDG_DOWNLOAD_DIR=\"/data/dl\"", "XDG_DOWNLOAD_DIR", home).unwrap(),
            Path::new("/data/dl")
        );
    }
}
