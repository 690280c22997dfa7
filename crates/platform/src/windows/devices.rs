//! `guest-get-devices`: the PCI devices present and their drivers, through SetupAPI,
//! as qemu-ga reads them: the device's name, its driver's date and version, and the
//! vendor and device ids from its first hardware id (`PCI\VEN_1AF4&DEV_1003&...`).

use std::io;

use guestlink_vocabulary::types::{GuestDeviceId, GuestDeviceInfo};
use windows_sys::Win32::Devices::DeviceAndDriverInstallation::{
    SetupDiDestroyDeviceInfoList, SetupDiEnumDeviceInfo, SetupDiGetClassDevsW,
    SetupDiGetDevicePropertyW, DIGCF_ALLCLASSES, DIGCF_PRESENT, HDEVINFO, SP_DEVINFO_DATA,
};
use windows_sys::Win32::Devices::Properties::{
    DEVPKEY_Device_DriverDate, DEVPKEY_Device_DriverVersion, DEVPKEY_Device_HardwareIds,
    DEVPKEY_NAME,
};
use windows_sys::Win32::Foundation::{DEVPROPKEY, INVALID_HANDLE_VALUE};

use super::rules::{filetime_to_unix, pci_ids};
use super::wide::{from_wide, wide};

/// One property's raw bytes.
fn property(set: HDEVINFO, data: &SP_DEVINFO_DATA, key: &DEVPROPKEY) -> Option<Vec<u8>> {
    let mut kind = 0u32;
    let mut size = 0u32;
    // SAFETY: a size query: no buffer.
    unsafe {
        SetupDiGetDevicePropertyW(
            set,
            data,
            key,
            &mut kind,
            std::ptr::null_mut(),
            0,
            &mut size,
            0,
        )
    };
    if size == 0 {
        return None;
    }
    let mut buf = vec![0u8; size as usize];
    // SAFETY: the buffer holds `size` bytes.
    let ok = unsafe {
        SetupDiGetDevicePropertyW(
            set,
            data,
            key,
            &mut kind,
            buf.as_mut_ptr(),
            size,
            &mut size,
            0,
        )
    };
    (ok != 0).then_some(buf)
}

fn utf16(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// The PCI devices present.
pub fn pci_devices() -> io::Result<Vec<GuestDeviceInfo>> {
    let enumerator = wide("PCI");
    // SAFETY: no class, a NUL-terminated enumerator, no window.
    let set = unsafe {
        SetupDiGetClassDevsW(
            std::ptr::null(),
            enumerator.as_ptr(),
            std::ptr::null_mut(),
            DIGCF_PRESENT | DIGCF_ALLCLASSES,
        )
    };
    if set == INVALID_HANDLE_VALUE as HDEVINFO {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    for index in 0.. {
        // SAFETY: plain data; its size is set before the call.
        let mut data: SP_DEVINFO_DATA = unsafe { std::mem::zeroed() };
        data.cbSize = std::mem::size_of::<SP_DEVINFO_DATA>() as u32;
        // SAFETY: the set is open; `data` is sized.
        if unsafe { SetupDiEnumDeviceInfo(set, index, &mut data) } == 0 {
            break;
        }
        let Some(name) = property(set, &data, &DEVPKEY_NAME) else {
            continue;
        };
        let ids = property(set, &data, &DEVPKEY_Device_HardwareIds)
            .map(|b| from_wide(&utf16(&b)))
            .unwrap_or_default();
        let date = property(set, &data, &DEVPKEY_Device_DriverDate)
            .and_then(|b| {
                b.get(..8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()))
            })
            .map(|ft| (filetime_to_unix(ft) * 1e9) as i64);
        out.push(GuestDeviceInfo {
            driver_name: from_wide(&utf16(&name)),
            driver_date: date,
            driver_version: property(set, &data, &DEVPKEY_Device_DriverVersion)
                .map(|b| from_wide(&utf16(&b))),
            id: pci_ids(&ids).map(|(vendor, device)| GuestDeviceId {
                type_: "pci".into(),
                vendor_id: i64::from(vendor),
                device_id: i64::from(device),
            }),
        });
    }
    // SAFETY: the set was created above.
    unsafe { SetupDiDestroyDeviceInfoList(set) };
    Ok(out)
}
