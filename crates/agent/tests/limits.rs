//! What one guest user or one host client may take from the agent, against the real
//! binary: connections per user and per listening channel, memory in messages not yet
//! complete, requests waiting for the host, idle clients, and a file system that never
//! answers. Unprivileged users are played by python3 running as uid 65534.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const NOBODY: u32 = 65534;

/// An agent whose scratch directory unprivileged users can reach.
fn open_agent(extra: &[&str], env: &[(&str, &str)]) -> Agent {
    let agent = Agent::start_with(GUESTLINKD, extra, |c| {
        for (k, v) in env {
            c.env(k, v);
        }
    });
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&agent.dir, mode).unwrap();
    agent
}

/// Runs `script` as uid 65534 with the guest socket as its first argument.
fn as_nobody(agent: &Agent, script: &str, args: &[&str]) -> String {
    let mut all = vec![agent.guest_socket().display().to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    python_as(NOBODY, script, &all)
}

const PINGS: &str = r#"
import json, socket, sys
out = []
conns = []
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
    conns.append(s)
for s in conns:
    try:
        s.sendall(b'{"execute":"guest-ping"}\n')
    except OSError:
        pass  # a refused connection is closed: its error is still there to read
    try:
        out.append(json.loads(s.makefile('rb').readline()))
    except (OSError, ValueError) as e:
        out.append({"oserror": str(e)})
print(json.dumps(out))
"#;

#[test]
fn one_user_cannot_take_every_connection() {
    let agent = open_agent(&[], &[]);
    let replies: Vec<Value> = serde_json::from_str(&as_nobody(&agent, PINGS, &["12"])).unwrap();
    let ok = replies.iter().filter(|r| r.get("return").is_some()).count();
    assert_eq!(ok, 8, "{replies:?}");
    for r in &replies[8..] {
        assert!(desc(r).contains("limit guest-clients-per-user: 8"), "{r}");
    }
    // Everybody else still gets in, root first of all.
    let mut root = agent.connect_guest();
    assert_eq!(
        root.json(br#"{"execute":"guest-ping"}"#),
        json!({"return": {}})
    );
    // The places were given back when the user's program ended.
    let replies: Vec<Value> = serde_json::from_str(&as_nobody(&agent, PINGS, &["8"])).unwrap();
    assert!(
        replies.iter().all(|r| r.get("return").is_some()),
        "{replies:?}"
    );
    agent.terminate();
}

const BIG_PARTIAL: &str = r#"
import json, socket, sys, threading
size = int(sys.argv[3])
conns = []
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])
    conns.append(s)
def send(s):
    try:
        s.sendall(b'{"execute":"guest-ping","arguments":{"x":"' + b'A' * size)
    except OSError:
        pass
threads = [threading.Thread(target=send, args=(s,)) for s in conns]
for t in threads: t.start()
for t in threads: t.join()
out = []
for s in conns:
    try:
        out.append(json.loads(s.makefile('rb').readline()))
    except Exception as e:
        out.append({"oserror": str(e)})
print(json.dumps(out))
"#;

#[test]
fn one_user_cannot_grow_the_agent_with_large_messages() {
    let agent = open_agent(&[], &[]);
    let pid = agent.pid();
    let (_, before) = memory(pid);
    // 8 connections (all the user may have), each sending 42 MiB that never ends:
    // 336 MiB offered, a message of at most 4 MiB each kept.
    let out = as_nobody(&agent, BIG_PARTIAL, &["8", &(42 << 20).to_string()]);
    let replies: Vec<Value> = serde_json::from_str(&out).unwrap();
    for r in &replies {
        assert_eq!(desc(r), "JSON token size limit exceeded", "{r}");
    }
    let (peak, _) = memory(pid);
    let grown = (peak - before) >> 10;
    eprintln!("peak grew by {grown} MiB");
    assert!(grown < 64, "guestlinkd grew by {grown} MiB");
    let mut root = agent.connect_guest();
    assert_eq!(
        root.json(br#"{"execute":"guest-ping"}"#),
        json!({"return": {}})
    );
    agent.terminate();
}

const HOST_REQUESTS: &str = r#"
import json, socket, sys, time
n = int(sys.argv[2]); timeout = int(sys.argv[3])
conns = [socket.socket(socket.AF_UNIX) for _ in range((n + 15) // 16)]
for s in conns:
    s.settimeout(30); s.connect(sys.argv[1])
for i in range(n):
    req = {"execute": "__org.guestlink_host-request", "id": i,
           "arguments": {"command": "wait", "timeout": timeout}}
    conns[i // 16].sendall(json.dumps(req).encode() + b"\n")
if len(sys.argv) > 4:
    # The one beyond the limit, on a connection of its own: its answer comes at once.
    s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])
    s.sendall(b'{"execute":"__org.guestlink_host-request","id":"extra","arguments":{"command":"x"}}\n')
    print(s.makefile('rb').readline().decode().strip())
    sys.stdout.flush()
    time.sleep(float(sys.argv[4]))
else:
    print(conns[0].makefile('rb').readline().decode().strip())
"#;

/// Reads event lines until `count` GUEST_REQUEST events arrived.
fn await_requests(host: &mut Conn, count: usize) {
    let mut seen = 0;
    while seen < count {
        let line = parse(&host.line());
        if line["event"] == "GUEST_REQUEST" {
            seen += 1;
        }
    }
}

#[test]
fn a_user_gone_frees_its_requests_at_once_and_holds_no_more_than_its_share() {
    let agent = open_agent(&[], &[]);
    let mut host = agent.connect();
    let r = host.json(br#"{"execute":"__org.guestlink_events-subscribe","arguments":{"events":["GUEST_REQUEST"]}}"#);
    assert!(r.get("return").is_some(), "{r}");
    // 32 requests the host never answers, then one more: refused at once.
    let socket = agent.guest_socket().display().to_string();
    let script = HOST_REQUESTS.to_string();
    let user = std::thread::spawn(move || {
        python_as(
            NOBODY,
            &script,
            &[socket, "32".into(), "3600".into(), "1.5".into()],
        )
    });
    await_requests(&mut host, 32);
    let out = user.join().unwrap();
    let extra: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(
        desc(&extra).contains("limit pending-requests-per-user: 32"),
        "{extra}"
    );
    // The program has ended: its 32 requests are gone with it, not an hour later.
    let started = Instant::now();
    let out = as_nobody(&agent, HOST_REQUESTS, &["1", "1"]);
    let r: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(desc(&r), "the host did not answer within 1 seconds", "{r}");
    assert!(started.elapsed() < Duration::from_secs(10));
    agent.terminate();
}

#[test]
fn an_idle_client_is_closed_but_a_subscriber_stays() {
    let agent = open_agent(&[], &[("GUESTLINK_GUEST_IDLE_TIMEOUT", "1")]);
    let mut idle = agent.connect_guest();
    let mut subscriber = agent.connect_guest();
    let r = subscriber.json(
        br#"{"execute":"__org.guestlink_events-subscribe","arguments":{"events":["SESSION_NEW"]}}"#,
    );
    assert!(r.get("return").is_some(), "{r}");
    // One whose request to the host has ended (nobody listens) is idle again.
    let mut waited = agent.connect_guest();
    let r =
        waited.json(br#"{"execute":"__org.guestlink_host-request","arguments":{"command":"x"}}"#);
    assert!(desc(&r).starts_with("no host is listening"), "{r}");
    for c in [&mut idle, &mut waited] {
        let closed = parse(&c.line());
        assert_eq!(
            desc(&closed),
            "closing an idle connection (limit guest-idle-timeout: 1 s)"
        );
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        subscriber.json(br#"{"execute":"guest-ping"}"#),
        json!({"return": {}})
    );
    agent.terminate();
}

#[test]
fn a_listening_channel_bounds_its_clients_and_their_partial_messages() {
    let agent = Agent::start(GUESTLINKD, &[]);
    let (_, before) = memory(agent.pid());
    // The start-up probe's connection leaves when the agent has read its end.
    std::thread::sleep(Duration::from_millis(300));
    let mut held: Vec<Conn> = (0..16).map(|_| agent.connect()).collect();
    for c in &mut held {
        assert_eq!(
            c.json(br#"{"execute":"guest-ping"}"#),
            json!({"return": {}})
        );
    }
    let mut refused = agent.connect();
    assert_eq!(
        desc(&parse(&refused.line())),
        "too many clients (limit listen-clients: 16)"
    );
    // Each of them sends 60 MiB of a message that never ends: what they may hold
    // together is bounded, and those past the budget are told why.
    let chunk = vec![b'A'; 1 << 20];
    for c in &mut held {
        let _ =
            std::io::Write::write_all(&mut c.s, br#"{"execute":"guest-ping","arguments":{"x":""#);
        for _ in 0..60 {
            if std::io::Write::write_all(&mut c.s, &chunk).is_err() {
                break;
            }
        }
    }
    let turned_away = told_of_the_budget(&mut held);
    assert!(turned_away > 0, "nobody hit the budget");
    eprintln!("16 clients x 60 MiB: {turned_away} turned away");
    bounded_and_serving(agent, before, held);
}

/// How many of `held` were told of the shared partial-message budget: each is read
/// until it closes or stays silent for 2 s, all at once.
fn told_of_the_budget(held: &mut [Conn]) -> usize {
    std::thread::scope(|scope| {
        let readers: Vec<_> = held
            .iter_mut()
            .map(|c| {
                scope.spawn(move || {
                    c.s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    let mut got = Vec::new();
                    let _ = std::io::Read::read_to_end(&mut c.s, &mut got);
                    String::from_utf8_lossy(&got).contains("limit partial-message-bytes: 256 MiB")
                })
            })
            .collect();
        readers
            .into_iter()
            .map(|r| r.join().unwrap_or(false))
            .filter(|&told| told)
            .count()
    })
}

/// The agent grew by less than 400 MiB over `before` (KiB) while `held` held it, and
/// answers once they are gone.
fn bounded_and_serving(agent: Agent, before: u64, held: Vec<Conn>) {
    let (peak, _) = memory(agent.pid());
    let grown = (peak - before) >> 10;
    eprintln!("peak grew by {grown} MiB");
    assert!(grown < 400, "guestlinkd grew by {grown} MiB");
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    let mut after = agent.connect();
    assert_eq!(
        after.json(br#"{"execute":"guest-ping"}"#),
        json!({"return": {}})
    );
    agent.terminate();
}

#[test]
fn raw_payloads_are_charged_before_they_are_read() {
    let agent = Agent::start(GUESTLINKD, &[]);
    let dir = scratch("raw-charge");
    std::thread::sleep(Duration::from_millis(300));
    let (_, before) = memory(agent.pid());
    // Sixteen hosts in bulk mode each announce a 48 MiB raw write, send 1 MiB of it
    // and stall: the agent holds each payload whole before the write runs, so what
    // it would hold for them together is bounded like any partial message.
    let mut held: Vec<Conn> = (0..16).map(|_| agent.connect()).collect();
    for (i, c) in held.iter_mut().enumerate() {
        let on = c.json(br#"{"execute":"__org.guestlink_bulk-enable"}"#);
        assert!(on.get("return").is_some(), "{on}");
        let open = json!({"execute": "guest-file-open",
                          "arguments": {"path": dir.join(format!("f{i}")), "mode": "w"}});
        let handle = c.json(open.to_string().as_bytes())["return"]
            .as_i64()
            .unwrap();
        let write = json!({"execute": "__org.guestlink_file-write-raw",
                           "arguments": {"handle": handle, "count": 48 << 20}});
        let _ = std::io::Write::write_all(&mut c.s, write.to_string().as_bytes());
        let _ = std::io::Write::write_all(&mut c.s, &vec![b'x'; 1 << 20]);
    }
    // Five payloads of 48 MiB fit in 256 MiB, the sixth does not.
    assert_eq!(
        told_of_the_budget(&mut held),
        11,
        "hosts told of the budget"
    );
    bounded_and_serving(agent, before, held);
}

#[test]
fn a_raw_payload_once_read_is_no_longer_charged() {
    // Six hosts in turn send a whole 48 MiB raw write and stay connected: each payload
    // is charged only while it arrives, so the sixth fits as well as the first.
    let agent = Agent::start(GUESTLINKD, &[]);
    let dir = scratch("raw-uncharge");
    let mut held = Vec::new();
    for i in 0..6 {
        let mut c = agent.connect();
        let on = c.json(br#"{"execute":"__org.guestlink_bulk-enable"}"#);
        assert!(on.get("return").is_some(), "{on}");
        let open = json!({"execute": "guest-file-open",
                          "arguments": {"path": dir.join(format!("f{i}")), "mode": "w"}});
        let handle = c.json(open.to_string().as_bytes())["return"]
            .as_i64()
            .unwrap();
        let write = json!({"execute": "__org.guestlink_file-write-raw",
                           "arguments": {"handle": handle, "count": 48 << 20}});
        let mut request = write.to_string().into_bytes();
        request.extend(vec![b'x'; 48 << 20]);
        let r = c.json(&request);
        assert_eq!(r["return"]["count"], 48 << 20, "host {i}: {r}");
        held.push(c);
    }
    agent.terminate();
}

#[test]
fn a_session_agent_of_a_user_may_send_the_largest_clipboard_in_base64() {
    // A session agent without bulk transfer (an older guestlink-session) sends a 64
    // MiB clipboard as one 85 MiB message: within what its user may hold. The
    // clipboard it sets is its own session's, so it comes back to it as a
    // SESSION_REQUEST with every byte.
    let script = r#"
import base64, json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(60); s.connect(sys.argv[1])
f = s.makefile('rb')
s.sendall(b'{"execute":"__org.guestlink_session-register","arguments":{"session":"x"}}\n')
assert b'"return"' in f.readline()
data = base64.b64encode(bytes(64 << 20)).decode()
try:
    s.sendall(json.dumps({"execute": "__org.guestlink_clipboard-set",
                          "arguments": {"mime-type": "text/plain", "data": data}}).encode() + b'\n')
    s.sendall(b'{"execute":"guest-ping"}\n')
    while True:
        v = json.loads(f.readline())
        if v.get("event") == "SESSION_REQUEST":
            print("request", len(v["data"]["arguments"]["data"]) == len(data))
        else:
            print(json.dumps(v)[:300])
            break
except BrokenPipeError:
    print(f.readline().decode().strip()[:300])
"#;
    let agent = open_agent(&["--sessions", "none", "--session-user", "nobody"], &[]);
    let out = as_nobody(&agent, script, &[]);
    assert_eq!(out.trim(), "request True\n{\"return\": {}}", "{out}");
    agent.terminate();
}

#[test]
fn a_users_raw_clipboards_are_charged_to_that_user() {
    // Two session agents of one user announce a 64 MiB raw clipboard each and stall:
    // the first payload is held, the second would pass the user's share.
    let script = r#"
import json, socket, sys
out = []
conns = []
for i in range(2):
    s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
    f = s.makefile('rb')
    s.sendall(json.dumps({"execute": "__org.guestlink_session-register",
                          "arguments": {"session": f"s{i}"}}).encode() + b'\n')
    r = f.readline()
    assert b'"return"' in r, r
    s.sendall(b'{"execute":"__org.guestlink_bulk-enable"}\n')
    assert b'"return"' in f.readline()
    s.sendall(json.dumps({"execute": "__org.guestlink_clipboard-set-raw",
                          "arguments": {"mime-type": "text/plain", "count": 64 << 20}}).encode())
    try:
        s.sendall(bytes(1024))
    except OSError:
        pass  # refused and closed already: its error is still there to read
    s.settimeout(1)
    try:
        out.append(f.readline().decode().strip() or "closed")
    except socket.timeout:
        out.append("held")
    except OSError as e:
        out.append(f"oserror: {e}")
    conns.append(s)
print(json.dumps(out))
"#;
    let agent = open_agent(&["--sessions", "none", "--session-user", "nobody"], &[]);
    let out: Vec<String> = serde_json::from_str(as_nobody(&agent, script, &[]).trim()).unwrap();
    assert_eq!(out[0], "held", "{out:?}");
    assert!(
        out[1].contains("limit partial-message-bytes-per-user: 96 MiB"),
        "{out:?}"
    );
    agent.terminate();
}

#[test]
fn without_a_session_source_only_a_configured_user_registers() {
    let register = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b'{"execute":"__org.guestlink_session-register","arguments":{"session":"x"}}\n')
print(s.makefile('rb').readline().decode().strip())
"#;
    let agent = open_agent(&["--sessions", "none"], &[]);
    let r: Value = serde_json::from_str(as_nobody(&agent, register, &[]).trim()).unwrap();
    assert!(
        desc(&r).starts_with("uid 65534 may not register a session agent"),
        "{r}"
    );
    agent.terminate();
    let agent = open_agent(&["--sessions", "none", "--session-user", "nobody"], &[]);
    let r: Value = serde_json::from_str(as_nobody(&agent, register, &[]).trim()).unwrap();
    assert_eq!(r["return"]["uid"], 65534, "{r}");
    agent.terminate();
}

/// A FUSE mount whose server never answers: every access to it blocks until the
/// connection is aborted (by closing the `/dev/fuse` descriptor, on drop).
struct HungMount {
    dir: std::path::PathBuf,
    fuse: Option<std::fs::File>,
}

impl HungMount {
    fn new(dir: std::path::PathBuf) -> HungMount {
        use std::os::fd::AsRawFd;
        std::fs::create_dir_all(&dir).unwrap();
        let fuse = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .expect("/dev/fuse (the test runs as root)");
        let opts = format!(
            "fd={},rootmode=40000,user_id=0,group_id=0",
            fuse.as_raw_fd()
        );
        let c = |s: &str| std::ffi::CString::new(s).unwrap();
        let target = c(dir.to_str().unwrap());
        // SAFETY: every pointer is a NUL-terminated string that outlives the call.
        let r = unsafe {
            libc::mount(
                c("hung").as_ptr(),
                target.as_ptr(),
                c("fuse").as_ptr(),
                0,
                c(&opts).as_ptr().cast(),
            )
        };
        assert_eq!(r, 0, "mount: {}", std::io::Error::last_os_error());
        HungMount {
            dir,
            fuse: Some(fuse),
        }
    }

    /// Aborts the connection: what waits on it fails with ENOTCONN.
    fn abort(&mut self) {
        self.fuse.take();
    }
}

impl Drop for HungMount {
    fn drop(&mut self) {
        self.abort();
        let c = std::ffi::CString::new(self.dir.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn a_hung_file_system_stalls_only_the_call_on_it() {
    let agent = Agent::start(GUESTLINKD, &[]);
    let mut mount = HungMount::new(agent.dir.join("hung"));
    let mut stuck = agent.connect();
    let open = format!(
        r#"{{"execute":"guest-file-open","arguments":{{"path":"{}/file"}}}}"#,
        mount.dir.display()
    );
    stuck.send(open.as_bytes());
    std::thread::sleep(Duration::from_millis(300));
    // Every other conversation goes on: the host's, and the guest socket's.
    for _ in 0..3 {
        let started = Instant::now();
        let mut other = agent.connect();
        assert_eq!(
            other.json(br#"{"execute":"guest-ping"}"#),
            json!({"return": {}})
        );
        let r = other.json(br#"{"execute":"guest-get-osinfo"}"#);
        assert!(r.get("return").is_some(), "{r}");
        let mut guest = agent.connect_guest();
        assert_eq!(
            guest.json(br#"{"execute":"guest-ping"}"#),
            json!({"return": {}})
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // The stuck open is still waiting; when the mount dies, it fails like qemu-ga's.
    stuck.silence(200);
    mount.abort();
    let r = parse(&stuck.line());
    assert!(
        desc(&r).contains("Transport endpoint is not connected"),
        "{r}"
    );
    assert_eq!(
        stuck.json(br#"{"execute":"guest-ping"}"#),
        json!({"return": {}})
    );
    drop(mount);
    agent.terminate();
}
