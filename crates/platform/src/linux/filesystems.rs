//! Freeze, thaw and trim through the kernel's FIFREEZE, FITHAW and FITRIM ioctls on
//! the mount point; growing is in [`crate::linux::grow`].

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use guestlink_core::platform::{Filesystems, FreezableMount, TrimError};

use crate::linux::mounts;

const FIFREEZE: libc::c_ulong = 0xC004_5877;
const FITHAW: libc::c_ulong = 0xC004_5878;
const FITRIM: libc::c_ulong = 0xC018_5879;

#[repr(C)]
struct FstrimRange {
    start: u64,
    len: u64,
    minlen: u64,
}

/// The Linux filesystems of this machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxFilesystems;

fn ioctl_int(dir: &Path, request: libc::c_ulong) -> io::Result<()> {
    let f = File::open(dir)?;
    let mut arg: libc::c_int = 0;
    // SAFETY: FIFREEZE and FITHAW take a pointer to an int the kernel ignores; the
    // descriptor is open for the duration of the call.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), request as _, &mut arg) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Filesystems for LinuxFilesystems {
    fn mounts(&self) -> io::Result<Vec<FreezableMount>> {
        Ok(mounts::mounts()?
            .into_iter()
            .map(|m| FreezableMount {
                dir: m.dir.into(),
                fstype: m.fstype,
            })
            .collect())
    }

    fn freeze(&self, dir: &Path) -> io::Result<()> {
        ioctl_int(dir, FIFREEZE)
    }

    fn thaw(&self, dir: &Path) -> io::Result<bool> {
        // A filesystem frozen several times needs as many thaws.
        let mut thawed = false;
        while ioctl_int(dir, FITHAW).is_ok() {
            thawed = true;
        }
        Ok(thawed)
    }

    fn trim(&self, dir: &Path, minimum: u64) -> Result<u64, TrimError> {
        let f = File::open(dir).map_err(TrimError::Open)?;
        let mut range = FstrimRange {
            start: 0,
            len: u64::MAX,
            minlen: minimum,
        };
        // SAFETY: FITRIM reads and updates a struct fstrim_range, which `range` is.
        let r = unsafe { libc::ioctl(f.as_raw_fd(), FITRIM as _, &mut range) };
        if r == -1 {
            Err(TrimError::Trim(io::Error::last_os_error()))
        } else {
            Ok(range.len)
        }
    }

    fn grow(&self, path: &Path) -> Result<guestlink_vocabulary::types::GuestlinkGrown, String> {
        crate::linux::grow::grow(path)
    }

    fn mounts_on_disk(&self, disk: &str) -> Vec<std::path::PathBuf> {
        crate::linux::grow::mounts_on_disk(disk)
    }
}
