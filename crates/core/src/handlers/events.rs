//! Events and forwarded requests: subscribing, a guest program's request to the host
//! and the host's answer.

use std::time::Duration;

use guestlink_vocabulary::commands::{
    GuestlinkEventsSubscribe, GuestlinkEventsUnsubscribe, GuestlinkGuestReply,
    GuestlinkHostRequest, GuestlinkReplyRaw,
};
use guestlink_vocabulary::events::{
    EventsDroppedEvent, GuestRequestEvent, SessionRequestEvent, EVENT_NAMES,
};
use guestlink_vocabulary::types::{
    Empty, GuestRequest, HostRequestArgs, RawReplyArgs, ReplyArgs, SubscribeArgs, Subscription,
    UnsubscribeArgs,
};
use guestlink_vocabulary::Event;
use serde_json::Value;

use crate::call::Caller;
use crate::connection::Connection;
use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;
use crate::events::{Audience, EventRecord, Listener};
use crate::limits::{EVENT_HEARTBEAT_MAX, HOST_REQUEST_TIMEOUT_MAX};
use crate::state::pending::{Answer, Answered, Answerer, Ticket};

/// How long a guest program waits for the host by default, in seconds.
pub const HOST_TIMEOUT_DEFAULT: i64 = 30;

/// Events nobody subscribes to by name: sent to one session agent, or automatic.
const NOT_SUBSCRIBABLE: &[&str] = &[SessionRequestEvent::NAME, EventsDroppedEvent::NAME];

pub(crate) fn connection<'a>(ctx: &Context<'a>) -> Result<&'a Connection, CommandError> {
    ctx.conn
        .ok_or_else(|| CommandError::new("this command needs a connection to a peer"))
}

/// The event names listed, or every subscribable one.
fn event_names(names: Option<Vec<String>>) -> Result<Vec<&'static str>, CommandError> {
    match names {
        None => Ok(EVENT_NAMES
            .iter()
            .copied()
            .filter(|n| !NOT_SUBSCRIBABLE.contains(n))
            .collect()),
        Some(list) => list
            .iter()
            .map(|n| match EVENT_NAMES.iter().find(|e| *e == n) {
                Some(e) if !NOT_SUBSCRIBABLE.contains(e) => Ok(*e),
                Some(_) => Err(CommandError::new(format!(
                    "event '{n}' cannot be subscribed to"
                ))),
                None => Err(CommandError::new(format!("unknown event '{n}'"))),
            })
            .collect(),
    }
}

fn current(conn: &Connection) -> Subscription {
    Subscription {
        events: conn.events.names().iter().map(|n| n.to_string()).collect(),
        heartbeat: conn.events.heartbeat().map(|d| d.as_secs() as i64),
    }
}

impl Handler for GuestlinkEventsSubscribe {
    async fn handle(ctx: Context<'_>, args: SubscribeArgs) -> Result<Subscription, CommandError> {
        let conn = connection(&ctx)?;
        let names = event_names(args.events)?;
        let heartbeat = match args.heartbeat {
            None => None,
            Some(0) => Some(None),
            Some(s @ 1..=EVENT_HEARTBEAT_MAX) => Some(Some(Duration::from_secs(s as u64))),
            Some(_) => {
                return Err(CommandError::new(format!(
                "Parameter 'heartbeat' expects a number of seconds from 0 to {EVENT_HEARTBEAT_MAX}"
            )))
            }
        };
        conn.events.add(&names);
        if let Some(h) = heartbeat {
            conn.events.set_heartbeat(h);
        }
        tracing::info!(channel = %conn.call.channel.name, events = ?conn.events.names(), "events subscribed");
        Ok(current(conn))
    }
}

impl Handler for GuestlinkEventsUnsubscribe {
    async fn handle(ctx: Context<'_>, args: UnsubscribeArgs) -> Result<Subscription, CommandError> {
        let conn = connection(&ctx)?;
        if args.events.is_none() {
            conn.events.clear();
        } else {
            conn.events.remove(&event_names(args.events)?);
        }
        Ok(current(conn))
    }
}

/// The answer carried by a reply command: its `return` or its `error`.
pub(crate) fn answer_of(args: ReplyArgs) -> Result<(i64, Answer), CommandError> {
    match (args.ret, args.error) {
        (Some(v), None) => Ok((args.tag, Ok(v.into()))),
        (None, Some(e)) => Ok((args.tag, Err(e))),
        _ => Err(CommandError::new(
            "exactly one of 'return' and 'error' must be given",
        )),
    }
}

/// The answer carried by a raw reply command: its `return` with the bytes that
/// followed the request (`count` of them) as its data.
pub(crate) fn raw_answer_of(
    ctx: &Context<'_>,
    args: RawReplyArgs,
) -> Result<(i64, Answer), CommandError> {
    let data = Some(super::payload(ctx, args.count)?);
    let value = args
        .ret
        .unwrap_or_else(|| Value::Object(Default::default()));
    Ok((args.tag, Ok(Answered { value, data })))
}

impl Handler for GuestlinkGuestReply {
    async fn handle(ctx: Context<'_>, args: ReplyArgs) -> Result<Empty, CommandError> {
        let (tag, answer) = answer_of(args)?;
        host_answers(&ctx, tag, answer)
    }
}

impl Handler for GuestlinkReplyRaw {
    async fn handle(ctx: Context<'_>, args: RawReplyArgs) -> Result<Empty, CommandError> {
        let (tag, answer) = raw_answer_of(&ctx, args)?;
        match ctx.call.caller {
            // A session agent answers what was sent to its connection, nothing else.
            Caller::Guest { .. } => {
                let conn = connection(&ctx)?;
                ctx.agent
                    .state()
                    .pending
                    .answer(tag, Answerer::Connection(conn.id), answer)?;
                Ok(Empty {})
            }
            Caller::Host => host_answers(&ctx, tag, answer),
        }
    }
}

/// Delivers a host's answer: to a request sent to this connection alone (a clipboard
/// fetch), else to one any host may answer.
fn host_answers(ctx: &Context<'_>, tag: i64, answer: Answer) -> Result<Empty, CommandError> {
    let pending = &ctx.agent.state().pending;
    match ctx.conn {
        Some(conn) if pending.is_for(tag, Answerer::Connection(conn.id)) => {
            pending.answer(tag, Answerer::Connection(conn.id), answer)?
        }
        _ => pending.answer(tag, Answerer::Host, answer)?,
    }
    Ok(Empty {})
}

/// Waits for a ticket's answer for at most `timeout`, as this call's result.
pub(crate) async fn await_answer(
    ticket: &mut Ticket<'_>,
    timeout: Duration,
    who: &str,
) -> Result<Answered, CommandError> {
    match tokio::time::timeout(timeout, ticket.answer()).await {
        Ok(Some(Ok(answered))) => Ok(answered),
        Ok(Some(Err(e))) => Err(CommandError::new(e.desc)),
        Ok(None) => Err(CommandError::new(format!("{who} went away"))),
        Err(_) => Err(CommandError::new(format!(
            "{who} did not answer within {} seconds",
            timeout.as_secs()
        ))),
    }
}

impl Handler for GuestlinkHostRequest {
    async fn handle(ctx: Context<'_>, args: HostRequestArgs) -> Result<Value, CommandError> {
        let Caller::Guest { uid, pid } = ctx.call.caller else {
            return Err(CommandError::new("only programs in the guest ask the host"));
        };
        let arguments = match args.arguments {
            None => Value::Object(Default::default()),
            Some(v @ Value::Object(_)) => v,
            Some(_) => {
                return Err(CommandError::new(
                    "Invalid parameter type for 'arguments', expected: object",
                ))
            }
        };
        let timeout = args.timeout.unwrap_or(HOST_TIMEOUT_DEFAULT);
        if !(1..=HOST_REQUEST_TIMEOUT_MAX).contains(&timeout) {
            return Err(CommandError::new(format!(
                "Parameter 'timeout' expects a number of seconds from 1 to {HOST_REQUEST_TIMEOUT_MAX}"
            )));
        }
        let agent = ctx.agent;
        if !agent
            .events()
            .has_listener(Listener::Host, GuestRequestEvent::NAME)
        {
            return Err(CommandError::new(
                "no host is listening: none has subscribed to GUEST_REQUEST",
            ));
        }
        let mut ticket = agent
            .state()
            .pending
            .open(Answerer::Host, ctx.call.caller)?;
        let request = GuestRequest {
            tag: ticket.tag,
            uid: i64::from(uid),
            pid: i64::from(pid),
            session: ctx.call.session.as_deref().map(String::from),
            command: args.command,
            arguments,
        };
        tracing::info!(tag = ticket.tag, uid, pid, command = %request.command, "guest request to the host");
        let queued = agent.events().publish(
            EventRecord::new::<GuestRequestEvent>(&request),
            Audience::Host,
        );
        if queued == 0 {
            // Every listening host is too far behind to take it: fail now rather than
            // let the caller wait out its timeout for a request nobody got.
            return Err(CommandError::new(
                "no host took the request: its event queue is full",
            ));
        }
        await_answer(&mut ticket, Duration::from_secs(timeout as u64), "the host")
            .await
            .map(|a| a.value)
    }
}
