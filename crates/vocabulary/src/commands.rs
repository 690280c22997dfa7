//! Every command, declared once.
//!
//! A declaration names the Rust type that stands for the command and gives its wire
//! name, arguments, result, the QEMU version that introduced it, whether it replies on
//! success, and its platforms. Adding a command means adding a block here and a handler
//! in `guestlink-core`; the compiler then requires the handler, and the command appears
//! in `guest-info`, the schema and the host library.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::args::FromArg;
use crate::schema::{Schema, TypeDesc};
use crate::types::*;

/// Operating systems a command exists on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platforms(u8);

impl Platforms {
    /// Linux.
    pub const LINUX: Platforms = Platforms(1);
    /// FreeBSD.
    pub const FREEBSD: Platforms = Platforms(2);
    /// Windows.
    pub const WINDOWS: Platforms = Platforms(4);
    /// Every POSIX platform.
    pub const POSIX: Platforms = Platforms(1 | 2);
    /// Everywhere.
    pub const ALL: Platforms = Platforms(1 | 2 | 4);

    /// The platform this binary was built for.
    pub const fn current() -> Platforms {
        if cfg!(target_os = "windows") {
            Platforms::WINDOWS
        } else if cfg!(target_os = "freebsd") {
            Platforms::FREEBSD
        } else {
            Platforms::LINUX
        }
    }

    /// Whether `self` includes every platform of `other`.
    pub const fn contains(self, other: Platforms) -> bool {
        self.0 & other.0 == other.0
    }

    /// Names of the platforms included.
    pub fn names(self) -> Vec<&'static str> {
        [(1, "linux"), (2, "freebsd"), (4, "windows")]
            .into_iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|(_, n)| n)
            .collect()
    }
}

/// Raw bytes that travel with a command outside its JSON text (bulk transfer).
///
/// The bytes follow the JSON message directly: exactly `count` of them, where `count`
/// is the message's own `count` member. They are only ever sent on a connection that
/// asked for them with `__org.guestlink_bulk-enable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// JSON only.
    None,
    /// The request is followed by `arguments.count` raw bytes.
    Request,
    /// A successful reply is followed by `return.count` raw bytes.
    Reply,
}

impl Payload {
    /// The name in the schema document, or `None` for plain commands.
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Payload::None => None,
            Payload::Request => Some("request"),
            Payload::Reply => Some("reply"),
        }
    }
}

/// Who may call a command: the host through a host channel (QGA, vdagent, oVirt), a
/// program inside the guest through the guest-side socket, or both. A command is not
/// found where its scope does not reach, and `guest-info` lists only those in scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Host channels only (every qemu-ga command but the four below).
    Host,
    /// The guest-side socket only.
    Guest,
    /// Both.
    Both,
}

impl Scope {
    /// The name in the schema document.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Host => "host",
            Scope::Guest => "guest",
            Scope::Both => "both",
        }
    }

    /// Whether a host channel may call it.
    pub fn host(self) -> bool {
        self != Scope::Guest
    }

    /// Whether the guest-side socket may call it.
    pub fn guest(self) -> bool {
        self != Scope::Host
    }
}

/// A command of the vocabulary, as a type.
pub trait Command: Send + Sync + 'static {
    /// Wire name.
    const NAME: &'static str;
    /// QEMU version that introduced the command (or guestlink's, for extensions).
    const SINCE: &'static str;
    /// Whether a successful call produces a reply.
    const SUCCESS_RESPONSE: bool;
    /// Where the command exists.
    const PLATFORMS: Platforms;
    /// Description.
    const DOC: &'static str;
    /// Raw bytes that follow the request or the reply.
    const PAYLOAD: Payload;
    /// Who may call it.
    const SCOPE: Scope;
    /// The qemu-ga commands this one does the work of: the gate checks each of them
    /// too, so a policy that refuses `guest-file-read` refuses its raw twin as well.
    const GATED_AS: &'static [&'static str];
    /// Typed arguments.
    type Args: FromArg + Schema + Serialize + Send + 'static;
    /// Typed result.
    type Returns: Serialize + DeserializeOwned + Schema + Send + Sync + 'static;
}

/// What a running agent needs of a command's declaration: everything but its
/// documentation and schema, which stay out of guestlinkd (they are the CLI's and the
/// reference's, through [`CommandInfo`] and [`ALL_COMMANDS`]).
#[derive(Debug, Clone, Copy)]
pub struct CommandMeta {
    /// Wire name.
    pub name: &'static str,
    /// Whether a successful call produces a reply.
    pub success_response: bool,
    /// Where it exists.
    pub platforms: Platforms,
    /// Raw bytes that follow the request or the reply.
    pub payload: Payload,
    /// Who may call it.
    pub scope: Scope,
    /// The commands the gate checks besides this one (see [`Command::GATED_AS`]).
    pub gated_as: &'static [&'static str],
}

impl CommandMeta {
    /// The run-time declaration of command type `C`.
    pub const fn of<C: Command>() -> CommandMeta {
        CommandMeta {
            name: C::NAME,
            success_response: C::SUCCESS_RESPONSE,
            platforms: C::PLATFORMS,
            payload: C::PAYLOAD,
            scope: C::SCOPE,
            gated_as: C::GATED_AS,
        }
    }

    /// Whether the command exists on the platform this binary was built for.
    pub fn available(&self) -> bool {
        self.platforms.contains(Platforms::current())
    }
}

/// A command's declaration as plain data.
#[derive(Debug, Clone, Copy)]
pub struct CommandInfo {
    /// What the running agent uses: name, reply, platforms, payload, scope, gate.
    pub meta: CommandMeta,
    /// QEMU version that introduced it.
    pub since: &'static str,
    /// Description.
    pub doc: &'static str,
    /// Argument type.
    pub args: fn() -> TypeDesc,
    /// Result type.
    pub returns: fn() -> TypeDesc,
}

impl CommandInfo {
    /// The declaration of command type `C`.
    pub const fn of<C: Command>() -> CommandInfo {
        CommandInfo {
            meta: CommandMeta::of::<C>(),
            since: C::SINCE,
            doc: C::DOC,
            args: <C::Args as Schema>::schema,
            returns: <C::Returns as Schema>::schema,
        }
    }
}

macro_rules! define_commands {
    (
        $d:tt;
        $(
            $(#[doc = $doc:literal])*
            $ty:ident {
                name: $name:literal,
                since: $since:literal,
                args: $args:ty,
                returns: $ret:ty
                $(, success_response: $sr:literal)?
                $(, platforms: $plat:expr)?
                $(, payload: $payload:ident)?
                $(, scope: $scope:ident)?
                $(, gated_as: [$($gate:literal),* $(,)?])?
                $(,)?
            }
        )*
    ) => {
        $(
            $(#[doc = $doc])*
            #[derive(Debug, Clone, Copy, Default)]
            pub struct $ty;

            impl Command for $ty {
                const NAME: &'static str = $name;
                const SINCE: &'static str = $since;
                const SUCCESS_RESPONSE: bool = true $(&& $sr)?;
                const PLATFORMS: Platforms = define_commands!(@plat $($plat)?);
                const DOC: &'static str = concat!($($doc, "\n"),*);
                const PAYLOAD: Payload = define_commands!(@payload $($payload)?);
                const SCOPE: Scope = define_commands!(@scope $($scope)?);
                const GATED_AS: &'static [&'static str] = &[$($($gate),*)?];
                type Args = $args;
                type Returns = $ret;
            }
        )*

        /// Every declared command, in declaration order (QAPI schema order).
        pub const ALL_COMMANDS: &[CommandInfo] = &[$(CommandInfo::of::<$ty>()),*];

        /// [`ALL_COMMANDS`] without documentation or schema: what an agent looks at
        /// while it runs.
        pub const COMMAND_METAS: &[CommandMeta] = &[$(CommandMeta::of::<$ty>()),*];

        /// Calls macro `$m` with the path of every command type, separated by commas.
        #[macro_export]
        macro_rules! for_each_command {
            ($d m:ident) => { $d m!($($crate::commands::$ty),*) };
        }
    };
    (@plat) => { Platforms::ALL };
    (@plat $p:expr) => { $p };
    (@payload) => { Payload::None };
    (@payload $p:ident) => { Payload::$p };
    (@scope) => { Scope::Host };
    (@scope $s:ident) => { Scope::$s };
}

define_commands! {
    $;

    /// Echo back a unique integer, prefixing the reply with a 0xFF byte so that a client
    /// can find it in a stream it has lost track of.
    GuestSyncDelimited {
        name: "guest-sync-delimited",
        since: "1.1",
        args: GuestSyncArgs,
        returns: i64,
        scope: Both,
    }

    /// Echo back a unique integer, so that a client can discard stale replies.
    GuestSync {
        name: "guest-sync",
        since: "0.15",
        args: GuestSyncArgs,
        returns: i64,
        scope: Both,
    }

    /// Check that the agent is alive.
    GuestPing {
        name: "guest-ping",
        since: "0.15",
        args: Empty,
        returns: Empty,
        scope: Both,
    }

    /// The guest's wall clock in nanoseconds since the epoch.
    GuestGetTime {
        name: "guest-get-time",
        since: "1.5",
        args: Empty,
        returns: i64,
    }

    /// Set the guest's clock to `time` and write it to the RTC, or, without `time`,
    /// set the clock from the RTC.
    GuestSetTime {
        name: "guest-set-time",
        since: "1.5",
        args: GuestSetTimeArgs,
        returns: Empty,
    }

    /// The agent's version and every command with whether it is enabled now.
    GuestInfo {
        name: "guest-info",
        since: "0.15",
        args: Empty,
        returns: GuestAgentInfo,
        scope: Both,
    }

    /// Power down, halt or reboot the guest. No reply when it succeeds.
    GuestShutdown {
        name: "guest-shutdown",
        since: "0.15",
        args: GuestShutdownArgs,
        returns: Empty,
        success_response: false,
    }

    /// Open a file in the guest and return a handle for the other `guest-file-*` commands.
    GuestFileOpen {
        name: "guest-file-open",
        since: "0.15",
        args: GuestFileOpenArgs,
        returns: i64,
    }

    /// Close a handle opened by `guest-file-open`.
    GuestFileClose {
        name: "guest-file-close",
        since: "0.15",
        args: GuestFileHandleArgs,
        returns: Empty,
    }

    /// Read from an open file.
    GuestFileRead {
        name: "guest-file-read",
        since: "0.15",
        args: GuestFileReadArgs,
        returns: crate::types::GuestFileRead,
    }

    /// Write to an open file.
    GuestFileWrite {
        name: "guest-file-write",
        since: "0.15",
        args: GuestFileWriteArgs,
        returns: crate::types::GuestFileWrite,
    }

    /// Move the position of an open file.
    GuestFileSeek {
        name: "guest-file-seek",
        since: "0.15",
        args: GuestFileSeekArgs,
        returns: crate::types::GuestFileSeek,
    }

    /// Write buffered data of an open file to the operating system.
    GuestFileFlush {
        name: "guest-file-flush",
        since: "0.15",
        args: GuestFileHandleArgs,
        returns: Empty,
    }

    /// Whether the agent has frozen the guest's filesystems.
    GuestFsfreezeStatus {
        name: "guest-fsfreeze-status",
        since: "0.15",
        args: Empty,
        returns: crate::types::GuestFsfreezeStatus,
    }

    /// Freeze every freezable filesystem; returns how many were frozen.
    GuestFsfreezeFreeze {
        name: "guest-fsfreeze-freeze",
        since: "0.15",
        args: Empty,
        returns: i64,
    }

    /// Freeze the listed mount points (all when absent); returns how many were frozen.
    GuestFsfreezeFreezeList {
        name: "guest-fsfreeze-freeze-list",
        since: "2.2",
        args: GuestFsfreezeFreezeListArgs,
        returns: i64,
    }

    /// Thaw frozen filesystems; returns how many were thawed.
    GuestFsfreezeThaw {
        name: "guest-fsfreeze-thaw",
        since: "0.15",
        args: Empty,
        returns: i64,
    }

    /// Discard unused blocks of every mounted filesystem.
    GuestFstrim {
        name: "guest-fstrim",
        since: "1.2",
        args: GuestFstrimArgs,
        returns: GuestFilesystemTrimResponse,
    }

    /// Hibernate the guest. No reply when it succeeds.
    GuestSuspendDisk {
        name: "guest-suspend-disk",
        since: "1.1",
        args: Empty,
        returns: Empty,
        success_response: false,
    }

    /// Suspend the guest to RAM. No reply when it succeeds.
    GuestSuspendRam {
        name: "guest-suspend-ram",
        since: "1.1",
        args: Empty,
        returns: Empty,
        success_response: false,
    }

    /// Save the guest to disk and suspend it to RAM. No reply when it succeeds.
    GuestSuspendHybrid {
        name: "guest-suspend-hybrid",
        since: "1.1",
        args: Empty,
        returns: Empty,
        success_response: false,
        platforms: Platforms::LINUX,
    }

    /// Network interfaces with their addresses and counters.
    GuestNetworkGetInterfaces {
        name: "guest-network-get-interfaces",
        since: "1.1",
        args: Empty,
        returns: Vec<GuestNetworkInterface>,
    }

    /// The guest's virtual CPUs and whether each is online.
    GuestGetVcpus {
        name: "guest-get-vcpus",
        since: "1.5",
        args: Empty,
        returns: Vec<GuestLogicalProcessor>,
    }

    /// Bring CPUs online or offline; returns how many entries were processed.
    GuestSetVcpus {
        name: "guest-set-vcpus",
        since: "1.5",
        args: GuestSetVcpusArgs,
        returns: i64,
        platforms: Platforms::LINUX,
    }

    /// Block devices with their addresses and dependencies.
    GuestGetDisks {
        name: "guest-get-disks",
        since: "5.2",
        args: Empty,
        returns: Vec<GuestDiskInfo>,
    }

    /// Mounted filesystems with their sizes and the disks under them.
    GuestGetFsinfo {
        name: "guest-get-fsinfo",
        since: "2.2",
        args: Empty,
        returns: Vec<GuestFilesystemInfo>,
    }

    /// Set an account's password.
    GuestSetUserPassword {
        name: "guest-set-user-password",
        since: "2.3",
        args: GuestSetUserPasswordArgs,
        returns: Empty,
    }

    /// Memory blocks and whether each is online.
    GuestGetMemoryBlocks {
        name: "guest-get-memory-blocks",
        since: "2.3",
        args: Empty,
        returns: Vec<GuestMemoryBlock>,
        platforms: Platforms::LINUX,
    }

    /// Bring memory blocks online or offline; one outcome per block.
    GuestSetMemoryBlocks {
        name: "guest-set-memory-blocks",
        since: "2.3",
        args: GuestSetMemoryBlocksArgs,
        returns: Vec<GuestMemoryBlockResponse>,
        platforms: Platforms::LINUX,
    }

    /// The size of one memory block.
    GuestGetMemoryBlockInfo {
        name: "guest-get-memory-block-info",
        since: "2.3",
        args: Empty,
        returns: GuestMemoryBlockInfo,
        platforms: Platforms::LINUX,
    }

    /// The state of a process started by `guest-exec`; its output once it has exited.
    GuestExecStatus {
        name: "guest-exec-status",
        since: "2.5",
        args: GuestExecStatusArgs,
        returns: crate::types::GuestExecStatus,
    }

    /// Start a process in the guest, optionally feeding stdin and capturing output.
    GuestExec {
        name: "guest-exec",
        since: "2.5",
        args: GuestExecArgs,
        returns: crate::types::GuestExec,
    }

    /// The guest's host name.
    GuestGetHostName {
        name: "guest-get-host-name",
        since: "2.10",
        args: Empty,
        returns: GuestHostName,
    }

    /// Users with an active login session, each once with their earliest login.
    GuestGetUsers {
        name: "guest-get-users",
        since: "2.10",
        args: Empty,
        returns: Vec<GuestUser>,
    }

    /// The guest's time zone abbreviation and UTC offset.
    GuestGetTimezone {
        name: "guest-get-timezone",
        since: "2.10",
        args: Empty,
        returns: GuestTimezone,
    }

    /// Kernel (uname) and distribution (os-release) identification.
    GuestGetOsinfo {
        name: "guest-get-osinfo",
        since: "2.10",
        args: Empty,
        returns: GuestOSInfo,
    }

    /// Devices and their drivers (Windows only).
    GuestGetDevices {
        name: "guest-get-devices",
        since: "5.2",
        args: Empty,
        returns: Vec<GuestDeviceInfo>,
        platforms: Platforms::WINDOWS,
    }

    /// The public keys in a user's `~/.ssh/authorized_keys`.
    GuestSshGetAuthorizedKeys {
        name: "guest-ssh-get-authorized-keys",
        since: "5.2",
        args: GuestSshGetArgs,
        returns: GuestAuthorizedKeys,
    }

    /// Add public keys to a user's `~/.ssh/authorized_keys`, or replace its content.
    GuestSshAddAuthorizedKeys {
        name: "guest-ssh-add-authorized-keys",
        since: "5.2",
        args: GuestSshAddArgs,
        returns: Empty,
    }

    /// Remove public keys from a user's `~/.ssh/authorized_keys`.
    GuestSshRemoveAuthorizedKeys {
        name: "guest-ssh-remove-authorized-keys",
        since: "5.2",
        args: GuestSshRemoveArgs,
        returns: Empty,
    }

    /// I/O counters of every block device.
    GuestGetDiskstats {
        name: "guest-get-diskstats",
        since: "7.1",
        args: Empty,
        returns: Vec<GuestDiskStatsInfo>,
        platforms: Platforms::LINUX,
    }

    /// Time counters of every CPU.
    GuestGetCpustats {
        name: "guest-get-cpustats",
        since: "7.1",
        args: Empty,
        returns: Vec<GuestCpuStats>,
        platforms: Platforms::LINUX,
    }

    /// The IPv4 and IPv6 routing tables.
    GuestNetworkGetRoute {
        name: "guest-network-get-route",
        since: "9.1",
        args: Empty,
        returns: Vec<GuestNetworkRoute>,
        platforms: Platforms::LINUX,
    }

    /// The load averages over 1, 5 and 15 minutes.
    GuestGetLoad {
        name: "guest-get-load",
        since: "10.0",
        args: Empty,
        returns: GuestLoadAverage,
    }

    /// guestlink extension: turn on raw bulk transfer for this connection. Until a
    /// client calls it, the agent never sends a raw byte, and the `-raw` commands are
    /// refused. It ends when the connection closes or the client synchronises again
    /// (`guest-sync`, `guest-sync-delimited`). On the guest socket only a registered
    /// session agent may turn it on (for its clipboard's bytes).
    GuestlinkBulkEnable {
        name: "__org.guestlink_bulk-enable",
        since: "guestlink 0.1",
        args: Empty,
        returns: GuestlinkBulkInfo,
        scope: Both,
    }

    /// guestlink extension: `guest-file-read` without base64. The reply
    /// `{"return": {"count": N, "eof": ...}}` and its newline are followed by exactly N
    /// raw bytes. Needs `__org.guestlink_bulk-enable`.
    GuestlinkFileReadRaw {
        name: "__org.guestlink_file-read-raw",
        since: "guestlink 0.1",
        args: GuestFileReadArgs,
        returns: crate::types::GuestlinkFileReadRaw,
        payload: Reply,
        gated_as: ["guest-file-read"],
    }

    /// guestlink extension: `guest-file-write` without base64. Exactly `count` raw
    /// bytes follow the request's closing brace. Needs `__org.guestlink_bulk-enable`.
    GuestlinkFileWriteRaw {
        name: "__org.guestlink_file-write-raw",
        since: "guestlink 0.1",
        args: GuestlinkFileWriteRawArgs,
        returns: crate::types::GuestFileWrite,
        payload: Request,
        gated_as: ["guest-file-write"],
    }

    /// guestlink extension: turn on live streams for this connection. From then on,
    /// binary stream frames (first byte 0xFE) travel beside the JSON in both
    /// directions: the output of streamed programs and shells, forwarded connections.
    /// Until a client calls it, the agent never sends a frame. A sync, a disconnection
    /// or the host going away ends it, and every stream with it.
    GuestlinkStreamEnable {
        name: "__org.guestlink_stream-enable",
        since: "guestlink 0.2",
        args: Empty,
        returns: StreamInfo,
    }

    /// guestlink extension: run a program whose standard input, output and error are
    /// a stream (or a terminal, with `terminal`), forwarded as they flow. The exit
    /// status comes as the stream's last frame. Needs `__org.guestlink_stream-enable`.
    GuestlinkStreamExec {
        name: "__org.guestlink_stream-exec",
        since: "guestlink 0.2",
        args: StreamExecArgs,
        returns: StreamProcess,
        gated_as: ["guest-exec"],
    }

    /// guestlink extension: a user's login shell on a stream, on a pseudo-terminal when
    /// `terminal` is given. Logged in the guest and announced as `SHELL_OPENED` and
    /// `SHELL_CLOSED`. Needs `__org.guestlink_stream-enable`.
    GuestlinkShell {
        name: "__org.guestlink_shell",
        since: "guestlink 0.2",
        args: ShellArgs,
        returns: StreamProcess,
        gated_as: ["guest-exec"],
    }

    /// guestlink extension: connect from inside the guest to a TCP address or a unix
    /// socket; the connection's bytes travel on a stream (`ssh -L`). Needs
    /// `__org.guestlink_stream-enable`.
    GuestlinkForwardConnect {
        name: "__org.guestlink_forward-connect",
        since: "guestlink 0.2",
        args: ForwardAddress,
        returns: ForwardStream,
    }

    /// guestlink extension: listen inside the guest on a TCP address or a unix socket;
    /// each connection becomes a stream announced by an accept frame (`ssh -R`). Needs
    /// `__org.guestlink_stream-enable`.
    GuestlinkForwardListen {
        name: "__org.guestlink_forward-listen",
        since: "guestlink 0.2",
        args: ForwardAddress,
        returns: ForwardListener,
    }

    /// guestlink extension: receive events on this connection. Adds the named events
    /// (all when `events` is absent) to the subscription and optionally starts a
    /// heartbeat. A sync, a disconnection or `events-unsubscribe` ends it; a client that
    /// never subscribes never sees an event line.
    GuestlinkEventsSubscribe {
        name: "__org.guestlink_events-subscribe",
        since: "guestlink 0.1",
        args: SubscribeArgs,
        returns: Subscription,
        scope: Both,
    }

    /// guestlink extension: stop receiving the named events (all when absent).
    GuestlinkEventsUnsubscribe {
        name: "__org.guestlink_events-unsubscribe",
        since: "guestlink 0.1",
        args: UnsubscribeArgs,
        returns: Subscription,
        scope: Both,
    }

    /// guestlink extension: the host answers a `GUEST_REQUEST` event; the answer goes
    /// back to the guest program that asked, with that program's own request id.
    GuestlinkGuestReply {
        name: "__org.guestlink_guest-reply",
        since: "guestlink 0.1",
        args: ReplyArgs,
        returns: Empty,
        platforms: Platforms::POSIX,
    }

    /// guestlink extension: user sessions, with whether a session agent serves each.
    GuestlinkGetSessions {
        name: "__org.guestlink_get-sessions",
        since: "guestlink 0.1",
        args: Empty,
        returns: Vec<SessionInfo>,
        platforms: Platforms::POSIX,
        scope: Both,
    }

    /// guestlink extension: what a clipboard of the active session (on the guest
    /// socket: the caller's session) offers.
    GuestlinkClipboardTypes {
        name: "__org.guestlink_clipboard-types",
        since: "guestlink 0.1",
        args: ClipboardTypesArgs,
        returns: ClipboardTypes,
        platforms: Platforms::POSIX,
        scope: Both,
    }

    /// guestlink extension: read a clipboard of the active session (on the guest
    /// socket: the caller's session), fetched from its session agent now.
    GuestlinkClipboardGet {
        name: "__org.guestlink_clipboard-get",
        since: "guestlink 0.1",
        args: ClipboardGetArgs,
        returns: ClipboardData,
        platforms: Platforms::POSIX,
        scope: Both,
    }

    /// guestlink extension: set a clipboard of the active session (on the guest socket:
    /// the caller's session); the session agent owns it until someone else copies.
    GuestlinkClipboardSet {
        name: "__org.guestlink_clipboard-set",
        since: "guestlink 0.1",
        args: ClipboardSetArgs,
        returns: Empty,
        platforms: Platforms::POSIX,
        scope: Both,
    }

    /// guestlink extension, guest socket: ask the host something. The request goes to
    /// subscribed hosts as a `GUEST_REQUEST` event; the host's answer is this call's
    /// reply.
    GuestlinkHostRequest {
        name: "__org.guestlink_host-request",
        since: "guestlink 0.1",
        args: HostRequestArgs,
        returns: serde_json::Value,
        platforms: Platforms::POSIX,
        scope: Guest,
    }

    /// guestlink extension: `clipboard-get` without base64. The reply
    /// `{"return": {"mime-type": ..., "count": N}}` and its newline are followed by
    /// exactly N raw bytes. Needs `__org.guestlink_bulk-enable`.
    GuestlinkClipboardGetRaw {
        name: "__org.guestlink_clipboard-get-raw",
        since: "guestlink 0.1",
        args: ClipboardGetArgs,
        returns: ClipboardRaw,
        platforms: Platforms::POSIX,
        payload: Reply,
    }

    /// guestlink extension: `clipboard-set` without base64. Exactly `count` raw bytes
    /// (at most clipboard-size, 64 MiB) follow the request's closing brace. Needs
    /// `__org.guestlink_bulk-enable`.
    GuestlinkClipboardSetRaw {
        name: "__org.guestlink_clipboard-set-raw",
        since: "guestlink 0.1",
        args: ClipboardSetRawArgs,
        returns: Empty,
        platforms: Platforms::POSIX,
        payload: Request,
    }

    /// guestlink extension, guest socket: a session agent announces itself for its
    /// logind session. It then receives `SESSION_REQUEST` events for that session.
    GuestlinkSessionRegister {
        name: "__org.guestlink_session-register",
        since: "guestlink 0.1",
        args: SessionRegisterArgs,
        returns: SessionRegistered,
        platforms: Platforms::POSIX,
        scope: Guest,
    }

    /// guestlink extension, guest socket: a session agent answers a `SESSION_REQUEST`.
    GuestlinkSessionReply {
        name: "__org.guestlink_session-reply",
        since: "guestlink 0.1",
        args: ReplyArgs,
        returns: Empty,
        platforms: Platforms::POSIX,
        scope: Guest,
    }

    /// guestlink extension: answer a request with bytes: `count` raw bytes (at most
    /// clipboard-size, 64 MiB) follow the request's closing brace and become the
    /// answer's `data`, beside `return`. A host answers a `GUEST_REQUEST` so (a
    /// clipboard for a paste of what it offered), a session agent a `SESSION_REQUEST`
    /// (a clipboard read). Needs `__org.guestlink_bulk-enable`.
    GuestlinkReplyRaw {
        name: "__org.guestlink_reply-raw",
        since: "guestlink 0.1",
        args: RawReplyArgs,
        returns: Empty,
        platforms: Platforms::POSIX,
        payload: Request,
        scope: Both,
    }

    /// guestlink extension, guest socket: a session agent that registered with the
    /// capability `binary` takes the bytes of a `SESSION_REQUEST` (a clipboard the host
    /// sets), which the request announces as `arguments.count` instead of sending
    /// `arguments.data` in base64. The reply `{"return": {"count": N}}` is followed by
    /// N raw bytes; the bytes are given once. Needs `__org.guestlink_bulk-enable`.
    GuestlinkSessionData {
        name: "__org.guestlink_session-data",
        since: "guestlink 0.1",
        args: SessionDataArgs,
        returns: SessionData,
        platforms: Platforms::POSIX,
        payload: Reply,
        scope: Guest,
    }

    /// guestlink extension, guest socket: a session agent reports that its clipboard
    /// changed hands and what the new owner offers (`CLIPBOARD_CHANGED`).
    GuestlinkClipboardGrab {
        name: "__org.guestlink_clipboard-grab",
        since: "guestlink 0.1",
        args: ClipboardGrabArgs,
        returns: Empty,
        platforms: Platforms::POSIX,
        scope: Guest,
    }

    /// guestlink extension: the host owns a clipboard of the active session and offers
    /// these MIME types, without sending the data: a guest program that pastes makes
    /// the session agent fetch it (`clipboard-fetch`), which reaches this connection as
    /// a `GUEST_REQUEST` to answer with `guest-reply`. No types: the host lets go.
    GuestlinkClipboardOffer {
        name: "__org.guestlink_clipboard-offer",
        since: "guestlink 0.1",
        args: ClipboardOfferArgs,
        returns: Empty,
        platforms: Platforms::POSIX,
    }

    /// guestlink extension, guest socket: a session agent fetches what the host offered
    /// (`clipboard-offer`) because a program pastes.
    GuestlinkClipboardFetch {
        name: "__org.guestlink_clipboard-fetch",
        since: "guestlink 0.1",
        args: ClipboardSelectionArgs,
        returns: ClipboardData,
        platforms: Platforms::POSIX,
        scope: Guest,
    }

    /// guestlink extension, guest socket: `clipboard-fetch` without base64. The reply
    /// `{"return": {"mime-type": ..., "count": N}}` is followed by N raw bytes. Needs
    /// `__org.guestlink_bulk-enable`.
    GuestlinkClipboardFetchRaw {
        name: "__org.guestlink_clipboard-fetch-raw",
        since: "guestlink 0.1",
        args: ClipboardSelectionArgs,
        returns: ClipboardRaw,
        platforms: Platforms::POSIX,
        payload: Reply,
        scope: Guest,
    }

    /// guestlink extension: empty a clipboard of the active session (on the guest
    /// socket: the caller's session).
    GuestlinkClipboardClear {
        name: "__org.guestlink_clipboard-clear",
        since: "guestlink 0.1",
        args: ClipboardSelectionArgs,
        returns: Empty,
        platforms: Platforms::POSIX,
        scope: Both,
    }

    /// guestlink extension: start receiving a file into the active user's download
    /// directory (guestlinkd's `--transfer-dir`). The file is created for that user
    /// under a name no other file has (`name (1).ext`, ...), after checking the space.
    GuestlinkTransferStart {
        name: "__org.guestlink_transfer-start",
        since: "guestlink 0.1",
        args: TransferStartArgs,
        returns: Transfer,
        platforms: Platforms::POSIX,
    }

    /// guestlink extension: the next `count` bytes of a transfer, as raw bytes after
    /// the request (bulk). The transfer completes when all its bytes arrived.
    GuestlinkTransferWrite {
        name: "__org.guestlink_transfer-write",
        since: "guestlink 0.1",
        args: TransferWriteArgs,
        returns: TransferProgress,
        platforms: Platforms::POSIX,
        payload: Request,
    }

    /// guestlink extension: abandon a transfer; its partial file is removed.
    GuestlinkTransferCancel {
        name: "__org.guestlink_transfer-cancel",
        since: "guestlink 0.1",
        args: TransferHandleArgs,
        returns: Empty,
        platforms: Platforms::POSIX,
    }

    /// guestlink extension: start sending a new guestlinkd to this agent. Its bytes
    /// follow with `__org.guestlink_update-write` (bulk); they are staged beside the
    /// running executable and removed if the connection ends first. Gated as
    /// guest-exec too: the new agent runs what the host sent.
    GuestlinkUpdateStart {
        name: "__org.guestlink_update-start",
        since: "guestlink 0.1",
        args: UpdateStartArgs,
        returns: Transfer,
        platforms: Platforms::LINUX,
        gated_as: ["guest-exec"],
    }

    /// guestlink extension: the next `count` bytes of an update, as raw bytes after the
    /// request (bulk).
    GuestlinkUpdateWrite {
        name: "__org.guestlink_update-write",
        since: "guestlink 0.1",
        args: TransferWriteArgs,
        returns: TransferProgress,
        platforms: Platforms::LINUX,
        payload: Request,
    }

    /// guestlink extension: check the staged executable (size, SHA-256, the signature
    /// when the guest has an update key, that it runs), swap it in atomically and
    /// restart on it once the reply is sent. If the new agent does not come up within
    /// the trial period, the old executable is put back and started.
    GuestlinkUpdateCommit {
        name: "__org.guestlink_update-commit",
        since: "guestlink 0.1",
        args: TransferHandleArgs,
        returns: UpdateCommitted,
        platforms: Platforms::LINUX,
        gated_as: ["guest-exec"],
    }

    /// guestlink extension: the last update: pending, confirmed or rolled back (why).
    GuestlinkUpdateStatus {
        name: "__org.guestlink_update-status",
        since: "guestlink 0.1",
        args: Empty,
        returns: UpdateStatus,
        platforms: Platforms::LINUX,
    }

    /// guestlink extension: the host's display layout, applied by the active session's
    /// agent (XRandR).
    GuestlinkDisplaySet {
        name: "__org.guestlink_display-set",
        since: "guestlink 0.1",
        args: DisplaySetArgs,
        returns: Empty,
        platforms: Platforms::POSIX,
    }

    /// guestlink extension: memory figures and paging counters (what oVirt's heartbeat
    /// reports).
    GuestlinkGetMemoryStats {
        name: "__org.guestlink_get-memory-stats",
        since: "guestlink 0.1",
        args: Empty,
        returns: GuestlinkMemoryStats,
        platforms: Platforms::POSIX,
    }

    /// guestlink extension: what a path names, its size, mode, owner and times (lstat;
    /// stat with `follow`). Gated as `guest-file-read`.
    GuestlinkPathStat {
        name: "__org.guestlink_path-stat",
        since: "guestlink 0.1",
        args: GuestlinkPathStatArgs,
        returns: GuestlinkPathInfo,
        platforms: Platforms::ALL,
        gated_as: ["guest-file-read"],
    }

    /// guestlink extension: a page of a directory's entries, each as `path-stat`
    /// reports it (a link's target included), in name order; large directories come in
    /// pages (`offset`, `next`).
    /// Gated as `guest-file-read`.
    GuestlinkPathList {
        name: "__org.guestlink_path-list",
        since: "guestlink 0.1",
        args: GuestlinkPathListArgs,
        returns: GuestlinkPathPage,
        platforms: Platforms::ALL,
        gated_as: ["guest-file-read"],
    }

    /// guestlink extension: the SHA-256 of a file's content, in hex, read in the guest:
    /// how `guestlink cp` checks a copy and `guestlink sync --checksum` compares files
    /// without moving them. Gated as `guest-file-read`.
    GuestlinkPathSha256 {
        name: "__org.guestlink_path-sha256",
        since: "guestlink 0.1",
        args: GuestlinkPathArgs,
        returns: String,
        platforms: Platforms::ALL,
        gated_as: ["guest-file-read"],
    }

    /// guestlink extension: watch a file or directory (inotify): each change comes as
    /// a `PATH_CHANGED` event to the hosts subscribed to it, until
    /// `__org.guestlink_path-unwatch` or until no host listens. Gated as
    /// `guest-file-read`.
    GuestlinkPathWatch {
        name: "__org.guestlink_path-watch",
        since: "guestlink 0.1",
        args: GuestlinkPathWatchArgs,
        returns: GuestlinkWatchId,
        platforms: Platforms::LINUX,
        gated_as: ["guest-file-read"],
    }

    /// guestlink extension: end a watch.
    GuestlinkPathUnwatch {
        name: "__org.guestlink_path-unwatch",
        since: "guestlink 0.1",
        args: GuestlinkWatchId,
        returns: Empty,
        platforms: Platforms::LINUX,
    }

    /// guestlink extension: create a directory, with its parents if asked (mkdir -p).
    /// Gated as `guest-file-write`.
    GuestlinkPathMkdir {
        name: "__org.guestlink_path-mkdir",
        since: "guestlink 0.1",
        args: GuestlinkPathMkdirArgs,
        returns: Empty,
        platforms: Platforms::ALL,
        gated_as: ["guest-file-write"],
    }

    /// guestlink extension: remove a file, a link or an empty directory; with
    /// `recursive`, a directory and everything in it, links never followed. `/` is
    /// refused. Gated as `guest-file-write`.
    GuestlinkPathRemove {
        name: "__org.guestlink_path-remove",
        since: "guestlink 0.1",
        args: GuestlinkPathRemoveArgs,
        returns: Empty,
        platforms: Platforms::ALL,
        gated_as: ["guest-file-write"],
    }

    /// guestlink extension: rename a path atomically (rename(2)), replacing what is at
    /// the new path. Gated as `guest-file-write`.
    GuestlinkPathRename {
        name: "__org.guestlink_path-rename",
        since: "guestlink 0.1",
        args: GuestlinkPathRenameArgs,
        returns: Empty,
        platforms: Platforms::ALL,
        gated_as: ["guest-file-write"],
    }

    /// guestlink extension: create a symbolic link. Gated as `guest-file-write`.
    GuestlinkPathSymlink {
        name: "__org.guestlink_path-symlink",
        since: "guestlink 0.1",
        args: GuestlinkPathSymlinkArgs,
        returns: Empty,
        platforms: Platforms::POSIX,
        gated_as: ["guest-file-write"],
    }

    /// guestlink extension: set a path's mode, owner and group (by name, as the guest's
    /// user database resolves it, or number) and times, whichever are given, in one
    /// call (what `cp -p` needs for each file). Gated as `guest-file-write`.
    GuestlinkPathSetAttributes {
        name: "__org.guestlink_path-set-attributes",
        since: "guestlink 0.1",
        args: GuestlinkPathSetAttributesArgs,
        returns: Empty,
        platforms: Platforms::ALL,
        gated_as: ["guest-file-write"],
    }

    /// guestlink extension: every installed package with its version and architecture,
    /// from dpkg's database or rpm's, sorted by name.
    GuestlinkGetPackages {
        name: "__org.guestlink_get-packages",
        since: "guestlink 0.1",
        args: Empty,
        returns: Vec<GuestlinkPackage>,
        platforms: Platforms::POSIX,
    }

    /// guestlink extension: grow the partition holding a mounted file system to the
    /// end of its disk (GPT or MBR, when the space after it is free) and then the file
    /// system (ext4 with resize2fs, xfs with xfs_growfs), as cloud images' growpart
    /// does. A file system already filling its device is left as it is.
    GuestlinkGrow {
        name: "__org.guestlink_grow",
        since: "guestlink 0.1",
        args: GuestlinkGrowArgs,
        returns: GuestlinkGrown,
        platforms: Platforms::LINUX,
    }

    /// guestlink extension: the service manager's units (systemd's `ListUnits`: those
    /// loaded, running or wanted; on Windows every Win32 service), sorted by name.
    GuestlinkServiceList {
        name: "__org.guestlink_service-list",
        since: "guestlink 0.1",
        args: Empty,
        returns: Vec<GuestlinkService>,
        platforms: Platforms::ALL,
    }

    /// guestlink extension: one unit's states, its unit file's state and its main
    /// process.
    GuestlinkServiceStatus {
        name: "__org.guestlink_service-status",
        since: "guestlink 0.1",
        args: GuestlinkServiceArgs,
        returns: GuestlinkService,
        platforms: Platforms::ALL,
    }

    /// guestlink extension: start, stop, restart, enable or disable a unit through
    /// systemd (on Windows a service through the service control manager: enabled is
    /// an automatic start, disabled a manual one), waiting for a start, stop or restart
    /// to finish. Only the units the policy's `[services]` table lists may be acted on
    /// (none by default).
    GuestlinkServiceControl {
        name: "__org.guestlink_service-control",
        since: "guestlink 0.1",
        args: GuestlinkServiceControlArgs,
        returns: GuestlinkService,
        platforms: Platforms::ALL,
    }

    /// guestlink extension: which of the named packages are installed, as
    /// `name-version` (dpkg) or `name-version-release` (rpm).
    GuestlinkGetApplications {
        name: "__org.guestlink_get-applications",
        since: "guestlink 0.1",
        args: GuestlinkApplicationsArgs,
        returns: Vec<String>,
        platforms: Platforms::POSIX,
    }

    /// guestlink extension: lock the screen of a session (the active one by default)
    /// through logind, whose `Lock` signal the session's screen locker acts on.
    GuestlinkSessionLock {
        name: "__org.guestlink_session-lock",
        since: "guestlink 0.1",
        args: SessionControlArgs,
        returns: Empty,
        platforms: Platforms::POSIX,
    }

    /// guestlink extension: end a session (the active one by default) through logind.
    GuestlinkSessionLogoff {
        name: "__org.guestlink_session-logoff",
        since: "guestlink 0.1",
        args: SessionControlArgs,
        returns: Empty,
        platforms: Platforms::POSIX,
    }

    /// guestlink extension: power down, halt or reboot after a grace delay, with a
    /// message broadcast to logged-in users. Replies once it is scheduled.
    GuestlinkShutdown {
        name: "__org.guestlink_shutdown",
        since: "guestlink 0.1",
        args: GuestlinkShutdownArgs,
        returns: Empty,
        platforms: Platforms::LINUX,
        gated_as: ["guest-shutdown"],
    }

    /// guestlink extension: run the hooks of a lifecycle event (the executables of
    /// `lifecycle/EVENT/` in the actions directories, in name order) and report how
    /// each ran.
    GuestlinkLifecycleEvent {
        name: "__org.guestlink_lifecycle-event",
        since: "guestlink 0.1",
        args: LifecycleEventArgs,
        returns: Vec<HookResult>,
        platforms: Platforms::POSIX,
    }

    /// guestlink extension: run an action, an executable the administrator put in the
    /// actions directories (argv, no shell; a time limit; output capped). The gate
    /// checks `action:NAME` and what the action declares it needs, as for `guest-exec`.
    GuestlinkActionRun {
        name: "__org.guestlink_action-run",
        since: "guestlink 0.1",
        args: ActionRunArgs,
        returns: ActionResult,
        platforms: Platforms::POSIX,
    }

    /// guestlink extension: the actions there are, with what each needs and whether
    /// the gate lets the caller run it.
    GuestlinkActionList {
        name: "__org.guestlink_action-list",
        since: "guestlink 0.1",
        args: Empty,
        returns: Vec<ActionInfo>,
        platforms: Platforms::POSIX,
    }

    /// guestlink extension: single sign-on. The credentials are offered for 5 s to one
    /// root-owned greeter plugin that presents the token announced on the system bus
    /// (oVirt's `org.ovirt.vdsm.Credentials` protocol); never logged.
    GuestlinkCredentialsHandoff {
        name: "__org.guestlink_credentials-handoff",
        since: "guestlink 0.1",
        args: CredentialsArgs,
        returns: CredentialsHandoff,
        platforms: Platforms::LINUX,
    }
}

/// The declaration of the command with this wire name.
pub fn find(name: &str) -> Option<&'static CommandInfo> {
    ALL_COMMANDS.iter().find(|c| c.meta.name == name)
}

/// The run-time declaration of the command with this wire name.
pub fn find_meta(name: &str) -> Option<&'static CommandMeta> {
    COMMAND_METAS.iter().find(|c| c.name == name)
}

/// The whole vocabulary as a JSON document: each command with its metadata and the JSON
/// Schema of its arguments and result; named types under `$defs`.
pub fn schema_document(version: &str) -> serde_json::Value {
    let mut defs = serde_json::Map::new();
    let mut commands = serde_json::Map::new();
    for info in ALL_COMMANDS {
        let c = &info.meta;
        let args = (info.args)().to_json_schema(&mut defs);
        let returns = (info.returns)().to_json_schema(&mut defs);
        commands.insert(
            c.name.to_string(),
            serde_json::json!({
                "description": info.doc.trim(),
                "since": info.since,
                "success-response": c.success_response,
                "platforms": c.platforms.names(),
                "scope": c.scope.as_str(),
                "arguments": args,
                "returns": returns,
            }),
        );
        if let Some(p) = c.payload.as_str() {
            commands[c.name]["payload"] = serde_json::Value::from(p);
        }
        if !c.gated_as.is_empty() {
            commands[c.name]["gated-as"] = serde_json::Value::from(c.gated_as.to_vec());
        }
    }
    let mut events = serde_json::Map::new();
    for e in crate::events::ALL_EVENTS {
        let data = (e.data)().to_json_schema(&mut defs);
        events.insert(
            e.name.to_string(),
            serde_json::json!({"description": e.doc.trim(), "data": data}),
        );
    }
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "guestlink command vocabulary",
        "version": version,
        "commands": commands,
        "events": events,
        "$defs": defs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{ArgError, Path};
    use serde_json::json;

    fn args<T: FromArg>(v: serde_json::Value) -> Result<T, String> {
        let serde_json::Value::Object(m) = v else {
            unreachable!()
        };
        parse_args::<T>(m).map_err(|e: ArgError| e.to_string())
    }

    #[test]
    fn qemu_argument_texts() {
        assert_eq!(
            args::<Empty>(json!({"foo":42})).unwrap_err(),
            "Parameter 'foo' is unexpected"
        );
        assert_eq!(
            args::<GuestSyncArgs>(json!({})).unwrap_err(),
            "Parameter 'id' is missing"
        );
        assert_eq!(
            args::<GuestSyncArgs>(json!({"foo":1})).unwrap_err(),
            "Parameter 'id' is missing"
        );
        for bad in [
            json!("abc"),
            json!(1.5),
            json!(1e3),
            json!(null),
            json!(9223372036854775808u64),
        ] {
            assert_eq!(
                args::<GuestSyncArgs>(json!({ "id": bad })).unwrap_err(),
                "Invalid parameter type for 'id', expected: integer"
            );
        }
        assert_eq!(args::<GuestSyncArgs>(json!({"id":-5})).unwrap().id, -5);
    }

    #[test]
    fn nested_paths() {
        let e = Vec::<GuestAgentCommandInfo>::from_arg(
            json!([{"name":"a","enabled":true,"success-response":true},{"name":"b","enabled":1}]),
            &Path::Root.member("cmds"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid parameter type for 'cmds[1].enabled', expected: boolean"
        );
    }

    #[test]
    fn optional_members_are_left_out() {
        let tz = GuestTimezone {
            zone: None,
            offset: 3600,
        };
        assert_eq!(serde_json::to_value(&tz).unwrap(), json!({"offset": 3600}));
    }

    #[test]
    fn no_reply_flag_and_uniqueness() {
        let mut names: Vec<_> = ALL_COMMANDS.iter().map(|c| c.meta.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL_COMMANDS.len());
        assert!(find("guest-ping").unwrap().meta.success_response);
        // The agent's own table has the same commands, in the same order.
        let metas: Vec<_> = COMMAND_METAS.iter().map(|c| c.name).collect();
        let all: Vec<_> = ALL_COMMANDS.iter().map(|c| c.meta.name).collect();
        assert_eq!(metas, all);
    }

    #[test]
    fn schema_document_describes_arguments() {
        let doc = schema_document("test");
        assert_eq!(
            doc["commands"]["guest-sync"]["arguments"],
            json!({"$ref": "#/$defs/q_obj_guest-sync-arg"})
        );
        assert_eq!(
            doc["$defs"]["q_obj_guest-sync-arg"]["required"],
            json!(["id"])
        );
        assert_eq!(
            doc["$defs"]["GuestAgentInfo"]["properties"]["supported_commands"]["type"],
            "array"
        );
        // Bulk commands say which side carries raw bytes; plain ones say nothing.
        assert_eq!(
            doc["commands"]["__org.guestlink_file-read-raw"]["payload"],
            "reply"
        );
        assert_eq!(
            doc["commands"]["__org.guestlink_file-write-raw"]["payload"],
            "request"
        );
        assert!(doc["commands"]["guest-file-read"].get("payload").is_none());
    }
}
