//! The dispatch table: one entry per command of the vocabulary available on this
//! platform, each binding the command's typed arguments and result to its handler.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use guestlink_vocabulary::commands::{GuestlinkBulkEnable, Payload};
use guestlink_vocabulary::types::parse_args;
use guestlink_vocabulary::{ArgError, Command, CommandInfo};
use serde_json::{Map, Value};

use crate::context::{Bulk, Context};
use crate::error::CommandError;
use crate::policy::DenyReason;

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
}

/// A successful call's result, still typed, for the front end to serialise.
pub struct Reply {
    value: Box<dyn erased_serde::Serialize + Send + Sync>,
    success_response: bool,
    size_hint: usize,
    payload: Option<Vec<u8>>,
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
pub(crate) struct Entry {
    pub(crate) info: CommandInfo,
    pub(crate) invoke: Invoke,
}

fn invoke<C: Handler>(
    ctx: Context<'_>,
    args: Map<String, Value>,
) -> BoxFuture<'_, Result<Reply, DispatchError>> {
    Box::pin(async move {
        let args = parse_args::<C::Args>(args)?;
        let bulk = ctx.bulk;
        if C::PAYLOAD != Payload::None && bulk.is_none() {
            return Err(CommandError::new(format!(
                "{} needs bulk transfer: call {} first",
                C::NAME,
                GuestlinkBulkEnable::NAME
            ))
            .into());
        }
        let value = C::handle(ctx, args).await?;
        Ok(Reply {
            size_hint: C::reply_size_hint(&value),
            value: Box::new(value),
            success_response: C::SUCCESS_RESPONSE,
            payload: bulk.and_then(Bulk::take_output),
        })
    })
}

fn entry<C: Handler>() -> Entry {
    Entry {
        info: CommandInfo::of::<C>(),
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
pub(crate) fn build_table() -> (Vec<&'static str>, HashMap<&'static str, Entry>) {
    let entries: Vec<Entry> = guestlink_vocabulary::for_each_command!(table_of);
    let entries: Vec<Entry> = entries.into_iter().filter(|e| e.info.available()).collect();
    let order = entries.iter().map(|e| e.info.name).collect();
    let map = entries.into_iter().map(|e| (e.info.name, e)).collect();
    (order, map)
}
