//! `guestlink update` against guestlinkd run from a copy in a scratch directory (never
//! the build's own executable), without systemd, so the agent re-executes itself:
//! an update is swapped in and confirmed; a new executable that does not start is
//! rolled back and the old agent answers again; an upload cut off halfway leaves the
//! old agent and executable as they were; with an update key only a good signature
//! passes; the gate can refuse updates.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use guestlink_client::{Client, Endpoint};
use guestlink_vocabulary::commands::{
    GuestPing, GuestlinkUpdateStart, GuestlinkUpdateStatus, GuestlinkUpdateWrite,
};
use guestlink_vocabulary::types::{Empty, TransferWriteArgs, UpdateStartArgs};
use sha2::{Digest, Sha256};

mod common;

use common::{guestlinkd, Scratch, GUESTLINK};

/// guestlinkd copied into `dir/bin`, started from there on `dir/sock` with a short
/// trial period.
struct Updatable {
    agent: guestlink_testkit::Agent,
    exe: PathBuf,
}

impl Updatable {
    fn start(tag: &str, extra: &[&str]) -> (Scratch, Updatable) {
        let bin = Scratch::new(&format!("update-bin-{tag}"));
        let exe = bin.join("guestlinkd");
        std::fs::copy(guestlinkd(), &exe).unwrap();
        let mut args = vec!["--update-trial", "5"];
        args.extend_from_slice(extra);
        let agent = guestlink_testkit::Launch::new(&exe)
            .tag(&format!("update-{tag}"))
            .spawn(&args, |c| {
                // Not a systemd unit, whatever runs the tests.
                c.env_remove("INVOCATION_ID");
            })
            .unwrap_or_else(|e| panic!("{e}"));
        (bin, Updatable { agent, exe })
    }

    fn sock(&self) -> PathBuf {
        self.agent.dir.join("sock")
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(GUESTLINK)
            .arg("--socket")
            .arg(self.sock())
            .args(args)
            .output()
            .unwrap()
    }

    fn status(&self) -> guestlink_vocabulary::types::UpdateStatus {
        rt().block_on(async {
            let mut c = connect(self).await;
            c.call::<GuestlinkUpdateStatus>(&Empty {}).await.unwrap()
        })
    }
}

/// Agents started by a rollback are not our children: found by their executable.
impl Drop for Updatable {
    fn drop(&mut self) {
        kill_running(&self.exe);
    }
}

fn kill_running(exe: &Path) {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let target = std::fs::read_link(p.path().join("exe")).unwrap_or_default();
        let target = target.to_string_lossy();
        if target.starts_with(&*exe.to_string_lossy()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

async fn connect(u: &Updatable) -> Client {
    Client::connect(&Endpoint::Unix(u.sock()), Duration::from_secs(5))
        .await
        .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn sha(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Pings until the agent answers (it may be restarting).
fn answers(u: &Updatable, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let ok = rt().block_on(async {
            let mut c = Client::connect(&Endpoint::Unix(u.sock()), Duration::from_secs(2))
                .await
                .ok()?;
            tokio::time::timeout(Duration::from_secs(2), c.call::<GuestPing>(&Empty {}))
                .await
                .ok()?
                .ok()
        });
        if ok.is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn an_update_is_swapped_in_confirmed_and_reported() {
    let (bin, u) = Updatable::start("ok", &[]);
    // Another build: the same program with bytes appended (its digest differs).
    let new = bin.join("new-guestlinkd");
    let mut bytes = std::fs::read(guestlinkd()).unwrap();
    bytes.extend_from_slice(b"\0guestlink update test build\0");
    std::fs::write(&new, &bytes).unwrap();
    let pid = u.agent.pid();
    let out = u.cli(&["update", "--binary", new.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("updated guestlinkd {version} -> {version}")),
        "{}",
        text(&out)
    );
    assert_eq!(
        sha(&u.exe),
        Sha256::digest(&bytes).to_vec(),
        "the new executable is in place"
    );
    assert!(
        !bin.join("guestlinkd.old").exists(),
        "the old executable is kept after the confirmation"
    );
    assert!(!bin.join(".guestlinkd.update").exists());
    // Re-executed in place: the same process, serving.
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert!(answers(&u, Duration::from_secs(10)));
    let status = u.status();
    assert_eq!(status.state, "confirmed");
    // JSON for scripts.
    let out = u.cli(&["--json", "update", "--binary", new.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"], "updated");
    assert_eq!(v["new-version"], version);
    assert_eq!(v["restart"], "exec");
}

#[test]
fn a_new_executable_that_does_not_start_is_rolled_back() {
    let (bin, u) = Updatable::start("rollback", &[]);
    let before = sha(&u.exe);
    // Answers -V like a guestlinkd, then fails to start.
    let broken = bin.join("broken");
    std::fs::write(
        &broken,
        "#!/bin/sh\nif [ \"$1\" = -V ]; then echo 'QEMU Guest Agent 10.0.2 (guestlinkd 9.9.9)'; exit 0; fi\nexit 1\n",
    )
    .unwrap();
    let out = u.cli(&["update", "--binary", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("rolled back: guestlinkd"), "{}", text(&out));
    assert!(
        said.contains("the new agent exited before it served"),
        "{}",
        text(&out)
    );
    assert_eq!(sha(&u.exe), before, "the old executable is back");
    assert!(!bin.join("guestlinkd.old").exists());
    assert!(
        answers(&u, Duration::from_secs(10)),
        "the old agent answers again"
    );
    let status = u.status();
    assert_eq!(status.state, "rolled-back");
    assert!(status.running_version.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn an_upload_cut_off_halfway_leaves_the_old_agent() {
    let (bin, u) = Updatable::start("cut", &[]);
    let before = sha(&u.exe);
    let data = std::fs::read(guestlinkd()).unwrap();
    rt().block_on(async {
        let mut c = connect(&u).await;
        let t = c
            .call::<GuestlinkUpdateStart>(&UpdateStartArgs {
                size: data.len() as i64,
                sha256: Sha256::digest(&data)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
                signature: None,
            })
            .await
            .unwrap();
        let half = &data[..data.len() / 2];
        c.call_with_payload::<GuestlinkUpdateWrite>(
            &TransferWriteArgs {
                handle: t.handle,
                count: half.len() as i64,
            },
            half,
        )
        .await
        .unwrap();
        assert!(bin.join(".guestlinkd.update").exists());
        // The host goes away.
    });
    assert!(answers(&u, Duration::from_secs(5)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while bin.join(".guestlinkd.update").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !bin.join(".guestlinkd.update").exists(),
        "the staged half is removed"
    );
    assert_eq!(sha(&u.exe), before);
    let status = u.status();
    assert_eq!(status.state, "none");
    // A commit of a handle that is gone says so.
    let out = u.cli(&[
        "call",
        "__org.guestlink_update-commit",
        "-a",
        "{\"handle\": 1}",
    ]);
    assert!(
        text(&out).contains("no update has handle 1"),
        "{}",
        text(&out)
    );
}

#[test]
fn with_an_update_key_only_a_good_signature_passes() {
    let keys = Scratch::new("update-keys");
    let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([9; 32]));
    let key = keys.join("update.pub");
    std::fs::write(
        &key,
        guestlink_vocabulary::types::base64_encode(pair.pk.as_ref()),
    )
    .unwrap();
    let (bin, u) = Updatable::start("signed", &["--update-key", key.to_str().unwrap()]);
    let before = sha(&u.exe);
    let new = bin.join("new");
    std::fs::copy(guestlinkd(), &new).unwrap();
    let data = std::fs::read(&new).unwrap();

    let out = u.cli(&["update", "--binary", new.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("requires a signature"),
        "{}",
        text(&out)
    );

    let wrong = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([1; 32]));
    let bad = keys.join("bad.sig");
    std::fs::write(&bad, wrong.sk.sign(&data, None).as_ref()).unwrap();
    let out = u.cli(&[
        "update",
        "--binary",
        new.to_str().unwrap(),
        "--signature",
        bad.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("signature does not match"),
        "{}",
        text(&out)
    );
    assert_eq!(sha(&u.exe), before);
    assert!(!bin.join(".guestlinkd.update").exists());

    let good = keys.join("good.sig");
    let sig = pair.sk.sign(&data, None);
    std::fs::write(
        &good,
        guestlink_vocabulary::types::base64_encode(sig.as_ref()),
    )
    .unwrap();
    let out = u.cli(&[
        "update",
        "--binary",
        new.to_str().unwrap(),
        "--signature",
        good.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn the_gate_and_the_checks_refuse_before_anything_changes() {
    let (bin, u) = Updatable::start("refused", &["-b", "__org.guestlink_update-commit"]);
    let before = sha(&u.exe);
    let new = bin.join("new");
    std::fs::copy(guestlinkd(), &new).unwrap();
    let out = u.cli(&["update", "--binary", new.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("__org.guestlink_update-commit has been disabled"),
        "{}",
        text(&out)
    );
    assert_eq!(sha(&u.exe), before);
    // Not a guestlinkd at all: refused by its -V.
    let (bin2, u2) = Updatable::start("not-agent", &[]);
    let other = bin2.join("true");
    std::fs::copy("/bin/true", &other).unwrap();
    let out = u2.cli(&["update", "--binary", other.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not a guestlinkd"), "{}", text(&out));
    assert!(answers(&u2, Duration::from_secs(5)));
    // A wrong digest.
    let out = u2.cli(&[
        "call",
        "__org.guestlink_update-start",
        "-a",
        "{\"size\": 10, \"sha256\": \"abc\"}",
    ]);
    assert!(
        text(&out).contains("64 hexadecimal digits"),
        "{}",
        text(&out)
    );
    drop(bin);
}
