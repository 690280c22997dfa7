//! `guestlink` subcommands against guestlinkd and Debian's qemu-ga. The commands that
//! would change the build machine (fsfreeze, shutdown) are checked through their error
//! paths here; the VM harness runs them for real.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{built, guestlinkd, have_qemu_ga, Agent, Kill, Scratch, GUESTLINK, QEMU_GA};

/// Runs every subcommand; `transfer` is how `cp` is expected to move data.
fn exercise(agent: &Agent, transfer: &str) {
    assert!(agent.ok(&["ping"]).starts_with("agent answered in"));
    assert!(agent.ok(&["info"]).contains("guest-sync-delimited"));
    let info: serde_json::Value = serde_json::from_str(&agent.ok(&["--json", "info"])).unwrap();
    assert!(info["supported_commands"].as_array().unwrap().len() >= 40);
    assert!(agent.ok(&["osinfo"]).contains("kernel"));
    assert!(!agent.ok(&["hostname"]).trim().is_empty());
    agent.ok(&["users"]);
    assert!(agent.ok(&["interfaces"]).contains("lo "));
    assert!(agent.ok(&["fsinfo"]).starts_with("MOUNT"));
    assert!(agent.ok(&["time"]).contains("from the host"));
    // exec: output, stdin, status.
    let out = agent.run(&["exec", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    let out = agent.run_with_stdin(&["exec", "cat"], b"through stdin");
    assert_eq!(out.stdout, b"through stdin");
    // cp both ways, verified, across several chunks.
    let src = agent.dir.join("src");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 255) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    let guest = format!("guest:{}", agent.dir.join("in-guest").display());
    let up = agent.ok(&["cp", "--chunk", "1000000", src.to_str().unwrap(), &guest]);
    assert!(up.contains("(verified)"), "{up}");
    assert!(up.contains(&format!("/s, {transfer})")), "{up}");
    let back = agent.dir.join("back");
    let down: serde_json::Value = serde_json::from_str(&agent.ok(&[
        "--json",
        "cp",
        "--chunk",
        "700000",
        &guest,
        back.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(down["transfer"], transfer, "{down}");
    assert_eq!(down["verified"], true, "{down}");
    assert_eq!(std::fs::read(&back).unwrap(), data);
    // --base64 always works, whatever the agent offers.
    let forced = agent.ok(&["cp", "--base64", &guest, back.to_str().unwrap()]);
    assert!(forced.contains("/s, base64)"), "{forced}");
    assert_eq!(std::fs::read(&back).unwrap(), data);
    // Raw call: status 1 on an error reply (2 is for usage errors).
    let out = agent.run(&["call", r#"{"execute":"guest-bogus"}"#]);
    assert_eq!(out.status.code(), Some(1));
    // The rest of the QGA commands by name, as tables and as the agent's JSON.
    for (args, want) in [
        (&["vcpus"][..], "LOGICAL-ID"),
        (&["memory-blocks"], "PHYS-INDEX"),
        (&["disks"], "NAME"),
        (&["timezone"], "zone: "),
        (&["fsfreeze", "status"], "thawed"),
        (&["cpustats"], "TYPE"),
    ] {
        let out = agent.ok(args);
        assert!(out.contains(want), "{args:?}: {out}");
    }
    let v: serde_json::Value = serde_json::from_str(&agent.ok(&["--json", "vcpus"])).unwrap();
    assert!(v.as_array().is_some_and(|a| !a.is_empty()), "{v}");
    let out = agent.run(&["exec-status", "999999"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = agent.run(&["vcpus", "0=sideways"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    // A mistyped mount point freezes nothing and fails, as virsh domfsfreeze does.
    let out = agent.run(&["fsfreeze", "-m", "/no/such/mount"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("not a mount point in the guest: /no/such/mount"),
        "{out:?}"
    );
    assert!(agent
        .ok(&["call", r#"{"execute":"guest-fsfreeze-status"}"#])
        .contains("thawed"));

    // Shutdown with a bad mode is refused by the agent (nothing shuts down).
    let out = agent.run(&["shutdown", "--mode", "bogus"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mode is invalid"));
}

#[test]
fn subcommands_against_guestlinkd() {
    exercise(&Agent::start(&guestlinkd(), "ours", &[]), "raw");
}

#[test]
fn subcommands_against_qemu_ga() {
    if !have_qemu_ga() {
        return;
    }
    let theirs = Agent::start(Path::new(QEMU_GA), "theirs", &[]);
    exercise(&theirs, "base64");
    // What needs guestlinkd says so, and names the agent it found.
    for args in [&["events", "--count", "1"][..], &["clipboard", "get"]] {
        let out = theirs.run(args);
        assert_eq!(out.status.code(), Some(4), "{args:?} {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("needs guestlinkd in the guest; the agent there is qemu-ga "),
            "{err}"
        );
    }
}

#[test]
fn helpful_errors() {
    let out = Command::new(GUESTLINK)
        .args(["--socket", "/nonexistent/agent.sock", "ping"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "no agent reached");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no such socket"), "{err}");
    let agent = Agent::start(&guestlinkd(), "blocked", &["-b", "guest-fsfreeze-freeze"]);
    let out = agent.run(&["fsfreeze"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("has been disabled") && err.contains("policy"),
        "{err}"
    );
    // A socket nobody answers on: QEMU accepts connections even with no agent inside.
    let dir = std::env::temp_dir().join(format!("gl-cli-mute-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("sock");
    let _ = std::fs::remove_file(&sock);
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let out = Command::new(GUESTLINK)
        .arg("--socket")
        .arg(&sock)
        .args(["--timeout", "1", "ping"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is the guest agent running"), "{err}");
    let out = Command::new(GUESTLINK)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("_guestlink"));
}

/// Runs guestlink with `args`; its exit code, standard output and standard error.
fn guestlink(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(GUESTLINK).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_codes_json_errors_and_call_by_name() {
    // No agent: 3, and with --json one error object on standard output.
    let (code, out, _) = guestlink(&["--json", "--socket", "/nonexistent/agent.sock", "ping"]);
    assert_eq!(code, Some(3));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["error"]["class"], "Unreachable", "{v}");
    assert_eq!(v["error"]["exit"], 3);
    assert!(v["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("no such socket"));
    // No agent given at all: a usage error, like clap's own.
    let (code, _, err) = Command::new(GUESTLINK)
        .arg("ping")
        .env_remove("GUESTLINK_SOCKET")
        .output()
        .map(|o| {
            (
                o.status.code(),
                (),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(code, Some(2), "{err}");
    let (code, _, _) = guestlink(&["no-such-subcommand"]);
    assert_eq!(code, Some(2));

    let agent = Agent::start(&guestlinkd(), "exit-codes", &["-b", "guest-get-time"]);
    let sock = agent.sock.to_str().unwrap().to_string();
    // `call` with a bare name and -a.
    let (code, out, err) = guestlink(&["-s", &sock, "call", "guest-sync", "-a", r#"{"id": 7}"#]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("7"), "{out}");
    let (code, out, _) = guestlink(&["-s", &sock, "--json", "call", "guest-get-osinfo"]);
    assert_eq!(code, Some(0));
    assert!(serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()["return"].is_object());
    // The agent's error: 1, the reply printed as it came.
    let (code, out, _) = guestlink(&["-s", &sock, "--json", "call", "guest-get-time"]);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["error"]["class"], "CommandNotFound", "{v}");
    // Arguments that are not an object: a usage error, nothing sent.
    let (code, _, err) = guestlink(&["-s", &sock, "call", "guest-sync", "-a", "[1]"]);
    assert_eq!(code, Some(2), "{err}");
    // A refused subcommand, as JSON: class, the agent's words, a hint, exit 1.
    let (code, out, _) = guestlink(&["-s", &sock, "--json", "time"]);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["error"]["class"], "CommandNotFound");
    assert!(
        v["error"]["desc"]
            .as_str()
            .unwrap()
            .contains("has been disabled"),
        "{v}"
    );
    assert!(
        v["error"]["hint"].as_str().unwrap().contains("policy"),
        "{v}"
    );

    // A command that replies only when it fails: silence is success.
    let fake = Scratch::new("cli-silent-agent");
    let fake_sock = fake.join("sock");
    let listener = std::os::unix::net::UnixListener::bind(&fake_sock).unwrap();
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        let Ok((s, _)) = listener.accept() else {
            return;
        };
        let mut w = s.try_clone().unwrap();
        for line in std::io::BufReader::new(s).split(b'\n') {
            let Ok(line) = line else { return };
            let body = line.strip_prefix(&[0xFF]).unwrap_or(&line);
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
                continue;
            };
            if v["execute"] == "guest-sync-delimited" {
                let mut reply = vec![0xFF];
                reply.extend_from_slice(
                    format!("{{\"return\": {}}}\n", v["arguments"]["id"]).as_bytes(),
                );
                let _ = w.write_all(&reply);
            }
            // guest-shutdown: no reply, as qemu-ga when it succeeds.
        }
    });
    let (code, out, err) = guestlink(&[
        "-s",
        fake_sock.to_str().unwrap(),
        "call",
        "guest-shutdown",
        "-a",
        r#"{"mode": "powerdown"}"#,
    ]);
    assert_eq!(code, Some(0), "{out} {err}");
    assert!(out.contains("guest-shutdown requested"), "{out}");
}

#[test]
fn bench_runs_both_agents_side_by_side() {
    if !have_qemu_ga() {
        return;
    }
    let ours = guestlinkd();
    let out = Command::new(GUESTLINK)
        .args([
            "--json",
            "bench",
            "--pings",
            "300",
            "--file-mib",
            "4",
            "--agent",
            QEMU_GA,
            "--agent",
        ])
        .arg(&ours)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["agents"].as_array().unwrap().len(), 2);
    let results = v["results"].as_object().unwrap();
    assert!(results.len() >= 15, "{v}");
    for (name, r) in results {
        let vals = r["values"].as_array().unwrap();
        assert_eq!(vals.len(), 2, "{name}");
        if name.starts_with("raw bulk") {
            // Only guestlinkd offers raw bulk transfer.
            assert!(vals[0].is_null(), "{name}: {r}");
            assert!(vals[1].as_f64().is_some_and(|x| x > 0.0), "{name}: {r}");
            continue;
        }
        // Commands qemu-ga 7.2 on Linux does not have (guest-get-devices is Windows
        // only; guest-get-load came in 9.1): no figure where the agent has none.
        if name.contains("guest-get-devices") || name.contains("guest-get-load") {
            assert!(vals[0].is_null(), "{name}: {r}");
            continue;
        }
        // Present for both agents; CPU time is counted in clock ticks, so a short run
        // may read 0.
        assert!(
            vals.iter().all(|x| x.as_f64().is_some_and(|x| x >= 0.0)),
            "{name}: {r}"
        );
    }
    assert_eq!(
        results.keys().filter(|k| k.starts_with("raw bulk")).count(),
        4,
        "{v}"
    );
    // The live channel is measured for guestlinkd alone (qemu-ga has none).
    let live = v["live"].as_object().unwrap();
    assert_eq!(live.len(), 1, "{v}");
    let l = live.values().next().unwrap();
    for key in [
        "forward_mib_s",
        "relay_mib_s",
        "echo_p50_ms",
        "echo_p99_ms",
        "exec_first_output_ms",
    ] {
        assert!(l[key].as_f64().is_some_and(|x| x > 0.0), "{key}: {l}");
    }
}

fn session_agent() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| built("guestlink-session")).clone()
}

/// Waits for a child with a deadline.
fn finish(mut child: Child, within: Duration) -> Output {
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{:?}", child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn events_and_clipboard_against_guestlinkd() {
    // The session list lives where the test can write it before the agent starts.
    let dir = Scratch::new("cli-events-sessions");
    let sessions = dir.join("sessions.json");
    let agent = Agent::start(
        &guestlinkd(),
        "events",
        &["--sessions", &format!("file:{}", sessions.display())],
    );
    // `guestlink events` prints each event as a JSON line.
    let events = Command::new(GUESTLINK)
        .arg("--socket")
        .arg(agent.dir.join("sock"))
        .args(["events", "--event", "SESSION_NEW", "--count", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = events.id();
    // New sessions keep coming until the subscriber has seen one.
    let writer = std::thread::spawn(move || {
        for n in 0..100 {
            let list = serde_json::json!([{"id": format!("s{n}"), "uid": 1000, "user": "alice"}]);
            std::fs::write(&sessions, list.to_string()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
        }
    });
    let out = finish(events, Duration::from_secs(20));
    writer.join().unwrap();
    assert!(out.status.success());
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["event"], "SESSION_NEW");
    assert_eq!(line["data"]["user"], "alice");
    assert!(line["timestamp"]["seconds"].as_i64().unwrap() > 0);

    // The clipboard of the active session, through its (headless) session agent.
    std::fs::write(
        dir.join("sessions.json"),
        r#"[{"id": "s0", "uid": 0, "user": "root", "active": true}]"#,
    )
    .unwrap();
    let guest_socket = agent.dir.join("guest.sock");
    let session = Command::new(session_agent())
        .arg("--socket")
        .arg(&guest_socket)
        .args(["run", "--backend", "headless", "--session", "s0"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _session = Kill(session);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = agent.run(&["clipboard", "set", "from the host"]);
        if out.status.success() {
            break;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let waiting = err.contains("no session agent") || err.contains("no user session");
        assert!(waiting && Instant::now() < deadline, "{err}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(agent.ok(&["clipboard", "get"]), "from the host");
    let v: serde_json::Value =
        serde_json::from_str(&agent.ok(&["--json", "clipboard", "get"])).unwrap();
    assert_eq!(v["data"], "ZnJvbSB0aGUgaG9zdA==", "{v}");
    let watch = Command::new(GUESTLINK)
        .arg("--socket")
        .arg(agent.dir.join("sock"))
        .args(["clipboard", "watch", "--fetch", "--count", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The first line is what the clipboard offers now; then a copy in the guest.
    std::thread::sleep(Duration::from_millis(500));
    let st = Command::new(session_agent())
        .arg("--socket")
        .arg(&guest_socket)
        .args(["clipboard", "set", "copied in the guest"])
        .status()
        .unwrap();
    assert!(st.success());
    let out = finish(watch, Duration::from_secs(10));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0]["types"],
        serde_json::json!(["text/plain;charset=utf-8"])
    );
    assert_eq!(lines[1]["text"], "copied in the guest");
    assert_eq!(lines[1]["session"], "s0");
}
