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

fn rank(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        b'=' => Some(0),
        _ => None,
    }
}

/// Checks `text` the way qemu-ga does before decoding.
pub fn validate(text: &[u8]) -> Result<(), Base64Error> {
    if text.iter().all(|&c| rank(c).is_some() || c == b'\n') {
        Ok(())
    } else {
        Err(Base64Error::InvalidCharacters)
    }
}

/// The number of bytes [`decode_into`] produces for already validated `text`.
pub fn decoded_len(text: &[u8]) -> usize {
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
        for &c in text {
            let Some(r) = rank(c) else { continue };
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
}

/// Decodes `text` as qemu-ga does.
pub fn decode(text: &[u8]) -> Result<Vec<u8>, Base64Error> {
    validate(text)?;
    let mut out = Vec::with_capacity(decoded_len(text));
    StreamDecoder::default().feed(text, &mut out);
    Ok(out)
}

/// Standard base64 with padding, appended to `out`.
pub fn encode_into(data: &[u8], out: &mut String) {
    out.reserve(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
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
        let mut piece = String::with_capacity(64 << 10);
        for chunk in self.0.chunks(48 << 10) {
            piece.clear();
            encode_into(chunk, &mut piece);
            f.write_str(&piece)?;
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
        let text = String::deserialize(deserializer)?;
        decode(text.as_bytes())
            .map(Base64Data)
            .map_err(serde::de::Error::custom)
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
