//! A complete message's tokens to a JSON value, with the error texts of QEMU's
//! `qobject/json-parser.c` (the first error wins).
//!
//! Integers become `i64` when they fit, else `u64`, else a float; a float that does
//! not fit an `f64` (QEMU would print `inf`) becomes `null`. Strings are checked as
//! QEMU's "modified UTF-8": `C0 80` and `\u0000` both stand for NUL.

use serde_json::{Map, Number, Value};

use crate::lexer::{Token, TokenKind};

type Result<T> = std::result::Result<T, String>;

/// Parses one message. `tokens` are ranges into `text`; `taken`, when given, is the
/// already decoded value of the string token at that index (see
/// [`crate::decoder`]: a large string is moved out of the token buffer, not copied).
pub(crate) fn parse(
    tokens: &[Token],
    text: &[u8],
    taken: Option<(usize, String)>,
) -> Result<Value> {
    let mut p = Parser {
        tokens,
        text,
        pos: 0,
        taken,
    };
    p.value()
}

struct Parser<'a> {
    tokens: &'a [Token],
    text: &'a [u8],
    pos: usize,
    taken: Option<(usize, String)>,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.pos).copied()
    }

    fn pop(&mut self) -> Result<Token> {
        let t = self.peek().ok_or_else(|| "premature EOI".to_string())?;
        self.pos += 1;
        Ok(t)
    }

    fn raw(&self, t: Token) -> &'a [u8] {
        &self.text[t.start..t.end]
    }

    fn value(&mut self) -> Result<Value> {
        let t = self.peek().ok_or_else(|| "premature EOI".to_string())?;
        match t.kind {
            TokenKind::LCurly => self.object(),
            TokenKind::LSquare => self.array(),
            TokenKind::Integer | TokenKind::Float | TokenKind::String => self.literal(),
            TokenKind::Keyword => self.keyword(),
            _ => Err("expecting value".into()),
        }
    }

    fn object(&mut self) -> Result<Value> {
        self.pop()?; // '{'
        let mut map = Map::new();
        let first = self.peek().ok_or_else(|| "premature EOI".to_string())?;
        if first.kind == TokenKind::RCurly {
            self.pop()?;
            return Ok(Value::Object(map));
        }
        self.pair(&mut map)?;
        loop {
            let t = self.pop()?;
            match t.kind {
                TokenKind::RCurly => return Ok(Value::Object(map)),
                TokenKind::Comma => self.pair(&mut map)?,
                _ => return Err("expected separator in dict".into()),
            }
        }
    }

    fn pair(&mut self, map: &mut Map<String, Value>) -> Result<()> {
        self.peek().ok_or_else(|| "premature EOI".to_string())?;
        let key = match self.value()? {
            Value::String(s) => s,
            _ => return Err("key is not a string in object".into()),
        };
        if self.pop()?.kind != TokenKind::Colon {
            return Err("missing : in object pair".into());
        }
        let value = self.value()?;
        if map.contains_key(&key) {
            return Err("duplicate key".into());
        }
        map.insert(key, value);
        Ok(())
    }

    fn array(&mut self) -> Result<Value> {
        self.pop()?; // '['
        let mut list = Vec::new();
        let first = self.peek().ok_or_else(|| "premature EOI".to_string())?;
        if first.kind == TokenKind::RSquare {
            self.pop()?;
            return Ok(Value::Array(list));
        }
        list.push(self.value()?);
        loop {
            let t = self.pop()?;
            match t.kind {
                TokenKind::RSquare => return Ok(Value::Array(list)),
                TokenKind::Comma => list.push(self.value()?),
                _ => return Err("expected separator in list".into()),
            }
        }
    }

    fn keyword(&mut self) -> Result<Value> {
        let t = self.pop()?;
        match self.raw(t) {
            b"true" => Ok(Value::Bool(true)),
            b"false" => Ok(Value::Bool(false)),
            b"null" => Ok(Value::Null),
            other => Err(format!(
                "invalid keyword '{}'",
                String::from_utf8_lossy(other)
            )),
        }
    }

    fn literal(&mut self) -> Result<Value> {
        if self.taken.as_ref().is_some_and(|(i, _)| *i == self.pos) {
            self.pos += 1;
            return Ok(Value::String(
                self.taken.take().map(|t| t.1).unwrap_or_default(),
            ));
        }
        let t = self.pop()?;
        let raw = self.raw(t);
        match t.kind {
            TokenKind::String => parse_string(raw).map(Value::String),
            TokenKind::Integer => Ok(integer(raw)),
            _ => Ok(float(raw)),
        }
    }
}

fn integer(raw: &[u8]) -> Value {
    // The lexer only produces ASCII digits with an optional leading '-'.
    let s = std::str::from_utf8(raw).unwrap_or("0");
    if let Ok(i) = s.parse::<i64>() {
        return Value::Number(i.into());
    }
    if !s.starts_with('-') {
        if let Ok(u) = s.parse::<u64>() {
            return Value::Number(u.into());
        }
    }
    float(raw)
}

fn float(raw: &[u8]) -> Value {
    let s = std::str::from_utf8(raw).unwrap_or("0");
    s.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// Decodes a quoted string token (quotes included) the way QEMU's parser does.
fn parse_string(raw: &[u8]) -> Result<String> {
    let body = &raw[1..raw.len() - 1];
    if !body.contains(&b'\\') {
        return utf8(body.to_vec());
    }
    let mut out = Vec::with_capacity(body.len());
    let mut seg = 0;
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            i += 1;
            continue;
        }
        check_utf8(&body[seg..i])?;
        out.extend_from_slice(&body[seg..i]);
        let beg = i;
        // The lexer guarantees a byte after every backslash inside the body.
        let esc = body[i + 1];
        i += 2;
        match esc {
            b'"' | b'\'' | b'\\' | b'/' => out.push(esc),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0C),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'u' => {
                let mut cp = hex4(&body[i..]);
                i += 4;
                if let Some(lead @ 0xD800..=0xDBFF) = cp {
                    if body.get(i..i + 2) == Some(b"\\u") {
                        cp = match hex4(&body[i + 2..]) {
                            Some(trail @ 0xDC00..=0xDFFF) => {
                                i += 6;
                                Some(0x10000 + ((lead & 0x3FF) << 10) + (trail & 0x3FF))
                            }
                            _ => None,
                        };
                    }
                }
                match cp.and_then(char::from_u32) {
                    Some(c) => {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    None => {
                        // QEMU prints the six bytes of the escape as written, running
                        // into the closing quote when the string ends early.
                        let stop = (beg + 7).min(raw.len());
                        let shown = String::from_utf8_lossy(&raw[beg + 1..stop]);
                        return Err(format!("{shown} is not a valid Unicode character"));
                    }
                }
            }
            _ => return Err("invalid escape sequence in string".into()),
        }
        seg = i.min(body.len());
        i = seg;
    }
    check_utf8(&body[seg..])?;
    out.extend_from_slice(&body[seg..]);
    utf8(out)
}

fn hex4(s: &[u8]) -> Option<u32> {
    let digits = s.get(..4)?;
    let text = std::str::from_utf8(digits).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

const INVALID_UTF8: &str = "invalid UTF-8 sequence in string";

fn check_utf8(bytes: &[u8]) -> Result<()> {
    if std::str::from_utf8(bytes).is_ok() || std::str::from_utf8(&nul_fixed(bytes)).is_ok() {
        Ok(())
    } else {
        Err(INVALID_UTF8.into())
    }
}

fn utf8(bytes: Vec<u8>) -> Result<String> {
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => String::from_utf8(nul_fixed(e.as_bytes())).map_err(|_| INVALID_UTF8.into()),
    }
}

/// Replaces modified UTF-8's two-byte NUL (`C0 80`) by a NUL byte.
fn nul_fixed(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0xC0 && bytes.get(i + 1) == Some(&0x80) {
            out.push(0);
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}
