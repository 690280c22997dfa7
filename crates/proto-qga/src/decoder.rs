//! Bytes in, messages out: the lexer driven over a byte stream, tokens gathered into
//! messages under qemu-ga's limits (`qobject/json-streamer.c`), and complete messages
//! handed to the [`parser`] module.
//!
//! All token text of the message being gathered lives in one buffer; tokens are ranges
//! into it. Whitespace never enters the buffer. The buffer is bounded by the limits.

use std::collections::VecDeque;
use std::io;

use bytes::BytesMut;
use serde_json::Value;

use crate::lexer::{plain_string_run, step, State, Step, Token, TokenKind};
use crate::parser;

/// The bounds qemu-ga puts on one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total token text of one message (`64 << 20`).
    pub max_message_bytes: usize,
    /// Tokens in one message (`2 << 20`).
    pub max_tokens: usize,
    /// Open `{` plus `[` at once (1024).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 << 20,
            max_tokens: 2 << 20,
            max_depth: 1024,
        }
    }
}

/// Why bytes did not make a message, with qemu-ga's exact texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A byte that cannot start or continue a token; holds the partial token.
    #[error("JSON parse error, stray '{0}'")]
    Stray(String),
    /// A complete message that is not valid JSON.
    #[error("JSON parse error, {0}")]
    Syntax(String),
    /// The message's token text exceeds [`Limits::max_message_bytes`].
    #[error("JSON token size limit exceeded")]
    TokenSize,
    /// The message has more than [`Limits::max_tokens`] tokens.
    #[error("JSON token count limit exceeded")]
    TokenCount,
    /// More than [`Limits::max_depth`] brackets are open.
    #[error("JSON nesting depth limit exceeded")]
    Nesting,
}

/// One decoded unit: a JSON value, or an error that stands where a reply is due.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A complete JSON value (not necessarily an object).
    Value(Value),
    /// A lexical, syntax or limit error.
    Error(DecodeError),
}

/// Strings at least this long are moved out of the token buffer rather than copied.
const LARGE_STRING: usize = 1 << 20;

/// Buffers larger than this are released after the message that needed them.
const KEEP_CAPACITY: usize = 256 << 10;

/// The streaming QGA decoder. Feed it any split of the byte stream; it yields the same
/// frames in the same order.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    state: State,
    text: Vec<u8>,
    tok_start: usize,
    tokens: Vec<Token>,
    braces: i64,
    brackets: i64,
    frames: VecDeque<Frame>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(Limits::default())
    }
}

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            state: State::Start,
            text: Vec::new(),
            tok_start: 0,
            tokens: Vec::new(),
            braces: 0,
            brackets: 0,
            frames: VecDeque::new(),
        }
    }

    /// Forgets any partial message and lexer state (a new client on a listening socket).
    /// Frames already decoded are kept.
    pub fn reset(&mut self) {
        self.discard_message();
        self.state = State::Start;
    }

    /// Raises or lowers the largest message accepted from now on (a guest client that
    /// registered as a session agent may send large ones).
    pub fn set_max_message_bytes(&mut self, bytes: usize) {
        self.limits.max_message_bytes = bytes;
    }

    /// The memory this decoder holds for messages not yet complete and frames not yet
    /// taken, roughly, in bytes: what a connection costs while a peer sends slowly.
    pub fn buffered(&self) -> usize {
        self.text.capacity() + self.tokens.capacity() * std::mem::size_of::<Token>()
    }

    /// True when no partial message is pending.
    pub fn is_idle(&self) -> bool {
        self.state == State::Start && self.tokens.is_empty()
    }

    /// The next decoded frame, if any.
    pub fn next_frame(&mut self) -> Option<Frame> {
        self.frames.pop_front()
    }

    /// Number of frames decoded and not yet taken.
    pub fn pending_frames(&self) -> usize {
        self.frames.len()
    }

    /// Feeds bytes; complete frames become available through [`Decoder::next_frame`].
    pub fn feed(&mut self, input: &[u8]) {
        self.feed_inner(input, false);
    }

    /// Feeds bytes up to and including the end of the next frame and returns how many
    /// were consumed; the bytes after it are left to the caller (the raw payload that
    /// follows a bulk request). Consumes all of `input` when no frame ends in it.
    pub fn feed_frame(&mut self, input: &[u8]) -> usize {
        self.feed_inner(input, true)
    }

    fn feed_inner(&mut self, input: &[u8], stop_after_frame: bool) -> usize {
        let frames_before = self.frames.len();
        let mut i = 0;
        while i < input.len() {
            if stop_after_frame && self.frames.len() > frames_before {
                return i;
            }
            if let State::DqString | State::SqString = self.state {
                let quote = if self.state == State::DqString {
                    b'"'
                } else {
                    b'\''
                };
                let token_len = self.text.len() - self.tok_start;
                let room = (self.limits.max_message_bytes + 1).saturating_sub(token_len);
                let run = plain_string_run(&input[i..], quote).min(room);
                if run > 0 {
                    self.append(&input[i..i + run]);
                    i += run;
                    self.check_token_length();
                    continue;
                }
            }
            let byte = input[i];
            match step(self.state, byte) {
                Step::Consume(next) => {
                    self.append(&[byte]);
                    self.state = next;
                    i += 1;
                    self.check_token_length();
                }
                Step::Complete(kind) => {
                    self.append(&[byte]);
                    self.state = State::Start;
                    i += 1;
                    self.token(kind);
                }
                Step::CompleteBefore(kind) => {
                    self.state = State::Start;
                    self.token(kind);
                }
                Step::Restart => self.state = State::Start,
                Step::Skip => i += 1,
                Step::Error => {
                    self.append(&[byte]);
                    i += 1;
                    let stray = String::from_utf8_lossy(&self.text[self.tok_start..]).into_owned();
                    self.emit(Frame::Error(DecodeError::Stray(stray)));
                    self.state = State::Recovery;
                }
            }
        }
        input.len()
    }

    /// Appends to the token text. It grows as a `Vec` would, by doubling, but not past
    /// the message limit (and a little room): a message near the limit costs its
    /// length, not the next power of two, in memory and in what its connection is
    /// charged ([`Decoder::buffered`]).
    fn append(&mut self, bytes: &[u8]) {
        let need = self.text.len() + bytes.len();
        if need > self.text.capacity() {
            let bound = self.limits.max_message_bytes.saturating_add(4096).max(need);
            let grown = self.text.capacity().saturating_mul(2).max(need).min(bound);
            self.text.reserve_exact(grown - self.text.len());
        }
        self.text.extend_from_slice(bytes);
    }

    /// QEMU bounds a single token by the message limit: a token that grows past it is
    /// cut off with a size error and the lexer starts afresh on the following bytes.
    fn check_token_length(&mut self) {
        if self.text.len() - self.tok_start > self.limits.max_message_bytes {
            self.emit(Frame::Error(DecodeError::TokenSize));
            self.state = State::Start;
        }
    }

    fn token(&mut self, kind: TokenKind) {
        match kind {
            TokenKind::LCurly => self.braces += 1,
            TokenKind::RCurly => self.braces -= 1,
            TokenKind::LSquare => self.brackets += 1,
            TokenKind::RSquare => self.brackets -= 1,
            _ => {}
        }
        let len = self.text.len() - self.tok_start;
        // tok_start is the size of the tokens already accepted for this message.
        if self.tok_start + len + 1 > self.limits.max_message_bytes {
            return self.emit(Frame::Error(DecodeError::TokenSize));
        }
        if self.tokens.len() + 1 > self.limits.max_tokens {
            return self.emit(Frame::Error(DecodeError::TokenCount));
        }
        if self.braces + self.brackets > self.limits.max_depth as i64 {
            return self.emit(Frame::Error(DecodeError::Nesting));
        }
        self.tokens.push(Token {
            kind,
            start: self.tok_start,
            end: self.text.len(),
        });
        self.tok_start = self.text.len();
        if (self.braces > 0 || self.brackets > 0) && self.braces >= 0 && self.brackets >= 0 {
            return;
        }
        let result = match self.take_large_string() {
            Some((index, string, head)) => {
                parser::parse(&self.tokens, &head, Some((index, string)))
            }
            None => parser::parse(&self.tokens, &self.text, None),
        };
        let frame = match result {
            Ok(value) => Frame::Value(value),
            Err(msg) => Frame::Error(DecodeError::Syntax(msg)),
        };
        self.emit(frame);
    }

    /// A large plain ASCII string followed only by closing brackets (the `buf-b64` of
    /// a `guest-file-write`) is moved out of the token buffer instead of copied: the
    /// few bytes before it are copied instead, and the buffer becomes the string. This
    /// halves the memory a 48 MiB write needs. Returns the token index, the string and
    /// the text before it.
    fn take_large_string(&mut self) -> Option<(usize, String, Vec<u8>)> {
        let (index, t) = self
            .tokens
            .iter()
            .enumerate()
            .rev()
            .find(|(_, t)| !matches!(t.kind, TokenKind::RCurly | TokenKind::RSquare))?;
        let t = *t;
        if t.kind != TokenKind::String || t.end - t.start < LARGE_STRING {
            return None;
        }
        let body = &self.text[t.start + 1..t.end - 1];
        if !body.is_ascii() || body.contains(&b'\\') || self.text[t.start] != b'"' {
            return None;
        }
        let head = self.text[..t.start].to_vec();
        let mut big = std::mem::take(&mut self.text);
        big.truncate(t.end - 1);
        big.drain(..t.start + 1);
        // Checked above: plain ASCII.
        let string = String::from_utf8(big).ok()?;
        Some((index, string, head))
    }

    /// Emits a frame and drops the message gathered so far, as qemu-ga does after
    /// every message and every error.
    fn emit(&mut self, frame: Frame) {
        self.frames.push_back(frame);
        self.discard_message();
    }

    fn discard_message(&mut self) {
        self.tokens.clear();
        self.text.clear();
        self.tok_start = 0;
        self.braces = 0;
        self.brackets = 0;
        if self.text.capacity() > KEEP_CAPACITY {
            self.text = Vec::new();
        }
        if self.tokens.capacity() > KEEP_CAPACITY / 16 {
            self.tokens = Vec::new();
        }
    }
}

impl tokio_util::codec::Decoder for Decoder {
    type Item = Frame;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Frame>> {
        if let Some(frame) = self.next_frame() {
            return Ok(Some(frame));
        }
        if !src.is_empty() {
            let data = src.split();
            self.feed(&data);
        }
        Ok(self.next_frame())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode(input: &[u8]) -> Vec<Frame> {
        let mut d = Decoder::default();
        d.feed(input);
        std::iter::from_fn(|| d.next_frame()).collect()
    }

    #[test]
    fn a_message_near_the_limit_holds_its_length_not_the_next_power_of_two() {
        let max = 3 << 20;
        let mut d = Decoder::new(Limits {
            max_message_bytes: max,
            ..Limits::default()
        });
        d.feed(b"{\"execute\":\"x\",\"arguments\":{\"data\":\"");
        let piece = vec![b'A'; 64 << 10];
        let mut most = 0;
        while d.text.len() + piece.len() < max - 100 {
            d.feed(&piece);
            most = most.max(d.buffered());
        }
        d.feed(b"\"}}");
        assert!(matches!(d.next_frame(), Some(Frame::Value(_))));
        // Doubling would have reached 4 MiB.
        assert!(
            most <= max + (64 << 10),
            "held {most} for a message of at most {max}"
        );
    }

    #[test]
    fn feed_frame_leaves_the_bytes_after_a_request() {
        let mut d = Decoder::default();
        let input = b"{\"execute\":\"x\",\"arguments\":{\"count\":3}}\x00\xff}{\"a\":1}";
        let used = d.feed_frame(input);
        assert_eq!(&input[used..used + 3], b"\x00\xff}");
        assert_eq!(d.pending_frames(), 1);
        assert!(d.is_idle());
        d.next_frame();
        // The raw bytes are skipped by the caller; what follows decodes as usual.
        let rest = &input[used + 3..];
        assert_eq!(d.feed_frame(rest), rest.len());
        assert_eq!(d.next_frame(), Some(Frame::Value(json!({"a": 1}))));
        // No frame in the input: everything is consumed.
        assert_eq!(d.feed_frame(b"{\"partial\""), 10);
        assert_eq!(d.next_frame(), None);
    }

    fn errors(input: &[u8]) -> Vec<String> {
        decode(input)
            .into_iter()
            .map(|f| match f {
                Frame::Error(e) => e.to_string(),
                Frame::Value(v) => format!("value {v}"),
            })
            .collect()
    }

    #[test]
    fn large_strings_are_moved_not_copied_and_parse_the_same() {
        let big = "QUJD".repeat(600_000);
        // Moved (last before closing brackets), copied (not last), copied (escape).
        for input in [
            format!("{{\"execute\":\"w\",\"arguments\":{{\"h\":1,\"b\":\"{big}\"}}}}"),
            format!("{{\"execute\":\"w\",\"arguments\":{{\"b\":\"{big}\",\"h\":1}}}}"),
            format!("[\"{big}\\n\"]"),
        ] {
            let mut d = Decoder::default();
            d.feed(input.as_bytes());
            let Some(Frame::Value(v)) = d.next_frame() else {
                panic!("no value")
            };
            let want: Value = serde_json::from_str(&input).unwrap();
            assert_eq!(v, want);
        }
    }

    #[test]
    fn pipelined_and_undelimited_messages() {
        let frames = decode(br#"{"execute":"guest-ping"}{"execute":"guest-ping","id":2}"#);
        assert_eq!(frames.len(), 2);
        assert_eq!(
            frames[1],
            Frame::Value(json!({"execute":"guest-ping","id":2}))
        );
        assert!(decode(b"\n\n  \r\n").is_empty());
    }

    #[test]
    fn scalars_need_a_following_byte() {
        assert!(decode(b"42").is_empty());
        assert_eq!(decode(b"42 "), vec![Frame::Value(json!(42))]);
    }

    #[test]
    fn error_texts_match_qemu_ga() {
        assert_eq!(
            errors(b"hello\n"),
            ["JSON parse error, invalid keyword 'hello'"]
        );
        assert_eq!(errors(b"}"), ["JSON parse error, expecting value"]);
        assert_eq!(
            errors(b"{foo}"),
            ["JSON parse error, invalid keyword 'foo'"]
        );
        assert_eq!(
            errors(br#"{"a":1,}"#),
            ["JSON parse error, expecting value"]
        );
        assert_eq!(
            errors(br#"{"id":1,"id":2}"#),
            ["JSON parse error, duplicate key"]
        );
        assert_eq!(
            errors(b"{\"execute\":\"a\x01b\"}\n"),
            [
                "JSON parse error, stray '\"a\u{1}'",
                "JSON parse error, expecting value"
            ]
        );
        assert_eq!(
            errors(br#"{"x":"\x"}"#),
            ["JSON parse error, invalid escape sequence in string"]
        );
        assert_eq!(
            errors(b"{\"x\":\"\xc3\"}"),
            ["JSON parse error, invalid UTF-8 sequence in string"]
        );
        assert_eq!(errors(b"  \xff"), ["JSON parse error, stray '\u{FFFD}'"]);
        assert_eq!(
            errors(br#"{"a":1]"#),
            ["JSON parse error, expected separator in dict"]
        );
        assert_eq!(
            errors(br#"{"x":"\uD800"}"#),
            ["JSON parse error, \\uD800 is not a valid Unicode character"]
        );
    }

    #[test]
    fn ff_discards_a_partial_request() {
        let frames = errors(b"{\"execute\":\"guest-pi\xff{\"execute\":\"guest-ping\"}");
        assert_eq!(frames[0], "JSON parse error, stray '\"guest-pi\u{FFFD}'");
        assert_eq!(frames[1], r#"value {"execute":"guest-ping"}"#);
    }

    #[test]
    fn numbers_follow_qemu_typing() {
        let v = decode(b"[-0, 9223372036854775808, 99999999999999999999, 1e3, 1.5]");
        assert_eq!(
            v,
            vec![Frame::Value(json!([
                0,
                9223372036854775808u64,
                1e20,
                1000.0,
                1.5
            ]))]
        );
    }

    #[test]
    fn single_quotes_and_modified_utf8() {
        let v = decode(b"{'a':'it\\'s', \"n\":\"\xc0\x80\\u0000\"}");
        assert_eq!(v, vec![Frame::Value(json!({"a":"it's","n":"\0\0"}))]);
    }

    #[test]
    fn surrogate_pairs_combine() {
        let v = decode(br#"["\ud83d\ude00"]"#);
        assert_eq!(v, vec![Frame::Value(json!(["\u{1F600}"]))]);
    }

    #[test]
    fn nesting_limit() {
        let ok = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        assert!(matches!(decode(ok.as_bytes())[0], Frame::Value(_)));
        let deep = format!("{}{}", "[".repeat(1100), "]".repeat(1100));
        assert_eq!(
            errors(deep.as_bytes())[0],
            "JSON nesting depth limit exceeded"
        );
    }

    #[test]
    fn token_size_limit_is_bounded() {
        let limits = Limits {
            max_message_bytes: 64,
            ..Limits::default()
        };
        let mut d = Decoder::new(limits);
        let long = format!("{{\"id\":\"{}\"}}", "a".repeat(200));
        d.feed(long.as_bytes());
        assert_eq!(d.next_frame(), Some(Frame::Error(DecodeError::TokenSize)));
        assert!(d.text.len() <= 65);
        d.feed(b"\xff{\"ok\":1}");
        let rest: Vec<_> = std::iter::from_fn(|| d.next_frame()).collect();
        assert_eq!(rest.last(), Some(&Frame::Value(json!({"ok":1}))));
    }

    #[test]
    fn token_count_limit() {
        let limits = Limits {
            max_tokens: 10,
            ..Limits::default()
        };
        let mut d = Decoder::new(limits);
        d.feed(b"[1,2,3,4,5,6,7,8]");
        assert_eq!(d.next_frame(), Some(Frame::Error(DecodeError::TokenCount)));
    }
}
