//! Taking frames out of a byte stream, with bounded memory.

use crate::frame::{ExitStatus, Frame, Kind, StreamId};
use crate::{HEADER, MAGIC, MAX_PAYLOAD, MAX_TEXT};

/// What is wrong with a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The first byte is not [`MAGIC`].
    #[error("stream frame: expected 0xFE, found 0x{0:02X}")]
    BadMagic(u8),
    /// The length is over [`MAX_PAYLOAD`]: the frame cannot be skipped safely.
    #[error("stream frame: payload of {0} bytes is over the limit of {MAX_PAYLOAD}")]
    TooLong(u32),
    /// Stream 0 does not exist.
    #[error("stream frame: stream 0 does not exist")]
    ZeroStream,
    /// An unknown kind (its payload was skipped).
    #[error("stream frame: unknown kind {0}")]
    UnknownKind(u8),
    /// A fixed-size kind with another size (its payload was skipped).
    #[error("stream frame: {kind:?} needs {want} bytes of payload, not {got}")]
    BadLength {
        /// The kind.
        kind: Kind,
        /// Its size.
        want: usize,
        /// The frame's.
        got: usize,
    },
    /// A text that is not UTF-8 or too long, or an exit tag that is neither 0 nor 1.
    #[error("stream frame: malformed {0:?} payload")]
    Malformed(Kind),
}

impl FrameError {
    /// Whether the decoder lost its place: the bytes after the error are not a frame
    /// boundary, and the reader must resynchronise some other way.
    pub fn is_fatal(&self) -> bool {
        matches!(self, FrameError::BadMagic(_) | FrameError::TooLong(_))
    }
}

/// Frames from bytes. Holds at most one frame's header and payload.
#[derive(Debug, Default)]
pub struct Decoder {
    header: [u8; HEADER],
    have: usize,
    payload: Vec<u8>,
    /// Payload bytes expected, once the header is complete.
    want: Option<usize>,
}

impl Decoder {
    /// A decoder at a frame boundary.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Whether part of a frame has been fed.
    pub fn in_frame(&self) -> bool {
        self.have > 0
    }

    /// Bytes held for the frame in progress.
    pub fn buffered(&self) -> usize {
        self.have + self.payload.len()
    }

    /// Feeds bytes. Returns how many were used and, when a frame ended within them,
    /// the frame or what was wrong with it. The bytes after a frame are left for the
    /// caller (they may be JSON). After a fatal error ([`FrameError::is_fatal`]) the
    /// decoder is back at a boundary, with nothing held.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Option<Result<Frame, FrameError>>) {
        let mut used = 0;
        if self.have < HEADER {
            let take = (HEADER - self.have).min(input.len());
            self.header[self.have..self.have + take].copy_from_slice(&input[..take]);
            if self.have == 0 && take > 0 && self.header[0] != MAGIC {
                let b = self.header[0];
                return (1, Some(Err(FrameError::BadMagic(b))));
            }
            self.have += take;
            used += take;
            if self.have < HEADER {
                return (used, None);
            }
            let len = u32::from_be_bytes(field(&self.header, 6));
            if len as usize > MAX_PAYLOAD {
                self.reset();
                return (used, Some(Err(FrameError::TooLong(len))));
            }
            self.want = Some(len as usize);
            self.payload = Vec::with_capacity(len as usize);
        }
        let want = self.want.unwrap_or(0);
        let take = (want - self.payload.len()).min(input.len() - used);
        self.payload.extend_from_slice(&input[used..used + take]);
        used += take;
        if self.payload.len() < want {
            return (used, None);
        }
        let payload = std::mem::take(&mut self.payload);
        let header = self.header;
        self.reset();
        (used, Some(parse(&header, payload)))
    }

    fn reset(&mut self) {
        self.have = 0;
        self.want = None;
        self.payload = Vec::new();
    }
}

fn field(bytes: &[u8], at: usize) -> [u8; 4] {
    let mut f = [0u8; 4];
    f.copy_from_slice(&bytes[at..at + 4]);
    f
}

fn text(kind: Kind, bytes: Vec<u8>) -> Result<String, FrameError> {
    if bytes.len() > MAX_TEXT {
        return Err(FrameError::Malformed(kind));
    }
    String::from_utf8(bytes).map_err(|_| FrameError::Malformed(kind))
}

fn parse(header: &[u8; HEADER], payload: Vec<u8>) -> Result<Frame, FrameError> {
    let stream: StreamId = u32::from_be_bytes(field(header, 2));
    let kind = Kind::from_u8(header[1]).ok_or(FrameError::UnknownKind(header[1]))?;
    if stream == 0 {
        return Err(FrameError::ZeroStream);
    }
    if let Some(want) = kind.fixed_len() {
        if payload.len() != want {
            return Err(FrameError::BadLength {
                kind,
                want,
                got: payload.len(),
            });
        }
    }
    let u32_at = |at: usize| u32::from_be_bytes(field(&payload, at));
    Ok(match kind {
        Kind::Data => Frame::Data {
            stream,
            data: payload,
        },
        Kind::Stderr => Frame::Stderr {
            stream,
            data: payload,
        },
        Kind::Credit => Frame::Credit {
            stream,
            bytes: u32_at(0),
        },
        Kind::Eof => Frame::Eof { stream },
        Kind::Reset => Frame::Reset {
            stream,
            reason: text(kind, payload)?,
        },
        Kind::Exit => {
            let value = i32::from_be_bytes(field(&payload, 1));
            let status = match payload[0] {
                0 => ExitStatus::Code(value),
                1 => ExitStatus::Signal(value),
                _ => return Err(FrameError::Malformed(kind)),
            };
            Frame::Exit { stream, status }
        }
        Kind::Resize => Frame::Resize {
            stream,
            rows: u16::from_be_bytes([payload[0], payload[1]]),
            cols: u16::from_be_bytes([payload[2], payload[3]]),
        },
        Kind::Signal => Frame::Signal {
            stream,
            signal: u32_at(0),
        },
        Kind::Accept => {
            if payload.len() < 4 {
                return Err(FrameError::Malformed(kind));
            }
            let listener = u32_at(0);
            if listener == 0 {
                return Err(FrameError::Malformed(kind));
            }
            Frame::Accept {
                stream,
                listener,
                peer: text(kind, payload[4..].to_vec())?,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode, encode_data};
    use proptest::prelude::*;

    fn all_kinds() -> Vec<Frame> {
        vec![
            Frame::Data {
                stream: 1,
                data: b"hello".to_vec(),
            },
            Frame::Stderr {
                stream: 2,
                data: vec![0xFE, 0xFF, 0],
            },
            Frame::Credit {
                stream: 3,
                bytes: 65536,
            },
            Frame::Eof { stream: 4 },
            Frame::Reset {
                stream: 5,
                reason: "connection refused".into(),
            },
            Frame::Exit {
                stream: 6,
                status: ExitStatus::Code(5),
            },
            Frame::Exit {
                stream: 6,
                status: ExitStatus::Signal(9),
            },
            Frame::Resize {
                stream: 7,
                rows: 40,
                cols: 132,
            },
            Frame::Signal {
                stream: 8,
                signal: 2,
            },
            Frame::Accept {
                stream: 9,
                listener: 1,
                peer: "127.0.0.1:5555".into(),
            },
        ]
    }

    fn decode_all(bytes: &[u8], piece: usize) -> Vec<Result<Frame, FrameError>> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let end = (pos + piece).min(bytes.len());
            let mut at = pos;
            while at < end {
                let (n, f) = d.feed(&bytes[at..end]);
                at += n;
                out.extend(f);
            }
            pos = end;
        }
        out
    }

    #[test]
    fn every_kind_round_trips_whole_and_byte_by_byte() {
        let frames = all_kinds();
        let mut bytes = Vec::new();
        for f in &frames {
            encode(&mut bytes, f);
        }
        for piece in [1, 3, 10, 11, bytes.len()] {
            let got: Vec<Frame> = decode_all(&bytes, piece)
                .into_iter()
                .map(|r| r.unwrap())
                .collect();
            assert_eq!(got, frames, "pieces of {piece}");
        }
    }

    #[test]
    fn the_bytes_after_a_frame_are_left_to_the_caller() {
        let mut bytes = Vec::new();
        encode(&mut bytes, &Frame::Eof { stream: 1 });
        bytes.extend_from_slice(b"{\"execute\":\"guest-ping\"}");
        let mut d = Decoder::new();
        let (n, f) = d.feed(&bytes);
        assert_eq!(n, HEADER);
        assert_eq!(f, Some(Ok(Frame::Eof { stream: 1 })));
        assert!(!d.in_frame());
    }

    #[test]
    fn a_frame_that_does_not_start_with_the_magic_byte_is_refused_at_once() {
        let mut d = Decoder::new();
        assert_eq!(d.feed(b"{"), (1, Some(Err(FrameError::BadMagic(b'{')))));
        assert!(!d.in_frame());
    }

    #[test]
    fn an_oversized_length_is_fatal_and_holds_nothing() {
        let mut bytes = vec![MAGIC, 1, 0, 0, 0, 1];
        bytes.extend_from_slice(&((MAX_PAYLOAD as u32) + 1).to_be_bytes());
        let mut d = Decoder::new();
        let (n, f) = d.feed(&bytes);
        assert_eq!(n, HEADER);
        let e = f.unwrap().unwrap_err();
        assert!(e.is_fatal());
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn unknown_kinds_and_bad_sizes_are_skipped_whole() {
        let mut bytes = vec![MAGIC, 42, 0, 0, 0, 1, 0, 0, 0, 3, 1, 2, 3];
        bytes.extend_from_slice(&[MAGIC, Kind::Credit as u8, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0]);
        encode(&mut bytes, &Frame::Eof { stream: 1 });
        let got = decode_all(&bytes, bytes.len());
        assert_eq!(got[0], Err(FrameError::UnknownKind(42)));
        assert!(!got[0].as_ref().unwrap_err().is_fatal());
        assert!(matches!(
            got[1],
            Err(FrameError::BadLength {
                kind: Kind::Credit,
                want: 4,
                got: 2
            })
        ));
        assert_eq!(got[2], Ok(Frame::Eof { stream: 1 }));
    }

    #[test]
    fn stream_zero_and_malformed_payloads_are_errors() {
        let mut bytes = Vec::new();
        encode(&mut bytes, &Frame::Eof { stream: 0 });
        bytes.extend_from_slice(&[
            MAGIC,
            Kind::Exit as u8,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            5,
            7,
            0,
            0,
            0,
            0,
        ]);
        bytes.extend_from_slice(&[MAGIC, Kind::Reset as u8, 0, 0, 0, 1, 0, 0, 0, 2, 0xC3, 0x28]);
        bytes.extend_from_slice(&[MAGIC, Kind::Accept as u8, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0]);
        let got = decode_all(&bytes, 4);
        assert_eq!(got[0], Err(FrameError::ZeroStream));
        assert_eq!(got[1], Err(FrameError::Malformed(Kind::Exit)));
        assert_eq!(got[2], Err(FrameError::Malformed(Kind::Reset)));
        assert_eq!(got[3], Err(FrameError::Malformed(Kind::Accept)));
    }

    #[test]
    fn long_data_and_texts_are_cut_by_the_encoder() {
        let mut bytes = Vec::new();
        encode_data(&mut bytes, Kind::Data, 1, &vec![7u8; MAX_PAYLOAD + 10]);
        encode(
            &mut bytes,
            &Frame::Reset {
                stream: 1,
                reason: "é".repeat(MAX_TEXT),
            },
        );
        let got = decode_all(&bytes, 1000);
        assert!(matches!(&got[0], Ok(Frame::Data { data, .. }) if data.len() == MAX_PAYLOAD));
        assert!(matches!(&got[1], Ok(Frame::Reset { reason, .. }) if reason.len() <= MAX_TEXT));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_never_hold_more_than_one_frame(
            bytes in proptest::collection::vec(any::<u8>(), 0..4096),
            piece in 1usize..64,
        ) {
            let mut d = Decoder::new();
            for chunk in bytes.chunks(piece) {
                let mut at = 0;
                while at < chunk.len() {
                    let (n, _) = d.feed(&chunk[at..]);
                    prop_assert!(n > 0);
                    at += n;
                    prop_assert!(d.buffered() <= HEADER + MAX_PAYLOAD);
                }
            }
        }

        #[test]
        fn data_round_trips(stream in 1u32.., data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut bytes = Vec::new();
            encode_data(&mut bytes, Kind::Data, stream, &data);
            let got = decode_all(&bytes, 7);
            prop_assert_eq!(got, vec![Ok(Frame::Data { stream, data })]);
        }
    }
}
