//! One conversation with a peer: a host channel's connection or a client of the guest
//! socket. It carries who is calling and the peer's event subscription, so handlers of
//! the subscription commands and of forwarded requests can reach them; the front end
//! keeps the receiving end ([`Subscription`]) and writes what arrives.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::call::{CallContext, Caller};
use crate::events::{EventBus, Listener, Mailbox, Subscription};
use crate::live::StreamSlot;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A conversation's state that the core needs.
#[derive(Debug)]
pub struct Connection {
    /// Unique for the life of the process.
    pub id: u64,
    /// Channel and caller.
    pub call: CallContext,
    /// The peer's subscription: names, heartbeat, direct delivery.
    pub events: Mailbox,
    /// Its live streams (`__org.guestlink_stream-enable`).
    pub streams: StreamSlot,
}

impl Connection {
    /// A new conversation on `bus` for `call`, and the end its events arrive at.
    pub fn open(bus: &EventBus, call: CallContext) -> (Connection, Subscription) {
        let listener = match call.caller {
            Caller::Host => Listener::Host,
            Caller::Guest { uid, .. } => Listener::Guest(uid),
        };
        let sub = bus.subscribe(listener);
        let conn = Connection {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            call,
            events: sub.mailbox(),
            streams: StreamSlot::default(),
        };
        (conn, sub)
    }
}
