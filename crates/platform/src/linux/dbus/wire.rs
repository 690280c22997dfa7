//! The D-Bus message format (little-endian), as far as guestlinkd needs it: method calls
//! with basic arguments out; method returns, errors and signals in, their bodies
//! decoded into [`Value`]s by their signature. Pure: no I/O, bounded by [`MAX_MESSAGE`]
//! and [`MAX_DEPTH`].

use thiserror::Error;

/// The largest message accepted (the specification allows 128 MiB; logind's replies
/// are a few KiB).
pub const MAX_MESSAGE: usize = 4 << 20;
/// The deepest nesting of containers accepted in a signature.
pub const MAX_DEPTH: usize = 32;

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A method call.
    Call,
    /// A method's return.
    Return,
    /// A method's error.
    Error,
    /// A signal.
    Signal,
}

/// A malformed message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("malformed D-Bus message: {0}")]
pub struct WireError(pub String);

fn bad<T>(what: impl Into<String>) -> Result<T, WireError> {
    Err(WireError(what.into()))
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `y`
    Byte(u8),
    /// `b`
    Bool(bool),
    /// `n`, `i`, `x` (widened)
    Int(i64),
    /// `q`, `u`, `t`, `h` (widened)
    Uint(u64),
    /// `d`
    Double(f64),
    /// `s`, `o`, `g`
    Str(String),
    /// `a...` (a dictionary is an array of two-member structs)
    Array(Vec<Value>),
    /// `(...)` and `{..}`
    Struct(Vec<Value>),
    /// `v`
    Variant(Box<Value>),
}

impl Value {
    /// The string of an `s`, `o` or `g`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// An unsigned or non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Uint(u) => Some(*u),
            Value::Byte(b) => Some(u64::from(*b)),
            Value::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        }
    }

    /// A boolean, seen through variants.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Variant(v) => v.as_bool(),
            _ => None,
        }
    }
}

/// An argument of a method call.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    /// `s`
    Str(&'a str),
    /// `u`
    Uint(u32),
    /// `b`
    Bool(bool),
    /// `as`
    StrArray(&'a [&'a str]),
}

/// A message read from the bus.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// What it is.
    pub kind: Kind,
    /// Its serial.
    pub serial: u32,
    /// The call it answers (returns and errors).
    pub reply_serial: Option<u32>,
    /// The object path.
    pub path: Option<String>,
    /// The interface.
    pub interface: Option<String>,
    /// The member (method or signal name).
    pub member: Option<String>,
    /// The error's name (errors).
    pub error_name: Option<String>,
    /// The sender's bus name.
    pub sender: Option<String>,
    /// The body's values.
    pub body: Vec<Value>,
}

const FIELD_PATH: u8 = 1;
const FIELD_INTERFACE: u8 = 2;
const FIELD_MEMBER: u8 = 3;
const FIELD_ERROR_NAME: u8 = 4;
const FIELD_REPLY_SERIAL: u8 = 5;
const FIELD_DESTINATION: u8 = 6;
const FIELD_SENDER: u8 = 7;
const FIELD_SIGNATURE: u8 = 8;

fn pad(out: &mut Vec<u8>, align: usize) {
    while !out.len().is_multiple_of(align) {
        out.push(0);
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    pad(out, 4);
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn put_sig(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// A header field whose value is a string-like variant of type `sig` (`s`, `o`, `g`).
fn put_field(out: &mut Vec<u8>, code: u8, sig: &str, value: &str) {
    pad(out, 8);
    out.push(code);
    put_sig(out, sig);
    match sig {
        "g" => put_sig(out, value),
        _ => put_str(out, value),
    }
}

/// A method call to `destination`'s `path`, `interface.member(args)`.
pub fn method_call(
    serial: u32,
    destination: &str,
    path: &str,
    interface: &str,
    member: &str,
    args: &[Arg<'_>],
) -> Vec<u8> {
    encode(1, serial, Some(destination), path, interface, member, args)
}

/// A signal `interface.member(args)` from `path`, to whoever listens.
pub fn signal(serial: u32, path: &str, interface: &str, member: &str, args: &[Arg<'_>]) -> Vec<u8> {
    encode(4, serial, None, path, interface, member, args)
}

fn encode(
    kind: u8,
    serial: u32,
    destination: Option<&str>,
    path: &str,
    interface: &str,
    member: &str,
    args: &[Arg<'_>],
) -> Vec<u8> {
    let mut body = Vec::new();
    let mut signature = String::new();
    for a in args {
        match a {
            Arg::Str(s) => {
                signature.push('s');
                put_str(&mut body, s);
            }
            Arg::Uint(u) => {
                signature.push('u');
                put_u32(&mut body, *u);
            }
            Arg::Bool(b) => {
                signature.push('b');
                put_u32(&mut body, u32::from(*b));
            }
            Arg::StrArray(items) => {
                signature.push_str("as");
                // The array's length in bytes, from its first element (strings are
                // 4-aligned, so no padding comes between).
                put_u32(&mut body, 0);
                let at = body.len();
                for s in *items {
                    put_str(&mut body, s);
                }
                let len = (body.len() - at) as u32;
                body[at - 4..at].copy_from_slice(&len.to_le_bytes());
            }
        }
    }
    let mut fields = Vec::new();
    put_field(&mut fields, FIELD_PATH, "o", path);
    put_field(&mut fields, FIELD_INTERFACE, "s", interface);
    put_field(&mut fields, FIELD_MEMBER, "s", member);
    if let Some(d) = destination {
        put_field(&mut fields, FIELD_DESTINATION, "s", d);
    }
    if !signature.is_empty() {
        put_field(&mut fields, FIELD_SIGNATURE, "g", &signature);
    }
    let mut out = vec![b'l', kind, 0, 1];
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&serial.to_le_bytes());
    // The fields array starts at offset 16, already 8-aligned.
    out.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    out.extend_from_slice(&fields);
    pad(&mut out, 8);
    out.extend_from_slice(&body);
    out
}

/// How long the message starting `buf` is, once its first 16 bytes are there.
pub fn message_len(buf: &[u8]) -> Result<Option<usize>, WireError> {
    if buf.len() < 16 {
        return Ok(None);
    }
    if buf[0] != b'l' {
        return bad("not little-endian (only 'l' is spoken)");
    }
    let body = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    let fields = u32::from_le_bytes([buf[12], buf[13], buf[14], buf[15]]) as usize;
    let total = (16 + fields).div_ceil(8) * 8 + body;
    if total > MAX_MESSAGE {
        return bad(format!("a message of {total} bytes"));
    }
    Ok(Some(total))
}

/// One complete type in a signature.
#[derive(Debug, Clone, PartialEq)]
enum Type {
    Basic(u8),
    Variant,
    Array(Box<Type>),
    Struct(Vec<Type>),
}

impl Type {
    fn align(&self) -> usize {
        match self {
            Type::Basic(b'y' | b'g') | Type::Variant => 1,
            Type::Basic(b'n' | b'q') => 2,
            Type::Basic(b'x' | b't' | b'd') | Type::Struct(_) => 8,
            Type::Basic(_) | Type::Array(_) => 4,
        }
    }
}

/// Parses a whole signature into its types.
fn parse_signature(sig: &[u8]) -> Result<Vec<Type>, WireError> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < sig.len() {
        out.push(parse_type(sig, &mut at, 0)?);
    }
    Ok(out)
}

fn parse_type(sig: &[u8], at: &mut usize, depth: usize) -> Result<Type, WireError> {
    if depth > MAX_DEPTH {
        return bad("a signature nested too deeply");
    }
    let Some(&c) = sig.get(*at) else {
        return bad("a signature ends early");
    };
    *at += 1;
    Ok(match c {
        b'y' | b'b' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'd' | b's' | b'o' | b'g'
        | b'h' => Type::Basic(c),
        b'v' => Type::Variant,
        b'a' => Type::Array(Box::new(parse_type(sig, at, depth + 1)?)),
        b'(' | b'{' => {
            let close = if c == b'(' { b')' } else { b'}' };
            let mut members = Vec::new();
            while sig.get(*at) != Some(&close) {
                members.push(parse_type(sig, at, depth + 1)?);
            }
            *at += 1;
            if members.is_empty() {
                return bad("an empty struct");
            }
            Type::Struct(members)
        }
        other => return bad(format!("type code {:?}", other as char)),
    })
}

/// Reads values from a message, keeping alignment relative to its start.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn align(&mut self, n: usize) -> Result<(), WireError> {
        let to = self.at.div_ceil(n) * n;
        if to > self.buf.len() {
            return bad("padding runs past the end");
        }
        self.at = to;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            return bad("a value runs past the end");
        };
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        self.align(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn string(&mut self, len: usize) -> Result<String, WireError> {
        let bytes = self.take(len)?;
        if self.take(1)? != [0] {
            return bad("a string without its terminating nul");
        }
        String::from_utf8(bytes.to_vec()).or_else(|_| bad("a string that is not UTF-8"))
    }

    fn value(&mut self, t: &Type, depth: usize) -> Result<Value, WireError> {
        if depth > MAX_DEPTH {
            return bad("values nested too deeply");
        }
        Ok(match t {
            Type::Basic(b'y') => Value::Byte(self.take(1)?[0]),
            Type::Basic(b'b') => Value::Bool(u32::from_le_bytes(self.fixed()?) != 0),
            Type::Basic(b'n') => Value::Int(i16::from_le_bytes(self.fixed()?).into()),
            Type::Basic(b'q') => Value::Uint(u16::from_le_bytes(self.fixed()?).into()),
            Type::Basic(b'i') => Value::Int(i32::from_le_bytes(self.fixed()?).into()),
            Type::Basic(b'u' | b'h') => Value::Uint(u32::from_le_bytes(self.fixed()?).into()),
            Type::Basic(b'x') => Value::Int(i64::from_le_bytes(self.fixed()?)),
            Type::Basic(b't') => Value::Uint(u64::from_le_bytes(self.fixed()?)),
            Type::Basic(b'd') => Value::Double(f64::from_le_bytes(self.fixed()?)),
            Type::Basic(b'g') => {
                let len = self.take(1)?[0] as usize;
                Value::Str(self.string(len)?)
            }
            Type::Basic(_) => {
                let len = u32::from_le_bytes(self.fixed()?) as usize;
                Value::Str(self.string(len)?)
            }
            Type::Variant => {
                let len = self.take(1)?[0] as usize;
                let sig = self.string(len)?;
                let types = parse_signature(sig.as_bytes())?;
                let [inner] = &types[..] else {
                    return bad("a variant of other than one type");
                };
                Value::Variant(Box::new(self.value(inner, depth + 1)?))
            }
            Type::Array(elem) => {
                let len = u32::from_le_bytes(self.fixed()?) as usize;
                self.align(elem.align())?;
                let end = self.at.checked_add(len).filter(|e| *e <= self.buf.len());
                let Some(end) = end else {
                    return bad("an array runs past the end");
                };
                let mut items = Vec::new();
                while self.at < end {
                    items.push(self.value(elem, depth + 1)?);
                }
                if self.at != end {
                    return bad("an array's length splits an element");
                }
                Value::Array(items)
            }
            Type::Struct(members) => {
                self.align(8)?;
                let mut items = Vec::with_capacity(members.len());
                for m in members {
                    items.push(self.value(m, depth + 1)?);
                }
                Value::Struct(items)
            }
        })
    }
}

/// Decodes one complete message (as long as [`message_len`] said).
pub fn decode(buf: &[u8]) -> Result<Message, WireError> {
    let Some(total) = message_len(buf)? else {
        return bad("shorter than a header");
    };
    if buf.len() != total {
        return bad("length differs from the header's");
    }
    let kind = match buf[1] {
        1 => Kind::Call,
        2 => Kind::Return,
        3 => Kind::Error,
        4 => Kind::Signal,
        other => return bad(format!("message type {other}")),
    };
    let body_len = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    let mut msg = Message {
        kind,
        serial: u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]),
        reply_serial: None,
        path: None,
        interface: None,
        member: None,
        error_name: None,
        sender: None,
        body: Vec::new(),
    };
    let mut r = Reader { buf, at: 12 };
    let field = Type::Struct(vec![Type::Basic(b'y'), Type::Variant]);
    let Value::Array(fields) = r.value(&Type::Array(Box::new(field)), 0)? else {
        return bad("no header fields");
    };
    let mut signature = String::new();
    for f in fields {
        let Value::Struct(parts) = f else { continue };
        let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (parts.first(), parts.get(1))
        else {
            continue;
        };
        let text = v.as_str().map(String::from);
        match *code {
            FIELD_PATH => msg.path = text,
            FIELD_INTERFACE => msg.interface = text,
            FIELD_MEMBER => msg.member = text,
            FIELD_ERROR_NAME => msg.error_name = text,
            FIELD_SENDER => msg.sender = text,
            FIELD_SIGNATURE => signature = text.unwrap_or_default(),
            FIELD_REPLY_SERIAL => msg.reply_serial = v.as_u64().map(|u| u as u32),
            _ => {}
        }
    }
    r.align(8)?;
    if buf.len() - r.at != body_len {
        return bad("the body's length differs from the header's");
    }
    // The body's alignment counts from its own start.
    let mut body = Reader {
        buf: &buf[r.at..],
        at: 0,
    };
    for t in parse_signature(signature.as_bytes())? {
        msg.body.push(body.value(&t, 0)?);
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply of signature `sig` with `body` bytes, from `org.freedesktop.login1`.
    fn reply(kind: u8, reply_to: u32, sig: &str, body: &[u8]) -> Vec<u8> {
        let mut fields = Vec::new();
        pad(&mut fields, 8);
        fields.push(FIELD_REPLY_SERIAL);
        put_sig(&mut fields, "u");
        put_u32(&mut fields, reply_to);
        put_field(&mut fields, FIELD_SENDER, "s", ":1.7");
        if !sig.is_empty() {
            put_field(&mut fields, FIELD_SIGNATURE, "g", sig);
        }
        let mut out = vec![b'l', kind, 0, 1];
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&9u32.to_le_bytes());
        out.extend_from_slice(&(fields.len() as u32).to_le_bytes());
        out.extend_from_slice(&fields);
        pad(&mut out, 8);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn a_call_decodes_to_what_was_encoded() {
        let m = method_call(
            3,
            "org.freedesktop.login1",
            "/org/freedesktop/login1",
            "org.freedesktop.login1.Manager",
            "LockSession",
            &[Arg::Str("c2"), Arg::Uint(7)],
        );
        assert_eq!(message_len(&m).unwrap(), Some(m.len()));
        let d = decode(&m).unwrap();
        assert_eq!(d.kind, Kind::Call);
        assert_eq!(d.serial, 3);
        assert_eq!(d.member.as_deref(), Some("LockSession"));
        assert_eq!(d.path.as_deref(), Some("/org/freedesktop/login1"));
        assert_eq!(d.body, [Value::Str("c2".into()), Value::Uint(7)]);
        // EnableUnitFiles(as, b, b), with a string before so the array is not aligned.
        let units = ["a.service", "timer-x.timer"];
        let m = method_call(
            4,
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "EnableUnitFiles",
            &[
                Arg::Str("x"),
                Arg::StrArray(&units),
                Arg::Bool(false),
                Arg::Bool(true),
            ],
        );
        let d = decode(&m).unwrap();
        let strs = units.iter().map(|u| Value::Str(u.to_string())).collect();
        assert_eq!(
            d.body,
            [
                Value::Str("x".into()),
                Value::Array(strs),
                Value::Bool(false),
                Value::Bool(true)
            ]
        );
        let empty = method_call(5, "a.b", "/", "a.b", "C", &[Arg::StrArray(&[])]);
        assert_eq!(decode(&empty).unwrap().body, [Value::Array(vec![])]);
    }

    #[test]
    fn a_list_of_sessions_and_a_property() {
        // a(susso): one session.
        let mut body = Vec::new();
        let mut items = Vec::new();
        pad(&mut items, 8);
        put_str(&mut items, "2");
        put_u32(&mut items, 1000);
        put_str(&mut items, "alice");
        put_str(&mut items, "seat0");
        put_str(&mut items, "/org/freedesktop/login1/session/_32");
        // The array's length excludes the padding before its first element.
        put_u32(&mut body, items.len() as u32);
        pad(&mut body, 8);
        body.extend_from_slice(&items);
        let d = decode(&reply(2, 5, "a(susso)", &body)).unwrap();
        assert_eq!(d.reply_serial, Some(5));
        assert_eq!(d.sender.as_deref(), Some(":1.7"));
        let Value::Array(sessions) = &d.body[0] else {
            panic!("{d:?}")
        };
        let Value::Struct(s) = &sessions[0] else {
            panic!()
        };
        assert_eq!(s[2].as_str(), Some("alice"));
        assert_eq!(s[1].as_u64(), Some(1000));
        // v holding b.
        let mut body = Vec::new();
        put_sig(&mut body, "b");
        put_u32(&mut body, 1);
        let d = decode(&reply(2, 6, "v", &body)).unwrap();
        assert_eq!(d.body[0].as_bool(), Some(true));
    }

    #[test]
    fn hostile_messages_are_errors() {
        let good = method_call(1, "a.b", "/", "a.b", "C", &[Arg::Str("x")]);
        // Every truncation, and every single-byte corruption, is an error or a
        // message: never a panic.
        for n in 0..good.len() {
            let _ = decode(&good[..n]);
        }
        for i in 0..good.len() {
            for b in [0u8, 0x7f, 0xff] {
                let mut m = good.clone();
                m[i] = b;
                let _ = decode(&m);
            }
        }
        let mut big = good.clone();
        big[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(message_len(&big).is_err());
        let mut be = good.clone();
        be[0] = b'B';
        assert!(message_len(&be).is_err());
        // A signature nested past the limit.
        let deep = "a".repeat(MAX_DEPTH + 2) + "y";
        assert!(parse_signature(deep.as_bytes()).is_err());
        assert!(parse_signature(b"(").is_err());
        assert!(parse_signature(b"()").is_err());
        assert!(parse_signature(b"z").is_err());
    }
}
