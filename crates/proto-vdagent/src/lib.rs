//! The SPICE vdagent wire protocol, without I/O.
//!
//! The virtio-serial port `com.redhat.spice.0` carries **chunks**
//! (`{port u32, size u32}` + up to 2048 payload bytes, little-endian, packed), and the
//! chunks of one chunk port carry **messages** (`{protocol u32 = 1, type u32, opaque
//! u64, size u32}` + `size` data bytes), a message possibly spread over several chunks.
//! spice-server may slip a chunk of its own port (2: mouse state, client disconnected)
//! between the chunks of a client-port (1) message, so the [`Decoder`] reassembles
//! each chunk port separately. The [`encode`] functions cut a message into chunks of at
//! most [`MAX_CHUNK`] bytes, the header in the first, which every known host accepts.
//!
//! Bad input never panics and never makes the decoder hold more than one message of at
//! most [`Limits::max_message`] bytes per port: a wrong protocol number or an oversized
//! message is skipped and reported; a chunk header that cannot be right (a size over
//! 2048, a port outside 1 and 2) means the stream lost its framing, and the decoder
//! starts again from the next bytes it is given.

#![forbid(unsafe_code)]

mod decoder;
mod encoder;
mod header;
pub mod messages;
mod types;

pub use decoder::{DecodeError, Decoder, Limits, Message};
pub use encoder::{encode, encode_on};
pub use header::{ChunkHeader, MessageHeader, CHUNK_HEADER_LEN, MESSAGE_HEADER_LEN};
pub use messages::{AgentMessage, MessageError, Negotiated};
pub use types::{Capabilities, MessageType, Port};

/// The one protocol version (`VD_AGENT_PROTOCOL`).
pub const PROTOCOL: u32 = 1;
/// The largest chunk payload (`VD_AGENT_MAX_DATA_SIZE`), header not counted.
pub const MAX_CHUNK: usize = 2048;
