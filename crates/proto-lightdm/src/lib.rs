//! LightDM's greeter protocol: the frames a greeter and the LightDM daemon exchange over
//! the two pipes LightDM hands the greeter (`LIGHTDM_TO_SERVER_FD`,
//! `LIGHTDM_FROM_SERVER_FD`). Pure: no I/O. `guestlink-session greeter` speaks it.
//!
//! A frame is a header of two big-endian `u32`s, the message id and the payload's
//! length, then the payload: `u32`s and strings (a `u32` length, then that many bytes,
//! no terminator). Only the messages an SSO greeter needs are built; every message the
//! daemon sends is framed, unknown ones are passed on as [`FromServer::Other`].

use thiserror::Error;

/// The longest frame accepted from the daemon (LightDM writes at most 1 KiB).
pub const FRAME_MAX: usize = 64 << 10;

/// The greeter API version this greeter speaks (LightDM 1.19 and later answer it with
/// `CONNECTED_V2`; earlier ones with `CONNECTED`).
pub const API_VERSION: u32 = 1;

const HEADER: usize = 8;

/// A message from the greeter to the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToServer<'a> {
    /// The greeter's first message.
    Connect {
        /// The greeter's version.
        version: &'a str,
        /// Whether the daemon may reset the greeter instead of restarting it.
        resettable: bool,
    },
    /// Start a PAM conversation; an empty user lets PAM find the user.
    Authenticate {
        /// Echoed in the daemon's prompts and in its end of authentication.
        sequence: u32,
        /// The user, or empty.
        user: &'a str,
    },
    /// The answers to the prompts of the last `PROMPT_AUTHENTICATION`, in order.
    ContinueAuthentication {
        /// One answer per prompt (not per informational message).
        answers: Vec<&'a str>,
    },
    /// Give up the conversation under way.
    CancelAuthentication,
    /// Start the authenticated user's session (empty: the default session).
    StartSession {
        /// The session's name.
        session: &'a str,
    },
}

impl ToServer<'_> {
    fn id(&self) -> u32 {
        match self {
            ToServer::Connect { .. } => 0,
            ToServer::Authenticate { .. } => 1,
            ToServer::ContinueAuthentication { .. } => 3,
            ToServer::StartSession { .. } => 4,
            ToServer::CancelAuthentication => 5,
        }
    }

    /// The message as one frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::new();
        match self {
            ToServer::Connect {
                version,
                resettable,
            } => {
                put_str(&mut p, version);
                put_u32(&mut p, u32::from(*resettable));
                put_u32(&mut p, API_VERSION);
            }
            ToServer::Authenticate { sequence, user } => {
                put_u32(&mut p, *sequence);
                put_str(&mut p, user);
            }
            ToServer::ContinueAuthentication { answers } => {
                put_u32(&mut p, answers.len() as u32);
                for a in answers {
                    put_str(&mut p, a);
                }
            }
            ToServer::StartSession { session } => put_str(&mut p, session),
            ToServer::CancelAuthentication => {}
        }
        let mut frame = Vec::with_capacity(HEADER + p.len());
        put_u32(&mut frame, self.id());
        put_u32(&mut frame, p.len() as u32);
        frame.extend_from_slice(&p);
        // The payload may hold an answer to a PAM prompt (a one-use token).
        p.fill(0);
        std::hint::black_box(&p);
        frame
    }
}

/// A PAM message forwarded by the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PamMessage {
    /// PAM's message style: 1 a hidden prompt, 2 a visible one, 3 an error, 4 text.
    pub style: u32,
    /// The message.
    pub text: String,
}

impl PamMessage {
    /// Whether the message asks for an answer.
    pub fn is_prompt(&self) -> bool {
        matches!(self.style, 1 | 2)
    }
}

/// A message from the daemon to the greeter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromServer {
    /// The answer to `Connect` (either version).
    Connected {
        /// LightDM's version.
        version: String,
    },
    /// PAM's messages of the conversation `sequence`.
    Prompt {
        /// The conversation.
        sequence: u32,
        /// The user, as far as PAM knows it.
        user: String,
        /// The messages, prompts and information.
        messages: Vec<PamMessage>,
    },
    /// The end of the conversation `sequence`.
    EndAuthentication {
        /// The conversation.
        sequence: u32,
        /// The user PAM authenticated (or tried to).
        user: String,
        /// PAM's result: 0 is success.
        result: u32,
    },
    /// The answer to `StartSession`: 0 when the session started.
    SessionResult {
        /// 0 on success.
        code: u32,
    },
    /// Any other message, by id.
    Other(u32),
}

/// A frame the daemon should not have sent.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Error {
    /// Longer than [`FRAME_MAX`].
    #[error("LightDM sent a frame of {0} bytes (at most {FRAME_MAX})")]
    TooLong(usize),
    /// A field runs past the end of its frame.
    #[error("LightDM's message {0} is cut short")]
    Short(u32),
}

/// Splits the daemon's byte stream into messages, holding at most one frame.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// Adds bytes read from the daemon.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held: at most one frame and the rest of the last read, until an error
    /// (after which the stream is lost and the caller stops reading).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message, if one has arrived.
    pub fn next_message(&mut self) -> Result<Option<FromServer>, Error> {
        if self.buf.len() < HEADER {
            return Ok(None);
        }
        let id = be(&self.buf[0..4]);
        let len = be(&self.buf[4..8]) as usize;
        if len > FRAME_MAX - HEADER {
            return Err(Error::TooLong(len));
        }
        if self.buf.len() < HEADER + len {
            return Ok(None);
        }
        let frame: Vec<u8> = self.buf.drain(..HEADER + len).skip(HEADER).collect();
        let mut r = Reader {
            id,
            rest: &frame[..],
        };
        let message = match id {
            0 => FromServer::Connected {
                version: r.string()?,
            },
            7 => {
                r.u32()?;
                FromServer::Connected {
                    version: r.string()?,
                }
            }
            1 => {
                let sequence = r.u32()?;
                let user = r.string()?;
                let n = r.u32()?;
                let mut messages = Vec::new();
                for _ in 0..n {
                    messages.push(PamMessage {
                        style: r.u32()?,
                        text: r.string()?,
                    });
                }
                FromServer::Prompt {
                    sequence,
                    user,
                    messages,
                }
            }
            2 => FromServer::EndAuthentication {
                sequence: r.u32()?,
                user: r.string()?,
                result: r.u32()?,
            },
            3 => FromServer::SessionResult { code: r.u32()? },
            other => FromServer::Other(other),
        };
        Ok(Some(message))
    }
}

struct Reader<'a> {
    id: u32,
    rest: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Error> {
        if self.rest.len() < n {
            return Err(Error::Short(self.id));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, Error> {
        self.take(4).map(be)
    }

    fn string(&mut self) -> Result<String, Error> {
        let n = self.u32()? as usize;
        self.take(n)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

fn be(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        put_u32(&mut f, id);
        put_u32(&mut f, payload.len() as u32);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn messages_to_the_daemon_are_framed_as_lightdm_reads_them() {
        let connect = ToServer::Connect {
            version: "1.0",
            resettable: false,
        }
        .encode();
        assert_eq!(
            connect,
            [
                &[0, 0, 0, 0, 0, 0, 0, 15][..],
                &[0, 0, 0, 3],
                b"1.0",
                &[0, 0, 0, 0],
                &[0, 0, 0, 1]
            ]
            .concat()
        );
        let auth = ToServer::Authenticate {
            sequence: 7,
            user: "",
        }
        .encode();
        assert_eq!(auth, frame(1, &[0, 0, 0, 7, 0, 0, 0, 0]));
        let answers = ToServer::ContinueAuthentication {
            answers: vec!["ab", "c"],
        }
        .encode();
        assert_eq!(
            answers,
            frame(3, &[0, 0, 0, 2, 0, 0, 0, 2, b'a', b'b', 0, 0, 0, 1, b'c'])
        );
        assert_eq!(ToServer::CancelAuthentication.encode(), frame(5, &[]));
        assert_eq!(
            ToServer::StartSession { session: "" }.encode(),
            frame(4, &[0, 0, 0, 0])
        );
    }

    #[test]
    fn the_daemons_messages_are_read_across_split_reads() {
        let mut p = Vec::new();
        put_u32(&mut p, 3);
        put_str(&mut p, "");
        put_u32(&mut p, 2);
        put_u32(&mut p, 1);
        put_str(&mut p, "Token?");
        put_u32(&mut p, 4);
        put_str(&mut p, "hello");
        let mut bytes = frame(1, &p);
        let mut v2 = Vec::new();
        put_u32(&mut v2, 1);
        put_str(&mut v2, "1.26.0");
        put_u32(&mut v2, 0);
        bytes.extend(frame(7, &v2));
        bytes.extend(frame(2, &[0, 0, 0, 3, 0, 0, 0, 1, b'u', 0, 0, 0, 0]));
        bytes.extend(frame(6, &[]));
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for b in bytes.chunks(3) {
            d.push(b);
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(
            got,
            vec![
                FromServer::Prompt {
                    sequence: 3,
                    user: String::new(),
                    messages: vec![
                        PamMessage {
                            style: 1,
                            text: "Token?".into()
                        },
                        PamMessage {
                            style: 4,
                            text: "hello".into()
                        }
                    ],
                },
                FromServer::Connected {
                    version: "1.26.0".into()
                },
                FromServer::EndAuthentication {
                    sequence: 3,
                    user: "u".into(),
                    result: 0
                },
                FromServer::Other(6),
            ]
        );
    }

    #[test]
    fn hostile_frames_are_errors_not_allocations() {
        let mut d = Decoder::default();
        d.push(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(d.next_message(), Err(Error::TooLong(0xffff_ffff)));
        let mut d = Decoder::default();
        // A prompt whose string claims more bytes than its frame has.
        d.push(&frame(1, &[0, 0, 0, 1, 0, 0, 1, 0]));
        assert_eq!(d.next_message(), Err(Error::Short(1)));
        let mut d = Decoder::default();
        // A prompt that claims four billion messages in an 8-byte frame.
        d.push(&frame(1, &[0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]));
        assert_eq!(d.next_message(), Err(Error::Short(1)));
    }
}
