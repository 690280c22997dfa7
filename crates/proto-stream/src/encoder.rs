//! Appending frames to a buffer.

use crate::frame::{ExitStatus, Frame, Kind, StreamId};
use crate::{MAGIC, MAX_PAYLOAD, MAX_TEXT};

fn header(out: &mut Vec<u8>, kind: Kind, stream: StreamId, len: usize) {
    out.push(MAGIC);
    out.push(kind as u8);
    out.extend_from_slice(&stream.to_be_bytes());
    // Callers keep `len` within MAX_PAYLOAD.
    out.extend_from_slice(&(len as u32).to_be_bytes());
}

/// Appends a data (or stderr) frame carrying `data`, which must be at most
/// [`MAX_PAYLOAD`] bytes (longer data is cut there: callers split it first).
pub fn encode_data(out: &mut Vec<u8>, kind: Kind, stream: StreamId, data: &[u8]) {
    let data = &data[..data.len().min(MAX_PAYLOAD)];
    header(out, kind, stream, data.len());
    out.extend_from_slice(data);
}

/// Cuts `text` to at most [`MAX_TEXT`] bytes on a character boundary.
fn bounded(text: &str) -> &str {
    if text.len() <= MAX_TEXT {
        return text;
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Appends `frame`. Texts longer than [`MAX_TEXT`] are cut, data longer than
/// [`MAX_PAYLOAD`] too.
pub fn encode(out: &mut Vec<u8>, frame: &Frame) {
    match frame {
        Frame::Data { stream, data } => encode_data(out, Kind::Data, *stream, data),
        Frame::Stderr { stream, data } => encode_data(out, Kind::Stderr, *stream, data),
        Frame::Credit { stream, bytes } => {
            header(out, Kind::Credit, *stream, 4);
            out.extend_from_slice(&bytes.to_be_bytes());
        }
        Frame::Eof { stream } => header(out, Kind::Eof, *stream, 0),
        Frame::Reset { stream, reason } => {
            let reason = bounded(reason);
            header(out, Kind::Reset, *stream, reason.len());
            out.extend_from_slice(reason.as_bytes());
        }
        Frame::Exit { stream, status } => {
            header(out, Kind::Exit, *stream, 5);
            let (tag, value) = match status {
                ExitStatus::Code(c) => (0u8, *c),
                ExitStatus::Signal(s) => (1u8, *s),
            };
            out.push(tag);
            out.extend_from_slice(&value.to_be_bytes());
        }
        Frame::Resize { stream, rows, cols } => {
            header(out, Kind::Resize, *stream, 4);
            out.extend_from_slice(&rows.to_be_bytes());
            out.extend_from_slice(&cols.to_be_bytes());
        }
        Frame::Signal { stream, signal } => {
            header(out, Kind::Signal, *stream, 4);
            out.extend_from_slice(&signal.to_be_bytes());
        }
        Frame::Accept {
            stream,
            listener,
            peer,
        } => {
            let peer = bounded(peer);
            header(out, Kind::Accept, *stream, 4 + peer.len());
            out.extend_from_slice(&listener.to_be_bytes());
            out.extend_from_slice(peer.as_bytes());
        }
    }
}
