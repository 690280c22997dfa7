//! System facts on Windows, worded as qemu-ga for Windows words them.
//!
//! `guest-get-osinfo` there reports the build number as `kernel-release`, `major.minor`
//! as `kernel-version`, `mswindows` as `id`, the registry's product name as
//! `pretty-name` (Windows 11 still calls itself "Windows 10" there: qemu-ga corrects
//! it by the build number), and a version and version id from its table of releases.
//! The core reads these fields from os-release text, so `rules::os_release_text`
//! writes them in that form.

use std::io;

use guestlink_core::platform::{LoginRecord, SystemInfo, Timezone, Uname};
use windows_sys::Win32::System::Registry::{RegGetValueW, HKEY_LOCAL_MACHINE, RRF_RT_REG_SZ};
use windows_sys::Win32::System::RemoteDesktop::{
    WTSDomainName, WTSEnumerateSessionsW, WTSFreeMemory, WTSQuerySessionInformationW,
    WTSSessionInfo, WTSUserName, WTSINFOW, WTS_SESSION_INFOW,
};
use windows_sys::Win32::System::SystemInformation::{
    ComputerNameNetBIOS, GetComputerNameExW, GetNativeSystemInfo, OSVERSIONINFOEXW,
    PROCESSOR_ARCHITECTURE_AMD64, PROCESSOR_ARCHITECTURE_ARM64, PROCESSOR_ARCHITECTURE_INTEL,
    SYSTEM_INFO,
};
use windows_sys::Win32::System::Time::{GetTimeZoneInformation, TIME_ZONE_INFORMATION};

use super::rules::{filetime_to_unix, os_release_text, Version};
use super::wide::{from_ptr, from_wide, wide};

#[link(name = "ntdll")]
extern "system" {
    /// The true version (GetVersionEx lies to programs without a manifest).
    fn RtlGetVersion(info: *mut OSVERSIONINFOEXW) -> i32;
}

/// `VER_NT_WORKSTATION`: a client edition.
const VER_NT_WORKSTATION: u8 = 1;
/// `TIME_ZONE_ID_DAYLIGHT`.
const TIME_ZONE_ID_DAYLIGHT: u32 = 2;

/// The running version.
pub fn version() -> Version {
    // SAFETY: OSVERSIONINFOEXW is plain data; its size is set before the call.
    let mut info: OSVERSIONINFOEXW = unsafe { std::mem::zeroed() };
    info.dwOSVersionInfoSize = std::mem::size_of::<OSVERSIONINFOEXW>() as u32;
    // SAFETY: `info` is a valid, sized structure.
    unsafe { RtlGetVersion(&mut info) };
    Version {
        major: info.dwMajorVersion,
        minor: info.dwMinorVersion,
        build: info.dwBuildNumber,
        server: info.wProductType != VER_NT_WORKSTATION,
    }
}

/// A string value under HKEY_LOCAL_MACHINE.
pub fn registry_string(key: &str, value: &str) -> Option<String> {
    let key = wide(key);
    let value = wide(value);
    let mut buf = vec![0u16; 512];
    let mut size = (buf.len() * 2) as u32;
    // SAFETY: NUL-terminated names; the buffer's size in bytes is given.
    let r = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            key.as_ptr(),
            value.as_ptr(),
            RRF_RT_REG_SZ,
            std::ptr::null_mut(),
            buf.as_mut_ptr().cast(),
            &mut size,
        )
    };
    (r == 0).then(|| from_wide(&buf))
}

/// `uname`-like facts, `/etc/os-release`-like text, the computer name, the time zone
/// and WTS sessions.
#[derive(Debug, Default, Clone, Copy)]
pub struct WindowsSystem;

fn machine() -> &'static str {
    // SAFETY: SYSTEM_INFO is plain data filled by the call.
    let mut info: SYSTEM_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { GetNativeSystemInfo(&mut info) };
    // SAFETY: the union's architecture member is what GetNativeSystemInfo sets.
    match unsafe { info.Anonymous.Anonymous.wProcessorArchitecture } {
        PROCESSOR_ARCHITECTURE_AMD64 => "x86_64",
        PROCESSOR_ARCHITECTURE_ARM64 => "aarch64",
        PROCESSOR_ARCHITECTURE_INTEL => "x86",
        _ => "unknown",
    }
}

/// One string of a WTS session.
fn session_string(id: u32, class: i32) -> Option<String> {
    let mut buf: *mut u16 = std::ptr::null_mut();
    let mut bytes = 0u32;
    // SAFETY: the local server (null); WTS allocates the buffer, freed below.
    if unsafe { WTSQuerySessionInformationW(std::ptr::null_mut(), id, class, &mut buf, &mut bytes) }
        == 0
    {
        return None;
    }
    // SAFETY: WTS returned a NUL-terminated string.
    let s = unsafe { from_ptr(buf) };
    // SAFETY: allocated by WTSQuerySessionInformationW.
    unsafe { WTSFreeMemory(buf.cast()) };
    Some(s)
}

/// The logon time of a WTS session.
fn session_logon_time(id: u32) -> Option<i64> {
    let mut buf: *mut u16 = std::ptr::null_mut();
    let mut bytes = 0u32;
    // SAFETY: as in `session_string`.
    if unsafe {
        WTSQuerySessionInformationW(
            std::ptr::null_mut(),
            id,
            WTSSessionInfo,
            &mut buf,
            &mut bytes,
        )
    } == 0
    {
        return None;
    }
    let time = (bytes as usize >= std::mem::size_of::<WTSINFOW>()).then(|| {
        // SAFETY: WTS returned a WTSINFOW of the size checked.
        unsafe { std::ptr::read_unaligned(buf.cast::<WTSINFOW>()) }.LogonTime
    });
    // SAFETY: allocated by WTSQuerySessionInformationW.
    unsafe { WTSFreeMemory(buf.cast()) };
    time
}

impl SystemInfo for WindowsSystem {
    fn uname(&self) -> Uname {
        let v = version();
        Uname {
            release: v.build.to_string(),
            version: format!("{}.{}", v.major, v.minor),
            machine: machine().to_string(),
        }
    }

    fn os_release(&self) -> Option<String> {
        let product = registry_string(
            r"SOFTWARE\Microsoft\Windows NT\CurrentVersion",
            "ProductName",
        );
        Some(os_release_text(version(), product.as_deref()))
    }

    fn hostname(&self) -> io::Result<String> {
        let mut buf = [0u16; 256];
        let mut len = buf.len() as u32;
        // SAFETY: the buffer's length in characters is given.
        if unsafe { GetComputerNameExW(ComputerNameNetBIOS, buf.as_mut_ptr(), &mut len) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(String::from_utf16_lossy(&buf[..len as usize]))
    }

    fn timezone(&self) -> Timezone {
        // SAFETY: plain data filled by the call.
        let mut tz: TIME_ZONE_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let which = unsafe { GetTimeZoneInformation(&mut tz) };
        let (name, bias) = if which == TIME_ZONE_ID_DAYLIGHT {
            (from_wide(&tz.DaylightName), tz.Bias + tz.DaylightBias)
        } else {
            (from_wide(&tz.StandardName), tz.Bias + tz.StandardBias)
        };
        Timezone {
            abbreviation: (!name.is_empty()).then_some(name),
            offset: -i64::from(bias) * 60,
        }
    }

    fn logins(&self) -> io::Result<Vec<LoginRecord>> {
        let mut sessions: *mut WTS_SESSION_INFOW = std::ptr::null_mut();
        let mut count = 0u32;
        // SAFETY: the local server (null); WTS allocates the array, freed below.
        if unsafe { WTSEnumerateSessionsW(std::ptr::null_mut(), 0, 1, &mut sessions, &mut count) }
            == 0
        {
            return Err(io::Error::last_os_error());
        }
        let mut out = Vec::new();
        for i in 0..count as usize {
            // SAFETY: `count` entries were returned.
            let id = unsafe { (*sessions.add(i)).SessionId };
            let Some(user) = session_string(id, WTSUserName).filter(|u| !u.is_empty()) else {
                continue;
            };
            out.push(LoginRecord {
                user,
                time: session_logon_time(id).map_or(0.0, filetime_to_unix),
                domain: session_string(id, WTSDomainName).filter(|d| !d.is_empty()),
            });
        }
        // SAFETY: allocated by WTSEnumerateSessionsW.
        unsafe { WTSFreeMemory(sessions.cast()) };
        Ok(out)
    }
}
