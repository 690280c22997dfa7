//! User sessions from logind over D-Bus, end to end: a stand-in logind serves the
//! `org.freedesktop.login1` interfaces on a private `dbus-daemon`, guestlinkd watches
//! it (`--sessions logind`, bus address in `GUESTLINK_SYSTEM_BUS`), and a subscribed
//! host sees a session appear, lock, unlock and go.
//!
//! The real systemd-logind cannot run on the build machine or in the busybox test VM;
//! this checks guestlinkd's D-Bus side against a real bus daemon.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use common::{parse, Agent, Conn, GUESTLINKD};
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

struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logind_sessions_become_events() {
    let mut bus = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("dbus-daemon (package dbus-daemon) is required");
    let mut address = String::new();
    BufReader::new(bus.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    let _bus = Daemon(bus);
    let address = address.trim().to_string();

    let path = OwnedObjectPath::try_from("/org/freedesktop/login1/session/_32").unwrap();
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

    let agent = Agent::start_with(GUESTLINKD, &["--sessions", "logind"], |c| {
        c.env("GUESTLINK_SYSTEM_BUS", &address);
    });
    let mut host = agent.connect();
    let r = host.json(br#"{"execute":"__org.guestlink_events-subscribe","arguments":{"events":["SESSION_NEW","SESSION_LOCK","SESSION_UNLOCK","SESSION_REMOVED","SESSION_ACTIVE"]}}"#);
    assert!(r["return"].is_object(), "{r}");

    // A graphical session appears.
    conn.object_server()
        .at(
            &path,
            Session {
                active: true,
                locked: false,
            },
        )
        .await
        .unwrap();
    sessions.lock().unwrap().push((
        "2".into(),
        1000,
        "alice".into(),
        "seat0".into(),
        path.clone(),
    ));
    let manager = conn
        .object_server()
        .interface::<_, Manager>("/org/freedesktop/login1")
        .await
        .unwrap();
    Manager::session_new(manager.signal_emitter(), "2", path.as_ref())
        .await
        .unwrap();
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
