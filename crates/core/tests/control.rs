//! The host's control of the guest beyond QGA, through fake back ends: a shutdown with
//! a delay and a message, locking and ending sessions, the single sign-on hand-off,
//! and lifecycle hooks from layered action directories.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use guestlink_core::actions::Actions;
use guestlink_core::handlers::control::pack_credentials;
use guestlink_core::platform::ShutdownMode;
use guestlink_core::state::sessions::LoginSession;
use guestlink_core::testing::{
    call_as_host, fake_platform, Action, ActionLog, FakeFilesystems, FakeMachine,
    FakeSessionManager, FakeSystem,
};
use guestlink_core::{Agent, AgentConfig};
use serde_json::{json, Value};

struct Harness {
    agent: Arc<Agent>,
    log: Arc<ActionLog>,
    dir: PathBuf,
}

fn harness(tag: &str, manager: FakeSessionManager, actions: Option<Actions>) -> Harness {
    let dir = std::env::temp_dir().join(format!("gl-control-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = manager.log.clone();
    let mut platform = fake_platform(FakeSystem::default(), 1);
    platform.machine = Arc::new(FakeMachine {
        log: log.clone(),
        ..Default::default()
    });
    platform.session_manager = Arc::new(manager);
    platform.filesystems = Arc::new(FakeFilesystems::with_mounts(log.clone(), &["/data"]));
    let mut config = AgentConfig::new("test", &dir);
    if let Some(a) = actions {
        config.actions = a;
    }
    Harness {
        agent: Arc::new(Agent::new(config, platform)),
        log,
        dir,
    }
}

impl Harness {
    async fn call(&self, name: &str, args: Value) -> Result<Value, String> {
        call_as_host(&self.agent, name, args).await
    }
}

fn session(id: &str, active: bool) -> LoginSession {
    LoginSession {
        id: id.into(),
        uid: 1000,
        user: "alice".into(),
        seat: Some("seat0".into()),
        active,
        locked: false,
    }
}

#[tokio::test]
async fn shutdown_rounds_the_delay_up_to_minutes_and_cleans_the_message() {
    let h = harness("shutdown", FakeSessionManager::default(), None);
    let cases = [
        (
            json!({}),
            ShutdownMode::Powerdown,
            0,
            "hypervisor initiated shutdown",
        ),
        (
            json!({"delay": 1, "mode": "reboot", "message": "bye"}),
            ShutdownMode::Reboot,
            1,
            "bye",
        ),
        (
            json!({"delay": 60, "mode": "halt", "message": "x"}),
            ShutdownMode::Halt,
            1,
            "x",
        ),
        (
            json!({"delay": 61, "message": "x"}),
            ShutdownMode::Powerdown,
            2,
            "x",
        ),
        (
            json!({"delay": 0, "message": "\u{1b}]0;pwned\u{7}going\r\ndown"}),
            ShutdownMode::Powerdown,
            0,
            " ]0;pwned going \ndown",
        ),
    ];
    for (args, mode, minutes, message) in cases {
        let r = h.call("__org.guestlink_shutdown", args.clone()).await;
        assert_eq!(r, Ok(json!({})), "{args}");
        assert_eq!(
            h.log.take(),
            [Action::ScheduleShutdown(mode, minutes, message.into())],
            "{args}"
        );
    }
    let long = "é".repeat(4000);
    h.call("__org.guestlink_shutdown", json!({"message": long}))
        .await
        .unwrap();
    let [Action::ScheduleShutdown(_, _, m)] = &h.log.take()[..] else {
        panic!("no shutdown")
    };
    assert!(
        m.len() <= 1024 && m.chars().all(|c| c == 'é'),
        "{}",
        m.len()
    );

    for (args, text) in [
        (
            json!({"delay": -1}),
            "Parameter 'delay' expects a number of seconds, 0 or more",
        ),
        (
            json!({"mode": "sleep"}),
            "mode is invalid (valid values are: halt|powerdown|reboot",
        ),
    ] {
        assert_eq!(
            h.call("__org.guestlink_shutdown", args).await,
            Err(text.into())
        );
    }
    assert!(h.log.take().is_empty(), "a refused shutdown did something");
}

#[tokio::test]
async fn lock_and_logoff_act_on_the_active_session_or_the_named_one() {
    let manager = FakeSessionManager {
        missing: vec!["9".into()],
        ..Default::default()
    };
    let h = harness("sessions", manager, None);
    for cmd in [
        "__org.guestlink_session-lock",
        "__org.guestlink_session-logoff",
    ] {
        assert_eq!(
            h.call(cmd, json!({})).await,
            Err("no user session is known".into())
        );
    }
    h.agent
        .update_sessions(vec![session("c1", false), session("2", true)]);
    h.call("__org.guestlink_session-lock", json!({}))
        .await
        .unwrap();
    h.call("__org.guestlink_session-logoff", json!({"session": "c1"}))
        .await
        .unwrap();
    assert_eq!(
        h.log.take(),
        [
            Action::LockSession("2".into()),
            Action::TerminateSession("c1".into())
        ]
    );
    assert_eq!(
        h.call("__org.guestlink_session-lock", json!({"session": "9"}))
            .await,
        Err("No session '9' known".into())
    );
    // Sessions known, none active.
    h.agent.update_sessions(vec![session("c1", false)]);
    assert_eq!(
        h.call("__org.guestlink_session-lock", json!({})).await,
        Err("no user session is active".into())
    );
    assert!(h.log.take().is_empty());
}

#[tokio::test]
async fn credentials_are_packed_for_the_greeter_one_hand_off_at_a_time() {
    let manager = FakeSessionManager {
        handoff_time: Duration::from_millis(300),
        ..Default::default()
    };
    let h = Arc::new(harness("sso", manager, None));
    let args = json!({"username": "alice@example.org", "password": "s3cret"});
    let first = {
        let h = h.clone();
        let args = args.clone();
        tokio::spawn(async move { h.call("__org.guestlink_credentials-handoff", args).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        h.call("__org.guestlink_credentials-handoff", args).await,
        Err("another credentials hand-off is in progress".into())
    );
    assert_eq!(first.await.unwrap(), Ok(json!({"collected": true})));
    let actions = h.log.take();
    let [Action::HandOff(blob)] = &actions[..] else {
        panic!("{actions:?}")
    };
    let mut want = 17u32.to_be_bytes().to_vec();
    want.extend_from_slice(b"alice@example.orgs3cret\0");
    assert_eq!(blob, &want);
    assert_eq!(pack_credentials("alice@example.org", "s3cret"), want);
    for bad in [
        json!({"username": "", "password": "x"}),
        json!({"username": "a\u{0}b", "password": "x"}),
    ] {
        assert!(h
            .call("__org.guestlink_credentials-handoff", bad)
            .await
            .is_err());
    }
    assert!(h.log.take().is_empty());
}

fn script(path: &Path, body: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test]
async fn lifecycle_hooks_run_in_name_order_with_overrides_and_a_time_limit() {
    let base = std::env::temp_dir().join(format!("gl-hooks-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (vendor, admin) = (base.join("vendor"), base.join("etc"));
    let trace = base.join("trace");
    let ev = "lifecycle/before_migration";
    let log_line = |name: &str| {
        format!(
            "echo \"{name} $1 $GUESTLINK_EVENT $GUESTLINK_FAILURE $#\" >> {}",
            trace.display()
        )
    };
    script(
        &vendor.join(ev).join("10-flush"),
        &log_line("10-flush"),
        0o755,
    );
    script(
        &vendor.join(ev).join("20-fails"),
        &format!("{}\necho oops >&2\nexit 3", log_line("20-fails")),
        0o755,
    );
    script(
        &vendor.join(ev).join("30-disabled"),
        &log_line("30-disabled"),
        0o755,
    );
    script(
        &vendor.join(ev).join("40-replaced"),
        &log_line("40-vendor"),
        0o755,
    );
    std::fs::create_dir_all(admin.join(ev)).unwrap();
    std::os::unix::fs::symlink("/dev/null", admin.join(ev).join("30-disabled")).unwrap();
    script(
        &admin.join(ev).join("40-replaced"),
        &log_line("40-admin"),
        0o755,
    );
    script(
        &admin.join(ev).join("50-not-executable"),
        &log_line("50"),
        0o644,
    );
    script(
        &admin.join(ev).join("60-world-writable"),
        &log_line("60"),
        0o757,
    );
    script(&admin.join(ev).join("70-slow"), "sleep 30 & wait", 0o755);
    script(
        &admin.join("lifecycle/after_migration/10-after"),
        &log_line("10-after"),
        0o755,
    );
    let actions = Actions {
        dirs: vec![vendor, admin],
        timeout: Duration::from_secs(1),
    };
    let h = harness("hooks", FakeSessionManager::default(), Some(actions));

    let started = Instant::now();
    let r = h
        .call(
            "__org.guestlink_lifecycle-event",
            json!({"event": "before_migration"}),
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the slow hook was not stopped"
    );
    assert_eq!(
        r,
        json!([
            {"name": "10-flush", "exitcode": 0, "timed-out": false},
            {"name": "20-fails", "exitcode": 3, "timed-out": false},
            {"name": "40-replaced", "exitcode": 0, "timed-out": false},
            {"name": "70-slow", "signal": 9, "timed-out": true},
        ])
    );
    assert_eq!(
        std::fs::read_to_string(&trace).unwrap(),
        "10-flush before_migration before_migration 0 1\n\
         20-fails before_migration before_migration 0 1\n\
         40-admin before_migration before_migration 0 1\n"
    );
    std::fs::remove_file(&trace).unwrap();
    h.call(
        "__org.guestlink_lifecycle-event",
        json!({"event": "after_migration", "failure": true}),
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(&trace).unwrap(),
        "10-after after_migration after_migration 1 1\n"
    );
    // No hooks: an empty list.
    assert_eq!(
        h.call(
            "__org.guestlink_lifecycle-event",
            json!({"event": "after_hibernation"})
        )
        .await,
        Ok(json!([]))
    );
    assert_eq!(
        h.call("__org.guestlink_lifecycle-event", json!({"event": "../../bin"}))
            .await,
        Err("unknown lifecycle event '../../bin' (expected before_migration, after_migration, before_hibernation, after_hibernation)".into())
    );
    let _ = std::fs::remove_dir_all(&base);
    let _ = std::fs::remove_dir_all(&h.dir);
}

#[tokio::test]
async fn action_output_is_capped() {
    let dir = std::env::temp_dir().join(format!("gl-actions-cap-{}", std::process::id()));
    let path = dir.join("loud");
    script(
        &path,
        "head -c 200000 /dev/zero; head -c 10 /dev/zero >&2",
        0o755,
    );
    let o = Actions::default().run(&path, &[], &[]).await.unwrap();
    assert_eq!(
        (o.code, o.stdout.len(), o.stderr.len(), o.truncated),
        (Some(0), guestlink_core::limits::ACTION_OUTPUT, 10, true)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn power_and_freeze_helpers_come_from_the_actions_directories() {
    let base = std::env::temp_dir().join(format!("gl-power-actions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let mark = base.join("mark");
    let record = format!("echo \"$0 $1\" >> {}", mark.display());
    script(&base.join("vendor/power/shutdown"), &record, 0o755);
    script(
        &base.join("vendor/power/suspend"),
        &format!("{record}\nexit 1"),
        0o755,
    );
    script(&base.join("vendor/fsfreeze/10-db"), &record, 0o755);
    let actions = Actions {
        dirs: vec![base.join("vendor"), base.join("etc")],
        timeout: Duration::from_secs(10),
    };
    let h = harness(
        "power-actions",
        FakeSessionManager::default(),
        Some(actions),
    );
    let shown = |p: &str| base.join("vendor").join(p).display().to_string();

    // (The QGA front end leaves out the reply of a successful guest-shutdown.)
    assert_eq!(
        h.call("guest-shutdown", json!({"mode": "reboot"})).await,
        Ok(json!({}))
    );
    assert_eq!(
        h.call("guest-suspend-disk", json!({})).await,
        Err("child process has failed to suspend".into())
    );
    assert_eq!(
        h.call("guest-fsfreeze-freeze", json!({})).await,
        Ok(json!(1))
    );
    assert_eq!(h.call("guest-fsfreeze-thaw", json!({})).await, Ok(json!(1)));
    assert_eq!(
        std::fs::read_to_string(&mark).unwrap(),
        format!(
            "{} reboot\n{} disk\n{} freeze\n{} thaw\n",
            shown("power/shutdown"),
            shown("power/suspend"),
            shown("fsfreeze/10-db"),
            shown("fsfreeze/10-db")
        )
    );
    assert_eq!(
        h.log.take(),
        [Action::Freeze("/data".into()), Action::Thaw("/data".into())],
        "the built-in helpers ran too"
    );

    // A failing freeze hook stops the freeze; the administrator's file wins.
    script(&base.join("etc/fsfreeze/10-db"), "exit 2", 0o755);
    assert_eq!(
        h.call("guest-fsfreeze-freeze", json!({})).await,
        Err("fsfreeze hook '10-db' has failed with status 2".into())
    );
    assert_eq!(
        h.call("guest-fsfreeze-status", json!({})).await,
        Ok(json!("thawed"))
    );
    let _ = std::fs::remove_dir_all(&base);
}
