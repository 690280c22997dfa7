//! A host-side client for a QEMU guest agent channel (guestlinkd or qemu-ga).
//!
//! [`Client::connect_unix`] connects to the host end of the channel (the unix socket
//! QEMU or libvirt exposes, or a `unix-listen` agent) and resynchronises at once: it
//! sends `0xFF` to flush the agent's parser, then `guest-sync-delimited` with a random
//! id, discards everything up to the `0xFF` sentinel and every reply that is not the
//! echo of that id. After a timeout the next call resynchronises again. Calls are
//! typed through the vocabulary ([`Client::call`]) or raw JSON ([`Client::call_raw`]).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::time::Duration;

use guestlink_vocabulary::commands::GuestSyncDelimited;
use guestlink_vocabulary::Command;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Replies longer than this are refused (the agent's own limit is 64 MiB per message).
pub const MAX_REPLY: usize = 96 << 20;

/// What can go wrong talking to an agent.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error("cannot connect to {path}: {source}")]
    Connect {
        /// Socket path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing failed.
    #[error("agent channel I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// No reply in time.
    #[error("the agent did not answer within {0:?}")]
    Timeout(Duration),
    /// The agent closed the connection.
    #[error("the agent closed the connection")]
    Closed,
    /// A reply that is not JSON or not a reply.
    #[error("malformed reply from the agent: {0}")]
    Protocol(String),
    /// The agent answered with an error.
    #[error("{class}: {desc}")]
    Agent {
        /// Error class (`GenericError`, `CommandNotFound`).
        class: String,
        /// Description.
        desc: String,
    },
}

impl ClientError {
    /// Whether the agent said the command is unknown or disabled.
    pub fn is_command_not_found(&self) -> bool {
        matches!(self, ClientError::Agent { class, .. } if class == "CommandNotFound")
    }
}

/// A connection to an agent.
#[derive(Debug)]
pub struct Client {
    io: BufReader<UnixStream>,
    timeout: Duration,
    in_sync: bool,
}

fn random_id() -> i64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    i64::from((h.finish() & 0x7fff_ffff) as u32)
}

impl Client {
    /// Connects to a unix socket and resynchronises.
    pub async fn connect_unix(
        path: impl AsRef<Path>,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| ClientError::Connect {
                path: path.display().to_string(),
                source,
            })?;
        let mut c = Client {
            io: BufReader::new(stream),
            timeout,
            in_sync: false,
        };
        c.resync().await?;
        Ok(c)
    }

    /// Flushes the agent's parser and discards stale replies.
    pub async fn resync(&mut self) -> Result<(), ClientError> {
        let id = random_id();
        let mut req = vec![0xFF];
        req.extend_from_slice(
            json!({"execute": GuestSyncDelimited::NAME, "arguments": {"id": id}})
                .to_string()
                .as_bytes(),
        );
        req.push(b'\n');
        self.io.get_mut().write_all(&req).await?;
        let timeout = self.timeout;
        tokio::time::timeout(timeout, async {
            loop {
                // Everything before the sentinel is stale or garbage.
                let mut skipped = Vec::new();
                self.io.read_until(0xFF, &mut skipped).await?;
                if skipped.last() != Some(&0xFF) {
                    return Err(ClientError::Closed);
                }
                let line = self.read_line().await?;
                if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                    if v.get("return") == Some(&json!(id)) {
                        return Ok(());
                    }
                }
            }
        })
        .await
        .map_err(|_| ClientError::Timeout(timeout))??;
        self.in_sync = true;
        Ok(())
    }

    async fn read_line(&mut self) -> Result<Vec<u8>, ClientError> {
        let mut line = Vec::new();
        loop {
            let buf = self.io.fill_buf().await?;
            if buf.is_empty() {
                return Err(ClientError::Closed);
            }
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            line.extend_from_slice(&buf[..take]);
            self.io.consume(take);
            if line.len() > MAX_REPLY {
                return Err(ClientError::Protocol(format!(
                    "reply longer than {MAX_REPLY} bytes"
                )));
            }
            if done {
                return Ok(line);
            }
        }
    }

    /// Sends a raw request object and returns the whole reply object. A reply without
    /// `return` or `error` is an error; an `error` reply is returned as is.
    pub async fn call_raw(&mut self, request: &Value) -> Result<Value, ClientError> {
        if !self.in_sync {
            self.resync().await?;
        }
        let mut text =
            serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        text.push(b'\n');
        self.io.get_mut().write_all(&text).await?;
        let timeout = self.timeout;
        let reply = tokio::time::timeout(timeout, async {
            loop {
                let line = self.read_line().await?;
                let trimmed: &[u8] = line.strip_prefix(&[0xFF]).unwrap_or(&line);
                if trimmed.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let v: Value = serde_json::from_slice(trimmed)
                    .map_err(|e| ClientError::Protocol(e.to_string()))?;
                if v.get("return").is_some() || v.get("error").is_some() {
                    return Ok(v);
                }
                // Anything else (events a future agent might send) is not a reply.
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

    /// Runs a command by name with JSON arguments and returns its `return` value.
    pub async fn execute(
        &mut self,
        name: &str,
        arguments: Option<Value>,
    ) -> Result<Value, ClientError> {
        let mut req = json!({"execute": name});
        if let Some(args) = arguments {
            req["arguments"] = args;
        }
        let mut reply = self.call_raw(&req).await?;
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

    /// Runs a command of the vocabulary with typed arguments and result.
    pub async fn call<C: Command>(&mut self, args: &C::Args) -> Result<C::Returns, ClientError>
    where
        C::Args: Serialize,
    {
        let args = serde_json::to_value(args).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let args = match args {
            Value::Object(m) if m.is_empty() => None,
            v => Some(v),
        };
        let ret = self.execute(C::NAME, args).await?;
        serde_json::from_value(ret).map_err(|e| ClientError::Protocol(format!("{}: {e}", C::NAME)))
    }

    /// Consumes the client, dropping the connection.
    pub fn close(self) {}
}
