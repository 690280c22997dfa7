//! Freezing and trimming on Windows. Trimming is what qemu-ga for Windows does:
//! `defrag.exe /L` on each fixed volume (Windows' retrim). Freezing needs VSS, which
//! this build does not have yet (see `unsupported.rs`'s note in docs/windows.md).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use guestlink_core::platform::{Filesystems, FreezableMount, TrimError};

use super::volumes;

/// The file systems of a Windows guest.
#[derive(Debug, Default, Clone, Copy)]
pub struct WindowsFilesystems;

impl Filesystems for WindowsFilesystems {
    fn mounts(&self) -> io::Result<Vec<FreezableMount>> {
        Ok(volumes::fixed_mount_points()?
            .into_iter()
            .map(|(dir, fstype)| FreezableMount {
                dir: PathBuf::from(dir),
                fstype,
            })
            .collect())
    }

    fn freeze(&self, _dir: &Path) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "freezing through VSS is not available in this guestlinkd",
        ))
    }

    fn thaw(&self, _dir: &Path) -> io::Result<bool> {
        Ok(false)
    }

    fn trim(&self, dir: &Path, _minimum: u64) -> Result<u64, TrimError> {
        // CREATE_NO_WINDOW: no console flashes up.
        use std::os::windows::process::CommandExt;
        let status = Command::new("defrag.exe")
            .arg(dir)
            .arg("/L")
            .creation_flags(0x0800_0000)
            .status()
            .map_err(TrimError::Open)?;
        if status.success() {
            Ok(0)
        } else {
            Err(TrimError::Trim(io::Error::other(format!(
                "defrag.exe /L exited with {status}"
            ))))
        }
    }
}
