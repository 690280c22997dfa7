//! Every limit on what the host or a guest program can make the agent hold or do, in
//! one table. Each is named as its error, the log, the README and guestlinkd(8) name
//! it (`FILE_HANDLES` is `file-handles`), so one search finds where it is enforced.
//!
//! The wire protocols' own limits (QGA's 64 MiB / 2 Mi tokens / depth 1024, oVirt's
//! 1 MiB lines, SPICE's message sizes) live with their codecs.

use std::time::Duration;

/// `file-handles`: files the host may have open at once.
pub const FILE_HANDLES: usize = 1024;
/// The most one `guest-file-read` (or its raw twin, or a bulk write) moves: 48 MiB.
pub const FILE_READ_MAX: i64 = 48 << 20;
/// Entries one `__org.guestlink_path-list` page holds unless asked for fewer.
pub const PATH_LIST_DEFAULT: u64 = 1000;
/// The most entries one `__org.guestlink_path-list` page holds.
pub const PATH_LIST_MAX: u64 = 10_000;
/// `path-watches`: paths watched for the host at once.
pub const PATH_WATCHES: usize = 32;
/// `path-watch-dirs`: directories one recursive watch may cover.
pub const PATH_WATCH_DIRS: usize = 8192;

/// `exec-processes`: children of `guest-exec` not yet collected with
/// `guest-exec-status`.
pub const EXEC_PROCESSES: usize = 256;
/// Output kept of each captured stream of one child, as qemu-ga: 16 MiB.
pub const EXEC_OUTPUT: usize = 16 << 20;
/// `exec-output-total`: captured output of all children not yet collected, together.
pub const EXEC_OUTPUT_TOTAL: usize = 256 << 20;

/// How long one administrator's action may run before its process group is killed.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Output kept of each of an action's stdout and stderr.
pub const ACTION_OUTPUT: usize = 64 << 10;

/// `clipboard-size`: the largest clipboard content passed through.
pub const CLIPBOARD_SIZE: usize = guestlink_vocabulary::types::CLIPBOARD_SIZE;
/// How long a paste waits for the host to send what it offered (a VNC host asks its
/// own client first).
pub const CLIPBOARD_FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// `clipboard-types`: the most MIME types one grab may announce.
pub const CLIPBOARD_TYPES: usize = 64;

/// `transfers`: files being received at once (spice-vdagentd's 128).
pub const TRANSFERS: usize = 128;

/// `event-queue`: events one subscriber may hold before new ones are dropped.
pub const EVENT_QUEUE: usize = 256;
/// The longest event heartbeat interval, in seconds.
pub const EVENT_HEARTBEAT_MAX: i64 = 86_400;

/// `pending-requests`: requests waiting for another party's answer.
pub const PENDING_REQUESTS: usize = 256;
/// `pending-requests-per-user`: those one guest user other than root may have.
pub const PENDING_REQUESTS_PER_USER: usize = 32;
/// Entries guest users other than root can never take: kept for root and the host.
pub const PENDING_REQUESTS_RESERVED: usize = 32;
/// The longest a guest program may wait for the host's answer, in seconds.
pub const HOST_REQUEST_TIMEOUT_MAX: i64 = 3_600;

/// The most package names one applications query may name.
pub const APPLICATIONS: usize = 1024;

/// `guest-clients`: connections to the guest socket at once.
pub const GUEST_CLIENTS: usize = 64;
/// `guest-clients-per-user`: those of one user other than root.
pub const GUEST_CLIENTS_PER_USER: usize = 8;
/// `guest-clients-reserved`: connections beyond [`GUEST_CLIENTS`] kept for root and
/// for users with a session, so that a session agent can always connect.
pub const GUEST_CLIENTS_RESERVED: usize = 16;
/// `guest-message-bytes`: the largest message from a guest client that is not a
/// registered session agent.
pub const GUEST_MESSAGE_BYTES: usize = 4 << 20;
/// The largest message from a registered session agent: the largest clipboard in
/// base64, and room for the rest of the message (a session agent that takes bulk
/// transfer sends the bytes raw instead).
pub const SESSION_AGENT_MESSAGE_BYTES: usize = CLIPBOARD_SIZE / 3 * 4 + (64 << 10);

/// The most raw bytes that may follow a request of `command` in bulk mode: a
/// clipboard's for the clipboard commands, else a file read's ([`FILE_READ_MAX`]).
pub fn payload_max(command: &str) -> i64 {
    use guestlink_vocabulary::commands::{GuestlinkClipboardSetRaw, GuestlinkReplyRaw};
    use guestlink_vocabulary::Command;
    if [GuestlinkClipboardSetRaw::NAME, GuestlinkReplyRaw::NAME].contains(&command) {
        CLIPBOARD_SIZE as i64
    } else {
        FILE_READ_MAX
    }
}

/// `guest-idle-timeout`: how long a guest client that neither subscribed to events,
/// registered a session agent nor has a request running may stay silent.
pub const GUEST_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// `listen-clients`: connections at once to one `unix-listen` or `vsock-listen`
/// channel.
pub const LISTEN_CLIENTS: usize = 16;
/// `partial-message-bytes`: memory held in messages not yet complete, for every
/// client of the guest socket and of the listening channels together.
pub const PARTIAL_MESSAGE_BYTES: usize = 256 << 20;
/// `partial-message-bytes-per-user`: the same for all connections of one guest user
/// other than root. Room for a session agent's largest message (a 64 MiB clipboard in
/// base64, [`SESSION_AGENT_MESSAGE_BYTES`]) while the user's other clients send theirs.
pub const PARTIAL_MESSAGE_BYTES_PER_USER: usize = 96 << 20;
const _: () = assert!(
    PARTIAL_MESSAGE_BYTES_PER_USER >= SESSION_AGENT_MESSAGE_BYTES + 2 * GUEST_MESSAGE_BYTES
);
/// `streams`: live streams (programs, shells, forwarded connections, listeners) open
/// at once on one connection.
pub const STREAMS: usize = 64;
/// `stream-window`: bytes a stream may have in flight in each direction before the
/// reader grants more; what a stalled reader costs, per stream.
pub const STREAM_WINDOW: u32 = guestlink_proto_stream::INITIAL_WINDOW;
