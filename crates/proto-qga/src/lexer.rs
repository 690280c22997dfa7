//! QEMU's JSON lexer as a pure transition function.
//!
//! The states and transitions follow `qobject/json-lexer.c` as observed on qemu-ga:
//! JSON plus single-quoted strings; a terminal state (number, keyword) ends on any byte
//! that cannot continue it and that byte is looked at again from the start state;
//! whitespace between tokens is dropped and never becomes part of an error token;
//! an invalid byte is an error that includes the partial token; after an error the
//! lexer skips bytes until a structural character, a control character other than TAB,
//! or `0xFE`/`0xFF`.

/// A token of the message being gathered (by the decoder): its kind and its range in the text buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// A lexer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Between tokens.
    Start,
    /// Skipping bytes after an error.
    Recovery,
    /// Inside a double-quoted string.
    DqString,
    /// After a backslash in a double-quoted string.
    DqEscape,
    /// Inside a single-quoted string (a QEMU extension).
    SqString,
    /// After a backslash in a single-quoted string.
    SqEscape,
    /// After a leading `0` (or `-0`).
    Zero,
    /// Digits of an exponent.
    ExpDigits,
    /// After the sign of an exponent.
    ExpSign,
    /// After `e`/`E`.
    ExpE,
    /// After a decimal point.
    Mantissa,
    /// Digits after a decimal point.
    MantissaDigits,
    /// Digits of an integer.
    Digits,
    /// After a leading `-`.
    Sign,
    /// Inside a lower-case keyword.
    Keyword,
}

/// The kind of a complete token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `{`
    LCurly,
    /// `}`
    RCurly,
    /// `[`
    LSquare,
    /// `]`
    RSquare,
    /// `:`
    Colon,
    /// `,`
    Comma,
    /// An integer literal.
    Integer,
    /// A literal with a fraction or exponent.
    Float,
    /// A run of lower-case letters (`true`, `false`, `null`, or garbage).
    Keyword,
    /// A quoted string, quotes included.
    String,
}

/// What the lexer does with one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Append the byte to the token and move to the state.
    Consume(State),
    /// Append the byte; the token is complete.
    Complete(TokenKind),
    /// The token is complete without this byte; look at the byte again from `Start`.
    CompleteBefore(TokenKind),
    /// Leave recovery (or whitespace) and look at the byte again from `Start`.
    Restart,
    /// Drop the byte (whitespace between tokens, or a byte skipped in recovery).
    Skip,
    /// Append the byte; the partial token is an error.
    Error,
}

fn is_string_byte(b: u8) -> bool {
    (0x20..=0xFD).contains(&b)
}

/// The transition for `byte` in `state`.
pub fn step(state: State, byte: u8) -> Step {
    use State::*;
    match state {
        Start => match byte {
            b'"' => Step::Consume(DqString),
            b'\'' => Step::Consume(SqString),
            b'0' => Step::Consume(Zero),
            b'1'..=b'9' => Step::Consume(Digits),
            b'-' => Step::Consume(Sign),
            b'{' => Step::Complete(TokenKind::LCurly),
            b'}' => Step::Complete(TokenKind::RCurly),
            b'[' => Step::Complete(TokenKind::LSquare),
            b']' => Step::Complete(TokenKind::RSquare),
            b',' => Step::Complete(TokenKind::Comma),
            b':' => Step::Complete(TokenKind::Colon),
            b'a'..=b'z' => Step::Consume(Keyword),
            b' ' | b'\t' | b'\r' | b'\n' => Step::Skip,
            _ => Step::Error,
        },
        Recovery => match byte {
            b'\t' => Step::Skip,
            0x00..=0x1F | 0xFE | 0xFF => Step::Restart,
            b'[' | b']' | b'{' | b'}' | b':' | b',' => Step::Restart,
            _ => Step::Skip,
        },
        DqString => match byte {
            b'\\' => Step::Consume(DqEscape),
            b'"' => Step::Complete(TokenKind::String),
            b if is_string_byte(b) => Step::Consume(DqString),
            _ => Step::Error,
        },
        SqString => match byte {
            b'\\' => Step::Consume(SqEscape),
            b'\'' => Step::Complete(TokenKind::String),
            b if is_string_byte(b) => Step::Consume(SqString),
            _ => Step::Error,
        },
        DqEscape if is_string_byte(byte) => Step::Consume(DqString),
        SqEscape if is_string_byte(byte) => Step::Consume(SqString),
        DqEscape | SqEscape => Step::Error,
        Zero => match byte {
            b'0'..=b'9' => Step::Error,
            b'.' => Step::Consume(Mantissa),
            _ => Step::CompleteBefore(TokenKind::Integer),
        },
        ExpDigits => match byte {
            b'0'..=b'9' => Step::Consume(ExpDigits),
            _ => Step::CompleteBefore(TokenKind::Float),
        },
        ExpSign => match byte {
            b'0'..=b'9' => Step::Consume(ExpDigits),
            _ => Step::Error,
        },
        ExpE => match byte {
            b'-' | b'+' => Step::Consume(ExpSign),
            b'0'..=b'9' => Step::Consume(ExpDigits),
            _ => Step::Error,
        },
        Mantissa => match byte {
            b'0'..=b'9' => Step::Consume(MantissaDigits),
            _ => Step::Error,
        },
        MantissaDigits => match byte {
            b'0'..=b'9' => Step::Consume(MantissaDigits),
            b'e' | b'E' => Step::Consume(ExpE),
            _ => Step::CompleteBefore(TokenKind::Float),
        },
        Digits => match byte {
            b'0'..=b'9' => Step::Consume(Digits),
            b'e' | b'E' => Step::Consume(ExpE),
            b'.' => Step::Consume(Mantissa),
            _ => Step::CompleteBefore(TokenKind::Integer),
        },
        Sign => match byte {
            b'0' => Step::Consume(Zero),
            b'1'..=b'9' => Step::Consume(Digits),
            _ => Step::Error,
        },
        Keyword => match byte {
            b'a'..=b'z' => Step::Consume(Keyword),
            _ => Step::CompleteBefore(TokenKind::Keyword),
        },
    }
}

/// Length of the prefix of `bytes` that stays inside a string body without ending it,
/// escaping or erroring: the fast path for long strings such as base64 payloads.
pub fn plain_string_run(bytes: &[u8], quote: u8) -> usize {
    bytes
        .iter()
        .position(|&b| b == quote || b == b'\\' || !is_string_byte(b))
        .unwrap_or(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structural_bytes_end_recovery() {
        for b in [b'{', b'}', b'[', b']', b':', b',', 0x04, 0xFF, 0xFE, b'\n'] {
            assert_eq!(step(State::Recovery, b), Step::Restart, "byte {b:#x}");
        }
        for b in [b'a', b'"', b' ', b'\t', 0x80, 0xFD] {
            assert_eq!(step(State::Recovery, b), Step::Skip, "byte {b:#x}");
        }
    }

    #[test]
    fn terminal_states_end_on_any_other_byte() {
        assert_eq!(
            step(State::Digits, 0xFF),
            Step::CompleteBefore(TokenKind::Integer)
        );
        assert_eq!(
            step(State::Keyword, b' '),
            Step::CompleteBefore(TokenKind::Keyword)
        );
        assert_eq!(step(State::Zero, b'1'), Step::Error);
    }

    #[test]
    fn strings_reject_control_bytes_and_ff() {
        assert_eq!(step(State::DqString, 0x01), Step::Error);
        assert_eq!(step(State::DqString, 0xFF), Step::Error);
        assert_eq!(step(State::SqString, b'"'), Step::Consume(State::SqString));
        assert_eq!(plain_string_run(b"abc\\d", b'"'), 3);
    }
}
