//! The `authorized_keys` file on Unix: `~/.ssh/authorized_keys`.
//!
//! The file is rewritten atomically (a temporary file in `~/.ssh`, then rename), mode
//! 0600 and owned by the user; `~/.ssh` is created 0700 and owned by the user when
//! missing. The user owns `~/.ssh`, so nothing there is followed: the directory is
//! opened without following a link and everything else goes through its descriptor
//! (`openat`/`renameat` with `O_NOFOLLOW` and `O_EXCL`), so a planted link cannot make
//! root read or write another file.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::file::with_errno;
use crate::error::CommandError;
use crate::platform::Account;

pub(crate) fn keys_path(account: &Account) -> PathBuf {
    account.home.join(".ssh").join("authorized_keys")
}

/// `~/.ssh`, opened without following a symbolic link: the user owns it, and a link
/// there must not send root's writes elsewhere.
fn ssh_dir(account: &Account) -> io::Result<OwnedFd> {
    let dir = account.home.join(".ssh");
    let fd = nix::fcntl::open(
        &dir,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )?;
    // SAFETY: open(2) just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The file's text, read through `~/.ssh` without following links.
pub(crate) fn read_keys(account: &Account) -> io::Result<String> {
    let dir = ssh_dir(account)?;
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        KEYS_FILE,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: openat(2) just returned this descriptor, and nothing else owns it.
    let mut f = fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    Ok(text)
}

const KEYS_FILE: &str = "authorized_keys";

pub(crate) fn write_lines(account: &Account, lines: &[String]) -> Result<(), CommandError> {
    let path = keys_path(account);
    let dir = path.parent().unwrap_or(Path::new("/"));
    let failed = |e: io::Error| with_errno(format!("failed to write '{}'", path.display()), &e);
    if fs::symlink_metadata(dir).is_err() {
        fs::DirBuilder::new().mode(0o700).create(dir).map_err(|e| {
            with_errno(
                format!("failed to create directory '{}'", dir.display()),
                &e,
            )
        })?;
        std::os::unix::fs::lchown(dir, Some(account.uid), Some(account.gid)).map_err(|e| {
            with_errno(
                format!("failed to set ownership of '{}'", dir.display()),
                &e,
            )
        })?;
    }
    let dirfd = ssh_dir(account).map_err(failed)?;
    let tmp = format!(".authorized_keys.{}.tmp", std::process::id());
    let create = || {
        nix::fcntl::openat(
            Some(dirfd.as_raw_fd()),
            tmp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
    };
    let fd = match create() {
        // A leftover (or something planted): remove the name itself, never a target.
        Err(nix::errno::Errno::EEXIST) => {
            let _ = nix::unistd::unlinkat(
                Some(dirfd.as_raw_fd()),
                tmp.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
            create()
        }
        other => other,
    }
    .map_err(|e| failed(e.into()))?;
    // SAFETY: openat(2) just returned this descriptor, and nothing else owns it.
    let mut f = fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let result = (|| {
        f.write_all(lines.join("\n").as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(failed)?;
        nix::unistd::fchown(
            f.as_raw_fd(),
            Some(nix::unistd::Uid::from_raw(account.uid)),
            Some(nix::unistd::Gid::from_raw(account.gid)),
        )
        .map_err(|e| {
            with_errno(
                format!("failed to set ownership of '{}'", path.display()),
                &e.into(),
            )
        })?;
        nix::fcntl::renameat(
            Some(dirfd.as_raw_fd()),
            tmp.as_str(),
            Some(dirfd.as_raw_fd()),
            KEYS_FILE,
        )
        .map_err(|e| failed(e.into()))
    })();
    if result.is_err() {
        let _ = nix::unistd::unlinkat(
            Some(dirfd.as_raw_fd()),
            tmp.as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
    result
}
