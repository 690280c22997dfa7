//! `__org.guestlink_grow`: a partition and its file system grown to fill the disk,
//! through the platform's [`Filesystems::grow`](crate::platform::Filesystems::grow).

use std::path::PathBuf;

use guestlink_vocabulary::commands::GuestlinkGrow;
use guestlink_vocabulary::types::{GuestlinkGrowArgs, GuestlinkGrown};

use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;
use crate::handlers::off_thread;

impl Handler for GuestlinkGrow {
    async fn handle(
        ctx: Context<'_>,
        args: GuestlinkGrowArgs,
    ) -> Result<GuestlinkGrown, CommandError> {
        let path = PathBuf::from(&args.path);
        if !path.is_absolute() {
            return Err(CommandError::new(format!(
                "Parameter 'path' must be an absolute path, not '{}'",
                args.path
            )));
        }
        let fs = ctx.agent.platform().filesystems.clone();
        tracing::warn!(path = %path.display(), "growing a file system for the host");
        off_thread(move || fs.grow(&path))
            .await?
            .map_err(CommandError::new)
    }
}
