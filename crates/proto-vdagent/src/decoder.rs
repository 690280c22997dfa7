//! Chunks into messages, one reassembly per chunk port, bounded.

use std::collections::VecDeque;

use crate::header::{ChunkHeader, MessageHeader, CHUNK_HEADER_LEN, MESSAGE_HEADER_LEN};
use crate::types::{MessageType, Port};
use crate::{MAX_CHUNK, PROTOCOL};

/// What the decoder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest message data it reassembles; larger ones are skipped.
    pub max_message: usize,
}

impl Default for Limits {
    /// 64 MiB: a large clipboard image or a file-transfer piece fits, a hostile size
    /// does not make the agent allocate gigabytes.
    fn default() -> Self {
        Limits {
            max_message: 64 << 20,
        }
    }
}

/// One reassembled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The chunk port it came on.
    pub port: Port,
    /// Its type number (see [`crate::MessageType`]).
    pub kind: u32,
    /// Its data.
    pub data: Vec<u8>,
}

/// Why bytes did not make a message. After any of them the decoder goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A chunk header with an impossible size: the framing is lost. Everything the
    /// decoder held was dropped and it starts again at the next bytes.
    #[error("chunk of {0} bytes is larger than 2048: lost sync")]
    ChunkTooLarge(u32),
    /// A chunk header with a port other than 1 and 2: the framing is lost, as above.
    #[error("chunk for port {0}: lost sync")]
    BadPort(u32),
    /// A message of another protocol version; it was skipped.
    #[error("message with protocol {0} (expected 1) skipped")]
    Protocol(u32),
    /// A message larger than [`Limits::max_message`]; it was skipped.
    #[error("message of {size} bytes is larger than the limit of {limit}; skipped")]
    TooLarge {
        /// Its announced size.
        size: u32,
        /// The limit.
        limit: usize,
    },
    /// A chunk that runs past the end of its message: the rest of the chunk was dropped
    /// and that port's message discarded.
    #[error("chunk runs past the end of its message on port {0:?}; message dropped")]
    Overrun(Port),
}

/// Where a port's message stands.
#[derive(Debug, Default)]
enum Body {
    /// Collecting the 20 header bytes.
    #[default]
    Header,
    /// Collecting data.
    Data {
        kind: u32,
        left: usize,
        data: Vec<u8>,
    },
    /// Discarding a message that was refused.
    Skip { left: usize },
}

#[derive(Debug, Default)]
struct Reassembly {
    header: Vec<u8>,
    body: Body,
}

/// The chunk being read.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    port: Port,
    /// Payload bytes still to come.
    left: usize,
    /// Drop them (the chunk overran its message).
    discard: bool,
}

/// The decoder: feed it bytes as they come, take messages and errors out.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    /// A chunk header read in part.
    chunk_header: Vec<u8>,
    chunk: Option<Chunk>,
    ports: [Reassembly; 2],
    out: VecDeque<Result<Message, DecodeError>>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(Limits::default())
    }
}

fn slot(port: Port) -> usize {
    match port {
        Port::Client => 0,
        Port::Server => 1,
    }
}

impl Decoder {
    /// A decoder with these limits.
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            chunk_header: Vec::with_capacity(CHUNK_HEADER_LEN),
            chunk: None,
            ports: Default::default(),
            out: VecDeque::new(),
        }
    }

    /// Forgets a half-received message on `port`. The decoder does this itself for the
    /// client port when CLIENT_DISCONNECTED completes.
    pub fn reset_port(&mut self, port: Port) {
        self.ports[slot(port)] = Reassembly::default();
    }

    /// Forgets everything: the framing and both ports (a new host connection).
    pub fn reset(&mut self) {
        self.chunk_header.clear();
        self.chunk = None;
        self.ports = Default::default();
    }

    /// Bytes held for messages not yet complete.
    pub fn buffered(&self) -> usize {
        let ports: usize = self
            .ports
            .iter()
            .map(|r| {
                r.header.len()
                    + match &r.body {
                        Body::Data { data, .. } => data.len(),
                        _ => 0,
                    }
            })
            .sum();
        ports + self.chunk_header.len()
    }

    /// The next message or error, in stream order.
    pub fn next_message(&mut self) -> Option<Result<Message, DecodeError>> {
        self.out.pop_front()
    }

    /// Consumes `bytes`.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let Some(chunk) = self.chunk else {
                let want = CHUNK_HEADER_LEN - self.chunk_header.len();
                let take = want.min(bytes.len());
                self.chunk_header.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if self.chunk_header.len() == CHUNK_HEADER_LEN {
                    if let Err(e) = self.start_chunk() {
                        // Nothing after a broken header can be trusted: start again
                        // with the next input.
                        self.reset();
                        self.out.push_back(Err(e));
                        return;
                    }
                }
                continue;
            };
            let take = chunk.left.min(bytes.len());
            let (piece, rest) = bytes.split_at(take);
            bytes = rest;
            let left = chunk.left - take;
            let mut discard = chunk.discard;
            if !discard && self.payload(chunk.port, piece) {
                self.reset_port(chunk.port);
                self.out.push_back(Err(DecodeError::Overrun(chunk.port)));
                discard = true;
            }
            self.chunk = (left > 0).then_some(Chunk {
                port: chunk.port,
                left,
                discard,
            });
        }
    }

    /// Parses the chunk header just collected.
    fn start_chunk(&mut self) -> Result<(), DecodeError> {
        let mut raw = [0u8; CHUNK_HEADER_LEN];
        raw.copy_from_slice(&self.chunk_header);
        self.chunk_header.clear();
        let h = ChunkHeader::parse(&raw);
        if h.size as usize > MAX_CHUNK {
            return Err(DecodeError::ChunkTooLarge(h.size));
        }
        let port = Port::from_u32(h.port).ok_or(DecodeError::BadPort(h.port))?;
        self.chunk = (h.size > 0).then_some(Chunk {
            port,
            left: h.size as usize,
            discard: false,
        });
        Ok(())
    }

    /// Adds chunk payload to `port`'s message; true when the piece runs past the end of
    /// the message (the rest of it is not used).
    fn payload(&mut self, port: Port, mut piece: &[u8]) -> bool {
        let limit = self.limits.max_message;
        while !piece.is_empty() {
            let r = &mut self.ports[slot(port)];
            match &mut r.body {
                Body::Header => {
                    let take = (MESSAGE_HEADER_LEN - r.header.len()).min(piece.len());
                    r.header.extend_from_slice(&piece[..take]);
                    piece = &piece[take..];
                    if r.header.len() < MESSAGE_HEADER_LEN {
                        continue;
                    }
                    let mut raw = [0u8; MESSAGE_HEADER_LEN];
                    raw.copy_from_slice(&r.header);
                    r.header.clear();
                    let h = MessageHeader::parse(&raw);
                    let size = h.size as usize;
                    r.body = if h.protocol != PROTOCOL {
                        self.out.push_back(Err(DecodeError::Protocol(h.protocol)));
                        Body::Skip { left: size }
                    } else if size > limit {
                        self.out.push_back(Err(DecodeError::TooLarge {
                            size: h.size,
                            limit,
                        }));
                        Body::Skip { left: size }
                    } else {
                        Body::Data {
                            kind: h.kind,
                            left: size,
                            // Grows with what arrives, up to the announced size.
                            data: Vec::with_capacity(size.min(MAX_CHUNK * 8)),
                        }
                    };
                }
                Body::Data { left, data, .. } => {
                    let take = (*left).min(piece.len());
                    data.extend_from_slice(&piece[..take]);
                    *left -= take;
                    piece = &piece[take..];
                }
                Body::Skip { left } => {
                    let take = (*left).min(piece.len());
                    *left -= take;
                    piece = &piece[take..];
                }
            }
            // A message is done when its data is in; a chunk may not go on past it.
            let done = matches!(&r.body, Body::Data { left: 0, .. } | Body::Skip { left: 0 });
            if done {
                if let Body::Data { kind, data, .. } = std::mem::take(&mut r.body) {
                    self.out.push_back(Ok(Message { port, kind, data }));
                    // The client went away, perhaps in the middle of a message on the
                    // client port: that half is dropped here, before the next client's
                    // chunks (already in this input, maybe) are added to it.
                    if kind == MessageType::ClientDisconnected as u32 {
                        self.reset_port(Port::Client);
                    }
                }
                if !piece.is_empty() {
                    return true;
                }
            }
        }
        false
    }
}
