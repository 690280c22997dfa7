//! The policy against the real binary: the shipped default and drop-in overrides as a
//! matrix (command × channel × caller × state), denials in QGA's words on a live
//! channel with no side effect, actions gated as what they need, SIGHUP applying a new
//! policy on the same connection, and bad files named with their line.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{desc, parse, python_as, scratch, Agent, AgentExt, Conn, GUESTLINKD};
use serde_json::{json, Value};

/// The shipped policy, as the package installs it.
fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/policy.d")
}

/// The stricter policy shipped as an example (no exec).
fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/examples/policy.d")
}

fn call(c: &mut Conn, execute: &str, arguments: Value) -> Value {
    let req = json!({"execute": execute, "arguments": arguments}).to_string();
    c.json(req.as_bytes())
}

fn disabled(v: &Value, name: &str) -> bool {
    v["error"]["class"] == "CommandNotFound"
        && desc(v) == format!("Command {name} has been disabled: the command is not allowed")
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn executable(path: &Path, text: &str) {
    write(path, text);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn explain(dirs: &[&Path], specs: &[&str]) -> Vec<String> {
    explain_with(dirs, &[], specs)
}

/// [`explain`] with more options (`-b`, ...) before the calls.
fn explain_with(dirs: &[&Path], options: &[&str], specs: &[&str]) -> Vec<String> {
    let mut cmd = Command::new(GUESTLINKD);
    for d in dirs {
        cmd.arg("--policy-dir").arg(d);
    }
    cmd.args(options);
    for s in specs {
        cmd.arg("--explain").arg(s);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(": ").unwrap().1.to_string())
        .collect()
}

#[test]
fn the_matrix_of_the_shipped_policy_and_its_overrides() {
    let etc = scratch("policy-etc");
    write(
        &etc.join("60-local.toml"),
        r#"
[[rule]]
allow = ["guest-exec", "guest-exec-status"]
channels = ["qga"]
reason = "exec-enabled-here"

[[rule]]
deny = ["__org.guestlink_clipboard-*"]
channels = ["guest-socket"]
users = [65534]
reason = "nobody-has-no-clipboard"

[[rule]]
deny = ["__org.guestlink_transfer-start"]
when = ["no-active-session"]
reason = "no-transfer-without-a-session"

[[rule]]
deny = ["__org.guestlink_clipboard-offer"]
channels = ["vdagent"]
when = ["active-session", "session-locked"]
reason = "not-into-a-locked-screen"

[[rule]]
deny = ["guest-get-users"]
channels = ["guest-socket"]
sessions = ["active"]
reason = "not-from-the-active-session"
"#,
    );
    let rows: &[(&str, &str)] = &[
        // QGA: qemu-ga's commands, exec included (as Debian's qemu-guest-agent).
        ("command=guest-ping", "allow"),
        ("command=guest-file-open", "allow"),
        ("command=guest-exec", "allow"),
        ("command=__org.guestlink_action-run", "allow"),
        ("command=guest-file-open,frozen", "deny (frozen)"),
        ("command=guest-fsfreeze-thaw,frozen", "allow"),
        // SPICE: the desktop and nothing else.
        (
            "command=guest-exec,channel=vdagent",
            "deny (not-a-spice-agent-command)",
        ),
        (
            "command=guest-file-write,channel=vdagent",
            "deny (not-a-spice-agent-command)",
        ),
        (
            "command=guest-set-user-password,channel=vdagent",
            "deny (not-a-spice-agent-command)",
        ),
        (
            "command=__org.guestlink_clipboard-offer,channel=vdagent",
            "allow",
        ),
        (
            "command=__org.guestlink_clipboard-offer,channel=vdagent,active=2,locked",
            "deny (not-into-a-locked-screen)",
        ),
        (
            "command=__org.guestlink_transfer-start,channel=vdagent,active=2",
            "allow",
        ),
        (
            "command=__org.guestlink_transfer-start,channel=vdagent",
            "deny (no-transfer-without-a-session)",
        ),
        // The exporter's port, named by its port name: only what the exporter reads.
        (
            "command=guest-file-open,channel=/dev/virtio-ports/org.guestlink.exporter.0",
            "deny (not-an-exporter-command)",
        ),
        (
            "command=__org.guestlink_get-memory-stats,channel=/dev/virtio-ports/org.guestlink.exporter.0",
            "allow",
        ),
        (
            "command=guest-file-open,channel=/dev/virtio-ports/org.qemu.guest_agent.0",
            "allow",
        ),
        // oVirt: reports and desktop commands.
        (
            "command=guest-exec,channel=ovirt",
            "deny (not-an-ovirt-agent-command)",
        ),
        (
            "command=guest-file-open,channel=ovirt",
            "deny (not-an-ovirt-agent-command)",
        ),
        (
            "command=__org.guestlink_action-run,channel=ovirt",
            "deny (not-an-ovirt-agent-command)",
        ),
        ("command=__org.guestlink_shutdown,channel=ovirt", "allow"),
        (
            "command=__org.guestlink_lifecycle-event,channel=ovirt",
            "allow",
        ),
        (
            "command=__org.guestlink_get-memory-stats,channel=ovirt",
            "allow",
        ),
        (
            "command=guest-get-host-name,channel=ovirt,frozen",
            "deny (frozen)",
        ),
        // Guest programs, by user and session.
        ("command=__org.guestlink_clipboard-get,uid=1000", "allow"),
        (
            "command=__org.guestlink_clipboard-get,uid=65534",
            "deny (nobody-has-no-clipboard)",
        ),
        (
            "command=__org.guestlink_clipboard-get,uid=65534,channel=qga",
            "allow",
        ),
        (
            "command=guest-get-users,uid=1000,session=3,active=3",
            "deny (not-from-the-active-session)",
        ),
        (
            "command=guest-get-users,uid=1000,session=4,active=3",
            "allow",
        ),
        ("command=guest-get-users,uid=1000", "allow"),
    ];
    let specs: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let got = explain(&[&shipped(), &etc], &specs);
    for ((spec, want), got) in rows.iter().zip(&got) {
        assert_eq!(got, want, "{spec}");
    }

    // Without the local file: exec is on, as with Debian's qemu-guest-agent; the
    // shipped example turns it off, on QGA channels only.
    assert_eq!(explain(&[&shipped()], &["command=guest-exec"]), ["allow"]);
    let example = example();
    assert_eq!(
        explain(
            &[&shipped(), &example],
            &[
                "command=guest-exec",
                "command=__org.guestlink_stream-exec",
                "command=__org.guestlink_shell",
                "command=guest-get-time",
            ]
        ),
        [
            "deny (exec-not-enabled)",
            "deny (exec-not-enabled (as guest-exec))",
            "deny (exec-not-enabled (as guest-exec))",
            "allow"
        ]
    );
    // A same-named file in /etc replaces the vendor's; a link to /dev/null masks it.
    let replaced = scratch("policy-replace");
    write(
        &replaced.join("50-default.toml"),
        "[[rule]]\ndeny = [\"guest-ping\"]\n",
    );
    assert_eq!(
        explain(
            &[&shipped(), &replaced],
            &["command=guest-exec,channel=vdagent", "command=guest-ping"]
        ),
        [
            "allow",
            format!("deny ({}:1)", replaced.join("50-default.toml").display()).as_str()
        ]
    );
    let masked = scratch("policy-mask");
    std::os::unix::fs::symlink("/dev/null", masked.join("50-default.toml")).unwrap();
    assert_eq!(
        explain(
            &[&shipped(), &masked],
            &["command=guest-exec,channel=ovirt"]
        ),
        ["allow"]
    );
    for d in [etc, replaced, masked] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_bad_policy_file_is_named_with_its_line() {
    let dir = scratch("policy-bad");
    write(
        &dir.join("10-bad.toml"),
        "[[rule]]\ndeny = [\"guest-exec\"]\n\n[[rule]]\ndeny = [\"guest-exce\"]\n",
    );
    for flag in ["--check-config", "--dump-config"] {
        let out = Command::new(GUESTLINKD)
            .arg("--policy-dir")
            .arg(&dir)
            .arg(flag)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "{}:4: 'guest-exce' matches no command",
                dir.join("10-bad.toml").display()
            )),
            "{err}"
        );
    }
    std::fs::write(
        dir.join("10-bad.toml"),
        "[[rule]]\ndeny = [\"guest-exec\"]\n",
    )
    .unwrap();
    let out = Command::new(GUESTLINKD)
        .arg("--policy-dir")
        .arg(&dir)
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "configuration is valid: 1 policy file(s), 1 rule(s)"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// An agent with the shipped policy, `etc` as the administrator's policy directory and
/// `actions/{vendor,etc}` as the actions directories.
/// The shipped policy, then the shipped no-exec example (as an administrator who
/// copied it to /etc), then `etc`.
fn start(etc: &Path, actions: &Path) -> Agent {
    let (p0, p1) = (shipped().display().to_string(), etc.display().to_string());
    let strict = example().display().to_string();
    let (a0, a1) = (
        actions.join("vendor").display().to_string(),
        actions.join("etc").display().to_string(),
    );
    Agent::start(
        GUESTLINKD,
        &[
            "--policy-dir",
            &p0,
            "--policy-dir",
            &strict,
            "--policy-dir",
            &p1,
            "--actions-dir",
            &a0,
            "--actions-dir",
            &a1,
            "--sessions",
            "none",
        ],
    )
}

#[test]
fn a_denied_command_has_no_effect_and_actions_are_gated_as_what_they_need() {
    let etc = scratch("policy-live-etc");
    let actions = scratch("policy-live-actions");
    let marks = scratch("policy-live-marks");
    // Actions may run on QGA here, but guest-file-open may not.
    write(
        &etc.join("60-local.toml"),
        r#"
[[rule]]
allow = ["__org.guestlink_action-run", "action:*"]
channels = ["qga"]

[[rule]]
deny = ["guest-file-open"]
reason = "no-files"
"#,
    );
    let mark = |n: &str| marks.join(n);
    executable(
        &actions.join("vendor/opens-files"),
        &format!(
            "#!/bin/sh\n# guestlink-needs: guest-file-open\ntouch {}\n",
            mark("opened").display()
        ),
    );
    executable(
        &actions.join("vendor/hello"),
        "#!/bin/sh\n# guestlink-needs: guest-get-time\necho vendor \"$@\"\n",
    );
    executable(
        &actions.join("etc/hello"),
        "#!/bin/sh\n# guestlink-needs: guest-get-time\necho admin \"$@\"; cat\n",
    );
    executable(
        &actions.join("vendor/bye"),
        "#!/bin/sh\n# guestlink-needs: guest-ping\necho bye\n",
    );
    std::os::unix::fs::symlink("/dev/null", actions.join("etc/bye")).unwrap();
    executable(
        &actions.join("vendor/runs-code"),
        &format!("#!/bin/sh\ntouch {}\n", mark("ran").display()),
    );

    let agent = start(&etc, &actions);
    let mut host = agent.connect();

    // guest-file-open refused as qemu-ga refuses, and nothing is created.
    let target = mark("created-by-host");
    let r = call(
        &mut host,
        "guest-file-open",
        json!({"path": target, "mode": "w"}),
    );
    assert!(disabled(&r, "guest-file-open"), "{r}");
    assert!(
        !target.exists(),
        "a denied guest-file-open created the file"
    );

    // An action that needs guest-file-open is refused the same way and does not run.
    let r = call(
        &mut host,
        "__org.guestlink_action-run",
        json!({"name": "opens-files"}),
    );
    assert!(disabled(&r, "guest-file-open"), "{r}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!mark("opened").exists(), "a denied action ran");

    // The administrator's action replaces the vendor's; argv and stdin reach it.
    let r = call(
        &mut host,
        "__org.guestlink_action-run",
        json!({"name": "hello", "arg": ["a b", "$HOME"], "input-data": "c3RkaW4="}),
    );
    assert_eq!(r["return"]["exitcode"], 0, "{r}");
    let out = String::from_utf8(base64_decode(r["return"]["out-data"].as_str().unwrap())).unwrap();
    assert_eq!(out, "admin a b $HOME\nstdin");
    // Masked by /dev/null; and names that are paths are no actions.
    for name in ["bye", "../vendor/hello", "/bin/sh"] {
        let r = call(
            &mut host,
            "__org.guestlink_action-run",
            json!({"name": name}),
        );
        assert_eq!(desc(&r), format!("no action '{name}'"), "{r}");
    }
    // An action that declares nothing counts as guest-exec, which QGA does not allow.
    let r = call(
        &mut host,
        "__org.guestlink_action-run",
        json!({"name": "runs-code"}),
    );
    assert!(disabled(&r, "guest-exec"), "{r}");
    assert!(!mark("ran").exists());
    let list = call(&mut host, "__org.guestlink_action-list", json!({}));
    let listed: Vec<(String, bool)> = list["return"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["enabled"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("hello".to_string(), true),
            ("opens-files".to_string(), false),
            ("runs-code".to_string(), false)
        ]
    );
    // guest-info shows the gate's view of this channel.
    let info = call(&mut host, "guest-info", json!({}));
    let enabled = |n: &str| {
        info["return"]["supported_commands"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .map(|c| c["enabled"].as_bool().unwrap())
    };
    assert_eq!(enabled("guest-file-open"), Some(false));
    assert_eq!(enabled("guest-exec"), Some(false));
    assert_eq!(enabled("guest-get-time"), Some(true));

    // A guest program as nobody on the guest socket: the same gate.
    let sock = agent.guest_socket();
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile('rwb')
f.write(sys.argv[2].encode() + b'\n'); f.flush()
print(f.readline().decode().strip())
"#;
    let line = python_as(
        65534,
        script,
        &[
            sock.display().to_string(),
            json!({"execute": "guest-ping"}).to_string(),
        ],
    );
    assert_eq!(parse(line.trim().as_bytes()), json!({"return": {}}));
    for d in [etc, actions, marks] {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    guestlink_vocabulary::types::base64_decode(s.as_bytes()).unwrap()
}

#[test]
fn sighup_applies_a_new_policy_on_the_same_connection() {
    let etc = scratch("policy-hup-etc");
    let actions = scratch("policy-hup-actions");
    let agent = start(&etc, &actions);
    let mut host = agent.connect();
    let time = call(&mut host, "guest-get-time", json!({}));
    assert!(time["return"].is_i64(), "{time}");
    let r = call(&mut host, "guest-exec", json!({"path": "/bin/true"}));
    assert!(disabled(&r, "guest-exec"), "{r}");

    write(
        &etc.join("60-local.toml"),
        "[[rule]]\nallow = [\"guest-exec\", \"guest-exec-status\"]\nchannels = [\"qga\"]\n\n[[rule]]\ndeny = [\"guest-get-time\"]\n",
    );
    let hup = |agent: &Agent| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(agent.pid() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap();
    };
    hup(&agent);
    let mut applied = false;
    for _ in 0..100 {
        let r = call(&mut host, "guest-get-time", json!({}));
        if disabled(&r, "guest-get-time") {
            applied = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(applied, "SIGHUP did not apply the new policy");
    let r = call(&mut host, "guest-exec", json!({"path": "/bin/true"}));
    assert!(r["return"]["pid"].is_i64(), "{r}");

    // A broken file: the reload is refused and the policy in force stays.
    write(
        &etc.join("70-broken.toml"),
        "[[rule]]\nallow = [\"guest-get-tiem\"]\n",
    );
    hup(&agent);
    std::thread::sleep(Duration::from_millis(500));
    assert!(disabled(
        &call(&mut host, "guest-get-time", json!({})),
        "guest-get-time"
    ));
    assert_eq!(
        call(&mut host, "guest-ping", json!({})),
        json!({"return": {}})
    );
    let _ = std::fs::remove_dir_all(etc);
    let _ = std::fs::remove_dir_all(actions);
}

#[test]
fn explain_says_an_extension_is_refused_with_the_command_it_stands_for() {
    let dir = scratch("policy-twins");
    write(
        &dir.join("60-files.toml"),
        "[[rule]]\ndeny = [\"guest-file-write\"]\nreason = \"no-writes\"\n\n[files]\nread = [\"/var/log\"]\n",
    );
    let got = explain_with(
        &[&dir],
        &["-b", "guest-file-read,guest-shutdown"],
        &[
            "command=__org.guestlink_file-read-raw",
            "command=__org.guestlink_file-write-raw",
            "command=__org.guestlink_shutdown,channel=ovirt",
            "command=__org.guestlink_bulk-enable",
        ],
    );
    assert_eq!(
        got,
        [
            "deny (block-rpcs (as guest-file-read))",
            "deny (no-writes (as guest-file-write))",
            "deny (block-rpcs (as guest-shutdown))",
            "allow",
        ]
    );
    let dump = Command::new(GUESTLINKD)
        .arg("--policy-dir")
        .arg(&dir)
        .arg("--dump-config")
        .output()
        .unwrap();
    let dump = String::from_utf8(dump.stdout).unwrap();
    assert!(dump.contains("files-read=/var/log\n"), "{dump}");
    assert!(dump.contains("files-write=\n"), "{dump}");
    let _ = std::fs::remove_dir_all(dir);
}
