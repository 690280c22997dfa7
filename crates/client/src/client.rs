//! The connection: resynchronisation, requests, replies.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use guestlink_vocabulary::commands::{GuestSyncDelimited, Payload};
use guestlink_vocabulary::Command;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::endpoint::{BoxStream, Endpoint};
use crate::error::ClientError;

/// Replies longer than this are refused (the agent's own limit is 64 MiB per message,
/// and a 48 MiB file read is 64 MiB of base64).
pub const MAX_REPLY: usize = 96 << 20;

/// Bytes read from the channel at once.
const READ_BUFFER: usize = 256 << 10;

/// How long one resynchronisation attempt waits before the request is sent again.
const RESYNC_RETRY: Duration = Duration::from_secs(1);

/// A connection to an agent.
pub struct Client {
    pub(crate) io: BufReader<BoxStream>,
    timeout: Duration,
    in_sync: bool,
    /// Bulk transfer is on for this conversation, with this largest payload (reset by
    /// every resync).
    pub(crate) bulk: Option<usize>,
    /// A bulk write broke off after part of its payload: the agent is waiting for
    /// bytes this connection can no longer send, so it cannot be used again.
    pub(crate) broken: bool,
    pub(crate) events: VecDeque<Value>,
    /// What the user subscribed to, renewed after a resync.
    pub(crate) subscription: Option<Vec<guestlink_vocabulary::types::SubscribeArgs>>,
    /// Whether the agent still has that subscription (false after a resync).
    pub(crate) subscribed: bool,
    /// A line read in part when a read was cancelled.
    partial: Vec<u8>,
    /// Longest reply or event line taken.
    max_reply: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .field("in_sync", &self.in_sync)
            .finish_non_exhaustive()
    }
}

fn random_id() -> i64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    i64::from((h.finish() & 0x7fff_ffff) as u32)
}

impl Client {
    /// Connects to a unix socket and resynchronises.
    pub async fn connect_unix(
        path: impl AsRef<std::path::Path>,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        Self::connect(&Endpoint::Unix(path.as_ref().to_path_buf()), timeout).await
    }

    /// Connects to any endpoint and resynchronises.
    pub async fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Client, ClientError> {
        let stream = tokio::time::timeout(timeout, endpoint.open())
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
            .map_err(|source| ClientError::Connect {
                path: endpoint.to_string(),
                source,
            })?;
        Self::over(stream, timeout).await
    }

    /// Uses an already open stream and resynchronises.
    pub async fn over(stream: BoxStream, timeout: Duration) -> Result<Client, ClientError> {
        Self::over_with_buffer(stream, timeout, READ_BUFFER).await
    }

    /// [`Client::over`] with a read buffer of `capacity` bytes: a program that holds
    /// hundreds of connections and moves small replies (the exporter) keeps it small.
    /// Longer replies still arrive whole; they take more reads.
    pub async fn over_with_buffer(
        stream: BoxStream,
        timeout: Duration,
        capacity: usize,
    ) -> Result<Client, ClientError> {
        let mut c = Client {
            io: BufReader::with_capacity(capacity.max(512), stream),
            timeout,
            in_sync: false,
            bulk: None,
            broken: false,
            events: VecDeque::new(),
            subscription: None,
            subscribed: false,
            partial: Vec::new(),
            max_reply: MAX_REPLY,
        };
        c.resync().await?;
        Ok(c)
    }

    /// The reply timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the client is in step with the agent (false after a timeout, until the
    /// next call resynchronises).
    pub fn is_in_sync(&self) -> bool {
        self.in_sync
    }

    /// Makes the next call resynchronise first (the stream holds bytes of unknown
    /// length).
    pub(crate) fn mark_out_of_sync(&mut self) {
        self.in_sync = false;
    }

    /// Refuses replies and event lines longer than `bytes` (default [`MAX_REPLY`]): a
    /// host program watching many guests, which it need not trust, keeps it small.
    pub fn set_max_reply(&mut self, bytes: usize) {
        self.max_reply = bytes;
    }

    /// Changes the reply timeout.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Messages that arrived and were neither a reply nor a sync echo (events, and
    /// requests from the guest once agents send them), oldest first.
    pub fn take_events(&mut self) -> Vec<Value> {
        self.events.drain(..).collect()
    }

    /// Flushes the agent's parser and discards stale replies.
    pub async fn resync(&mut self) -> Result<(), ClientError> {
        if self.broken {
            return Err(ClientError::Broken);
        }
        // The agent forgets bulk mode and the subscription when it sees the sync.
        self.bulk = None;
        self.subscribed = false;
        self.partial.clear();
        let timeout = self.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        // Each attempt gets its own id; an echo of any of them ends the resync. The
        // request is repeated every second, so a device the agent opens (and flushes)
        // only after the first attempt still synchronises within the timeout.
        let mut ids = Vec::new();
        loop {
            let id = random_id();
            ids.push(id);
            let mut req = vec![0xFF];
            req.extend_from_slice(
                json!({"execute": GuestSyncDelimited::NAME, "arguments": {"id": id}})
                    .to_string()
                    .as_bytes(),
            );
            req.push(b'\n');
            self.io.get_mut().write_all(&req).await?;
            let attempt_end = deadline.min(tokio::time::Instant::now() + RESYNC_RETRY);
            match tokio::time::timeout_at(attempt_end, self.await_echo(&ids)).await {
                Ok(Ok(())) => {
                    self.in_sync = true;
                    return Ok(());
                }
                Ok(Err(e)) => return Err(e),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(ClientError::Timeout(timeout))
                }
                Err(_) => {}
            }
        }
    }

    /// Skips to a `0xFF`-delimited reply that echoes one of `ids`.
    async fn await_echo(&mut self, ids: &[i64]) -> Result<(), ClientError> {
        loop {
            // Everything before the sentinel is stale or garbage: skip it without
            // keeping it, however much there is.
            loop {
                let buf = self.io.fill_buf().await?;
                if buf.is_empty() {
                    return Err(ClientError::Closed);
                }
                match memchr::memchr(0xFF, buf) {
                    Some(i) => {
                        self.io.consume(i + 1);
                        break;
                    }
                    None => {
                        let n = buf.len();
                        self.io.consume(n);
                    }
                }
            }
            let line = self.read_line().await?;
            if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                if v.get("return")
                    .and_then(Value::as_i64)
                    .is_some_and(|r| ids.contains(&r))
                {
                    return Ok(());
                }
            }
        }
    }

    /// Reads one line. Cancel-safe: a line cut short by cancellation is kept and
    /// completed by the next call.
    pub(crate) async fn read_line(&mut self) -> Result<Vec<u8>, ClientError> {
        loop {
            let buf = self.io.fill_buf().await?;
            if buf.is_empty() {
                return Err(ClientError::Closed);
            }
            let (take, done) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            self.partial.extend_from_slice(&buf[..take]);
            self.io.consume(take);
            if self.partial.len() > self.max_reply {
                self.partial = Vec::new();
                // The rest of the line is still coming: resynchronise before the next
                // call.
                self.in_sync = false;
                return Err(ClientError::Protocol(format!(
                    "reply longer than {} bytes",
                    self.max_reply
                )));
            }
            if done {
                return Ok(std::mem::take(&mut self.partial));
            }
        }
    }

    /// Sends a raw request object and returns the whole reply object. A reply without
    /// `return` or `error` is an error; an `error` reply is returned as is.
    pub async fn call_raw(&mut self, request: &Value) -> Result<Value, ClientError> {
        let mut text =
            serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        text.push(b'\n');
        let line = self.exchange(&text).await?;
        serde_json::from_slice(&line).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Sends one request line and returns the reply line (resynchronising first if a
    /// previous call timed out). Lines that are not replies are queued as events.
    async fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.exchange_with(request, &[]).await
    }

    /// [`Client::exchange`] with raw bytes sent right after the request (bulk
    /// transfer). If the payload cannot be sent in full, the connection is broken for
    /// good: the agent would take whatever comes next as the rest of it.
    pub(crate) async fn exchange_with(
        &mut self,
        request: &[u8],
        payload: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        if !self.in_sync {
            self.resync().await?;
        }
        let timeout = self.timeout;
        let reply = tokio::time::timeout(timeout, async {
            let w = self.io.get_mut();
            w.write_all(request).await?;
            if !payload.is_empty() {
                self.broken = true;
                w.write_all(payload).await?;
                self.broken = false;
            }
            loop {
                let mut line = self.read_line().await?;
                if line.first() == Some(&0xFF) {
                    line.remove(0);
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                // A reply starts with {"return" / {"error" / {"id"; anything else that
                // parses is an event or a request from the guest.
                let head = &line[..line.len().min(16)];
                let is_reply = [&b"{\"return\""[..], b"{\"error\"", b"{\"id\""]
                    .iter()
                    .any(|p| head.starts_with(p));
                if is_reply {
                    return Ok(line);
                }
                match serde_json::from_slice::<Value>(&line) {
                    Ok(v) if v.get("return").is_some() || v.get("error").is_some() => {
                        return Ok(line)
                    }
                    Ok(v) => self.events.push_back(v),
                    Err(e) => return Err(ClientError::Protocol(e.to_string())),
                }
            }
        })
        .await;
        match reply {
            Ok(r) => r,
            Err(_) => {
                self.in_sync = false;
                Err(ClientError::Timeout(timeout))
            }
        }
    }

    /// Reads exactly `len` raw bytes that follow a reply, within the timeout.
    pub(crate) async fn read_payload(&mut self, len: usize) -> Result<Vec<u8>, ClientError> {
        let mut data = Vec::new();
        data.try_reserve_exact(len)
            .map_err(|_| ClientError::Protocol(format!("cannot hold a {len}-byte payload")))?;
        let timeout = self.timeout;
        // Read into the spare capacity: no pass to zero the buffer first.
        let fill = async {
            while data.len() < len {
                let want = len - data.len();
                let n = (&mut self.io).take(want as u64).read_buf(&mut data).await?;
                if n == 0 {
                    return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
                }
            }
            Ok(())
        };
        match tokio::time::timeout(timeout, fill).await {
            Ok(Ok(())) => Ok(data),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(ClientError::Closed),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => {
                // The rest of the payload is stale; the next call resynchronises.
                self.in_sync = false;
                Err(ClientError::Timeout(timeout))
            }
        }
    }

    /// Runs a command by name with JSON arguments and returns its `return` value.
    pub async fn execute(
        &mut self,
        name: &str,
        arguments: Option<Value>,
    ) -> Result<Value, ClientError> {
        let reply = self.call_raw(&Client::request(name, arguments)).await?;
        Client::result_of(reply)
    }

    /// The request object for `name` with its arguments.
    pub(crate) fn request(name: &str, arguments: Option<Value>) -> Value {
        let mut req = json!({"execute": name});
        if let Some(args) = arguments {
            req["arguments"] = args;
        }
        req
    }

    /// A reply's `return` value, or its `error` as [`ClientError::Agent`].
    pub(crate) fn result_of(mut reply: Value) -> Result<Value, ClientError> {
        if let Some(err) = reply.get("error") {
            let field = |k: &str| {
                err.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            return Err(ClientError::Agent {
                class: field("class"),
                desc: field("desc"),
            });
        }
        Ok(reply["return"].take())
    }

    /// Runs a command of the vocabulary with typed arguments and result. The reply is
    /// decoded straight into the result type (no intermediate JSON tree), so bulk data
    /// is copied once. Commands with a raw payload have their own methods
    /// ([`Client::file_read_raw`], [`Client::file_write_raw`]).
    pub async fn call<C: Command>(&mut self, args: &C::Args) -> Result<C::Returns, ClientError>
    where
        C::Args: Serialize,
    {
        if C::PAYLOAD != Payload::None {
            return Err(ClientError::Protocol(format!(
                "{} carries raw bytes; use its own method",
                C::NAME
            )));
        }
        let mut text = request_text::<C>(args)?;
        text.push(b'\n');
        let line = self.exchange(&text).await?;
        reply_of::<C>(&line)
    }

    /// The bytes read and not yet used, and the connection itself.
    pub(crate) fn into_parts(self) -> (Vec<u8>, BoxStream) {
        let mut buffered = self.partial;
        buffered.extend_from_slice(self.io.buffer());
        (buffered, self.io.into_inner())
    }

    /// Consumes the client, dropping the connection.    /// Consumes the client, dropping the connection.
    pub fn close(self) {}
}

/// The request text of a typed call (without a trailing newline).
pub(crate) fn request_text<C: Command>(args: &C::Args) -> Result<Vec<u8>, ClientError>
where
    C::Args: Serialize,
{
    #[derive(serde::Serialize)]
    struct Request<'a, A> {
        execute: &'static str,
        arguments: &'a A,
    }
    // `"arguments": {}` is accepted by every agent (Proxmox always sends it).
    serde_json::to_vec(&Request {
        execute: C::NAME,
        arguments: args,
    })
    .map_err(|e| ClientError::Protocol(e.to_string()))
}

/// The typed result of a reply line, or the agent's error.
pub(crate) fn reply_of<C: Command>(line: &[u8]) -> Result<C::Returns, ClientError> {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        class: String,
        #[serde(default)]
        desc: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(bound = "T: serde::de::DeserializeOwned")]
    struct Reply<T> {
        #[serde(rename = "return")]
        ret: Option<T>,
        error: Option<ErrorBody>,
    }
    let reply: Reply<C::Returns> = serde_json::from_slice(line)
        .map_err(|e| ClientError::Protocol(format!("{}: {e}", C::NAME)))?;
    match (reply.ret, reply.error) {
        (_, Some(e)) => Err(ClientError::Agent {
            class: e.class,
            desc: e.desc,
        }),
        (Some(r), None) => Ok(r),
        (None, None) => Err(ClientError::Protocol(format!(
            "{}: reply without return",
            C::NAME
        ))),
    }
}
