//! Requests waiting for an answer from another party: a guest program's request to
//! the host (answered by `__org.guestlink_guest-reply`), guestlinkd's request to a
//! session agent (answered by `__org.guestlink_session-reply`).
//!
//! Each is identified by a tag that travels in the event announcing it; only the party
//! it was sent to may answer it. The table is bounded, and an entry disappears when its
//! waiter stops waiting (answer, timeout, or the requester going away). One guest user
//! other than root holds at most [`PENDING_REQUESTS_PER_USER`] entries, and such users together
//! leave [`PENDING_REQUESTS_RESERVED`] for root and the host.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use guestlink_vocabulary::types::ReplyError;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::call::Caller;
use crate::error::CommandError;
use crate::limits::{PENDING_REQUESTS, PENDING_REQUESTS_PER_USER, PENDING_REQUESTS_RESERVED};

/// Who may answer a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answerer {
    /// Any host channel.
    Host,
    /// One guest-socket connection.
    Connection(u64),
}

/// A `return`: its value and, for an answer whose bytes came raw, the bytes (its
/// `data`, kept out of the JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Answered {
    /// The `return` value.
    pub value: Value,
    /// Raw bytes that came with it.
    pub data: Option<Vec<u8>>,
}

impl From<Value> for Answered {
    fn from(value: Value) -> Self {
        Answered { value, data: None }
    }
}

/// An answer: the `return` or the `error`.
pub type Answer = Result<Answered, ReplyError>;

#[derive(Debug)]
struct Waiter {
    answerer: Answerer,
    /// The guest user (not root) whose call opened it.
    owner: Option<u32>,
    tx: oneshot::Sender<Answer>,
    /// Bytes the answerer takes with the request (`session-data`), once.
    outbound: Option<Vec<u8>>,
}

/// The table of waiting requests.
#[derive(Debug)]
pub struct Pending {
    next: AtomicI64,
    waiters: Mutex<HashMap<i64, Waiter>>,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            next: AtomicI64::new(1),
            waiters: Mutex::new(HashMap::new()),
        }
    }
}

/// A request waiting for its answer; dropping it withdraws the request.
#[derive(Debug)]
pub struct Ticket<'a> {
    /// The tag to announce.
    pub tag: i64,
    rx: Option<oneshot::Receiver<Answer>>,
    table: &'a Pending,
}

impl Ticket<'_> {
    /// Waits for the answer; `None` when the request was withdrawn.
    pub async fn answer(&mut self) -> Option<Answer> {
        let rx = self.rx.as_mut()?;
        rx.await.ok()
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.table.lock().remove(&self.tag);
    }
}

/// A refusal for a limit, logged.
fn refused(why: String) -> CommandError {
    tracing::warn!("request refused: {why}");
    CommandError::new(why)
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Waiter>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a request that `answerer` is to answer, for a call of `requester`.
    pub fn open(&self, answerer: Answerer, requester: Caller) -> Result<Ticket<'_>, CommandError> {
        self.open_with(answerer, requester, None)
    }

    /// [`Pending::open`], with bytes the answerer takes with [`Pending::take_data`].
    pub fn open_with(
        &self,
        answerer: Answerer,
        requester: Caller,
        outbound: Option<Vec<u8>>,
    ) -> Result<Ticket<'_>, CommandError> {
        let mut waiters = self.lock();
        if waiters.len() >= PENDING_REQUESTS {
            return Err(refused(format!(
                "too many requests waiting for an answer (limit pending-requests: {PENDING_REQUESTS})"
            )));
        }
        let owner = match requester {
            Caller::Guest { uid, .. } if uid != 0 => Some(uid),
            _ => None,
        };
        if let Some(uid) = owner {
            let mine = waiters.values().filter(|w| w.owner == Some(uid)).count();
            if mine >= PENDING_REQUESTS_PER_USER {
                return Err(refused(format!(
                    "too many requests of uid {uid} waiting for an answer (limit pending-requests-per-user: {PENDING_REQUESTS_PER_USER})"
                )));
            }
            let users = waiters.values().filter(|w| w.owner.is_some()).count();
            if users >= PENDING_REQUESTS - PENDING_REQUESTS_RESERVED {
                return Err(refused(format!(
                    "too many requests waiting for an answer (limit pending-requests: {PENDING_REQUESTS}, {PENDING_REQUESTS_RESERVED} kept for root and the host)"
                )));
            }
        }
        let tag = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        waiters.insert(
            tag,
            Waiter {
                answerer,
                owner,
                tx,
                outbound,
            },
        );
        Ok(Ticket {
            tag,
            rx: Some(rx),
            table: self,
        })
    }

    /// Delivers `from`'s answer to request `tag`.
    pub fn answer(&self, tag: i64, from: Answerer, answer: Answer) -> Result<(), CommandError> {
        let mut waiters = self.lock();
        match waiters.get(&tag) {
            Some(w) if w.answerer == from => {}
            _ => {
                return Err(CommandError::new(format!(
                    "no request with tag {tag} is waiting for this answer"
                )))
            }
        }
        let waiter = waiters.remove(&tag).expect("checked above");
        drop(waiters);
        // The requester may have stopped waiting in the meantime; nothing to do then.
        let _ = waiter.tx.send(answer);
        Ok(())
    }

    /// The bytes of request `tag`, for `from`, its answerer; once.
    pub fn take_data(&self, tag: i64, from: Answerer) -> Result<Vec<u8>, CommandError> {
        let mut waiters = self.lock();
        match waiters.get_mut(&tag) {
            Some(w) if w.answerer == from => w.outbound.take().ok_or_else(|| {
                CommandError::new(format!("request {tag} has no bytes to take (any more)"))
            }),
            _ => Err(CommandError::new(format!(
                "no request with tag {tag} is waiting for this connection"
            ))),
        }
    }

    /// Whether request `tag` waits for `from`'s answer.
    pub fn is_for(&self, tag: i64, from: Answerer) -> bool {
        self.lock().get(&tag).is_some_and(|w| w.answerer == from)
    }

    /// Requests waiting now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_addressee_answers_and_tickets_clean_up() {
        let p = Pending::default();
        let mut t = p.open(Answerer::Connection(7), Caller::Host).unwrap();
        let tag = t.tag;
        assert!(p
            .answer(tag, Answerer::Host, Ok(Value::Null.into()))
            .is_err());
        assert!(p
            .answer(tag, Answerer::Connection(8), Ok(Value::Null.into()))
            .is_err());
        p.answer(tag, Answerer::Connection(7), Ok(Value::from(1).into()))
            .unwrap();
        assert_eq!(t.answer().await.unwrap().unwrap().value, 1);
        drop(t);
        assert!(p.is_empty());
        let t2 = p.open(Answerer::Host, Caller::Host).unwrap();
        assert_ne!(t2.tag, tag);
        drop(t2);
        assert!(p
            .answer(tag + 1, Answerer::Host, Ok(Value::Null.into()))
            .is_err());
        assert!(p.is_empty());
    }

    #[test]
    fn bytes_go_once_and_only_to_the_addressee() {
        let p = Pending::default();
        let t = p
            .open_with(Answerer::Connection(7), Caller::Host, Some(vec![1, 2, 3]))
            .unwrap();
        let e = p.take_data(t.tag, Answerer::Connection(8)).unwrap_err();
        assert!(e.desc.contains("no request with tag"), "{e}");
        assert_eq!(
            p.take_data(t.tag, Answerer::Connection(7)).unwrap(),
            [1, 2, 3]
        );
        let e = p.take_data(t.tag, Answerer::Connection(7)).unwrap_err();
        assert!(e.desc.contains("no bytes to take"), "{e}");
        let plain = p.open(Answerer::Connection(7), Caller::Host).unwrap();
        assert!(p.take_data(plain.tag, Answerer::Connection(7)).is_err());
    }

    #[test]
    fn the_table_is_bounded() {
        let p = Pending::default();
        let tickets: Vec<_> = (0..PENDING_REQUESTS)
            .map(|_| p.open(Answerer::Host, Caller::Host).unwrap())
            .collect();
        let e = p.open(Answerer::Host, Caller::Host).unwrap_err();
        assert!(e.desc.contains("pending-requests"), "{e}");
        drop(tickets);
        assert!(p.open(Answerer::Host, Caller::Host).is_ok());
    }

    #[test]
    fn one_user_cannot_take_the_table() {
        let p = Pending::default();
        let guest = |uid| Caller::Guest { uid, pid: 1 };
        let mine: Vec<_> = (0..PENDING_REQUESTS_PER_USER)
            .map(|_| p.open(Answerer::Host, guest(1000)).unwrap())
            .collect();
        let e = p.open(Answerer::Host, guest(1000)).unwrap_err();
        assert!(e.desc.contains("pending-requests-per-user: 32"), "{e}");
        // Other users fill what users may take; root and the host still get theirs.
        let users = PENDING_REQUESTS - PENDING_REQUESTS_RESERVED - PENDING_REQUESTS_PER_USER;
        let others: Vec<_> = (0..users)
            .map(|i| {
                let uid = 2000 + (i / PENDING_REQUESTS_PER_USER) as u32;
                p.open(Answerer::Host, guest(uid)).unwrap()
            })
            .collect();
        assert!(p.open(Answerer::Host, guest(5000)).is_err());
        let root = p.open(Answerer::Host, guest(0)).unwrap();
        let host = p.open(Answerer::Connection(3), Caller::Host).unwrap();
        drop((mine, root, host));
        assert!(p.open(Answerer::Host, guest(1000)).is_ok());
        drop(others);
        assert!(p.is_empty());
    }
}
