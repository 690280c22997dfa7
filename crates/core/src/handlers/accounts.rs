//! Accounts: `guest-set-user-password` and the `guest-ssh-*-authorized-keys` commands.
//!
//! `authorized_keys` is edited as qemu-ga does: the file is split on newlines, keys
//! are added when no line equals them (or replace everything with `reset`), removed
//! where a line equals them, and the lines are joined with `\n` again. The file is
//! rewritten atomically (a temporary file in `~/.ssh`, then rename), mode 0600 and
//! owned by the user; `~/.ssh` is created 0700 and owned by the user when missing.
//! The user owns `~/.ssh`, so nothing there is followed: the directory is opened
//! without following a link and everything else goes through its descriptor
//! (`openat`/`renameat` with `O_NOFOLLOW` and `O_EXCL`), so a planted link cannot
//! make root read or write another file.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::path::{Path, PathBuf};

use guestlink_vocabulary::commands::{
    GuestSetUserPassword, GuestSshAddAuthorizedKeys, GuestSshGetAuthorizedKeys,
    GuestSshRemoveAuthorizedKeys,
};
use guestlink_vocabulary::types::{
    base64_decode, Empty, GuestAuthorizedKeys, GuestSetUserPasswordArgs, GuestSshAddArgs,
    GuestSshGetArgs, GuestSshRemoveArgs,
};

use super::file::with_errno;
use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;
use crate::platform::Account;

impl Handler for GuestSetUserPassword {
    async fn handle(
        ctx: Context<'_>,
        args: GuestSetUserPasswordArgs,
    ) -> Result<Empty, CommandError> {
        let password = base64_decode(args.password.as_bytes())
            .map_err(|e| CommandError::new(e.to_string()))?;
        if password.contains(&b'\n') {
            return Err(CommandError::new("forbidden characters in raw password"));
        }
        if args.username.contains(['\n', ':']) {
            return Err(CommandError::new("forbidden characters in username"));
        }
        tracing::warn!(user = %args.username, crypted = args.crypted, "setting a password");
        let (user, crypted) = (args.username, args.crypted);
        super::machine::act(&ctx, move |m| m.set_password(&user, &password, crypted))
            .await?
            .map_err(CommandError::new)?;
        Ok(Empty {})
    }
}

fn check_keys(keys: &[String]) -> Result<(), CommandError> {
    // An empty string is accepted: virsh sends one for a key file's final newline.
    match keys.iter().find(|k| k.starts_with('#') || k.contains('\n')) {
        Some(k) => Err(CommandError::new(format!(
            "invalid OpenSSH public key: '{k}'"
        ))),
        None => Ok(()),
    }
}

fn lookup(ctx: &Context<'_>, user: &str) -> Result<Account, CommandError> {
    ctx.agent
        .platform()
        .accounts
        .lookup(user)
        .map_err(|e| CommandError::new(format!("failed to lookup user '{user}': {e}")))
}

fn keys_path(account: &Account) -> PathBuf {
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
fn read_keys(account: &Account) -> io::Result<String> {
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

/// The file's lines (none for an empty or missing file).
fn read_lines(account: &Account) -> io::Result<Vec<String>> {
    match read_keys(account) {
        Ok(text) if text.is_empty() => Ok(Vec::new()),
        Ok(text) => Ok(text.split('\n').map(str::to_string).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

const KEYS_FILE: &str = "authorized_keys";

fn write_lines(account: &Account, lines: &[String]) -> Result<(), CommandError> {
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

fn read_error(path: &Path, e: &io::Error) -> CommandError {
    with_errno(format!("failed to read '{}'", path.display()), e)
}

impl Handler for GuestSshGetAuthorizedKeys {
    async fn handle(
        ctx: Context<'_>,
        args: GuestSshGetArgs,
    ) -> Result<GuestAuthorizedKeys, CommandError> {
        let account = lookup(&ctx, &args.username)?;
        let path = keys_path(&account);
        let text = read_keys(&account).map_err(|e| read_error(&path, &e))?;
        // File order (qemu-ga happens to return the keys reversed).
        let keys = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        Ok(GuestAuthorizedKeys { keys })
    }
}

impl Handler for GuestSshAddAuthorizedKeys {
    async fn handle(ctx: Context<'_>, args: GuestSshAddArgs) -> Result<Empty, CommandError> {
        check_keys(&args.keys)?;
        let account = lookup(&ctx, &args.username)?;
        let path = keys_path(&account);
        let mut lines = if args.reset.unwrap_or(false) {
            Vec::new()
        } else {
            read_lines(&account).map_err(|e| read_error(&path, &e))?
        };
        for key in args.keys {
            if !lines.contains(&key) {
                lines.push(key);
            }
        }
        write_lines(&account, &lines)?;
        Ok(Empty {})
    }
}

impl Handler for GuestSshRemoveAuthorizedKeys {
    async fn handle(ctx: Context<'_>, args: GuestSshRemoveArgs) -> Result<Empty, CommandError> {
        check_keys(&args.keys)?;
        let account = lookup(&ctx, &args.username)?;
        let path = keys_path(&account);
        if !path.exists() {
            return Ok(Empty {});
        }
        let mut lines = read_lines(&account).map_err(|e| read_error(&path, &e))?;
        lines.retain(|l| !args.keys.contains(l));
        write_lines(&account, &lines)?;
        Ok(Empty {})
    }
}
