//! Types of the bidirectional extensions: event subscriptions, requests forwarded
//! between the host and programs in the guest, user sessions and the clipboard.

use serde_json::Value;

use super::Base64Data;

/// The largest clipboard content guestlinkd passes through (its limit clipboard-size),
/// and so the most raw bytes the clipboard commands take or give in bulk mode.
pub const CLIPBOARD_SIZE: usize = 64 << 20;

qapi_enum! {
    /// An X11-style selection.
    pub enum ClipboardSelection as "GuestlinkClipboardSelection" {
        /// The clipboard (copy and paste).
        Clipboard = "clipboard",
        /// The primary selection (select and middle-click).
        Primary = "primary",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_events-subscribe`.
    pub struct SubscribeArgs as "q_obj___org.guestlink_events-subscribe-arg" {
        /// Event names to add; all events when absent.
        events: Option<Vec<String>> = "events",
        /// Send a `HEARTBEAT` event every this many seconds (1 to 86400); 0 stops it.
        heartbeat: Option<i64> = "heartbeat",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_events-unsubscribe`.
    pub struct UnsubscribeArgs as "q_obj___org.guestlink_events-unsubscribe-arg" {
        /// Event names to remove; all events when absent.
        events: Option<Vec<String>> = "events",
    }
}

qapi_struct! {
    /// The events a connection now receives.
    pub struct Subscription as "GuestlinkSubscription" {
        /// Subscribed event names, in vocabulary order.
        events: Vec<String> = "events",
        /// Heartbeat interval in seconds, when one is running.
        heartbeat: Option<i64> = "heartbeat",
    }
}

qapi_struct! {
    /// An error answer to a forwarded request.
    pub struct ReplyError as "GuestlinkReplyError" {
        /// QMP error class; `GenericError` when absent.
        class: Option<String> = "class",
        /// Human-readable description.
        desc: String = "desc",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_guest-reply` and `__org.guestlink_session-reply`:
    /// the answer to a request that was forwarded with `tag`. Exactly one of `return`
    /// and `error`.
    pub struct ReplyArgs as "q_obj___org.guestlink_reply-arg" {
        /// The `tag` of the `GUEST_REQUEST` or `SESSION_REQUEST` event.
        tag: i64 = "tag",
        /// The result, handed to the requester as its `return`.
        ret: Option<Value> = "return",
        /// The failure, handed to the requester as its `error`.
        error: Option<ReplyError> = "error",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_reply-raw`: an answer whose bytes follow the
    /// request raw (`count` of them) instead of in base64. The requester is handed
    /// `return` with the bytes as its `data`.
    pub struct RawReplyArgs as "q_obj___org.guestlink_reply-raw-arg" {
        /// The `tag` of the `GUEST_REQUEST` or `SESSION_REQUEST` event.
        tag: i64 = "tag",
        /// How many raw bytes follow.
        count: i64 = "count",
        /// The answer's other members (`mime-type`, ...).
        ret: Option<Value> = "return",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_session-data`.
    pub struct SessionDataArgs as "q_obj___org.guestlink_session-data-arg" {
        /// The `tag` of the `SESSION_REQUEST` event whose bytes to take.
        tag: i64 = "tag",
    }
}

qapi_struct! {
    /// The reply of `__org.guestlink_session-data`: `count` raw bytes follow it.
    pub struct SessionData as "GuestlinkSessionData" {
        /// How many raw bytes follow.
        count: i64 = "count",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_host-request`.
    pub struct HostRequestArgs as "q_obj___org.guestlink_host-request-arg" {
        /// What the guest program asks the host to do; the host defines the names.
        command: String = "command",
        /// Arguments for the host, any JSON object.
        arguments: Option<Value> = "arguments",
        /// Seconds to wait for the host's answer (1 to 3600, default 30).
        timeout: Option<i64> = "timeout",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_session-register`.
    pub struct SessionRegisterArgs as "q_obj___org.guestlink_session-register-arg" {
        /// The logind session id (`XDG_SESSION_ID`); the caller's own session when
        /// absent.
        session: Option<String> = "session",
        /// What the session agent offers: `clipboard`.
        capabilities: Option<Vec<String>> = "capabilities",
    }
}

qapi_struct! {
    /// A registered session agent.
    pub struct SessionRegistered as "GuestlinkSessionRegistered" {
        /// The session it serves.
        session: String = "session",
        /// Its user id.
        uid: i64 = "uid",
    }
}

qapi_struct! {
    /// A user session, as logind reports it.
    pub struct SessionInfo as "GuestlinkSession" {
        /// logind session id.
        id: String = "id",
        /// User id.
        uid: i64 = "uid",
        /// User name.
        user: String = "user",
        /// Seat, for graphical and text sessions on a seat.
        seat: Option<String> = "seat",
        /// Whether it is the active session of its seat.
        active: bool = "active",
        /// Whether its screen is locked.
        locked: bool = "locked",
        /// Whether a session agent (`guestlink-session`) serves it.
        agent: bool = "agent",
    }
}

qapi_struct! {
    /// A session named in an event.
    pub struct SessionRef as "GuestlinkSessionRef" {
        /// logind session id.
        id: String = "id",
        /// User id.
        uid: i64 = "uid",
        /// User name.
        user: String = "user",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_clipboard-get`.
    pub struct ClipboardGetArgs as "q_obj___org.guestlink_clipboard-get-arg" {
        /// Which selection (default `clipboard`).
        selection: Option<ClipboardSelection> = "selection",
        /// The MIME type wanted; text when absent.
        mime_type: Option<String> = "mime-type",
    }
}

qapi_struct! {
    /// Clipboard contents.
    pub struct ClipboardData as "GuestlinkClipboardData" {
        /// MIME type of `data`.
        mime_type: String = "mime-type",
        /// The contents, base64-encoded.
        data: Base64Data = "data",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_clipboard-set`.
    pub struct ClipboardSetArgs as "q_obj___org.guestlink_clipboard-set-arg" {
        /// Which selection (default `clipboard`).
        selection: Option<ClipboardSelection> = "selection",
        /// MIME type of `data` (`text/plain;charset=utf-8`, `image/png`, ...).
        mime_type: String = "mime-type",
        /// The contents, base64-encoded.
        data: Base64Data = "data",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_clipboard-set-raw`: the contents follow raw.
    pub struct ClipboardSetRawArgs as "q_obj___org.guestlink_clipboard-set-raw-arg" {
        /// Which selection (default `clipboard`).
        selection: Option<ClipboardSelection> = "selection",
        /// MIME type of the contents.
        mime_type: String = "mime-type",
        /// How many raw bytes follow.
        count: i64 = "count",
    }
}

qapi_struct! {
    /// The reply of `__org.guestlink_clipboard-get-raw`: `count` raw bytes of
    /// `mime-type` follow it.
    pub struct ClipboardRaw as "GuestlinkClipboardRaw" {
        /// MIME type of the contents.
        mime_type: String = "mime-type",
        /// How many raw bytes follow.
        count: i64 = "count",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_clipboard-grab`: the session's clipboard changed
    /// and now offers these types (none: it was cleared).
    pub struct ClipboardGrabArgs as "q_obj___org.guestlink_clipboard-grab-arg" {
        /// Which selection (default `clipboard`).
        selection: Option<ClipboardSelection> = "selection",
        /// MIME types on offer.
        types: Vec<String> = "types",
    }
}

qapi_struct! {
    /// Arguments of `__org.guestlink_clipboard-types`.
    pub struct ClipboardTypesArgs as "q_obj___org.guestlink_clipboard-types-arg" {
        /// Which selection (default `clipboard`).
        selection: Option<ClipboardSelection> = "selection",
    }
}

qapi_struct! {
    /// What a clipboard offers.
    pub struct ClipboardTypes as "GuestlinkClipboardTypes" {
        /// The session whose clipboard it is.
        session: String = "session",
        /// MIME types on offer; empty when the selection has no owner.
        types: Vec<String> = "types",
    }
}

qapi_struct! {
    /// Data of `AGENT_STARTED`.
    pub struct AgentStarted as "GuestlinkAgentStarted" {
        /// guestlinkd's version.
        version: String = "version",
        /// Its process id.
        pid: i64 = "pid",
    }
}

qapi_struct! {
    /// Data of `HEARTBEAT`.
    pub struct Heartbeat as "GuestlinkHeartbeat" {
        /// Counts the heartbeats of this subscription, from 1.
        sequence: i64 = "sequence",
        /// The interval in seconds.
        interval: i64 = "interval",
    }
}

qapi_struct! {
    /// Data of `SESSION_ACTIVE`.
    pub struct SessionActive as "GuestlinkSessionActive" {
        /// The session now active; absent when none is.
        id: Option<String> = "id",
    }
}

qapi_struct! {
    /// Data of `SESSION_AGENT`.
    pub struct SessionAgentChange as "GuestlinkSessionAgentChange" {
        /// The session.
        session: String = "session",
        /// The agent's user.
        uid: i64 = "uid",
        /// Whether an agent serves the session now.
        present: bool = "present",
    }
}

qapi_struct! {
    /// Data of `FSFREEZE` and `FSTHAW`.
    pub struct FreezeChange as "GuestlinkFreezeChange" {
        /// Filesystems frozen or thawed.
        count: i64 = "count",
    }
}

qapi_struct! {
    /// Data of `EXEC_EXITED`.
    pub struct ExecExited as "GuestlinkExecExited" {
        /// The pid `guest-exec` returned.
        pid: i64 = "pid",
        /// Exit code, when the process exited.
        exitcode: Option<i64> = "exitcode",
        /// Signal number, when a signal ended it.
        signal: Option<i64> = "signal",
    }
}

qapi_struct! {
    /// Data of `CLIPBOARD_CHANGED`: what the guest clipboard now offers. The contents
    /// are fetched only when asked for (`__org.guestlink_clipboard-get`).
    pub struct ClipboardChanged as "GuestlinkClipboardChanged" {
        /// The session whose clipboard changed.
        session: String = "session",
        /// Which selection.
        selection: ClipboardSelection = "selection",
        /// MIME types on offer; empty when it was cleared.
        types: Vec<String> = "types",
    }
}

qapi_struct! {
    /// Data of `GUEST_REQUEST`: a guest program asks the host something. Answer with
    /// `__org.guestlink_guest-reply` and the same tag.
    pub struct GuestRequest as "GuestlinkGuestRequest" {
        /// Identifies the request in the answer.
        tag: i64 = "tag",
        /// The caller's user id.
        uid: i64 = "uid",
        /// The caller's process id.
        pid: i64 = "pid",
        /// The caller's session, when known.
        session: Option<String> = "session",
        /// What it asks.
        command: String = "command",
        /// Its arguments.
        arguments: Value = "arguments",
    }
}

qapi_struct! {
    /// Data of `SESSION_REQUEST`: guestlinkd asks a session agent to act on its desktop.
    /// Answer with `__org.guestlink_session-reply` and the same tag.
    pub struct SessionRequest as "GuestlinkSessionRequest" {
        /// Identifies the request in the answer.
        tag: i64 = "tag",
        /// A command of the vocabulary (`__org.guestlink_clipboard-get`, ...).
        command: String = "command",
        /// Its arguments.
        arguments: Value = "arguments",
    }
}

qapi_struct! {
    /// Data of `EVENTS_DROPPED`: a slow reader lost events.
    pub struct EventsDropped as "GuestlinkEventsDropped" {
        /// Events lost since the last delivery.
        count: i64 = "count",
    }
}
