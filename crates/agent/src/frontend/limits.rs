//! What clients of a listening socket may hold: how many connections, and how much
//! memory in messages not yet complete.
//!
//! The guest socket is shared by every user of the guest, and a `unix-listen` or
//! `vsock-listen` channel by every host process that reaches it; none of them may make
//! root's agent grow or lock the others out:
//! - [`Admission`] counts guest-socket connections: [`GUEST_CLIENTS`] in all, at most
//!   [`GUEST_CLIENTS_PER_USER`] for one user, and [`GUEST_CLIENTS_RESERVED`] more
//!   that only root and users with a session (its session agent) may take;
//! - [`Budget`] charges each connection for what its decoder holds: at most
//!   [`PARTIAL_MESSAGE_BYTES_PER_USER`] for one guest user and [`PARTIAL_MESSAGE_BYTES`] for every
//!   connection of every listening socket together. A connection whose message would
//!   pass either is told so and closed.
//!
//! Each refusal is a protocol error naming its limit, and is logged. The figures are in
//! [`guestlink_core::limits`].

// Admission and charges are for listening sockets and the guest socket, which the
// Windows agent does not have yet.
#![cfg_attr(windows, allow(dead_code))]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guestlink_core::limits::{
    GUEST_CLIENTS, GUEST_CLIENTS_PER_USER, GUEST_CLIENTS_RESERVED, GUEST_IDLE_TIMEOUT,
    PARTIAL_MESSAGE_BYTES, PARTIAL_MESSAGE_BYTES_PER_USER,
};

/// [`GUEST_IDLE_TIMEOUT`], or `$GUESTLINK_GUEST_IDLE_TIMEOUT` seconds.
pub fn guest_idle_timeout() -> Duration {
    std::env::var("GUESTLINK_GUEST_IDLE_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(GUEST_IDLE_TIMEOUT, Duration::from_secs)
}

#[derive(Debug, Default)]
struct Count {
    total: usize,
    per_user: HashMap<u32, usize>,
}

/// Guest-socket connections by user.
#[derive(Debug, Default)]
pub struct Admission {
    count: Mutex<Count>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
    uid: u32,
}

impl Admission {
    fn lock(&self) -> std::sync::MutexGuard<'_, Count> {
        self.count.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection of `uid`, or says which limit refuses it. `has_session`:
    /// the user has a login session or a session agent, and may use the reserve.
    pub fn admit(self: &Arc<Self>, uid: u32, has_session: bool) -> Result<Slot, String> {
        let mut count = self.lock();
        let mine = count.per_user.get(&uid).copied().unwrap_or(0);
        if uid != 0 && mine >= GUEST_CLIENTS_PER_USER {
            return Err(format!(
                "too many connections of uid {uid} (limit guest-clients-per-user: {GUEST_CLIENTS_PER_USER})"
            ));
        }
        let reserve = uid == 0 || has_session;
        let limit = GUEST_CLIENTS + if reserve { GUEST_CLIENTS_RESERVED } else { 0 };
        if count.total >= limit {
            return Err(format!(
                "too many clients (limit guest-clients: {GUEST_CLIENTS}, {GUEST_CLIENTS_RESERVED} more for root and users with a session)"
            ));
        }
        count.total += 1;
        *count.per_user.entry(uid).or_default() += 1;
        Ok(Slot {
            admission: self.clone(),
            uid,
        })
    }

    /// Connections admitted now.
    #[cfg(test)]
    fn total(&self) -> usize {
        self.lock().total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut count = self.admission.lock();
        count.total -= 1;
        if let Some(n) = count.per_user.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                count.per_user.remove(&self.uid);
            }
        }
    }
}

/// Memory held in partial messages, in all and by guest user.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    per_user: usize,
    held: Mutex<Count>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(PARTIAL_MESSAGE_BYTES, PARTIAL_MESSAGE_BYTES_PER_USER)
    }
}

/// What one connection is charged; dropping it gives everything back.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<Budget>,
    /// The guest user charged per user; `None` for root and host clients.
    uid: Option<u32>,
    held: usize,
}

impl Budget {
    /// A budget of `limit` bytes in all and `per_user` for one guest user.
    pub fn new(limit: usize, per_user: usize) -> Budget {
        Budget {
            limit,
            per_user,
            held: Mutex::default(),
        }
    }

    /// A charge for a new connection: a guest user's (`Some(uid)`, other than root) or
    /// anyone else's.
    pub fn charge(self: &Arc<Self>, uid: Option<u32>) -> Charge {
        Charge {
            budget: self.clone(),
            uid: uid.filter(|&u| u != 0),
            held: 0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Count> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes charged now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.lock().total
    }
}

impl Charge {
    /// Charges the connection `bytes` in place of what it held, or says which limit
    /// that would pass (the charge is then unchanged).
    pub fn set(&mut self, bytes: usize) -> Result<(), String> {
        let budget = self.budget.clone();
        let mut held = budget.lock();
        if bytes > self.held {
            let more = bytes - self.held;
            if held.total + more > budget.limit {
                return Err(format!(
                    "the agent holds too much in messages not yet complete (limit partial-message-bytes: {} MiB)",
                    budget.limit >> 20
                ));
            }
            if let Some(uid) = self.uid {
                let mine = held.per_user.get(&uid).copied().unwrap_or(0);
                if mine + more > budget.per_user {
                    return Err(format!(
                        "uid {uid} holds too much in messages not yet complete (limit partial-message-bytes-per-user: {} MiB)",
                        budget.per_user >> 20
                    ));
                }
            }
        }
        held.total = held.total + bytes - self.held;
        if let Some(uid) = self.uid {
            let mine = held.per_user.entry(uid).or_default();
            *mine = *mine + bytes - self.held;
            if *mine == 0 {
                held.per_user.remove(&uid);
            }
        }
        self.held = bytes;
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let _ = self.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestlink_core::limits::{GUEST_MESSAGE_BYTES, LISTEN_CLIENTS};

    #[test]
    fn the_manual_states_these_limits() {
        let help = <crate::cli::Cli as clap::CommandFactory>::command()
            .get_after_long_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        let mib = |b: usize| format!("{} MiB", b >> 20);
        for stated in [
            format!("guest-clients: {GUEST_CLIENTS} "),
            format!("guest-clients-reserved: {GUEST_CLIENTS_RESERVED} "),
            format!("guest-clients-per-user: {GUEST_CLIENTS_PER_USER} "),
            format!("guest-message-bytes: {}", mib(GUEST_MESSAGE_BYTES)),
            format!("partial-message-bytes: {}", mib(PARTIAL_MESSAGE_BYTES)),
            format!(
                "partial-message-bytes-per-user: {}",
                mib(PARTIAL_MESSAGE_BYTES_PER_USER)
            ),
            format!("guest-idle-timeout: {} s", GUEST_IDLE_TIMEOUT.as_secs()),
            format!("listen-clients: {LISTEN_CLIENTS} "),
            format!(
                "pending-requests: {} ",
                guestlink_core::limits::PENDING_REQUESTS
            ),
            format!(
                "pending-requests-per-user: {} ",
                guestlink_core::limits::PENDING_REQUESTS_PER_USER
            ),
            format!(
                "exec-output-total: {}",
                mib(guestlink_core::limits::EXEC_OUTPUT_TOTAL)
            ),
            format!(
                "a registered session agent may send up to {}",
                mib(guestlink_core::limits::SESSION_AGENT_MESSAGE_BYTES)
            ),
        ] {
            assert!(
                help.contains(&stated),
                "guestlinkd(8) does not say '{stated}'"
            );
        }
    }

    #[test]
    fn one_user_cannot_take_every_place() {
        let a = Arc::new(Admission::default());
        let mine: Vec<Slot> = (0..GUEST_CLIENTS_PER_USER)
            .map(|_| a.admit(1000, false).unwrap())
            .collect();
        let e = a.admit(1000, true).unwrap_err();
        assert!(e.contains("guest-clients-per-user: 8"), "{e}");
        // Others fill the shared places; root and a user with a session still get in.
        let others: Vec<Slot> = (0..GUEST_CLIENTS - GUEST_CLIENTS_PER_USER)
            .map(|i| {
                a.admit(2000 + (i / GUEST_CLIENTS_PER_USER) as u32, false)
                    .unwrap()
            })
            .collect();
        let e = a.admit(3000, false).unwrap_err();
        assert!(e.contains("limit guest-clients: 64"), "{e}");
        let root = a.admit(0, false).unwrap();
        let agent = a.admit(3001, true).unwrap();
        drop((mine, others, root, agent));
        assert_eq!(a.total(), 0);
        assert!(a.admit(1000, false).is_ok());
    }

    #[test]
    fn partial_messages_are_charged_per_user_and_in_all() {
        let b = Arc::new(Budget::new(100, 40));
        let mut alice = b.charge(Some(1000));
        let mut alice2 = b.charge(Some(1000));
        alice.set(30).unwrap();
        let e = alice2.set(11).unwrap_err();
        assert!(e.contains("per-user"), "{e}");
        alice2.set(10).unwrap();
        let mut root = b.charge(Some(0));
        root.set(60).unwrap();
        let mut host = b.charge(None);
        let e = host.set(1).unwrap_err();
        assert!(e.contains("partial-message-bytes: "), "{e}");
        alice.set(5).unwrap();
        host.set(25).unwrap();
        assert_eq!(b.held(), 100);
        drop((alice, alice2, root, host));
        assert_eq!(b.held(), 0);
    }
}
