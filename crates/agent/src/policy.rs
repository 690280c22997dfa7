//! The gate's rules as configured: the policy files of the drop-in directories
//! (`--policy-dir`, or `/usr/lib/guestlink/policy.d` then `/etc/guestlink/policy.d`),
//! then qemu-ga's `-a`/`-b` lists (command line and key file). Built at start, checked
//! by `--check-config`, printed by `--dump-config`, and built again on SIGHUP.

use std::path::PathBuf;

use guestlink_core::policy::file::{self, Names, PolicyError};
use guestlink_core::Policy;
use guestlink_vocabulary::commands::COMMAND_METAS;

use crate::config::Config;

/// The policy directories in effect.
pub fn dirs(config: &Config) -> Vec<PathBuf> {
    config
        .policy_dirs
        .clone()
        .unwrap_or_else(file::default_dirs)
}

/// The uid of a user named in a policy file.
#[cfg(unix)]
fn user_id(name: &str) -> Option<u32> {
    guestlink_core::os::users::by_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid)
}

/// Windows has no uids: rules naming users match nobody.
#[cfg(not(unix))]
fn user_id(_name: &str) -> Option<u32> {
    None
}

/// The policy `config` describes.
pub fn build(config: &Config) -> Result<Policy, PolicyError> {
    let commands: Vec<&str> = COMMAND_METAS.iter().map(|c| c.name).collect();
    let user = |name: &str| user_id(name);
    let names = Names {
        commands: &commands,
        user: &user,
    };
    let mut policy = Policy::from_files(file::load(&dirs(config), &names)?);
    policy.add_lists(config.allow_rpcs.clone(), config.block_rpcs.clone());
    Ok(policy)
}

/// The policy for `--dump-config`: its files and every rule in order.
pub fn dump(config: &Config, policy: &Policy) -> String {
    let mut s = String::from("\n[policy]\n");
    let dirs = dirs(config);
    let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    s.push_str(&format!("# directories: {}\n", shown.join(" ")));
    for f in file::files(&dirs) {
        s.push_str(&format!("# file: {}\n", f.display()));
    }
    if policy.rules().is_empty() {
        s.push_str("# no rules: every command is allowed (as qemu-ga without -a/-b)\n");
    }
    for (i, r) in policy.rules().iter().enumerate() {
        s.push_str(&format!("rule{}={}\n", i + 1, r.describe()));
    }
    match policy.file_scope() {
        None => s.push_str("# files: no [files] scope; guest-file-open reaches every file\n"),
        Some(scope) => {
            let join = |l: &[std::path::PathBuf]| {
                l.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(";")
            };
            s.push_str(&format!("files-read={}\n", join(&scope.read)));
            s.push_str(&format!("files-write={}\n", join(&scope.write)));
        }
    }
    s
}

/// What the gate would do with a call described as `command=NAME,channel=PROTOCOL-OR-
/// NAME,uid=N,session=ID,active=ID,locked,frozen` (only `command` is required; `uid` makes
/// the caller a guest program, on `guest-socket` unless a channel is given): one line,
/// `allow` or `deny (REASON)`.
pub fn explain(policy: &Policy, spec: &str) -> Result<String, String> {
    use guestlink_core::call::{Caller, Protocol};
    use guestlink_core::policy::{Decision, Facts};
    let (mut command, mut channel, mut uid, mut session, mut active) =
        (None, None, None, None, None);
    let (mut locked, mut frozen) = (false, false);
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        match k {
            "command" => command = Some(v),
            "channel" => channel = Some(v),
            "uid" => uid = Some(v.parse::<u32>().map_err(|_| format!("bad uid '{v}'"))?),
            "session" => session = Some(v),
            "active" => active = Some(v),
            "frozen" => frozen = v.is_empty() || v == "true",
            "locked" => locked = v.is_empty() || v == "true",
            _ => return Err(format!("unknown key '{k}' in '{spec}'")),
        }
    }
    let command = command.ok_or(format!("'{spec}' names no command"))?;
    let channel = channel.unwrap_or(if uid.is_some() { "guest-socket" } else { "qga" });
    let protocol = Protocol::parse(channel).unwrap_or(Protocol::Qga);
    let facts = Facts {
        command,
        protocol,
        channel,
        caller: match uid {
            Some(uid) => Caller::Guest { uid, pid: 0 },
            None => Caller::Host,
        },
        session,
        active_session: active,
        locked,
        frozen,
    };
    Ok(match policy.decide(&facts) {
        Decision::Allow => format!("{spec}: allow"),
        Decision::Deny(r) => format!("{spec}: deny ({})", r.as_str()),
    })
}
