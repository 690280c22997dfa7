//! A host-side client for a QEMU guest agent channel (guestlinkd or qemu-ga).
//!
//! [`Client::connect`] opens the host end of the channel — the unix socket QEMU or
//! libvirt exposes (or a `unix-listen` agent), a pty (`-chardev pty`), or vsock — and
//! resynchronises at once: it sends `0xFF` to flush the agent's parser, then
//! `guest-sync-delimited` with a random id, discards everything up to the `0xFF`
//! sentinel and every reply that is not the echo of that id. After a timeout the next
//! call resynchronises again, so a late reply to the timed-out call is never taken for
//! the answer to the next one. Calls are typed through the vocabulary
//! ([`Client::call`], one type per command, generated from the same declaration as the
//! agent's dispatch table) or raw JSON ([`Client::call_raw`]). [`blocking::Client`]
//! wraps it for code without an async runtime. With guestlinkd, file data can move as
//! raw bytes instead of base64 ([`Client::file_read_raw`], [`Client::file_write_raw`]),
//! and events arrive once subscribed ([`Client::subscribe`], [`Client::next_event`]).

#![forbid(unsafe_code)]

pub mod blocking;
mod bulk;
mod client;
mod endpoint;
mod error;
mod events;
pub mod live;
pub mod ovirt;
mod read;
mod silent;
pub mod vdagent;

pub use client::{Client, MAX_REPLY};
pub use endpoint::{BoxStream, Endpoint, Stream};
pub use error::ClientError;
pub use events::Event;
/// How a streamed program ended.
pub use guestlink_proto_stream::ExitStatus;
pub use live::{Live, LiveStream, StreamEvent, StreamWriter};
pub use silent::SILENT_WAIT;
