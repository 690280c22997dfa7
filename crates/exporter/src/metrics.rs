//! What the exporter knows about each VM, and its rendering in Prometheus' text
//! exposition format (version 0.0.4).
//!
//! Every figure is the last one read; a group the agent cannot answer (a command it
//! lacks, or refuses while frozen) is left out rather than reported as zero. A VM
//! whose agent stops answering keeps `guestlink_agent_up 0` and loses its other
//! series, so dashboards show a gap rather than stale values.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

/// Which agent answers on a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// `guestlinkd` or `qemu-ga`.
    pub kind: &'static str,
    /// The version `guest-info` reported.
    pub version: String,
}

/// Guest memory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// MemTotal, or the online memory blocks for qemu-ga.
    pub total: u64,
    /// MemFree.
    pub free: Option<u64>,
    /// MemAvailable.
    pub available: Option<u64>,
}

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filesystem {
    /// Where it is mounted.
    pub mountpoint: String,
    /// Its type.
    pub fstype: String,
    /// Size in bytes.
    pub size: u64,
    /// Used bytes.
    pub used: u64,
}

/// The figures of one VM.
#[derive(Debug, Clone, Default)]
pub struct VmMetrics {
    /// The VM's name.
    pub vm: String,
    /// Whether the agent answered the last time it was asked.
    pub up: bool,
    /// The agent, once `guest-info` answered.
    pub agent: Option<AgentInfo>,
    /// The last `guest-ping` round trip, in seconds.
    pub ping_seconds: Option<f64>,
    /// Memory.
    pub memory: Option<Memory>,
    /// Filesystems.
    pub filesystems: Option<Vec<Filesystem>>,
    /// Logged-in users.
    pub users: Option<u64>,
    /// Load averages over 1, 5 and 15 minutes.
    pub load: Option<[f64; 3]>,
    /// Whether the filesystems are frozen.
    pub frozen: Option<bool>,
    /// Connections made to the agent.
    pub connects: u64,
    /// Polls that failed (no answer, connection lost).
    pub failures: u64,
    /// Events received from the agent.
    pub events: u64,
    /// When the agent last answered, in seconds since the epoch.
    pub last_seen: Option<f64>,
    /// The socket is gone (the VM stopped); the entry is kept for a while with up 0.
    pub gone: bool,
}

impl VmMetrics {
    /// A VM not yet asked anything.
    pub fn new(vm: String) -> VmMetrics {
        VmMetrics {
            vm,
            ..VmMetrics::default()
        }
    }

    /// The agent stopped answering: up 0 and no figures.
    pub fn mark_down(&mut self) {
        self.up = false;
        self.ping_seconds = None;
        self.memory = None;
        self.filesystems = None;
        self.users = None;
        self.load = None;
        self.frozen = None;
    }
}

/// The exporter's own figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct SelfMetrics {
    /// Resident memory, bytes.
    pub rss_bytes: Option<u64>,
    /// CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Scrapes served.
    pub scrapes: u64,
}

/// Escapes a label value.
fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A float as Prometheus writes it.
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Writes one metric family: HELP, TYPE, then a sample for each VM that has one.
fn family<'a>(
    out: &mut String,
    vms: impl Iterator<Item = &'a VmMetrics> + Clone,
    name: &str,
    kind: &str,
    help: &str,
    sample: impl Fn(&VmMetrics, &mut Vec<(String, f64)>),
) {
    let mut samples = Vec::new();
    let mut any = false;
    for vm in vms {
        samples.clear();
        sample(vm, &mut samples);
        if samples.is_empty() {
            continue;
        }
        if !any {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            any = true;
        }
        let vm_label = label(&vm.vm);
        for (extra, value) in &samples {
            let _ = writeln!(out, "{name}{{vm=\"{vm_label}\"{extra}}} {}", num(*value));
        }
    }
}

/// Renders every VM's figures and the exporter's own.
pub fn render(vms: &BTreeMap<PathBuf, VmMetrics>, me: &SelfMetrics) -> String {
    let mut out = String::with_capacity(256 + vms.len() * 1024);
    let all = vms.values();
    let one = |v: Option<f64>, s: &mut Vec<(String, f64)>| {
        if let Some(v) = v {
            s.push((String::new(), v));
        }
    };
    family(
        &mut out,
        all.clone(),
        "guestlink_agent_up",
        "gauge",
        "Whether the VM's agent answered its last poll (1) or not (0).",
        |vm, s| s.push((String::new(), if vm.up { 1.0 } else { 0.0 })),
    );
    family(
        &mut out,
        all.clone(),
        "guestlink_agent_info",
        "gauge",
        "The agent answering on the VM's channel: guestlinkd or qemu-ga, and its version.",
        |vm, s| {
            if let (true, Some(a)) = (vm.up, &vm.agent) {
                s.push((
                    format!(",agent=\"{}\",version=\"{}\"", a.kind, label(&a.version)),
                    1.0,
                ));
            }
        },
    );
    family(
        &mut out,
        all.clone(),
        "guestlink_agent_ping_seconds",
        "gauge",
        "Round trip of the last guest-ping.",
        |vm, s| one(vm.ping_seconds, s),
    );
    family(
        &mut out,
        all.clone(),
        "guestlink_agent_last_seen_timestamp_seconds",
        "gauge",
        "When the agent last answered.",
        |vm, s| one(vm.last_seen, s),
    );
    family(
        &mut out,
        all.clone(),
        "guestlink_agent_connects_total",
        "counter",
        "Connections made to the agent.",
        |vm, s| s.push((String::new(), vm.connects as f64)),
    );
    family(
        &mut out,
        all.clone(),
        "guestlink_agent_poll_failures_total",
        "counter",
        "Polls that got no answer.",
        |vm, s| s.push((String::new(), vm.failures as f64)),
    );
    family(
        &mut out,
        all.clone(),
        "guestlink_agent_events_total",
        "counter",
        "Events the agent pushed (guestlinkd).",
        |vm, s| s.push((String::new(), vm.events as f64)),
    );
    family(
        &mut out,
        all.clone(),
        "guestlink_guest_memory_total_bytes",
        "gauge",
        "Guest memory: MemTotal (guestlinkd), or the online memory blocks (qemu-ga).",
        |vm, s| one(vm.memory.map(|m| m.total as f64), s),
    );
    family(
        &mut out,
        all.clone(),
        "guestlink_guest_memory_free_bytes",
        "gauge",
        "Guest MemFree.",
        |vm, s| one(vm.memory.and_then(|m| m.free).map(|v| v as f64), s),
    );
    family(
        &mut out,
        all.clone(),
        "guestlink_guest_memory_available_bytes",
        "gauge",
        "Guest MemAvailable.",
        |vm, s| one(vm.memory.and_then(|m| m.available).map(|v| v as f64), s),
    );
    let fs = |vm: &VmMetrics, s: &mut Vec<(String, f64)>, used: bool| {
        for f in vm.filesystems.iter().flatten() {
            let labels = format!(
                ",mountpoint=\"{}\",fstype=\"{}\"",
                label(&f.mountpoint),
                label(&f.fstype)
            );
            s.push((labels, if used { f.used } else { f.size } as f64));
        }
    };
    family(
        &mut out,
        all.clone(),
        "guestlink_guest_filesystem_size_bytes",
        "gauge",
        "Size of a mounted guest filesystem.",
        |vm, s| fs(vm, s, false),
    );
    family(
        &mut out,
        all.clone(),
        "guestlink_guest_filesystem_used_bytes",
        "gauge",
        "Used bytes of a mounted guest filesystem.",
        |vm, s| fs(vm, s, true),
    );
    family(
        &mut out,
        all.clone(),
        "guestlink_guest_users",
        "gauge",
        "Users logged in to the guest.",
        |vm, s| one(vm.users.map(|u| u as f64), s),
    );
    for (i, window) in ["1", "5", "15"].iter().enumerate() {
        family(
            &mut out,
            all.clone(),
            &format!("guestlink_guest_load{window}"),
            "gauge",
            &format!("Guest load average over {window} minute(s)."),
            |vm, s| one(vm.load.map(|l| l[i]), s),
        );
    }
    family(
        &mut out,
        all.clone(),
        "guestlink_guest_fsfreeze_frozen",
        "gauge",
        "Whether the guest's filesystems are frozen.",
        |vm, s| one(vm.frozen.map(|f| if f { 1.0 } else { 0.0 }), s),
    );

    let up = vms.values().filter(|v| v.up).count();
    let _ = writeln!(out, "# HELP guestlink_exporter_vms Agent sockets known, by state.\n# TYPE guestlink_exporter_vms gauge");
    let _ = writeln!(out, "guestlink_exporter_vms{{state=\"up\"}} {up}");
    let _ = writeln!(
        out,
        "guestlink_exporter_vms{{state=\"down\"}} {}",
        vms.len() - up
    );
    let _ = writeln!(out, "# HELP guestlink_exporter_scrapes_total Scrapes served.\n# TYPE guestlink_exporter_scrapes_total counter\nguestlink_exporter_scrapes_total {}", me.scrapes);
    if let Some(cpu) = me.cpu_seconds {
        let _ = writeln!(out, "# HELP process_cpu_seconds_total CPU time of the exporter.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}", num(cpu));
    }
    if let Some(rss) = me.rss_bytes {
        let _ = writeln!(out, "# HELP process_resident_memory_bytes Resident memory of the exporter.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_once_with_escaped_labels() {
        let mut vms = BTreeMap::new();
        let mut a = VmMetrics::new("web \"1\"\\x".into());
        a.up = true;
        a.agent = Some(AgentInfo {
            kind: "qemu-ga",
            version: "7.2.0".into(),
        });
        a.ping_seconds = Some(0.5);
        a.filesystems = Some(vec![Filesystem {
            mountpoint: "/".into(),
            fstype: "ext4".into(),
            size: 100,
            used: 40,
        }]);
        vms.insert(PathBuf::from("/a"), a);
        let mut b = VmMetrics::new("b".into());
        b.up = true;
        b.mark_down();
        vms.insert(PathBuf::from("/b"), b);
        let text = render(&vms, &SelfMetrics::default());
        assert_eq!(text.matches("# TYPE guestlink_agent_up gauge").count(), 1);
        assert!(
            text.contains("guestlink_agent_up{vm=\"web \\\"1\\\"\\\\x\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("guestlink_agent_up{vm=\"b\"} 0\n"));
        assert!(text.contains(
            "guestlink_guest_filesystem_used_bytes{vm=\"web \\\"1\\\"\\\\x\",mountpoint=\"/\",fstype=\"ext4\"} 40\n"
        ));
        assert!(text.contains("agent=\"qemu-ga\",version=\"7.2.0\"} 1\n"));
        // No figures for a VM that is down, and no family without samples.
        assert!(!text.contains("guestlink_agent_ping_seconds{vm=\"b\"}"));
        assert!(!text.contains("guestlink_guest_load1"));
        assert!(text.contains("guestlink_exporter_vms{state=\"down\"} 1\n"));
    }
}
