//! The agent's tests' own helpers: raw byte conversations with an agent, a pty for a
//! port, and what `guestlink-testkit` shares with the other crates' tests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const GUESTLINKD: &str = env!("CARGO_BIN_EXE_guestlinkd");
pub const QEMU_GA: &str = "/usr/sbin/qemu-ga";

#[allow(unused_imports)]
pub use guestlink_testkit::{host_pty, memory, peer_available, Agent, Kill, Launch, Scratch};

/// The session agent, another package of the workspace.
pub fn session_bin() -> PathBuf {
    guestlink_testkit::sibling("guestlink-session", "guestlink-session")
}

/// Spawns `cmd` with its output captured, writing `input` (if any) to its standard
/// input; killed when dropped.
pub fn spawn_fed(
    mut cmd: tokio::process::Command,
    input: Option<Vec<u8>>,
) -> tokio::process::Child {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    if let Some(bytes) = input {
        let mut stdin = child.stdin.take().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            stdin.write_all(&bytes).await.unwrap();
        });
    }
    child
}

/// A fresh scratch directory, removed when dropped.
pub fn scratch(tag: &str) -> Scratch {
    Scratch::new(tag)
}

/// What the agent's tests do with a running agent besides what the testkit gives.
pub trait AgentExt {
    /// Starts `bin` with `extra` arguments, `tweak` having its say on the command.
    fn start_with(bin: &str, extra: &[&str], tweak: impl FnOnce(&mut Command)) -> Agent;
    /// A raw connection to its socket.
    fn connect(&self) -> Conn;
    /// The guest-side socket of a guestlinkd it started.
    fn guest_socket(&self) -> PathBuf;
    /// A client of the guest-side socket.
    fn connect_guest(&self) -> Conn;
}

impl AgentExt for Agent {
    fn start_with(bin: &str, extra: &[&str], tweak: impl FnOnce(&mut Command)) -> Agent {
        Launch::new(bin)
            .spawn(extra, tweak)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn connect(&self) -> Conn {
        Conn::connect_to(&self.sock)
    }

    fn guest_socket(&self) -> PathBuf {
        self.dir.join("guest.sock")
    }

    fn connect_guest(&self) -> Conn {
        let path = self.guest_socket();
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&path).is_err() {
            assert!(
                Instant::now() < deadline,
                "no guest socket at {}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Conn::connect_to(&path)
    }
}

/// A raw byte connection.
pub struct Conn {
    pub s: UnixStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to the socket at `path`.
    pub fn connect_to(path: &Path) -> Conn {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Conn { s, buf: Vec::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    fn fill(&mut self, deadline: Instant) -> bool {
        let mut chunk = [0u8; 65536];
        loop {
            match self.s.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(_) if Instant::now() < deadline => continue,
                Err(_) => return false,
            }
        }
    }

    /// The next reply line, without its `\n` (a 0xFF prefix is kept).
    pub fn line(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let i = scanned + i;
                let line = self.buf[..i].to_vec();
                self.buf.drain(..=i);
                return line;
            }
            scanned = self.buf.len();
            assert!(
                self.fill(deadline),
                "no complete reply; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Exactly `n` raw bytes (a bulk payload).
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.buf.len() < n {
            assert!(self.fill(deadline), "only {} of {n} bytes", self.buf.len());
        }
        self.buf.drain(..n).collect()
    }

    pub fn lines(&mut self, n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|_| self.line()).collect()
    }

    /// Sends and returns the one reply line.
    pub fn request(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.send(bytes);
        self.line()
    }

    /// Sends and parses the one reply.
    pub fn json(&mut self, bytes: &[u8]) -> serde_json::Value {
        let line = self.request(bytes);
        parse(&line)
    }

    /// Asserts that nothing arrives within `ms`.
    pub fn silence(&mut self, ms: u64) {
        let deadline = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < deadline {
            if self.fill(deadline) {
                break;
            }
        }
        assert!(
            self.buf.is_empty(),
            "unexpected output {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    /// Resynchronises with 0xFF + guest-sync-delimited and returns every line before the
    /// delimited reply.
    pub fn resync(&mut self, id: u32) -> Vec<Vec<u8>> {
        self.send(b"\xff");
        self.send(
            format!("{{\"execute\":\"guest-sync-delimited\",\"arguments\":{{\"id\":{id}}}}}\n")
                .as_bytes(),
        );
        let mut before = Vec::new();
        loop {
            let l = self.line();
            if l.first() == Some(&0xFF) {
                assert_eq!(parse(&l)["return"], id, "sync reply");
                return before;
            }
            before.push(l);
        }
    }
}

/// Parses a reply line, ignoring a leading 0xFF.
pub fn parse(line: &[u8]) -> serde_json::Value {
    let l = line.strip_prefix(&[0xFF]).unwrap_or(line);
    serde_json::from_slice(l)
        .unwrap_or_else(|e| panic!("reply {:?} is not JSON: {e}", String::from_utf8_lossy(line)))
}

/// The `desc` of an error reply.
pub fn desc(v: &serde_json::Value) -> &str {
    v["error"]["desc"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error: {v}"))
}

/// Runs a Python `script` with `args` as user and group `uid` (python3 is on the test
/// machine); its standard output. A failing script fails the test.
pub fn python_as(uid: u32, script: &str, args: &[String]) -> String {
    use std::os::unix::process::CommandExt;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .uid(uid)
        .gid(uid)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A private `dbus-daemon` (killed when dropped) and its address: where a test puts a
/// stand-in for a system service (logind, systemd).
pub struct PrivateBus {
    child: std::process::Child,
    /// Its address, for `GUESTLINK_SYSTEM_BUS`.
    pub address: String,
}

impl PrivateBus {
    /// Starts one; panics when dbus-daemon is missing (CI installs it).
    pub fn start() -> PrivateBus {
        use std::io::BufRead;
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon (package dbus-daemon) is required");
        let mut address = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        PrivateBus {
            child,
            address: address.trim().to_string(),
        }
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
