//! Accounts: `guest-set-user-password` and the `guest-ssh-*-authorized-keys` commands.
//!
//! `authorized_keys` is edited as qemu-ga does: the file is split on newlines, keys
//! are added when no line equals them (or replace everything with `reset`), removed
//! where a line equals them, and the lines are joined with `\n` again. The file is
//! rewritten atomically (a temporary file in `~/.ssh`, then rename), mode 0600 and
//! owned by the user; `~/.ssh` is created 0700 and owned by the user when missing.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
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

/// The file's lines (none for an empty or missing file).
fn read_lines(path: &Path) -> io::Result<Vec<String>> {
    match fs::read_to_string(path) {
        Ok(text) if text.is_empty() => Ok(Vec::new()),
        Ok(text) => Ok(text.split('\n').map(str::to_string).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn write_lines(account: &Account, lines: &[String]) -> Result<(), CommandError> {
    let path = keys_path(account);
    let dir = path.parent().unwrap_or(Path::new("/"));
    let owner = |p: &Path| {
        std::os::unix::fs::lchown(p, Some(account.uid), Some(account.gid))
            .map_err(|e| with_errno(format!("failed to set ownership of '{}'", p.display()), &e))
    };
    if !dir.is_dir() {
        fs::DirBuilder::new().mode(0o700).create(dir).map_err(|e| {
            with_errno(
                format!("failed to create directory '{}'", dir.display()),
                &e,
            )
        })?;
        owner(dir)?;
    }
    let tmp = dir.join(format!(".authorized_keys.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| with_errno(format!("failed to write '{}'", path.display()), &e))?;
        f.write_all(lines.join("\n").as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| with_errno(format!("failed to write '{}'", path.display()), &e))?;
        owner(&tmp)?;
        fs::rename(&tmp, &path)
            .map_err(|e| with_errno(format!("failed to write '{}'", path.display()), &e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
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
        let text = fs::read_to_string(&path).map_err(|e| read_error(&path, &e))?;
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
            read_lines(&path).map_err(|e| read_error(&path, &e))?
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
        let mut lines = read_lines(&path).map_err(|e| read_error(&path, &e))?;
        lines.retain(|l| !args.keys.contains(l));
        write_lines(&account, &lines)?;
        Ok(Empty {})
    }
}
