//! The clipboard of a user session, through its session agent: what it offers (known
//! without asking, from the agent's grabs), reading it and setting it (asked of the
//! agent when needed, so a large copy costs nothing until someone pastes), and the
//! agent's announcements that it changed.
//!
//! The host may also own a selection without sending anything (`clipboard-offer`, what
//! a SPICE client's grab becomes): the session agent takes the selection with the
//! types offered and, when a program pastes, fetches the data from the host connection
//! that offered it (`clipboard-fetch`, a `GUEST_REQUEST` sent to that connection only).

use guestlink_vocabulary::commands::{
    GuestlinkClipboardClear, GuestlinkClipboardFetch, GuestlinkClipboardFetchRaw,
    GuestlinkClipboardGet, GuestlinkClipboardGetRaw, GuestlinkClipboardGrab,
    GuestlinkClipboardOffer, GuestlinkClipboardSet, GuestlinkClipboardSetRaw,
    GuestlinkClipboardTypes,
};
use guestlink_vocabulary::events::{ClipboardChangedEvent, GuestRequestEvent};
use guestlink_vocabulary::types::{
    ClipboardChanged, ClipboardData, ClipboardGetArgs, ClipboardGrabArgs, ClipboardOfferArgs,
    ClipboardRaw, ClipboardSelection, ClipboardSelectionArgs, ClipboardSetArgs,
    ClipboardSetRawArgs, ClipboardTypes, ClipboardTypesArgs, Empty, GuestRequest,
};
use guestlink_vocabulary::Command;
use serde_json::json;

use super::events::{await_answer, connection};
use super::sessions::{ask_agent, ask_agent_with, target_of};
use super::{payload, send_raw};
use crate::call::Caller;
use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;
use crate::events::{Audience, EventRecord};
use crate::limits::{CLIPBOARD_FETCH_TIMEOUT, CLIPBOARD_SIZE, CLIPBOARD_TYPES};
use crate::state::pending::{Answered, Answerer};
use crate::state::sessions::HostOffer;

fn too_large(len: usize) -> CommandError {
    CommandError::new(format!(
        "clipboard content of {len} bytes is larger than the limit clipboard-size ({CLIPBOARD_SIZE})"
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
        Box::pin(get(&ctx, args)).await
    }

    fn reply_size_hint(reply: &ClipboardData) -> usize {
        reply.data.0.len() / 3 * 4
    }
}

impl Handler for GuestlinkClipboardGetRaw {
    async fn handle(
        ctx: Context<'_>,
        args: ClipboardGetArgs,
    ) -> Result<ClipboardRaw, CommandError> {
        let data = Box::pin(get(&ctx, args)).await?;
        Ok(ClipboardRaw {
            count: send_raw(&ctx, data.data.0)?,
            mime_type: data.mime_type,
        })
    }
}

impl Handler for GuestlinkClipboardSet {
    async fn handle(ctx: Context<'_>, args: ClipboardSetArgs) -> Result<Empty, CommandError> {
        let selection = args.selection.unwrap_or(ClipboardSelection::Clipboard);
        Box::pin(set(&ctx, selection, args.mime_type, args.data.0)).await
    }
}

impl Handler for GuestlinkClipboardSetRaw {
    async fn handle(ctx: Context<'_>, args: ClipboardSetRawArgs) -> Result<Empty, CommandError> {
        // The front end reads no bytes past the clipboard's limit.
        if usize::try_from(args.count).is_ok_and(|n| n > CLIPBOARD_SIZE) {
            return Err(too_large(args.count as usize));
        }
        let data = payload(&ctx, args.count)?;
        let selection = args.selection.unwrap_or(ClipboardSelection::Clipboard);
        Box::pin(set(&ctx, selection, args.mime_type, data)).await
    }
}

// `get`, `set` and `fetch` serve a base64 command and its raw twin each: they are
// awaited boxed, so that their code exists once rather than inlined into both.

/// Reads a clipboard of the caller's target session from its agent.
async fn get(ctx: &Context<'_>, args: ClipboardGetArgs) -> Result<ClipboardData, CommandError> {
    let target = target_of(ctx)?;
    let selection = args.selection.unwrap_or(ClipboardSelection::Clipboard);
    let mut arguments = json!({ "selection": selection.as_str() });
    if let Some(t) = &args.mime_type {
        arguments["mime-type"] = t.as_str().into();
    }
    let answer = ask_agent(ctx, &target, GuestlinkClipboardGet::NAME, arguments).await?;
    clipboard_of(answer, "the session agent")
}

/// Sets a clipboard of the caller's target session through its agent.
async fn set(
    ctx: &Context<'_>,
    selection: ClipboardSelection,
    mime_type: String,
    data: Vec<u8>,
) -> Result<Empty, CommandError> {
    if data.len() > CLIPBOARD_SIZE {
        return Err(too_large(data.len()));
    }
    let target = target_of(ctx)?;
    // The bytes go raw, or in base64, as the agent takes them (no copy kept here).
    let arguments = json!({ "selection": selection.as_str(), "mime-type": mime_type });
    let command = GuestlinkClipboardSet::NAME;
    ask_agent_with(ctx, &target, command, arguments, Some(data)).await?;
    let types = vec![mime_type];
    let sessions = &ctx.agent.state().sessions;
    sessions.set_offer(target.agent.conn, selection, types.clone());
    sessions.drop_host_offers(None, Some(selection));
    // A copy made in the guest is news for the host; the host's own is not.
    if let Caller::Guest { .. } = ctx.call.caller {
        announce(ctx, target.session, target.agent.uid, selection, types);
    }
    Ok(Empty {})
}

impl Handler for GuestlinkClipboardGrab {
    async fn handle(ctx: Context<'_>, args: ClipboardGrabArgs) -> Result<Empty, CommandError> {
        let conn = connection(&ctx)?;
        if args.types.len() > CLIPBOARD_TYPES {
            return Err(CommandError::new(format!(
                "{} MIME types is more than the limit clipboard-types ({CLIPBOARD_TYPES})",
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
        // A program in the guest took the selection: whatever the host offered is gone.
        if ctx
            .agent
            .state()
            .sessions
            .host_offer(&session, selection)
            .is_some()
        {
            ctx.agent
                .state()
                .sessions
                .drop_host_offers(None, Some(selection));
        }
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

/// Clipboard contents as another party answered them: in base64 inside the value, or
/// raw beside it (the value then has the `mime-type`).
fn clipboard_of(answer: Answered, who: &str) -> Result<ClipboardData, CommandError> {
    let malformed = |e: String| CommandError::new(format!("{who} sent a malformed clipboard: {e}"));
    let data = match answer.data {
        Some(bytes) => ClipboardData {
            mime_type: answer.value["mime-type"]
                .as_str()
                .ok_or_else(|| malformed("no 'mime-type'".into()))?
                .to_string(),
            data: bytes.into(),
        },
        None => serde_json::from_value(answer.value).map_err(|e| malformed(e.to_string()))?,
    };
    if data.data.0.len() > CLIPBOARD_SIZE {
        return Err(too_large(data.data.0.len()));
    }
    Ok(data)
}

impl Handler for GuestlinkClipboardOffer {
    async fn handle(ctx: Context<'_>, args: ClipboardOfferArgs) -> Result<Empty, CommandError> {
        let conn = connection(&ctx)?;
        if args.types.len() > CLIPBOARD_TYPES {
            return Err(CommandError::new(format!(
                "{} MIME types is more than the limit clipboard-types ({CLIPBOARD_TYPES})",
                args.types.len()
            )));
        }
        let target = target_of(&ctx)?;
        let selection = args.selection.unwrap_or(ClipboardSelection::Clipboard);
        let sessions = &ctx.agent.state().sessions;
        // Recorded first, so that a paste right after the agent took the selection
        // finds where to fetch from.
        sessions.set_host_offer(
            selection,
            Some(HostOffer {
                session: target.session.clone(),
                conn: conn.id,
                mailbox: conn.events.clone(),
                types: args.types.clone(),
            }),
        );
        let arguments = json!({ "selection": selection.as_str(), "types": args.types });
        if let Err(e) = ask_agent(&ctx, &target, Self::NAME, arguments).await {
            sessions.drop_host_offers(Some(conn.id), Some(selection));
            return Err(e);
        }
        sessions.set_offer(target.agent.conn, selection, args.types);
        Ok(Empty {})
    }
}

impl Handler for GuestlinkClipboardFetch {
    async fn handle(
        ctx: Context<'_>,
        args: ClipboardSelectionArgs,
    ) -> Result<ClipboardData, CommandError> {
        Box::pin(fetch(&ctx, args)).await
    }

    fn reply_size_hint(reply: &ClipboardData) -> usize {
        reply.data.0.len() / 3 * 4
    }
}

impl Handler for GuestlinkClipboardFetchRaw {
    async fn handle(
        ctx: Context<'_>,
        args: ClipboardSelectionArgs,
    ) -> Result<ClipboardRaw, CommandError> {
        let data = Box::pin(fetch(&ctx, args)).await?;
        Ok(ClipboardRaw {
            count: send_raw(&ctx, data.data.0)?,
            mime_type: data.mime_type,
        })
    }
}

/// The host's data for a paste of what it offered, asked of the host connection that
/// offered it (a `GUEST_REQUEST` to it alone).
async fn fetch(
    ctx: &Context<'_>,
    args: ClipboardSelectionArgs,
) -> Result<ClipboardData, CommandError> {
    let conn = connection(ctx)?;
    let Caller::Guest { uid, pid } = ctx.call.caller else {
        return Err(CommandError::new("only session agents fetch from the host"));
    };
    let selection = args.selection.unwrap_or(ClipboardSelection::Clipboard);
    let state = ctx.agent.state();
    let (session, _) = state.sessions.session_of(conn.id).ok_or_else(|| {
        CommandError::new("only a registered session agent fetches the host's clipboard")
    })?;
    let offer = state
        .sessions
        .host_offer(&session, selection)
        .ok_or_else(|| {
            CommandError::new(format!(
                "the host offers nothing in the {} selection",
                selection.as_str()
            ))
        })?;
    let mime = match args.mime_type {
        Some(m) if offer.types.contains(&m) => m,
        Some(m) => {
            return Err(CommandError::new(format!(
                "the host does not offer {m} (it offers {})",
                offer.types.join(", ")
            )))
        }
        None => offer.types[0].clone(),
    };
    let mut ticket = state
        .pending
        .open(Answerer::Connection(offer.conn), ctx.call.caller)?;
    let request = GuestRequest {
        tag: ticket.tag,
        uid: i64::from(uid),
        pid: i64::from(pid),
        session: Some(session),
        command: GuestlinkClipboardFetch::NAME.to_string(),
        arguments: json!({ "selection": selection.as_str(), "mime-type": mime }),
    };
    if !offer
        .mailbox
        .send(EventRecord::new::<GuestRequestEvent>(&request))
    {
        return Err(CommandError::new("the host is not reading its requests"));
    }
    let answer = await_answer(&mut ticket, CLIPBOARD_FETCH_TIMEOUT, "the host").await?;
    clipboard_of(answer, "the host")
}

impl Handler for GuestlinkClipboardClear {
    async fn handle(ctx: Context<'_>, args: ClipboardSelectionArgs) -> Result<Empty, CommandError> {
        let target = target_of(&ctx)?;
        let selection = args.selection.unwrap_or(ClipboardSelection::Clipboard);
        ask_agent(
            &ctx,
            &target,
            Self::NAME,
            json!({ "selection": selection.as_str() }),
        )
        .await?;
        let sessions = &ctx.agent.state().sessions;
        sessions.set_offer(target.agent.conn, selection, Vec::new());
        sessions.drop_host_offers(None, Some(selection));
        if let Caller::Guest { .. } = ctx.call.caller {
            announce(
                &ctx,
                target.session,
                target.agent.uid,
                selection,
                Vec::new(),
            );
        }
        Ok(Empty {})
    }
}
