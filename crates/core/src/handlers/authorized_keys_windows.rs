//! The `authorized_keys` file for Windows OpenSSH, where qemu-ga 8+ puts it: a member
//! of the Administrators group has its keys in
//! `%ProgramData%\ssh\administrators_authorized_keys` (the only file sshd reads for
//! such a user), anyone else in `<profile>\.ssh\authorized_keys`.
//!
//! The file is written to a temporary name beside it and renamed over it, so a reader
//! sees the old keys or the new ones. Its ACL is inherited from the directory
//! (`%ProgramData%\ssh` allows only SYSTEM and Administrators, as OpenSSH's installer
//! sets it); qemu-ga sets the same entries explicitly.

use std::io;
use std::path::PathBuf;

use super::file::with_errno;
use crate::error::CommandError;
use crate::platform::Account;

/// `%ProgramData%`, where the administrators' key file lives.
fn program_data() -> PathBuf {
    std::env::var_os("ProgramData")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
}

/// The key file sshd reads for `account`.
pub(crate) fn keys_path(account: &Account) -> PathBuf {
    if account.admin {
        program_data()
            .join("ssh")
            .join("administrators_authorized_keys")
    } else {
        account.home.join(".ssh").join("authorized_keys")
    }
}

/// The file's text.
pub(crate) fn read_keys(account: &Account) -> io::Result<String> {
    std::fs::read_to_string(keys_path(account))
}

/// Replaces the file with `lines` joined by `\n`.
pub(crate) fn write_lines(account: &Account, lines: &[String]) -> Result<(), CommandError> {
    let path = keys_path(account);
    let failed = |e: io::Error| with_errno(format!("failed to write '{}'", path.display()), &e);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            with_errno(
                format!("failed to create directory '{}'", dir.display()),
                &e,
            )
        })?;
    }
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let result = std::fs::write(&tmp, lines.join("\n")).and_then(|()| std::fs::rename(&tmp, &path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(failed)
}
