//! guestlinkd on a character device, the way it runs on a virtio-serial port: a pty
//! stands in for the port. The host side can come and go; the agent never exits.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn pty() -> (File, String) {
    let pair = nix::pty::openpty(None, None).unwrap();
    let path = nix::unistd::ttyname(&pair.slave).unwrap();
    // Keep the master; the agent opens the slave by path. Raw mode on the master side
    // is not needed: the agent puts its end in raw mode.
    let master: OwnedFd = pair.master;
    drop(pair.slave);
    (File::from(master), path.display().to_string())
}

fn read_line(master: &mut File, deadline: Instant) -> Vec<u8> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while Instant::now() < deadline {
        match master.read(&mut b) {
            Ok(1) if b[0] == b'\n' => return line,
            Ok(1) => line.push(b[0]),
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    panic!("no reply line; got {:?}", String::from_utf8_lossy(&line));
}

fn set_nonblocking(f: &File) {
    let fd = f.as_raw_fd();
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).unwrap();
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
}

#[test]
fn serves_a_character_device_and_survives_the_host_going_away() {
    let (mut master, path) = pty();
    set_nonblocking(&master);
    let dir = scratch("pty");
    let mut child = Command::new(GUESTLINKD)
        .args(["--channel", &format!("qga=virtio-serial:{path}"), "-t"])
        .arg(&dir)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    master
        .write_all(b"\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":5}}")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = read_line(&mut master, deadline);
    if got.first() != Some(&0xFF) {
        got = read_line(&mut master, deadline);
    }
    assert_eq!(got, b"\xff{\"return\": 5}");
    master
        .write_all(b"{\"execute\":\"guest-ping\",\"id\":1}")
        .unwrap();
    assert_eq!(
        read_line(&mut master, deadline),
        b"{\"return\": {}, \"id\": 1}"
    );

    // The host side closes (EIO on the pty): the agent keeps running.
    drop(master);
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        child.try_wait().unwrap().is_none(),
        "agent exited when the host went away"
    );
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn retry_path_waits_for_the_device_to_appear() {
    let dir = scratch("retry");
    let link = dir.join("org.qemu.guest_agent.0");
    let mut child = Command::new(GUESTLINKD)
        .args(["-m", "virtio-serial", "-r", "-p"])
        .arg(&link)
        .arg("-t")
        .arg(&dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "agent gave up on a missing device despite -r"
    );
    let (mut master, path) = pty();
    set_nonblocking(&master);
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut answered = false;
    while Instant::now() < deadline && !answered {
        master
            .write_all(b"\x04{\"execute\":\"guest-sync\",\"arguments\":{\"id\":77}}")
            .unwrap();
        let until = Instant::now() + Duration::from_millis(1500);
        let mut buf = Vec::new();
        let mut b = [0u8; 256];
        while Instant::now() < until {
            if let Ok(n) = master.read(&mut b) {
                buf.extend_from_slice(&b[..n]);
                if String::from_utf8_lossy(&buf).contains("{\"return\": 77}") {
                    answered = true;
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    assert!(answered, "agent did not open the device once it appeared");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
