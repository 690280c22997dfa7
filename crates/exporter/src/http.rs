//! The exporter's HTTP side: `GET /metrics` for Prometheus, a page at `/` that points
//! there, and nothing else. One request per connection; a request head is read
//! within a limit of size and time, and at most [`MAX_CLIENTS`] are served at once, so
//! a stuck or hostile client cannot hold the exporter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::metrics::{render, SelfMetrics};
use super::poller::Registry;

/// Largest request head read.
const MAX_HEAD: usize = 8 << 10;
/// Time a client has to send its request.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Clients served at once.
const MAX_CLIENTS: usize = 32;

/// A response: status line, content type, body.
struct Response {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

/// Serves until the listener fails.
pub async fn serve(listener: TcpListener, registry: Registry) -> std::io::Result<()> {
    let scrapes = Arc::new(AtomicU64::new(0));
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            // Out of descriptors and the like: wait and go on.
            Err(e) => {
                tracing::warn!("accepting a metrics client: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return Ok(());
        };
        let registry = registry.clone();
        let scrapes = scrapes.clone();
        tokio::spawn(async move {
            if let Err(e) = client(stream, &registry, &scrapes).await {
                tracing::debug!(%peer, "metrics client: {e}");
            }
            drop(slot);
        });
    }
}

async fn client(
    mut stream: TcpStream,
    registry: &Registry,
    scrapes: &AtomicU64,
) -> std::io::Result<()> {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    };
    let (method, target) = match request_line(&head) {
        Some(r) => r,
        None => {
            return respond(&mut stream, false, bad("400 Bad Request")).await;
        }
    };
    let path = target.split('?').next().unwrap_or("");
    let head_only = method == "HEAD";
    let response = match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let n = scrapes.fetch_add(1, Ordering::Relaxed) + 1;
            let me = SelfMetrics {
                rss_bytes: crate::procfs::status_kib(std::process::id(), "VmRSS").map(|k| k * 1024),
                cpu_seconds: crate::procfs::cpu_seconds(std::process::id()),
                scrapes: n,
            };
            let body = {
                let map = registry.lock().unwrap_or_else(|e| e.into_inner());
                render(&map, &me)
            };
            Response {
                status: "200 OK",
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body,
            }
        }
        ("GET" | "HEAD", "/") => Response {
            status: "200 OK",
            content_type: "text/html; charset=utf-8",
            body: "<html><head><title>guestlink exporter</title></head><body>\
                   <h1>guestlink exporter</h1><p><a href=\"/metrics\">Metrics</a></p>\
                   </body></html>\n"
                .into(),
        },
        ("GET" | "HEAD", _) => bad("404 Not Found"),
        _ => bad("405 Method Not Allowed"),
    };
    respond(&mut stream, head_only, response).await
}

fn bad(status: &'static str) -> Response {
    Response {
        status,
        content_type: "text/plain; charset=utf-8",
        body: format!("{status}\n"),
    }
}

/// Reads up to the blank line that ends the head (or [`MAX_HEAD`] bytes, or EOF).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while head.len() < MAX_HEAD {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break;
        }
    }
    Ok(head)
}

/// The method and target of `METHOD TARGET HTTP/x.y`.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let end = head.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&head[..end])
        .ok()?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    (parts.next().is_none() && version.starts_with("HTTP/1.") && target.starts_with('/'))
        .then_some((method, target))
}

async fn respond(stream: &mut TcpStream, head_only: bool, r: Response) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        r.status,
        r.content_type,
        r.body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if !head_only {
        stream.write_all(r.body.as_bytes()).await?;
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            request_line(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            request_line(b"GET /metrics?x=1 HTTP/1.0\n\n"),
            Some(("GET", "/metrics?x=1"))
        );
        assert_eq!(request_line(b"GET metrics HTTP/1.1\r\n"), None);
        assert_eq!(request_line(b"\xff\xfe\r\n"), None);
        assert_eq!(request_line(b"GET / HTTP/1.1"), None);
        assert_eq!(request_line(b"GET / SPDY/3 x\r\n"), None);
    }
}
