//! The live channel's wire format: binary frames that carry many byte streams (a
//! program's stdin, stdout and stderr, a terminal, a forwarded connection) on one agent
//! channel, beside the QGA JSON conversation.
//!
//! A frame starts with [`MAGIC`] (0xFE), a byte that never begins a JSON text and is
//! not the 0xFF of a resynchronisation, so a reader at a message boundary tells the two
//! apart by their first byte:
//!
//! ```text
//! 0xFE | kind (u8) | stream id (u32, big-endian) | payload length (u32, big-endian) | payload
//! ```
//!
//! Payloads are at most [`MAX_PAYLOAD`] bytes; frames of fixed-size kinds have exactly
//! their size. Each direction of each stream has a window of credit: a sender may have
//! at most the credit granted to it in data frames unread at the other end, and the
//! reader grants more ([`Frame::Credit`]) as it consumes. Streams start with
//! [`INITIAL_WINDOW`] each way.
//!
//! The crate is pure: [`Decoder`] takes bytes and gives frames, [`encode`] appends one
//! frame to a buffer.

#![forbid(unsafe_code)]

mod decoder;
mod encoder;
mod frame;

pub use decoder::{Decoder, FrameError};
pub use encoder::{encode, encode_data};
pub use frame::{ExitStatus, Frame, Kind, StreamId};

/// First byte of every frame.
pub const MAGIC: u8 = 0xFE;
/// Bytes before the payload: magic, kind, stream id, length.
pub const HEADER: usize = 10;
/// Largest payload of one frame.
pub const MAX_PAYLOAD: usize = 64 << 10;
/// Longest reason text of a reset or peer name of an accept.
pub const MAX_TEXT: usize = 1024;
/// Credit each direction of a new stream starts with.
pub const INITIAL_WINDOW: u32 = 256 << 10;
/// The most credit a reader may grant in total (a sender refuses more).
pub const MAX_WINDOW: u32 = 16 << 20;
