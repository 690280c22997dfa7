//! The cases, in execution order, and what they need from the target.
//!
//! - [`qemu`]: QEMU's own agent tests, T01–T29 and the exit check.
//! - [`observed`]: behaviour real clients depend on, X1–X22, and the argument sweep.
//! - [`ssh`]: the SSH key tests S1–S6, which change the guest.

pub mod observed;
pub mod qemu;
pub mod ssh;

use std::path::Path;

use serde_json::Value;

use crate::conn::Conn;
use crate::launcher::Launcher;
use crate::Failure;

/// What a case needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Runs on the connection shared by the suite, in order.
    Shared,
    /// Runs on the shared connection but changes the guest.
    Guest,
    /// Starts its own agent instance(s).
    Own,
    /// The shared instance's exit status on SIGTERM.
    Exit,
}

/// What a case gets to work with.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The shared connection (not for [`Kind::Own`] cases).
    pub conn: Option<&'a mut Conn>,
    /// Starts instances, when the suite started the agent itself.
    pub launcher: Option<&'a Launcher>,
    /// The shared instance's working and state directory, when it is local.
    pub workdir: Option<&'a Path>,
    /// The account whose SSH keys [`Kind::Guest`] cases may change.
    pub ssh_user: Option<&'a str>,
    /// The agent runs on Windows (`guest-get-osinfo` says `mswindows`): the exec cases
    /// run `cmd` instead of POSIX tools, and expect Windows' semantics (no `merged`).
    pub windows: bool,
}

impl Ctx<'_> {
    /// The shared connection.
    pub fn conn(&mut self) -> Result<&mut Conn, Failure> {
        self.conn
            .as_deref_mut()
            .ok_or_else(|| Failure("no shared connection".into()))
    }

    /// The launcher.
    pub fn launcher(&self) -> Result<&Launcher, Failure> {
        self.launcher
            .ok_or_else(|| Failure("needs an agent the suite starts".into()))
    }
}

/// One case.
#[derive(Debug)]
pub struct Case {
    /// Short id: T01, X13, S3, A1.
    pub id: &'static str,
    /// Name (QEMU's test path where there is one).
    pub name: &'static str,
    /// What it needs.
    pub kind: Kind,
    /// The check.
    pub run: fn(&mut Ctx<'_>) -> Result<(), Failure>,
}

macro_rules! case {
    ($id:literal, $name:literal, $kind:ident, $f:path) => {
        Case {
            id: $id,
            name: $name,
            kind: Kind::$kind,
            run: $f,
        }
    };
}

/// Every case, in execution order.
pub static ALL: &[Case] = &[
    case!("T01", "/qga/sync-delimited", Shared, qemu::sync_delimited),
    case!("T02", "/qga/sync", Shared, qemu::sync),
    case!("T03", "/qga/ping", Shared, qemu::ping),
    case!("T04", "/qga/info", Shared, qemu::info),
    case!(
        "T05",
        "/qga/network-get-interfaces",
        Shared,
        qemu::network_get_interfaces
    ),
    case!("T06", "/qga/get-vcpus", Shared, qemu::get_vcpus),
    case!("T07", "/qga/get-fsinfo", Shared, qemu::get_fsinfo),
    case!("T08", "/qga/get-load", Shared, qemu::get_load),
    case!(
        "T09",
        "/qga/get-memory-block-info",
        Shared,
        qemu::get_memory_block_info
    ),
    case!(
        "T10",
        "/qga/get-memory-blocks",
        Shared,
        qemu::get_memory_blocks
    ),
    case!("T11", "/qga/file-ops", Shared, qemu::file_ops),
    case!("T12", "/qga/file-write-read", Shared, qemu::file_write_read),
    case!("T13", "/qga/get-time", Shared, qemu::get_time),
    case!("T14", "/qga/id", Shared, qemu::id),
    case!("T15", "/qga/invalid-oob", Shared, qemu::invalid_oob),
    case!("T16", "/qga/invalid-cmd", Shared, qemu::invalid_cmd),
    case!("T17", "/qga/invalid-args", Shared, qemu::invalid_args),
    case!("T18", "/qga/fsfreeze-status", Shared, qemu::fsfreeze_status),
    case!("T22", "/qga/guest-exec", Shared, qemu::guest_exec),
    case!(
        "T23",
        "/qga/guest-exec-separated",
        Shared,
        qemu::guest_exec_separated
    ),
    case!(
        "T24",
        "/qga/guest-exec-merged",
        Shared,
        qemu::guest_exec_merged
    ),
    case!(
        "T25",
        "/qga/guest-exec-invalid",
        Shared,
        qemu::guest_exec_invalid
    ),
    case!(
        "T27",
        "/qga/guest-get-host-name",
        Shared,
        qemu::get_host_name
    ),
    case!("T28", "/qga/guest-get-timezone", Shared, qemu::get_timezone),
    case!("T29", "/qga/guest-get-users", Shared, qemu::get_users),
    case!("X1", "string id echoed", Shared, observed::x1_string_id),
    case!(
        "X2",
        "structured id echoed",
        Shared,
        observed::x2_structured_id
    ),
    case!(
        "X3",
        "id echoed on errors",
        Shared,
        observed::x3_id_on_error
    ),
    case!(
        "X4",
        "two requests in one write",
        Shared,
        observed::x4_pipelined
    ),
    case!(
        "X5",
        "request split across writes",
        Shared,
        observed::x5_split
    ),
    case!("X6", "non-object input", Shared, observed::x6_not_object),
    case!("X7", "missing execute", Shared, observed::x7_no_execute),
    case!(
        "X8",
        "unexpected envelope member",
        Shared,
        observed::x8_extra_member
    ),
    case!(
        "X9",
        "arguments not an object",
        Shared,
        observed::x9_bad_arguments
    ),
    case!("X10", "lexical error", Shared, observed::x10_garbage),
    case!(
        "X11",
        "missing argument",
        Shared,
        observed::x11_missing_argument
    ),
    case!(
        "X12",
        "argument of the wrong type",
        Shared,
        observed::x12_wrong_type
    ),
    case!(
        "X13",
        "0xFF precedes the delimited reply",
        Shared,
        observed::x13_delimited_bytes
    ),
    case!(
        "X14",
        "recovery after a partial request",
        Shared,
        observed::x14_recovery
    ),
    case!(
        "X15",
        "nesting depth 1000 accepted",
        Shared,
        observed::x15_depth_ok
    ),
    case!(
        "X16",
        "nesting depth 1100 refused",
        Shared,
        observed::x16_depth_refused
    ),
    case!(
        "X17",
        "file read count above 48 MiB",
        Shared,
        observed::x17_read_limit
    ),
    case!(
        "X18",
        "exec status reaped once",
        Shared,
        observed::x18_exec_reaped
    ),
    case!(
        "X19",
        "guest-info is truthful",
        Shared,
        observed::x19_info_truthful
    ),
    case!(
        "X20",
        "shutdown with a bad mode",
        Shared,
        observed::x20_shutdown_bad_mode
    ),
    case!(
        "A1",
        "argument errors for every command",
        Shared,
        observed::a1_argument_sweep
    ),
    case!("S1", "ssh: invalid user", Guest, ssh::s1_invalid_user),
    case!("S2", "ssh: invalid key", Guest, ssh::s2_invalid_key),
    case!("S3", "ssh: add keys", Guest, ssh::s3_add_keys),
    case!("S4", "ssh: add with reset", Guest, ssh::s4_reset),
    case!("S5", "ssh: remove keys", Guest, ssh::s5_remove),
    case!("S6", "ssh: get keys", Guest, ssh::s6_get),
    case!(
        "T30",
        "SIGTERM ends the shared instance with status 0",
        Exit,
        qemu::unused
    ),
    case!("T19", "/qga/blockedrpcs", Own, qemu::blocked_rpcs),
    case!("T20", "/qga/allowedrpcs", Own, qemu::allowed_rpcs),
    case!("T21", "/qga/config", Own, qemu::config),
    case!("T26", "/qga/guest-get-osinfo", Own, qemu::get_osinfo),
    case!(
        "X21",
        "a second client while the first is connected",
        Own,
        observed::x21_second_client
    ),
    case!(
        "X22",
        "an allow list without guest-sync",
        Own,
        observed::x22_allow_without_sync
    ),
    case!(
        "X23",
        "frozen at start: the safe set only, qemu-ga's frozen-state text, thaw clears it",
        Own,
        observed::x23_frozen_state
    ),
];

/// A random unsigned 32-bit number (QEMU's tests use g_random_int).
pub fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}

/// A member of an object, or a failure naming it.
pub fn member<'v>(v: &'v Value, name: &str) -> Result<&'v Value, Failure> {
    v.get(name)
        .ok_or_else(|| Failure(format!("member '{name}' missing in {v}")))
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding. The suite has its own (small, slow) codec so that it
/// does not trust the code of the agent it checks.
pub fn base64_encode(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let mut b = [0u8; 3];
        b[..chunk.len()].copy_from_slice(chunk);
        let v = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        for i in 0..4 {
            s.push(if i <= chunk.len() {
                BASE64[(v >> (18 - 6 * i)) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    s
}

/// Decodes standard base64.
pub fn base64(v: &Value) -> Result<Vec<u8>, Failure> {
    let s = v
        .as_str()
        .ok_or_else(|| Failure(format!("not a string: {v}")))?;
    let rank = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut v = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            v |= rank(c).ok_or_else(|| Failure(format!("bad base64 in {s:.40}")))? << (18 - 6 * i);
        }
        out.extend_from_slice(&v.to_be_bytes()[1..chunk.len()]);
    }
    Ok(out)
}
