//! Human-readable renderings of agent results.

use std::fmt::Write;

use guestlink_vocabulary::types::{
    GuestAgentInfo, GuestFilesystemInfo, GuestNetworkInterface, GuestOSInfo, GuestUser,
    GuestlinkPackage,
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

/// `guest-get-osinfo` as `key: value` lines.
pub fn osinfo(os: &GuestOSInfo) -> String {
    let rows = [
        ("name", &os.pretty_name),
        ("id", &os.id),
        ("version", &os.version),
        ("variant", &os.variant),
        ("kernel", &os.kernel_release),
        ("kernel build", &os.kernel_version),
        ("machine", &os.machine),
    ];
    rows.iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k:13} {v}\n")))
        .collect()
}

/// A time in nanoseconds since the epoch, as UTC `YYYY-MM-DD HH:MM:SS.mmm`.
pub fn utc(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let ms = ns.rem_euclid(1_000_000_000) / 1_000_000;
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{ms:03} UTC",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    )
}

/// Rows under a header, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            width[i] = width[i].max(cell.len());
        }
    }
    let mut s = String::new();
    let mut line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:w$}", w = width[i]))
            .collect();
        let _ = writeln!(s, "{}", text.join("  ").trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    s
}

/// `guest-get-users` as a table.
pub fn user_table(users: &[GuestUser]) -> String {
    if users.is_empty() {
        return "nobody logged in\n".into();
    }
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| vec![u.user.clone(), utc((u.login_time * 1e9) as i64)])
        .collect();
    table(&["USER", "LOGGED IN SINCE"], &rows)
}

/// `__org.guestlink_get-packages` as a table.
pub fn package_table(list: &[GuestlinkPackage]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|p| vec![p.name.clone(), p.version.clone(), p.arch.clone()])
        .collect();
    table(&["NAME", "VERSION", "ARCH"], &rows)
}

/// The units of `__org.guestlink_service-list` as a table, as systemctl lists them.
pub fn service_table(list: &[guestlink_vocabulary::types::GuestlinkService]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|u| {
            vec![
                u.unit.clone(),
                u.load_state.clone(),
                u.active_state.clone(),
                u.sub_state.clone(),
                u.description.clone(),
            ]
        })
        .collect();
    table(&["UNIT", "LOAD", "ACTIVE", "SUB", "DESCRIPTION"], &rows)
}

/// `guest-network-get-interfaces` as a table.
pub fn interface_table(nics: &[GuestNetworkInterface]) -> String {
    let rows: Vec<Vec<String>> = nics
        .iter()
        .map(|n| {
            let addrs: Vec<String> = n
                .ip_addresses
                .iter()
                .flatten()
                .map(|a| format!("{}/{}", a.ip_address, a.prefix))
                .collect();
            let (rx, tx) = n
                .statistics
                .as_ref()
                .map(|s| (bytes(s.rx_bytes), bytes(s.tx_bytes)))
                .unwrap_or_default();
            vec![
                n.name.clone(),
                n.hardware_address.clone().unwrap_or_else(|| "-".into()),
                addrs.join(" "),
                rx,
                tx,
            ]
        })
        .collect();
    table(&["NAME", "MAC", "ADDRESSES", "RX", "TX"], &rows)
}

/// `guest-get-fsinfo` as a table.
pub fn filesystem_table(fs: &[GuestFilesystemInfo]) -> String {
    let rows: Vec<Vec<String>> = fs
        .iter()
        .map(|f| {
            let disks: Vec<String> = f
                .disk
                .iter()
                .map(|d| {
                    let p = &d.pci_controller;
                    format!(
                        "{} {} {:04x}:{:02x}:{:02x}.{:x} {}:{}:{}",
                        d.dev.as_deref().unwrap_or("?"),
                        d.bus_type.as_str(),
                        p.domain,
                        p.bus,
                        p.slot,
                        p.function,
                        d.bus,
                        d.target,
                        d.unit
                    )
                })
                .collect();
            vec![
                f.mountpoint.clone(),
                f.type_.clone(),
                f.name.clone(),
                f.used_bytes.map(bytes).unwrap_or_default(),
                f.total_bytes.map(bytes).unwrap_or_default(),
                disks.join(", "),
            ]
        })
        .collect();
    table(
        &[
            "MOUNT",
            "TYPE",
            "DEVICE",
            "USED",
            "SIZE",
            "DISKS (dev bus pci bus:target:unit)",
        ],
        &rows,
    )
}

/// A QGA result as text: an array of objects as a table (the `first` columns first,
/// then every other key in the order the rows have them), an object as `key: value`
/// lines, anything else as its JSON.
pub fn value_table(v: &serde_json::Value, first: &[&str]) -> String {
    use serde_json::Value;
    fn cell(v: &Value) -> String {
        match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    match v {
        Value::Array(rows) if rows.iter().all(Value::is_object) => {
            if rows.is_empty() {
                return "(none)\n".into();
            }
            let mut keys: Vec<String> = Vec::new();
            for k in first {
                if rows.iter().any(|r| r.get(*k).is_some()) {
                    keys.push((*k).to_string());
                }
            }
            for r in rows {
                for k in r.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !keys.contains(k) {
                        keys.push(k.clone());
                    }
                }
            }
            let header: Vec<String> = keys.iter().map(|k| k.to_uppercase()).collect();
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|r| keys.iter().map(|k| cell(&r[k.as_str()])).collect())
                .collect();
            table(&header, &body)
        }
        Value::Object(map) => {
            let mut s = String::new();
            let mut keys: Vec<&String> = first
                .iter()
                .filter_map(|k| map.get_key_value(*k).map(|(k, _)| k))
                .collect();
            keys.extend(map.keys().filter(|k| !first.contains(&k.as_str())));
            for k in keys {
                let _ = writeln!(s, "{k}: {}", cell(&map[k]));
            }
            s
        }
        other => format!("{}\n", cell(other)),
    }
}

#[cfg(test)]
mod value_table_tests {
    use super::value_table;
    use serde_json::json;

    #[test]
    fn rows_become_a_table_with_the_first_columns_first() {
        let t = value_table(
            &json!([{"online": true, "logical-id": 0}, {"online": false, "logical-id": 1, "can-offline": true}]),
            &["logical-id", "online"],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["LOGICAL-ID", "ONLINE", "CAN-OFFLINE"]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["1", "false", "true"]
        );
        assert_eq!(
            value_table(&json!({"zone": "UTC", "offset": 0}), &["zone"]),
            "zone: UTC\noffset: 0\n"
        );
        assert_eq!(value_table(&json!([]), &[]), "(none)\n");
    }
}
