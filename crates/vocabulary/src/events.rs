//! Every event, declared once.
//!
//! An event is something the guest tells whoever subscribed to it: hosts through the
//! QGA channel (after `__org.guestlink_events-subscribe`) and programs on the
//! guest-side socket. On the wire it is a QMP-style line:
//! `{"event": NAME, "data": {...}, "timestamp": {"seconds": S, "microseconds": U}}`.
//! Names follow QMP's upper-case style; only subscribers ever see them.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::schema::{Schema, TypeDesc};
use crate::types::*;

/// An event of the vocabulary, as a type.
pub trait Event: Send + Sync + 'static {
    /// Wire name.
    const NAME: &'static str;
    /// Description.
    const DOC: &'static str;
    /// Typed data.
    type Data: Serialize + DeserializeOwned + Schema + Send + Sync + 'static;
}

/// An event's declaration as plain data.
#[derive(Debug, Clone, Copy)]
pub struct EventInfo {
    /// Wire name.
    pub name: &'static str,
    /// Description.
    pub doc: &'static str,
    /// Data type.
    pub data: fn() -> TypeDesc,
}

macro_rules! define_events {
    ($(
        $(#[doc = $doc:literal])*
        $ty:ident { name: $name:literal, data: $data:ty $(,)? }
    )*) => {
        $(
            $(#[doc = $doc])*
            #[derive(Debug, Clone, Copy, Default)]
            pub struct $ty;

            impl Event for $ty {
                const NAME: &'static str = $name;
                const DOC: &'static str = concat!($($doc, "\n"),*);
                type Data = $data;
            }
        )*

        /// Every declared event, in declaration order.
        pub const ALL_EVENTS: &[EventInfo] = &[$(EventInfo {
            name: $name,
            doc: concat!($($doc, "\n"),*),
            data: <$data as Schema>::schema,
        }),*];

        /// Every event's wire name, in declaration order: what an agent looks at while
        /// it runs (without [`ALL_EVENTS`]' documentation and schema).
        pub const EVENT_NAMES: &[&str] = &[$($name),*];
    };
}

define_events! {
    /// guestlinkd started serving.
    AgentStartedEvent { name: "AGENT_STARTED", data: AgentStarted }

    /// guestlinkd is about to exit.
    AgentStoppingEvent { name: "AGENT_STOPPING", data: Empty }

    /// Sent every `heartbeat` seconds to a subscription that asked for it.
    HeartbeatEvent { name: "HEARTBEAT", data: Heartbeat }

    /// A watched path changed (`__org.guestlink_path-watch`).
    PathChangedEvent { name: "PATH_CHANGED", data: GuestlinkPathChanged }

    /// A CPU was hot-added (and onlined, unless the agent was told not to).
    CpuAddedEvent { name: "CPU_ADDED", data: GuestlinkCpuAdded }

    /// A memory block was hot-added (and onlined, unless the agent was told not to).
    MemoryAddedEvent { name: "MEMORY_ADDED", data: GuestlinkMemoryAdded }

    /// A disk changed size (the host resized it), with what the agent grew on it.
    DiskResizedEvent { name: "DISK_RESIZED", data: GuestlinkDiskResized }

    /// A user session appeared (logind).
    SessionNewEvent { name: "SESSION_NEW", data: SessionInfo }

    /// A user session ended.
    SessionRemovedEvent { name: "SESSION_REMOVED", data: SessionRef }

    /// Another session became the active one (or none is).
    SessionActiveEvent { name: "SESSION_ACTIVE", data: SessionActive }

    /// A session's screen was locked.
    SessionLockEvent { name: "SESSION_LOCK", data: SessionRef }

    /// A session's screen was unlocked.
    SessionUnlockEvent { name: "SESSION_UNLOCK", data: SessionRef }

    /// A session agent (`guestlink-session`) started or stopped serving a session: its
    /// clipboard and displays became reachable or went away.
    SessionAgentEvent { name: "SESSION_AGENT", data: SessionAgentChange }

    /// Filesystems were frozen.
    FsFreezeEvent { name: "FSFREEZE", data: FreezeChange }

    /// Filesystems were thawed.
    FsThawEvent { name: "FSTHAW", data: FreezeChange }

    /// A process started by `guest-exec` ended; its status waits for
    /// `guest-exec-status`.
    ExecExitedEvent { name: "EXEC_EXITED", data: ExecExited }

    /// A shell started in the guest for the host (`__org.guestlink_shell`).
    ShellOpenedEvent { name: "SHELL_OPENED", data: ShellOpened }

    /// A shell started for the host ended.
    ShellClosedEvent { name: "SHELL_CLOSED", data: ShellClosed }

    /// The guest clipboard changed (types only; fetch the contents when needed).
    ClipboardChangedEvent { name: "CLIPBOARD_CHANGED", data: ClipboardChanged }

    /// A program in the guest asks the host something (host subscribers only).
    GuestRequestEvent { name: "GUEST_REQUEST", data: GuestRequest }

    /// guestlinkd asks a session agent to act (sent to that agent only).
    SessionRequestEvent { name: "SESSION_REQUEST", data: SessionRequest }

    /// The subscriber read too slowly and lost events.
    EventsDroppedEvent { name: "EVENTS_DROPPED", data: EventsDropped }
}

/// The declaration of the event with this wire name.
pub fn find_event(name: &str) -> Option<&'static EventInfo> {
    ALL_EVENTS.iter().find(|e| e.name == name)
}
