//! User sessions and the session agents that serve them.
//!
//! Two sources meet here: the session back end (logind) reports which sessions exist,
//! which is active and which are locked, as snapshots; [`Sessions::apply`] compares
//! each snapshot with the last and returns the events to publish. Session agents
//! (`guestlink-session`) register on the guest socket for their session; the registry
//! remembers their mailbox and what their clipboards offer, and picks the agent a
//! clipboard request goes to: for the host the active session's, for a program in the
//! guest one of its own user's — never another user's.

use std::collections::BTreeMap;
use std::sync::Mutex;

use guestlink_vocabulary::events::{
    SessionActiveEvent, SessionLockEvent, SessionNewEvent, SessionRemovedEvent, SessionUnlockEvent,
};
use guestlink_vocabulary::types::{ClipboardSelection, SessionActive, SessionInfo, SessionRef};

use crate::call::Caller;
use crate::error::{Cause, CommandError};
use crate::events::{Audience, EventRecord, Mailbox};

/// A session as the back end reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSession {
    /// logind session id.
    pub id: String,
    /// User id.
    pub uid: u32,
    /// User name.
    pub user: String,
    /// Seat.
    pub seat: Option<String>,
    /// Active on its seat.
    pub active: bool,
    /// Screen locked.
    pub locked: bool,
}

impl LoginSession {
    fn reference(&self) -> SessionRef {
        SessionRef {
            id: self.id.clone(),
            uid: i64::from(self.uid),
            user: self.user.clone(),
        }
    }
}

/// A registered session agent.
#[derive(Debug, Clone)]
pub struct SessionAgent {
    /// The guest-socket connection it registered on.
    pub conn: u64,
    /// Its user.
    pub uid: u32,
    /// Where requests for it go.
    pub mailbox: Mailbox,
    /// What it offers (`clipboard`).
    pub capabilities: Vec<String>,
    offers: [Vec<String>; 2],
    order: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Sessions from the back end; `None` when no back end runs.
    logind: Option<BTreeMap<String, LoginSession>>,
    agents: BTreeMap<String, SessionAgent>,
    registrations: u64,
    host_offers: [Option<HostOffer>; 2],
}

/// The sessions registry.
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<Inner>,
}

fn slot(selection: ClipboardSelection) -> usize {
    match selection {
        ClipboardSelection::Clipboard => 0,
        ClipboardSelection::Primary => 1,
    }
}

/// The agent a clipboard request goes to.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its session.
    pub session: String,
    /// The session's user (the agent's, without a session back end).
    pub uid: u32,
    /// Whether the session's screen is locked.
    pub locked: bool,
    /// The agent.
    pub agent: SessionAgent,
}

/// A selection the host owns: what it offers, and the connection to fetch it from.
#[derive(Debug, Clone)]
pub struct HostOffer {
    /// The session whose selection it is.
    pub session: String,
    /// The host connection.
    pub conn: u64,
    /// Where fetch requests go.
    pub mailbox: Mailbox,
    /// MIME types offered.
    pub types: Vec<String>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a snapshot from the back end and returns the events it implies: sessions
    /// new and removed, lock changes, and a change of the active session. The first
    /// snapshot announces every session.
    pub fn apply(&self, snapshot: Vec<LoginSession>) -> Vec<(EventRecord, Audience)> {
        let mut inner = self.lock();
        let old = inner.logind.take().unwrap_or_default();
        let new: BTreeMap<String, LoginSession> =
            snapshot.into_iter().map(|s| (s.id.clone(), s)).collect();
        let mut events = Vec::new();
        for (id, s) in &old {
            if !new.contains_key(id) {
                events.push(EventRecord::new::<SessionRemovedEvent>(&s.reference()));
            }
        }
        for (id, s) in &new {
            match old.get(id) {
                None => {
                    let info = session_info(s, inner.agents.contains_key(id));
                    events.push(EventRecord::new::<SessionNewEvent>(&info));
                }
                Some(before) if before.locked != s.locked => {
                    events.push(if s.locked {
                        EventRecord::new::<SessionLockEvent>(&s.reference())
                    } else {
                        EventRecord::new::<SessionUnlockEvent>(&s.reference())
                    });
                }
                Some(_) => {}
            }
        }
        let active = |m: &BTreeMap<String, LoginSession>| {
            m.values().find(|s| s.active).map(|s| s.id.clone())
        };
        let now_active = active(&new);
        if active(&old) != now_active {
            events.push(EventRecord::new::<SessionActiveEvent>(&SessionActive {
                id: now_active,
            }));
        }
        // Agents of sessions that ended stay registered until their connection closes;
        // they are simply no longer chosen.
        inner.logind = Some(new);
        events
            .into_iter()
            .map(|e| (e, Audience::Everyone))
            .collect()
    }

    /// The session a program of `uid` outside any session belongs with (a systemd user
    /// unit such as `guestlink-session.service` runs in the user's manager, not in a
    /// session): as logind picks a user's display session, the active one on a seat,
    /// else the only one on a seat, else the user's only session. `None` when that is
    /// ambiguous or no back end runs.
    pub fn user_session(&self, uid: u32) -> Option<String> {
        let inner = self.lock();
        let mine: Vec<&LoginSession> = inner
            .logind
            .as_ref()?
            .values()
            .filter(|s| s.uid == uid)
            .collect();
        let seated: Vec<&LoginSession> =
            mine.iter().copied().filter(|s| s.seat.is_some()).collect();
        fn only<'a>(v: &[&'a LoginSession]) -> Option<&'a LoginSession> {
            (v.len() == 1).then(|| v[0])
        }
        let pick = seated
            .iter()
            .copied()
            .find(|s| s.active)
            .or_else(|| only(&seated))
            .or_else(|| only(&mine))?;
        Some(pick.id.clone())
    }

    /// Whether a session back end (logind, a sessions file) reports the sessions.
    pub fn has_back_end(&self) -> bool {
        self.lock().logind.is_some()
    }

    /// Whether `uid` has a session the back end knows of, or a live session agent.
    pub fn has_session(&self, uid: u32) -> bool {
        let inner = self.lock();
        inner
            .logind
            .as_ref()
            .is_some_and(|m| m.values().any(|s| s.uid == uid))
            || inner
                .agents
                .values()
                .any(|a| a.uid == uid && a.mailbox.is_open())
    }

    /// Whether connection `conn` registered a session agent.
    pub fn is_agent(&self, conn: u64) -> bool {
        self.lock().agents.values().any(|a| a.conn == conn)
    }

    /// Every known session, or the registered agents' sessions when no back end runs.
    pub fn list(&self) -> Vec<SessionInfo> {
        let inner = self.lock();
        match &inner.logind {
            Some(m) => m
                .values()
                .map(|s| session_info(s, inner.agents.contains_key(&s.id)))
                .collect(),
            None => inner
                .agents
                .iter()
                .map(|(id, a)| SessionInfo {
                    id: id.clone(),
                    uid: i64::from(a.uid),
                    user: String::new(),
                    seat: None,
                    active: false,
                    locked: false,
                    agent: true,
                })
                .collect(),
        }
    }

    /// Registers the agent on connection `conn`, running as `uid`, for `session`.
    pub fn register(
        &self,
        session: &str,
        conn: u64,
        uid: u32,
        mailbox: Mailbox,
        capabilities: Vec<String>,
    ) -> Result<(), CommandError> {
        let mut inner = self.lock();
        if let Some(known) = &inner.logind {
            match known.get(session) {
                None => {
                    return Err(CommandError::new(format!(
                        "session '{session}' does not exist"
                    )))
                }
                Some(s) if s.uid != uid && uid != 0 => {
                    return Err(CommandError::new(format!(
                        "session '{session}' belongs to another user"
                    )))
                }
                Some(_) => {}
            }
        }
        if inner.logind.is_none() {
            // Without a back end the newest live agent serves the host: it must never
            // be another user's, or that user would take the host's clipboard and files.
            let holder = inner
                .agents
                .values()
                .find(|a| a.conn != conn && a.uid != uid && a.mailbox.is_open());
            if let Some(holder) = holder {
                return Err(CommandError::new(format!(
                    "the desktop is served by the session agent of uid {}: without a session source another user's agent cannot take it over",
                    holder.uid
                )));
            }
        }
        if let Some(other) = inner.agents.get(session) {
            if other.conn != conn && other.mailbox.is_open() {
                return Err(CommandError::new(format!(
                    "session '{session}' already has a session agent"
                )));
            }
        }
        // A connection serves one session: registering again moves it.
        inner.agents.retain(|_, a| a.conn != conn);
        inner.registrations += 1;
        let order = inner.registrations;
        inner.agents.insert(
            session.to_string(),
            SessionAgent {
                conn,
                uid,
                mailbox,
                capabilities,
                offers: Default::default(),
                order,
            },
        );
        Ok(())
    }

    /// Forgets the agent of a connection that closed; returns its session.
    pub fn unregister(&self, conn: u64) -> Option<String> {
        let mut inner = self.lock();
        let session = inner
            .agents
            .iter()
            .find(|(_, a)| a.conn == conn)
            .map(|(s, _)| s.clone())?;
        inner.agents.remove(&session);
        Some(session)
    }

    /// The session registered by connection `conn`.
    pub fn session_of(&self, conn: u64) -> Option<(String, u32)> {
        let inner = self.lock();
        inner
            .agents
            .iter()
            .find(|(_, a)| a.conn == conn)
            .map(|(s, a)| (s.clone(), a.uid))
    }

    /// Records what a clipboard of `conn`'s session now offers; returns the session and
    /// its user.
    pub fn set_offer(
        &self,
        conn: u64,
        selection: ClipboardSelection,
        types: Vec<String>,
    ) -> Option<(String, u32)> {
        let mut inner = self.lock();
        let (session, agent) = inner.agents.iter_mut().find(|(_, a)| a.conn == conn)?;
        agent.offers[slot(selection)] = types;
        Some((session.clone(), agent.uid))
    }

    /// What a clipboard of the target's session offers.
    pub fn offer(&self, session: &str, selection: ClipboardSelection) -> Vec<String> {
        let inner = self.lock();
        inner
            .agents
            .get(session)
            .map(|a| a.offers[slot(selection)].clone())
            .unwrap_or_default()
    }

    /// The agent whose clipboard `caller` reaches. The host and root reach the active
    /// session's (without a session back end: the agent registered last); any other
    /// user only their own session's (`own_session`, when the caller's session is known),
    /// or else one of their sessions: the active one, or the newest.
    pub fn target(
        &self,
        caller: Caller,
        own_session: Option<&str>,
    ) -> Result<Target, CommandError> {
        let inner = self.lock();
        let live = inner.agents.iter().filter(|(_, a)| a.mailbox.is_open());
        let is_active = |id: &str| {
            inner
                .logind
                .as_ref()
                .and_then(|m| m.get(id))
                .is_some_and(|s| s.active)
        };
        let found = match caller {
            Caller::Host | Caller::Guest { uid: 0, .. } => match &inner.logind {
                Some(m) => {
                    let active = m
                        .values()
                        .find(|s| s.active)
                        .ok_or_else(|| CommandError::new("no user session is active"))?;
                    let agent = inner.agents.get(&active.id).filter(|a| a.mailbox.is_open());
                    let agent = agent.ok_or_else(|| {
                        CommandError::with_cause(
                            Cause::NoSessionAgent,
                            format!("the active session '{}' has no session agent", active.id),
                        )
                    })?;
                    Some((active.id.clone(), agent.clone()))
                }
                None => live
                    .max_by_key(|(_, a)| a.order)
                    .map(|(s, a)| (s.clone(), a.clone())),
            },
            Caller::Guest { uid, .. } => {
                let mine: Vec<_> = live
                    .filter(|(_, a)| a.uid == uid)
                    // A caller whose session is known reaches that session only.
                    .filter(|(s, _)| own_session.is_none_or(|own| own == s.as_str()))
                    .collect();
                mine.iter()
                    .find(|(s, _)| is_active(s))
                    .or_else(|| mine.iter().max_by_key(|(_, a)| a.order))
                    .map(|(s, a)| ((*s).clone(), (*a).clone()))
            }
        };
        let known = |id: &str| inner.logind.as_ref().and_then(|m| m.get(id));
        found
            .map(|(session, agent)| Target {
                uid: known(&session).map_or(agent.uid, |s| s.uid),
                locked: known(&session).is_some_and(|s| s.locked),
                session,
                agent,
            })
            .ok_or_else(|| {
                CommandError::with_cause(
                    Cause::NoSessionAgent,
                    "no session agent serves this user's session",
                )
            })
    }

    /// The user the host's actions on the desktop are for (files it sends): the active
    /// session's, from the session back end; without one, the newest session agent's;
    /// `None` when no session is known at all. The session, the user, whether its
    /// screen is locked.
    pub fn host_user(&self) -> Result<Option<(String, u32, bool)>, CommandError> {
        let inner = self.lock();
        match &inner.logind {
            Some(m) => m
                .values()
                .find(|s| s.active)
                .map(|s| Some((s.id.clone(), s.uid, s.locked)))
                .ok_or_else(|| {
                    CommandError::with_cause(Cause::NoSessionAgent, "no user session is active")
                }),
            None => Ok(inner
                .agents
                .iter()
                .filter(|(_, a)| a.mailbox.is_open())
                .max_by_key(|(_, a)| a.order)
                .map(|(s, a)| (s.clone(), a.uid, false))),
        }
    }

    /// Records that the host owns `selection` of `session` (no types: it let go).
    pub fn set_host_offer(&self, selection: ClipboardSelection, offer: Option<HostOffer>) {
        self.lock().host_offers[slot(selection)] = offer.filter(|o| !o.types.is_empty());
    }

    /// What the host offers in `selection` of `session`, if it owns it.
    pub fn host_offer(&self, session: &str, selection: ClipboardSelection) -> Option<HostOffer> {
        self.lock().host_offers[slot(selection)]
            .clone()
            .filter(|o| o.session == session && o.mailbox.is_open())
    }

    /// Forgets what the host connection `conn` offered (it closed, or a guest program
    /// took the selection); returns the selections it owned.
    pub fn drop_host_offers(&self, conn: Option<u64>, selection: Option<ClipboardSelection>) {
        let mut inner = self.lock();
        for (i, offer) in inner.host_offers.iter_mut().enumerate() {
            let sel_ok = selection.is_none_or(|s| slot(s) == i);
            let conn_ok = conn.is_none_or(|c| offer.as_ref().is_some_and(|o| o.conn == c));
            if sel_ok && conn_ok {
                *offer = None;
            }
        }
    }
}

fn session_info(s: &LoginSession, agent: bool) -> SessionInfo {
    SessionInfo {
        id: s.id.clone(),
        uid: i64::from(s.uid),
        user: s.user.clone(),
        seat: s.seat.clone(),
        active: s.active,
        locked: s.locked,
        agent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventBus, Listener};

    fn s(id: &str, uid: u32, active: bool, locked: bool) -> LoginSession {
        LoginSession {
            id: id.into(),
            uid,
            user: format!("u{uid}"),
            seat: Some("seat0".into()),
            active,
            locked,
        }
    }

    fn names(ev: &[(EventRecord, Audience)]) -> Vec<&'static str> {
        ev.iter().map(|(e, _)| e.name).collect()
    }

    #[test]
    fn snapshots_become_events() {
        let reg = Sessions::default();
        let ev = reg.apply(vec![s("1", 1000, true, false)]);
        assert_eq!(names(&ev), ["SESSION_NEW", "SESSION_ACTIVE"]);
        assert_eq!(ev[0].0.data["user"], "u1000");
        assert!(reg.apply(vec![s("1", 1000, true, false)]).is_empty());
        let ev = reg.apply(vec![s("1", 1000, true, true)]);
        assert_eq!(names(&ev), ["SESSION_LOCK"]);
        let ev = reg.apply(vec![s("1", 1000, false, false), s("2", 1001, true, false)]);
        assert_eq!(
            names(&ev),
            ["SESSION_UNLOCK", "SESSION_NEW", "SESSION_ACTIVE"]
        );
        assert_eq!(ev[2].0.data["id"], "2");
        let ev = reg.apply(vec![]);
        assert_eq!(
            names(&ev),
            ["SESSION_REMOVED", "SESSION_REMOVED", "SESSION_ACTIVE"]
        );
        assert!(ev[2].0.data.get("id").is_none());
    }

    #[test]
    fn a_program_outside_sessions_belongs_with_the_users_display_session() {
        let reg = Sessions::default();
        assert_eq!(reg.user_session(1000), None, "no back end");
        let unseated = |id: &str, uid| LoginSession {
            seat: None,
            ..s(id, uid, false, false)
        };
        reg.apply(vec![unseated("4", 1000), s("7", 1001, true, false)]);
        assert_eq!(reg.user_session(1000).as_deref(), Some("4"), "the only one");
        assert_eq!(reg.user_session(1001).as_deref(), Some("7"));
        assert_eq!(reg.user_session(1002), None);
        reg.apply(vec![unseated("4", 1000), unseated("5", 1000)]);
        assert_eq!(
            reg.user_session(1000),
            None,
            "two sessions, no seat: ambiguous"
        );
        reg.apply(vec![unseated("4", 1000), s("5", 1000, false, false)]);
        assert_eq!(
            reg.user_session(1000).as_deref(),
            Some("5"),
            "the one on a seat"
        );
        reg.apply(vec![
            s("5", 1000, false, false),
            s("6", 1000, true, false),
            unseated("4", 1000),
        ]);
        assert_eq!(
            reg.user_session(1000).as_deref(),
            Some("6"),
            "the active one"
        );
    }

    #[test]
    fn users_reach_only_their_own_sessions() {
        let bus = EventBus::default();
        let reg = Sessions::default();
        reg.apply(vec![s("1", 1000, false, false), s("2", 1001, true, false)]);
        let a = bus.subscribe(Listener::Guest(1000));
        let b = bus.subscribe(Listener::Guest(1001));
        assert!(reg.register("1", 10, 1001, b.mailbox(), vec![]).is_err());
        assert!(reg.register("9", 10, 1001, b.mailbox(), vec![]).is_err());
        reg.register("1", 10, 1000, a.mailbox(), vec![]).unwrap();
        reg.register("2", 11, 1001, b.mailbox(), vec![]).unwrap();
        let host = reg.target(Caller::Host, None).unwrap();
        assert_eq!(host.session, "2");
        let guest = |uid| Caller::Guest { uid, pid: 1 };
        assert_eq!(reg.target(guest(1000), None).unwrap().session, "1");
        assert_eq!(reg.target(guest(1000), Some("1")).unwrap().session, "1");
        // The same user in another session does not reach this one.
        assert!(reg.target(guest(1000), Some("7")).is_err());
        assert_eq!(reg.target(guest(1001), None).unwrap().session, "2");
        assert!(reg.target(guest(1002), None).is_err());
        assert_eq!(reg.target(guest(0), None).unwrap().session, "2");
        reg.set_offer(10, ClipboardSelection::Clipboard, vec!["text/plain".into()]);
        assert_eq!(
            reg.offer("1", ClipboardSelection::Clipboard),
            ["text/plain"]
        );
        assert!(reg.offer("1", ClipboardSelection::Primary).is_empty());
        drop(b);
        let e = reg.target(Caller::Host, None).unwrap_err();
        assert_eq!(e.desc, "the active session '2' has no session agent");
        assert_eq!(reg.unregister(10).as_deref(), Some("1"));
        assert!(reg.target(guest(1000), None).is_err());
    }

    #[test]
    fn without_a_back_end_the_newest_agent_serves_the_host() {
        let bus = EventBus::default();
        let reg = Sessions::default();
        let a = bus.subscribe(Listener::Guest(1000));
        let b = bus.subscribe(Listener::Guest(1000));
        let other = bus.subscribe(Listener::Guest(1001));
        reg.register("x", 1, 1000, a.mailbox(), vec![]).unwrap();
        reg.register("y", 2, 1000, b.mailbox(), vec![]).unwrap();
        assert_eq!(reg.target(Caller::Host, None).unwrap().session, "y");
        assert_eq!(reg.list().len(), 2);
        // Another user never takes the host's target over, root included.
        for (uid, session) in [(1001, "w"), (0, "y")] {
            let e = reg
                .register(session, 3, uid, other.mailbox(), vec![])
                .unwrap_err();
            assert!(e.desc.contains("uid 1000"), "{e}");
        }
        assert_eq!(reg.target(Caller::Host, None).unwrap().uid, 1000);
        assert_eq!(reg.host_user().unwrap().unwrap().1, 1000);
        // Registering again on the same connection moves its agent.
        reg.register("z", 1, 1000, a.mailbox(), vec![]).unwrap();
        let ids: Vec<String> = reg.list().into_iter().map(|s| s.id).collect();
        assert_eq!(ids, ["y", "z"]);
        assert_eq!(reg.unregister(1).as_deref(), Some("z"));
        assert_eq!(reg.list().len(), 1);
        // Once the user's agents are gone, another may serve.
        assert_eq!(reg.unregister(2).as_deref(), Some("y"));
        reg.register("w", 3, 1001, other.mailbox(), vec![]).unwrap();
        assert_eq!(reg.target(Caller::Host, None).unwrap().uid, 1001);
    }
}
