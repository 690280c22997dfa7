//! The live channel from the command line, against guestlinkd: `exec` streams (output
//! while the program runs, a tar pipe, signals, status), falls back to polling against
//! qemu-ga, `shell` on a real terminal driven through tmux, and `forward` carrying 100
//! concurrent HTTP requests and a 200 MB transfer byte for byte.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{guestlinkd, have_qemu_ga, Agent, Kill, GUESTLINK, QEMU_GA};

/// A tmux server killed when the test ends.
struct Tmux(PathBuf);

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.0)
            .arg("kill-server")
            .output();
    }
}

fn me() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name
}

#[test]
fn exec_prints_output_while_the_program_runs() {
    let a = Agent::start(&guestlinkd(), "live-stream", &[]);
    let go = a.dir.join("go");
    let script = format!(
        "echo first; while [ ! -e {} ]; do sleep 0.05; done; echo second >&2; exit 3",
        go.display()
    );
    let mut child = a
        .cli()
        .args(["exec", "--", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // The program is still waiting: its first line came before its end.
    assert_eq!(line, "first\n");
    assert!(child.try_wait().unwrap().is_none());
    std::fs::write(&go, b"").unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(err, "second\n");
    assert_eq!(child.wait().unwrap().code(), Some(3));
}

#[test]
fn a_tar_pipe_goes_through_exec_stdin_and_options_apply() {
    let a = Agent::start(&guestlinkd(), "live-tar", &[]);
    let src = a.dir.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("sub/big.bin"), &big).unwrap();
    std::fs::write(src.join("small.txt"), b"hello\n").unwrap();
    let dst = a.dir.join("dst");
    std::fs::create_dir_all(&dst).unwrap();
    let mut tar = Command::new("tar")
        .arg("c")
        .arg("-C")
        .arg(&src)
        .arg(".")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let st = a
        .cli()
        .args(["exec", "--user", &me(), "--cwd"])
        .arg(&dst)
        .args([
            "--env",
            "MARK=set",
            "--",
            "sh",
            "-c",
            "tar x && echo $MARK > mark",
        ])
        .stdin(tar.stdout.take().unwrap())
        .status()
        .unwrap();
    assert!(st.success());
    assert!(tar.wait().unwrap().success());
    assert_eq!(std::fs::read(dst.join("sub/big.bin")).unwrap(), big);
    assert_eq!(std::fs::read(dst.join("small.txt")).unwrap(), b"hello\n");
    assert_eq!(std::fs::read(dst.join("mark")).unwrap(), b"set\n");
    // A program a signal ends gives 128 + the signal.
    let st = a
        .cli()
        .args(["exec", "--", "sh", "-c", "kill -TERM $$"])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(143));
    // --timeout bounds the program.
    let st = a
        .cli()
        .args(["--timeout", "1", "exec", "--", "sleep", "30"])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(143));
}

#[test]
fn exec_falls_back_to_polling_against_qemu_ga_and_says_so() {
    if !have_qemu_ga() {
        return;
    }
    let a = Agent::start(Path::new(QEMU_GA), "live-qga", &[]);
    let out = a
        .cli()
        .args(["-v", "exec", "--", "sh", "-c", "echo from qemu-ga; exit 4"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from qemu-ga\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no live streams"));
    assert_eq!(out.status.code(), Some(4));
    let out = a
        .cli()
        .args(["shell"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("guestlink shell needs guestlinkd in the guest; the agent there is qemu-ga"),
        "{out:?}"
    );
    assert_eq!(out.status.code(), Some(4));
    exec_json(&a);
}

/// `exec --json`: one object in guest-exec-status's shape, the program's status ours.
fn exec_json(a: &Agent) {
    let out = a
        .cli()
        .args([
            "--json",
            "exec",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exitcode"], 3, "{v}");
    assert_eq!(v["out-data"], "b3V0Cg==", "{v}");
    assert_eq!(v["err-data"], "ZXJyCg==", "{v}");
    assert!(v["signal"].is_null());
}

#[test]
fn exec_json_while_streaming() {
    exec_json(&Agent::start(&guestlinkd(), "live-json", &[]));
}

fn tmux(sock: &Path, args: &[&str]) -> String {
    let out = Command::new("tmux")
        .arg("-S")
        .arg(sock)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for_pane(sock: &Path, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pane = tmux(sock, &["capture-pane", "-p", "-t", "t"]);
        if pane.contains(want) {
            return pane;
        }
        assert!(
            Instant::now() < deadline,
            "'{want}' never appeared in:\n{pane}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn shell_on_a_terminal_echoes_resizes_interrupts_and_returns_the_status() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "tmux is required in CI");
        eprintln!("SKIPPED: tmux is not installed");
        return;
    }
    let a = Agent::start(&guestlinkd(), "live-shell", &[]);
    let tsock = a.dir.join("tmux.sock");
    let _server = Tmux(tsock.clone());
    let status = a.dir.join("status");
    let cmd = format!(
        "{GUESTLINK} --socket {} shell --user {}; echo $? > {}; sleep 30",
        a.dir.join("sock").display(),
        me(),
        status.display()
    );
    tmux(
        &tsock,
        &[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "80",
            "-y",
            "24",
            "env",
            "PS1=gl$ ",
            "sh",
            "-c",
            &cmd,
        ],
    );
    // The guest shell's environment is its own; set a prompt we can find.
    tmux(
        &tsock,
        &[
            "send-keys",
            "-t",
            "t",
            "export PS1='gl> '; echo ready-$((6*7))",
            "Enter",
        ],
    );
    wait_for_pane(&tsock, "ready-42");
    tmux(&tsock, &["send-keys", "-t", "t", "stty size", "Enter"]);
    wait_for_pane(&tsock, "24 80");
    tmux(
        &tsock,
        &["resize-window", "-t", "t", "-x", "100", "-y", "30"],
    );
    std::thread::sleep(Duration::from_millis(300));
    tmux(
        &tsock,
        &["send-keys", "-t", "t", "clear; stty size", "Enter"],
    );
    wait_for_pane(&tsock, "30 100");
    tmux(&tsock, &["send-keys", "-t", "t", "sleep 100", "Enter"]);
    std::thread::sleep(Duration::from_millis(500));
    tmux(&tsock, &["send-keys", "-t", "t", "C-c"]);
    tmux(&tsock, &["send-keys", "-t", "t", "echo after-$?", "Enter"]);
    wait_for_pane(&tsock, "after-130");
    tmux(&tsock, &["send-keys", "-t", "t", "exit 5", "Enter"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !status.exists() {
        assert!(Instant::now() < deadline, "the shell did not end");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(std::fs::read_to_string(&status).unwrap().trim(), "5");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The bytes of the large download: a sequence anyone can regenerate.
fn pattern(offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let x = (offset + i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        *b = (x >> 56) as u8;
    }
}

const BIG: u64 = 200 << 20;

/// A small HTTP/1.0 server "inside the guest": `/N` answers `body-N`, `/big` sends
/// [`BIG`] bytes of [`pattern`].
fn http_server() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut req = Vec::new();
                let mut b = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&b[..n]),
                    }
                }
                let path = String::from_utf8_lossy(&req)
                    .split(' ')
                    .nth(1)
                    .unwrap_or("/")
                    .to_string();
                if path == "/big" {
                    let _ = write!(s, "HTTP/1.0 200 OK\r\nContent-Length: {BIG}\r\n\r\n");
                    let mut buf = vec![0u8; 1 << 20];
                    let mut off = 0;
                    while off < BIG {
                        pattern(off, &mut buf);
                        if s.write_all(&buf).is_err() {
                            return;
                        }
                        off += buf.len() as u64;
                    }
                } else {
                    let body = format!("body-{}", &path[1..]);
                    let _ = write!(
                        s,
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                }
            });
        }
    });
    port
}

fn get(port: u16, path: &str) -> (String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let at = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response");
    (
        String::from_utf8_lossy(&all[..at]).into_owned(),
        all[at + 4..].to_vec(),
    )
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn forward_carries_100_concurrent_requests_and_200_mb_byte_for_byte() {
    let a = Agent::start(&guestlinkd(), "live-fwd", &[]);
    let server = http_server();
    let local = free_port();
    let _fwd = Kill(
        a.cli()
            .args(["forward", &format!("127.0.0.1:{local}:127.0.0.1:{server}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(local);
    let clients: Vec<_> = (0..100)
        .map(|i| std::thread::spawn(move || get(local, &format!("/{i}"))))
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        let (head, body) = c.join().unwrap();
        assert!(head.starts_with("HTTP/1.0 200"), "{head}");
        assert_eq!(body, format!("body-{i}").as_bytes());
    }
    // The forward goes on serving after its connections end.
    let (_, body) = get(local, "/after");
    assert_eq!(body, b"body-after");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", local)).unwrap();
    write!(s, "GET /big HTTP/1.0\r\n\r\n").unwrap();
    let mut r = BufReader::with_capacity(1 << 20, s);
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        r.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let (mut got, mut want) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut off = 0u64;
    while off < BIG {
        let n = r.read(&mut got).unwrap();
        assert!(n > 0, "the download ended at {off} of {BIG}");
        pattern(off, &mut want[..n]);
        assert!(got[..n] == want[..n], "bytes differ at {off}");
        off += n as u64;
    }
    assert_eq!(r.read(&mut got).unwrap(), 0);
}

#[test]
fn a_reverse_forward_listens_in_the_guest_and_connects_here() {
    let a = Agent::start(&guestlinkd(), "live-rev", &[]);
    let server = http_server();
    let guest_port = free_port();
    let _fwd = Kill(
        a.cli()
            .args([
                "forward",
                "--reverse",
                &format!("127.0.0.1:{guest_port}:127.0.0.1:{server}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(guest_port);
    let clients: Vec<_> = (0..20)
        .map(|i| std::thread::spawn(move || get(guest_port, &format!("/r{i}"))))
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        assert_eq!(c.join().unwrap().1, format!("body-r{i}").as_bytes());
    }
}

#[test]
fn domain_finds_the_guestlink_port_with_virsh() {
    let a = Agent::start(&guestlinkd(), "live-domain", &[]);
    let virsh = a.dir.join("virsh");
    let sock = a.dir.join("sock");
    std::fs::write(
        &virsh,
        format!(
            "#!/bin/sh\n[ \"$1 $3\" = \"dumpxml vm1\" ] || {{ echo \"error: failed to get domain '$3'\" >&2; exit 1; }}\ncat <<'X'\n<domain><devices>\n<channel type='unix'><source mode='bind' path='/nonexistent/org.qemu.guest_agent.0'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>\n<channel type='unix'><source mode='bind' path='{}'/><target type='virtio' name='org.guestlink.0'/></channel>\n</devices></domain>\nX\n",
            sock.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&virsh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = |domain: &str| {
        Command::new(GUESTLINK)
            .args(["--domain", domain, "exec", "--", "echo", "via-domain"])
            .env("GUESTLINK_VIRSH", &virsh)
            .env_remove("GUESTLINK_SOCKET")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run("vm1");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "via-domain\n",
        "{out:?}"
    );
    let out = run("vm2");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("failed to get domain 'vm2'"),
        "{out:?}"
    );
}

#[test]
fn forward_says_where_it_listens_in_json() {
    let a = Agent::start(&guestlinkd(), "live-fwd-json", &[]);
    let local = a.dir.join("fwd.sock");
    let mut fwd = Kill(
        a.cli()
            .args(["--json", "forward"])
            .arg(format!("{}:{}", local.display(), a.sock.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(fwd.0.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(v["listening"], local.display().to_string(), "{v}");
    assert_eq!(v["in"], "host");
}
