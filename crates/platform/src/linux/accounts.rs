//! The user database through getpwnam(3).

use guestlink_core::platform::{Account, Accounts};

/// The system's accounts.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxAccounts;

impl Accounts for LinuxAccounts {
    fn lookup(&self, name: &str) -> Result<Account, String> {
        if name.is_empty() {
            return Err("empty user name".into());
        }
        match nix::unistd::User::from_name(name) {
            Ok(Some(u)) => Ok(Account {
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
                home: u.dir,
                admin: false,
            }),
            Ok(None) => Err("No such user".into()),
            Err(e) => Err(guestlink_core::error::errno_text(e as i32)),
        }
    }
}
