//! The event bus: everything the guest tells anyone.
//!
//! A producer publishes an [`EventRecord`] (a vocabulary event, its data and when it
//! happened) with an [`Audience`]. Each subscriber — a QGA connection that subscribed,
//! a client of the guest-side socket — has its own bounded queue and its own set of
//! event names. Publishing never waits: when a queue is full the event is dropped for
//! that subscriber only and counted, and the subscriber's next delivery is an
//! `EVENTS_DROPPED` event with the count. A slow or dead reader therefore never stalls
//! the bus, the producers or the other subscribers.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::limits::EVENT_QUEUE;
use guestlink_vocabulary::events::{EventsDroppedEvent, HeartbeatEvent};
use guestlink_vocabulary::types::{EventsDropped, Heartbeat};
use guestlink_vocabulary::Event;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Who may receive an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Every subscriber.
    Everyone,
    /// Host channels only.
    Host,
    /// Host channels, root and this user on the guest socket (a user's clipboard).
    User(u32),
}

/// Who a subscriber is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// A host channel.
    Host,
    /// A guest-socket client running as this user.
    Guest(u32),
}

impl Audience {
    fn admits(self, who: Listener) -> bool {
        match (self, who) {
            (Audience::Everyone, _) | (_, Listener::Host) => true,
            (Audience::Host, Listener::Guest(_)) => false,
            (Audience::User(uid), Listener::Guest(g)) => g == 0 || g == uid,
        }
    }
}

/// One event as published.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Wire name from the vocabulary.
    pub name: &'static str,
    /// Data, serialised from the event's typed data.
    pub data: Value,
    /// When it happened.
    pub timestamp: SystemTime,
}

impl EventRecord {
    /// Event `E` with `data`, happening now.
    pub fn new<E: Event>(data: &E::Data) -> EventRecord {
        EventRecord {
            name: E::NAME,
            data: serde_json::to_value(data).unwrap_or(Value::Null),
            timestamp: SystemTime::now(),
        }
    }

    /// The timestamp as QMP gives it: seconds and microseconds since the epoch.
    pub fn seconds_micros(&self) -> (i64, i64) {
        let d = self
            .timestamp
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        (d.as_secs() as i64, i64::from(d.subsec_micros()))
    }
}

#[derive(Debug)]
struct Queue {
    events: VecDeque<Arc<EventRecord>>,
    names: BTreeSet<&'static str>,
    heartbeat: Option<Duration>,
}

/// One subscriber's queue, shared between the bus (which fills it) and the
/// [`Subscription`] (which drains it).
#[derive(Debug)]
pub(crate) struct Inbox {
    who: Listener,
    queue: Mutex<Queue>,
    notify: Notify,
    dropped: AtomicU64,
    limit: usize,
    closed: AtomicBool,
    beats: AtomicI64,
}

impl Inbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `event` if there is room; counts it as dropped otherwise.
    fn offer(&self, event: Arc<EventRecord>) -> bool {
        let mut q = self.lock();
        if q.events.len() >= self.limit {
            drop(q);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.notify.notify_one();
            return false;
        }
        q.events.push_back(event);
        drop(q);
        self.notify.notify_one();
        true
    }

    fn wants(&self, name: &str) -> bool {
        self.lock().names.contains(name)
    }
}

/// The bus. Cheap to clone; all clones are the same bus.
#[derive(Debug, Clone, Default)]
pub struct EventBus {
    inboxes: Arc<Mutex<Vec<Weak<Inbox>>>>,
}

impl EventBus {
    /// A subscriber for `who`, receiving nothing until it names events.
    pub fn subscribe(&self, who: Listener) -> Subscription {
        self.subscribe_with_limit(who, EVENT_QUEUE)
    }

    /// [`EventBus::subscribe`] with a queue of `limit` events.
    pub fn subscribe_with_limit(&self, who: Listener, limit: usize) -> Subscription {
        let inbox = Arc::new(Inbox {
            who,
            queue: Mutex::new(Queue {
                events: VecDeque::new(),
                names: BTreeSet::new(),
                heartbeat: None,
            }),
            notify: Notify::new(),
            dropped: AtomicU64::new(0),
            limit: limit.max(1),
            closed: AtomicBool::new(false),
            beats: AtomicI64::new(0),
        });
        let mut inboxes = self.inboxes.lock().unwrap_or_else(|e| e.into_inner());
        inboxes.retain(|w| w.strong_count() > 0);
        inboxes.push(Arc::downgrade(&inbox));
        Subscription {
            inbox,
            next_beat: None,
        }
    }

    fn live(&self) -> Vec<Arc<Inbox>> {
        let inboxes = self.inboxes.lock().unwrap_or_else(|e| e.into_inner());
        inboxes
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|i| !i.closed.load(Ordering::Relaxed))
            .collect()
    }

    /// Delivers `event` to every subscriber that named it and is in `audience`; returns
    /// how many queued it.
    pub fn publish(&self, event: EventRecord, audience: Audience) -> usize {
        let event = Arc::new(event);
        let mut queued = 0;
        for inbox in self.live() {
            if audience.admits(inbox.who) && inbox.wants(event.name) && inbox.offer(event.clone()) {
                queued += 1;
            }
        }
        tracing::debug!(event = event.name, queued, "event published");
        queued
    }

    /// Whether any subscriber that is `who` listens to `name`.
    pub fn has_listener(&self, who: Listener, name: &str) -> bool {
        self.live().iter().any(|i| i.who == who && i.wants(name))
    }
}

/// A subscriber's end: the names it listens to and the events waiting for it.
/// Dropping it leaves the bus.
#[derive(Debug)]
pub struct Subscription {
    inbox: Arc<Inbox>,
    /// When the next heartbeat is due, and the interval it was computed for.
    next_beat: Option<(Instant, Duration)>,
}

/// A cheap handle that queues events for one subscriber directly, whatever names it
/// listens to (requests addressed to one session agent).
#[derive(Debug, Clone)]
pub struct Mailbox(Arc<Inbox>);

impl Mailbox {
    /// Queues `event`; false when the subscriber's queue is full or it is gone.
    pub fn send(&self, event: EventRecord) -> bool {
        self.is_open() && self.0.offer(Arc::new(event))
    }

    /// Whether the subscription still exists.
    pub fn is_open(&self) -> bool {
        !self.0.closed.load(Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.inbox.closed.store(true, Ordering::Relaxed);
    }
}

impl Mailbox {
    /// Adds event names.
    pub fn add<'a>(&self, names: impl IntoIterator<Item = &'a &'static str>) {
        self.0.lock().names.extend(names);
    }

    /// Removes event names.
    pub fn remove(&self, names: &[&'static str]) {
        let mut q = self.0.lock();
        for n in names {
            q.names.remove(n);
        }
    }

    /// Stops everything: no names, no heartbeat, nothing queued or counted.
    pub fn clear(&self) {
        let mut q = self.0.lock();
        q.names.clear();
        q.events.clear();
        q.heartbeat = None;
        drop(q);
        self.0.dropped.store(0, Ordering::Relaxed);
        self.0.beats.store(0, Ordering::Relaxed);
    }

    /// The names listened to, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.lock().names.iter().copied().collect()
    }

    /// Whether anything is subscribed.
    pub fn is_active(&self) -> bool {
        let q = self.0.lock();
        !q.names.is_empty() || q.heartbeat.is_some()
    }

    /// Starts (or with `None` stops) a heartbeat every `interval`.
    pub fn set_heartbeat(&self, interval: Option<Duration>) {
        self.0.lock().heartbeat = interval;
        self.0.notify.notify_one();
    }

    /// The heartbeat interval.
    pub fn heartbeat(&self) -> Option<Duration> {
        self.0.lock().heartbeat
    }
}

impl Subscription {
    /// A handle for changing what this subscriber receives and for direct delivery.
    pub fn mailbox(&self) -> Mailbox {
        Mailbox(self.inbox.clone())
    }

    /// Events dropped and not yet reported.
    pub fn dropped(&self) -> u64 {
        self.inbox.dropped.load(Ordering::Relaxed)
    }

    /// The next event without waiting: a drop report first, then queued events.
    pub fn try_next(&mut self) -> Option<Arc<EventRecord>> {
        let dropped = self.inbox.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            return Some(Arc::new(EventRecord::new::<EventsDroppedEvent>(
                &EventsDropped {
                    count: dropped as i64,
                },
            )));
        }
        self.inbox.lock().events.pop_front()
    }

    /// Waits for the next event (or heartbeat). Cancel-safe: an event is only taken
    /// when this returns.
    pub async fn next(&mut self) -> Arc<EventRecord> {
        loop {
            if let Some(e) = self.try_next() {
                return e;
            }
            let interval = self.inbox.lock().heartbeat;
            match interval {
                None => {
                    self.next_beat = None;
                    self.inbox.notify.notified().await;
                }
                Some(every) => {
                    let due = match self.next_beat {
                        Some((due, was)) if was == every => due,
                        _ => Instant::now() + every,
                    };
                    self.next_beat = Some((due, every));
                    tokio::select! {
                        _ = self.inbox.notify.notified() => {}
                        _ = tokio::time::sleep_until(due) => {
                            self.next_beat = Some((due + every, every));
                            let sequence = self.inbox.beats.fetch_add(1, Ordering::Relaxed) + 1;
                            return Arc::new(EventRecord::new::<HeartbeatEvent>(&Heartbeat {
                                sequence,
                                interval: every.as_secs() as i64,
                            }));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestlink_vocabulary::events::{FsFreezeEvent, GuestRequestEvent};
    use guestlink_vocabulary::types::FreezeChange;

    fn freeze(n: i64) -> EventRecord {
        EventRecord::new::<FsFreezeEvent>(&FreezeChange { count: n })
    }

    #[tokio::test]
    async fn only_named_events_in_the_audience_arrive() {
        let bus = EventBus::default();
        let mut host = bus.subscribe(Listener::Host);
        let mut user = bus.subscribe(Listener::Guest(1000));
        let mut other = bus.subscribe(Listener::Guest(1001));
        let mut root = bus.subscribe(Listener::Guest(0));
        let mut silent = bus.subscribe(Listener::Host);
        for s in [&host, &user, &other, &root] {
            s.mailbox()
                .add(&[FsFreezeEvent::NAME, GuestRequestEvent::NAME]);
        }
        assert_eq!(bus.publish(freeze(1), Audience::User(1000)), 3);
        assert_eq!(bus.publish(freeze(2), Audience::Host), 1);
        assert_eq!(host.next().await.data["count"], 1);
        assert_eq!(host.next().await.data["count"], 2);
        assert_eq!(user.next().await.data["count"], 1);
        assert_eq!(root.next().await.data["count"], 1);
        assert!(user.try_next().is_none());
        assert!(other.try_next().is_none());
        assert!(silent.try_next().is_none());
        assert!(bus.has_listener(Listener::Host, GuestRequestEvent::NAME));
        drop(host);
        assert!(!bus.has_listener(Listener::Host, GuestRequestEvent::NAME));
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_reports() {
        let bus = EventBus::default();
        let mut slow = bus.subscribe_with_limit(Listener::Host, 2);
        let mut fast = bus.subscribe(Listener::Host);
        slow.mailbox().add(&[FsFreezeEvent::NAME]);
        fast.mailbox().add(&[FsFreezeEvent::NAME]);
        for n in 0..5 {
            bus.publish(freeze(n), Audience::Everyone);
        }
        let first = slow.next().await;
        assert_eq!(first.name, "EVENTS_DROPPED");
        assert_eq!(first.data["count"], 3);
        assert_eq!(slow.next().await.data["count"], 0);
        assert_eq!(slow.next().await.data["count"], 1);
        assert!(slow.try_next().is_none());
        for n in 0..5 {
            assert_eq!(fast.next().await.data["count"], n);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeats_count_up() {
        let bus = EventBus::default();
        let mut s = bus.subscribe(Listener::Host);
        s.mailbox().set_heartbeat(Some(Duration::from_secs(5)));
        let start = Instant::now();
        let a = s.next().await;
        let b = s.next().await;
        assert_eq!(
            (a.name, a.data["sequence"].clone()),
            ("HEARTBEAT", 1.into())
        );
        assert_eq!(b.data["sequence"], 2);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[test]
    fn a_mailbox_bypasses_names_and_dies_with_its_subscription() {
        let bus = EventBus::default();
        let mut s = bus.subscribe(Listener::Guest(5));
        let m = s.mailbox();
        assert!(m.send(freeze(1)));
        assert_eq!(s.try_next().unwrap().data["count"], 1);
        drop(s);
        assert!(!m.send(freeze(2)));
    }
}
