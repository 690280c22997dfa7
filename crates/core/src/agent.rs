//! The agent: dispatch table, gate and state in one place, shared by every channel.

use std::collections::HashMap;
use std::sync::RwLock;

use guestlink_vocabulary::CommandInfo;
use serde_json::{Map, Value};

use crate::connection::Connection;
use crate::context::{Bulk, CallContext, Caller, Context};
use crate::dispatch::{build_table, DispatchError, Entry, Reply};
use crate::events::{Audience, EventBus, EventRecord};
use crate::platform::Platform;
use crate::policy::{Decision, Facts, Policy};
use crate::state::AgentState;

/// How to build an agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The version `guest-info` reports.
    pub version: String,
    /// The gate's lists.
    pub policy: Policy,
    /// Where state files live (qemu-ga's `-t`).
    pub statedir: std::path::PathBuf,
    /// Program run with `freeze` before and `thaw` after (qemu-ga's `-F`).
    pub fsfreeze_hook: Option<std::path::PathBuf>,
    /// Where files from the host go.
    pub transfer_dir: crate::state::transfers::TransferDir,
    /// Host-invokable actions and hooks.
    pub actions: crate::actions::Actions,
    /// Users who may register a session agent when no session source runs
    /// (`--session-user`), besides root and the user logged in on a local seat.
    pub session_users: Vec<u32>,
}

impl AgentConfig {
    /// A configuration with no lists, no hook and state in `statedir`.
    pub fn new(version: impl Into<String>, statedir: impl Into<std::path::PathBuf>) -> AgentConfig {
        AgentConfig {
            version: version.into(),
            policy: Policy::default(),
            statedir: statedir.into(),
            fsfreeze_hook: None,
            transfer_dir: Default::default(),
            actions: Default::default(),
            session_users: Vec::new(),
        }
    }
}

/// A command with the gate's current verdict on it.
#[derive(Debug, Clone, Copy)]
pub struct CommandStatus {
    /// The command's declaration.
    pub info: CommandInfo,
    /// Whether the gate allows it now (for host channels).
    pub enabled: bool,
}

/// The agent core. One per process, shared by all channels.
#[derive(Debug)]
pub struct Agent {
    version: String,
    order: Vec<&'static str>,
    table: HashMap<&'static str, Entry>,
    policy: RwLock<Policy>,
    state: AgentState,
    platform: Platform,
    fsfreeze_hook: Option<std::path::PathBuf>,
    transfer_dir: crate::state::transfers::TransferDir,
    actions: crate::actions::Actions,
    session_users: Vec<u32>,
    events: EventBus,
}

/// Whether `caller` can reach a command at all: host channels the host commands, the
/// guest socket the guest ones.
fn in_scope(info: &CommandInfo, caller: Caller) -> bool {
    match caller {
        Caller::Host => info.scope.host(),
        Caller::Guest { .. } => info.scope.guest(),
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.info.name)
    }
}

impl Agent {
    /// An agent with every command of the vocabulary that this platform has.
    pub fn new(config: AgentConfig, platform: Platform) -> Agent {
        let (order, table) = build_table();
        Agent {
            version: config.version,
            order,
            table,
            policy: RwLock::new(config.policy),
            state: AgentState::load(config.statedir),
            platform,
            fsfreeze_hook: config.fsfreeze_hook,
            transfer_dir: config.transfer_dir,
            actions: config.actions,
            session_users: config.session_users,
            events: EventBus::default(),
        }
    }

    /// The version reported by `guest-info`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Shared state.
    pub fn state(&self) -> &AgentState {
        &self.state
    }

    /// The fsfreeze hook, if one is configured.
    pub fn fsfreeze_hook(&self) -> Option<&std::path::Path> {
        self.fsfreeze_hook.as_deref()
    }

    /// Where files from the host go.
    pub fn transfer_dir(&self) -> &crate::state::transfers::TransferDir {
        &self.transfer_dir
    }

    /// Host-invokable actions and hooks.
    pub fn actions(&self) -> &crate::actions::Actions {
        &self.actions
    }

    /// Users who may register a session agent without a session source, besides root
    /// and the user on a local seat.
    pub fn session_users(&self) -> &[u32] {
        &self.session_users
    }

    /// The event bus.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Publishes an event to everyone subscribed to it in `audience`.
    pub fn publish(&self, event: EventRecord, audience: Audience) {
        self.events.publish(event, audience);
    }

    /// Opens a conversation for a front end: its connection state and the end its
    /// events arrive at.
    pub fn connect(&self, call: CallContext) -> (Connection, crate::events::Subscription) {
        Connection::open(&self.events, call)
    }

    /// Takes a snapshot of the user sessions from the session back end and publishes
    /// what changed.
    pub fn update_sessions(&self, snapshot: Vec<crate::state::sessions::LoginSession>) {
        for (event, audience) in self.state.sessions.apply(snapshot) {
            tracing::info!(event = event.name, data = %event.data, "session change");
            self.events.publish(event, audience);
        }
    }

    /// Forgets what a closed conversation left behind: a session agent's registration,
    /// the host's clipboard offers, its unfinished file transfers (their files removed).
    pub fn disconnect(&self, conn: &Connection) {
        if let Some(session) = self.state.sessions.unregister(conn.id) {
            tracing::info!(session = %session, "session agent left");
            let uid = match conn.call.caller {
                Caller::Guest { uid, .. } => uid,
                Caller::Host => 0,
            };
            self.events.publish(
                EventRecord::new::<guestlink_vocabulary::events::SessionAgentEvent>(
                    &guestlink_vocabulary::types::SessionAgentChange {
                        session,
                        uid: i64::from(uid),
                        present: false,
                    },
                ),
                Audience::User(uid),
            );
        }
        self.state.sessions.drop_host_offers(Some(conn.id), None);
        let abandoned = self.state.transfers.cancel_connection(conn.id);
        if abandoned > 0 {
            tracing::info!(
                transfers = abandoned,
                "file transfers abandoned: their partial files are removed"
            );
        }
    }

    /// Platform back ends.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// Names of the commands this agent has, in declaration order.
    pub fn command_names(&self) -> &[&'static str] {
        &self.order
    }

    /// Replaces the policy (configuration reload).
    pub fn set_policy(&self, policy: Policy) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// The gate's decision on `name` called on `call`'s channel by its caller, now.
    pub fn decide(&self, name: &str, call: &CallContext) -> Decision {
        let policy = self.policy.read().unwrap_or_else(|e| e.into_inner());
        let (active, locked) = match self.state.sessions.host_user() {
            Ok(Some((session, _, locked))) => (Some(session), locked),
            _ => (None, false),
        };
        let session = match call.caller {
            Caller::Guest { .. } => call.session.as_deref(),
            Caller::Host => None,
        };
        policy.decide(&Facts {
            command: name,
            protocol: call.channel.protocol,
            channel: &call.channel.name,
            caller: call.caller,
            session,
            active_session: active.as_deref(),
            locked,
            frozen: self.state.frozen(),
        })
    }

    /// Every command `call`'s caller can reach on its channel, with whether the gate
    /// allows it now.
    pub fn command_status(&self, call: &CallContext) -> Vec<CommandStatus> {
        self.order
            .iter()
            .filter(|name| in_scope(&self.table[*name].info, call.caller))
            .map(|name| CommandStatus {
                info: self.table[name].info,
                enabled: self.decide(name, call) == Decision::Allow,
            })
            .collect()
    }

    /// The rules in force, in order.
    pub fn policy(&self) -> Policy {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Where `guest-file-open` may reach now (the policy's `[files]`); everywhere when
    /// `None`.
    pub fn file_scope(&self) -> Option<crate::policy::paths::FileScope> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .file_scope()
            .cloned()
    }

    /// The live channel's users and forward destinations now (the policy's `[live]`).
    pub fn live_scope(&self) -> crate::policy::live::LiveScope {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .live_scope()
            .clone()
    }

    /// The declaration of a command this agent has.
    pub fn command_info(&self, name: &str) -> Option<CommandInfo> {
        self.table.get(name).map(|e| e.info)
    }

    /// Runs one command: look-up, gate, argument validation, handler.
    pub async fn execute(
        &self,
        call: &CallContext,
        name: &str,
        args: Map<String, Value>,
    ) -> Result<Reply, DispatchError> {
        self.execute_bulk(call, name, args, None).await
    }

    /// [`Agent::execute`] on a connection that turned bulk transfer on: `bulk` holds the
    /// raw bytes that came with the request, and receives those that go with the reply
    /// (see [`Reply::take_payload`]). Commands with a payload fail without it.
    pub async fn execute_bulk(
        &self,
        call: &CallContext,
        name: &str,
        args: Map<String, Value>,
        bulk: Option<&Bulk>,
    ) -> Result<Reply, DispatchError> {
        self.run(call, None, name, args, bulk).await
    }

    /// Runs one command of conversation `conn` (see [`Agent::execute_bulk`]).
    pub async fn execute_in(
        &self,
        conn: &Connection,
        name: &str,
        args: Map<String, Value>,
        bulk: Option<&Bulk>,
    ) -> Result<Reply, DispatchError> {
        self.run(&conn.call, Some(conn), name, args, bulk).await
    }

    async fn run(
        &self,
        call: &CallContext,
        conn: Option<&Connection>,
        name: &str,
        args: Map<String, Value>,
        bulk: Option<&Bulk>,
    ) -> Result<Reply, DispatchError> {
        let entry = self
            .table
            .get(name)
            .filter(|e| in_scope(&e.info, call.caller));
        let Some(entry) = entry else {
            tracing::debug!(command = name, channel = %call.channel.name, "unknown command");
            return Err(DispatchError::NotFound(name.to_string()));
        };
        // An action is gated as itself and as what it needs, besides the command.
        let mut gated = vec![name.to_string()];
        if name == <guestlink_vocabulary::commands::GuestlinkActionRun as guestlink_vocabulary::Command>::NAME {
            gated.extend(crate::handlers::action::gate_names(self, &args));
        }
        for g in &gated {
            if let Decision::Deny(reason) = self.decide(g, call) {
                tracing::info!(command = name, gate = %g, channel = %call.channel.name, reason = reason.as_str(), "command denied");
                return Err(DispatchError::Disabled {
                    name: g.clone(),
                    reason,
                });
            }
        }
        tracing::info!(command = name, channel = %call.channel.name, "{name} called");
        let ctx = Context {
            agent: self,
            call,
            bulk,
            conn,
        };
        (entry.invoke)(ctx, args).await
    }
}
