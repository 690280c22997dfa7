//! The user database as the guest's NSS sees it (`guestlink_core::os::users`).

use guestlink_core::platform::{Account, Accounts};

/// The system's accounts.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxAccounts;

impl Accounts for LinuxAccounts {
    fn lookup(&self, name: &str) -> Result<Account, String> {
        if name.is_empty() {
            return Err("empty user name".into());
        }
        match guestlink_core::os::users::by_name(name) {
            Ok(Some(u)) => Ok(Account {
                uid: u.uid,
                gid: u.gid,
                home: u.home,
                admin: false,
            }),
            Ok(None) => Err("No such user".into()),
            Err(e) => Err(guestlink_core::error::errno_text(e)),
        }
    }
}
