//! User sessions from logind over D-Bus, end to end: a stand-in logind serves the
//! `org.freedesktop.login1` interfaces on a private `dbus-daemon`, guestlinkd watches
//! it (`--sessions logind`, bus address in `GUESTLINK_SYSTEM_BUS`), and a subscribed
//! host sees a session appear, lock, unlock and go.
//!
//! The real systemd-logind cannot run on the build machine or in the busybox test VM;
//! this checks guestlinkd's D-Bus side against a real bus daemon.

mod common;

use std::sync::{Arc, Mutex};

use common::{parse, Agent, AgentExt, Conn, PrivateBus, GUESTLINKD};
use serde_json::{json, Value};
use zbus::object_server::SignalEmitter;
use zbus::{ObjectPath, OwnedObjectPath};

type Row = (String, u32, String, String, OwnedObjectPath);

struct Manager {
    sessions: Arc<Mutex<Vec<Row>>>,
}

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl Manager {
    fn list_sessions(&self) -> Vec<Row> {
        self.sessions.lock().unwrap().clone()
    }

    /// As logind: the session's locker is told with the session's `Lock` signal.
    async fn lock_session(
        &self,
        id: &str,
        #[zbus(object_server)] server: &zbus::ObjectServer,
    ) -> zbus::fdo::Result<()> {
        let path = self.path_of(id)?;
        let session = server.interface::<_, Session>(&path).await?;
        Session::lock(session.signal_emitter())
            .await
            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))
    }

    /// As logind: the session goes, and `SessionRemoved` says so.
    async fn terminate_session(
        &self,
        id: &str,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<()> {
        let path = self.path_of(id)?;
        self.sessions.lock().unwrap().retain(|r| r.0 != id);
        Manager::session_removed(&emitter, id, path.as_ref())
            .await
            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))
    }

    #[zbus(signal)]
    async fn session_new(e: &SignalEmitter<'_>, id: &str, path: ObjectPath<'_>)
        -> zbus::Result<()>;

    #[zbus(signal)]
    async fn session_removed(
        e: &SignalEmitter<'_>,
        id: &str,
        path: ObjectPath<'_>,
    ) -> zbus::Result<()>;
}

impl Manager {
    fn path_of(&self, id: &str) -> zbus::fdo::Result<OwnedObjectPath> {
        self.sessions
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.0 == id)
            .map(|r| r.4.clone())
            .ok_or_else(|| zbus::fdo::Error::Failed(format!("No session '{id}' known")))
    }
}

struct Session {
    active: bool,
    locked: bool,
}

#[zbus::interface(name = "org.freedesktop.login1.Session")]
impl Session {
    #[zbus(property)]
    fn active(&self) -> bool {
        self.active
    }

    #[zbus(property)]
    fn locked_hint(&self) -> bool {
        self.locked
    }

    #[zbus(signal)]
    async fn lock(e: &SignalEmitter<'_>) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn unlock(e: &SignalEmitter<'_>) -> zbus::Result<()>;
}

fn event(c: &mut Conn, name: &str) -> Value {
    loop {
        let v = parse(&c.line());
        if v["event"] == name {
            return v;
        }
        assert!(v.get("event").is_some(), "not an event: {v}");
    }
}

/// A private bus with a stand-in logind on it.
struct StandIn {
    _bus: PrivateBus,
    address: String,
    conn: zbus::Connection,
    sessions: Arc<Mutex<Vec<Row>>>,
}

impl StandIn {
    async fn start() -> StandIn {
        let bus = PrivateBus::start();
        let address = bus.address.clone();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let conn = zbus::connection::Builder::address(address.as_str())
            .name("org.freedesktop.login1")
            .serve_at(
                "/org/freedesktop/login1",
                Manager {
                    sessions: sessions.clone(),
                },
            )
            .build()
            .await
            .unwrap();
        StandIn {
            _bus: bus,
            address,
            conn,
            sessions,
        }
    }

    /// An active graphical session of alice (uid 1000) appears.
    async fn add_session(&self, id: &str, path: &OwnedObjectPath) {
        self.conn
            .object_server()
            .at(
                path,
                Session {
                    active: true,
                    locked: false,
                },
            )
            .await
            .unwrap();
        self.sessions.lock().unwrap().push((
            id.into(),
            1000,
            "alice".into(),
            "seat0".into(),
            path.clone(),
        ));
        let manager = self.manager().await;
        Manager::session_new(manager.signal_emitter(), id, path.as_ref())
            .await
            .unwrap();
    }

    async fn manager(&self) -> zbus::object_server::InterfaceRef<Manager> {
        self.conn
            .object_server()
            .interface::<_, Manager>("/org/freedesktop/login1")
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logind_sessions_become_events() {
    let logind = StandIn::start().await;
    let (address, conn, sessions) = (&logind.address, &logind.conn, &logind.sessions);
    let path = OwnedObjectPath::try_from("/org/freedesktop/login1/session/_32").unwrap();

    let agent = Agent::start_with(GUESTLINKD, &["--sessions", "logind"], |c| {
        c.env("GUESTLINK_SYSTEM_BUS", address);
    });
    let mut host = agent.connect();
    let r = host.json(br#"{"execute":"__org.guestlink_events-subscribe","arguments":{"events":["SESSION_NEW","SESSION_LOCK","SESSION_UNLOCK","SESSION_REMOVED","SESSION_ACTIVE"]}}"#);
    assert!(r["return"].is_object(), "{r}");

    // A graphical session appears.
    logind.add_session("2", &path).await;
    let manager = logind.manager().await;
    let e = event(&mut host, "SESSION_NEW");
    assert_eq!(
        (&e["data"]["id"], &e["data"]["user"], &e["data"]["seat"]),
        (&json!("2"), &json!("alice"), &json!("seat0"))
    );
    assert_eq!(e["data"]["uid"], 1000);
    assert_eq!(event(&mut host, "SESSION_ACTIVE")["data"]["id"], "2");

    // loginctl lock-session: logind signals Lock to the session.
    let session = conn
        .object_server()
        .interface::<_, Session>(&path)
        .await
        .unwrap();
    Session::lock(session.signal_emitter()).await.unwrap();
    assert_eq!(event(&mut host, "SESSION_LOCK")["data"]["id"], "2");
    Session::unlock(session.signal_emitter()).await.unwrap();
    assert_eq!(event(&mut host, "SESSION_UNLOCK")["data"]["user"], "alice");

    // A screen locker that reports itself through LockedHint.
    session.get_mut().await.locked = true;
    session
        .get()
        .await
        .locked_hint_changed(session.signal_emitter())
        .await
        .unwrap();
    assert_eq!(event(&mut host, "SESSION_LOCK")["data"]["id"], "2");

    // The session ends.
    sessions.lock().unwrap().clear();
    Manager::session_removed(manager.signal_emitter(), "2", path.as_ref())
        .await
        .unwrap();
    assert_eq!(event(&mut host, "SESSION_REMOVED")["data"]["id"], "2");
    let active = event(&mut host, "SESSION_ACTIVE");
    assert!(active["data"].get("id").is_none(), "{active}");
    agent.terminate();
}

/// Greeter side of the single sign-on: connects to the agent's credentials socket,
/// writes the token, reads what comes back.
fn greeter(socket: &std::path::Path, token: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(token.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// The same as an unprivileged process (uid 65534), in Python: first it tries to take
/// the socket's name, then to collect; prints what happened, the data in hex.
fn unprivileged_greeter(socket: &std::path::Path, token: &str) -> String {
    let script = r#"
import os, socket, sys
path = sys.argv[1]
squat = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    os.unlink(path)
    print("unlinked")
except OSError as e:
    print("unlink refused:", e.errno)
try:
    squat.bind(path)
    print("bound")
except OSError as e:
    print("bind refused:", e.errno)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect(path)
except OSError as e:
    print("connect refused:", e.errno)
    sys.exit(0)
data = b""
try:
    s.sendall(sys.argv[2].encode())
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except (BrokenPipeError, ConnectionResetError):
    pass
print(data.hex())
"#;
    common::python_as(
        65534,
        script,
        &[socket.display().to_string(), token.to_string()],
    )
    .trim()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ovirt_lock_log_off_and_sign_on_go_through_logind_and_the_greeter() {
    use futures_util::StreamExt as _;
    use guestlink_client::ovirt::Vdsm;
    use guestlink_proto_ovirt::Message;
    use std::time::Duration;
    const T: Duration = Duration::from_secs(10);

    let logind = StandIn::start().await;
    let path = OwnedObjectPath::try_from("/org/freedesktop/login1/session/_33").unwrap();
    logind.add_session("3", &path).await;

    let (stream, _slave, port) = common::host_pty();
    let scratch = common::scratch("sso");
    std::fs::set_permissions(
        &scratch,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let logfile = scratch.join("guestlinkd.log");
    let socket = scratch.join("sso").join("credentials.sock");
    let channel = format!("ovirt=virtio-serial:{}", port.display());
    let log_arg = logfile.display().to_string();
    let agent = Agent::start_with(
        GUESTLINKD,
        &[
            "--sessions",
            "logind",
            "--channel",
            &channel,
            "-l",
            &log_arg,
        ],
        |c| {
            c.env("GUESTLINK_SYSTEM_BUS", &logind.address)
                .env("GUESTLINK_CREDENTIALS_SOCKET", &socket)
                .env("GUESTLINK_LOG", "trace");
        },
    );
    let mut vdsm = Vdsm::new(stream);
    vdsm.connect().await.unwrap();
    vdsm.expect("heartbeat", T).await.unwrap();

    // lock-screen: logind's LockSession → the session's Lock → session-lock.
    vdsm.send(&Message::new("lock-screen")).await.unwrap();
    vdsm.expect("session-lock", T).await.unwrap();

    // login: the token comes on the bus, and only a root greeter that presents it
    // gets the credentials.
    let watcher = zbus::connection::Builder::address(logind.address.as_str())
        .build()
        .await
        .unwrap();
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.ovirt.vdsm.Credentials")
        .member("UserAuthenticated")
        .build()
        .unwrap();
    let mut signals = zbus::MessageStream::for_match_rule(rule, &watcher, None)
        .await
        .unwrap();
    let password = "c0rrect-h0rse-battery";
    vdsm.send(
        &Message::new("login")
            .arg("username", "alice@example.org")
            .arg("password", password),
    )
    .await
    .unwrap();
    let signal = tokio::time::timeout(T, signals.next())
        .await
        .expect("no UserAuthenticated signal")
        .unwrap()
        .unwrap();
    assert_eq!(
        signal.header().path().unwrap().as_str(),
        "/org/ovirt/vdsm/Credentials"
    );
    let token: String = signal.body().deserialize().unwrap();
    // 128 bits from the kernel, not six digits.
    assert!(
        token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{token}"
    );
    let mode = std::fs::metadata(socket.parent().unwrap()).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o700
    );
    let (tok, t2) = (token.clone(), token.clone());
    let (s1, s2, s3) = (socket.clone(), socket.clone(), socket.clone());
    // An unprivileged user can neither take the socket's name nor reach it.
    let nobody = tokio::task::spawn_blocking(move || unprivileged_greeter(&s1, &tok))
        .await
        .unwrap();
    assert_eq!(
        nobody, "unlink refused: 13\nbind refused: 13\nconnect refused: 13",
        "an unprivileged user reached the credentials socket"
    );
    let wrong = tokio::task::spawn_blocking(move || greeter(&s2, "000000"))
        .await
        .unwrap();
    assert!(wrong.is_empty(), "a wrong token got credentials");
    let blob = tokio::task::spawn_blocking(move || greeter(&s3, &t2))
        .await
        .unwrap();
    let mut want = 17u32.to_be_bytes().to_vec();
    want.extend_from_slice(b"alice@example.org");
    want.extend_from_slice(password.as_bytes());
    want.push(0);
    assert_eq!(blob, want);

    // log-off: logind's TerminateSession → SessionRemoved → session-logoff.
    vdsm.send(&Message::new("log-off")).await.unwrap();
    vdsm.expect("session-logoff", T).await.unwrap();
    assert!(logind.sessions.lock().unwrap().is_empty());

    vdsm.send(&Message::new("echo").arg("x", 1)).await.unwrap();
    vdsm.expect("echo", T).await.unwrap();
    drop(agent);
    let log = std::fs::read_to_string(&logfile).unwrap();
    assert!(log.contains("credentials collected"), "{log}");
    assert!(log.contains("sent the wrong token"), "{log}");
    assert!(!socket.exists(), "the socket outlived the hand-off");
    assert!(!log.contains(password), "the password is in the log");
    let _ = std::fs::remove_dir_all(logfile.parent().unwrap());
}
