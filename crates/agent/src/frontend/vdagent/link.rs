//! The port itself: outgoing messages are queued and written by their own future, so
//! reading never waits for the host to drain a large clipboard; the greeting
//! (ANNOUNCE_CAPABILITIES with request = 1) is written again whenever a new host
//! appears, and waits, on a virtio port, until one is there.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Something to write.
#[derive(Debug)]
pub enum Out {
    /// The greeting to a new host.
    Greeting(Vec<u8>),
    /// Any other message.
    Message(Vec<u8>),
}

/// Wait before writing the greeting again after the port refused it.
const GREETING_RETRY: Duration = Duration::from_millis(100);

/// The most bytes waiting to be written; messages beyond it are dropped (a host that
/// stopped reading must not make the agent grow without bound).
pub const QUEUE_LIMIT: usize = 80 << 20;

/// Where the front end puts what it sends; counts bytes queued.
#[derive(Debug)]
pub struct Sender {
    tx: mpsc::UnboundedSender<Out>,
    /// Bytes queued and not written yet.
    pub queued: Arc<AtomicUsize>,
}

impl Sender {
    /// Queues `out`.
    pub fn send(&self, out: Out) {
        let len = match &out {
            Out::Greeting(b) | Out::Message(b) => b.len(),
        };
        if matches!(out, Out::Message(_)) && self.queued.load(Ordering::Relaxed) + len > QUEUE_LIMIT
        {
            tracing::warn!(
                bytes = len,
                "the host is not reading: message dropped (limit vdagent-queue)"
            );
            return;
        }
        self.queued.fetch_add(len, Ordering::Relaxed);
        // The writer outlives the front end's loop; a send fails only once both end.
        let _ = self.tx.send(out);
    }
}

/// A queue and the receiving end the writer drains.
pub fn queue() -> (Sender, mpsc::UnboundedReceiver<Out>, Arc<AtomicUsize>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        Sender {
            tx,
            queued: queued.clone(),
        },
        rx,
        queued,
    )
}

/// Writes what is queued until the queue closes or the port fails.
pub async fn write_all<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: mpsc::UnboundedReceiver<Out>,
    queued: Arc<AtomicUsize>,
) -> io::Result<()> {
    while let Some(out) = rx.recv().await {
        match out {
            Out::Greeting(bytes) => {
                // A port with no host behind it may refuse writes for a while.
                loop {
                    match w.write_all(&bytes).await {
                        Ok(()) => break,
                        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                            tokio::time::sleep(GREETING_RETRY).await
                        }
                        Err(e) => return Err(e),
                    }
                }
                queued.fetch_sub(bytes.len(), Ordering::Relaxed);
            }
            Out::Message(bytes) => {
                w.write_all(&bytes).await?;
                queued.fetch_sub(bytes.len(), Ordering::Relaxed);
            }
        }
        w.flush().await?;
    }
    Ok(())
}
