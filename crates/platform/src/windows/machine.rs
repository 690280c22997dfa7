//! Actions that change a Windows machine, as qemu-ga for Windows takes them: power
//! (with `SeShutdownPrivilege`; suspend only where the power capabilities allow it),
//! the clock (with `SeSystemtimePrivilege`; Windows keeps the RTC itself), and local
//! passwords (`NetUserSetInfo`, plain text only).

use guestlink_core::platform::{Machine, ShutdownMode, SuspendMode};
use guestlink_vocabulary::types::GuestMemoryBlockResponseType;
use windows_sys::Win32::Foundation::{FILETIME, SYSTEMTIME};
use windows_sys::Win32::NetworkManagement::NetManagement::{NetUserSetInfo, USER_INFO_1003};
use windows_sys::Win32::System::Power::{
    GetPwrCapabilities, SetSuspendState, SYSTEM_POWER_CAPABILITIES,
};
use windows_sys::Win32::System::Shutdown::{
    InitiateSystemShutdownExW, SHTDN_REASON_FLAG_PLANNED, SHTDN_REASON_MAJOR_OTHER,
    SHTDN_REASON_MINOR_OTHER,
};
use windows_sys::Win32::System::SystemInformation::SetSystemTime;
use windows_sys::Win32::System::Time::FileTimeToSystemTime;

use super::privilege;
use super::rules::{net_api_error, unix_to_filetime};
use super::wide::wide;

/// The actions of a Windows guest.
#[derive(Debug, Default, Clone, Copy)]
pub struct WindowsMachine;

/// What qemu-ga answers for what it does not do.
const UNSUPPORTED: &str = "this feature or command is not currently supported";

impl Machine for WindowsMachine {
    fn shutdown(&self, mode: ShutdownMode) -> Result<(), String> {
        privilege::enable("SeShutdownPrivilege")?;
        let reboot = i32::from(mode == ShutdownMode::Reboot);
        // SAFETY: the local machine (null), no message, plain values.
        let ok = unsafe {
            InitiateSystemShutdownExW(
                std::ptr::null(),
                std::ptr::null(),
                0,
                1,
                reboot,
                SHTDN_REASON_FLAG_PLANNED | SHTDN_REASON_MAJOR_OTHER | SHTDN_REASON_MINOR_OTHER,
            )
        };
        if ok == 0 {
            return Err(format!(
                "guest-shutdown failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }

    fn suspend(&self, mode: SuspendMode) -> Result<(), String> {
        // SAFETY: plain data filled by the call.
        let mut caps: SYSTEM_POWER_CAPABILITIES = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if !unsafe { GetPwrCapabilities(&mut caps) } {
            return Err("failed to determine guest suspend capabilities".into());
        }
        let hibernate = match mode {
            SuspendMode::Disk if caps.SystemS4 => true,
            SuspendMode::Disk => return Err("suspend-to-disk not supported by OS".into()),
            SuspendMode::Ram if caps.SystemS3 => false,
            SuspendMode::Ram => return Err("suspend-to-ram not supported by OS".into()),
            SuspendMode::Hybrid => return Err(UNSUPPORTED.into()),
        };
        privilege::enable("SeShutdownPrivilege")?;
        // As qemu-ga: on a thread of its own, so the reply goes first.
        std::thread::spawn(move || {
            // SAFETY: plain values.
            if !unsafe { SetSuspendState(hibernate, true, true) } {
                tracing::error!(
                    "failed to suspend guest: {}",
                    std::io::Error::last_os_error()
                );
            }
        });
        Ok(())
    }

    fn set_clock(&self, secs: i64, micros: i64) -> Result<(), String> {
        privilege::enable("SeSystemtimePrivilege")?;
        let ft = unix_to_filetime(secs, micros);
        let filetime = FILETIME {
            dwLowDateTime: ft as u32,
            dwHighDateTime: (ft >> 32) as u32,
        };
        // SAFETY: plain data filled by the call.
        let mut st: SYSTEMTIME = unsafe { std::mem::zeroed() };
        // SAFETY: both structures live across the calls.
        if unsafe { FileTimeToSystemTime(&filetime, &mut st) } == 0 {
            return Err(format!(
                "Failed to convert system time: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: as above.
        if unsafe { SetSystemTime(&st) } == 0 {
            return Err(format!(
                "Failed to set time: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }

    fn sync_rtc(&self, to_rtc: bool) -> Result<(), String> {
        if to_rtc {
            // Windows writes the real-time clock itself.
            Ok(())
        } else {
            Err("Time argument is required on this platform".into())
        }
    }

    fn set_vcpu(&self, _logical_id: i64, _online: bool) -> Result<(), String> {
        Err(UNSUPPORTED.into())
    }

    fn set_memory_block(
        &self,
        _phys_index: u64,
        _online: bool,
    ) -> (GuestMemoryBlockResponseType, Option<i64>) {
        (GuestMemoryBlockResponseType::OperationNotSupported, None)
    }

    fn set_password(&self, user: &str, password: &[u8], crypted: bool) -> Result<(), String> {
        if crypted {
            return Err(UNSUPPORTED.into());
        }
        let text =
            std::str::from_utf8(password).map_err(|_| "the password is not UTF-8".to_string())?;
        let user_w = wide(user);
        let mut password_w = wide(text);
        let info = USER_INFO_1003 {
            usri1003_password: password_w.as_mut_ptr(),
        };
        // SAFETY: the local machine (null); NUL-terminated strings that outlive it.
        let r = unsafe {
            NetUserSetInfo(
                std::ptr::null(),
                user_w.as_ptr(),
                1003,
                std::ptr::from_ref(&info).cast(),
                std::ptr::null_mut(),
            )
        };
        // The password's copy is wiped at once.
        password_w.iter_mut().for_each(|c| *c = 0);
        if r != 0 {
            return Err(format!("failed to set password: {}", net_api_error(r)));
        }
        Ok(())
    }

    fn schedule_shutdown(
        &self,
        _mode: ShutdownMode,
        _minutes: u32,
        _message: &str,
    ) -> Result<(), String> {
        Err(UNSUPPORTED.into())
    }
}
