//! Resize automation against fake back ends: a hot-added CPU or memory block onlined
//! (or only reported), a resized disk reported and its file systems grown when asked,
//! each as its event to subscribers.

use std::sync::Arc;

use guestlink_core::events::Listener;
use guestlink_core::hotplug::{apply, Change, Options};
use guestlink_core::testing::{
    fake_platform, Action, ActionLog, FakeFilesystems, FakeInventory, FakeMachine, FakeSystem,
};
use guestlink_core::{Agent, AgentConfig};
use serde_json::{json, Value};

fn agent(tag: &str) -> (Agent, Arc<ActionLog>) {
    let dir = std::env::temp_dir().join(format!("gl-hotplug-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = Arc::new(ActionLog::default());
    let mut p = fake_platform(FakeSystem::default(), 0);
    p.machine = Arc::new(FakeMachine {
        log: log.clone(),
        cpus: vec![0, 1, 2],
        ..Default::default()
    });
    p.inventory = Arc::new(FakeInventory {
        memory_block_size: Some(128 << 20),
        ..Default::default()
    });
    p.filesystems = Arc::new(FakeFilesystems {
        log: log.clone(),
        disk_mounts: vec![("vdb".into(), "/data".into())],
        ..Default::default()
    });
    (Agent::new(AgentConfig::new("test", &dir), p), log)
}

/// Applies `change` and returns the one event it published.
async fn event_of(a: &Agent, change: Change, opts: Options) -> (&'static str, Value) {
    let mut sub = a.events().subscribe(Listener::Host);
    sub.mailbox()
        .add(&["CPU_ADDED", "MEMORY_ADDED", "DISK_RESIZED"]);
    apply(a, change, opts).await;
    let e = sub.try_next().expect("an event");
    assert!(sub.try_next().is_none(), "one event per change");
    (e.name, e.data.clone())
}

#[tokio::test]
async fn new_cpus_and_memory_are_onlined_and_reported() {
    let (a, log) = agent("online");
    let on = Options::default();
    assert_eq!(
        event_of(&a, Change::CpuAdded(2), on).await,
        ("CPU_ADDED", json!({"logical-id": 2, "online": true}))
    );
    assert_eq!(
        event_of(&a, Change::MemoryAdded(9), on).await,
        (
            "MEMORY_ADDED",
            json!({"phys-index": 9, "size": 128 << 20, "online": true})
        )
    );
    assert_eq!(
        log.take(),
        [Action::SetVcpu(2, true), Action::SetMemoryBlock(9, true)]
    );
    // A CPU the kernel has no directory for: the failure travels with the event.
    let (_, e) = event_of(&a, Change::CpuAdded(7), on).await;
    assert_eq!(e["online"], false);
    assert!(e["error"].as_str().unwrap().contains("cpu7"), "{e}");
}

#[tokio::test]
async fn report_only_touches_nothing() {
    let (a, log) = agent("report");
    let report = Options {
        online: false,
        grow: false,
    };
    let (_, e) = event_of(&a, Change::CpuAdded(2), report).await;
    assert_eq!(e, json!({"logical-id": 2, "online": false}));
    let (_, e) = event_of(&a, Change::MemoryAdded(3), report).await;
    assert_eq!(e["online"], false);
    assert!(log.take().is_empty());
}

#[tokio::test]
async fn resized_disks_are_reported_and_grown_when_asked() {
    let (a, log) = agent("disk");
    let vdb = || Change::DiskResized {
        name: "vdb".into(),
        size: 1 << 30,
    };
    let (name, e) = event_of(&a, vdb(), Options::default()).await;
    assert_eq!(
        (name, e),
        (
            "DISK_RESIZED",
            json!({"name": "vdb", "size": 1 << 30, "grown": []})
        )
    );
    assert!(log.take().is_empty(), "grown without being asked");
    let grow = Options {
        online: true,
        grow: true,
    };
    let (_, e) = event_of(&a, vdb(), grow).await;
    assert_eq!(e["grown"][0]["mountpoint"], "/data");
    assert_eq!(e["grown"][0]["new-size"], 128 << 20);
    assert_eq!(log.take(), [Action::Grow("/data".into())]);
    // Nothing mounted from the disk: nothing grown.
    let other = Change::DiskResized {
        name: "vdc".into(),
        size: 5,
    };
    let (_, e) = event_of(&a, other, grow).await;
    assert_eq!(e["grown"], json!([]));
    assert!(log.take().is_empty());
}

#[tokio::test]
async fn grow_wants_an_absolute_path_and_passes_errors_on() {
    let (a, _log) = agent("grow");
    let e =
        guestlink_core::testing::call_as_host(&a, "__org.guestlink_grow", json!({"path": "data"}))
            .await
            .unwrap_err();
    assert!(e.contains("must be an absolute path"), "{e}");
    let e =
        guestlink_core::testing::call_as_host(&a, "__org.guestlink_grow", json!({"path": "/srv"}))
            .await
            .unwrap_err();
    assert!(e.contains("'/srv' is not on a disk"), "{e}");
    let ok =
        guestlink_core::testing::call_as_host(&a, "__org.guestlink_grow", json!({"path": "/data"}))
            .await
            .unwrap();
    assert_eq!(ok["partition-grown"], true);
}
