//! `Type=notify` readiness and the watchdog, as systemd sees them: guestlinkd started
//! with `NOTIFY_SOCKET` (a datagram socket of the test) and `WATCHDOG_USEC` says
//! `READY=1` once it serves, `WATCHDOG=1` at half the interval, `RELOADING=1` then
//! `READY=1` around SIGHUP, and `STOPPING=1` when terminated. The unit file and udev
//! rules in `dist/` are checked with systemd's own tools where they exist.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{scratch, Agent, AgentExt, GUESTLINKD};

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("no notification in time");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn signal(agent: &Agent, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(agent.pid() as i32), sig).unwrap();
}

#[test]
fn readiness_watchdog_reload_and_stop_reach_systemd() {
    let dir = scratch("notify");
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let agent = Agent::start_with(GUESTLINKD, &[], |c| {
        c.env("NOTIFY_SOCKET", &path).env("WATCHDOG_USEC", "400000");
    });
    assert_eq!(recv(&sock), "READY=1");
    // Two watchdog pings within a second: every 200 ms.
    let started = Instant::now();
    assert_eq!(recv(&sock), "WATCHDOG=1");
    assert_eq!(recv(&sock), "WATCHDOG=1");
    assert!(started.elapsed() < Duration::from_secs(2));

    signal(&agent, nix::sys::signal::Signal::SIGHUP);
    let mut seen = Vec::new();
    while !seen.iter().any(|m: &String| m == "READY=1") {
        let m = recv(&sock);
        if m != "WATCHDOG=1" {
            seen.push(m);
        }
    }
    assert!(
        seen[0].starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{seen:?}"
    );
    assert_eq!(seen.len(), 2, "{seen:?}");

    signal(&agent, nix::sys::signal::Signal::SIGTERM);
    loop {
        let m = recv(&sock);
        if m != "WATCHDOG=1" {
            assert_eq!(m, "STOPPING=1");
            break;
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_units_pass_systemd_analyze_verify() {
    if !common::peer_available("/usr/bin/systemd-analyze") {
        return;
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../dist/systemd/");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("{dir}guestlinkd.service"))
        .arg(format!("{dir}guestlinkd.socket"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // The binary is not installed here (the package test installs it); anything else
    // systemd says about the unit is a failure.
    let other: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains("/usr/sbin/guestlinkd is not executable"))
        .collect();
    assert!(other.is_empty(), "{err}");
}
