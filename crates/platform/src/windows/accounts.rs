//! Local accounts on Windows (`NetUserGetInfo`): whether one exists, whether it is an
//! administrator (its SSH keys then live in `administrators_authorized_keys`), and its
//! profile directory, `%SystemDrive%\Users\<name>`.

use std::path::PathBuf;

use guestlink_core::platform::{Account, Accounts};
use windows_sys::Win32::NetworkManagement::NetManagement::{
    NetApiBufferFree, NetUserGetInfo, USER_INFO_1, USER_PRIV_ADMIN,
};

use super::rules::net_api_error;
use super::wide::wide;

/// The local user database.
#[derive(Debug, Default, Clone, Copy)]
pub struct WindowsAccounts;

impl Accounts for WindowsAccounts {
    fn lookup(&self, name: &str) -> Result<Account, String> {
        let name_w = wide(name);
        let mut buf: *mut u8 = std::ptr::null_mut();
        // SAFETY: the local machine (null), a NUL-terminated name; NetAPI allocates.
        let r = unsafe { NetUserGetInfo(std::ptr::null(), name_w.as_ptr(), 1, &mut buf) };
        if r != 0 {
            return Err(net_api_error(r));
        }
        // SAFETY: level 1 returns a USER_INFO_1.
        let admin = unsafe { (*buf.cast::<USER_INFO_1>()).usri1_priv } == USER_PRIV_ADMIN;
        // SAFETY: allocated by NetUserGetInfo.
        unsafe { NetApiBufferFree(buf.cast()) };
        let drive = std::env::var("SystemDrive").unwrap_or_else(|_| "C:".into());
        Ok(Account {
            uid: 0,
            gid: 0,
            home: PathBuf::from(format!(r"{drive}\Users\{name}")),
            admin,
        })
    }
}
