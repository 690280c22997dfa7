//! The storage queries answer on the async thread when the platform can do so without
//! waiting, and off it otherwise.

use std::sync::Arc;

use guestlink_core::testing::{call_as_host, fake_platform, FakeInventory, FakeSystem};
use guestlink_core::{Agent, AgentConfig};
use guestlink_vocabulary::types::{GuestDiskInfo, GuestFilesystemInfo};
use serde_json::{json, Value};

fn agent(tag: &str, inventory: FakeInventory) -> Agent {
    let dir = std::env::temp_dir().join(format!("gl-inventory-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut platform = fake_platform(FakeSystem::default(), 1);
    platform.inventory = Arc::new(inventory);
    Agent::new(AgentConfig::new("test", &dir), platform)
}

fn fs(mountpoint: &str) -> GuestFilesystemInfo {
    GuestFilesystemInfo {
        name: "vda1".into(),
        mountpoint: mountpoint.into(),
        type_: "ext4".into(),
        ..Default::default()
    }
}

fn disk(name: &str) -> GuestDiskInfo {
    GuestDiskInfo {
        name: name.into(),
        ..Default::default()
    }
}

fn names(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].as_str().unwrap().to_string())
        .collect()
}

/// What guest-get-fsinfo and guest-get-disks report from an inventory whose waiting
/// answers are "/waited" and whose answers without waiting are `now`.
async fn reported(tag: &str, now: Option<(&str, &str)>) -> (Vec<String>, Vec<String>) {
    let inv = FakeInventory {
        filesystems: vec![fs("/waited")],
        disks: vec![disk("/dev/waited")],
        now: now.map(|(f, d)| (vec![fs(f)], vec![disk(d)])),
        ..Default::default()
    };
    let a = agent(tag, inv);
    let f = call_as_host(&a, "guest-get-fsinfo", json!({}))
        .await
        .unwrap();
    let d = call_as_host(&a, "guest-get-disks", json!({}))
        .await
        .unwrap();
    (names(&f, "mountpoint"), names(&d, "name"))
}

#[tokio::test]
async fn fsinfo_and_disks_take_the_answer_that_needs_no_waiting() {
    let (f, d) = reported("now", Some(("/now", "/dev/now"))).await;
    assert_eq!(
        (f, d),
        (vec!["/now".to_string()], vec!["/dev/now".to_string()])
    );
}

#[tokio::test]
async fn fsinfo_and_disks_wait_off_thread_when_they_must() {
    let (f, d) = reported("waited", None).await;
    assert_eq!(
        (f, d),
        (vec!["/waited".to_string()], vec!["/dev/waited".to_string()])
    );
}
