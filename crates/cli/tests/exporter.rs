//! `guestlink exporter` pointed at a directory of agents: 500 simulated VMs
//! (`guestlink exporter-sim`), each with figures of its own, and real guestlinkd and
//! qemu-ga processes. The exporter must serve every VM's figures as the agent gave
//! them, follow guestlinkd's events without waiting for a poll, and report a VM down
//! when its agent stops answering or its socket goes away.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use common::{guestlinkd, have_qemu_ga, Kill, Scratch, GUESTLINK, QEMU_GA};
use serde_json::Value;

fn temp_dir(tag: &str) -> Scratch {
    Scratch::new(&format!("exp-{tag}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn exporter(dir: &Path, port: u16, extra: &[&str]) -> Kill {
    Kill(
        Command::new(GUESTLINK)
            .args(["--timeout", "2", "exporter", "--dir"])
            .arg(dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--scan-interval", "200ms"])
            .args(extra)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// One HTTP GET; the status code and body.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split(' ').nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// The samples of a scrape: series (name and labels, as written) to value.
fn scrape(port: u16) -> HashMap<String, f64> {
    let (code, body) = get(port, "/metrics").expect("the exporter answers");
    assert_eq!(code, 200);
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let v: f64 = value.parse().unwrap_or_else(|_| panic!("bad sample {l}"));
            (series.to_string(), v)
        })
        .collect()
}

/// Scrapes until `ok` holds, for at most `secs` seconds.
fn until(
    port: u16,
    secs: u64,
    what: &str,
    ok: impl Fn(&HashMap<String, f64>) -> bool,
) -> HashMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some((200, _)) = get(port, "/metrics") {
            let m = scrape(port);
            if ok(&m) {
                return m;
            }
            if Instant::now() > deadline {
                let mut lines: Vec<_> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
                lines.sort();
                panic!(
                    "{what}: not seen within {secs} s; last scrape:\n{}",
                    lines.join("\n")
                );
            }
        } else {
            assert!(
                Instant::now() < deadline,
                "{what}: the exporter never answered"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn series(name: &str, vm: &str) -> String {
    format!("{name}{{vm=\"{vm}\"}}")
}

fn value(m: &HashMap<String, f64>, name: &str, vm: &str) -> Option<f64> {
    m.get(&series(name, vm)).copied()
}

struct Sim {
    _proc: Kill,
    stdin: ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
    truth: Vec<Value>,
}

impl Sim {
    fn start(dir: &Path, vms: usize) -> Sim {
        let truth_file = dir.join("truth.json");
        let mut child = Command::new(GUESTLINK)
            .args(["exporter-sim", "--vms", &vms.to_string(), "--dir"])
            .arg(dir.join("channels"))
            .arg("--truth")
            .arg(&truth_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        let truth = serde_json::from_slice(&std::fs::read(truth_file).unwrap()).unwrap();
        Sim {
            _proc: Kill(child),
            stdin,
            stdout,
            truth,
        }
    }

    fn tell(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ok", "{cmd}");
    }
}

/// Every figure the exporter serves for `vm` is the one the VM gave.
fn check_vm(m: &HashMap<String, f64>, t: &Value) {
    let vm = t["vm"].as_str().unwrap();
    let eq = |name: &str, want: Option<f64>| {
        assert_eq!(value(m, name, vm), want, "{name} of {vm}");
    };
    eq("guestlink_agent_up", Some(1.0));
    let info = format!(
        "guestlink_agent_info{{vm=\"{vm}\",agent=\"{}\",version=\"{}\"}}",
        t["agent"].as_str().unwrap(),
        t["version"].as_str().unwrap()
    );
    assert_eq!(m.get(&info), Some(&1.0), "{info}");
    assert!(value(m, "guestlink_agent_ping_seconds", vm).is_some_and(|p| p > 0.0));
    eq(
        "guestlink_guest_memory_total_bytes",
        t["memory_total"].as_f64(),
    );
    eq(
        "guestlink_guest_memory_free_bytes",
        t["memory_free"].as_f64(),
    );
    eq(
        "guestlink_guest_memory_available_bytes",
        t["memory_available"].as_f64(),
    );
    eq("guestlink_guest_users", t["users"].as_f64());
    let load = t["load"].as_array();
    for (k, window) in ["1", "5", "15"].iter().enumerate() {
        let want = load.map(|l| l[k].as_f64().unwrap());
        let got = value(m, &format!("guestlink_guest_load{window}"), vm);
        match (want, got) {
            (Some(w), Some(g)) => assert!((w - g).abs() < 1e-9, "load{window} of {vm}: {g} != {w}"),
            (None, None) => {}
            other => panic!("load{window} of {vm}: {other:?}"),
        }
    }
    for fs in t["filesystems"].as_array().unwrap() {
        let labels = format!(
            "{{vm=\"{vm}\",mountpoint=\"{}\",fstype=\"{}\"}}",
            fs["mountpoint"].as_str().unwrap(),
            fs["fstype"].as_str().unwrap()
        );
        for (name, key) in [("size", "size"), ("used", "used")] {
            let s = format!("guestlink_guest_filesystem_{name}_bytes{labels}");
            assert_eq!(m.get(&s).copied(), fs[key].as_f64(), "{s}");
        }
    }
    eq("guestlink_guest_fsfreeze_frozen", Some(0.0));
}

#[test]
fn five_hundred_simulated_vms() {
    let dir = temp_dir("sim");
    let mut sim = Sim::start(&dir, 500);
    let port = free_port();
    // Statistics are read once (the interval outlasts the test): what changes later
    // must come through guestlinkd's events.
    let _exp = exporter(
        &dir.join("channels"),
        port,
        &[
            "--ping-interval",
            "1s",
            "--stats-interval",
            "1h",
            "--forget-after",
            "5s",
        ],
    );
    let m = until(port, 60, "500 VMs up", |m| {
        m.get("guestlink_exporter_vms{state=\"up\"}") == Some(&500.0) && sim_all_have_stats(m, 500)
    });
    for t in &sim.truth {
        check_vm(&m, t);
    }
    assert_eq!(m.get("guestlink_exporter_vms{state=\"down\"}"), Some(&0.0));
    let rss = m["process_resident_memory_bytes"];
    assert!(rss < 256.0 * 1048576.0, "exporter RSS {rss} for 500 VMs");

    // Events: a login on a guestlinkd VM shows at once; on a qemu-ga VM only at the
    // next poll, which is an hour away.
    sim.tell("users 4 9");
    sim.tell("users 5 7");
    sim.tell("freeze 6");
    let m = until(port, 10, "vm4's login and vm6's freeze", |m| {
        value(m, "guestlink_guest_users", "vm4") == Some(9.0)
            && value(m, "guestlink_guest_fsfreeze_frozen", "vm6") == Some(1.0)
    });
    assert_eq!(value(&m, "guestlink_guest_users", "vm5"), Some(0.0));
    assert!(value(&m, "guestlink_agent_events_total", "vm4").unwrap() >= 1.0);

    // A hostile guest: quotes and newlines in its strings, ten thousand mount points,
    // a users reply too long to take; and one that floods session events. Both stay
    // up, bounded, and the others are not disturbed.
    sim.tell("hostile 10");
    sim.tell("flood 12 10000");
    let m = until(
        port,
        20,
        "the hostile VM read again, the flood counted",
        |m| {
            m.keys().any(|k| {
                k.starts_with(
                    "guestlink_agent_info{vm=\"vm10\",agent=\"qemu-ga\",version=\"1.0\\\"\\n}",
                )
            }) && value(m, "guestlink_agent_events_total", "vm12").is_some_and(|n| n >= 10000.0)
                && m.keys()
                    .any(|k| k.starts_with("guestlink_guest_filesystem_size_bytes{vm=\"vm10\","))
        },
    );
    let fs10 = m
        .keys()
        .filter(|k| k.starts_with("guestlink_guest_filesystem_size_bytes{vm=\"vm10\","))
        .count();
    assert_eq!(fs10, 256, "filesystems kept for the hostile VM");
    assert!(
        m.keys()
            .any(|k| k.contains("mountpoint=\"/m1 \\\"q\\\"\\n\\\\\",fstype=\"t\\\"\"")),
        "escaping"
    );
    assert_eq!(value(&m, "guestlink_agent_up", "vm10"), Some(1.0));
    assert_eq!(
        value(&m, "guestlink_guest_users", "vm10"),
        None,
        "an over-long reply is dropped"
    );
    assert_eq!(value(&m, "guestlink_agent_up", "vm12"), Some(1.0));
    assert_eq!(value(&m, "guestlink_guest_users", "vm12"), Some(2.0));
    let version_len = m
        .keys()
        .find(|k| k.starts_with("guestlink_agent_info{vm=\"vm10\""))
        .map(|k| k.len())
        .unwrap();
    assert!(version_len < 400, "the version label is cut");
    check_vm(&m, &sim.truth[11]);
    assert!(m["process_resident_memory_bytes"] < 256.0 * 1048576.0);

    // An agent that stops answering is down after the reply timeout.
    sim.tell("stall 8");
    until(port, 15, "vm8 down", |m| {
        value(m, "guestlink_agent_up", "vm8") == Some(0.0)
            && value(m, "guestlink_agent_ping_seconds", "vm8").is_none()
    });

    // Fifty VMs stop: their sockets go away.
    for i in 100..150 {
        sim.tell(&format!("remove {i}"));
    }
    let m = until(port, 10, "50 removed VMs down", |m| {
        (100..150).all(|i| value(m, "guestlink_agent_up", &format!("vm{i}")) == Some(0.0))
    });
    for i in (0..500).filter(|i| !(100..150).contains(i) && *i != 8) {
        assert_eq!(
            value(&m, "guestlink_agent_up", &format!("vm{i}")),
            Some(1.0),
            "vm{i}"
        );
    }
    assert!(value(&m, "guestlink_guest_memory_total_bytes", "vm120").is_none());
    assert_eq!(m.get("guestlink_exporter_vms{state=\"down\"}"), Some(&51.0));
    // ... and are forgotten after --forget-after.
    until(port, 15, "removed VMs forgotten", |m| {
        (100..150).all(|i| value(m, "guestlink_agent_up", &format!("vm{i}")).is_none())
            && m.get("guestlink_exporter_vms{state=\"up\"}") == Some(&449.0)
    });

    // The HTTP side answers what it does not serve.
    assert_eq!(get(port, "/nothing").map(|r| r.0), Some(404));
    let (code, page) = get(port, "/").unwrap();
    assert!(code == 200 && page.contains("/metrics"));
}

fn sim_all_have_stats(m: &HashMap<String, f64>, n: usize) -> bool {
    (0..n).all(|i| value(m, "guestlink_guest_users", &format!("vm{i}")).is_some())
}

/// What an agent answers to a command, asked directly.
fn ask(socket: &Path, command: &str) -> Value {
    let out = Command::new(GUESTLINK)
        .arg("--socket")
        .arg(socket)
        .args(["call", &format!(r#"{{"execute":"{command}"}}"#)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["return"].clone()
}

fn users_of(socket: &Path) -> f64 {
    ask(socket, "guest-get-users")
        .as_array()
        .expect("a list of users")
        .len() as f64
}

fn start_agent(bin: &Path, dir: &Path, domain: &str) -> (Kill, PathBuf) {
    let chan = dir.join("channels").join(domain);
    std::fs::create_dir_all(&chan).unwrap();
    let sock = chan.join("org.qemu.guest_agent.0");
    let state = dir.join(format!("state-{domain}"));
    std::fs::create_dir_all(&state).unwrap();
    let child = Command::new(bin)
        .args(["-m", "unix-listen", "-p"])
        .arg(&sock)
        .arg("-t")
        .arg(&state)
        .env("GUESTLINK_GUEST_SOCKET", state.join("guest.sock"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "{} made no socket",
            bin.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (Kill(child), sock)
}

fn meminfo_total_bytes() -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024.0
}

#[test]
fn real_guestlinkd_and_qemu_ga() {
    if !have_qemu_ga() {
        return;
    }
    let dir = temp_dir("real");
    let (mut ours, ours_sock) = start_agent(&guestlinkd(), &dir, "domain-1-ours");
    let (mut theirs, theirs_sock) = start_agent(Path::new(QEMU_GA), &dir, "domain-2-theirs");
    // Asked before the exporter starts: an agent serves one host connection at a time,
    // as QEMU's chardev socket does.
    let direct: Vec<(&str, &str, String, f64)> = [
        ("ours", "guestlinkd", &ours_sock),
        ("theirs", "qemu-ga", &theirs_sock),
    ]
    .into_iter()
    .map(|(vm, kind, sock)| {
        let version = ask(sock, "guest-info")["version"]
            .as_str()
            .unwrap()
            .to_string();
        (vm, kind, version, users_of(sock))
    })
    .collect();
    let port = free_port();
    let _exp = exporter(
        &dir.join("channels"),
        port,
        &[
            "--ping-interval",
            "500ms",
            "--stats-interval",
            "1s",
            "--forget-after",
            "1h",
        ],
    );
    let m = until(port, 30, "both agents up with figures", |m| {
        ["ours", "theirs"].iter().all(|vm| {
            value(m, "guestlink_agent_up", vm) == Some(1.0)
                && value(m, "guestlink_guest_users", vm).is_some()
        })
    });
    for (vm, kind, version, users) in &direct {
        let info =
            format!("guestlink_agent_info{{vm=\"{vm}\",agent=\"{kind}\",version=\"{version}\"}}");
        assert_eq!(m.get(&info), Some(&1.0), "{info}");
        assert_eq!(value(&m, "guestlink_guest_users", vm), Some(*users));
    }
    // guestlinkd's memory is this machine's MemTotal.
    assert_eq!(
        value(&m, "guestlink_guest_memory_total_bytes", "ours"),
        Some(meminfo_total_bytes())
    );
    // Both see the same mounted filesystems; sizes move, so only the set is compared.
    let mounts = |vm: &str| {
        let prefix = format!("guestlink_guest_filesystem_size_bytes{{vm=\"{vm}\",");
        let mut v: Vec<String> = m
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    assert!(!mounts("ours").is_empty(), "no filesystems: {m:?}");
    assert_eq!(mounts("ours"), mounts("theirs"));

    // qemu-ga killed: its socket stays, nobody answers.
    theirs.0.kill().unwrap();
    let _ = theirs.0.wait();
    // guestlinkd told to stop says so (AGENT_STOPPING) before it goes.
    nix_kill(&ours.0, "TERM");
    let _ = ours.0.wait();
    until(port, 15, "both agents down", |m| {
        ["ours", "theirs"]
            .iter()
            .all(|vm| value(m, "guestlink_agent_up", vm) == Some(0.0))
    });
}

fn nix_kill(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .args(["-s", sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}
