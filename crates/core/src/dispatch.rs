//! Running a command: the dispatch table (one entry per command of the vocabulary
//! available on this platform, binding its typed arguments and result to its handler)
//! and the one path every call takes through it: look-up, the gate, the arguments,
//! the handler. [`Agent::execute`] takes a [`Call`] from a JSON front end;
//! [`Agent::call`] takes typed arguments from a front end that has no JSON of its own.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

use guestlink_vocabulary::commands::{GuestlinkBulkEnable, Payload};
use guestlink_vocabulary::types::parse_args;
use guestlink_vocabulary::{ArgError, Command, CommandMeta};
use serde_json::{Map, Value};

use crate::agent::Agent;
use crate::call::{Bulk, CallContext, Caller};
use crate::connection::Connection;
use crate::context::Context;
use crate::error::CommandError;
use crate::policy::{Decision, DenyReason};

/// A boxed future borrowing the call context.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A command's implementation.
pub trait Handler: Command {
    /// Runs the command.
    fn handle<'a>(
        ctx: Context<'a>,
        args: Self::Args,
    ) -> impl Future<Output = Result<Self::Returns, CommandError>> + Send + 'a;

    /// Roughly how many bytes the reply's bulk data takes once encoded, so that a
    /// front end can stream large replies instead of building them in memory.
    fn reply_size_hint(_reply: &Self::Returns) -> usize {
        0
    }

    /// What the gate checks besides the command's own name for these arguments (an
    /// action is gated as itself and as what it needs). Nothing by default.
    fn gates(_agent: &Agent, _args: &Self::Args) -> Vec<String> {
        Vec::new()
    }

    /// A reply whose bulk data is read while the front end encodes it, instead of one
    /// `handle` builds: a large `guest-file-read` reads the file a piece at a time as its
    /// base64 text goes out, so the data never sits whole in memory. It runs after the
    /// gate, on the async thread, so it must not block. `None` (the default) runs
    /// `handle`.
    fn streamed(_ctx: &Context<'_>, _args: &Self::Args) -> Result<Option<Lazy>, CommandError> {
        Ok(None)
    }
}

/// A result serialised as it is read (see [`Handler::streamed`]). Its value reads its
/// data when serialised, so it is serialised once.
pub struct Lazy {
    /// The result, in the shape of the command's return type.
    pub value: Box<dyn erased_serde::Serialize + Send + Sync>,
    /// Roughly how large its encoded bulk data is.
    pub size_hint: usize,
}

impl fmt::Debug for Lazy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lazy({} bytes)", self.size_hint)
    }
}

/// A successful call's result, still typed, for the front end to serialise.
pub struct Reply {
    value: Box<dyn erased_serde::Serialize + Send + Sync>,
    success_response: bool,
    size_hint: usize,
    payload: Option<Vec<u8>>,
    /// Serialising the value reads its data ([`Lazy`]).
    lazy: bool,
}

impl Reply {
    /// Whether the protocol should send this result (false for `guest-shutdown` and the
    /// suspend commands, which reply only on failure).
    pub fn has_response(&self) -> bool {
        self.success_response
    }

    /// Roughly how large the encoded bulk data of the result is (0 for small replies).
    pub fn size_hint(&self) -> usize {
        self.size_hint
    }

    /// The result, serialisable by any serde serializer.
    pub fn value(&self) -> &(dyn erased_serde::Serialize + Send + Sync) {
        &*self.value
    }

    /// The raw bytes that follow the reply (bulk transfer), once.
    pub fn take_payload(&mut self) -> Option<Vec<u8>> {
        self.payload.take()
    }

    /// The result as a JSON value.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.value()).unwrap_or(Value::Null)
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lazy {
            // Serialising would read (and use up) the data.
            return f.write_str("Reply(read while encoded)");
        }
        f.debug_struct("Reply")
            .field("value", &self.to_json())
            .field("success_response", &self.success_response)
            .finish()
    }
}

/// Why a call produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// No such command.
    #[error("The command {0} has not been found")]
    NotFound(String),
    /// The gate refused the command.
    #[error("Command {name} has been disabled: {}", reason.qga_text())]
    Disabled {
        /// The command.
        name: String,
        /// Which rule refused it.
        reason: DenyReason,
    },
    /// Arguments that do not fit the declaration.
    #[error(transparent)]
    Args(#[from] ArgError),
    /// The command ran and failed.
    #[error(transparent)]
    Command(#[from] CommandError),
}

type Invoke =
    for<'a> fn(Context<'a>, Map<String, Value>) -> BoxFuture<'a, Result<Reply, DispatchError>>;

/// One entry of the table.
#[derive(Clone, Copy)]
struct Entry {
    info: CommandMeta,
    invoke: Invoke,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.info.name)
    }
}

/// The handler's part of a call, after look-up and the command's own gate: the
/// gates its arguments add, then the handler itself.
async fn run<C: Handler>(ctx: Context<'_>, args: C::Args) -> Result<Reply, DispatchError> {
    let bulk = ctx.bulk;
    prepare::<C>(&ctx, &args)?;
    if let Some(lazy) = C::streamed(&ctx, &args)? {
        return Ok(Reply {
            value: lazy.value,
            success_response: C::SUCCESS_RESPONSE,
            size_hint: lazy.size_hint,
            payload: None,
            lazy: true,
        });
    }
    // Boxed: the handler's code then exists once, whether the table runs it or a front
    // end calls it directly (`Agent::call`), instead of inlined into each caller.
    let value = Box::pin(C::handle(ctx, args)).await?;
    Ok(Reply {
        size_hint: C::reply_size_hint(&value),
        value: Box::new(value),
        success_response: C::SUCCESS_RESPONSE,
        payload: bulk.and_then(Bulk::take_output),
        lazy: false,
    })
}

/// What every call of `C` passes before its handler: the gates its arguments add, and
/// bulk transfer for a command with a payload.
fn prepare<C: Handler>(ctx: &Context<'_>, args: &C::Args) -> Result<(), DispatchError> {
    admit(ctx.agent, ctx.call, C::NAME, C::gates(ctx.agent, args))?;
    admitted(ctx, C::NAME, C::PAYLOAD)
}

/// The part of [`prepare`] that does not depend on the command's type: written once,
/// not once per command (a log call site costs its code in every copy).
fn admitted(ctx: &Context<'_>, name: &'static str, payload: Payload) -> Result<(), DispatchError> {
    if payload != Payload::None && ctx.bulk.is_none() {
        return Err(CommandError::new(format!(
            "{name} needs bulk transfer: call {} first",
            GuestlinkBulkEnable::NAME
        ))
        .into());
    }
    tracing::info!(command = name, channel = %ctx.call.channel.name, "{name} called");
    Ok(())
}

fn invoke<C: Handler>(
    ctx: Context<'_>,
    args: Map<String, Value>,
) -> BoxFuture<'_, Result<Reply, DispatchError>> {
    Box::pin(async move {
        let args = parse_args::<C::Args>(args)?;
        run::<C>(ctx, args).await
    })
}

fn entry<C: Handler>() -> Entry {
    Entry {
        info: CommandMeta::of::<C>(),
        invoke: invoke::<C>,
    }
}

macro_rules! table_of {
    ($($c:path),*) => {
        vec![$(entry::<$c>()),*]
    };
}

/// Every command of the vocabulary with its handler, in declaration order, keeping
/// only those available on this platform.
struct Table {
    order: Vec<&'static str>,
    entries: HashMap<&'static str, Entry>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let entries: Vec<Entry> = guestlink_vocabulary::for_each_command!(table_of);
    let entries: Vec<Entry> = entries.into_iter().filter(|e| e.info.available()).collect();
    Table {
        order: entries.iter().map(|e| e.info.name).collect(),
        entries: entries.into_iter().map(|e| (e.info.name, e)).collect(),
    }
});

/// Whether `caller` can reach a command at all: host channels the host commands, the
/// guest socket the guest ones.
fn in_scope(info: &CommandMeta, caller: Caller) -> bool {
    match caller {
        Caller::Host => info.scope.host(),
        Caller::Guest { .. } => info.scope.guest(),
    }
}

/// The command `name` as `caller` can reach it, or why not.
fn look_up(name: &str, call: &CallContext) -> Result<&'static Entry, DispatchError> {
    match TABLE.entries.get(name) {
        Some(e) if in_scope(&e.info, call.caller) => Ok(e),
        _ => {
            tracing::debug!(command = name, channel = %call.channel.name, "unknown command");
            Err(DispatchError::NotFound(name.to_string()))
        }
    }
}

/// The gate: each of `gates` must be allowed for `call` now.
fn admit(
    agent: &Agent,
    call: &CallContext,
    command: &str,
    gates: impl IntoIterator<Item = String>,
) -> Result<(), DispatchError> {
    for g in gates {
        if let Decision::Deny(reason) = agent.decide(&g, call) {
            let key = format!("{command}\0{g}\0{}", reason.as_str());
            if agent.first_refusal(&key) {
                tracing::warn!(command, gate = %g, channel = %call.channel.name, reason = reason.as_str(), "command refused by the policy (logged once; `guestlinkd --explain command={command}` says why)");
            } else {
                tracing::info!(command, gate = %g, channel = %call.channel.name, reason = reason.as_str(), "command denied");
            }
            return Err(DispatchError::Disabled { name: g, reason });
        }
    }
    Ok(())
}

/// One call of a command: which, with what, from where.
#[derive(Debug)]
pub struct Call<'a> {
    /// Where the call comes from.
    pub from: &'a CallContext,
    /// The command.
    pub name: &'a str,
    /// Its arguments object.
    pub args: Map<String, Value>,
    /// The conversation, when a front end makes the call (not a test or an internal
    /// caller).
    pub conn: Option<&'a Connection>,
    /// Raw bytes in and out, on a connection that turned bulk transfer on.
    pub bulk: Option<&'a Bulk>,
}

impl<'a> Call<'a> {
    /// `name` with `args`, from `from`, outside any conversation.
    pub fn new(from: &'a CallContext, name: &'a str, args: Map<String, Value>) -> Call<'a> {
        Call {
            from,
            name,
            args,
            conn: None,
            bulk: None,
        }
    }

    /// `name` with `args` in the conversation `conn`.
    pub fn on(conn: &'a Connection, name: &'a str, args: Map<String, Value>) -> Call<'a> {
        Call {
            conn: Some(conn),
            ..Call::new(&conn.call, name, args)
        }
    }

    /// With the raw bytes of a connection in bulk mode: those that came with the
    /// request, and a place for those that go with the reply (see
    /// [`Reply::take_payload`]). Commands with a payload fail without it.
    pub fn with_bulk(self, bulk: Option<&'a Bulk>) -> Call<'a> {
        Call { bulk, ..self }
    }
}

/// A command with the gate's current verdict on it.
#[derive(Debug, Clone, Copy)]
pub struct CommandStatus {
    /// The command's declaration.
    pub info: CommandMeta,
    /// Whether the gate allows it now (for host channels).
    pub enabled: bool,
}

impl Agent {
    /// Runs one command: look-up, the gate, argument validation, the handler.
    pub async fn execute(&self, call: Call<'_>) -> Result<Reply, DispatchError> {
        let entry = look_up(call.name, call.from)?;
        admit(self, call.from, call.name, [call.name.to_string()])?;
        let ctx = Context {
            agent: self,
            call: call.from,
            bulk: call.bulk,
            conn: call.conn,
        };
        (entry.invoke)(ctx, call.args).await
    }

    /// Runs command `C` with typed arguments on the conversation `conn` (a front end
    /// with no JSON of its own: vdagent, oVirt), through the same look-up and gate as
    /// [`Agent::execute`]; `payload` is the raw bytes that came with it.
    pub async fn call<C: Handler>(
        &self,
        conn: &Connection,
        args: C::Args,
        payload: Option<Vec<u8>>,
    ) -> Result<C::Returns, DispatchError> {
        look_up(C::NAME, &conn.call)?;
        admit(self, &conn.call, C::NAME, [C::NAME.to_string()])?;
        let bulk = payload.map(|p| Bulk::new(Some(p)));
        let ctx = Context {
            agent: self,
            call: &conn.call,
            bulk: bulk.as_ref(),
            conn: Some(conn),
        };
        prepare::<C>(&ctx, &args)?;
        Ok(Box::pin(C::handle(ctx, args)).await?)
    }

    /// Names of the commands this agent has, in declaration order.
    pub fn command_names(&self) -> &'static [&'static str] {
        &TABLE.order
    }

    /// The declaration of a command this agent has.
    pub fn command_info(&self, name: &str) -> Option<CommandMeta> {
        TABLE.entries.get(name).map(|e| e.info)
    }

    /// Every command `call`'s caller can reach on its channel, with whether the gate
    /// allows it now.
    pub fn command_status(&self, call: &CallContext) -> Vec<CommandStatus> {
        TABLE
            .order
            .iter()
            .map(|name| &TABLE.entries[name])
            .filter(|e| in_scope(&e.info, call.caller))
            .map(|e| CommandStatus {
                info: e.info,
                enabled: self.decide(e.info.name, call) == Decision::Allow,
            })
            .collect()
    }
}
