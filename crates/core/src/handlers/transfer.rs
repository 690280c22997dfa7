//! Files from the host into the active user's download directory
//! (`__org.guestlink_transfer-*`, what a SPICE client's drag and drop becomes).
//!
//! The file is created with the user's own filesystem identity (`user_files.rs`), so
//! a download directory that is a link into `/etc` is refused as it would be for the
//! user, and the file belongs to the user from the start. Names are one path component;
//! a name already taken becomes `name (1).ext`, `name (2).ext`, ... up to 63.

use guestlink_vocabulary::commands::{
    GuestlinkDisplaySet, GuestlinkTransferCancel, GuestlinkTransferStart, GuestlinkTransferWrite,
};
use guestlink_vocabulary::types::{
    DisplaySetArgs, Empty, Transfer, TransferHandleArgs, TransferProgress, TransferStartArgs,
    TransferWriteArgs,
};
use guestlink_vocabulary::Command;

use super::sessions::{ask_agent, target_of};
use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::{Cause, CommandError};
use crate::state::transfers::{Incoming, TransferDir};

/// The longest name accepted, in bytes (a Linux file name).
const NAME_MAX: usize = 255;

/// Checks a name from the host: one path component.
pub fn check_name(name: &str) -> Result<(), CommandError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.contains('\0')
        || name.len() > NAME_MAX;
    if bad {
        return Err(CommandError::with_cause(
            Cause::InvalidName,
            format!(
                "invalid file name '{}': a transfer names one file, not a path",
                name.escape_debug()
            ),
        ));
    }
    Ok(())
}

impl Handler for GuestlinkTransferStart {
    async fn handle(ctx: Context<'_>, args: TransferStartArgs) -> Result<Transfer, CommandError> {
        check_name(&args.name)?;
        let size = u64::try_from(args.size)
            .map_err(|_| CommandError::new("Parameter 'size' expects a size in bytes"))?;
        let config = ctx.agent.transfer_dir().clone();
        // The active session's user; with no session known, an explicit directory
        // still takes files, as guestlinkd's own user.
        let uid = match ctx.agent.state().sessions.host_user()? {
            Some((session, _, true)) => {
                return Err(CommandError::with_cause(
                    Cause::SessionLocked,
                    format!("session '{session}' is locked"),
                ))
            }
            Some((_, uid, false)) => uid,
            None if matches!(config, TransferDir::Path(_)) => crate::os::effective_uid(),
            None => {
                return Err(CommandError::with_cause(
                    Cause::NoSessionAgent,
                    "no user session is known to receive the file",
                ))
            }
        };
        let state = ctx.agent.state();
        state.transfers.check_room()?;
        let (dir, dirfd, used, file) =
            super::user_files::create_for(uid, config, args.name.clone(), size).await?;
        let path = dir.join(&used);
        tracing::info!(path = %path.display(), size, uid, "receiving a file");
        let handle = state.transfers.insert(Incoming {
            conn: ctx.conn.map(|c| c.id),
            dir: dirfd,
            name: used,
            path: path.clone(),
            file,
            size,
            received: 0,
        })?;
        Ok(Transfer {
            handle,
            path: path.display().to_string(),
            uid: i64::from(uid),
        })
    }
}

impl Handler for GuestlinkTransferWrite {
    async fn handle(
        ctx: Context<'_>,
        args: TransferWriteArgs,
    ) -> Result<TransferProgress, CommandError> {
        let data = super::payload(&ctx, args.count)?;
        let w = ctx.agent.state().transfers.write(args.handle, &data)?;
        Ok(TransferProgress {
            received: w.received as i64,
            complete: w.complete,
        })
    }
}

impl Handler for GuestlinkTransferCancel {
    async fn handle(ctx: Context<'_>, args: TransferHandleArgs) -> Result<Empty, CommandError> {
        ctx.agent.state().transfers.cancel(args.handle)?;
        Ok(Empty {})
    }
}

impl Handler for GuestlinkDisplaySet {
    async fn handle(ctx: Context<'_>, args: DisplaySetArgs) -> Result<Empty, CommandError> {
        if args.displays.len() > 16 {
            return Err(CommandError::new(
                "at most 16 displays (limit displays: 16)",
            ));
        }
        let target = target_of(&ctx)?;
        if !target.agent.capabilities.iter().any(|c| c == "displays") {
            return Err(CommandError::new(format!(
                "the session agent of session '{}' does not set displays",
                target.session
            )));
        }
        let arguments = serde_json::to_value(&args)
            .map_err(|e| CommandError::new(format!("cannot forward the layout: {e}")))?;
        ask_agent(&ctx, &target, Self::NAME, arguments).await?;
        Ok(Empty {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::download_dir::variant;

    #[test]
    fn names_and_variants() {
        for bad in ["", ".", "..", "../x", "/etc/passwd", "a/b", "a\0b"] {
            assert_eq!(
                check_name(bad).unwrap_err().cause,
                Some(Cause::InvalidName),
                "{bad:?}"
            );
        }
        check_name("..hidden").unwrap();
        check_name("résumé 2.pdf").unwrap();
        assert_eq!(variant("a.tar.gz", 2), "a.tar (2).gz");
        assert_eq!(variant("README", 1), "README (1)");
        assert_eq!(variant(".bashrc", 3), ".bashrc (3)");
    }
}
