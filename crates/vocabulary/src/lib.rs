//! The guestlink command vocabulary, defined once.
//!
//! Every command any front end can run is declared in [`commands`] with its wire name,
//! typed arguments, typed result, whether it replies on success, and the platforms that
//! have it. From that one declaration come:
//! - argument validation with qemu-ga's exact error texts ([`args`]),
//! - the `guest-info` command list and the dispatch table (through
//!   [`for_each_command!`]),
//! - the machine-readable schema printed by `guestlink schema` ([`schema`]),
//! - the typed calls of the host library.
//!
//! Wire protocols are not known here: a value is a `serde_json::Value` and a name is
//! the QAPI-style command name.

#![forbid(unsafe_code)]

extern crate self as guestlink_vocabulary;

#[macro_use]
mod macros;
pub mod args;
pub mod commands;
pub mod events;
pub mod reference;
pub mod schema;
pub mod types;

pub use args::{ArgError, FromArg, Path};
pub use commands::{
    Command, CommandInfo, CommandMeta, Platforms, Scope, ALL_COMMANDS, COMMAND_METAS,
};
pub use events::{Event, EventInfo, ALL_EVENTS, EVENT_NAMES};
pub use schema::{Schema, TypeDesc};

/// The qemu-ga release whose protocol this vocabulary reproduces; `guest-info` reports
/// it as the agent version so that clients comparing versions see a current agent.
pub const QGA_COMPAT_VERSION: &str = "10.0.2";
