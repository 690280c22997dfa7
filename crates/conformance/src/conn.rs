//! A raw connection to an agent: bytes out, reply lines in, with timeouts.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Failure;

/// How long a reply may take.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// One connection.
#[derive(Debug)]
pub struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
}

fn fail(msg: impl Into<String>) -> Failure {
    Failure(msg.into())
}

impl Conn {
    /// Connects to a stream socket, retrying for up to `patience` (QEMU's harness
    /// retries once a second for about ten seconds).
    pub fn connect(path: &Path, patience: Duration) -> Result<Conn, Failure> {
        let deadline = Instant::now() + patience;
        loop {
            match UnixStream::connect(path) {
                Ok(stream) => {
                    return Ok(Conn {
                        stream,
                        buf: Vec::new(),
                    })
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(fail(format!("cannot connect to {}: {e}", path.display())))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.stream
            .write_all(bytes)
            .map_err(|e| fail(format!("write failed: {e}")))
    }

    fn fill(&mut self, deadline: Instant) -> Result<bool, Failure> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        self.stream
            .set_read_timeout(Some(left))
            .map_err(|e| fail(e.to_string()))?;
        let mut chunk = [0u8; 64 << 10];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(fail("the agent closed the connection")),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(fail(format!("read failed: {e}"))),
        }
    }

    /// The next line (without its newline), waiting up to `timeout`.
    pub fn line_within(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, Failure> {
        let deadline = Instant::now() + timeout;
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=scanned + i).collect();
                line.pop();
                return Ok(Some(line));
            }
            scanned = self.buf.len();
            if !self.fill(deadline)? {
                return Ok(None);
            }
        }
    }

    /// The next line; a timeout is a failure.
    pub fn line(&mut self) -> Result<Vec<u8>, Failure> {
        self.line_within(REPLY_TIMEOUT)?
            .ok_or_else(|| fail("no reply within the timeout"))
    }

    /// Sends a 0xFF byte (which makes the agent drop partial input) and then
    /// `guest-sync-delimited` with `id`.
    pub fn send_sync_delimited(&mut self, id: u32) -> Result<(), Failure> {
        self.send(&[0xFF])?;
        let req =
            format!("{{\"execute\":\"guest-sync-delimited\",\"arguments\":{{\"id\":{id}}}}}\n");
        self.send(req.as_bytes())
    }

    /// Discards bytes up to and including the next 0xFF.
    pub fn skip_to_sentinel(&mut self) -> Result<(), Failure> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == 0xFF) {
                self.buf.drain(..=i);
                return Ok(());
            }
            self.buf.clear();
            if !self.fill(deadline)? {
                return Err(fail("no 0xFF delimiter within the timeout"));
            }
        }
    }

    /// Whether nothing arrives within `wait`.
    pub fn silent_for(&mut self, wait: Duration) -> Result<bool, Failure> {
        Ok(self.buf.is_empty() && !self.fill(Instant::now() + wait)?)
    }

    /// Parses the next line as a JSON object.
    pub fn reply(&mut self) -> Result<Value, Failure> {
        let line = self.line()?;
        let v: Value = serde_json::from_slice(&line).map_err(|e| {
            fail(format!(
                "reply is not JSON ({e}): {}",
                String::from_utf8_lossy(&line)
            ))
        })?;
        if !v.is_object() {
            return Err(fail(format!("reply is not an object: {v}")));
        }
        Ok(v)
    }

    /// Sends a request (a newline is added) and parses the reply.
    pub fn call(&mut self, request: &str) -> Result<Value, Failure> {
        self.send(request.as_bytes())?;
        self.send(b"\n")?;
        self.reply()
    }

    /// Sends `{"execute": name, "arguments": args}` and parses the reply.
    pub fn execute(&mut self, name: &str, args: Value) -> Result<Value, Failure> {
        let req = serde_json::json!({"execute": name, "arguments": args});
        self.call(&req.to_string())
    }
}

/// QEMU's `no_error`: the reply has no `error` member. Returns `return`.
pub fn no_error(r: &Value) -> Result<&Value, Failure> {
    if r.get("error").is_some() {
        return Err(fail(format!("unexpected error: {r}")));
    }
    r.get("return")
        .ok_or_else(|| fail(format!("reply without return: {r}")))
}

/// QEMU's `error(class)`: an error of that class with a non-empty description, and no
/// `return`. Returns the description.
pub fn error_of(r: &Value, class: &str) -> Result<String, Failure> {
    let e = r
        .get("error")
        .ok_or_else(|| fail(format!("expected a {class} error, got {r}")))?;
    if e["class"] != class || r.get("return").is_some() {
        return Err(fail(format!("expected a {class} error, got {r}")));
    }
    match e["desc"].as_str() {
        Some(d) if !d.is_empty() => Ok(d.to_string()),
        _ => Err(fail(format!("error without a description: {r}"))),
    }
}
