//! A channel's read buffer: small while the channel is quiet, large once it is busy.

use std::io;
use std::ops::Deref;

use tokio::io::{AsyncRead, AsyncReadExt};

/// What a new buffer holds: an idle channel keeps no more than this.
const FIRST: usize = 4 << 10;

/// A read buffer that starts at 4 KiB and doubles, up to its maximum, each time a read
/// fills it. guestlinkd keeps one per channel and connection, and most of them sit idle
/// for the agent's whole life; a transfer reaches the maximum within a few reads.
#[derive(Debug)]
pub struct ReadBuffer {
    buf: Vec<u8>,
    max: usize,
    /// The last read filled the buffer: grow before the next one.
    full: bool,
}

impl ReadBuffer {
    /// A buffer that grows to `max` bytes at most.
    pub fn new(max: usize) -> ReadBuffer {
        ReadBuffer {
            buf: vec![0; FIRST.min(max)],
            max,
            full: false,
        }
    }

    /// Reads once from `rd` into the buffer; what was read is `self[..n]`. Growing
    /// happens here, before the read, so what the previous read returned is never
    /// moved while the caller looks at it. Cancel-safe, as the read itself.
    pub async fn read_from<R: AsyncRead + Unpin>(&mut self, rd: &mut R) -> io::Result<usize> {
        if self.full && self.buf.len() < self.max {
            let len = (self.buf.len() * 2).min(self.max);
            self.buf.resize(len, 0);
        }
        self.full = false;
        let n = rd.read(&mut self.buf).await?;
        self.full = n == self.buf.len();
        Ok(n)
    }
}

impl Deref for ReadBuffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grows_while_reads_fill_it_and_keeps_what_was_read() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut rd = &data[..];
        let mut b = ReadBuffer::new(64 << 10);
        assert_eq!(b.len(), 4096);
        let mut got = Vec::new();
        let mut sizes = Vec::new();
        loop {
            let n = b.read_from(&mut rd).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&b[..n]);
            sizes.push(b.len());
        }
        assert_eq!(got, data);
        assert_eq!(&sizes[..6], [4096, 8192, 16384, 32768, 65536, 65536]);
    }

    #[tokio::test]
    async fn a_short_read_does_not_grow_it() {
        let mut rd = &b"a line\n"[..];
        let mut b = ReadBuffer::new(64 << 10);
        assert_eq!(b.read_from(&mut rd).await.unwrap(), 7);
        assert_eq!(&b[..7], b"a line\n");
        assert_eq!(b.read_from(&mut rd).await.unwrap(), 0);
        assert_eq!(b.len(), 4096);
    }

    #[test]
    fn never_starts_above_its_maximum() {
        assert_eq!(ReadBuffer::new(100).len(), 100);
    }
}
