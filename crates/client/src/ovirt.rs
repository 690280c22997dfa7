//! The host side of an oVirt guest agent port, reading as vdsm does: lines capped at
//! 1 MiB (discarded to the next newline beyond), each string checked against the XML
//! filter (vdsm re-serialises to XML-RPC; a string the filter would change is
//! counted), liveness as "a message within the last 120 s", and vdsm's API
//! negotiation: the common level from each heartbeat's `apiVersion`, offered with
//! `api-version` when it changes.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use guestlink_proto_ovirt::{encode, xml_safe_value, Decoder, Message};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// vdsm's highest API level.
pub const VDSM_MAX_API: u32 = 3;
/// vdsm's liveness window.
pub const LIVENESS: Duration = Duration::from_secs(120);

/// A vdsm-like host on `io`.
#[derive(Debug)]
pub struct Vdsm<S> {
    io: S,
    decoder: Decoder,
    inbox: VecDeque<Message>,
    /// The negotiated level.
    pub api: u32,
    /// Whether to negotiate as vdsm does (answer heartbeats with `api-version`).
    pub negotiate: bool,
    /// Strings the XML filter would have changed.
    pub xml_violations: usize,
    /// Lines that were not messages.
    pub bad_lines: usize,
    last: Option<Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Vdsm<S> {
    /// A host on `io`.
    pub fn new(io: S) -> Vdsm<S> {
        Vdsm {
            io,
            decoder: Decoder::default(),
            inbox: VecDeque::new(),
            api: 0,
            negotiate: true,
            xml_violations: 0,
            bad_lines: 0,
            last: None,
        }
    }

    /// Whether vdsm would call the agent responsive now.
    pub fn responsive(&self) -> bool {
        self.last.is_some_and(|t| t.elapsed() < LIVENESS)
    }

    /// Sends a command.
    pub async fn send(&mut self, msg: &Message) -> io::Result<()> {
        let mut line = Vec::new();
        encode(msg, &mut line);
        self.send_raw(&line).await
    }

    /// Sends bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    /// What vdsm does on connecting: `refresh` with its highest level.
    pub async fn connect(&mut self) -> io::Result<()> {
        let m = Message::new("refresh").arg("apiVersion", VDSM_MAX_API);
        self.send(&m).await
    }

    fn take(&mut self, m: Message) -> Message {
        let args = Value::Object(m.args.clone());
        if xml_safe_value(args.clone()) != args {
            self.xml_violations += 1;
        }
        self.last = Some(Instant::now());
        m
    }

    /// The agent's next message within `timeout` (heartbeats negotiate on the way).
    pub async fn recv(&mut self, timeout: Duration) -> io::Result<Message> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(m) = self.inbox.pop_front() {
                let m = self.take(m);
                if self.negotiate && m.name == "heartbeat" {
                    self.negotiate_from(&m).await?;
                }
                return Ok(m);
            }
            let mut buf = vec![0u8; 64 << 10];
            let n = crate::read::read_before(&mut self.io, &mut buf, deadline).await?;
            self.decoder.feed(&buf[..n]);
            while let Some(m) = self.decoder.next_message() {
                match m {
                    Ok(m) => self.inbox.push_back(m),
                    Err(_) => self.bad_lines += 1,
                }
            }
        }
    }

    /// vdsm's rule: the common level of a heartbeat, offered when it changed.
    async fn negotiate_from(&mut self, heartbeat: &Message) -> io::Result<()> {
        let theirs = heartbeat
            .args
            .get("apiVersion")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .clamp(0, i64::from(VDSM_MAX_API)) as u32;
        let common = theirs.min(VDSM_MAX_API);
        if common != self.api {
            self.api = common;
            if common > 0 {
                let m = Message::new("api-version").arg("apiVersion", common);
                self.send(&m).await?;
            }
        }
        Ok(())
    }

    /// The next message named `name` within `timeout`; the others before it are
    /// returned too.
    pub async fn expect(
        &mut self,
        name: &str,
        timeout: Duration,
    ) -> io::Result<(Message, Vec<Message>)> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = self.recv(left).await?;
            if m.name == name {
                return Ok((m, skipped));
            }
            skipped.push(m);
        }
    }

    /// Every message that comes within `window`.
    pub async fn collect(&mut self, window: Duration) -> io::Result<Vec<Message>> {
        let deadline = tokio::time::Instant::now() + window;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(out);
            }
            match self.recv(left).await {
                Ok(m) => out.push(m),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(out),
                Err(e) => return Err(e),
            }
        }
    }

    /// Every message until `quiet` passes without one (with a short heartbeat, use
    /// [`Vdsm::collect`]).
    pub async fn drain(&mut self, quiet: Duration) -> io::Result<Vec<Message>> {
        let mut out = Vec::new();
        loop {
            match self.recv(quiet).await {
                Ok(m) => out.push(m),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(out),
                Err(e) => return Err(e),
            }
        }
    }
}
