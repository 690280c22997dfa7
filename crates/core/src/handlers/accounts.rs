//! Accounts: `guest-set-user-password` and the `guest-ssh-*-authorized-keys` commands.
//!
//! `authorized_keys` is edited as qemu-ga does: the file is split on newlines, keys
//! are added when no line equals them (or replace everything with `reset`), removed
//! where a line equals them, and the lines are joined with `\n` again. Where the file
//! is and how it is written safely is the platform's: `authorized_keys.rs` (Unix) and
//! `authorized_keys_windows.rs`.

use std::io;
use std::path::Path;

use guestlink_vocabulary::commands::{
    GuestSetUserPassword, GuestSshAddAuthorizedKeys, GuestSshGetAuthorizedKeys,
    GuestSshRemoveAuthorizedKeys,
};
use guestlink_vocabulary::types::{
    base64_decode, Empty, GuestAuthorizedKeys, GuestSetUserPasswordArgs, GuestSshAddArgs,
    GuestSshGetArgs, GuestSshRemoveArgs,
};

use super::authorized_keys::{keys_path, read_keys, write_lines};
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

/// The file's lines (none for an empty or missing file).
fn read_lines(account: &Account) -> io::Result<Vec<String>> {
    match read_keys(account) {
        Ok(text) if text.is_empty() => Ok(Vec::new()),
        Ok(text) => Ok(text.split('\n').map(str::to_string).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
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
