//! The QEMU Guest Agent (QGA) wire protocol, without I/O.
//!
//! # Framing
//! Requests are JSON texts with no delimiter: QEMU feeds every byte to a streaming
//! lexer, and a message is complete as soon as the outermost `{…}` or `[…]` closes
//! (or a top-level scalar token ends). Replies are one compact JSON object per line.
//!
//! # Recovery
//! A byte that cannot start or continue a token — most usefully `0xFF` or an ASCII
//! control character — is a lexical error: the partial message is discarded, an
//! error frame is produced, and the lexer skips bytes until a structural character.
//! Clients rely on this to resynchronise (`0xFF` + `guest-sync-delimited`).
//!
//! # Limits
//! One message may hold at most 64 MiB of token text, 2 Mi tokens and 1024 open
//! brackets; exceeding one yields qemu-ga's error text and the rest of the message is
//! lexed as new input. Nothing here allocates beyond those bounds.
//!
//! Modules: [`lexer`] (byte → token state machine), [`decoder`] (tokens → messages,
//! limits), [`parser`] (token list → JSON value), [`request`] (the `execute` envelope),
//! [`encode`] (qemu-ga's reply formatting).

pub mod decoder;
pub mod encode;
pub mod lexer;
pub mod parser;
pub mod request;

pub use decoder::{DecodeError, Decoder, Frame, Limits};
pub use encode::{encode_error, encode_event, encode_return, write_json, write_return, ErrorClass};
pub use request::{EnvelopeError, Request};

/// The byte qemu-ga puts before the reply to `guest-sync-delimited`, and that a client
/// may send to flush the agent's parser.
pub const SENTINEL: u8 = 0xFF;
