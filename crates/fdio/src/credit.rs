//! Credit: how many bytes one direction of a live stream may still send before the
//! reader grants more. The agent and the host library both keep one per stream.

use std::sync::Mutex;

use tokio::sync::Notify;

/// One direction's credit, granted by the reader and spent by the sender.
#[derive(Debug)]
pub struct Credit {
    avail: Mutex<u64>,
    max: u64,
    more: Notify,
}

impl Credit {
    /// Credit starting at `window` bytes, never more than `max` unspent.
    pub fn new(window: u32, max: u32) -> Credit {
        Credit {
            avail: Mutex::new(u64::from(window)),
            max: u64::from(max),
            more: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.avail.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The reader grants `bytes` more. False when that would leave more than the
    /// maximum unspent: the reader does not keep count, and the grant is refused.
    pub fn grant(&self, bytes: u32) -> bool {
        let mut avail = self.lock();
        let total = *avail + u64::from(bytes);
        if total > self.max {
            return false;
        }
        *avail = total;
        drop(avail);
        self.more.notify_waiters();
        self.more.notify_one();
        true
    }

    /// Waits for credit and takes up to `max` bytes of it (at least one).
    pub async fn take(&self, max: usize) -> usize {
        loop {
            let notified = self.more.notified();
            {
                let mut avail = self.lock();
                if *avail > 0 {
                    let n = (*avail).min(max as u64);
                    *avail -= n;
                    return n as usize;
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sender_waits_for_credit_and_takes_what_there_is() {
        let c = std::sync::Arc::new(Credit::new(10, 100));
        assert_eq!(c.take(4).await, 4);
        assert_eq!(c.take(100).await, 6);
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.take(100).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert!(c.grant(3));
        assert_eq!(waiter.await.unwrap(), 3);
        assert!(c.grant(100));
        assert!(!c.grant(1));
    }
}
