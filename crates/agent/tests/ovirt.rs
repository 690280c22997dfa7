//! guestlinkd's oVirt front end against a vdsm-like host (`guestlink_client::ovirt`)
//! over a pty: the heartbeat and its fields, the inventory after `refresh`, API level
//! negotiation and gating, session events from the session source, and bad input.

mod common;

use std::collections::BTreeSet;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guestlink_client::ovirt::Vdsm;
use guestlink_fdio::FdStream;
use guestlink_proto_ovirt::Message;

use common::*;

const T: Duration = Duration::from_secs(10);

struct Setup {
    vdsm: Vdsm<FdStream>,
    _agent: Kill,
    _slave: OwnedFd,
    /// Removed last, once the agent is gone.
    dir: Scratch,
}

fn sessions(dir: &Path, list: &[(&str, u32, bool)]) {
    let items: Vec<String> = list
        .iter()
        .map(|(id, uid, locked)| {
            format!(r#"{{"id":"{id}","uid":{uid},"user":"u{uid}","seat":"seat0","active":true,"locked":{locked}}}"#)
        })
        .collect();
    let tmp = dir.join("sessions.tmp");
    std::fs::write(&tmp, format!("[{}]", items.join(","))).unwrap();
    std::fs::rename(tmp, dir.join("sessions.json")).unwrap();
}

impl Setup {
    fn start(extra: &[&str]) -> Setup {
        let dir = scratch("ovirt");
        sessions(&dir, &[("1", 1000, false)]);
        let (stream, slave, port) = host_pty();
        let agent = Kill(
            Command::new(GUESTLINKD)
                .arg("--channel")
                .arg(format!("ovirt=virtio-serial:{}", port.display()))
                .arg("--guest-socket")
                .arg(dir.join("guest.sock"))
                .arg("--sessions")
                .arg(format!("file:{}", dir.join("sessions.json").display()))
                .args(["--ovirt-applications", "dpkg,bash,no-such-package"])
                .arg("-t")
                .arg(&dir)
                .args(extra)
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut vdsm = Vdsm::new(stream);
        vdsm.negotiate = false;
        Setup {
            vdsm,
            dir,
            _agent: agent,
            _slave: slave,
        }
    }

    /// The names of what comes within `window` (heartbeats left out).
    async fn names(&mut self, window: Duration) -> BTreeSet<String> {
        self.vdsm
            .collect(window)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .filter(|n| n != "heartbeat")
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_and_inventory_as_vdsm_reads_them() {
    let started = Instant::now();
    let mut s = Setup::start(&[]);
    // A heartbeat within 6 s, with its quirks: free-ram a string, memory-stat an
    // object, apiVersion 0 in the first.
    let (hb, before) = s
        .vdsm
        .expect("heartbeat", Duration::from_secs(6))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(
        hb.args["free-ram"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    let stat = hb.args["memory-stat"].as_object().unwrap();
    for key in [
        "mem_total",
        "mem_free",
        "mem_unused",
        "mem_buffers",
        "mem_cached",
        "swap_total",
        "swap_usage",
        "swap_in",
        "swap_out",
        "pageflt",
        "majflt",
    ] {
        assert!(stat[key].is_i64(), "{key}: {stat:?}");
    }
    assert_eq!(hb.args["apiVersion"], 0);
    // At start, level 0: session-startup and the level-0 inventory, nothing above it.
    let first: BTreeSet<String> = before.iter().map(|m| m.name.clone()).collect();
    for n in [
        "session-startup",
        "host-name",
        "os-version",
        "fqdn",
        "network-interfaces",
        "applications",
        "disks-usage",
        "active-user",
    ] {
        assert!(first.contains(n), "{n} missing at start: {first:?}");
    }
    assert!(
        !first.contains("os-info") && !first.contains("number-of-cpus"),
        "{first:?}"
    );

    // vdsm connects: refresh with apiVersion 3; everything comes, level 3 included.
    s.vdsm.connect().await.unwrap();
    let msgs = s.vdsm.collect(Duration::from_millis(2000)).await.unwrap();
    let names: BTreeSet<String> = msgs.iter().map(|m| m.name.clone()).collect();
    for n in [
        "host-name",
        "os-version",
        "os-info",
        "timezone",
        "fqdn",
        "network-interfaces",
        "applications",
        "disks-usage",
        "active-user",
        "number-of-cpus",
    ] {
        assert!(names.contains(n), "{n} missing after refresh: {names:?}");
    }
    let get = |n: &str| msgs.iter().find(|m| m.name == n).unwrap();
    assert_eq!(get("os-info").args["type"], "linux");
    assert!(get("os-version").args["version"]
        .as_str()
        .unwrap()
        .contains('.'));
    assert!(get("timezone").args["offset"].is_i64());
    let apps: Vec<&str> = get("applications").args["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(apps.len(), 2, "{apps:?}");
    assert!(
        apps[0].starts_with("dpkg-") && apps[1].starts_with("bash-"),
        "{apps:?}"
    );
    assert!(get("number-of-cpus").args["count"].as_i64().unwrap() >= 1);
    assert_eq!(
        get("active-user").args["name"],
        "None",
        "nobody is in utmp here"
    );
    let disks = get("disks-usage");
    assert!(disks.args["disks"].is_array() && disks.args["mapping"].is_object());
    for nic in get("network-interfaces").args["interfaces"]
        .as_array()
        .unwrap()
    {
        assert_ne!(nic["name"], "lo");
        assert!(nic["inet"].is_array() && nic["inet6"].is_array() && nic["hw"].is_string());
    }
    assert_eq!(s.vdsm.xml_violations, 0);
    assert_eq!(s.vdsm.bad_lines, 0);
    assert!(s.vdsm.responsive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_levels_are_negotiated_and_gate_messages() {
    let mut s = Setup::start(&["--ovirt-heartbeat", "1"]);
    let (first, _) = s.vdsm.expect("heartbeat", T).await.unwrap();
    let (second, _) = s.vdsm.expect("heartbeat", T).await.unwrap();
    assert_eq!(
        (
            first.args["apiVersion"].as_i64(),
            second.args["apiVersion"].as_i64()
        ),
        (Some(0), Some(3))
    );
    // Level 1: number-of-cpus, but not os-info.
    s.vdsm
        .send(&Message::new("api-version").arg("apiVersion", 1))
        .await
        .unwrap();
    let names = s.names(Duration::from_millis(1500)).await;
    assert!(
        names.contains("number-of-cpus") && !names.contains("os-info"),
        "{names:?}"
    );
    // refresh without apiVersion: an old vdsm, versioning off.
    s.vdsm.send(&Message::new("refresh")).await.unwrap();
    let names = s.names(Duration::from_millis(1500)).await;
    assert!(
        names.contains("host-name") && !names.contains("number-of-cpus"),
        "{names:?}"
    );
    // vdsm's own negotiation from the heartbeats brings level 3, and the inventory.
    s.vdsm.negotiate = true;
    let (_, _) = s.vdsm.expect("heartbeat", T).await.unwrap();
    assert_eq!(s.vdsm.api, 3);
    let (os, _) = s.vdsm.expect("os-info", T).await.unwrap();
    assert_eq!(os.args["type"], "linux");
    // set-number-of-cpus answers with the count (a no-op, as in the Linux agent).
    s.vdsm
        .send(&Message::new("set-number-of-cpus").arg("count", 1))
        .await
        .unwrap();
    s.vdsm.expect("number-of-cpus", T).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_leave_the_agent_serving() {
    let mut s = Setup::start(&[]);
    s.vdsm.expect("heartbeat", T).await.unwrap();
    s.vdsm
        .send_raw(b"nonsense\n[1,2]\n{\"no\":\"name\"}\n{\"__name__\":7}\n\xff\xfe\n")
        .await
        .unwrap();
    // A line over the 1 MiB cap, then its end: dropped to the newline.
    let mut long = b"{\"__name__\":\"echo\",\"x\":\"".to_vec();
    long.extend(std::iter::repeat_n(b'a', 1_500_000));
    long.extend_from_slice(b"\"}\n");
    s.vdsm.send_raw(&long).await.unwrap();
    s.vdsm.send(&Message::new("no-such-command")).await.unwrap();
    // Control characters come back filtered for vdsm's XML-RPC.
    s.vdsm
        .send(&Message::new("echo").arg("text", "ok\u{1}\u{7f}✓"))
        .await
        .unwrap();
    let (echo, skipped) = s.vdsm.expect("echo", T).await.unwrap();
    assert!(
        skipped.iter().all(|m| m.name != "echo"),
        "the long line was answered"
    );
    assert_eq!(echo.args["text"], "ok\u{fffd}\u{fffd}✓");
    assert_eq!(s.vdsm.xml_violations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_changes_become_session_messages() {
    let mut s = Setup::start(&[]);
    s.vdsm.expect("heartbeat", T).await.unwrap();
    sessions(&s.dir, &[("1", 1000, true)]);
    s.vdsm.expect("session-lock", T).await.unwrap();
    sessions(&s.dir, &[("1", 1000, false)]);
    s.vdsm.expect("session-unlock", T).await.unwrap();
    sessions(&s.dir, &[("1", 1000, false), ("2", 1001, false)]);
    s.vdsm.expect("session-logon", T).await.unwrap();
    sessions(&s.dir, &[("1", 1000, false)]);
    s.vdsm.expect("session-logoff", T).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_run_the_hooks_and_complete() {
    use std::os::unix::fs::PermissionsExt;
    let actions = scratch("ovirt-actions");
    let (vendor, admin) = (actions.join("vendor"), actions.join("etc"));
    let ev = "lifecycle/before_hibernation";
    let trace = actions.join("trace");
    for (dir, name, body) in [
        (&vendor, "10-first", "first"),
        (&vendor, "20-replaced", "vendor"),
        (&admin, "20-replaced", "admin"),
    ] {
        let path = dir.join(ev).join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{body} $1 $GUESTLINK_FAILURE\" >> {}\n",
                trace.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (v, a) = (vendor.display().to_string(), admin.display().to_string());
    let mut s = Setup::start(&["--actions-dir", &v, "--actions-dir", &a]);
    s.vdsm.expect("heartbeat", T).await.unwrap();
    s.vdsm.connect().await.unwrap();
    s.vdsm
        .send(
            &Message::new("lifecycle-event")
                .arg("type", "before_hibernation")
                .arg("reply_id", "abc-123"),
        )
        .await
        .unwrap();
    let (done, _) = s.vdsm.expect("completion", T).await.unwrap();
    assert_eq!(done.args["reply_id"], "abc-123");
    assert_eq!(done.args["done"], true);
    assert_eq!(
        std::fs::read_to_string(&trace).unwrap(),
        "first before_hibernation 0\nadmin before_hibernation 0\n"
    );
    // Without a reply_id nothing is answered; an unknown event runs nothing.
    s.vdsm
        .send(
            &Message::new("lifecycle-event")
                .arg("type", "after_hibernation")
                .arg("failure", true),
        )
        .await
        .unwrap();
    s.vdsm
        .send(
            &Message::new("lifecycle-event")
                .arg("type", "../lifecycle/before_hibernation")
                .arg("reply_id", 9),
        )
        .await
        .unwrap();
    let (done, _) = s.vdsm.expect("completion", T).await.unwrap();
    assert_eq!(done.args["reply_id"], 9);
    let later = s.vdsm.collect(Duration::from_millis(500)).await.unwrap();
    assert!(later.iter().all(|m| m.name != "completion"), "{later:?}");
    assert_eq!(
        std::fs::read_to_string(&trace).unwrap().lines().count(),
        2,
        "a hook ran for an unknown event"
    );
    let _ = std::fs::remove_dir_all(&actions);
}
