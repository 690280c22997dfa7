//! Events from guestlinkd: subscribing, receiving them as they come, and answering the
//! requests guest programs send the host (`GUEST_REQUEST`).
//!
//! A subscription belongs to the conversation: a resync ends it on the agent's side,
//! so the client subscribes again, with the same choice, before it waits for the next
//! event. Events that arrive while a call waits for its reply are kept in order and
//! handed out first.

use guestlink_vocabulary::commands::{
    GuestlinkEventsSubscribe, GuestlinkEventsUnsubscribe, GuestlinkGuestReply,
};
use guestlink_vocabulary::types::{
    ReplyArgs, ReplyError, SubscribeArgs, Subscription, UnsubscribeArgs,
};
use serde_json::Value;

use crate::{Client, ClientError};

/// One event line.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its name (`SESSION_NEW`, `GUEST_REQUEST`, ...).
    pub name: String,
    /// Its data.
    pub data: Value,
    /// When it happened: seconds since the epoch.
    pub seconds: i64,
    /// ... and microseconds.
    pub microseconds: i64,
}

impl Event {
    /// The event in a message, if it is one.
    pub fn from_value(v: &Value) -> Option<Event> {
        let name = v.get("event")?.as_str()?.to_string();
        let ts = v.get("timestamp");
        let field = |k: &str| {
            ts.and_then(|t| t.get(k))
                .and_then(Value::as_i64)
                .unwrap_or(0)
        };
        Some(Event {
            name,
            data: v.get("data").cloned().unwrap_or(Value::Null),
            seconds: field("seconds"),
            microseconds: field("microseconds"),
        })
    }
}

impl Client {
    /// Subscribes to `events` (all when `None`), with a heartbeat every `heartbeat`
    /// seconds if given. The choice adds to the current one and is renewed after a
    /// resync.
    pub async fn subscribe(
        &mut self,
        events: Option<&[&str]>,
        heartbeat: Option<u64>,
    ) -> Result<Subscription, ClientError> {
        let args = SubscribeArgs {
            events: events.map(|e| e.iter().map(|s| s.to_string()).collect()),
            heartbeat: heartbeat.map(|h| h as i64),
        };
        let sub = self.call::<GuestlinkEventsSubscribe>(&args).await?;
        self.subscription.get_or_insert_with(Vec::new).push(args);
        self.subscribed = true;
        Ok(sub)
    }

    /// Ends the subscription.
    pub async fn unsubscribe(&mut self) -> Result<(), ClientError> {
        self.subscription = None;
        self.call::<GuestlinkEventsUnsubscribe>(&UnsubscribeArgs { events: None })
            .await?;
        Ok(())
    }

    /// Waits for the next event, as long as it takes. Cancel-safe: dropping the future
    /// loses nothing.
    pub async fn next_event(&mut self) -> Result<Event, ClientError> {
        loop {
            if let Some(v) = self.events.pop_front() {
                if let Some(e) = Event::from_value(&v) {
                    return Ok(e);
                }
                continue;
            }
            if !self.subscribed {
                if let Some(choice) = self.subscription.clone() {
                    for args in &choice {
                        self.call::<GuestlinkEventsSubscribe>(args).await?;
                    }
                    self.subscribed = true;
                    continue;
                }
            }
            let line = self.read_line().await?;
            match serde_json::from_slice::<Value>(&line) {
                Ok(v) if v.get("event").is_some() => self.events.push_back(v),
                // A late reply to a call that timed out, or blank padding.
                Ok(_) | Err(_) => {}
            }
        }
    }

    /// Answers a `GUEST_REQUEST`: the guest program gets `answer` (its `return`, or an
    /// error with this text).
    pub async fn answer_guest_request(
        &mut self,
        tag: i64,
        answer: Result<Value, String>,
    ) -> Result<(), ClientError> {
        let (ret, error) = match answer {
            Ok(v) => (Some(v), None),
            Err(desc) => (None, Some(ReplyError { class: None, desc })),
        };
        self.call::<GuestlinkGuestReply>(&ReplyArgs { tag, ret, error })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_lines_parse() {
        let v = json!({"event": "FSTHAW", "data": {"count": 1}, "timestamp": {"seconds": 5, "microseconds": 7}});
        let e = Event::from_value(&v).unwrap();
        assert_eq!(
            (e.name.as_str(), e.seconds, e.microseconds),
            ("FSTHAW", 5, 7)
        );
        assert_eq!(e.data["count"], 1);
        assert!(Event::from_value(&json!({"return": {}})).is_none());
    }
}
