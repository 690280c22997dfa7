//! Messages into chunks.

use crate::header::{ChunkHeader, MessageHeader};
use crate::types::Port;
use crate::{MAX_CHUNK, PROTOCOL};

/// Appends message `kind` with `data` to `out` as client-port chunks of at most
/// [`MAX_CHUNK`] payload bytes, the message header in the first (what the guest agent
/// sends).
pub fn encode(kind: u32, data: &[u8], out: &mut Vec<u8>) {
    encode_on(Port::Client, kind, data, out)
}

/// [`encode`] on any chunk port (a host stand-in in tests sends server-port chunks).
///
/// # Panics
///
/// If `data` is longer than `u32::MAX` bytes, which no message may be.
pub fn encode_on(port: Port, kind: u32, data: &[u8], out: &mut Vec<u8>) {
    let size = u32::try_from(data.len()).expect("a vdagent message holds at most 4 GiB");
    let header = MessageHeader {
        protocol: PROTOCOL,
        kind,
        opaque: 0,
        size,
    }
    .to_bytes();
    let total = header.len() + data.len();
    out.reserve(total + total.div_ceil(MAX_CHUNK) * 8);
    let mut done = 0;
    while done < total {
        let take = (total - done).min(MAX_CHUNK);
        out.extend_from_slice(
            &ChunkHeader {
                port: port as u32,
                size: take as u32,
            }
            .to_bytes(),
        );
        // The piece [done, done + take) of header ++ data.
        let (from_header, from_data) = if done < header.len() {
            let h = (header.len() - done).min(take);
            (&header[done..done + h], &data[..take - h])
        } else {
            let start = done - header.len();
            (&header[..0], &data[start..start + take])
        };
        out.extend_from_slice(from_header);
        out.extend_from_slice(from_data);
        done += take;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{CHUNK_HEADER_LEN, MESSAGE_HEADER_LEN};

    #[test]
    fn small_messages_are_one_chunk() {
        let mut out = Vec::new();
        encode(6, &[1, 0, 0, 0, 0xe7, 0x8d, 3, 0], &mut out);
        assert_eq!(out.len(), CHUNK_HEADER_LEN + MESSAGE_HEADER_LEN + 8);
        assert_eq!(&out[..8], &[1, 0, 0, 0, 28, 0, 0, 0]);
    }

    #[test]
    fn large_messages_are_cut_at_2048() {
        let data = vec![7u8; 5000];
        let mut out = Vec::new();
        encode(4, &data, &mut out);
        // 5020 bytes: 2048 + 2048 + 924.
        let sizes: Vec<u32> = {
            let mut at = 0;
            let mut v = Vec::new();
            while at < out.len() {
                let h = ChunkHeader::parse(out[at..at + 8].try_into().unwrap());
                assert_eq!(h.port, 1);
                v.push(h.size);
                at += 8 + h.size as usize;
            }
            v
        };
        assert_eq!(sizes, [2048, 2048, 924]);
        let mut empty = Vec::new();
        encode(13, &[], &mut empty);
        assert_eq!(empty.len(), 28);
    }
}
