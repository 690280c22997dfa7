//! The dispatch path end to end with fake platform back ends.

use guestlink_core::platform::{LoginRecord, Timezone, Uname};
use guestlink_core::testing::{fake_platform, FakeSystem};
use guestlink_core::Call;
use guestlink_core::{Agent, AgentConfig, CallContext, DispatchError, Policy, Protocol};
use serde_json::{json, Value};

fn agent(policy: Policy, statedir: &std::path::Path) -> Agent {
    let system = FakeSystem {
        uname: Uname {
            release: "6.1.0".into(),
            version: "#1 SMP".into(),
            machine: "x86_64".into(),
        },
        os_release: Some("ID=debian\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n".into()),
        hostname: None,
        timezone: Timezone {
            abbreviation: Some("CET".into()),
            offset: 3600,
        },
        logins: std::sync::Mutex::new(vec![
            LoginRecord {
                user: "bob".into(),
                time: 20.5,
                domain: None,
            },
            LoginRecord {
                user: "alice".into(),
                time: 30.0,
                domain: Some("CORP".into()),
            },
            LoginRecord {
                user: "bob".into(),
                time: 10.25,
                domain: None,
            },
        ]),
        seat_users: Vec::new(),
    };
    Agent::new(
        AgentConfig {
            version: "test".into(),
            policy,
            statedir: statedir.to_path_buf(),
            fsfreeze_hook: None,
            transfer_dir: Default::default(),
            actions: Default::default(),
            session_users: Vec::new(),
            update: Default::default(),
        },
        fake_platform(system, 1_700_000_000_123_456),
    )
}

fn call() -> CallContext {
    CallContext::host(Protocol::Qga, "test")
}

async fn run(a: &Agent, name: &str, args: Value) -> Result<Value, DispatchError> {
    let Value::Object(args) = args else { panic!() };
    a.execute(Call::new(&call(), name, args))
        .await
        .map(|r| r.to_json())
}

fn tmp() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "guestlink-core-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn handlers_use_the_platform() {
    let a = agent(Policy::default(), &tmp());
    assert_eq!(
        run(&a, "guest-get-time", json!({})).await.unwrap(),
        json!(1_700_000_000_123_456_000i64)
    );
    assert_eq!(
        run(&a, "guest-get-host-name", json!({})).await.unwrap(),
        json!({"host-name": "localhost"})
    );
    assert_eq!(
        run(&a, "guest-get-timezone", json!({})).await.unwrap(),
        json!({"zone": "CET", "offset": 3600})
    );
    assert_eq!(
        run(&a, "guest-get-users", json!({})).await.unwrap(),
        json!([{"user": "bob", "login-time": 10.25}, {"user": "alice", "login-time": 30.0, "domain": "CORP"}])
    );
    let os = run(&a, "guest-get-osinfo", json!({})).await.unwrap();
    assert_eq!(os["id"], "debian");
    assert_eq!(os["name"], "Debian GNU/Linux");
    assert_eq!(os["kernel-release"], "6.1.0");
    assert!(os.get("variant").is_none());
}

#[tokio::test]
async fn gate_and_errors() {
    let policy = Policy::from_lists(None::<Vec<String>>, ["guest-get-time".to_string()]);
    let a = agent(policy, &tmp());
    assert_eq!(
        run(&a, "guest-get-time", json!({}))
            .await
            .unwrap_err()
            .to_string(),
        "Command guest-get-time has been disabled: the command is not allowed"
    );
    assert_eq!(
        run(&a, "guest-bogus", json!({}))
            .await
            .unwrap_err()
            .to_string(),
        "The command guest-bogus has not been found"
    );
    assert_eq!(
        run(&a, "guest-ping", json!({"foo": 42}))
            .await
            .unwrap_err()
            .to_string(),
        "Parameter 'foo' is unexpected"
    );
    let info = run(&a, "guest-info", json!({})).await.unwrap();
    let cmds = info["supported_commands"].as_array().unwrap();
    assert_eq!(cmds.last().unwrap()["name"], "guest-sync-delimited");
    let time = cmds.iter().find(|c| c["name"] == "guest-get-time").unwrap();
    assert_eq!(time["enabled"], false);
    assert_eq!(cmds.len(), a.command_status(&call()).len());
    assert!(
        cmds.len() < a.command_names().len(),
        "guest-socket commands are not listed"
    );
    assert!(!cmds
        .iter()
        .any(|c| c["name"] == "__org.guestlink_host-request"));
}

#[tokio::test]
async fn frozen_marker_restricts_to_the_safe_set() {
    let dir = tmp().join("frozen");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("qga.state.isfrozen"), b"").unwrap();
    let a = agent(Policy::default(), &dir);
    assert!(a.state().frozen());
    assert!(run(&a, "guest-ping", json!({})).await.is_ok());
    assert!(matches!(
        run(&a, "guest-get-time", json!({})).await,
        Err(DispatchError::Disabled { .. })
    ));
    a.state().set_frozen(false).unwrap();
    assert!(run(&a, "guest-get-time", json!({})).await.is_ok());
    assert!(!dir.join("qga.state.isfrozen").exists());
}

/// `guest-get-devices` is Windows' only (absent from a Linux agent's table): its handler,
/// called directly, answers what the platform's device list (SetupAPI on Windows) has,
/// and a platform without one fails in qemu-ga's words.
#[tokio::test]
async fn the_windows_device_list_comes_from_the_platform() {
    use guestlink_core::dispatch::Handler;
    use guestlink_core::testing::FakeInventory;
    use guestlink_core::Context;
    use guestlink_vocabulary::commands::GuestGetDevices;
    use guestlink_vocabulary::types::{Empty, GuestDeviceId, GuestDeviceInfo};
    let device = GuestDeviceInfo {
        driver_name: "Red Hat VirtIO SCSI controller".into(),
        driver_date: Some(1_700_000_000_000_000_000),
        driver_version: Some("100.95.104.26200".into()),
        id: Some(GuestDeviceId {
            type_: "pci".into(),
            vendor_id: 0x1af4,
            device_id: 0x1004,
        }),
    };
    let without = agent(Policy::default(), &tmp());
    let call = call();
    let ctx = |a| Context {
        agent: a,
        call: &call,
        bulk: None,
        conn: None,
    };
    let e = GuestGetDevices::handle(ctx(&without), Empty {})
        .await
        .unwrap_err();
    assert!(e.desc.starts_with("failed to read devices: "), "{}", e.desc);
    let mut platform = without.platform().clone();
    platform.inventory = std::sync::Arc::new(FakeInventory {
        devices: Some(vec![device.clone()]),
        ..FakeInventory::default()
    });
    let with = Agent::new(
        AgentConfig {
            version: "test".into(),
            policy: Policy::default(),
            statedir: tmp(),
            fsfreeze_hook: None,
            transfer_dir: Default::default(),
            actions: Default::default(),
            session_users: Vec::new(),
            update: Default::default(),
        },
        platform,
    );
    let got = GuestGetDevices::handle(ctx(&with), Empty {}).await.unwrap();
    assert_eq!(got, vec![device]);
}
