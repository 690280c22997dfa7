//! Replies in qemu-ga's exact style: compact JSON with `": "` and `", "` separators,
//! every character from U+007F up escaped as `\uXXXX` with upper-case hex (surrogate
//! pairs above the BMP), floats as C's `%.17g`, one reply per line ending in `}\n`,
//! and the optional 0xFF delimiter before the reply to `guest-sync-delimited`.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};
use serde_json::Value;

use crate::SENTINEL;

/// The error classes qemu-ga emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Everything but unknown or disabled commands.
    GenericError,
    /// An unknown command, or one disabled by policy or state.
    CommandNotFound,
}

impl ErrorClass {
    /// The class name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::GenericError => "GenericError",
            ErrorClass::CommandNotFound => "CommandNotFound",
        }
    }
}

/// serde_json formatter reproducing QEMU's `qobject_to_json`.
#[derive(Debug, Default, Clone, Copy)]
pub struct QemuFormatter;

fn write_u_escape<W: ?Sized + Write>(w: &mut W, unit: u16) -> io::Result<()> {
    write!(w, "\\u{unit:04X}")
}

impl Formatter for QemuFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let bytes = fragment.as_bytes();
        // Fast path (all of base64, most text): nothing at or above 0x7F.
        if all_below_7f(bytes) {
            return w.write_all(bytes);
        }
        let mut plain = 0;
        for (i, c) in fragment.char_indices() {
            if (c as u32) < 0x7F {
                continue;
            }
            w.write_all(&bytes[plain..i])?;
            plain = i + c.len_utf8();
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write_u_escape(w, *unit)?;
            }
        }
        w.write_all(&bytes[plain..])
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        match escape {
            CharEscape::Quote => w.write_all(b"\\\""),
            CharEscape::ReverseSolidus => w.write_all(b"\\\\"),
            CharEscape::Solidus => w.write_all(b"/"),
            CharEscape::Backspace => w.write_all(b"\\b"),
            CharEscape::FormFeed => w.write_all(b"\\f"),
            CharEscape::LineFeed => w.write_all(b"\\n"),
            CharEscape::CarriageReturn => w.write_all(b"\\r"),
            CharEscape::Tab => w.write_all(b"\\t"),
            CharEscape::AsciiControl(b) => write_u_escape(w, u16::from(b)),
        }
    }

    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(format_g17(value).as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, f64::from(value))
    }
}

/// `printf("%.17g", value)`, as QEMU formats every double.
pub fn format_g17(value: f64) -> String {
    let mut buf = [0u8; 64];
    // SAFETY: the buffer is valid for its length, the format string is a NUL-terminated
    // literal, and "%.17g" consumes exactly the one double passed.
    let n = unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.17g".as_ptr(), value) };
    let n = usize::try_from(n).unwrap_or(0).min(buf.len() - 1);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Writes `value` as QEMU-style JSON.
pub fn write_json<W: std::io::Write, T: Serialize + ?Sized>(
    out: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut ser = Serializer::with_formatter(out, QemuFormatter);
    value.serialize(&mut ser)
}

/// Writes `[0xFF]{"return": VALUE, "id": ID}\n` to any writer, as it is produced (for
/// replies too large to build in memory first).
pub fn write_return<W: std::io::Write, T: Serialize + ?Sized>(
    mut out: W,
    value: &T,
    id: Option<&Value>,
    delimited: bool,
) -> serde_json::Result<()> {
    if delimited {
        out.write_all(&[SENTINEL]).map_err(serde_json::Error::io)?;
    }
    out.write_all(b"{\"return\": ")
        .map_err(serde_json::Error::io)?;
    write_json(&mut out, value)?;
    if let Some(id) = id {
        out.write_all(b", \"id\": ")
            .map_err(serde_json::Error::io)?;
        write_json(&mut out, id)?;
    }
    out.write_all(b"}\n").map_err(serde_json::Error::io)
}

/// Appends `[0xFF]{"return": VALUE, "id": ID}\n`.
pub fn encode_return<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
    id: Option<&Value>,
    delimited: bool,
) -> serde_json::Result<()> {
    let mark = out.len();
    if delimited {
        out.push(SENTINEL);
    }
    out.extend_from_slice(b"{\"return\": ");
    if let Err(e) = write_json(&mut *out, value) {
        out.truncate(mark);
        return Err(e);
    }
    if let Some(id) = id {
        out.extend_from_slice(b", \"id\": ");
        write_json(&mut *out, id)?;
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// Appends `{"id": ID, "error": {"class": CLASS, "desc": DESC}}\n`.
pub fn encode_error(out: &mut Vec<u8>, class: ErrorClass, desc: &str, id: Option<&Value>) {
    out.push(b'{');
    if let Some(id) = id {
        out.extend_from_slice(b"\"id\": ");
        // Serialising a serde_json::Value into a Vec cannot fail.
        let _ = write_json(&mut *out, id);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(b"\"error\": {\"class\": \"");
    out.extend_from_slice(class.as_str().as_bytes());
    out.extend_from_slice(b"\", \"desc\": ");
    let _ = write_json(&mut *out, desc);
    out.extend_from_slice(b"}}\n");
}

/// Appends a QMP-style event line:
/// `{"event": NAME, "data": DATA, "timestamp": {"seconds": S, "microseconds": U}}\n`.
pub fn encode_event<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    name: &str,
    data: &T,
    seconds: i64,
    microseconds: i64,
) -> serde_json::Result<()> {
    let mark = out.len();
    out.extend_from_slice(b"{\"event\": ");
    let _ = write_json(&mut *out, name);
    out.extend_from_slice(b", \"data\": ");
    if let Err(e) = write_json(&mut *out, data) {
        out.truncate(mark);
        return Err(e);
    }
    out.extend_from_slice(
        format!(
            ", \"timestamp\": {{\"seconds\": {seconds}, \"microseconds\": {microseconds}}}}}\n"
        )
        .as_bytes(),
    );
    Ok(())
}

/// Whether every byte is below 0x7F, eight bytes at a time.
fn all_below_7f(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let x = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        // A byte b has its high bit set in (b + 1) | b exactly when b >= 0x7F.
        if ((x & !HIGH).wrapping_add(ONES) | x) & HIGH != 0 {
            return false;
        }
    }
    words.remainder().iter().all(|&b| b < 0x7F)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn word_check_agrees_with_bytewise() {
        for b in 0..=255u8 {
            for pos in 0..19 {
                let mut v = vec![b'A'; 19];
                v[pos] = b;
                assert_eq!(all_below_7f(&v), b < 0x7F, "byte {b:#x} at {pos}");
            }
        }
    }

    #[test]
    fn event_lines() {
        let mut out = Vec::new();
        encode_event(&mut out, "FSTHAW", &json!({"count": 2}), 1700000000, 5).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"event\": \"FSTHAW\", \"data\": {\"count\": 2}, \"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 5}}\n"
        );
    }

    fn text(v: &Value) -> String {
        let mut out = Vec::new();
        write_json(&mut out, v).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn qemu_style() {
        assert_eq!(
            text(&json!({"a": [1, 2], "b": {}})),
            r#"{"a": [1, 2], "b": {}}"#
        );
        assert_eq!(
            text(&json!("é\u{7f}/\u{1F600}\u{1}")),
            r#""\u00E9\u007F/\uD83D\uDE00\u0001""#
        );
        assert_eq!(text(&json!(0.1)), "0.10000000000000001");
        assert_eq!(text(&json!(1.0)), "1");
        assert_eq!(text(&json!(1e22)), "1e+22");
    }

    #[test]
    fn replies() {
        let mut out = Vec::new();
        encode_return(&mut out, &json!({}), Some(&json!("abc")), false).unwrap();
        assert_eq!(out, b"{\"return\": {}, \"id\": \"abc\"}\n");
        out.clear();
        encode_return(&mut out, &json!(111), None, true).unwrap();
        assert_eq!(out, b"\xff{\"return\": 111}\n");
        out.clear();
        encode_error(
            &mut out,
            ErrorClass::CommandNotFound,
            "The command x has not been found",
            Some(&json!("x1")),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"id\": \"x1\", \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command x has not been found\"}}\n"
        );
    }
}
