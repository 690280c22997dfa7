//! The clipboard of a user session, through its session agent: what it offers (known
//! without asking, from the agent's grabs), reading it and setting it (asked of the
//! agent when needed, so a large copy costs nothing until someone pastes), and the
//! agent's announcements that it changed.

use guestlink_vocabulary::commands::{
    GuestlinkClipboardGet, GuestlinkClipboardGrab, GuestlinkClipboardSet, GuestlinkClipboardTypes,
};
use guestlink_vocabulary::events::ClipboardChangedEvent;
use guestlink_vocabulary::types::{
    ClipboardChanged, ClipboardData, ClipboardGetArgs, ClipboardGrabArgs, ClipboardSelection,
    ClipboardSetArgs, ClipboardTypes, ClipboardTypesArgs, Empty,
};
use guestlink_vocabulary::Command;
use serde_json::json;

use super::events::connection;
use super::sessions::{ask_agent, target_of};
use crate::context::{Caller, Context};
use crate::dispatch::Handler;
use crate::error::CommandError;
use crate::events::{Audience, EventRecord};

/// The largest clipboard content passed through (the `clipboard-size` limit).
pub const CLIPBOARD_LIMIT: usize = 32 << 20;
/// The most MIME types one grab may announce.
pub const TYPES_LIMIT: usize = 64;

fn too_large(len: usize) -> CommandError {
    CommandError::new(format!(
        "clipboard content of {len} bytes is larger than the limit clipboard-size ({CLIPBOARD_LIMIT})"
    ))
}

impl Handler for GuestlinkClipboardTypes {
    async fn handle(
        ctx: Context<'_>,
        args: ClipboardTypesArgs,
    ) -> Result<ClipboardTypes, CommandError> {
        let target = target_of(&ctx)?;
        let selection = args.selection.unwrap_or(ClipboardSelection::Clipboard);
        Ok(ClipboardTypes {
            types: ctx.agent.state().sessions.offer(&target.session, selection),
            session: target.session,
        })
    }
}

impl Handler for GuestlinkClipboardGet {
    async fn handle(
        ctx: Context<'_>,
        args: ClipboardGetArgs,
    ) -> Result<ClipboardData, CommandError> {
        let target = target_of(&ctx)?;
        let selection = args.selection.unwrap_or(ClipboardSelection::Clipboard);
        let mut arguments = json!({ "selection": selection.as_str() });
        if let Some(t) = &args.mime_type {
            arguments["mime-type"] = t.as_str().into();
        }
        let answer = ask_agent(&ctx, &target, Self::NAME, arguments).await?;
        let data: ClipboardData = serde_json::from_value(answer).map_err(|e| {
            CommandError::new(format!("the session agent sent a malformed clipboard: {e}"))
        })?;
        if data.data.0.len() > CLIPBOARD_LIMIT {
            return Err(too_large(data.data.0.len()));
        }
        Ok(data)
    }

    fn reply_size_hint(reply: &ClipboardData) -> usize {
        reply.data.0.len() / 3 * 4
    }
}

impl Handler for GuestlinkClipboardSet {
    async fn handle(ctx: Context<'_>, args: ClipboardSetArgs) -> Result<Empty, CommandError> {
        if args.data.0.len() > CLIPBOARD_LIMIT {
            return Err(too_large(args.data.0.len()));
        }
        let target = target_of(&ctx)?;
        let arguments = serde_json::to_value(&args)
            .map_err(|e| CommandError::new(format!("cannot forward the clipboard: {e}")))?;
        ask_agent(&ctx, &target, Self::NAME, arguments).await?;
        let selection = args.selection.unwrap_or(ClipboardSelection::Clipboard);
        let types = vec![args.mime_type];
        ctx.agent
            .state()
            .sessions
            .set_offer(target.agent.conn, selection, types.clone());
        // A copy made in the guest is news for the host; the host's own is not.
        if let Caller::Guest { .. } = ctx.call.caller {
            announce(&ctx, target.session, target.agent.uid, selection, types);
        }
        Ok(Empty {})
    }
}

impl Handler for GuestlinkClipboardGrab {
    async fn handle(ctx: Context<'_>, args: ClipboardGrabArgs) -> Result<Empty, CommandError> {
        let conn = connection(&ctx)?;
        if args.types.len() > TYPES_LIMIT {
            return Err(CommandError::new(format!(
                "{} MIME types is more than the limit clipboard-types ({TYPES_LIMIT})",
                args.types.len()
            )));
        }
        let selection = args.selection.unwrap_or(ClipboardSelection::Clipboard);
        let (session, uid) = ctx
            .agent
            .state()
            .sessions
            .set_offer(conn.id, selection, args.types.clone())
            .ok_or_else(|| {
                CommandError::new("only a registered session agent announces its clipboard")
            })?;
        announce(&ctx, session, uid, selection, args.types);
        Ok(Empty {})
    }
}

fn announce(
    ctx: &Context<'_>,
    session: String,
    uid: u32,
    selection: ClipboardSelection,
    types: Vec<String>,
) {
    ctx.agent.publish(
        EventRecord::new::<ClipboardChangedEvent>(&ClipboardChanged {
            session,
            selection,
            types,
        }),
        Audience::User(uid),
    );
}
