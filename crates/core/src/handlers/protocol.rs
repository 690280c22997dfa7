//! Commands about the agent and the protocol itself: ping, sync, info, and turning
//! bulk transfer on.

use guestlink_vocabulary::commands::{
    GuestInfo, GuestPing, GuestSync, GuestSyncDelimited, GuestlinkBulkEnable,
};
use guestlink_vocabulary::types::{
    Empty, GuestAgentCommandInfo, GuestAgentInfo, GuestSyncArgs, GuestlinkBulkInfo,
};

use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;

impl Handler for GuestPing {
    async fn handle(_ctx: Context<'_>, _args: Empty) -> Result<Empty, CommandError> {
        Ok(Empty {})
    }
}

impl Handler for GuestSync {
    async fn handle(_ctx: Context<'_>, args: GuestSyncArgs) -> Result<i64, CommandError> {
        Ok(args.id)
    }
}

/// The 0xFF delimiter is framing, added by the QGA front end to this command's reply.
impl Handler for GuestSyncDelimited {
    async fn handle(_ctx: Context<'_>, args: GuestSyncArgs) -> Result<i64, CommandError> {
        Ok(args.id)
    }
}

impl Handler for GuestInfo {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<GuestAgentInfo, CommandError> {
        // qemu-ga lists the last-declared command first.
        let supported_commands = ctx
            .agent
            .command_status(ctx.call)
            .into_iter()
            .rev()
            .map(|s| GuestAgentCommandInfo {
                name: s.info.name.to_string(),
                enabled: s.enabled,
                success_response: s.info.success_response,
            })
            .collect();
        Ok(GuestAgentInfo {
            version: ctx.agent.version().to_string(),
            supported_commands,
        })
    }
}

/// Bulk transfer is a property of the connection, which only the front end knows: this
/// reports what the agent offers, and the front end turns the mode on when it succeeds.
impl Handler for GuestlinkBulkEnable {
    async fn handle(_ctx: Context<'_>, _args: Empty) -> Result<GuestlinkBulkInfo, CommandError> {
        Ok(GuestlinkBulkInfo {
            version: 1,
            max_count: crate::limits::FILE_READ_MAX,
        })
    }
}
