//! Binary data carried as base64 text, as QGA's `buf-b64`, `input-data`, `out-data`.
//!
//! [`Base64Data`] holds the raw bytes. It serialises by encoding in small pieces
//! straight into the serializer's output, so a 48 MiB file read never exists as a
//! second, encoded copy in memory. Decoding follows qemu-ga: any character outside the
//! base64 alphabet, `=` and newline is refused with QEMU's text, and then GLib's
//! lenient decoder runs (newlines skipped, an incomplete final quad dropped).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::args::{ArgError, FromArg, Path};
use crate::schema::{Schema, TypeDesc};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Bytes that travel as a base64 string.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Base64Data(pub Vec<u8>);

impl fmt::Debug for Base64Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Base64Data({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Base64Data {
    fn from(v: Vec<u8>) -> Self {
        Base64Data(v)
    }
}

/// Why base64 text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    /// A character outside the alphabet, `=` and newline.
    #[error("Base64 data contains invalid characters")]
    InvalidCharacters,
}

/// Table entries that are not a 6-bit value.
const INVALID: u8 = 0xFF;
const PAD: u8 = 0xFE;
const NEWLINE: u8 = 0xFD;

/// Decoding table: the 6-bit value of each alphabet byte, or one of the markers.
static TABLE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t[b'=' as usize] = PAD;
    t[b'\n' as usize] = NEWLINE;
    t
};

/// Checks `text` the way qemu-ga does before decoding.
pub fn validate(text: &[u8]) -> Result<(), Base64Error> {
    if text.iter().all(|&c| TABLE[c as usize] != INVALID) {
        Ok(())
    } else {
        Err(Base64Error::InvalidCharacters)
    }
}

/// The number of bytes base64 decoding produces for already validated `text`.
pub fn decoded_len(text: &[u8]) -> usize {
    // Common case: no newlines and padding only at the very end.
    let body_end = text.len().saturating_sub(2);
    if !text.contains(&b'\n') && !text[..body_end].contains(&b'=') {
        let quads = text.len() / 4;
        if quads == 0 {
            return 0;
        }
        let tail = &text[quads * 4 - 4..quads * 4];
        // GLib drops a byte for '=' in either of the last two places of a quad.
        return quads * 3 - usize::from(tail[2] == b'=') - usize::from(tail[3] == b'=');
    }
    let mut n = 0;
    let mut quad = 0;
    let mut last = [0u8; 2];
    for &c in text.iter().filter(|&&c| c != b'\n') {
        last = [c, last[0]];
        quad += 1;
        if quad == 4 {
            n += 1 + usize::from(last[1] != b'=') + usize::from(last[0] != b'=');
            quad = 0;
        }
    }
    n
}

/// A streaming decoder: feed text in pieces of any size, get bytes out.
#[derive(Debug, Default, Clone)]
pub struct StreamDecoder {
    value: u32,
    quad: u8,
    last: [u8; 2],
}

impl StreamDecoder {
    /// Decodes validated `text`, appending to `out`. Characters outside the alphabet
    /// are skipped, as GLib does.
    pub fn feed(&mut self, text: &[u8], out: &mut Vec<u8>) {
        // Unchecked: every character is allowed.
        let _ = self.feed_inner(text, out, false);
    }

    /// Decodes `text`, stopping at the first character outside the alphabet (plus `=`
    /// and newline), which is an error.
    fn feed_checked(&mut self, text: &[u8], out: &mut Vec<u8>) -> Result<(), Base64Error> {
        self.feed_inner(text, out, true)
    }

    fn feed_inner(
        &mut self,
        text: &[u8],
        out: &mut Vec<u8>,
        check: bool,
    ) -> Result<(), Base64Error> {
        out.reserve(text.len() / 4 * 3 + 3);
        let mut i = 0;
        while i < text.len() {
            if self.quad == 0 {
                // Fast path: a run of quads of four data characters, decoded into
                // output sized up front. Stops at the first quad with anything else.
                let done = decode_quads(&text[i..], out);
                if done > 0 {
                    i += done * 4;
                    self.last = [text[i - 1], text[i - 2]];
                    continue;
                }
            }
            let c = text[i];
            if check && TABLE[c as usize] == INVALID {
                return Err(Base64Error::InvalidCharacters);
            }
            self.one(c, out);
            i += 1;
        }
        Ok(())
    }

    fn one(&mut self, c: u8, out: &mut Vec<u8>) {
        let r = match TABLE[c as usize] {
            PAD => 0,
            v if v < 64 => v,
            _ => return,
        };
        self.last = [c, self.last[0]];
        self.value = (self.value << 6) | u32::from(r);
        self.quad += 1;
        if self.quad == 4 {
            out.push((self.value >> 16) as u8);
            if self.last[1] != b'=' {
                out.push((self.value >> 8) as u8);
            }
            if self.last[0] != b'=' {
                out.push(self.value as u8);
            }
            self.quad = 0;
            self.value = 0;
        }
    }
}

/// Decodes whole quads of data characters from the start of `text` and appends their
/// bytes to `out`; returns how many quads it decoded.
fn decode_quads(text: &[u8], out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.resize(start + text.len() / 4 * 3, 0);
    let mut done = 0;
    for (q, o) in text.chunks_exact(4).zip(out[start..].chunks_exact_mut(3)) {
        let [a, b, c, d] = [
            TABLE[q[0] as usize],
            TABLE[q[1] as usize],
            TABLE[q[2] as usize],
            TABLE[q[3] as usize],
        ];
        // Data characters are below 64; padding, newline and invalid ones are not.
        if (a | b | c | d) >= 64 {
            break;
        }
        let v = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
        o.copy_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
        done += 1;
    }
    out.truncate(start + done * 3);
    done
}

/// Decodes `text` as qemu-ga does: any character outside the alphabet, `=` and newline
/// is an error; otherwise GLib's decoding.
pub fn decode(text: &[u8]) -> Result<Vec<u8>, Base64Error> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
    StreamDecoder::default().feed_checked(text, &mut out)?;
    Ok(out)
}

/// The two symbols of every 12-bit value.
static PAIRS: [[u8; 2]; 4096] = {
    let mut t = [[0u8; 2]; 4096];
    let mut i = 0;
    while i < 4096 {
        t[i] = [ALPHABET[i >> 6], ALPHABET[i & 63]];
        i += 1;
    }
    t
};

/// Standard base64 with padding, appended to `out` as bytes.
pub fn encode_to_vec(data: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + data.len().div_ceil(3) * 4, 0);
    let dst = &mut out[start..];
    let sym = |v: u32, shift: u32| ALPHABET[(v >> shift) as usize & 63];
    // Whole groups first, with the output sized up front: no capacity checks per group,
    // and two symbols per table look-up.
    let mut groups = data.chunks_exact(3);
    let mut slots = dst.chunks_exact_mut(4);
    for (c, o) in (&mut groups).zip(&mut slots) {
        let v = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        let [a, b] = PAIRS[(v >> 12) as usize];
        let [d, e] = PAIRS[(v & 0xFFF) as usize];
        o.copy_from_slice(&[a, b, d, e]);
    }
    let last = slots.next();
    match (groups.remainder(), last) {
        (&[a], Some(o)) => {
            let v = u32::from(a) << 16;
            o.copy_from_slice(&[sym(v, 18), sym(v, 12), b'=', b'=']);
        }
        (&[a, b], Some(o)) => {
            let v = (u32::from(a) << 16) | (u32::from(b) << 8);
            o.copy_from_slice(&[sym(v, 18), sym(v, 12), sym(v, 6), b'=']);
        }
        _ => {}
    }
}

/// Standard base64 with padding, appended to `out`.
pub fn encode_into(data: &[u8], out: &mut String) {
    let mut bytes = std::mem::take(out).into_bytes();
    encode_to_vec(data, &mut bytes);
    // Only alphabet bytes were added to what was a valid string.
    *out = String::from_utf8(bytes).unwrap_or_default();
}

/// Standard base64 with padding.
pub fn encode(data: &[u8]) -> String {
    let mut s = String::new();
    encode_into(data, &mut s);
    s
}

/// Formats bytes as base64 a piece at a time.
struct Encoded<'a>(&'a [u8]);

impl fmt::Display for Encoded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // 48 KiB of input per piece: a multiple of 3, so padding only ends the last.
        let mut piece = Vec::with_capacity(64 << 10);
        for chunk in self.0.chunks(48 << 10) {
            piece.clear();
            encode_to_vec(chunk, &mut piece);
            f.write_str(std::str::from_utf8(&piece).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

impl Serialize for Base64Data {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&Encoded(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64Data {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Decodes straight from the input when the deserializer can lend it, so a
        // 64 MiB reply is not copied into a String first.
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Base64Data;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Base64Data, E> {
                decode(v.as_bytes()).map(Base64Data).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl Schema for Base64Data {
    fn schema() -> TypeDesc {
        TypeDesc::Str
    }
}

impl FromArg for Base64Data {
    fn from_arg(value: serde_json::Value, path: &Path<'_>) -> Result<Self, ArgError> {
        let text = String::from_arg(value, path)?;
        decode(text.as_bytes())
            .map(Base64Data)
            .map_err(|e| ArgError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_qemu_leniency() {
        for n in 0..10 {
            let data: Vec<u8> = (0..n as u32).map(|i| (i * 37) as u8).collect();
            let text = encode(&data);
            assert_eq!(decode(text.as_bytes()).unwrap(), data);
            assert_eq!(decoded_len(text.as_bytes()), data.len());
        }
        assert_eq!(encode(b"Hello World!\n\0"), "SGVsbG8gV29ybGQhCgA=");
        // An incomplete final quad is dropped, newlines are skipped.
        assert_eq!(decode(b"aGVsbG8").unwrap(), b"hel");
        assert_eq!(decode(b"aGVs\nbG8=").unwrap(), b"hello");
        assert_eq!(
            decode(b"a*b=").unwrap_err().to_string(),
            "Base64 data contains invalid characters"
        );
        // '=' inside the text counts as zero bits and, second to last in its quad, drops
        // a byte, as in GLib.
        assert_eq!(decode(b"aG=s").unwrap().len(), 2);
        assert_eq!(decode(b"aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decoded_len(b"aGVsbA=="), 4);
        assert_eq!(decoded_len(b"aGVs\nbA=="), 4);
        assert_eq!(decoded_len(b""), 0);
        assert_eq!(decoded_len(b"aG"), 0);
    }

    #[test]
    fn serialises_in_pieces_identically() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
        let json = serde_json::to_string(&Base64Data(data.clone())).unwrap();
        assert_eq!(json, format!("\"{}\"", encode(&data)));
        let back: Base64Data = serde_json::from_str(&json).unwrap();
        assert_eq!(back.0, data);
    }
}
