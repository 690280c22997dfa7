//! The front end against core fakes: the timers on a paused clock, and the host
//! commands that change the machine recorded instead of done.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use guestlink_core::actions::Actions;
use guestlink_core::platform::{ShutdownMode, SuspendMode};
use guestlink_core::state::sessions::LoginSession;
use guestlink_core::testing::{
    fake_platform, Action, ActionLog, FakeInventory, FakeMachine, FakeSessionManager, FakeSystem,
};
use guestlink_core::{Agent, AgentConfig, CallContext, Policy, Protocol};
use guestlink_vocabulary::types::GuestlinkMemoryStats;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, WriteHalf};
use tokio::time::{timeout, timeout_at, Instant};

use super::{serve, Options};

struct Host {
    lines: Lines<BufReader<tokio::io::ReadHalf<DuplexStream>>>,
    out: WriteHalf<DuplexStream>,
    log: Arc<ActionLog>,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn memory() -> GuestlinkMemoryStats {
    GuestlinkMemoryStats {
        total: 4 << 20,
        free: 1 << 20,
        buffers: 1024,
        cached: 3072,
        swap_total: 1 << 20,
        swap_free: 1 << 19,
        ..Default::default()
    }
}

/// An agent on fakes serving one oVirt connection; `setup` adjusts the config.
fn start(
    tag: &str,
    heartbeat: Duration,
    setup: impl FnOnce(&mut AgentConfig),
) -> (Host, Arc<Agent>) {
    let dir = std::env::temp_dir().join(format!("gl-ovirt-front-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = Arc::new(ActionLog::default());
    let mut platform = fake_platform(
        FakeSystem {
            hostname: Some("vm1".into()),
            ..Default::default()
        },
        1,
    );
    platform.inventory = Arc::new(FakeInventory {
        memory_stats: Some(memory()),
        ..Default::default()
    });
    platform.machine = Arc::new(FakeMachine {
        log: log.clone(),
        ..Default::default()
    });
    platform.session_manager = Arc::new(FakeSessionManager {
        log: log.clone(),
        ..Default::default()
    });
    let mut config = AgentConfig::new("test", &dir);
    setup(&mut config);
    let agent = Arc::new(Agent::new(config, platform));
    let (guest, host) = tokio::io::duplex(1 << 20);
    let opts = Options {
        heartbeat,
        applications: vec!["kernel".into()],
    };
    let served = agent.clone();
    tokio::spawn(async move {
        let call = CallContext::host(Protocol::Ovirt, "ovirt");
        let _ = serve(&served, &call, guest, &opts).await;
    });
    let (rd, out) = tokio::io::split(host);
    let host = Host {
        lines: BufReader::new(rd).lines(),
        out,
        log,
        _dir: TempDir(dir),
    };
    (host, agent)
}

impl Host {
    async fn send(&mut self, v: Value) {
        let mut line = serde_json::to_vec(&v).unwrap();
        line.push(b'\n');
        self.out.write_all(&line).await.unwrap();
    }

    async fn next(&mut self) -> Value {
        let line = self
            .lines
            .next_line()
            .await
            .unwrap()
            .expect("agent hung up");
        serde_json::from_str(&line).unwrap()
    }

    /// The next message named `name`, skipping others.
    async fn expect(&mut self, name: &str) -> Value {
        let found = timeout(Duration::from_secs(20), async {
            loop {
                let v = self.next().await;
                if v["__name__"] == name {
                    return v;
                }
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no {name}"))
    }

    /// Messages for `window`.
    async fn collect(&mut self, window: Duration) -> Vec<Value> {
        let end = Instant::now() + window;
        let mut all = Vec::new();
        while let Ok(v) = timeout_at(end, self.next()).await {
            all.push(v);
        }
        all
    }
}

#[tokio::test(start_paused = true)]
async fn every_report_on_the_linux_agents_timers() {
    let (mut host, _agent) = start("timers", Duration::from_secs(5), |_| {});
    let t0 = Instant::now();
    host.send(json!({"__name__": "refresh", "apiVersion": 3}))
        .await;
    let end = t0 + Duration::from_secs(601);
    let mut seen: Vec<(u64, Value)> = Vec::new();
    while let Ok(v) = timeout_at(end, host.next()).await {
        seen.push(((Instant::now() - t0).as_millis() as u64, v));
    }
    let times = |name: &str| -> Vec<u64> {
        seen.iter()
            .filter(|(_, v)| v["__name__"] == name)
            .map(|(t, _)| *t)
            .collect()
    };
    let every = |secs: u64, from: u64| -> Vec<u64> {
        (from..=600)
            .step_by(secs as usize)
            .map(|s| s * 1000)
            .collect()
    };
    assert_eq!(times("heartbeat"), every(5, 0));
    // At the start (withheld: API 0), on refresh, then every 60 s.
    assert_eq!(times("number-of-cpus"), [vec![0], every(60, 60)].concat());
    // At the start, on refresh, then every 120 s / 300 s.
    assert_eq!(
        times("applications"),
        [vec![0, 0], every(120, 120)].concat()
    );
    assert_eq!(times("host-name"), [vec![0, 0], every(120, 120)].concat());
    assert_eq!(times("disks-usage"), [vec![0, 0], every(300, 300)].concat());
    // Nobody logs in or out: only the start's and the refresh's (forced).
    assert_eq!(times("active-user"), [0, 0]);
    assert_eq!(times("session-startup"), [0, 0]);
    // os-info and timezone need level 2: only after the refresh.
    assert_eq!(times("os-info"), [vec![0], every(120, 120)].concat());

    let beats: Vec<&Value> = seen
        .iter()
        .filter(|(_, v)| v["__name__"] == "heartbeat")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(beats[0]["apiVersion"], 0);
    assert!(beats[1..].iter().all(|b| b["apiVersion"] == 3));
    // (free + buffers + cached) in MiB, as a string.
    assert_eq!(
        beats[0]["free-ram"],
        json!(((1u64 << 20) + 4096) / 1024).to_string().as_str()
    );
    assert_eq!(beats[1]["memory-stat"]["mem_unused"], 1 << 20);
    assert_eq!(beats[1]["memory-stat"]["swap_usage"], 1 << 19);
}

#[tokio::test(start_paused = true)]
async fn the_heartbeat_goes_on_when_memory_figures_are_refused() {
    let (mut host, _agent) = start("bare", Duration::from_secs(5), |c| {
        c.policy = Policy::from_lists(
            None::<Vec<String>>,
            vec!["__org.guestlink_get-memory-stats".to_string()],
        );
    });
    let b = host.expect("heartbeat").await;
    assert_eq!((&b["free-ram"], &b["apiVersion"]), (&json!("0"), &json!(0)));
    assert!(b.get("memory-stat").is_none(), "{b}");
    let b = host.expect("heartbeat").await;
    assert_eq!(b["apiVersion"], 3);
}

fn hook_dirs(tag: &str) -> (Actions, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let base = std::env::temp_dir().join(format!("gl-ovirt-hooks-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let dir = base.join("lifecycle/before_migration");
    std::fs::create_dir_all(&dir).unwrap();
    let hook = dir.join("10-mark");
    let mark = base.join("ran");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho \"$1\" >> {}\n", mark.display()),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    (
        Actions {
            dirs: vec![base],
            ..Actions::default()
        },
        mark,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_commands_reach_the_back_ends_through_the_vocabulary() {
    let (actions, mark) = hook_dirs("commands");
    let (mut host, agent) = start("commands", Duration::from_secs(5), move |c| {
        c.actions = actions
    });
    agent.update_sessions(vec![LoginSession {
        id: "2".into(),
        uid: 1000,
        user: "alice".into(),
        seat: Some("seat0".into()),
        active: true,
        locked: false,
    }]);
    host.expect("heartbeat").await;

    // API 0: lifecycle-event (level 3) is ignored, and no completion comes.
    host.send(json!({"__name__": "lifecycle-event", "type": "before_migration", "reply_id": "r0"}))
        .await;
    host.send(json!({"__name__": "echo", "sync": 1})).await;
    let echo = host.expect("echo").await;
    assert_eq!(echo["sync"], 1);
    assert!(!mark.exists(), "a level-3 command ran at level 0");

    host.send(json!({"__name__": "refresh", "apiVersion": 3}))
        .await;
    host.send(json!({"__name__": "lifecycle-event", "type": "before_migration", "reply_id": "r1"}))
        .await;
    let c = host.expect("completion").await;
    assert_eq!(
        c,
        json!({"__name__": "completion", "reply_id": "r1", "done": true})
    );
    assert_eq!(
        std::fs::read_to_string(&mark).unwrap(),
        "before_migration\n"
    );

    host.send(json!({"__name__": "lock-screen"})).await;
    host.send(json!({"__name__": "log-off"})).await;
    host.send(json!({"__name__": "shutdown", "timeout": "90", "message": "bye", "reboot": "true"}))
        .await;
    host.send(json!({"__name__": "hibernate", "state": "mem"}))
        .await;
    host.send(json!({"__name__": "hibernate"})).await;
    host.send(json!({"__name__": "hibernate", "state": "bogus"}))
        .await;
    host.send(json!({"__name__": "login", "username": "alice", "password": "pw"}))
        .await;
    host.send(json!({"__name__": "shutdown", "timeout": "later"}))
        .await;
    host.send(json!({"__name__": "no-such-command"})).await;
    // Everything above is answered or done before this echo comes back, or soon after.
    host.send(json!({"__name__": "echo", "sync": 2})).await;
    host.expect("echo").await;
    let mut actions = Vec::new();
    for _ in 0..100 {
        actions.extend(host.log.take());
        if actions.len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    actions.sort_by_key(|a| format!("{a:?}"));
    let mut want = vec![
        Action::LockSession("2".into()),
        Action::TerminateSession("2".into()),
        Action::ScheduleShutdown(ShutdownMode::Reboot, 2, "bye".into()),
        Action::Suspend(SuspendMode::Ram),
        Action::Suspend(SuspendMode::Disk),
        Action::HandOff(b"\0\0\0\x05alicepw\0".to_vec()),
    ];
    want.sort_by_key(|a| format!("{a:?}"));
    assert_eq!(actions, want);
    let _ = std::fs::remove_dir_all(mark.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_does_nothing_and_the_channel_goes_on() {
    let (actions, mark) = hook_dirs("refused");
    let (mut host, _agent) = start("refused", Duration::from_secs(5), move |c| {
        c.actions = actions;
        c.policy = Policy::from_lists(
            None::<Vec<String>>,
            vec![
                "__org.guestlink_shutdown".to_string(),
                "__org.guestlink_lifecycle-event".to_string(),
            ],
        );
    });
    host.send(json!({"__name__": "refresh", "apiVersion": 3}))
        .await;
    host.send(json!({"__name__": "shutdown", "timeout": 0}))
        .await;
    host.send(json!({"__name__": "lifecycle-event", "type": "before_migration", "reply_id": 7}))
        .await;
    // vdsm is not kept waiting: the completion comes though no hook may run.
    let c = host.expect("completion").await;
    assert_eq!(c["reply_id"], 7);
    let later = host.collect(Duration::from_millis(300)).await;
    assert!(
        later.iter().all(|m| m["__name__"] != "completion"),
        "{later:?}"
    );
    assert!(host.log.take().is_empty(), "a refused command acted");
    assert!(!mark.exists(), "a refused hook ran");
    host.send(json!({"__name__": "echo", "still": "here"}))
        .await;
    assert_eq!(host.expect("echo").await["still"], "here");
    let _ = std::fs::remove_dir_all(mark.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_running_limit_and_when_malformed_vdsm_still_gets_its_completion() {
    use std::os::unix::fs::PermissionsExt;
    let (actions, mark) = hook_dirs("limit");
    // Each hook holds its action for 3 s.
    let hook = mark
        .parent()
        .unwrap()
        .join("lifecycle/before_migration/10-mark");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\nsleep 3\necho \"$1\" >> {}\n", mark.display()),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (mut host, _agent) = start("limit", Duration::from_secs(60), move |c| {
        c.actions = actions
    });
    host.send(json!({"__name__": "refresh", "apiVersion": 3}))
        .await;
    for id in 0..super::MAX_RUNNING {
        host.send(
            json!({"__name__": "lifecycle-event", "type": "before_migration", "reply_id": id}),
        )
        .await;
    }
    // Let them start, then one too many, and one without a type.
    host.send(json!({"__name__": "echo", "sync": 1})).await;
    host.expect("echo").await;
    host.send(
        json!({"__name__": "lifecycle-event", "type": "before_migration", "reply_id": "over"}),
    )
    .await;
    host.send(json!({"__name__": "lifecycle-event", "reply_id": "bad"}))
        .await;
    // Those two are answered at once, before any hook has finished.
    let first = host.expect("completion").await;
    let second = host.expect("completion").await;
    assert_eq!(
        [first["reply_id"].clone(), second["reply_id"].clone()],
        [json!("over"), json!("bad")]
    );
    assert!(
        !mark.exists(),
        "a hook finished before the refusals were answered"
    );
    // The sixteen that ran complete, each once.
    let mut done: Vec<i64> = Vec::new();
    while done.len() < super::MAX_RUNNING {
        done.push(
            host.expect("completion").await["reply_id"]
                .as_i64()
                .unwrap(),
        );
    }
    done.sort_unstable();
    assert_eq!(done, (0..super::MAX_RUNNING as i64).collect::<Vec<_>>());
    let ran = std::fs::read_to_string(&mark).unwrap();
    assert_eq!(ran.lines().count(), super::MAX_RUNNING, "{ran}");
    let _ = std::fs::remove_dir_all(mark.parent().unwrap());
}
