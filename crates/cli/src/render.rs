//! Human-readable renderings of agent results.

use std::fmt::Write;

use guestlink_vocabulary::types::{
    GuestAgentInfo, GuestFilesystemInfo, GuestNetworkInterface, GuestOSInfo, GuestUser,
};

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

/// Bytes in binary units.
pub fn bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", units[i])
}

/// A filesystem on one line: mount point, type, device, usage, disks.
pub fn filesystem(fs: &GuestFilesystemInfo) -> String {
    let usage = match (fs.used_bytes, fs.total_bytes) {
        (Some(u), Some(t)) => format!(", {} of {} used", bytes(u), bytes(t)),
        _ => String::new(),
    };
    let disks: Vec<String> = fs
        .disk
        .iter()
        .map(|d| {
            let p = &d.pci_controller;
            format!(
                "{} {} at pci {:04x}:{:02x}:{:02x}.{:x}",
                d.dev.as_deref().unwrap_or("?"),
                d.bus_type.as_str(),
                p.domain,
                p.bus,
                p.slot,
                p.function
            )
        })
        .collect();
    let on = if disks.is_empty() {
        String::new()
    } else {
        format!(" on {}", disks.join(", "))
    };
    format!("{} {} ({}){usage}{on}", fs.mountpoint, fs.type_, fs.name)
}

/// A network interface on one line: name, MAC, addresses.
pub fn interface(nic: &GuestNetworkInterface) -> String {
    let addrs: Vec<String> = nic
        .ip_addresses
        .iter()
        .flatten()
        .map(|a| format!("{}/{}", a.ip_address, a.prefix))
        .collect();
    format!(
        "{} {} {}",
        nic.name,
        nic.hardware_address.as_deref().unwrap_or("-"),
        addrs.join(" ")
    )
    .trim_end()
    .to_string()
}
