//! The host side of a SPICE vdagent channel, for tools and tests: what spice-server or
//! QEMU's `qemu-vdagent` chardev does on the port. It greets like a connecting client
//! (capabilities with request = 1) or answers the agent's greeting, encodes with the
//! capabilities both sides announced, sends on either chunk port (2 is spice-server's
//! own: mouse, client disconnection), reassembles the agent's chunks per port and
//! records the largest chunk seen, so a caller can check the agent's framing.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use guestlink_proto_vdagent::messages::caps;
use guestlink_proto_vdagent::{
    encode_on, AgentMessage, Capabilities, ChunkHeader, Decoder, Negotiated, Port,
    CHUNK_HEADER_LEN, MAX_CHUNK,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// What spice-gtk announces (0, 1, 2, 4, 5, 6, 12, 14, 16, 17).
pub fn spice_gtk_caps() -> Capabilities {
    let mut c = Capabilities::default();
    for bit in [0, 1, 2, 4, 5, 6, 12, 14, 16, 17] {
        c.set(bit);
    }
    c
}

/// What QEMU's `qemu-vdagent` announces with mouse and clipboard on (0, 5, 6, 17).
pub fn qemu_caps() -> Capabilities {
    let mut c = Capabilities::default();
    for bit in [
        caps::MOUSE_STATE,
        caps::CLIPBOARD_BY_DEMAND,
        caps::CLIPBOARD_SELECTION,
        caps::CLIPBOARD_GRAB_SERIAL,
    ] {
        c.set(bit);
    }
    c
}

/// A host end of a vdagent port.
#[derive(Debug)]
pub struct Host<S> {
    io: S,
    decoder: Decoder,
    /// Our capabilities.
    pub ours: Capabilities,
    /// The agent's, once it announced them.
    pub agent: Option<Capabilities>,
    inbox: VecDeque<(Port, AgentMessage)>,
    /// The largest chunk payload the agent sent.
    pub largest_chunk: usize,
    /// The agent's chunks that were not on the client port.
    pub foreign_port_chunks: usize,
    pending: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Host<S> {
    /// A host with capabilities `ours` on `io`.
    pub fn new(io: S, ours: Capabilities) -> Host<S> {
        Host {
            io,
            decoder: Decoder::default(),
            ours,
            agent: None,
            inbox: VecDeque::new(),
            largest_chunk: 0,
            foreign_port_chunks: 0,
            pending: Vec::new(),
        }
    }

    /// What both announced, as the agent's messages are encoded.
    pub fn negotiated(&self) -> Negotiated {
        match &self.agent {
            Some(a) => Negotiated::of(&self.ours, a),
            None => Negotiated::default(),
        }
    }

    /// Sends `msg` on `port`.
    pub async fn send_on(&mut self, port: Port, msg: &AgentMessage) -> io::Result<()> {
        let mut buf = Vec::new();
        encode_on(
            port,
            msg.kind() as u32,
            &msg.to_data(self.negotiated()),
            &mut buf,
        );
        self.send_raw(&buf).await
    }

    /// Sends `msg` on the client port.
    pub async fn send(&mut self, msg: &AgentMessage) -> io::Result<()> {
        self.send_on(Port::Client, msg).await
    }

    /// Sends bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    /// Watches the agent's chunk headers go by (framing checks).
    fn scan(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        loop {
            if self.pending.len() < CHUNK_HEADER_LEN {
                return;
            }
            let mut h = [0u8; CHUNK_HEADER_LEN];
            h.copy_from_slice(&self.pending[..CHUNK_HEADER_LEN]);
            let header = ChunkHeader::parse(&h);
            let size = header.size as usize;
            if self.pending.len() < CHUNK_HEADER_LEN + size {
                return;
            }
            self.largest_chunk = self.largest_chunk.max(size);
            if header.port != Port::Client as u32 {
                self.foreign_port_chunks += 1;
            }
            self.pending.drain(..CHUNK_HEADER_LEN + size);
        }
    }

    /// The agent's next message, within `timeout`.
    pub async fn recv(&mut self, timeout: Duration) -> io::Result<(Port, AgentMessage)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(m) = self.inbox.pop_front() {
                return Ok(m);
            }
            while let Some(m) = self.decoder.next_message() {
                let m = m.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let msg = AgentMessage::parse(m.kind, &m.data, self.negotiated())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                if let AgentMessage::AnnounceCapabilities { caps, .. } = &msg {
                    self.agent = Some(caps.clone());
                }
                self.inbox.push_back((m.port, msg));
            }
            if !self.inbox.is_empty() {
                continue;
            }
            let mut buf = vec![0u8; 64 << 10];
            let n = crate::read::read_before(&mut self.io, &mut buf, deadline).await?;
            self.scan(&buf[..n]);
            self.decoder.feed(&buf[..n]);
        }
    }

    /// The agent's next message that `want` accepts, within `timeout`; the others
    /// before it are returned too, in order.
    pub async fn expect(
        &mut self,
        timeout: Duration,
        want: impl Fn(&AgentMessage) -> bool,
    ) -> io::Result<(AgentMessage, Vec<AgentMessage>)> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (_, m) = self.recv(left).await?;
            if want(&m) {
                return Ok((m, skipped));
            }
            skipped.push(m);
        }
    }

    /// Waits for the agent's greeting (capabilities with request = 1) and answers it.
    pub async fn answer_greeting(&mut self, timeout: Duration) -> io::Result<Capabilities> {
        let (m, _) = self
            .expect(timeout, |m| {
                matches!(m, AgentMessage::AnnounceCapabilities { request: true, .. })
            })
            .await?;
        let AgentMessage::AnnounceCapabilities { caps, .. } = m else {
            unreachable!("matched above");
        };
        let ours = self.ours.clone();
        self.send(&AgentMessage::AnnounceCapabilities {
            request: false,
            caps: ours,
        })
        .await?;
        Ok(caps)
    }

    /// Connects as a new client: our capabilities with request = 1, and the agent's
    /// answer.
    pub async fn connect_client(&mut self, timeout: Duration) -> io::Result<Capabilities> {
        let ours = self.ours.clone();
        self.send(&AgentMessage::AnnounceCapabilities {
            request: true,
            caps: ours,
        })
        .await?;
        self.agent_answer(timeout).await
    }

    /// What spice-server sends when its client vanished in the middle of a message and
    /// another connects: half a message on the client port, CLIENT_DISCONNECTED on the
    /// server port and the new client's capabilities, in one write. The agent's answer.
    pub async fn reconnect_after_vanished_client(
        &mut self,
        timeout: Duration,
    ) -> io::Result<Capabilities> {
        let mut half = Vec::new();
        // Clipboard data (type 4), 3000 bytes: two chunks, of which only the first goes.
        encode_on(Port::Client, 4, &[0x55; 3000], &mut half);
        half.truncate(CHUNK_HEADER_LEN + MAX_CHUNK);
        let gone = AgentMessage::ClientDisconnected;
        encode_on(Port::Server, gone.kind() as u32, &[], &mut half);
        let hello = AgentMessage::AnnounceCapabilities {
            request: true,
            caps: self.ours.clone(),
        };
        encode_on(
            Port::Client,
            hello.kind() as u32,
            &hello.to_data(self.negotiated()),
            &mut half,
        );
        self.send_raw(&half).await?;
        self.agent_answer(timeout).await
    }

    /// The agent's answer to a client's capabilities (request = 0).
    async fn agent_answer(&mut self, timeout: Duration) -> io::Result<Capabilities> {
        let (m, _) = self
            .expect(timeout, |m| {
                matches!(m, AgentMessage::AnnounceCapabilities { request: false, .. })
            })
            .await?;
        let AgentMessage::AnnounceCapabilities { caps, .. } = m else {
            unreachable!("matched above");
        };
        Ok(caps)
    }

    /// Whether the agent stays silent for `quiet` (nothing it sent is lost: a message
    /// that arrives is kept for the next [`Host::recv`]).
    pub async fn is_silent(&mut self, quiet: Duration) -> io::Result<bool> {
        match self.recv(quiet).await {
            Ok(m) => {
                self.inbox.push_front(m);
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(true),
            Err(e) => Err(e),
        }
    }
}
