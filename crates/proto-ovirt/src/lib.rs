//! The oVirt guest agent wire protocol, without I/O.
//!
//! The port (`ovirt-guest-agent.0`, or the legacy `com.redhat.rhevm.vdsm`) carries one
//! JSON object per line, UTF-8, `\n`-terminated, in both directions. The message or
//! command name travels inside the object as `__name__`; every other key is an
//! argument. There are no ids: a reply, where there is one, is a message of its own.
//!
//! The [`Decoder`] splits lines, caps a line at [`Limits::max_line`] (vdsm's 1 MiB: a
//! longer one is discarded as it arrives and the rest of it, up to the next newline,
//! skipped) and reports each line that is not a named JSON object, then goes on. The
//! [`encode`] function writes a message as one line with every string passed through
//! vdsm's XML character filter ([`xml_safe`]), since vdsm re-serialises what the agent
//! says to XML-RPC and a control character would break it.

#![forbid(unsafe_code)]

mod decoder;
mod encoder;

pub use decoder::{DecodeError, Decoder, Limits, Message};
pub use encoder::{encode, xml_safe, xml_safe_value};

/// The key that names a message.
pub const NAME_KEY: &str = "__name__";
