//! System services against a fake service manager: names completed as systemctl
//! completes them, only the units of the policy's `[services]` table acted on, the
//! state after an action returned, and the manager's own errors passed on.

use std::sync::Arc;

use guestlink_core::policy::file::{load, Names};
use guestlink_core::policy::Policy;
use guestlink_core::testing::{call_as_host, fake_platform, Action, FakeServices, FakeSystem};
use guestlink_core::{Agent, AgentConfig};
use guestlink_vocabulary::types::GuestlinkServiceAction;
use serde_json::{json, Value};

fn scratch(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("gl-services-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An agent whose service manager has `app`, `ssh` and `backup.timer`, under the
/// policy files written in `policy` (none when empty).
fn agent(tag: &str, policy: &[(&str, &str)]) -> (Agent, Arc<FakeServices>) {
    let dir = scratch(tag);
    let services = Arc::new(FakeServices::default());
    *services.units.lock().unwrap() = vec![
        FakeServices::running("ssh.service"),
        FakeServices::running("app.service"),
        FakeServices::running("backup.timer"),
    ];
    let mut platform = fake_platform(FakeSystem::default(), 0);
    platform.services = services.clone();
    let a = Agent::new(AgentConfig::new("test", &dir), platform);
    let pdir = dir.join("policy.d");
    std::fs::create_dir_all(&pdir).unwrap();
    for (name, text) in policy {
        std::fs::write(pdir.join(name), text).unwrap();
    }
    let commands: Vec<&str> = guestlink_vocabulary::commands::COMMAND_METAS
        .iter()
        .map(|c| c.name)
        .collect();
    let names = Names {
        commands: &commands,
        user: &|_| None,
    };
    a.set_policy(Policy::from_files(load(&[pdir], &names).unwrap()));
    (a, services)
}

async fn call(a: &Agent, name: &str, args: Value) -> Result<Value, String> {
    call_as_host(a, name, args).await
}

#[tokio::test]
async fn units_are_listed_and_read_without_a_policy_entry() {
    let (a, _) = agent("read", &[]);
    let list = call(&a, "__org.guestlink_service-list", json!({}))
        .await
        .unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["unit"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app.service", "backup.timer", "ssh.service"]);
    assert!(list[0].get("main-pid").is_none(), "{list}");
    let ssh = call(&a, "__org.guestlink_service-status", json!({"unit": "ssh"}))
        .await
        .unwrap();
    assert_eq!(ssh["unit"], "ssh.service");
    assert_eq!(ssh["active-state"], "active");
    assert_eq!(ssh["unit-file-state"], "enabled");
    assert_eq!(ssh["main-pid"], 4242);
    let e = call(
        &a,
        "__org.guestlink_service-status",
        json!({"unit": "nope"}),
    )
    .await
    .unwrap_err();
    assert!(e.contains("Unit nope.service not found."), "{e}");
    let e = call(
        &a,
        "__org.guestlink_service-status",
        json!({"unit": "../x"}),
    )
    .await
    .unwrap_err();
    assert!(e.contains("invalid unit name '../x'"), "{e}");
}

#[tokio::test]
async fn nothing_is_acted_on_without_a_services_table() {
    let (a, services) = agent("closed", &[]);
    let e = call(
        &a,
        "__org.guestlink_service-control",
        json!({"unit": "ssh", "action": "stop"}),
    )
    .await
    .unwrap_err();
    assert!(
        e.contains("unit 'ssh.service' is not allowed by the policy"),
        "{e}"
    );
    assert!(services.log.take().is_empty());
    let ssh = call(&a, "__org.guestlink_service-status", json!({"unit": "ssh"}))
        .await
        .unwrap();
    assert_eq!(ssh["active-state"], "active", "a refused stop stopped it");
}

#[tokio::test]
async fn listed_units_are_acted_on_and_their_new_state_returned() {
    let (a, services) = agent(
        "open",
        &[
            ("50-a.toml", "[services]\nunits = [\"ssh.service\"]\n"),
            // A later file's list replaces the earlier one.
            (
                "60-b.toml",
                "[services]\nunits = [\"app*\", \"backup.timer\"]\n",
            ),
        ],
    );
    let control = |unit: &'static str, action: &'static str| {
        let a = &a;
        async move {
            call(
                a,
                "__org.guestlink_service-control",
                json!({"unit": unit, "action": action}),
            )
            .await
        }
    };
    let stopped = control("app", "stop").await.unwrap();
    assert_eq!(stopped["active-state"], "inactive");
    assert_eq!(stopped["sub-state"], "dead");
    assert!(stopped.get("main-pid").is_none(), "{stopped}");
    let started = control("app.service", "restart").await.unwrap();
    assert_eq!(started["active-state"], "active");
    let disabled = control("backup.timer", "disable").await.unwrap();
    assert_eq!(disabled["unit-file-state"], "disabled");
    let e = control("ssh", "restart").await.unwrap_err();
    assert!(e.contains("not allowed by the policy"), "{e}");
    let e = control("app", "reload").await.unwrap_err();
    assert!(e.contains("action"), "{e}");
    assert_eq!(
        services.log.take(),
        [
            Action::Service("app.service".into(), GuestlinkServiceAction::Stop),
            Action::Service("app.service".into(), GuestlinkServiceAction::Restart),
            Action::Service("backup.timer".into(), GuestlinkServiceAction::Disable),
        ]
    );
}

#[test]
fn a_services_table_is_checked_when_loaded() {
    let dir = scratch("bad");
    std::fs::write(dir.join("50-x.toml"), "[services]\nunit = [\"a\"]\n").unwrap();
    let commands: Vec<&str> = Vec::new();
    let names = Names {
        commands: &commands,
        user: &|_| None,
    };
    let e = load(std::slice::from_ref(&dir), &names)
        .unwrap_err()
        .to_string();
    assert!(e.contains("50-x.toml:2") && e.contains("unit"), "{e}");
    std::fs::write(dir.join("50-x.toml"), "[[services]]\nunits = []\n").unwrap();
    let e = load(&[dir], &names).unwrap_err().to_string();
    assert!(e.contains("[services] is one table"), "{e}");
}
