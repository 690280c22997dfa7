//! `__org.guestlink_update-*`: a new guestlinkd from the host (see [`crate::update`]).
//! start stages a file beside the running executable, write appends the bulk bytes,
//! commit checks and swaps it in and asks the main loop to restart, status reports the
//! last update.

use guestlink_vocabulary::commands::{
    GuestlinkUpdateCommit, GuestlinkUpdateStart, GuestlinkUpdateStatus, GuestlinkUpdateWrite,
};
use guestlink_vocabulary::types::{
    base64_decode, Empty, Transfer, TransferHandleArgs, TransferProgress, TransferWriteArgs,
    UpdateCommitted, UpdateStartArgs, UpdateStatus,
};

use super::off_thread;
use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;
use crate::update::{check, marker, upload};

fn exe(ctx: &Context<'_>) -> Result<std::path::PathBuf, CommandError> {
    ctx.agent
        .update_config()
        .exe
        .clone()
        .ok_or_else(|| CommandError::new("cannot update: the agent does not know its executable"))
}

impl Handler for GuestlinkUpdateStart {
    async fn handle(ctx: Context<'_>, args: UpdateStartArgs) -> Result<Transfer, CommandError> {
        let size = u64::try_from(args.size)
            .ok()
            .filter(|s| (1..=check::MAX_SIZE).contains(s))
            .ok_or_else(|| {
                CommandError::new(format!(
                    "Parameter 'size' expects 1 to {} bytes",
                    check::MAX_SIZE
                ))
            })?;
        let sha256 = check::parse_sha256(&args.sha256).map_err(CommandError::new)?;
        let signature = match &args.signature {
            Some(s) => Some(
                base64_decode(s.as_bytes())
                    .map_err(|_| CommandError::new("Parameter 'signature' expects base64"))?,
            ),
            None => None,
        };
        let exe = exe(&ctx)?;
        let staged = upload::staged_path(&exe);
        let handle = ctx.agent.state().update.start(
            ctx.conn.map(|c| c.id),
            staged.clone(),
            size,
            sha256,
            signature,
        )?;
        tracing::info!(size, staged = %staged.display(), "receiving an update");
        Ok(Transfer {
            handle,
            path: staged.display().to_string(),
            uid: 0,
        })
    }
}

impl Handler for GuestlinkUpdateWrite {
    async fn handle(
        ctx: Context<'_>,
        args: TransferWriteArgs,
    ) -> Result<TransferProgress, CommandError> {
        let data = super::payload(&ctx, args.count)?;
        let update = &ctx.agent.state().update;
        let received = update.write(args.handle, &data)?;
        Ok(TransferProgress {
            received: received as i64,
            complete: false,
        })
    }
}

impl Handler for GuestlinkUpdateCommit {
    async fn handle(
        ctx: Context<'_>,
        args: TransferHandleArgs,
    ) -> Result<UpdateCommitted, CommandError> {
        let exe = exe(&ctx)?;
        let config = ctx.agent.update_config().clone();
        let statedir = ctx.agent.state().statedir().to_path_buf();
        let u = ctx.agent.state().update.take(args.handle)?;
        let done = off_thread(move || -> Result<marker::Marker, String> {
            let checked = check::verify(&u, &config.key)
                .and_then(|()| check::version_of(&u.path))
                .and_then(|new| check::version_of(&exe).map(|old| (old, new)));
            let (old_version, new_version) = match checked {
                Ok(v) => v,
                Err(e) => {
                    upload::Uploads::discard(u);
                    return Err(e);
                }
            };
            swap(&exe, &u.path).inspect_err(|_| upload::Uploads::discard(u))?;
            let m = marker::Marker {
                state: "pending".into(),
                old_version,
                new_version,
                exe: exe.clone(),
                backup: backup_path(&exe),
                restart: config.restart.name().into(),
                unit: match &config.restart {
                    crate::update::Restart::Systemd(unit) => Some(unit.clone()),
                    crate::update::Restart::Exec => None,
                },
                argv: config.argv.clone(),
                pid: std::process::id(),
                trial_seconds: config.trial.as_secs().max(1),
                reason: None,
            };
            marker::update(&statedir, |_| (Some(m.clone()), ()))
                .map_err(|e| format!("cannot write the update marker: {e}"))?;
            Ok(m)
        })
        .await?
        .map_err(CommandError::new)?;
        tracing::info!(
            old = %done.old_version,
            new = %done.new_version,
            restart = %done.restart,
            "update in place; restarting on it"
        );
        ctx.agent.request_restart();
        Ok(UpdateCommitted {
            old_version: done.old_version,
            new_version: done.new_version,
            restart: done.restart,
            trial_seconds: done.trial_seconds as i64,
        })
    }
}

/// `<exe>.old`: the previous executable until the new one is confirmed.
pub fn backup_path(exe: &std::path::Path) -> std::path::PathBuf {
    let mut name = exe.as_os_str().to_owned();
    name.push(".old");
    name.into()
}

/// Keeps the running executable as `<exe>.old` (a hard link) and renames the staged
/// one over it, with the old one's permissions.
fn swap(exe: &std::path::Path, staged: &std::path::Path) -> Result<(), String> {
    let backup = backup_path(exe);
    let _ = std::fs::remove_file(&backup);
    std::fs::hard_link(exe, &backup).map_err(|e| {
        format!(
            "cannot keep the old executable as {}: {e}",
            backup.display()
        )
    })?;
    let mode = std::fs::metadata(exe)
        .map(|m| m.permissions())
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    std::fs::set_permissions(staged, mode).map_err(|e| format!("{}: {e}", staged.display()))?;
    std::fs::rename(staged, exe)
        .map_err(|e| format!("cannot put the new executable in place: {e}"))?;
    if let Some(dir) = exe.parent().and_then(|d| std::fs::File::open(d).ok()) {
        let _ = dir.sync_all();
    }
    Ok(())
}

impl Handler for GuestlinkUpdateStatus {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<UpdateStatus, CommandError> {
        let m = marker::read(ctx.agent.state().statedir());
        Ok(UpdateStatus {
            state: m.as_ref().map_or("none".into(), |m| m.state.clone()),
            old_version: m.as_ref().map(|m| m.old_version.clone()),
            new_version: m.as_ref().map(|m| m.new_version.clone()),
            reason: m.and_then(|m| m.reason),
            running_version: crate::update::version_line(),
        })
    }
}
