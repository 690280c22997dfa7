//! The one gate in front of every command, for every channel.
//!
//! A policy is an ordered list of [`Rule`]s. Each allows or denies the commands it
//! names (exact names or `*` globs; `action:NAME` for host-invokable actions) when
//! its conditions hold: the channel (a protocol, `qga`, `vdagent`, `ovirt`,
//! `guest-socket`, or a channel's own name: its path, or the port name that ends it),
//! the caller (a guest program's uid, its
//! session, or whether that session is the active one) and the agent's state (frozen,
//! a session active, none, or locked). Everything is allowed until a rule says
//! otherwise, and the **last** matching rule decides, so later files override earlier
//! ones. Rules come from the policy files ([`file`](mod@file)) and then from qemu-ga's lists
//! (`-a`/`allow-rpcs` denies what it does not name, `-b`/`block-rpcs` denies what it
//! names), which therefore only ever restrict.
//!
//! One rule stands above the others: while filesystems are frozen exactly a small safe
//! set runs, whatever the rules say (qemu-ga's contract: its freeze allow list
//! bypasses its lists, so that a frozen guest can always be thawed). A denied
//! command stays listed by `guest-info` as disabled. Every denial carries a stable
//! reason for the log: the rule's `reason`, or where it was written.

pub mod file;
pub mod live;
pub mod paths;
pub mod services;
mod toml;

use std::sync::Arc;

use crate::call::{Caller, Protocol};

/// Commands that stay enabled while filesystems are frozen.
pub const FROZEN_SAFE_SET: &[&str] = &[
    "guest-ping",
    "guest-info",
    "guest-sync",
    "guest-sync-delimited",
    "guest-fsfreeze-status",
    "guest-fsfreeze-thaw",
];

/// Why a command is denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// Filesystems are frozen and the command is not in the safe set.
    Frozen,
    /// A rule denied it; its stable reason (e.g. `block-rpcs`, a policy rule's
    /// `reason`, or `FILE:LINE`).
    Rule(Arc<str>),
}

impl DenyReason {
    /// The reason as qemu-ga words it after "Command X has been disabled: ": its
    /// frozen-state text while filesystems are frozen (what Debian's qemu-ga says, and
    /// what tells the host to thaw), the allow/block-list text otherwise.
    pub fn qga_text(&self) -> &'static str {
        match self {
            DenyReason::Frozen => "the agent is in frozen state",
            DenyReason::Rule(_) => "the command is not allowed",
        }
    }

    /// A stable name for logs.
    pub fn as_str(&self) -> &str {
        match self {
            DenyReason::Frozen => "frozen",
            DenyReason::Rule(r) => r,
        }
    }
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run it.
    Allow,
    /// Refuse it.
    Deny(DenyReason),
}

/// What a rule does with the commands it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Allow them.
    Allow,
    /// Deny them.
    Deny,
}

/// A state of the agent a rule can depend on. (Frozen filesystems need no rule: while
/// they are frozen only the safe set runs.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A user session is active.
    ActiveSession,
    /// No user session is active.
    NoActiveSession,
    /// The active session's screen is locked.
    SessionLocked,
}

impl State {
    const ALL: [State; 3] = [
        State::ActiveSession,
        State::NoActiveSession,
        State::SessionLocked,
    ];

    /// Its name in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            State::ActiveSession => "active-session",
            State::NoActiveSession => "no-active-session",
            State::SessionLocked => "session-locked",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// Which guest session a rule is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionMatch {
    /// The caller's session is the active one.
    Active,
    /// The caller's session has this id.
    Id(String),
}

/// A command pattern: an exact name, or a glob where `*` stands for any run of
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// The pattern `text`.
    pub fn new(text: &str) -> Pattern {
        Pattern(text.to_string())
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        glob(&self.0, name)
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `*`-only glob matching.
fn glob(pattern: &str, name: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else {
        return pattern == name;
    };
    let Some(mut tail) = name.strip_prefix(head) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('*').collect();
    let (last, middle) = parts.split_last().expect("split yields at least one part");
    for part in middle {
        match tail.find(part) {
            Some(i) => tail = &tail[i + part.len()..],
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last)
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Allow or deny.
    pub effect: Effect,
    /// The commands it is about (any of them).
    pub commands: Vec<Pattern>,
    /// Commands it leaves alone although `commands` names them.
    pub except: Vec<Pattern>,
    /// Protocols or channel names; any channel when `None`.
    pub channels: Option<Vec<String>>,
    /// Guest callers' uids; any caller when `None` (a host never matches a list).
    pub users: Option<Vec<u32>>,
    /// Guest callers' sessions; any when `None`.
    pub sessions: Option<Vec<SessionMatch>>,
    /// States of the agent; any when `None`.
    pub states: Option<Vec<State>>,
    /// The stable reason given when it denies.
    pub reason: Arc<str>,
    /// Where it was written (`FILE:LINE`, or the option).
    pub origin: String,
}

/// What the gate knows about one call.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The command.
    pub command: &'a str,
    /// The channel's protocol.
    pub protocol: Protocol,
    /// The channel's name.
    pub channel: &'a str,
    /// Who calls.
    pub caller: Caller,
    /// The guest caller's session, when known.
    pub session: Option<&'a str>,
    /// The active session, when one is.
    pub active_session: Option<&'a str>,
    /// Whether the active session is locked.
    pub locked: bool,
    /// Whether filesystems are frozen.
    pub frozen: bool,
}

/// Whether a rule's `channel` names the channel `name`: the whole name (a device path,
/// a socket path, `vsock:CID:PORT`) or, for a path, its last part (the virtio port
/// name, `org.guestlink.exporter.0`).
fn names_channel(channel: &str, name: &str) -> bool {
    channel == name
        || (!channel.contains('/')
            && name.rsplit('/').next() == Some(channel)
            && name.contains('/'))
}

impl Rule {
    /// Whether the rule applies to the call.
    pub fn matches(&self, f: &Facts<'_>) -> bool {
        if !self.commands.iter().any(|p| p.matches(f.command))
            || self.except.iter().any(|p| p.matches(f.command))
        {
            return false;
        }
        if let Some(channels) = &self.channels {
            if !channels
                .iter()
                .any(|c| c == f.protocol.as_str() || names_channel(c, f.channel))
            {
                return false;
            }
        }
        if let Some(users) = &self.users {
            match f.caller {
                Caller::Guest { uid, .. } if users.contains(&uid) => {}
                _ => return false,
            }
        }
        if let Some(sessions) = &self.sessions {
            let ok = f.session.is_some_and(|s| {
                sessions.iter().any(|m| match m {
                    SessionMatch::Active => f.active_session == Some(s),
                    SessionMatch::Id(id) => id == s,
                })
            });
            if !ok {
                return false;
            }
        }
        if let Some(states) = &self.states {
            let holds = |st: &State| match st {
                State::ActiveSession => f.active_session.is_some(),
                State::NoActiveSession => f.active_session.is_none(),
                State::SessionLocked => f.locked,
            };
            if !states.iter().all(holds) {
                return false;
            }
        }
        true
    }

    /// The rule in one line, for `--dump-config`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} {}",
            match self.effect {
                Effect::Allow => "allow",
                Effect::Deny => "deny",
            },
            patterns(&self.commands)
        );
        if !self.except.is_empty() {
            s.push_str(&format!(" except={}", patterns(&self.except)));
        }
        if let Some(c) = &self.channels {
            s.push_str(&format!(" channels={}", c.join(",")));
        }
        if let Some(u) = &self.users {
            let u: Vec<String> = u.iter().map(u32::to_string).collect();
            s.push_str(&format!(" users={}", u.join(",")));
        }
        if let Some(ss) = &self.sessions {
            let ss: Vec<&str> = ss
                .iter()
                .map(|m| match m {
                    SessionMatch::Active => "active",
                    SessionMatch::Id(id) => id.as_str(),
                })
                .collect();
            s.push_str(&format!(" sessions={}", ss.join(",")));
        }
        if let Some(st) = &self.states {
            let st: Vec<&str> = st.iter().map(|s| s.as_str()).collect();
            s.push_str(&format!(" when={}", st.join(",")));
        }
        s.push_str(&format!(" reason={} ({})", self.reason, self.origin));
        s
    }
}

/// The rules, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
    /// Where `guest-file-open` may reach (the `[files]` table); everywhere when `None`.
    files: Option<paths::FileScope>,
    /// Users and forward destinations of the live channel (the `[live]` table).
    live: live::LiveScope,
    /// The units services may be acted on (the `[services]` table).
    services: services::ServiceScope,
    /// Names given to qemu-ga's lists, for the start-up warning about unknown ones.
    listed: Vec<String>,
}

impl Policy {
    /// A policy of qemu-ga's `-a`/`allow-rpcs` and `-b`/`block-rpcs` lists alone.
    pub fn from_lists<A, B>(allow: Option<A>, block: B) -> Policy
    where
        A: IntoIterator<Item = String>,
        B: IntoIterator<Item = String>,
    {
        let mut p = Policy::default();
        p.add_lists(allow, block);
        p
    }

    /// A policy of these rules (from the policy files).
    pub fn from_rules(rules: Vec<Rule>) -> Policy {
        Policy {
            rules,
            live: live::LiveScope::default(),
            services: services::ServiceScope::default(),
            files: None,
            listed: Vec::new(),
        }
    }

    /// The policy of the policy files: their rules and file scope.
    pub fn from_files(files: file::PolicyFiles) -> Policy {
        Policy {
            files: files.files,
            live: files.live,
            services: files.services,
            ..Policy::from_rules(files.rules)
        }
    }

    /// Where `guest-file-open` may reach; everywhere when `None`.
    pub fn file_scope(&self) -> Option<&paths::FileScope> {
        self.files.as_ref()
    }

    /// The live channel's users and forward destinations.
    pub fn live_scope(&self) -> &live::LiveScope {
        &self.live
    }

    /// The units that may be acted on.
    pub fn service_scope(&self) -> &services::ServiceScope {
        &self.services
    }

    /// Appends qemu-ga's lists as the last rules: what the allow list does not name is
    /// denied, what the block list names is denied.
    pub fn add_lists<A, B>(&mut self, allow: Option<A>, block: B)
    where
        A: IntoIterator<Item = String>,
        B: IntoIterator<Item = String>,
    {
        let list_rule = |commands: Vec<Pattern>, except: Vec<Pattern>, name: &str| Rule {
            effect: Effect::Deny,
            commands,
            except,
            channels: None,
            users: None,
            sessions: None,
            states: None,
            reason: name.into(),
            origin: name.into(),
        };
        if let Some(allow) = allow {
            let names: Vec<String> = allow.into_iter().collect();
            let except = names.iter().map(|n| Pattern::new(n)).collect();
            self.listed.extend(names);
            self.rules
                .push(list_rule(vec![Pattern::new("*")], except, "allow-rpcs"));
        }
        let block: Vec<String> = block.into_iter().collect();
        if !block.is_empty() {
            let commands = block.iter().map(|n| Pattern::new(n)).collect();
            self.listed.extend(block);
            self.rules
                .push(list_rule(commands, Vec::new(), "block-rpcs"));
        }
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The decision for a call. A command that does the work of qemu-ga commands (its
    /// declaration's `gated_as`, e.g. `__org.guestlink_file-read-raw` for
    /// `guest-file-read`) is allowed only when each of those is allowed too: the reason
    /// then says which one refused it (`block-rpcs (as guest-file-read)`).
    pub fn decide(&self, f: &Facts<'_>) -> Decision {
        if f.frozen {
            return if FROZEN_SAFE_SET.contains(&f.command) {
                Decision::Allow
            } else {
                Decision::Deny(DenyReason::Frozen)
            };
        }
        if let Some(reason) = self.refusal(f) {
            return Decision::Deny(DenyReason::Rule(reason));
        }
        for gate in gated_as(f.command) {
            let as_gate = Facts {
                command: gate,
                ..f.clone()
            };
            if let Some(reason) = self.refusal(&as_gate) {
                return Decision::Deny(DenyReason::Rule(format!("{reason} (as {gate})").into()));
            }
        }
        Decision::Allow
    }

    /// The reason of the last matching rule, when it denies.
    fn refusal(&self, f: &Facts<'_>) -> Option<Arc<str>> {
        match self.rules.iter().rev().find(|r| r.matches(f)) {
            Some(r) if r.effect == Effect::Deny => Some(r.reason.clone()),
            _ => None,
        }
    }

    /// Names on qemu-ga's lists that are not in `known`, for a start-up warning.
    pub fn unknown_names<'a>(&'a self, known: &'a [&str]) -> impl Iterator<Item = &'a str> + 'a {
        self.listed
            .iter()
            .map(String::as_str)
            .filter(move |n| !known.contains(n))
    }
}

/// The qemu-ga commands `command` does the work of, from its declaration.
pub fn gated_as(command: &str) -> &'static [&'static str] {
    guestlink_vocabulary::commands::find_meta(command).map_or(&[], |c| c.gated_as)
}

fn patterns(list: &[Pattern]) -> String {
    list.iter()
        .map(Pattern::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(allow: Option<&[&str]>, block: &[&str]) -> Policy {
        Policy::from_lists(
            allow.map(|a| a.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            block.iter().map(|s| s.to_string()),
        )
    }

    fn host<'a>(command: &'a str, protocol: Protocol) -> Facts<'a> {
        Facts {
            command,
            protocol,
            channel: "port",
            caller: Caller::Host,
            session: None,
            active_session: None,
            locked: false,
            frozen: false,
        }
    }

    fn denied(p: &Policy, f: &Facts<'_>) -> Option<String> {
        match p.decide(f) {
            Decision::Allow => None,
            Decision::Deny(r) => Some(r.as_str().to_string()),
        }
    }

    #[test]
    fn block_wins_over_allow() {
        let p = lists(Some(&["guest-ping", "guest-get-time"]), &["guest-ping"]);
        let d = |c| denied(&p, &host(c, Protocol::Qga));
        assert_eq!(d("guest-ping").as_deref(), Some("block-rpcs"));
        assert_eq!(d("guest-get-time"), None);
        assert_eq!(d("guest-sync").as_deref(), Some("allow-rpcs"));
    }

    #[test]
    fn frozen_overrides_lists() {
        let p = lists(None, &["guest-ping"]);
        let mut f = host("guest-ping", Protocol::Qga);
        f.frozen = true;
        assert_eq!(p.decide(&f), Decision::Allow);
        f.command = "guest-get-time";
        assert_eq!(p.decide(&f), Decision::Deny(DenyReason::Frozen));
        assert_eq!(
            Policy::default().decide(&host("guest-get-time", Protocol::Qga)),
            Decision::Allow
        );
    }

    #[test]
    fn globs() {
        for (pat, name, ok) in [
            ("*", "guest-exec", true),
            ("guest-file-*", "guest-file-open", true),
            ("guest-file-*", "guest-fsfreeze-freeze", false),
            ("guest-*-status", "guest-exec-status", true),
            ("guest-*-status", "guest-exec", false),
            ("*-freeze*", "guest-fsfreeze-freeze-list", true),
            ("a*a", "a", false),
            ("guest-ping", "guest-ping", true),
            ("guest-ping", "guest-pin", false),
        ] {
            assert_eq!(glob(pat, name), ok, "{pat} {name}");
        }
    }

    #[test]
    fn the_last_matching_rule_decides_with_its_conditions() {
        let rule = |effect, cmd: &str, channels: Option<&[&str]>, users: Option<&[u32]>| Rule {
            effect,
            commands: vec![Pattern::new(cmd)],
            except: Vec::new(),
            channels: channels.map(|c| c.iter().map(|s| s.to_string()).collect()),
            users: users.map(|u| u.to_vec()),
            sessions: None,
            states: None,
            reason: format!("{cmd}-rule").into(),
            origin: "test".into(),
        };
        let p = Policy::from_rules(vec![
            rule(
                Effect::Deny,
                "guest-exec*",
                Some(&["vdagent", "ovirt"]),
                None,
            ),
            rule(Effect::Deny, "guest-exec", None, None),
            rule(Effect::Allow, "guest-exec", Some(&["qga"]), None),
            rule(
                Effect::Deny,
                "__org.guestlink_clipboard-*",
                Some(&["guest-socket"]),
                Some(&[0]),
            ),
        ]);
        assert_eq!(denied(&p, &host("guest-exec", Protocol::Qga)), None);
        assert_eq!(
            denied(&p, &host("guest-exec", Protocol::Vdagent)).as_deref(),
            Some("guest-exec-rule")
        );
        assert_eq!(
            denied(&p, &host("guest-exec-status", Protocol::Ovirt)).as_deref(),
            Some("guest-exec*-rule")
        );
        let mut g = host("__org.guestlink_clipboard-get", Protocol::GuestSocket);
        g.caller = Caller::Guest { uid: 0, pid: 1 };
        assert!(denied(&p, &g).is_some());
        g.caller = Caller::Guest { uid: 1000, pid: 1 };
        assert!(denied(&p, &g).is_none());
    }

    #[test]
    fn sessions_and_states() {
        let p = Policy::from_rules(vec![Rule {
            effect: Effect::Deny,
            commands: vec![Pattern::new("*")],
            except: vec![Pattern::new("guest-ping")],
            channels: Some(vec!["guest-socket".into()]),
            users: None,
            sessions: Some(vec![SessionMatch::Active]),
            states: Some(vec![State::ActiveSession]),
            reason: "r".into(),
            origin: "t".into(),
        }]);
        let mut f = host("guest-get-time", Protocol::GuestSocket);
        f.caller = Caller::Guest { uid: 1000, pid: 5 };
        assert!(denied(&p, &f).is_none(), "no session known");
        f.session = Some("3");
        f.active_session = Some("3");
        assert!(denied(&p, &f).is_some());
        f.command = "guest-ping";
        assert!(denied(&p, &f).is_none(), "except");
        f.command = "guest-get-time";
        f.active_session = Some("4");
        assert!(denied(&p, &f).is_none(), "not the active session");
    }

    #[test]
    fn a_channel_is_named_by_its_path_or_its_port_name() {
        let port = "/dev/virtio-ports/org.guestlink.exporter.0";
        assert!(names_channel(port, port));
        assert!(names_channel("org.guestlink.exporter.0", port));
        assert!(!names_channel("exporter.0", port));
        assert!(!names_channel(
            "virtio-ports/org.guestlink.exporter.0",
            port
        ));
        assert!(!names_channel(
            "org.guestlink.exporter.0",
            "/dev/virtio-ports/org.qemu.guest_agent.0"
        ));
        assert!(names_channel("vsock:3:5123", "vsock:3:5123"));
    }
}
