//! Events, forwarded requests and the session clipboard through the core, with a host
//! conversation and guest conversations as front ends would open them.

use guestlink_core::Call;
use std::sync::Arc;
use std::time::Duration;

use guestlink_core::platform::Account;
use guestlink_core::state::sessions::LoginSession;
use guestlink_core::testing::{fake_platform, FakeAccounts, FakeFilesystems, FakeSystem};
use guestlink_core::{Agent, AgentConfig, CallContext, Caller, Connection, Protocol, Subscription};
use serde_json::{json, Value};

fn agent() -> Agent {
    agent_with(AgentConfig::new("test", scratch()), FakeSystem::default())
}

fn scratch() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("guestlink-core-events-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn agent_with(config: AgentConfig, system: FakeSystem) -> Agent {
    let mut platform = fake_platform(system, 0);
    platform.filesystems = Arc::new(FakeFilesystems::with_mounts(
        Arc::default(),
        &["/", "/home"],
    ));
    let account = |uid| Account {
        uid,
        gid: uid,
        home: "/home/x".into(),
        admin: false,
    };
    platform.accounts = Arc::new(FakeAccounts([("carol".to_string(), account(1003))].into()));
    Agent::new(config, platform)
}

fn login(id: &str, uid: u32, active: bool) -> LoginSession {
    LoginSession {
        id: id.into(),
        uid,
        user: format!("user{uid}"),
        seat: Some("seat0".into()),
        active,
        locked: false,
    }
}

fn host(a: &Agent) -> (Connection, Subscription) {
    a.connect(CallContext::host(Protocol::Qga, "qga"))
}

fn guest(a: &Agent, uid: u32) -> (Connection, Subscription) {
    a.connect(CallContext {
        caller: Caller::Guest { uid, pid: 4242 },
        ..CallContext::host(Protocol::GuestSocket, "agent.sock")
    })
}

async fn run(a: &Agent, c: &Connection, name: &str, args: Value) -> Result<Value, String> {
    let Value::Object(args) = args else { panic!() };
    a.execute(Call::on(c, name, args))
        .await
        .map(|r| r.to_json())
        .map_err(|e| e.to_string())
}

async fn next(s: &mut Subscription) -> (String, Value) {
    let e = tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("an event");
    (e.name.to_string(), e.data.clone())
}

#[tokio::test]
async fn commands_stay_in_their_scope() {
    let a = agent();
    let (h, _) = host(&a);
    let (g, _) = guest(&a, 1000);
    let e = run(
        &a,
        &h,
        "__org.guestlink_host-request",
        json!({"command": "x"}),
    )
    .await;
    assert_eq!(
        e.unwrap_err(),
        "The command __org.guestlink_host-request has not been found"
    );
    let e = run(&a, &g, "guest-exec", json!({"path": "/bin/true"})).await;
    assert_eq!(e.unwrap_err(), "The command guest-exec has not been found");
    let info = run(&a, &g, "guest-info", json!({})).await.unwrap();
    let names: Vec<&str> = info["supported_commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"__org.guestlink_host-request"));
    assert!(names.contains(&"guest-ping"));
    assert!(!names.contains(&"guest-file-open"));
}

#[tokio::test]
async fn subscriptions_choose_events() {
    let a = agent();
    let (h, mut hs) = host(&a);
    let r = run(
        &a,
        &h,
        "__org.guestlink_events-subscribe",
        json!({"events": ["FSTHAW"]}),
    )
    .await
    .unwrap();
    assert_eq!(r, json!({"events": ["FSTHAW"]}));
    let e = run(
        &a,
        &h,
        "__org.guestlink_events-subscribe",
        json!({"events": ["NOPE"]}),
    )
    .await;
    assert_eq!(e.unwrap_err(), "unknown event 'NOPE'");
    let e = run(
        &a,
        &h,
        "__org.guestlink_events-subscribe",
        json!({"heartbeat": -1}),
    )
    .await;
    assert!(e.unwrap_err().contains("'heartbeat'"));
    // Freeze and thaw through the fake back end: only the thaw was subscribed to.
    run(&a, &h, "guest-fsfreeze-freeze", json!({}))
        .await
        .unwrap();
    run(&a, &h, "guest-fsfreeze-thaw", json!({})).await.unwrap();
    let (name, data) = next(&mut hs).await;
    assert_eq!(name, "FSTHAW");
    assert!(data["count"].as_i64().unwrap() > 0);
    assert!(hs.try_next().is_none());
    let all = run(&a, &h, "__org.guestlink_events-subscribe", json!({}))
        .await
        .unwrap();
    assert!(all["events"].as_array().unwrap().len() > 10);
    let none = run(&a, &h, "__org.guestlink_events-unsubscribe", json!({}))
        .await
        .unwrap();
    assert_eq!(none, json!({"events": []}));
}

#[tokio::test]
async fn a_guest_request_reaches_the_host_and_its_answer_the_caller() {
    let a = agent();
    let (g, _) = guest(&a, 1000);
    let e = run(
        &a,
        &g,
        "__org.guestlink_host-request",
        json!({"command": "hello"}),
    )
    .await;
    assert!(e.unwrap_err().contains("no host is listening"));
    let (h, mut hs) = host(&a);
    run(
        &a,
        &h,
        "__org.guestlink_events-subscribe",
        json!({"events": ["GUEST_REQUEST"]}),
    )
    .await
    .unwrap();
    let ask = run(
        &a,
        &g,
        "__org.guestlink_host-request",
        json!({"command": "open-url", "arguments": {"url": "https://example.org"}}),
    );
    let answer = async {
        let (name, data) = next(&mut hs).await;
        assert_eq!(name, "GUEST_REQUEST");
        assert_eq!(data["uid"], 1000);
        assert_eq!(data["command"], "open-url");
        assert_eq!(data["arguments"]["url"], "https://example.org");
        let tag = data["tag"].clone();
        // A reply with both members, or from a guest, is refused.
        let both = run(
            &a,
            &h,
            "__org.guestlink_guest-reply",
            json!({"tag": tag, "return": 1, "error": {"desc": "x"}}),
        )
        .await;
        assert!(both.unwrap_err().contains("exactly one"));
        run(
            &a,
            &h,
            "__org.guestlink_guest-reply",
            json!({"tag": tag, "return": {"opened": true}}),
        )
        .await
        .unwrap();
        let again = run(
            &a,
            &h,
            "__org.guestlink_guest-reply",
            json!({"tag": tag, "return": 0}),
        )
        .await;
        assert!(again.unwrap_err().contains("no request with tag"));
    };
    let (asked, ()) = tokio::join!(ask, answer);
    assert_eq!(asked.unwrap(), json!({"opened": true}));
    assert!(a.state().pending.is_empty());
}

/// A session agent stand-in: answers clipboard requests from its mailbox.
async fn serve_clipboard(a: &Agent, c: &Connection, s: &mut Subscription, text: &str) {
    let (name, data) = next(s).await;
    assert_eq!(name, "SESSION_REQUEST");
    let reply = match data["command"].as_str().unwrap() {
        "__org.guestlink_clipboard-get" => json!({
            "tag": data["tag"],
            "return": {"mime-type": "text/plain;charset=utf-8", "data": base64(text)},
        }),
        other => json!({"tag": data["tag"], "error": {"desc": format!("not {other}")}}),
    };
    run(a, c, "__org.guestlink_session-reply", reply)
        .await
        .unwrap();
}

fn base64(s: &str) -> String {
    guestlink_vocabulary::types::base64_encode(s.as_bytes())
}

#[tokio::test]
async fn clipboards_go_through_the_right_session_agent() {
    let a = agent();
    let (h, mut hs) = host(&a);
    let (alice, mut alice_s) = guest(&a, 1000);
    let (bob, mut bob_s) = guest(&a, 1001);
    let (mallory, _) = guest(&a, 1002);
    a.update_sessions(vec![login("1", 1000, false), login("2", 1001, true)]);
    run(
        &a,
        &h,
        "__org.guestlink_events-subscribe",
        json!({"events": ["CLIPBOARD_CHANGED"]}),
    )
    .await
    .unwrap();
    for (c, s) in [(&alice, "1"), (&bob, "2")] {
        run(
            &a,
            c,
            "__org.guestlink_session-register",
            json!({"session": s}),
        )
        .await
        .unwrap();
    }
    // Bob's session is the active one: his agent serves the host.
    run(
        &a,
        &bob,
        "__org.guestlink_clipboard-grab",
        json!({"types": ["text/plain;charset=utf-8"]}),
    )
    .await
    .unwrap();
    let (name, data) = next(&mut hs).await;
    assert_eq!(name, "CLIPBOARD_CHANGED");
    assert_eq!(data["session"], "2");
    let types = run(&a, &h, "__org.guestlink_clipboard-types", json!({}))
        .await
        .unwrap();
    assert_eq!(types["types"], json!(["text/plain;charset=utf-8"]));
    let (got, ()) = tokio::join!(
        run(&a, &h, "__org.guestlink_clipboard-get", json!({})),
        serve_clipboard(&a, &bob, &mut bob_s, "from bob")
    );
    assert_eq!(got.unwrap()["data"], base64("from bob"));
    // Alice's programs reach Alice's clipboard only; Mallory has none.
    let (got, ()) = tokio::join!(
        run(&a, &alice, "__org.guestlink_clipboard-get", json!({})),
        serve_clipboard(&a, &alice, &mut alice_s, "from alice")
    );
    assert_eq!(got.unwrap()["data"], base64("from alice"));
    let e = run(&a, &mallory, "__org.guestlink_clipboard-get", json!({})).await;
    assert_eq!(
        e.unwrap_err(),
        "no session agent serves this user's session"
    );
    let e = run(
        &a,
        &mallory,
        "__org.guestlink_clipboard-grab",
        json!({"types": []}),
    )
    .await;
    assert!(e.unwrap_err().contains("registered session agent"));
    // An agent error is the caller's error; an agent that leaves is forgotten.
    let (set, ()) = tokio::join!(
        run(
            &a,
            &h,
            "__org.guestlink_clipboard-set",
            json!({"mime-type": "text/plain", "data": base64("x")})
        ),
        serve_clipboard(&a, &bob, &mut bob_s, "")
    );
    assert_eq!(set.unwrap_err(), "not __org.guestlink_clipboard-set");
    a.disconnect(&bob);
    drop((bob, bob_s));
    a.update_sessions(vec![login("1", 1000, true)]);
    let (got, ()) = tokio::join!(
        run(&a, &h, "__org.guestlink_clipboard-get", json!({})),
        serve_clipboard(&a, &alice, &mut alice_s, "alice again")
    );
    assert_eq!(got.unwrap()["data"], base64("alice again"));
}

#[tokio::test]
async fn without_a_session_source_only_trusted_users_register_and_none_takes_over() {
    let mut config = AgentConfig::new("test", scratch());
    config.session_users = vec![1001];
    let system = FakeSystem {
        seat_users: vec!["carol".into(), "ghost".into()],
        ..Default::default()
    };
    let a = agent_with(config, system);
    let register = |c| {
        run(
            &a,
            c,
            "__org.guestlink_session-register",
            json!({"session": "s"}),
        )
    };
    // Mallory is neither root, nor configured, nor on the seat.
    let (mallory, _) = guest(&a, 1002);
    let e = register(&mallory).await.unwrap_err();
    assert!(e.contains("uid 1002 may not register"), "{e}");
    assert!(a.state().sessions.list().is_empty());
    // Carol is on the seat (utmp): her agent serves the host.
    let (carol, _carol_s) = guest(&a, 1003);
    register(&carol).await.unwrap();
    assert_eq!(a.state().sessions.host_user().unwrap().unwrap().1, 1003);
    // A configured user, and root, register after her: neither takes the desktop.
    for uid in [1001, 0] {
        let (c, _) = guest(&a, uid);
        let e = run(
            &a,
            &c,
            "__org.guestlink_session-register",
            json!({"session": "t"}),
        )
        .await
        .unwrap_err();
        assert!(e.contains("uid 1003"), "{e}");
    }
    assert_eq!(a.state().sessions.host_user().unwrap().unwrap().1, 1003);
    // Once she leaves, the configured user may serve.
    a.disconnect(&carol);
    let (conf, _conf_s) = guest(&a, 1001);
    register(&conf).await.unwrap();
    assert_eq!(a.state().sessions.host_user().unwrap().unwrap().1, 1001);
}
