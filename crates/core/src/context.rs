//! What a handler can reach: the agent, the call, its bulk bytes and its conversation.

use crate::agent::Agent;
use crate::call::{Bulk, CallContext};
use crate::connection::Connection;

/// What a handler receives besides its arguments.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The agent: state, platform, command table.
    pub agent: &'a Agent,
    /// Where the call comes from.
    pub call: &'a CallContext,
    /// Raw bytes in and out, when the connection turned bulk transfer on.
    pub bulk: Option<&'a Bulk>,
    /// The conversation, when the call comes from a front end (not from a test or an
    /// internal caller).
    pub conn: Option<&'a Connection>,
}
