//! Enabling a privilege of the agent's own token (`SeShutdownPrivilege`,
//! `SeSystemtimePrivilege`), as qemu-ga does before acting, with its error texts.

use windows_sys::Win32::Foundation::{CloseHandle, GetLastError, ERROR_SUCCESS, HANDLE, LUID};
use windows_sys::Win32::Security::{
    AdjustTokenPrivileges, LookupPrivilegeValueW, LUID_AND_ATTRIBUTES, SE_PRIVILEGE_ENABLED,
    TOKEN_ADJUST_PRIVILEGES, TOKEN_PRIVILEGES, TOKEN_QUERY,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use super::wide::wide;

/// Enables `name` (e.g. `SeShutdownPrivilege`) in the process token.
pub fn enable(name: &str) -> Result<(), String> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo-handle of this process; `token` receives a new handle.
    if unsafe {
        OpenProcessToken(
            GetCurrentProcess(),
            TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY,
            &mut token,
        )
    } == 0
    {
        return Err(format!(
            "failed to open privilege token: {}",
            std::io::Error::last_os_error()
        ));
    }
    let name_w = wide(name);
    let mut luid = LUID {
        LowPart: 0,
        HighPart: 0,
    };
    // SAFETY: the local system (null), a NUL-terminated name, `luid` to fill.
    let found = unsafe { LookupPrivilegeValueW(std::ptr::null(), name_w.as_ptr(), &mut luid) };
    let result = if found == 0 {
        Err(format!(
            "no luid for requested privilege: {}",
            std::io::Error::last_os_error()
        ))
    } else {
        let privileges = TOKEN_PRIVILEGES {
            PrivilegeCount: 1,
            Privileges: [LUID_AND_ATTRIBUTES {
                Luid: luid,
                Attributes: SE_PRIVILEGE_ENABLED,
            }],
        };
        // SAFETY: the token is open for adjusting; the state lives across the call.
        let ok = unsafe {
            AdjustTokenPrivileges(
                token,
                0,
                &privileges,
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        // AdjustTokenPrivileges succeeds without assigning what the token lacks.
        // SAFETY: no arguments.
        let last = unsafe { GetLastError() };
        if ok == 0 || last != ERROR_SUCCESS {
            Err(format!(
                "unable to acquire requested privilege: {}",
                std::io::Error::from_raw_os_error(last as i32)
            ))
        } else {
            Ok(())
        }
    };
    // SAFETY: the token handle was opened above.
    unsafe { CloseHandle(token) };
    result
}
