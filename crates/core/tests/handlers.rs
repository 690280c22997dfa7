//! Handlers against fake back ends: the exact action each command asks the platform
//! for, qemu-ga's argument checks and texts, and the state they leave behind. Files,
//! processes and SSH key files are real (in a temporary directory).

use guestlink_core::Call;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use guestlink_core::platform::{Account, Platform, ShutdownMode, SuspendMode};
use guestlink_core::testing::{
    call_as_host, Action, ActionLog, FakeAccounts, FakeFilesystems, FakeInventory, FakeMachine,
    FakeSessionManager, FakeSystem, FixedClock,
};
use guestlink_core::{Agent, AgentConfig, CallContext, Protocol};
use serde_json::{json, Value};

struct Harness {
    agent: Arc<Agent>,
    log: Arc<ActionLog>,
    dir: PathBuf,
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gl-handlers-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn harness_with(
    tag: &str,
    fs: impl FnOnce(Arc<ActionLog>) -> FakeFilesystems,
    hook: Option<PathBuf>,
) -> Harness {
    let dir = tmpdir(tag);
    let log = Arc::new(ActionLog::default());
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap();
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let accounts = FakeAccounts(HashMap::from([(
        "u".to_string(),
        Account {
            uid: me.uid.as_raw(),
            gid: me.gid.as_raw(),
            home,
            admin: false,
        },
    )]));
    let platform = Platform {
        system: Arc::new(FakeSystem::default()),
        clock: Arc::new(FixedClock(1)),
        inventory: Arc::new(FakeInventory::default()),
        filesystems: Arc::new(fs(log.clone())),
        machine: Arc::new(FakeMachine {
            log: log.clone(),
            cpus: vec![0, 1],
            ..Default::default()
        }),
        accounts: Arc::new(accounts),
        session_manager: Arc::new(FakeSessionManager {
            log: log.clone(),
            missing: vec!["gone".into()],
            ..Default::default()
        }),
        processes: Arc::new(guestlink_core::testing::FakeProcesses::default()),
        services: Arc::new(guestlink_core::testing::FakeServices::default()),
    };
    let mut config = AgentConfig::new("test", &dir);
    config.fsfreeze_hook = hook;
    Harness {
        agent: Arc::new(Agent::new(config, platform)),
        log,
        dir,
    }
}

fn harness(tag: &str) -> Harness {
    harness_with(
        tag,
        |log| FakeFilesystems::with_mounts(log, &["/", "/boot", "/data"]),
        None,
    )
}

impl Harness {
    async fn call(&self, name: &str, args: Value) -> Result<Value, String> {
        call_as_host(&self.agent, name, args).await
    }

    async fn ok(&self, name: &str, args: Value) -> Value {
        self.call(name, args)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    async fn err(&self, name: &str, args: Value) -> String {
        match self.call(name, args).await {
            Ok(v) => panic!("{name} succeeded with {v}"),
            Err(e) => e,
        }
    }
}

fn freeze(d: &str) -> Action {
    Action::Freeze(d.into())
}
fn thaw(d: &str) -> Action {
    Action::Thaw(d.into())
}

#[tokio::test]
async fn freeze_in_reverse_thaw_in_reverse_of_that() {
    let h = harness("freeze");
    assert_eq!(h.ok("guest-fsfreeze-freeze", json!({})).await, json!(3));
    assert_eq!(
        h.log.take(),
        [freeze("/data"), freeze("/boot"), freeze("/")]
    );
    assert_eq!(
        h.ok("guest-fsfreeze-status", json!({})).await,
        json!("frozen")
    );
    assert!(h.dir.join("qga.state.isfrozen").exists());
    // Only the safe set while frozen.
    assert_eq!(
        h.err("guest-get-time", json!({})).await,
        "Command guest-get-time has been disabled: the agent is in frozen state"
    );
    h.ok("guest-ping", json!({})).await;
    assert_eq!(h.ok("guest-fsfreeze-thaw", json!({})).await, json!(3));
    assert_eq!(h.log.take(), [thaw("/"), thaw("/boot"), thaw("/data")]);
    assert!(!h.dir.join("qga.state.isfrozen").exists());
    assert_eq!(
        h.ok("guest-fsfreeze-status", json!({})).await,
        json!("thawed")
    );
    // Thawing again does nothing.
    assert_eq!(h.ok("guest-fsfreeze-thaw", json!({})).await, json!(0));
    assert!(h.log.take().is_empty());
}

#[tokio::test]
async fn freeze_list_only_freezes_known_listed_mounts() {
    let h = harness("freeze-list");
    let n = h
        .ok(
            "guest-fsfreeze-freeze-list",
            json!({"mountpoints": ["/boot", "/nope"]}),
        )
        .await;
    assert_eq!(n, json!(1));
    assert_eq!(h.log.take(), [freeze("/boot")]);
    h.ok("guest-fsfreeze-thaw", json!({})).await;
    // Nothing matching: nothing frozen, state stays thawed.
    assert_eq!(
        h.ok(
            "guest-fsfreeze-freeze-list",
            json!({"mountpoints": ["/nope"]})
        )
        .await,
        json!(0)
    );
    assert_eq!(
        h.ok("guest-fsfreeze-status", json!({})).await,
        json!("thawed")
    );
}

#[tokio::test]
async fn a_failed_freeze_thaws_what_it_froze() {
    let h = harness_with(
        "freeze-fail",
        |log| FakeFilesystems {
            fail_freeze: Some(("/boot".into(), libc::EIO)),
            ..FakeFilesystems::with_mounts(log, &["/", "/boot", "/data"])
        },
        None,
    );
    assert_eq!(
        h.err("guest-fsfreeze-freeze", json!({})).await,
        "failed to freeze /boot: Input/output error"
    );
    assert_eq!(h.log.take(), [freeze("/data"), thaw("/data")]);
    assert_eq!(
        h.ok("guest-fsfreeze-status", json!({})).await,
        json!("thawed")
    );
    assert!(!h.dir.join("qga.state.isfrozen").exists());
}

#[tokio::test]
async fn unsupported_filesystems_are_skipped_not_counted() {
    let h = harness_with(
        "freeze-skip",
        |log| FakeFilesystems {
            fail_freeze: Some(("/".into(), libc::EOPNOTSUPP)),
            ..FakeFilesystems::with_mounts(log, &["/", "/data"])
        },
        None,
    );
    assert_eq!(h.ok("guest-fsfreeze-freeze", json!({})).await, json!(1));
    assert_eq!(h.ok("guest-fsfreeze-thaw", json!({})).await, json!(1));
}

#[tokio::test]
async fn hook_runs_around_freeze_and_a_failing_hook_stops_it() {
    let dir = tmpdir("hook-script");
    let trace = dir.join("trace");
    let hook = dir.join("hook");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho \"$1\" >> {}\n[ -e {}/fail ] && exit 3\nexit 0\n",
            trace.display(),
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let h = harness_with(
        "hook",
        |log| FakeFilesystems::with_mounts(log, &["/"]),
        Some(hook.clone()),
    );
    h.ok("guest-fsfreeze-freeze", json!({})).await;
    h.ok("guest-fsfreeze-thaw", json!({})).await;
    assert_eq!(std::fs::read_to_string(&trace).unwrap(), "freeze\nthaw\n");
    h.log.take();
    std::fs::write(dir.join("fail"), "").unwrap();
    assert_eq!(
        h.err("guest-fsfreeze-freeze", json!({})).await,
        "fsfreeze hook has failed with status 3"
    );
    assert!(
        h.log.take().is_empty(),
        "nothing is frozen when the hook fails"
    );
    assert_eq!(
        h.ok("guest-fsfreeze-status", json!({})).await,
        json!("thawed")
    );

    let missing = harness_with(
        "hook-missing",
        |log| FakeFilesystems::with_mounts(log, &["/"]),
        Some(dir.join("nope")),
    );
    let e = missing.err("guest-fsfreeze-freeze", json!({})).await;
    assert!(e.starts_with("can't access fsfreeze hook '"), "{e}");
}

#[tokio::test]
async fn watchdog_thaws_a_forgotten_freeze() {
    let h = harness("watchdog");
    tokio::spawn(guestlink_core::handlers::freeze::run_watchdog(
        h.agent.clone(),
        Duration::from_millis(200),
    ));
    tokio::task::yield_now().await;
    h.ok("guest-fsfreeze-freeze", json!({})).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        h.ok("guest-fsfreeze-status", json!({})).await,
        json!("frozen")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        h.ok("guest-fsfreeze-status", json!({})).await,
        json!("thawed")
    );
    let log = h.log.take();
    assert_eq!(log[3..], [thaw("/"), thaw("/boot"), thaw("/data")]);
}

#[tokio::test]
async fn an_agent_started_frozen_thaws_every_mount() {
    let dir = tmpdir("restart-frozen");
    std::fs::write(dir.join("qga.state.isfrozen"), "").unwrap();
    let log = Arc::new(ActionLog::default());
    let mut platform = guestlink_core::testing::fake_platform(FakeSystem::default(), 1);
    platform.filesystems = Arc::new(FakeFilesystems::with_mounts(log.clone(), &["/", "/data"]));
    let agent = Agent::new(AgentConfig::new("t", &dir), platform);
    let call = CallContext::host(Protocol::Qga, "t");
    let status = agent
        .execute(Call::new(
            &call,
            "guest-fsfreeze-status",
            Default::default(),
        ))
        .await
        .unwrap();
    assert_eq!(status.to_json(), json!("frozen"));
    agent
        .execute(Call::new(&call, "guest-fsfreeze-thaw", Default::default()))
        .await
        .unwrap();
    assert_eq!(log.take(), [thaw("/"), thaw("/data")]);
    assert!(!dir.join("qga.state.isfrozen").exists());
}

#[tokio::test]
async fn fstrim_reports_each_mount() {
    let h = harness("fstrim");
    let r = h.ok("guest-fstrim", json!({"minimum": 0})).await;
    assert_eq!(
        r["paths"][1],
        json!({"path": "/boot", "trimmed": 4096, "minimum": 0})
    );
    assert_eq!(h.log.take()[0], Action::Trim("/".into(), 0));
}

#[tokio::test]
async fn set_time_validates_then_sets_clock_and_rtc() {
    let h = harness("time");
    h.ok(
        "guest-set-time",
        json!({"time": 1_700_000_000_123_456_789i64}),
    )
    .await;
    assert_eq!(
        h.log.take(),
        [
            Action::SetClock(1_700_000_000, 123_456),
            Action::SyncRtc(true)
        ]
    );
    h.ok("guest-set-time", json!({})).await;
    assert_eq!(h.log.take(), [Action::SyncRtc(false)]);
    for bad in [json!(-1), json!(4_102_444_800_000_000_000i64)] {
        assert_eq!(
            h.err("guest-set-time", json!({ "time": bad })).await,
            "Invalid time"
        );
    }
    assert!(h.log.take().is_empty());
    assert_eq!(
        h.err("guest-set-time", json!({"time": "now"})).await,
        "Invalid parameter type for 'time', expected: integer"
    );
}

#[tokio::test]
async fn shutdown_and_suspend_ask_for_the_right_action_and_stay_silent() {
    let h = harness("power");
    let call = CallContext::host(Protocol::Qga, "t");
    let reply = h
        .agent
        .execute(Call::new(&call, "guest-shutdown", Default::default()))
        .await
        .unwrap();
    assert!(!reply.has_response());
    h.ok("guest-shutdown", json!({"mode": "reboot"})).await;
    h.ok("guest-shutdown", json!({"mode": "halt"})).await;
    h.ok("guest-suspend-ram", json!({})).await;
    h.ok("guest-suspend-disk", json!({})).await;
    h.ok("guest-suspend-hybrid", json!({})).await;
    assert_eq!(
        h.log.take(),
        [
            Action::Shutdown(ShutdownMode::Powerdown),
            Action::Shutdown(ShutdownMode::Reboot),
            Action::Shutdown(ShutdownMode::Halt),
            Action::Suspend(SuspendMode::Ram),
            Action::Suspend(SuspendMode::Disk),
            Action::Suspend(SuspendMode::Hybrid),
        ]
    );
    assert_eq!(
        h.err("guest-shutdown", json!({"mode": "bogus"})).await,
        "mode is invalid (valid values are: halt|powerdown|reboot"
    );
    assert!(h.log.take().is_empty());
}

#[tokio::test]
async fn set_vcpus_returns_the_processed_prefix() {
    let h = harness("vcpus");
    let n = h
        .ok("guest-set-vcpus", json!({"vcpus": [{"logical-id": 1, "online": false}, {"logical-id": 5, "online": true}]}))
        .await;
    assert_eq!(n, json!(1));
    assert_eq!(h.log.take(), [Action::SetVcpu(1, false)]);
    assert_eq!(
        h.err(
            "guest-set-vcpus",
            json!({"vcpus": [{"logical-id": 7, "online": true}]})
        )
        .await,
        "open(\"/sys/devices/system/cpu/cpu7/\"): No such file or directory"
    );
    assert_eq!(
        h.ok("guest-set-vcpus", json!({"vcpus": []})).await,
        json!(0)
    );
    assert_eq!(
        h.err("guest-set-vcpus", json!({"vcpus": [{"logical-id": 1}]}))
            .await,
        "Parameter 'vcpus[0].online' is missing"
    );
    let r = h
        .ok(
            "guest-set-memory-blocks",
            json!({"mem-blks": [{"phys-index": 3, "online": false}]}),
        )
        .await;
    assert_eq!(r, json!([{"phys-index": 3, "response": "success"}]));
    assert_eq!(h.log.take(), [Action::SetMemoryBlock(3, false)]);
}

#[tokio::test]
async fn set_user_password_checks_like_qemu_ga() {
    let h = harness("password");
    h.ok(
        "guest-set-user-password",
        json!({"username": "root", "password": "cGFzcw==", "crypted": false}),
    )
    .await;
    assert_eq!(
        h.log.take(),
        [Action::SetPassword("root".into(), b"pass".to_vec(), false)]
    );
    let cases = [
        (
            json!({"username": "root", "password": "cGFzcwp4", "crypted": true}),
            "forbidden characters in raw password",
        ),
        (
            json!({"username": "a:b", "password": "cGFzcw==", "crypted": false}),
            "forbidden characters in username",
        ),
        (
            json!({"username": "root", "password": "!!", "crypted": false}),
            "Base64 data contains invalid characters",
        ),
        (
            json!({"username": "root", "password": "cGFzcw=="}),
            "Parameter 'crypted' is missing",
        ),
    ];
    for (args, text) in cases {
        assert_eq!(h.err("guest-set-user-password", args).await, text);
    }
    assert!(h.log.take().is_empty());
}

fn keys_file(h: &Harness) -> PathBuf {
    h.dir.join("home/.ssh/authorized_keys")
}

const K1: &str = "algo key1 comments";
const K2: &str = "algo key2 comments";

#[tokio::test]
async fn ssh_keys_s1_to_s6() {
    let h = harness("ssh");
    // S1, S2: bad user, bad key (the key is checked first).
    h.err(
        "guest-ssh-add-authorized-keys",
        json!({"username": "", "keys": []}),
    )
    .await;
    h.err(
        "guest-ssh-remove-authorized-keys",
        json!({"username": "", "keys": []}),
    )
    .await;
    for cmd in [
        "guest-ssh-add-authorized-keys",
        "guest-ssh-remove-authorized-keys",
    ] {
        assert_eq!(
            h.err(
                cmd,
                json!({"username": "nobody-here", "keys": ["not a valid\nkey"]})
            )
            .await,
            "invalid OpenSSH public key: 'not a valid\nkey'"
        );
    }
    // S3: add creates ~/.ssh 0700 and the file 0600, no trailing newline, no duplicates.
    h.ok(
        "guest-ssh-add-authorized-keys",
        json!({"username": "u", "keys": [K2]}),
    )
    .await;
    assert_eq!(std::fs::read_to_string(keys_file(&h)).unwrap(), K2);
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&h.dir.join("home/.ssh")), 0o700);
    assert_eq!(mode(&keys_file(&h)), 0o600);
    h.ok(
        "guest-ssh-add-authorized-keys",
        json!({"username": "u", "keys": [K1, K2]}),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(keys_file(&h)).unwrap(),
        format!("{K2}\n{K1}")
    );
    // S4: reset.
    h.ok(
        "guest-ssh-add-authorized-keys",
        json!({"username": "u", "keys": [K2], "reset": true}),
    )
    .await;
    assert_eq!(std::fs::read_to_string(keys_file(&h)).unwrap(), K2);
    h.ok(
        "guest-ssh-add-authorized-keys",
        json!({"username": "u", "keys": [], "reset": true}),
    )
    .await;
    assert_eq!(std::fs::read_to_string(keys_file(&h)).unwrap(), "");
    // S5: remove every copy, keep comments and the final newline.
    let preset = format!("{K1}\n{K1}\n# a commented line\nalgo some-key another\n");
    std::fs::write(keys_file(&h), &preset).unwrap();
    h.ok(
        "guest-ssh-remove-authorized-keys",
        json!({"username": "u", "keys": [K2]}),
    )
    .await;
    assert_eq!(std::fs::read_to_string(keys_file(&h)).unwrap(), preset);
    h.ok(
        "guest-ssh-remove-authorized-keys",
        json!({"username": "u", "keys": [K1, K2]}),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(keys_file(&h)).unwrap(),
        "# a commented line\nalgo some-key another\n"
    );
    // S6: get skips comments and blank lines.
    std::fs::write(
        keys_file(&h),
        format!("{K1}\n# a commented line\nalgo some-key another\n"),
    )
    .unwrap();
    let keys = h
        .ok("guest-ssh-get-authorized-keys", json!({"username": "u"}))
        .await;
    assert_eq!(keys, json!({"keys": [K1, "algo some-key another"]}));
    // virsh set-user-sshkeys --file sends a trailing "" for the file's last newline.
    h.ok(
        "guest-ssh-add-authorized-keys",
        json!({"username": "u", "keys": [K2, ""], "reset": false}),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(keys_file(&h)).unwrap(),
        format!("{K1}\n# a commented line\nalgo some-key another\n\n{K2}")
    );
    let e = h
        .err(
            "guest-ssh-get-authorized-keys",
            json!({"username": "ghost"}),
        )
        .await;
    assert_eq!(e, "failed to lookup user 'ghost': No such user");
}

#[tokio::test]
async fn file_commands_word_errors_like_qemu_ga() {
    let h = harness("files");
    let path = h.dir.join("f");
    let p = path.to_str().unwrap();
    assert_eq!(
        h.err("guest-file-open", json!({"path": p, "mode": "rw"}))
            .await,
        "invalid file open mode 'rw'"
    );
    let missing = h.dir.join("missing/x");
    assert_eq!(
        h.err("guest-file-open", json!({"path": missing, "mode": "r"}))
            .await,
        format!(
            "failed to open file '{}' (mode: 'r'): No such file or directory",
            missing.display()
        )
    );
    let w = h
        .ok("guest-file-open", json!({"path": p, "mode": "w"}))
        .await;
    assert_eq!(w, json!(1000));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions())
            & 0o777;
    assert_eq!(mode, 0o666, "new files are 0666 whatever the umask");
    assert_eq!(
        h.err(
            "guest-file-write",
            json!({"handle": w, "buf-b64": "aGVsbG8=", "count": 6})
        )
        .await,
        "value '6' is invalid for argument count"
    );
    assert_eq!(
        h.ok(
            "guest-file-write",
            json!({"handle": w, "buf-b64": "aGVsbG8"})
        )
        .await,
        json!({"count": 3, "eof": false}),
        "an incomplete final quad is dropped"
    );
    assert_eq!(
        h.err("guest-file-read", json!({"handle": w})).await,
        "failed to read file: Bad file descriptor"
    );
    assert_eq!(
        h.err(
            "guest-file-seek",
            json!({"handle": w, "offset": 0, "whence": 5})
        )
        .await,
        "invalid whence code 5"
    );
    assert_eq!(
        h.err(
            "guest-file-seek",
            json!({"handle": w, "offset": 0, "whence": "bogus"})
        )
        .await,
        "Parameter 'whence' does not accept value 'bogus'"
    );
    assert_eq!(
        h.err(
            "guest-file-seek",
            json!({"handle": w, "offset": 0, "whence": true})
        )
        .await,
        "Invalid parameter type for 'whence', expected: GuestFileWhence"
    );
    assert_eq!(
        h.ok(
            "guest-file-seek",
            json!({"handle": w, "offset": 1, "whence": 0})
        )
        .await,
        json!({"position": 1, "eof": false})
    );
    h.ok("guest-file-close", json!({"handle": w})).await;
    assert_eq!(
        h.err("guest-file-close", json!({"handle": w})).await,
        "handle '1000' has not been found"
    );
    let r = h.ok("guest-file-open", json!({"path": p})).await;
    assert_eq!(r, json!(1001));
    assert_eq!(
        h.err(
            "guest-file-write",
            json!({"handle": r, "buf-b64": "aGVsbG8="})
        )
        .await,
        "failed to write to file: Bad file descriptor"
    );
    assert_eq!(
        h.err("guest-file-write", json!({"handle": r, "buf-b64": "a$=="}))
            .await,
        "Base64 data contains invalid characters"
    );
    assert_eq!(
        h.ok("guest-file-read", json!({"handle": r, "count": 3}))
            .await,
        json!({"count": 3, "buf-b64": "aGVs", "eof": false}),
        "exactly the file's size: end not reached yet"
    );
    assert_eq!(
        h.ok("guest-file-read", json!({"handle": r, "count": 0}))
            .await,
        json!({"count": 0, "buf-b64": "", "eof": false})
    );
    assert_eq!(
        h.err("guest-file-read", json!({"handle": r, "count": -1}))
            .await,
        "value '-1' is invalid for argument count"
    );
    assert_eq!(
        std::fs::read_to_string(h.dir.join("qga.state")).unwrap(),
        "[global]\nfd_counter=1002\n"
    );
}

async fn wait_exit(h: &Harness, pid: &Value) -> Value {
    for _ in 0..500 {
        let s = h.ok("guest-exec-status", json!({ "pid": pid })).await;
        if s["exited"] == json!(true) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("child {pid} did not exit");
}

fn decode(v: &Value) -> Vec<u8> {
    guestlink_vocabulary::types::base64_decode(v.as_str().unwrap().as_bytes()).unwrap()
}

fn zombies_of_this_process() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let after = stat.rsplit_once(") ").map(|x| x.1).unwrap_or("");
            let f: Vec<&str> = after.split(' ').collect();
            f.first() == Some(&"Z") && f.get(1) == Some(&me.as_str())
        })
        .count()
}

#[tokio::test]
async fn exec_captures_feeds_truncates_and_reaps() {
    let h = harness("exec");
    // Input data through cat, standard output only.
    let pid = h
        .ok(
            "guest-exec",
            json!({"path": "cat", "input-data": "aGVsbG8gc3RkaW4=", "capture-output": "stdout"}),
        )
        .await["pid"]
        .clone();
    let s = wait_exit(&h, &pid).await;
    assert_eq!(decode(&s["out-data"]), b"hello stdin");
    assert_eq!((s["exitcode"].clone(), s.get("err-data")), (json!(0), None));
    assert_eq!(s["out-truncated"], json!(false));
    assert!(h
        .err("guest-exec-status", json!({ "pid": pid }))
        .await
        .contains("does not exist"));
    // More than 16 MiB: cut at the cap, flagged, and the child still ends normally.
    let pid = h
        .ok(
            "guest-exec",
            json!({"path": "head", "arg": ["-c", "17000000", "/dev/zero"], "capture-output": true}),
        )
        .await["pid"]
        .clone();
    let s = wait_exit(&h, &pid).await;
    assert_eq!(decode(&s["out-data"]).len(), 16 << 20);
    assert_eq!(
        (s["out-truncated"].clone(), s["exitcode"].clone()),
        (json!(true), json!(0))
    );
    // A signal, and an environment that replaces the agent's.
    let pid = h
        .ok(
            "guest-exec",
            json!({"path": "/bin/sh", "arg": ["-c", "kill -9 $$"]}),
        )
        .await["pid"]
        .clone();
    let s = wait_exit(&h, &pid).await;
    assert_eq!(s, json!({"exited": true, "signal": 9}));
    let pid = h
        .ok(
            "guest-exec",
            json!({"path": "/usr/bin/env", "env": ["FOO=bar"], "capture-output": true}),
        )
        .await["pid"]
        .clone();
    assert_eq!(decode(&wait_exit(&h, &pid).await["out-data"]), b"FOO=bar\n");
    // Bad arguments.
    assert_eq!(
        h.err(
            "guest-exec",
            json!({"path": "cat", "capture-output": "bogus"})
        )
        .await,
        "Parameter 'capture-output' does not accept value 'bogus'"
    );
    assert_eq!(
        h.err("guest-exec", json!({"path": "cat", "capture-output": 1}))
            .await,
        "Invalid parameter type for 'capture-output', expected: GuestExecCaptureOutput"
    );
    assert_eq!(
        h.err("guest-exec", json!({"path": "/bin/invalid-cmd42"})).await,
        "Failed to execute child process \u{201C}/bin/invalid-cmd42\u{201D} (No such file or directory)"
    );
    // A child nobody asks about is reaped anyway.
    h.ok("guest-exec", json!({"path": "true"})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(zombies_of_this_process(), 0);
}

#[tokio::test]
async fn exec_output_is_drained_while_other_commands_run() {
    let h = harness("exec-drain");
    // 1 MiB of output with nobody polling: the pipe would fill without draining.
    let pid = h
        .ok(
            "guest-exec",
            json!({"path": "head", "arg": ["-c", "1048576", "/dev/zero"], "capture-output": true}),
        )
        .await["pid"]
        .clone();
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.ok("guest-ping", json!({})).await;
    let s = h.ok("guest-exec-status", json!({ "pid": pid })).await;
    assert_eq!(
        s["exited"],
        json!(true),
        "the child finished without being polled"
    );
    assert_eq!(decode(&s["out-data"]).len(), 1 << 20);
}

#[tokio::test]
async fn ssh_keys_never_follow_links_the_user_planted() {
    let h = harness("ssh-links");
    let home = h.dir.join("home");
    let victim = h.dir.join("victim");
    std::fs::write(&victim, "root's file\n").unwrap();
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDk0 user@host";
    let add = json!({"username": "u", "keys": [key]});

    // ~/.ssh a link to another directory: refused, nothing written there.
    let elsewhere = h.dir.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, home.join(".ssh")).unwrap();
    let e = h.err("guest-ssh-add-authorized-keys", add.clone()).await;
    // O_DIRECTORY | O_NOFOLLOW on a link: ENOTDIR.
    assert!(e.ends_with("Not a directory"), "{e}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    std::fs::remove_file(home.join(".ssh")).unwrap();

    // A planted temporary name and an authorized_keys that is a link: the link is
    // replaced by a real file, the victim is untouched.
    std::fs::create_dir(home.join(".ssh")).unwrap();
    let tmp = home
        .join(".ssh")
        .join(format!(".authorized_keys.{}.tmp", std::process::id()));
    std::os::unix::fs::symlink(&victim, &tmp).unwrap();
    std::os::unix::fs::symlink(&victim, home.join(".ssh/authorized_keys")).unwrap();
    let e = h
        .err("guest-ssh-get-authorized-keys", json!({"username": "u"}))
        .await;
    assert!(e.contains("Too many levels of symbolic links"), "{e}");
    h.ok(
        "guest-ssh-add-authorized-keys",
        json!({"username": "u", "keys": [key], "reset": true}),
    )
    .await;
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root's file\n");
    let keys = home.join(".ssh/authorized_keys");
    assert!(!std::fs::symlink_metadata(&keys)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&keys).unwrap(), key);
    assert!(!tmp.exists());
}
