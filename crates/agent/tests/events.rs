//! Events and the guest-side socket, end to end against the real binary: host
//! connections on a QGA socket, guest programs on the guest socket, user sessions from
//! a simulated session source (`--sessions file:...`).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{desc, parse, python_as, Agent, AgentExt, Conn, GUESTLINKD};
use serde_json::{json, Value};

/// An agent reading its sessions from a file; the file's path, and the directory that
/// holds it (removed when dropped).
fn start() -> (Agent, std::path::PathBuf, common::Scratch) {
    let dir = common::scratch("sessions");
    let file = dir.join("sessions.json");
    let agent = Agent::start(
        GUESTLINKD,
        &["--sessions", &format!("file:{}", file.display())],
    );
    (agent, file, dir)
}

fn write_sessions(file: &Path, sessions: Value) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, sessions.to_string()).unwrap();
    std::fs::rename(tmp, file).unwrap();
}

fn call(c: &mut Conn, execute: &str, arguments: Value) -> Value {
    c.json(
        json!({"execute": execute, "arguments": arguments})
            .to_string()
            .as_bytes(),
    )
}

fn subscribe(c: &mut Conn, events: &[&str]) {
    let r = call(
        c,
        "__org.guestlink_events-subscribe",
        json!({ "events": events }),
    );
    assert!(r["return"]["events"].is_array(), "{r}");
}

/// The next line, which must be an event.
fn event(c: &mut Conn) -> Value {
    let v = parse(&c.line());
    assert!(v.get("event").is_some(), "not an event: {v}");
    v
}

#[test]
fn only_subscribers_see_events_and_a_sync_ends_the_subscription() {
    let (agent, file, _dir) = start();
    let mut plain = agent.connect();
    let mut sub = agent.connect();
    let info = call(&mut plain, "guest-info", json!({}));
    let names: Vec<&str> = info["return"]["supported_commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"__org.guestlink_events-subscribe"));
    assert!(!names.contains(&"__org.guestlink_host-request"));
    subscribe(&mut sub, &["SESSION_NEW", "SESSION_LOCK"]);
    write_sessions(
        &file,
        json!([{"id": "2", "uid": 1000, "user": "alice", "seat": "seat0", "active": true}]),
    );
    let e = event(&mut sub);
    assert_eq!(e["event"], "SESSION_NEW");
    assert_eq!(e["data"]["user"], "alice");
    assert_eq!(e["data"]["active"], true);
    assert!(e["timestamp"]["seconds"].as_i64().unwrap() > 1_600_000_000);
    assert!(e["timestamp"]["microseconds"].as_i64().unwrap() < 1_000_000);
    // The connection that never subscribed saw nothing, before or after its own calls.
    plain.silence(300);
    assert_eq!(
        call(&mut plain, "guest-ping", json!({})),
        json!({"return": {}})
    );
    plain.silence(300);
    // A sync starts a new conversation without the subscription.
    // Before the sync reply comes only the parse error for the lone 0xFF, as qemu-ga.
    for line in sub.resync(77) {
        assert!(parse(&line).get("error").is_some());
    }
    write_sessions(
        &file,
        json!([{"id": "2", "uid": 1000, "user": "alice", "seat": "seat0", "active": true, "locked": true}]),
    );
    sub.silence(800);
    let sessions = call(&mut plain, "__org.guestlink_get-sessions", json!({}));
    assert_eq!(sessions["return"][0]["locked"], true);
    agent.terminate();
}

#[test]
fn guest_requests_come_back_to_their_caller_with_its_id() {
    let (agent, _, _dir) = start();
    let mut host = agent.connect();
    let mut g1 = agent.connect_guest();
    let mut g2 = agent.connect_guest();
    // Nobody listens yet.
    let r = g1
        .json(br#"{"execute":"__org.guestlink_host-request","arguments":{"command":"x"},"id":1}"#);
    assert!(desc(&r).contains("no host is listening"), "{r}");
    assert_eq!(r["id"], 1);
    subscribe(&mut host, &["GUEST_REQUEST"]);
    g1.send(br#"{"execute":"__org.guestlink_host-request","arguments":{"command":"open","arguments":{"n":1}},"id":"first"}"#);
    g2.send(br#"{"execute":"__org.guestlink_host-request","arguments":{"command":"open","arguments":{"n":2}},"id":{"mine":2}}"#);
    let a = event(&mut host);
    let b = event(&mut host);
    let mut tags = std::collections::HashMap::new();
    for e in [&a, &b] {
        assert_eq!(e["event"], "GUEST_REQUEST");
        assert_eq!(e["data"]["uid"], 0);
        tags.insert(
            e["data"]["arguments"]["n"].as_i64().unwrap(),
            e["data"]["tag"].clone(),
        );
    }
    assert_ne!(tags[&1], tags[&2]);
    // Answer the second first; each answer reaches only its own caller.
    let r = call(
        &mut host,
        "__org.guestlink_guest-reply",
        json!({"tag": tags[&2], "return": "for two"}),
    );
    assert_eq!(r, json!({"return": {}}));
    let r = call(
        &mut host,
        "__org.guestlink_guest-reply",
        json!({"tag": tags[&1], "error": {"desc": "refused by host"}}),
    );
    assert_eq!(r, json!({"return": {}}));
    assert_eq!(
        parse(&g2.line()),
        json!({"return": "for two", "id": {"mine": 2}})
    );
    let r = parse(&g1.line());
    assert_eq!((desc(&r), &r["id"]), ("refused by host", &json!("first")));
    g1.silence(200);
    g2.silence(200);
    // Guest clients reach only guest-scope commands.
    let r = g1.json(br#"{"execute":"guest-exec","arguments":{"path":"/bin/true"}}"#);
    assert_eq!(r["error"]["class"], "CommandNotFound");
    agent.terminate();
}

#[test]
fn events_are_multicast_to_guest_clients() {
    let (agent, file, _dir) = start();
    let mut clients: Vec<Conn> = (0..3).map(|_| agent.connect_guest()).collect();
    for c in &mut clients {
        subscribe(c, &["SESSION_NEW", "SESSION_ACTIVE"]);
    }
    write_sessions(
        &file,
        json!([{"id": "5", "uid": 1000, "user": "alice", "active": true}]),
    );
    for c in &mut clients {
        let names: Vec<Value> = (0..2).map(|_| event(c)["event"].clone()).collect();
        assert_eq!(names, ["SESSION_NEW", "SESSION_ACTIVE"]);
    }
    agent.terminate();
}

/// Reads events until `total` CLIPBOARD_CHANGED have been received or reported
/// dropped; returns (received, dropped).
fn drain_clipboard_events(c: &mut Conn, total: u64) -> (u64, u64) {
    let (mut got, mut dropped) = (0, 0);
    while got + dropped < total {
        let e = event(c);
        match e["event"].as_str().unwrap() {
            "CLIPBOARD_CHANGED" => got += 1,
            "EVENTS_DROPPED" => dropped += e["data"]["count"].as_u64().unwrap(),
            other => panic!("unexpected {other}"),
        }
    }
    (got, dropped)
}

#[test]
fn a_stalled_client_loses_its_own_events_only() {
    const FLOOD: u64 = 4000;
    // No session source: any session a session agent names is taken.
    let agent = Agent::start(GUESTLINKD, &[]);
    let mut host = agent.connect();
    subscribe(&mut host, &["CLIPBOARD_CHANGED"]);
    let mut stalled = agent.connect_guest();
    subscribe(&mut stalled, &["CLIPBOARD_CHANGED"]);
    let mut session_agent = agent.connect_guest();
    let r = call(
        &mut session_agent,
        "__org.guestlink_session-register",
        json!({"session": "s9"}),
    );
    assert_eq!(r["return"]["session"], "s9");
    // The host reads as events come, on its own thread.
    let reader = std::thread::spawn(move || {
        let counts = drain_clipboard_events(&mut host, FLOOD);
        (counts, host)
    });
    let started = Instant::now();
    for i in 0..FLOOD {
        let r = call(
            &mut session_agent,
            "__org.guestlink_clipboard-grab",
            json!({"types": [format!("text/x-{i}")]}),
        );
        assert_eq!(r, json!({"return": {}}));
    }
    // The stalled client never read; nobody waited for it.
    assert!(started.elapsed() < Duration::from_secs(25));
    let ((got, dropped), mut host) = reader.join().unwrap();
    assert_eq!(got + dropped, FLOOD);
    assert_eq!(
        call(&mut host, "guest-ping", json!({})),
        json!({"return": {}})
    );
    // The stalled client now reads: what it missed is counted, not lost silently.
    let (got, dropped) = drain_clipboard_events(&mut stalled, FLOOD);
    assert_eq!(got + dropped, FLOOD);
    assert!(dropped > 0, "a client that never read dropped nothing");
    agent.terminate();
}

/// Runs `requests` on the guest socket as user `uid` (through python3, which the test
/// machine has) and returns one reply per request.
fn as_user(uid: u32, socket: &Path, requests: &[Value]) -> Vec<Value> {
    let script = r#"
import socket, sys, json
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile('rwb')
for line in sys.argv[2:]:
    f.write(line.encode() + b'\n'); f.flush()
    print(f.readline().decode().strip(), flush=True)
"#;
    let mut args = vec![socket.display().to_string()];
    args.extend(requests.iter().map(Value::to_string));
    python_as(uid, script, &args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn other_users_are_refused_a_session_that_is_not_theirs() {
    let (agent, file, _dir) = start();
    // The scratch directory must let the test users reach the socket.
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&agent.dir, mode).unwrap();
    write_sessions(
        &file,
        json!([
            {"id": "a", "uid": 1000, "user": "alice", "active": true},
            {"id": "b", "uid": 1001, "user": "bob"}
        ]),
    );
    let mut host = agent.connect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while call(&mut host, "__org.guestlink_get-sessions", json!({}))["return"]
        .as_array()
        .unwrap()
        .len()
        < 2
    {
        assert!(Instant::now() < deadline, "sessions never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Alice's session agent, holding her clipboard.
    let mut alice = agent.connect_guest();
    let sock = agent.guest_socket();
    let r = as_user(
        1001,
        &sock,
        &[json!({"execute": "__org.guestlink_session-register", "arguments": {"session": "a"}})],
    );
    assert_eq!(desc(&r[0]), "session 'a' belongs to another user");
    let r = call(
        &mut alice,
        "__org.guestlink_session-register",
        json!({"session": "a"}),
    );
    assert_eq!(r["return"]["session"], "a", "{r}");
    // Bob cannot read Alice's clipboard, nor announce one for her.
    let r = as_user(
        1001,
        &sock,
        &[
            json!({"execute": "__org.guestlink_clipboard-get", "arguments": {}}),
            json!({"execute": "__org.guestlink_clipboard-grab", "arguments": {"types": ["text/plain"]}}),
            json!({"execute": "guest-get-osinfo"}),
        ],
    );
    assert_eq!(desc(&r[0]), "no session agent serves this user's session");
    assert_eq!(
        desc(&r[1]),
        "only a registered session agent announces its clipboard"
    );
    assert_eq!(r[2]["error"]["class"], "CommandNotFound");
    alice.silence(200);
    agent.terminate();
}

#[test]
fn the_guest_socket_refuses_oversized_messages_and_keeps_serving() {
    let agent = Agent::start(GUESTLINKD, &[]);
    let mut g = agent.connect_guest();
    let big = "A".repeat(45 << 20);
    g.send(format!("{{\"execute\":\"guest-ping\",\"arguments\":{{\"x\":\"{big}\"}}}}").as_bytes());
    let r = parse(&g.line());
    assert_eq!(r["error"]["class"], "GenericError", "{r}");
    // Whatever the rest of that message did, a sync brings the client back.
    g.resync(9);
    assert_eq!(
        g.json(br#"{"execute":"guest-ping"}"#),
        json!({"return": {}})
    );
    agent.terminate();
}
