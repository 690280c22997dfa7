//! guestlinkd driven over a unix socket with raw bytes: qemu-ga's envelope, framing,
//! sync and recovery behaviour, its own test suite's cases (spec §4), and the flows of
//! libvirt and Proxmox.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

#[test]
fn envelope_and_argument_errors_read_like_qemu_ga() {
    let a = Agent::start(GUESTLINKD, &[]);
    let mut c = a.connect();
    let cases: &[(&[u8], &str, &str)] = &[
        (
            b"hello\n",
            "GenericError",
            "JSON parse error, invalid keyword 'hello'",
        ),
        (b"[1,2]", "GenericError", "QMP input must be a JSON object"),
        (b"{}", "GenericError", "QMP input lacks member 'execute'"),
        (
            br#"{"execute": 1}"#,
            "GenericError",
            "QMP input member 'execute' must be a string",
        ),
        (
            br#"{"execute":"guest-ping","extra":1}"#,
            "GenericError",
            "QMP input member 'extra' is unexpected",
        ),
        (
            br#"{"execute":"guest-ping","arguments":[]}"#,
            "GenericError",
            "QMP input member 'arguments' must be an object",
        ),
        (
            br#"{"execute":"guest-bogus"}"#,
            "CommandNotFound",
            "The command guest-bogus has not been found",
        ),
        (
            br#"{"execute":""}"#,
            "CommandNotFound",
            "The command  has not been found",
        ),
        (
            br#"{"execute":"qmp_capabilities"}"#,
            "CommandNotFound",
            "The command qmp_capabilities has not been found",
        ),
        (
            br#"{"execute":"guest-ping","arguments":{"foo":42}}"#,
            "GenericError",
            "Parameter 'foo' is unexpected",
        ),
        (
            br#"{"execute":"guest-sync"}"#,
            "GenericError",
            "Parameter 'id' is missing",
        ),
        (
            br#"{"execute":"guest-sync","arguments":{"id":"abc"}}"#,
            "GenericError",
            "Invalid parameter type for 'id', expected: integer",
        ),
        (
            br#"{"execute":"guest-sync","arguments":{"id":1e3}}"#,
            "GenericError",
            "Invalid parameter type for 'id', expected: integer",
        ),
    ];
    for (input, class, text) in cases {
        let r = c.json(input);
        assert_eq!(
            r["error"]["class"],
            *class,
            "{}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(desc(&r), *text);
        assert!(r.get("id").is_none());
    }
    let r = c.json(br#"{"exec-oob":"guest-ping","id":9}"#);
    assert_eq!(
        r,
        json!({"id": 9, "error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}})
    );
    assert_eq!(a.terminate().code(), Some(0));
}

#[test]
fn ids_framing_and_order() {
    let a = Agent::start(GUESTLINKD, &[]);
    let mut c = a.connect();
    assert_eq!(
        c.request(br#"{"execute":"guest-ping","id":"abc"}"#),
        br#"{"return": {}, "id": "abc"}"#
    );
    assert_eq!(
        c.json(br#"{"execute":"guest-ping","id":{"a":[1,2]}}"#)["id"],
        json!({"a":[1,2]})
    );
    assert_eq!(
        c.request(br#"{"execute":"guest-bogus","id":"x1"}"#),
        br#"{"id": "x1", "error": {"class": "CommandNotFound", "desc": "The command guest-bogus has not been found"}}"#
    );
    // Pipelined in one write, answered in order.
    c.send(br#"{"execute":"guest-ping"}{"execute":"guest-sync","arguments":{"id":2}}"#);
    assert_eq!(
        c.lines(2),
        vec![b"{\"return\": {}}".to_vec(), b"{\"return\": 2}".to_vec()]
    );
    // Split over writes: one reply after the last part.
    c.send(br#"{"execute":"guest-sy"#);
    c.silence(150);
    c.send(br#"nc","arguments":{"id":-5}}"#);
    assert_eq!(c.line(), b"{\"return\": -5}");
    // Whitespace alone produces nothing.
    c.send(b"\n\n  \r\n");
    c.silence(150);
    // Replies escape non-ASCII in upper-case hex.
    assert_eq!(
        c.request("{\"execute\":\"guest-ping\",\"id\":\"\u{e9}\u{1F600}\"}".as_bytes()),
        br#"{"return": {}, "id": "\u00E9\uD83D\uDE00"}"#
    );
}

#[test]
fn sync_delimited_and_recovery() {
    let a = Agent::start(GUESTLINKD, &[]);
    let mut c = a.connect();
    // Spec §9 transcripts, byte for byte.
    c.send(b"\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":111}}\n");
    assert_eq!(
        c.lines(2),
        vec![
            b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}".to_vec(),
            b"\xff{\"return\": 111}".to_vec()
        ]
    );
    assert_eq!(
        c.request(b"{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":112}}\n"),
        b"\xff{\"return\": 112}"
    );
    c.send(b"{\"execute\":\"guest-pi");
    c.send(b"\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":113}}\n");
    assert_eq!(
        c.lines(2),
        vec![
            b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\\"guest-pi\\uFFFD'\"}}".to_vec(),
            b"\xff{\"return\": 113}".to_vec()
        ]
    );
    // X14: a control byte works as well.
    c.send(b"{\"execute\":\"guest-pi");
    c.send(b"\x04{\"execute\":\"guest-sync\",\"arguments\":{\"id\":9}}\n");
    let l = c.lines(2);
    assert!(desc(&parse(&l[0])).starts_with("JSON parse error"));
    assert_eq!(parse(&l[1]), json!({"return": 9}));
    // X15/X16: nesting.
    let ok = format!(
        "{{\"execute\":\"guest-ping\",\"id\":{}{}}}",
        "[".repeat(1000),
        "]".repeat(1000)
    );
    let echoed = c.request(ok.as_bytes());
    assert!(echoed.starts_with(b"{\"return\": {}, \"id\": [[[") && echoed.ends_with(b"]]]}"));
    let deep = format!(
        "{{\"execute\":\"guest-ping\",\"id\":{}{}}}",
        "[".repeat(1100),
        "]".repeat(1100)
    );
    c.send(deep.as_bytes());
    assert_eq!(desc(&parse(&c.line())), "JSON nesting depth limit exceeded");
    c.resync(7);
}

#[test]
fn garbage_never_kills_the_agent_and_sync_recovers() {
    let a = Agent::start(GUESTLINKD, &[]);
    let mut c = a.connect();
    let mut seed = 0x2545F4914F6CDD1Du64;
    for round in 0..20u32 {
        let mut junk = Vec::new();
        for _ in 0..(500 + round * 300) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            junk.push((seed >> 24) as u8);
        }
        junk.extend_from_slice(b"{\"execute\":\"guest-ping\",\"id\":\"trunc");
        c.send(&junk);
        c.resync(1000 + round);
    }
    assert_eq!(
        c.json(br#"{"execute":"guest-ping"}"#),
        json!({"return": {}})
    );
    assert_eq!(a.terminate().code(), Some(0));
}

#[test]
fn libvirt_and_proxmox_flows() {
    let a = Agent::start(GUESTLINKD, &[]);
    // libvirt: plain guest-sync with a millisecond timestamp, then id-less commands.
    let mut c = a.connect();
    let id = 1_700_000_000_123i64;
    assert_eq!(
        c.json(
            format!("{{\"execute\":\"guest-sync\", \"arguments\":{{\"id\":{id}}}}}\n").as_bytes()
        ),
        json!({"return": id})
    );
    for cmd in [
        "guest-get-users",
        "guest-get-osinfo",
        "guest-get-timezone",
        "guest-get-host-name",
    ] {
        let r = c.json(format!("{{\"execute\":\"{cmd}\"}}\n").as_bytes());
        assert!(r.get("return").is_some(), "{cmd}: {r}");
    }
    // Proxmox: sync-delimited and the command in one write, matched by its regex.
    let mut p = a.connect();
    p.send(b"{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":123450}}\n{\"execute\":\"guest-get-host-name\",\"arguments\":{}}\n");
    let lines = p.lines(2);
    assert_eq!(lines[0], b"\xff{\"return\": 123450}");
    assert!(lines[1].ends_with(b"}"));
    assert!(parse(&lines[1])["return"]["host-name"].is_string());
}

#[test]
fn qemu_suite_blocked_and_allowed_rpcs() {
    // T19
    let a = Agent::start(GUESTLINKD, &["-b", "guest-ping,guest-get-time"]);
    let mut c = a.connect();
    for cmd in ["guest-ping", "guest-get-time"] {
        let r = c.json(format!("{{\"execute\":\"{cmd}\"}}").as_bytes());
        assert_eq!(r["error"]["class"], "CommandNotFound");
        assert_eq!(
            desc(&r),
            format!("Command {cmd} has been disabled: the command is not allowed")
        );
    }
    assert!(c
        .json(br#"{"execute":"guest-get-host-name"}"#)
        .get("return")
        .is_some());
    let info = c.json(br#"{"execute":"guest-info"}"#);
    let ping = info["return"]["supported_commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "guest-ping")
        .unwrap()
        .clone();
    assert_eq!(
        ping,
        json!({"name": "guest-ping", "enabled": false, "success-response": true})
    );
    assert_eq!(a.terminate().code(), Some(0));
    // T20, and X22: an allow list disables guest-sync too, as in qemu-ga.
    let a = Agent::start(GUESTLINKD, &["-a", "guest-ping,guest-get-time"]);
    let mut c = a.connect();
    assert!(c
        .json(br#"{"execute":"guest-ping"}"#)
        .get("return")
        .is_some());
    assert!(
        c.json(br#"{"execute":"guest-get-time"}"#)["return"]
            .as_i64()
            .unwrap()
            > 0
    );
    assert!(desc(&c.json(br#"{"execute":"guest-get-host-name"}"#)).contains("has been disabled"));
    assert!(
        desc(&c.json(br#"{"execute":"guest-sync","arguments":{"id":1}}"#))
            .contains("has been disabled")
    );
    assert_eq!(a.terminate().code(), Some(0));
}

#[test]
fn qemu_suite_osinfo_with_an_empty_environment() {
    // T26: only QGA_OS_RELEASE in the environment.
    let dir = scratch("osrel");
    let file = dir.join("os-release");
    std::fs::write(&file, "ID=qemu-ga-test\nNAME=QEMU-GA\nPRETTY_NAME=\"QEMU Guest Agent test\"\nVERSION=\"Test 1\"\nVERSION_ID=1\nVARIANT=\"Unit test \\\"\\'\\$\\`\\\\ and \\\\\\\\ etc.\"\nVARIANT_ID=unit-test\n").unwrap();
    let a = Agent::start_with(GUESTLINKD, &[], |cmd| {
        cmd.env_clear().env("QGA_OS_RELEASE", &file);
    });
    let r = a.connect().json(br#"{"execute":"guest-get-osinfo"}"#);
    let os = &r["return"];
    assert_eq!(os["id"], "qemu-ga-test");
    assert_eq!(os["name"], "QEMU-GA");
    assert_eq!(os["pretty-name"], "QEMU Guest Agent test");
    assert_eq!(os["version"], "Test 1");
    assert_eq!(os["version-id"], "1");
    assert_eq!(os["variant"], "Unit test \"'$`\\ and \\\\ etc.");
    assert_eq!(os["variant-id"], "unit-test");
    assert_eq!(a.terminate().code(), Some(0));
}

#[test]
fn qemu_suite_config_dump() {
    // T21: -D with only QGA_CONF in the environment; stderr must be empty.
    let dir = scratch("conf");
    let conf = dir.join("test-qga-config");
    std::fs::write(&conf, "[general]\ndaemon=false\nmethod=virtio-serial\npath=/path/to/org.qemu.guest_agent.0\npidfile=/var/foo/qemu-ga.pid\nstatedir=/var/state\nverbose=true\nblock-rpcs=guest-ping;guest-get-time\n").unwrap();
    let out = Command::new(GUESTLINKD)
        .arg("-D")
        .env_clear()
        .env("QGA_CONF", &conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let keys: std::collections::HashMap<&str, &str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once('='))
        .collect();
    assert!(text.starts_with("[general]\n"));
    assert_eq!(keys["daemon"], "false");
    assert_eq!(keys["method"], "virtio-serial");
    assert_eq!(keys["path"], "/path/to/org.qemu.guest_agent.0");
    assert_eq!(keys["pidfile"], "/var/foo/qemu-ga.pid");
    assert_eq!(keys["statedir"], "/var/state");
    assert_eq!(keys["verbose"], "true");
    let list: Vec<&str> = keys["block-rpcs"]
        .split(';')
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(list, ["guest-ping", "guest-get-time"]);
}

#[test]
fn command_line_errors_exit_1() {
    let bad = Command::new(GUESTLINKD)
        .arg("--no-such-option")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let bad = Command::new(GUESTLINKD)
        .args(["-m", "tcp", "-p", "/x"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unsupported channel method/type: tcp"));
    let bad = Command::new(GUESTLINKD)
        .args(["-m", "unix-listen"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("must specify a path for this channel"));
    let missing = Command::new(GUESTLINKD)
        .args(["-m", "virtio-serial", "-p", "/nonexistent/port"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let v = Command::new(GUESTLINKD).arg("-V").output().unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("QEMU Guest Agent "));
    let list = Command::new(GUESTLINKD)
        .args(["-b", "help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout)
        .lines()
        .any(|l| l == "guest-sync-delimited"));
    let schema = Command::new(env!("CARGO_BIN_EXE_guestlinkd-docs"))
        .arg("--dump-schema")
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&schema.stdout).unwrap();
    assert_eq!(doc["commands"]["guest-sync"]["success-response"], true);
}
