//! Disks on Windows (`guest-get-disks`, and the disks under each volume in
//! `guest-get-fsinfo`), as qemu-ga for Windows reads them: `\\.\PhysicalDriveN` with its
//! bus type and serial number (`IOCTL_STORAGE_QUERY_PROPERTY`) and its SCSI address
//! (`IOCTL_SCSI_GET_ADDRESS`: path, target, LUN). The PCI address of the controller is
//! not looked up (reported as -1, as qemu-ga does when it cannot tell).

use std::io;

use guestlink_vocabulary::types::{GuestDiskAddress, GuestDiskInfo, GuestPCIAddress};
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
};
use windows_sys::Win32::System::IO::DeviceIoControl;

use super::rules::{bus_type, device_descriptor, volume_disks};
use super::wide::wide;

/// `IOCTL_STORAGE_QUERY_PROPERTY`.
const IOCTL_STORAGE_QUERY_PROPERTY: u32 = 0x002d_1400;
/// `IOCTL_SCSI_GET_ADDRESS`.
const IOCTL_SCSI_GET_ADDRESS: u32 = 0x0004_1018;
/// `IOCTL_VOLUME_GET_VOLUME_DISK_EXTENTS`.
const IOCTL_VOLUME_GET_VOLUME_DISK_EXTENTS: u32 = 0x0056_0000;
/// The physical drives asked for: Windows numbers them from 0, without gaps in
/// practice, but a removed disk leaves one, so a few misses are passed over.
const DRIVES: u32 = 64;

/// A handle opened for queries only, closed when dropped.
struct Device(HANDLE);

impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: opened by `open`, closed once.
        unsafe { CloseHandle(self.0) };
    }
}

fn open(path: &str) -> Option<Device> {
    let name = wide(path);
    // SAFETY: a NUL-terminated path; no access rights are needed for these queries.
    let h = unsafe {
        CreateFileW(
            name.as_ptr(),
            0,
            FILE_SHARE_READ | FILE_SHARE_WRITE,
            std::ptr::null(),
            OPEN_EXISTING,
            0,
            std::ptr::null_mut(),
        )
    };
    (h != INVALID_HANDLE_VALUE).then_some(Device(h))
}

fn ioctl(dev: &Device, code: u32, input: &[u8], out_size: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; out_size];
    let mut got = 0u32;
    // SAFETY: both buffers live across the call, with their sizes given.
    let ok = unsafe {
        DeviceIoControl(
            dev.0,
            code,
            input.as_ptr().cast(),
            input.len() as u32,
            out.as_mut_ptr().cast(),
            out.len() as u32,
            &mut got,
            std::ptr::null_mut(),
        )
    } != 0;
    ok.then(|| {
        out.truncate(got as usize);
        out
    })
}

/// The address of physical drive `n`, if it exists.
fn address(n: u32) -> Option<GuestDiskAddress> {
    let dev_path = format!(r"\\.\PhysicalDrive{n}");
    let dev = open(&dev_path)?;
    // STORAGE_PROPERTY_QUERY: StorageDeviceProperty, PropertyStandardQuery.
    let query = [0u8; 12];
    let (bus, serial) = ioctl(&dev, IOCTL_STORAGE_QUERY_PROPERTY, &query, 1024)
        .and_then(|d| device_descriptor(&d))
        .unwrap_or((0, None));
    // SCSI_ADDRESS: Length, PortNumber, PathId, TargetId, Lun.
    let scsi = ioctl(&dev, IOCTL_SCSI_GET_ADDRESS, &[], 8).filter(|a| a.len() >= 8);
    let at = |i: usize| scsi.as_ref().map_or(0, |a| i64::from(a[i]));
    Some(GuestDiskAddress {
        pci_controller: GuestPCIAddress {
            domain: -1,
            bus: -1,
            slot: -1,
            function: -1,
        },
        bus_type: bus_type(bus),
        bus: at(5),
        target: at(6),
        unit: at(7),
        serial,
        dev: Some(dev_path),
        ccw_address: None,
    })
}

/// Every physical drive's address, by drive number.
pub fn addresses() -> Vec<(u32, GuestDiskAddress)> {
    let mut out = Vec::new();
    let mut misses = 0;
    for n in 0..DRIVES {
        match address(n) {
            Some(a) => {
                misses = 0;
                out.push((n, a));
            }
            None if misses >= 4 => break,
            None => misses += 1,
        }
    }
    out
}

/// `guest-get-disks`.
pub fn disks() -> io::Result<Vec<GuestDiskInfo>> {
    Ok(addresses()
        .into_iter()
        .map(|(_, a)| GuestDiskInfo {
            name: a.dev.clone().unwrap_or_default(),
            partition: false,
            dependencies: None,
            address: Some(a),
            alias: None,
            smart: None,
        })
        .collect())
}

/// The numbers of the drives a volume (`\\?\Volume{...}\`) lies on.
pub fn drives_of_volume(volume: &str) -> Vec<u32> {
    // The volume itself, not its root directory: without the trailing backslash.
    let Some(dev) = open(volume.trim_end_matches('\\')) else {
        return Vec::new();
    };
    ioctl(&dev, IOCTL_VOLUME_GET_VOLUME_DISK_EXTENTS, &[], 8 + 24 * 32)
        .map(|b| volume_disks(&b))
        .unwrap_or_default()
}
