//! The two fixed headers, little-endian and packed.

/// Bytes of a chunk header.
pub const CHUNK_HEADER_LEN: usize = 8;
/// Bytes of a message header.
pub const MESSAGE_HEADER_LEN: usize = 20;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `VDIChunkHeader`: which chunk port, and how many payload bytes follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Chunk port (1: client, 2: server).
    pub port: u32,
    /// Payload bytes that follow.
    pub size: u32,
}

impl ChunkHeader {
    /// Parses the 8 header bytes.
    pub fn parse(b: &[u8; CHUNK_HEADER_LEN]) -> ChunkHeader {
        ChunkHeader {
            port: u32_at(b, 0),
            size: u32_at(b, 4),
        }
    }

    /// The 8 header bytes.
    pub fn to_bytes(self) -> [u8; CHUNK_HEADER_LEN] {
        let mut b = [0u8; CHUNK_HEADER_LEN];
        b[..4].copy_from_slice(&self.port.to_le_bytes());
        b[4..].copy_from_slice(&self.size.to_le_bytes());
        b
    }
}

/// `VDAgentMessage`: protocol, type, an opaque value nobody reads, and the data size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    /// Must be [`crate::PROTOCOL`].
    pub protocol: u32,
    /// Message type (see [`crate::MessageType`]).
    pub kind: u32,
    /// Written as 0, ignored.
    pub opaque: u64,
    /// Data bytes that follow.
    pub size: u32,
}

impl MessageHeader {
    /// Parses the 20 header bytes.
    pub fn parse(b: &[u8; MESSAGE_HEADER_LEN]) -> MessageHeader {
        MessageHeader {
            protocol: u32_at(b, 0),
            kind: u32_at(b, 4),
            opaque: u64::from(u32_at(b, 8)) | (u64::from(u32_at(b, 12)) << 32),
            size: u32_at(b, 16),
        }
    }

    /// The 20 header bytes.
    pub fn to_bytes(self) -> [u8; MESSAGE_HEADER_LEN] {
        let mut b = [0u8; MESSAGE_HEADER_LEN];
        b[..4].copy_from_slice(&self.protocol.to_le_bytes());
        b[4..8].copy_from_slice(&self.kind.to_le_bytes());
        b[8..16].copy_from_slice(&self.opaque.to_le_bytes());
        b[16..].copy_from_slice(&self.size.to_le_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_little_endian_and_packed() {
        let c = ChunkHeader {
            port: 1,
            size: 0x0102,
        };
        assert_eq!(c.to_bytes(), [1, 0, 0, 0, 2, 1, 0, 0]);
        assert_eq!(ChunkHeader::parse(&c.to_bytes()), c);
        let m = MessageHeader {
            protocol: 1,
            kind: 6,
            opaque: 0x1122_3344_5566_7788,
            size: 8,
        };
        let b = m.to_bytes();
        assert_eq!(&b[..8], &[1, 0, 0, 0, 6, 0, 0, 0]);
        assert_eq!(&b[8..16], &[0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
        assert_eq!(&b[16..], &[8, 0, 0, 0]);
        assert_eq!(MessageHeader::parse(&b), m);
    }
}
