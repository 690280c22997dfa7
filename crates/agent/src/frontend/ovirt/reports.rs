//! What the oVirt agent reports, built from the shared vocabulary's results (the same
//! back ends as QGA's `guest-get-*`), with the field names and quirks vdsm expects, and
//! the API level each message needs.

use guestlink_proto_ovirt::Message;
use guestlink_vocabulary::types::{
    GuestFilesystemInfo, GuestIpAddressType, GuestNetworkInterface, GuestOSInfo, GuestTimezone,
    GuestUser, GuestlinkMemoryStats,
};
use serde_json::{json, Map, Value};

/// The highest API level spoken.
pub const MAX_API: u32 = 3;

/// The lowest API level at which a guest-to-host message may be sent; `None` for names
/// the protocol does not have.
pub fn min_api(name: &str) -> Option<u32> {
    Some(match name {
        "number-of-cpus" => 1,
        "os-info" | "timezone" => 2,
        "containers" | "completion" => 3,
        "heartbeat" | "host-name" | "os-version" | "fqdn" | "network-interfaces"
        | "applications" | "disks-usage" | "active-user" | "session-startup"
        | "session-shutdown" | "session-lock" | "session-unlock" | "session-logon"
        | "session-logoff" | "echo" => 0,
        _ => return None,
    })
}

/// The lowest API level at which the host may send command `name` (vdsm's
/// `_MESSAGE_API_VERSION_LOOKUP`); `None` for commands of every level.
pub fn command_min_api(name: &str) -> Option<u32> {
    match name {
        "set-number-of-cpus" => Some(1),
        "lifecycle-event" => Some(3),
        _ => None,
    }
}

/// The API level a host asks for, clamped to what we speak (non-numbers: 0).
pub fn clamp_api(v: &Value) -> u32 {
    let n = match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => s.trim().parse().unwrap_or(0),
        _ => 0,
    };
    n.clamp(0, i64::from(MAX_API)) as u32
}

/// Paging counters at one heartbeat, for the per-second rates of the next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counters {
    /// Seconds (monotonic) when read.
    pub at: f64,
    /// pswpin, pswpout, pgfault, pgmajfault.
    pub values: [i64; 4],
}

/// The heartbeat: `free-ram` (MiB, a string), `memory-stat` (KiB and per-second rates
/// since the last heartbeat), `apiVersion`.
pub fn heartbeat(
    m: &GuestlinkMemoryStats,
    previous: Option<Counters>,
    now: f64,
    api_version: u32,
) -> (Message, Counters) {
    let counters = Counters {
        at: now,
        values: [m.swap_in, m.swap_out, m.page_faults, m.major_faults],
    };
    let rate = |i: usize| match previous {
        Some(p) if now > p.at => {
            ((counters.values[i] - p.values[i]).max(0) as f64 / (now - p.at)).round() as i64
        }
        _ => 0,
    };
    let free = m.free + m.buffers + m.cached;
    let stat = json!({
        "mem_total": m.total,
        "mem_free": free,
        "mem_unused": m.free,
        "mem_buffers": m.buffers,
        "mem_cached": m.cached,
        "swap_total": m.swap_total,
        "swap_usage": (m.swap_total - m.swap_free).max(0),
        "swap_in": rate(0),
        "swap_out": rate(1),
        "pageflt": rate(2),
        "majflt": rate(3),
    });
    let msg = Message::new("heartbeat")
        .arg("free-ram", (free / 1024).to_string())
        .arg("memory-stat", stat)
        .arg("apiVersion", api_version);
    (msg, counters)
}

/// A heartbeat when memory figures cannot be had (refused by the policy, or no
/// /proc): liveness does not depend on them.
pub fn bare_heartbeat(api_version: u32) -> Message {
    Message::new("heartbeat")
        .arg("free-ram", "0")
        .arg("apiVersion", api_version)
}

/// `os-version`: the kernel release.
pub fn os_version(os: &GuestOSInfo) -> Message {
    Message::new("os-version").arg("version", os.kernel_release.clone().unwrap_or_default())
}

/// `os-info` (level 2).
pub fn os_info(os: &GuestOSInfo) -> Message {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    Message::new("os-info")
        .arg("version", s(&os.version_id))
        .arg("distribution", s(&os.name))
        .arg("codename", s(&os.variant_id))
        .arg("arch", s(&os.machine))
        .arg("type", "linux")
        .arg("kernel", s(&os.kernel_release))
}

/// `timezone` (level 2): the zone and its offset in minutes east of UTC.
pub fn timezone(tz: &GuestTimezone) -> Message {
    Message::new("timezone")
        .arg("zone", tz.zone.clone().unwrap_or_default())
        .arg("offset", tz.offset / 60)
}

/// `network-interfaces`: every interface but loopback, with its addresses by family.
pub fn network_interfaces(list: &[GuestNetworkInterface]) -> Message {
    let interfaces: Vec<Value> = list
        .iter()
        .filter(|i| i.name != "lo")
        .map(|i| {
            let addrs = |t: GuestIpAddressType| -> Vec<String> {
                i.ip_addresses
                    .iter()
                    .flatten()
                    .filter(|a| a.ip_address_type == t)
                    .map(|a| a.ip_address.clone())
                    .collect()
            };
            json!({
                "name": i.name,
                "hw": i.hardware_address.clone().unwrap_or_default(),
                "inet": addrs(GuestIpAddressType::Ipv4),
                "inet6": addrs(GuestIpAddressType::Ipv6),
            })
        })
        .collect();
    Message::new("network-interfaces").arg("interfaces", interfaces)
}

/// `disks-usage`: mounted filesystems with a size, and which device each disk serial is.
pub fn disks_usage(list: &[GuestFilesystemInfo]) -> Message {
    let disks: Vec<Value> = list
        .iter()
        .filter(|f| f.total_bytes.unwrap_or(0) > 0)
        .map(|f| {
            json!({
                "path": f.mountpoint,
                "fs": f.type_,
                "total": f.total_bytes.unwrap_or(0),
                "used": f.used_bytes.unwrap_or(0),
            })
        })
        .collect();
    let mut mapping = Map::new();
    for d in list.iter().flat_map(|f| &f.disk) {
        if let (Some(serial), Some(dev)) = (&d.serial, &d.dev) {
            mapping.insert(serial.clone(), json!({ "name": dev }));
        }
    }
    Message::new("disks-usage")
        .arg("disks", disks)
        .arg("mapping", Value::Object(mapping))
}

/// The active user as the Linux agent named it: the first logged-in user, or `"None"`.
pub fn active_user_name(users: &[GuestUser]) -> String {
    users
        .first()
        .map_or_else(|| "None".to_string(), |u| u.user.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> GuestlinkMemoryStats {
        GuestlinkMemoryStats {
            total: 4_000_000,
            free: 100_000,
            available: Some(2_000_000),
            buffers: 20_000,
            cached: 1_000_000,
            swap_total: 500,
            swap_free: 200,
            swap_in: 10,
            swap_out: 20,
            page_faults: 1000,
            major_faults: 5,
        }
    }

    #[test]
    fn heartbeats_as_vdsm_reads_them() {
        let (first, c) = heartbeat(&mem(), None, 100.0, 0);
        assert_eq!(first.name, "heartbeat");
        assert_eq!(
            first.args["free-ram"], "1093",
            "a string, MiB of free + buffers + cached"
        );
        assert_eq!(first.args["apiVersion"], 0);
        let stat = &first.args["memory-stat"];
        assert_eq!(stat["mem_free"], 1_120_000);
        assert_eq!(stat["mem_unused"], 100_000);
        assert_eq!(stat["swap_usage"], 300);
        assert_eq!(stat["pageflt"], 0, "no rate without a previous heartbeat");
        let mut later = mem();
        later.page_faults += 500;
        later.swap_out += 50;
        let (second, _) = heartbeat(&later, Some(c), 105.0, 3);
        assert_eq!(second.args["memory-stat"]["pageflt"], 100);
        assert_eq!(second.args["memory-stat"]["swap_out"], 10);
        assert_eq!(second.args["apiVersion"], 3);
    }

    #[test]
    fn api_levels() {
        assert_eq!(min_api("os-info"), Some(2));
        assert_eq!(min_api("number-of-cpus"), Some(1));
        assert_eq!(min_api("heartbeat"), Some(0));
        assert_eq!(min_api("nonsense"), None);
        assert_eq!(clamp_api(&json!(7)), 3);
        assert_eq!(clamp_api(&json!(-1)), 0);
        assert_eq!(clamp_api(&json!("2")), 2);
        assert_eq!(clamp_api(&json!(null)), 0);
    }

    #[test]
    fn timezone_in_minutes_and_users() {
        let tz = GuestTimezone {
            zone: Some("CET".into()),
            offset: 3600,
        };
        assert_eq!(timezone(&tz).args["offset"], 60);
        assert_eq!(active_user_name(&[]), "None");
    }
}
