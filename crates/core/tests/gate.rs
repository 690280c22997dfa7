//! The gate and guestlink's extensions: an extension that does what a qemu-ga command
//! does is refused wherever that command is refused (`-b`, `-a`, a policy rule), and
//! `guest-info` shows it disabled.
//!
//! The table below is the one place that says, for every extension of the vocabulary,
//! which qemu-ga commands it stands for. A new extension fails
//! [`every_extension_is_classified`] until it is added here, with its `gated_as` or an
//! explicit "none".

use guestlink_core::Call;
use std::sync::Arc;

use guestlink_core::call::{Caller, Protocol};
use guestlink_core::policy::{Decision, Effect, Facts, Pattern, Rule};
use guestlink_core::testing::{fake_platform, FakeSystem};
use guestlink_core::{Agent, AgentConfig, CallContext, DispatchError, Policy};
use guestlink_vocabulary::commands::COMMAND_METAS;
use serde_json::{json, Map, Value};

/// Every `__org.guestlink_` command and the qemu-ga commands it does the work of.
const EXTENSIONS: &[(&str, &[&str])] = &[
    ("__org.guestlink_bulk-enable", &[]),
    ("__org.guestlink_stream-enable", &[]),
    ("__org.guestlink_stream-exec", &["guest-exec"]),
    ("__org.guestlink_shell", &["guest-exec"]),
    ("__org.guestlink_forward-connect", &[]),
    ("__org.guestlink_forward-listen", &[]),
    ("__org.guestlink_file-read-raw", &["guest-file-read"]),
    ("__org.guestlink_file-write-raw", &["guest-file-write"]),
    ("__org.guestlink_events-subscribe", &[]),
    ("__org.guestlink_events-unsubscribe", &[]),
    ("__org.guestlink_guest-reply", &[]),
    ("__org.guestlink_reply-raw", &[]),
    ("__org.guestlink_get-sessions", &[]),
    ("__org.guestlink_clipboard-types", &[]),
    ("__org.guestlink_clipboard-get", &[]),
    ("__org.guestlink_clipboard-set", &[]),
    ("__org.guestlink_clipboard-get-raw", &[]),
    ("__org.guestlink_clipboard-set-raw", &[]),
    ("__org.guestlink_host-request", &[]),
    ("__org.guestlink_session-register", &[]),
    ("__org.guestlink_session-reply", &[]),
    ("__org.guestlink_session-data", &[]),
    ("__org.guestlink_clipboard-grab", &[]),
    ("__org.guestlink_clipboard-offer", &[]),
    ("__org.guestlink_clipboard-fetch", &[]),
    ("__org.guestlink_clipboard-fetch-raw", &[]),
    ("__org.guestlink_clipboard-clear", &[]),
    // Files land only in the user's download directory, under new names.
    ("__org.guestlink_transfer-start", &[]),
    ("__org.guestlink_transfer-write", &[]),
    ("__org.guestlink_transfer-cancel", &[]),
    ("__org.guestlink_display-set", &[]),
    ("__org.guestlink_get-memory-stats", &[]),
    ("__org.guestlink_get-applications", &[]),
    ("__org.guestlink_session-lock", &[]),
    ("__org.guestlink_session-logoff", &[]),
    ("__org.guestlink_shutdown", &["guest-shutdown"]),
    // Only the administrator's hooks; each declares what it needs.
    ("__org.guestlink_lifecycle-event", &[]),
    // Gated per call: as `action:NAME` and what the action declares (guest-exec when
    // it declares nothing), see `Handler::gates` in `handlers/action.rs`.
    ("__org.guestlink_action-run", &[]),
    ("__org.guestlink_action-list", &[]),
    ("__org.guestlink_credentials-handoff", &[]),
    // Replacing the agent runs what the host sends: whoever blocks guest-exec blocks
    // updates too.
    ("__org.guestlink_update-start", &["guest-exec"]),
    ("__org.guestlink_update-write", &[]),
    ("__org.guestlink_update-commit", &["guest-exec"]),
    ("__org.guestlink_update-status", &[]),
    ("__org.guestlink_get-packages", &[]),
    // Files by path: reading as guest-file-read, changing as guest-file-write.
    ("__org.guestlink_path-stat", &["guest-file-read"]),
    ("__org.guestlink_path-list", &["guest-file-read"]),
    ("__org.guestlink_path-sha256", &["guest-file-read"]),
    ("__org.guestlink_path-watch", &["guest-file-read"]),
    ("__org.guestlink_path-unwatch", &[]),
    ("__org.guestlink_path-mkdir", &["guest-file-write"]),
    ("__org.guestlink_path-remove", &["guest-file-write"]),
    ("__org.guestlink_path-rename", &["guest-file-write"]),
    ("__org.guestlink_path-set-attributes", &["guest-file-write"]),
    ("__org.guestlink_path-symlink", &["guest-file-write"]),
    // Services: acting on a unit is held to the policy's [services] list instead.
    ("__org.guestlink_service-list", &[]),
    ("__org.guestlink_service-status", &[]),
    ("__org.guestlink_service-control", &[]),
    // Grows a partition and its file system into space the host added.
    ("__org.guestlink_grow", &[]),
];

fn qemu_ga_commands() -> impl Iterator<Item = &'static str> {
    COMMAND_METAS
        .iter()
        .map(|c| c.name)
        .filter(|n| !n.starts_with("__"))
}

fn host(command: &str) -> Facts<'_> {
    Facts {
        command,
        protocol: Protocol::Qga,
        channel: "/dev/virtio-ports/org.qemu.guest_agent.0",
        caller: Caller::Host,
        session: None,
        active_session: None,
        locked: false,
        frozen: false,
    }
}

#[test]
fn every_extension_is_classified() {
    for c in COMMAND_METAS.iter().filter(|c| c.name.starts_with("__")) {
        let Some((_, gates)) = EXTENSIONS.iter().find(|(n, _)| *n == c.name) else {
            panic!(
                "{} is not in EXTENSIONS: say which qemu-ga commands it does the work of",
                c.name
            );
        };
        assert_eq!(c.gated_as, *gates, "{}", c.name);
        for g in c.gated_as {
            assert!(
                qemu_ga_commands().any(|q| q == *g),
                "{} is gated as {g}, which is not a qemu-ga command",
                c.name
            );
        }
    }
    for (name, _) in EXTENSIONS {
        assert!(
            COMMAND_METAS.iter().any(|c| c.name == *name),
            "{name} is no longer in the vocabulary"
        );
    }
}

/// Every way of refusing a qemu-ga command: `-b`, `-a` without it, a policy rule.
fn refusals(command: &str) -> Vec<(&'static str, Policy)> {
    let allow_everything_else: Vec<String> = COMMAND_METAS
        .iter()
        .map(|c| c.name.to_string())
        .filter(|n| n != command)
        .collect();
    vec![
        (
            "block-rpcs",
            Policy::from_lists(None::<Vec<String>>, [command.to_string()]),
        ),
        (
            "allow-rpcs",
            Policy::from_lists(Some(allow_everything_else), Vec::new()),
        ),
        (
            "a policy rule",
            Policy::from_rules(vec![Rule {
                effect: Effect::Deny,
                commands: vec![Pattern::new(command)],
                except: Vec::new(),
                channels: Some(vec!["qga".into()]),
                users: None,
                sessions: None,
                states: None,
                reason: Arc::from("local-rule"),
                origin: "test".into(),
            }]),
        ),
    ]
}

#[test]
fn refusing_a_qemu_ga_command_refuses_each_extension_that_does_its_work() {
    let mut pairs = 0;
    for command in qemu_ga_commands() {
        for (how, policy) in refusals(command) {
            assert!(
                matches!(policy.decide(&host(command)), Decision::Deny(_)),
                "{how} does not refuse {command}"
            );
            for ext in COMMAND_METAS.iter().filter(|c| c.name.starts_with("__")) {
                let decision = policy.decide(&host(ext.name));
                if ext.gated_as.contains(&command) {
                    pairs += 1;
                    match decision {
                        Decision::Deny(r) => assert!(
                            r.as_str().ends_with(&format!("(as {command})")),
                            "{how}: {} refused for another reason: {}",
                            ext.name,
                            r.as_str()
                        ),
                        Decision::Allow => panic!(
                            "{how} refuses {command} but allows {}, which does its work",
                            ext.name
                        ),
                    }
                } else if how == "block-rpcs" {
                    assert_eq!(
                        decision,
                        Decision::Allow,
                        "-b {command} refuses {}, which is not gated as it",
                        ext.name
                    );
                }
            }
        }
    }
    // file-read five times (raw and four path commands), file-write six times (raw
    // and five path commands), shutdown, and exec four times (stream-exec, shell,
    // update-start, update-commit), each refused three ways.
    assert_eq!(pairs, 48);
}

#[test]
fn the_extension_alone_can_still_be_refused() {
    let p = Policy::from_lists(
        None::<Vec<String>>,
        ["__org.guestlink_file-read-raw".to_string()],
    );
    assert!(matches!(
        p.decide(&host("__org.guestlink_file-read-raw")),
        Decision::Deny(_)
    ));
    assert_eq!(p.decide(&host("guest-file-read")), Decision::Allow);
}

fn agent(policy: Policy, dir: &std::path::Path) -> Agent {
    let mut config = AgentConfig::new("test", dir);
    config.policy = policy;
    Agent::new(config, fake_platform(FakeSystem::default(), 0))
}

fn args(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_blocked_read_cannot_go_through_the_raw_twin() {
    let dir = tempdir("raw");
    let secret = dir.join("secret");
    std::fs::write(&secret, b"hunter2").unwrap();
    let a = agent(
        Policy::from_lists(None::<Vec<String>>, ["guest-file-read".to_string()]),
        &dir,
    );
    let call = CallContext::host(Protocol::Qga, "test");
    let handle = a
        .execute(Call::new(
            &call,
            "guest-file-open",
            args(json!({"path": secret.to_str().unwrap()})),
        ))
        .await
        .unwrap()
        .to_json();
    let bulk = guestlink_core::Bulk::new(None);
    let refused = a
        .execute(
            Call::new(
                &call,
                "__org.guestlink_file-read-raw",
                args(json!({"handle": handle})),
            )
            .with_bulk(Some(&bulk)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        DispatchError::Disabled {
            name: "__org.guestlink_file-read-raw".into(),
            reason: guestlink_core::DenyReason::Rule("block-rpcs (as guest-file-read)".into()),
        }
    );
    assert_eq!(
        refused.to_string(),
        "Command __org.guestlink_file-read-raw has been disabled: the command is not allowed"
    );
    assert!(bulk.take_output().is_none(), "nothing was read");
    let listed = a
        .command_status(&call)
        .into_iter()
        .find(|s| s.info.name == "__org.guestlink_file-read-raw")
        .unwrap();
    assert!(!listed.enabled, "guest-info lists it disabled");
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("guestlink-gate-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn the_file_scope_keeps_opens_in_their_directories() {
    use guestlink_core::policy::file::PolicyFiles;
    use guestlink_core::policy::paths::FileScope;
    let dir = tempdir("scope");
    let (logs, inbox) = (dir.join("logs"), dir.join("inbox"));
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(logs.join("app.log"), b"ok").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", logs.join("passwd")).unwrap();
    let policy = Policy::from_files(PolicyFiles {
        rules: Vec::new(),
        files: Some(FileScope {
            read: vec![logs.clone()],
            write: vec![inbox.clone()],
        }),
        ..PolicyFiles::default()
    });
    let a = agent(policy, &dir);
    let call = CallContext::host(Protocol::Qga, "test");
    let open = |path: std::path::PathBuf, mode: &str| {
        let args = args(json!({"path": path.to_str().unwrap(), "mode": mode}));
        let (a, call) = (&a, &call);
        async move { a.execute(Call::new(call, "guest-file-open", args)).await }
    };
    assert!(open(logs.join("app.log"), "r").await.is_ok());
    assert!(open(inbox.join("upload.bin"), "w").await.is_ok());
    for (path, mode) in [
        (logs.join("passwd"), "r"),
        (logs.join("app.log"), "a"),
        (logs.join("new.log"), "w"),
        (inbox.join("upload.bin"), "r+"),
        (dir.join("elsewhere"), "w"),
    ] {
        let e = open(path.clone(), mode).await.unwrap_err().to_string();
        assert!(
            e.contains("is outside the file scope of the policy"),
            "{} {mode}: {e}",
            path.display()
        );
    }
    assert!(
        !logs.join("new.log").exists(),
        "a refused open created a file"
    );
    assert!(
        !dir.join("elsewhere").exists(),
        "a refused open created a file"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_file_scope_holds_the_path_commands_too() {
    use guestlink_core::policy::file::PolicyFiles;
    use guestlink_core::policy::paths::FileScope;
    let dir = tempdir("path-scope");
    let (logs, inbox) = (dir.join("logs"), dir.join("inbox"));
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(inbox.join("old")).unwrap();
    std::fs::write(logs.join("app.log"), b"ok").unwrap();
    // A link in the writable directory to the read-only one: removing the link is
    // within the scope, what it points to is not.
    std::os::unix::fs::symlink(&logs, inbox.join("to-logs")).unwrap();
    let policy = Policy::from_files(PolicyFiles {
        rules: Vec::new(),
        files: Some(FileScope {
            read: vec![logs.clone(), inbox.clone()],
            write: vec![inbox.clone()],
        }),
        ..PolicyFiles::default()
    });
    let a = agent(policy, &dir);
    let call = CallContext::host(Protocol::Qga, "test");
    let run = |name: &'static str, args_json: serde_json::Value| {
        let (a, call) = (&a, &call);
        async move { a.execute(Call::new(call, name, args(args_json))).await }
    };
    let p = |path: std::path::PathBuf| path.to_str().unwrap().to_string();
    assert!(run(
        "__org.guestlink_path-list",
        json!({"path": p(logs.clone())})
    )
    .await
    .is_ok());
    assert!(run(
        "__org.guestlink_path-mkdir",
        json!({"path": p(inbox.join("new"))})
    )
    .await
    .is_ok());
    for (name, arguments) in [
        (
            "__org.guestlink_path-remove",
            json!({"path": p(logs.join("app.log"))}),
        ),
        (
            "__org.guestlink_path-remove",
            json!({"path": p(inbox.join("to-logs/app.log"))}),
        ),
        (
            "__org.guestlink_path-mkdir",
            json!({"path": p(logs.join("sub"))}),
        ),
        (
            "__org.guestlink_path-rename",
            json!({"path": p(inbox.join("old")), "new-path": p(logs.join("old"))}),
        ),
        (
            "__org.guestlink_path-set-attributes",
            json!({"path": p(inbox.join("to-logs")), "mode": 0o777}),
        ),
        ("__org.guestlink_path-stat", json!({"path": "/etc/passwd"})),
        (
            "__org.guestlink_path-sha256",
            json!({"path": "/etc/passwd"}),
        ),
    ] {
        let e = run(name, arguments.clone()).await.unwrap_err().to_string();
        assert!(
            e.contains("is outside the file scope of the policy"),
            "{name} {arguments}: {e}"
        );
    }
    assert!(logs.join("app.log").exists() && inbox.join("old").exists());
    // The link itself is the writable directory's entry.
    assert!(run(
        "__org.guestlink_path-remove",
        json!({"path": p(inbox.join("to-logs"))})
    )
    .await
    .is_ok());
    assert!(
        logs.join("app.log").exists(),
        "removing the link removed what it points to"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_guest_callers_session_is_the_one_it_connected_from() {
    use guestlink_core::policy::SessionMatch;
    let dir = tempdir("session");
    let policy = Policy::from_rules(vec![Rule {
        effect: Effect::Deny,
        commands: vec![Pattern::new("guest-ping")],
        except: Vec::new(),
        channels: Some(vec!["guest-socket".into()]),
        users: None,
        sessions: Some(vec![SessionMatch::Id("3".into())]),
        states: None,
        reason: Arc::from("not-in-session-3"),
        origin: "test".into(),
    }]);
    let a = agent(policy, &dir);
    // The pid may have been reused since (the fake system knows no session for it):
    // what counts is the session read when the client connected.
    let call = |session: Option<&str>| CallContext {
        caller: Caller::Guest {
            uid: 1000,
            pid: 4242,
        },
        session: session.map(Arc::from),
        ..CallContext::host(Protocol::GuestSocket, "agent.sock")
    };
    let e = a
        .execute(Call::new(&call(Some("3")), "guest-ping", Map::new()))
        .await
        .unwrap_err();
    assert!(matches!(e, DispatchError::Disabled { .. }), "{e}");
    assert!(a
        .execute(Call::new(&call(Some("4")), "guest-ping", Map::new()))
        .await
        .is_ok());
    std::fs::remove_dir_all(dir).unwrap();
}
