//! User sessions and session agents: listing sessions, a session agent registering
//! and answering guestlinkd's requests, and asking an agent to act on its desktop.

use std::time::Duration;

use guestlink_vocabulary::commands::{
    GuestlinkGetSessions, GuestlinkSessionData, GuestlinkSessionRegister, GuestlinkSessionReply,
};
use guestlink_vocabulary::events::{SessionAgentEvent, SessionRequestEvent};
use guestlink_vocabulary::types::{
    base64_encode, Empty, ReplyArgs, SessionAgentChange, SessionData, SessionDataArgs, SessionInfo,
    SessionRegisterArgs, SessionRegistered, SessionRequest,
};
use serde_json::Value;

use super::events::{answer_of, await_answer, connection};
use crate::call::Caller;
use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;
use crate::events::{Audience, EventRecord};
use crate::state::pending::{Answered, Answerer};
use crate::state::sessions::Target;

/// How long a session agent has to act on a request.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

impl Handler for GuestlinkGetSessions {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<Vec<SessionInfo>, CommandError> {
        Ok(ctx.agent.state().sessions.list())
    }
}

impl Handler for GuestlinkSessionRegister {
    async fn handle(
        ctx: Context<'_>,
        args: SessionRegisterArgs,
    ) -> Result<SessionRegistered, CommandError> {
        let conn = connection(&ctx)?;
        let Caller::Guest { uid, pid } = ctx.call.caller else {
            return Err(CommandError::new(
                "only session agents in the guest register",
            ));
        };
        // The caller's own session; for a program outside any (a systemd user unit),
        // the user's display session.
        let session = match args.session {
            Some(s) if !s.is_empty() => s,
            _ => ctx
                .call
                .session
                .as_deref()
                .map(String::from)
                .or_else(|| ctx.agent.state().sessions.user_session(uid))
                .ok_or_else(|| {
                    CommandError::new("cannot tell the caller's session: give 'session'")
                })?,
        };
        may_register(&ctx, uid)?;
        let capabilities = args
            .capabilities
            .unwrap_or_else(|| vec!["clipboard".into()]);
        ctx.agent.state().sessions.register(
            &session,
            conn.id,
            uid,
            conn.events.clone(),
            capabilities,
        )?;
        tracing::info!(session = %session, uid, pid, "session agent registered");
        ctx.agent.publish(
            EventRecord::new::<SessionAgentEvent>(&SessionAgentChange {
                session: session.clone(),
                uid: i64::from(uid),
                present: true,
            }),
            Audience::User(uid),
        );
        Ok(SessionRegistered {
            session,
            uid: i64::from(uid),
        })
    }
}

impl Handler for GuestlinkSessionReply {
    async fn handle(ctx: Context<'_>, args: ReplyArgs) -> Result<Empty, CommandError> {
        let conn = connection(&ctx)?;
        let (tag, answer) = answer_of(args)?;
        ctx.agent
            .state()
            .pending
            .answer(tag, Answerer::Connection(conn.id), answer)?;
        Ok(Empty {})
    }
}

impl Handler for GuestlinkSessionData {
    async fn handle(ctx: Context<'_>, args: SessionDataArgs) -> Result<SessionData, CommandError> {
        let conn = connection(&ctx)?;
        let data = ctx
            .agent
            .state()
            .pending
            .take_data(args.tag, Answerer::Connection(conn.id))?;
        Ok(SessionData {
            count: super::send_raw(&ctx, data)?,
        })
    }
}

/// Without a session source nobody vouches for a registration's session, and the
/// newest agent gets the host's clipboard and file drops: only root, a configured
/// `--session-user`, or the user logged in on a local seat (utmp) may register then.
fn may_register(ctx: &Context<'_>, uid: u32) -> Result<(), CommandError> {
    let agent = ctx.agent;
    if uid == 0 || agent.state().sessions.has_back_end() || agent.session_users().contains(&uid) {
        return Ok(());
    }
    let platform = agent.platform();
    let on_seat = platform
        .system
        .seat_users()
        .iter()
        .filter_map(|name| platform.accounts.lookup(name).ok())
        .any(|account| account.uid == uid);
    if on_seat {
        return Ok(());
    }
    tracing::warn!(uid, "session agent refused: no session source, and the user is neither configured nor on a local seat");
    Err(CommandError::new(format!(
        "uid {uid} may not register a session agent: without a session source only root, a --session-user or the user logged in on a local seat may"
    )))
}

/// The session agent `ctx`'s caller may reach: the active session's for the host and
/// root, one of the caller's own otherwise.
pub(crate) fn target_of(ctx: &Context<'_>) -> Result<Target, CommandError> {
    let own = match ctx.call.caller {
        Caller::Guest { .. } => ctx.call.session.as_deref().map(String::from),
        Caller::Host => None,
    };
    ctx.agent
        .state()
        .sessions
        .target(ctx.call.caller, own.as_deref())
}

/// The capability of a session agent that takes a request's bytes raw
/// (`session-data`) and may answer with raw bytes (`reply-raw`).
pub const BINARY: &str = "binary";

/// Asks a session agent to run `command` on its desktop and waits for its answer.
pub(crate) async fn ask_agent(
    ctx: &Context<'_>,
    target: &Target,
    command: &str,
    arguments: Value,
) -> Result<Answered, CommandError> {
    ask_agent_with(ctx, target, command, arguments, None).await
}

/// [`ask_agent`] with bytes for the agent (`arguments.data`): announced as
/// `arguments.count` and kept for `session-data` when the agent takes them raw, else
/// put into `arguments.data` in base64.
pub(crate) async fn ask_agent_with(
    ctx: &Context<'_>,
    target: &Target,
    command: &str,
    mut arguments: Value,
    data: Option<Vec<u8>>,
) -> Result<Answered, CommandError> {
    let raw = target.agent.capabilities.iter().any(|c| c == BINARY);
    let outbound = match data {
        Some(bytes) if raw => {
            arguments["count"] = bytes.len().into();
            Some(bytes)
        }
        Some(bytes) => {
            arguments["data"] = base64_encode(&bytes).into();
            None
        }
        None => None,
    };
    let mut ticket = ctx.agent.state().pending.open_with(
        Answerer::Connection(target.agent.conn),
        ctx.call.caller,
        outbound,
    )?;
    let request = SessionRequest {
        tag: ticket.tag,
        command: command.to_string(),
        arguments,
    };
    if !target
        .agent
        .mailbox
        .send(EventRecord::new::<SessionRequestEvent>(&request))
    {
        return Err(CommandError::new(format!(
            "the session agent of session '{}' is not reading its requests",
            target.session
        )));
    }
    await_answer(&mut ticket, SESSION_TIMEOUT, "the session agent").await
}
