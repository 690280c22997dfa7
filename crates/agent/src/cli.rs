//! The command line: qemu-ga's options, spelled as qemu-ga spells them, plus
//! guestlink's `--channel`.

use std::path::PathBuf;

use clap::Parser;

/// guestlinkd — the guestlink guest agent (drop-in replacement for qemu-ga).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "guestlinkd",
    disable_version_flag = true,
    override_usage = "guestlinkd [-m <method> -p <path>] [<options>]",
    after_help = "With no -m, -p or --channel, every known port under /dev/virtio-ports/ is served.",
    after_long_help = "With no -m, -p or --channel, every known port under /dev/virtio-ports/ is served.\n\
\n\
The shipped policy (/usr/lib/guestlink/policy.d/50-default.toml) allows on QGA channels \
all that qemu-ga has, guest-exec included (as Debian's qemu-guest-agent). The SPICE \
channel gets only the clipboard, file drops and the display layout; the oVirt channel \
vdsm's reports and the oVirt desktop commands; org.guestlink.exporter.0 what guestlink \
exporter reads. /usr/share/doc/guestlink/examples/policy.d/55-no-exec.toml turns \
running programs off. A refusal is logged once, with its rule; --explain command=NAME \
says what the gate decides.\n\
\n\
Limits. A refusal names its limit in the protocol's error and in the log.\n\
- guest-clients: 64 connections to the guest socket, and guest-clients-reserved: 16 \
more for root and users with a session; guest-clients-per-user: 8 for any other user.\n\
- guest-message-bytes: 4 MiB per message from a guest client; a registered session \
agent may send up to 85 MiB (a 64 MiB clipboard in base64).\n\
- partial-message-bytes: 256 MiB held in messages not yet complete, for all clients of \
the guest socket and of unix-listen/vsock-listen channels together; \
partial-message-bytes-per-user: 96 MiB for one guest user (a session agent's largest \
message and more). Raw payloads of bulk transfer count too. A client past either is \
told so and closed.\n\
- guest-idle-timeout: 120 s ($GUESTLINK_GUEST_IDLE_TIMEOUT) of silence closes a guest \
client with no event subscription, session agent or running request. A client that \
closes frees its place and withdraws its waiting requests.\n\
- pending-requests: 256 requests waiting for another party; \
pending-requests-per-user: 32 for one guest user, and 32 kept for root and the host.\n\
- listen-clients: 16 connections to one unix-listen or vsock-listen channel.\n\
- file-handles: 1024; exec-processes: 256 not yet collected; exec output: 16 MiB per \
stream (as qemu-ga) and exec-output-total: 256 MiB for all uncollected children.\n\
\n\
Session agents: without a session source (--sessions none) only root, a \
--session-user and the user logged in on a local seat (utmp) may register one, and the \
first user's agent keeps the host's clipboard and file drops until it leaves.\n\
\n\
The host can run code without running programs: through guest-file-open/write as \
root, guest-ssh-add-authorized-keys or guest-set-user-password. A policy file's \
[files] table (read = [...], write = [...]) confines guest-file-open to the listed \
directories."
)]
pub struct Cli {
    /// Configuration file (default /etc/qemu/qemu-ga.conf, or $QGA_CONF).
    #[arg(short = 'c', long = "config", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Transport method: virtio-serial (the default), isa-serial, unix-listen, vsock-listen.
    #[arg(short = 'm', long = "method", value_name = "METHOD")]
    pub method: Option<String>,

    /// Device or socket path (vsock: CID:PORT).
    #[arg(short = 'p', long = "path", value_name = "PATH")]
    pub path: Option<String>,

    /// Log to this file (appended) instead of standard error.
    #[arg(short = 'l', long = "logfile", value_name = "PATH")]
    pub logfile: Option<PathBuf>,

    /// PID file, written when daemonizing (default /var/run/qemu-ga.pid).
    #[arg(short = 'f', long = "pidfile", value_name = "PATH")]
    pub pidfile: Option<PathBuf>,

    /// Run a hook script around freeze and thaw (default /etc/qemu/fsfreeze-hook).
    #[arg(short = 'F', long = "fsfreeze-hook", value_name = "PATH", num_args = 0..=1,
          require_equals = true, default_missing_value = "/etc/qemu/fsfreeze-hook")]
    pub fsfreeze_hook: Option<PathBuf>,

    /// Thaw frozen filesystems automatically after this many seconds (beyond qemu-ga).
    #[arg(long = "fsfreeze-timeout", value_name = "SECONDS")]
    pub fsfreeze_timeout: Option<u64>,

    /// Directory for state files (default /var/run).
    #[arg(short = 't', long = "statedir", value_name = "DIR")]
    pub statedir: Option<PathBuf>,

    /// Log everything, including each chunk read from the channel.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Print the version and exit.
    #[arg(short = 'V', long = "version")]
    pub version: bool,

    /// Become a daemon.
    #[arg(short = 'd', long = "daemonize")]
    pub daemonize: bool,

    /// Commands to disable, comma-separated ("help" lists all commands).
    #[arg(short = 'b', long = "block-rpcs", value_name = "LIST")]
    pub block_rpcs: Vec<String>,

    /// Commands to allow, all others disabled, comma-separated ("help" lists all).
    #[arg(short = 'a', long = "allow-rpcs", value_name = "LIST")]
    pub allow_rpcs: Vec<String>,

    /// Print the effective configuration and exit.
    #[arg(short = 'D', long = "dump-conf")]
    pub dump_conf: bool,

    /// Keep retrying to open the channel when it is missing or fails.
    #[arg(short = 'r', long = "retry-path")]
    pub retry_path: bool,

    /// Windows service control (not available on this platform).
    #[arg(short = 's', long = "service", value_name = "CMD")]
    pub service: Option<String>,

    /// Serve a channel: PROTOCOL=METHOD:PATH, e.g. qga=unix-listen:/run/qga.sock.
    /// Protocols: qga, vdagent, ovirt. Repeatable.
    #[arg(long = "channel", value_name = "SPEC")]
    pub channel: Vec<String>,

    /// The guest-side socket for programs in the guest (default
    /// /run/guestlink/agent.sock; "none" turns it off).
    #[arg(
        long = "guest-socket",
        value_name = "PATH",
        env = "GUESTLINK_GUEST_SOCKET"
    )]
    pub guest_socket: Option<String>,

    /// Where user sessions come from: logind (default when systemd runs), none, or
    /// file:PATH (a JSON list of sessions, re-read when it changes; for tests and for
    /// systems without logind).
    #[arg(long = "sessions", value_name = "SOURCE")]
    pub sessions: Option<String>,

    /// A user who may register a session agent when there is no session source (with
    /// --sessions none the newest session agent gets the host's clipboard and file
    /// drops, so only root, these users and the user logged in on a local seat may
    /// register). Names or uids; repeatable, or comma-separated.
    #[arg(long = "session-user", value_name = "USER")]
    pub session_users: Vec<String>,

    /// What to do when the host hot-adds CPUs or memory: online (bring them online
    /// and report CPU_ADDED / MEMORY_ADDED; the default), report (only report), or off
    /// (do not listen for device events; no DISK_RESIZED either).
    #[arg(long = "hotplug", value_name = "MODE")]
    pub hotplug: Option<String>,

    /// Grow the partitions and file systems of a disk the host resized, as
    /// `guestlink grow` does (off by default; DISK_RESIZED is reported either way).
    #[arg(long = "grow-on-resize")]
    pub grow_on_resize: bool,

    /// Where a SPICE host's pointer goes: uinput (a virtual tablet; the default),
    /// record:PATH (each event appended to PATH as a `type code value` line), or none
    /// (the mouse capability is not announced, so the host keeps its own pointer).
    #[arg(long = "pointer", value_name = "BACKEND")]
    pub pointer: Option<String>,

    /// Where files a SPICE client drops go: xdg-download (the active user's download
    /// directory, the default), xdg-desktop, or an absolute directory.
    #[arg(long = "transfer-dir", value_name = "DIR")]
    pub transfer_dir: Option<String>,

    /// The ed25519 public key updates must be signed with (`guestlink update`); when the
    /// file does not exist, updates are checked by SHA-256 only. Default
    /// /etc/guestlink/update.pub.
    #[arg(long = "update-key", value_name = "PATH")]
    pub update_key: Option<PathBuf>,

    /// Seconds a new agent has after an update to come up before the old one is put
    /// back (default 30).
    #[arg(long = "update-trial", value_name = "SECS")]
    pub update_trial: Option<u64>,

    /// Internal: watch over an update in flight (the old executable, started by the
    /// agent it replaces), rolling back when the new agent does not confirm.
    #[arg(long = "update-guard", value_name = "STATEDIR", hide = true)]
    pub update_guard: Option<PathBuf>,

    /// Directories of host-invokable actions and hooks, in override order (a file in a
    /// later one replaces the same-named file of an earlier one; a link to /dev/null
    /// disables it). Repeatable; default /usr/lib/guestlink/actions.d then
    /// /etc/guestlink/actions.d.
    #[arg(long = "actions-dir", value_name = "DIR")]
    pub actions_dirs: Vec<PathBuf>,

    /// Directories of policy files (*.toml), in override order. Repeatable; default
    /// /usr/lib/guestlink/policy.d then /etc/guestlink/policy.d.
    #[arg(long = "policy-dir", value_name = "DIR")]
    pub policy_dirs: Vec<PathBuf>,

    /// Print the effective configuration, with the policy's files and rules in order,
    /// and exit.
    #[arg(long = "dump-config")]
    pub dump_config: bool,

    /// Check the configuration and the policy files, report the first error with its
    /// file and line (exit status 1), and exit.
    #[arg(long = "check-config")]
    pub check_config: bool,

    /// Say what the gate would do with a call, and exit: command=NAME[,channel=
    /// PROTOCOL-OR-NAME][,uid=N][,session=ID][,active=ID][,locked][,frozen]. Repeatable.
    #[arg(long = "explain", value_name = "CALL")]
    pub explain: Vec<String>,

    /// Seconds between oVirt heartbeats (default 5).
    #[arg(long = "ovirt-heartbeat", value_name = "SECONDS")]
    pub ovirt_heartbeat: Option<u64>,

    /// Packages the oVirt channel reports as applications, comma-separated.
    #[arg(long = "ovirt-applications", value_name = "LIST")]
    pub ovirt_applications: Vec<String>,
}

/// Splits qemu-ga list options; both `,` and GLib's `;` separate names.
pub fn split_list(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split([',', ';']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}
