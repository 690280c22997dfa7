//! Human-readable renderings of agent results.

use std::fmt::Write;

use guestlink_vocabulary::types::{GuestAgentInfo, GuestOSInfo, GuestUser};

/// `guest-info` as a table.
pub fn info(info: &GuestAgentInfo) -> String {
    let mut s = format!(
        "agent version {}, {} commands\n",
        info.version,
        info.supported_commands.len()
    );
    let width = info
        .supported_commands
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    let _ = writeln!(s, "  {:width$}  ENABLED  REPLIES", "COMMAND");
    let mut cmds = info.supported_commands.clone();
    cmds.sort_by(|a, b| a.name.cmp(&b.name));
    for c in cmds {
        let yes = |b: bool| if b { "yes" } else { "no" };
        let _ = writeln!(
            s,
            "  {:width$}  {:7}  {}",
            c.name,
            yes(c.enabled),
            yes(c.success_response)
        );
    }
    s
}

/// `guest-get-osinfo` on one line.
pub fn os(os: &GuestOSInfo) -> String {
    let name = os
        .pretty_name
        .clone()
        .or_else(|| os.name.clone())
        .unwrap_or_else(|| "unknown OS".into());
    format!(
        "{name} (kernel {} {})",
        os.kernel_release.as_deref().unwrap_or("?"),
        os.machine.as_deref().unwrap_or("?")
    )
}

/// `guest-get-users` as a list.
pub fn users(users: &[GuestUser]) -> String {
    if users.is_empty() {
        return "nobody logged in".into();
    }
    users
        .iter()
        .map(|u| format!("{} (since {})", u.user, u.login_time as i64))
        .collect::<Vec<_>>()
        .join(", ")
}
