//! Volumes: each mounted volume's GUID path, mount point, file system and size, from
//! the volume manager (`FindFirstVolumeW` and friends), and the disks it lies on.

use std::io;

use guestlink_vocabulary::types::GuestFilesystemInfo;
use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
use windows_sys::Win32::Storage::FileSystem::{
    FindFirstVolumeW, FindNextVolumeW, FindVolumeClose, GetDiskFreeSpaceExW, GetDriveTypeW,
    GetVolumeInformationW, GetVolumePathNamesForVolumeNameW,
};

use super::wide::from_wide;

/// `DRIVE_FIXED`.
const DRIVE_FIXED: u32 = 3;

/// Every volume's GUID path (`\\?\Volume{...}\`, NUL-terminated).
fn volume_names() -> io::Result<Vec<Vec<u16>>> {
    let mut name = [0u16; 260];
    // SAFETY: the buffer's length is given.
    let find = unsafe { FindFirstVolumeW(name.as_mut_ptr(), name.len() as u32) };
    if find == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    loop {
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        out.push(name[..=end.min(name.len() - 1)].to_vec());
        // SAFETY: the search handle is open; the buffer's length is given.
        if unsafe { FindNextVolumeW(find, name.as_mut_ptr(), name.len() as u32) } == 0 {
            break;
        }
    }
    // SAFETY: opened by FindFirstVolumeW.
    unsafe { FindVolumeClose(find) };
    Ok(out)
}

/// The volume's first mount point (`C:\`), if it has one.
fn mount_point(name: &[u16]) -> Option<String> {
    let mut paths = vec![0u16; 1024];
    let mut len = 0u32;
    // SAFETY: `name` is NUL-terminated; the buffer's length is given.
    let ok = unsafe {
        GetVolumePathNamesForVolumeNameW(
            name.as_ptr(),
            paths.as_mut_ptr(),
            paths.len() as u32,
            &mut len,
        )
    } != 0;
    let first = from_wide(&paths);
    (ok && !first.is_empty()).then_some(first)
}

/// The volume's file system name (`NTFS`).
fn fs_type(name: &[u16]) -> Option<String> {
    let mut fstype = [0u16; 64];
    // SAFETY: NUL-terminated root; the buffers' lengths are given.
    let known = unsafe {
        GetVolumeInformationW(
            name.as_ptr(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            fstype.as_mut_ptr(),
            fstype.len() as u32,
        )
    } != 0;
    known.then(|| from_wide(&fstype))
}

/// `guest-get-fsinfo`'s entries: every volume, with its size when it has one.
pub fn filesystems() -> io::Result<Vec<GuestFilesystemInfo>> {
    let drives = super::disks::addresses();
    Ok(volume_names()?
        .iter()
        .map(|name| {
            let (mut free_to_caller, mut total, mut free) = (0u64, 0u64, 0u64);
            // SAFETY: as above; three counters to fill.
            let sized = unsafe {
                GetDiskFreeSpaceExW(name.as_ptr(), &mut free_to_caller, &mut total, &mut free)
            } != 0;
            let name_text = from_wide(name);
            let disk = super::disks::drives_of_volume(&name_text)
                .into_iter()
                .filter_map(|n| drives.iter().find(|(d, _)| *d == n).map(|(_, a)| a.clone()))
                .collect();
            GuestFilesystemInfo {
                name: name_text,
                mountpoint: mount_point(name).unwrap_or_else(|| "System Reserved".into()),
                type_: fs_type(name).unwrap_or_default(),
                used_bytes: sized.then(|| total - free),
                total_bytes: sized.then_some(total),
                total_bytes_privileged: None,
                disk,
            }
        })
        .collect())
}

/// The mount points of fixed disks' volumes, with their file systems (what fstrim and
/// a freeze act on).
pub fn fixed_mount_points() -> io::Result<Vec<(String, String)>> {
    Ok(volume_names()?
        .iter()
        .filter_map(|name| {
            let dir = mount_point(name)?;
            let root = super::wide::wide(&dir);
            // SAFETY: a NUL-terminated root directory.
            let kind = unsafe { GetDriveTypeW(root.as_ptr()) };
            (kind == DRIVE_FIXED).then(|| (dir, fs_type(name).unwrap_or_default()))
        })
        .collect())
}
