//! The agent: the policy, state, platform and events every channel shares. Running a
//! command on it is [`crate::dispatch`]'s part.

use std::sync::RwLock;

use crate::call::{CallContext, Caller};
use crate::connection::Connection;
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
    /// Where and how self-updates happen.
    pub update: crate::update::UpdateConfig,
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
            update: Default::default(),
        }
    }
}

/// The agent core. One per process, shared by all channels.
#[derive(Debug)]
pub struct Agent {
    version: String,
    policy: RwLock<Policy>,
    state: AgentState,
    platform: Platform,
    fsfreeze_hook: Option<std::path::PathBuf>,
    transfer_dir: crate::state::transfers::TransferDir,
    actions: crate::actions::Actions,
    session_users: Vec<u32>,
    update: crate::update::UpdateConfig,
    restart: tokio::sync::Notify,
    events: EventBus,
    /// Refusals already logged at the default level (command, gate and reason).
    refusals_logged: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// How many different refusals are logged as warnings; later ones go to the info level.
const REFUSALS_WARNED: usize = 256;

impl Agent {
    /// An agent with every command of the vocabulary that this platform has.
    pub fn new(config: AgentConfig, platform: Platform) -> Agent {
        Agent {
            version: config.version,
            policy: RwLock::new(config.policy),
            state: AgentState::load(config.statedir),
            platform,
            fsfreeze_hook: config.fsfreeze_hook,
            transfer_dir: config.transfer_dir,
            actions: config.actions,
            session_users: config.session_users,
            update: config.update,
            restart: tokio::sync::Notify::new(),
            events: EventBus::default(),
            refusals_logged: Default::default(),
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

    /// Where and how self-updates happen.
    pub fn update_config(&self) -> &crate::update::UpdateConfig {
        &self.update
    }

    /// Asks the agent's main loop to restart on the executable now in place (after an
    /// update's reply has gone out).
    pub fn request_restart(&self) {
        self.restart.notify_one();
    }

    /// Resolves when a restart was asked for.
    pub async fn restart_requested(&self) {
        self.restart.notified().await
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
        if self.state.update.cancel_connection(conn.id) {
            tracing::info!("an unfinished update is abandoned: its staged file is removed");
        }
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

    /// The units services may be acted on now (the policy's `[services]`).
    pub fn service_scope(&self) -> crate::policy::services::ServiceScope {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .service_scope()
            .clone()
    }

    /// Whether this refusal (a command, the gate that refused it, the rule) is the first
    /// of its kind, to be logged at the default level: an administrator sees why a host
    /// is refused without `-v`, and a host that insists does not fill the log.
    pub fn first_refusal(&self, key: &str) -> bool {
        let mut seen = self
            .refusals_logged
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        seen.len() < REFUSALS_WARNED && seen.insert(key.to_string())
    }
}
