//! Lines in, named messages out.

use std::collections::VecDeque;

use serde_json::{Map, Value};

use crate::NAME_KEY;

/// What the decoder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest line, newline not counted (vdsm's `MAX_MESSAGE_SIZE`).
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_line: 1 << 20 }
    }
}

/// One message: its name and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `__name__`.
    pub name: String,
    /// Every other key.
    pub args: Map<String, Value>,
}

impl Message {
    /// A message with no arguments.
    pub fn new(name: impl Into<String>) -> Message {
        Message {
            name: name.into(),
            args: Map::new(),
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, key: &str, value: impl Into<Value>) -> Message {
        self.args.insert(key.to_string(), value.into());
        self
    }
}

/// A line that did not make a message. The decoder goes on with the next line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON.
    #[error("malformed line: {0}")]
    Malformed(String),
    /// JSON, but not an object.
    #[error("the line is not a JSON object")]
    NotAnObject,
    /// An object without a string `__name__`.
    #[error("the message has no __name__")]
    NoName,
    /// Longer than the limit: discarded up to its newline.
    #[error("line longer than {limit} bytes discarded")]
    TooLong {
        /// The limit.
        limit: usize,
    },
}

/// The decoder: feed it bytes as they come, take messages and errors out.
#[derive(Debug, Default)]
pub struct Decoder {
    limits: Limits,
    line: Vec<u8>,
    /// Skipping the rest of a line that was too long.
    skipping: bool,
    out: VecDeque<Result<Message, DecodeError>>,
}

impl Decoder {
    /// A decoder with these limits.
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            ..Decoder::default()
        }
    }

    /// Bytes of the line being read.
    pub fn buffered(&self) -> usize {
        self.line.len()
    }

    /// Forgets a partial line (a new host).
    pub fn reset(&mut self) {
        self.line.clear();
        self.skipping = false;
    }

    /// The next message or error, in stream order.
    pub fn next_message(&mut self) -> Option<Result<Message, DecodeError>> {
        self.out.pop_front()
    }

    /// Consumes `bytes`.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (piece, ends) = match memchr::memchr(b'\n', bytes) {
                Some(i) => (&bytes[..i], Some(i + 1)),
                None => (bytes, None),
            };
            if !self.skipping {
                if self.line.len() + piece.len() > self.limits.max_line {
                    self.line = Vec::new();
                    self.skipping = true;
                    self.out.push_back(Err(DecodeError::TooLong {
                        limit: self.limits.max_line,
                    }));
                } else {
                    self.line.extend_from_slice(piece);
                }
            }
            match ends {
                Some(n) => {
                    if self.skipping {
                        self.skipping = false;
                    } else {
                        let line = std::mem::take(&mut self.line);
                        if let Some(r) = parse_line(&line) {
                            self.out.push_back(r);
                        }
                    }
                    bytes = &bytes[n..];
                }
                None => bytes = &[],
            }
        }
    }
}

/// A line as vdsm reads it: UTF-8 with replacement; blank lines are nothing.
fn parse_line(line: &[u8]) -> Option<Result<Message, DecodeError>> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Some(Err(DecodeError::Malformed(e.to_string()))),
    };
    let Value::Object(mut args) = value else {
        return Some(Err(DecodeError::NotAnObject));
    };
    Some(match args.remove(NAME_KEY) {
        Some(Value::String(name)) => Ok(Message { name, args }),
        _ => Err(DecodeError::NoName),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut Decoder) -> Vec<Result<Message, DecodeError>> {
        std::iter::from_fn(|| d.next_message()).collect()
    }

    #[test]
    fn lines_become_messages() {
        let mut d = Decoder::default();
        d.feed(b"{\"__name__\": \"refresh\", \"apiVersion\": 3}\n\n{\"__name__\":\"echo\",\"x\":[1]}\r\n");
        let got = all(&mut d);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Ok(Message::new("refresh").arg("apiVersion", 3)));
        assert_eq!(got[1].as_ref().unwrap().args["x"], serde_json::json!([1]));
    }

    #[test]
    fn bad_lines_are_reported_and_skipped() {
        let mut d = Decoder::default();
        d.feed(b"nonsense\n[1]\n{\"a\":1}\n{\"__name__\":7}\n{\"__name__\":\"ok\"}\n");
        let got = all(&mut d);
        assert!(matches!(got[0], Err(DecodeError::Malformed(_))));
        assert_eq!(got[1], Err(DecodeError::NotAnObject));
        assert_eq!(got[2], Err(DecodeError::NoName));
        assert_eq!(got[3], Err(DecodeError::NoName));
        assert_eq!(got[4], Ok(Message::new("ok")));
    }

    #[test]
    fn an_over_long_line_is_dropped_to_its_newline() {
        let mut d = Decoder::new(Limits { max_line: 16 });
        d.feed(b"{\"__name__\":\"a\",");
        d.feed(&[b'x'; 100]);
        assert!(d.buffered() <= 16);
        d.feed(b"\"}\n{\"__name__\":\"b\"}\n");
        let got = all(&mut d);
        assert_eq!(
            got,
            vec![
                Err(DecodeError::TooLong { limit: 16 }),
                Ok(Message::new("b"))
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let mut d = Decoder::default();
        d.feed(b"{\"__name__\":\"echo\",\"s\":\"a\xffb\"}\n");
        let m = d.next_message().unwrap().unwrap();
        assert_eq!(m.args["s"], "a\u{fffd}b");
    }
}
