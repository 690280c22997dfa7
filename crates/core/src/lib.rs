//! The protocol-neutral core of guestlinkd.
//!
//! A front end (QGA, the guest socket) turns a wire message into a [`Call`]: a command
//! name, an arguments object and a [`CallContext`] saying which channel and caller it
//! comes from, and hands it to [`Agent::execute`]; a front end with no JSON of its own
//! (vdagent, oVirt) calls [`Agent::call`] with typed arguments instead. The agent then
//! 1. looks the command up in the dispatch table built from the vocabulary,
//! 2. asks the one [`policy`] gate whether this call is allowed now,
//! 3. validates the arguments into the command's typed arguments,
//! 4. runs the handler with a [`Context`] giving access to state and platform,
//! 5. returns a typed [`Reply`] that the front end serialises in its own format.
//!
//! Handlers never see wire types; platform access goes through the traits in
//! [`platform`] so tests can substitute fakes.

pub mod actions;
mod agent;
pub mod call;
pub mod connection;
pub mod context;
pub mod dispatch;
pub mod dropins;
pub mod error;
pub mod events;
pub mod handlers;
pub mod hotplug;
pub mod limits;
pub mod live;
pub mod os;
pub mod platform;
pub mod policy;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;
pub mod update;

pub use agent::{Agent, AgentConfig};
pub use call::{Bulk, CallContext, Caller, ChannelId, Protocol};
pub use connection::Connection;
pub use context::Context;
pub use dispatch::{Call, CommandStatus, DispatchError, Lazy, Reply};
pub use error::{Cause, CommandError};
pub use events::{Audience, EventBus, EventRecord, Listener, Mailbox, Subscription};
pub use platform::Platform;
pub use policy::{Decision, DenyReason, Policy};
pub use state::AgentState;
