//! `-d` (daemonize) as qemu-ga has it: the command returns at once, the agent runs on
//! detached with its pid in the `-f` file, which it holds locked, so a second agent
//! with the same pid file refuses to start.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn daemonize_detaches_writes_and_locks_the_pid_file() {
    let dir = scratch("daemonize");
    let (sock, pidfile) = (dir.join("sock"), dir.join("agent.pid"));
    let start = |sock: &std::path::Path| {
        Command::new(GUESTLINKD)
            .args(["-d", "-m", "unix-listen", "-p"])
            .arg(sock)
            .arg("-f")
            .arg(&pidfile)
            .arg("-t")
            .arg(dir.path())
            .args(["--guest-socket", "none"])
            .output()
            .unwrap()
    };
    let out = start(&sock);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The pid file names a live process other than the one that returned.
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        let text = std::fs::read_to_string(&pidfile).unwrap_or_default();
        if let Ok(pid) = text.trim().parse::<i32>() {
            break pid;
        }
        assert!(Instant::now() < deadline, "no pid in {}", pidfile.display());
        std::thread::sleep(Duration::from_millis(20));
    };
    let _stop = Stop(pid);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    // Detached: a session of its own, and its standard streams on /dev/null.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_ne!(fields[3], std::process::id().to_string(), "session id");
    for fd in 0..3 {
        let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert_eq!(target, std::path::Path::new("/dev/null"), "fd {fd}");
    }
    // It serves.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = Conn::connect_to(&sock);
    let r = c.json(br#"{"execute":"guest-ping"}"#);
    assert_eq!(r, serde_json::json!({"return": {}}));
    // A second agent with the same pid file stops with a clear error, before it
    // detaches; the first runs on.
    let out = start(&dir.join("sock2"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is locked: is another agent running?"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        pid.to_string()
    );
    let r = c.json(br#"{"execute":"guest-ping"}"#);
    assert_eq!(r, serde_json::json!({"return": {}}));
}

/// Ends the detached agent when the test ends, however it ends.
struct Stop(i32);

impl Drop for Stop {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a pid and a signal number has no memory effects.
        unsafe { libc::kill(self.0, libc::SIGTERM) };
    }
}
