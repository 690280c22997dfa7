//! Live streams against the binary, through the host library: opt-in, programs with
//! their output as it comes and their status, stdin and half-close, signals, many
//! streams beside ordinary calls, flow control with a stalled reader, forwards both
//! ways, and teardown (no process left) when the host goes.

mod common;

use std::time::{Duration, Instant};

use common::*;
use guestlink_client::{Client, Live, StreamEvent};
use guestlink_proto_stream::ExitStatus;
use guestlink_vocabulary::commands as cmd;
use guestlink_vocabulary::types::{ForwardAddress, ShellArgs, StreamExecArgs};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn live(agent: &Agent) -> Live {
    let c = Client::connect_unix(&agent.sock, Duration::from_secs(10))
        .await
        .unwrap();
    c.into_live().await.unwrap()
}

fn exec_args(path: &str, args: &[&str]) -> StreamExecArgs {
    StreamExecArgs {
        path: path.into(),
        arg: Some(args.iter().map(|s| s.to_string()).collect()),
        env: None,
        cwd: None,
        user: None,
        timeout: None,
        terminal: None,
    }
}

/// Runs `f` on a live connection to a fresh agent.
fn on_live<F, Fut>(f: F)
where
    F: FnOnce(Live) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let agent = Agent::start(GUESTLINKD, &[]);
    rt().block_on(async {
        let l = live(&agent).await;
        f(l).await;
    });
    agent.terminate();
}

/// A stream running `sh -c script`.
async fn sh(l: &Live, script: &str) -> guestlink_client::LiveStream {
    l.open::<cmd::GuestlinkStreamExec>(&exec_args("/bin/sh", &["-c", script]))
        .await
        .unwrap()
        .0
}

/// Everything a stream sends until its end: (stdout, stderr, exit).
async fn collect(s: &mut guestlink_client::LiveStream) -> (Vec<u8>, Vec<u8>, Option<ExitStatus>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(e) = s.recv().await {
        match e {
            StreamEvent::Data(d) => out.extend(d),
            StreamEvent::Stderr(d) => err.extend(d),
            StreamEvent::Exit(st) => return (out, err, Some(st)),
            StreamEvent::Reset(r) => panic!("stream reset: {r}"),
            StreamEvent::Eof => {}
        }
    }
    (out, err, None)
}

fn me() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name
}

#[test]
fn streams_are_off_until_enabled_and_a_plain_conversation_sees_no_frame() {
    let agent = Agent::start(GUESTLINKD, &[]);
    let mut c = agent.connect();
    let v =
        c.json(br#"{"execute":"__org.guestlink_stream-exec","arguments":{"path":"/bin/true"}}"#);
    assert_eq!(
        desc(&v),
        "__org.guestlink_stream-exec needs live streams: call __org.guestlink_stream-enable first"
    );
    // Nothing was started, and the conversation goes on as JSON only.
    let v = c.json(br#"{"execute":"guest-ping"}"#);
    assert_eq!(v, serde_json::json!({"return": {}}));
    agent.terminate();
}

#[test]
fn a_program_streams_stdout_and_stderr_apart_and_returns_its_status() {
    on_live(|l| async move {
        let mut args = exec_args("/bin/sh", &["-c", "echo out; echo err >&2; exit 7"]);
        args.user = Some(me());
        let (mut s, ret) = l.open::<cmd::GuestlinkStreamExec>(&args).await.unwrap();
        assert!(ret.pid > 0);
        let (out, err, st) = collect(&mut s).await;
        assert_eq!(out, b"out\n");
        assert_eq!(err, b"err\n");
        assert_eq!(st, Some(ExitStatus::Code(7)));
    });
}

#[test]
fn output_arrives_while_the_program_runs_and_stdin_is_forwarded_with_its_end() {
    on_live(|l| async move {
        let mut s = sh(&l, "echo first; read x; echo got:$x; cat").await;
        // The first line comes while the program waits for input.
        assert_eq!(s.recv().await, Some(StreamEvent::Data(b"first\n".to_vec())));
        let w = s.writer();
        assert!(w.write(b"hello\nrest of input").await);
        assert!(w.eof().await);
        let (out, _, st) = collect(&mut s).await;
        assert_eq!(out, b"got:hello\nrest of input");
        assert_eq!(st, Some(ExitStatus::Code(0)));
    });
}

#[test]
fn a_signal_reaches_the_program_and_its_status_says_so() {
    on_live(|l| async move {
        let mut s = sh(&l, "echo ready; exec sleep 30").await;
        assert_eq!(s.recv().await, Some(StreamEvent::Data(b"ready\n".to_vec())));
        assert!(s.writer().signal(libc::SIGINT as u32).await);
        let (_, _, st) = collect(&mut s).await;
        assert_eq!(st, Some(ExitStatus::Signal(libc::SIGINT)));
        assert_eq!(st.unwrap().shell_status(), 130);
    });
}

#[test]
fn the_timeout_ends_a_program() {
    on_live(|l| async move {
        let mut args = exec_args("/bin/sleep", &["30"]);
        args.timeout = Some(1);
        let started = Instant::now();
        let (mut s, _) = l.open::<cmd::GuestlinkStreamExec>(&args).await.unwrap();
        let (_, _, st) = collect(&mut s).await;
        assert_eq!(st, Some(ExitStatus::Signal(libc::SIGTERM)));
        assert!(started.elapsed() < Duration::from_secs(20));
    });
}

#[test]
fn many_streams_run_at_once_beside_ordinary_calls_and_a_stalled_one_blocks_nothing() {
    let agent = Agent::start(GUESTLINKD, &[]);
    rt().block_on(async {
        let l = live(&agent).await;
        // A stream nobody reads, writing without end: it stops at its window.
        let _stalled = sh(&l, "exec cat /dev/zero").await;
        let mut streams = Vec::new();
        for i in 0..20 {
            let (s, _) = l
                .open::<cmd::GuestlinkStreamExec>(&exec_args(
                    "/bin/sh",
                    &[
                        "-c",
                        &format!(
                            "head -c {} /dev/zero | tr '\\0' x; echo; echo {i}",
                            100_000 + i
                        ),
                    ],
                ))
                .await
                .unwrap();
            streams.push(s);
        }
        // Ordinary calls are answered meanwhile.
        for _ in 0..10 {
            l.call::<cmd::GuestPing>(&guestlink_vocabulary::types::Empty {})
                .await
                .unwrap();
        }
        let mut tasks = Vec::new();
        for (i, mut s) in streams.into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                let (out, _, st) = collect(&mut s).await;
                assert_eq!(out.len(), 100_000 + i + 1 + format!("{i}\n").len());
                assert!(out.ends_with(format!("\n{i}\n").as_bytes()));
                assert_eq!(st, Some(ExitStatus::Code(0)));
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // `cat /dev/zero` has been writing all along: the agent holds at most the
        // stalled stream's window of it, and its RSS stays where it was.
        let (_, before) = memory(agent.pid());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (_, after) = memory(agent.pid());
        assert!(
            after < 64 << 10 && after < before + (4 << 10),
            "agent RSS {before} then {after} KiB with a stalled stream"
        );
        drop(_stalled);
    });
    agent.terminate();
}

fn alive(pid: i32) -> bool {
    // A zombie is not alive for this purpose: the agent reaps its children.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

#[test]
fn every_process_ends_when_the_host_goes_away() {
    let agent = Agent::start(GUESTLINKD, &[]);
    let dir = agent.dir.to_path_buf();
    let pids = rt().block_on(async {
        let l = live(&agent).await;
        let mut pids = Vec::new();
        // A program, one that ignores SIGHUP, and a shell with a background job.
        for script in [
            "echo up; exec sleep 300",
            "trap '' HUP; echo up; while :; do sleep 1; done",
            "sleep 300 & echo $! > bg.pid; echo up; wait",
        ] {
            let mut args = exec_args("/bin/sh", &["-c", script]);
            args.cwd = Some(dir.display().to_string());
            let (mut s, ret) = l.open::<cmd::GuestlinkStreamExec>(&args).await.unwrap();
            assert_eq!(s.recv().await, Some(StreamEvent::Data(b"up\n".to_vec())));
            pids.push(ret.pid as i32);
        }
        let bg: i32 = std::fs::read_to_string(dir.join("bg.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        pids.push(bg);
        for &p in &pids {
            assert!(alive(p), "{p} should run");
        }
        drop(l);
        pids
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            Instant::now() < deadline,
            "left running: {:?}",
            pids.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    agent.terminate();
}

#[test]
fn a_shell_without_a_terminal_runs_what_it_reads_and_announces_itself() {
    let logs = common::scratch("shell-log");
    let log = logs.join("agent.log");
    let agent = Agent::start_with(GUESTLINKD, &[], |c| {
        c.arg("-l").arg(&log);
    });
    rt().block_on(async {
        // A second connection watches the shell events.
        let mut watcher = Client::connect_unix(&agent.sock, Duration::from_secs(10))
            .await
            .unwrap();
        watcher
            .subscribe(Some(&["SHELL_OPENED", "SHELL_CLOSED"]), None)
            .await
            .unwrap();
        let l = live(&agent).await;
        let args = ShellArgs {
            user: Some(me()),
            command: None,
            env: Some(vec!["GREETING=hi".into()]),
            terminal: None,
        };
        let (mut s, _) = l.open::<cmd::GuestlinkShell>(&args).await.unwrap();
        let w = s.writer();
        assert!(w.write(b"echo $GREETING $USER; exit 5\n").await);
        let (out, _, st) = collect(&mut s).await;
        assert_eq!(String::from_utf8_lossy(&out), format!("hi {}\n", me()));
        assert_eq!(st, Some(ExitStatus::Code(5)));
        let mut names = Vec::new();
        while names.len() < 2 {
            let e = tokio::time::timeout(Duration::from_secs(10), watcher.next_event())
                .await
                .expect("shell events")
                .unwrap();
            if e.name == "SHELL_CLOSED" {
                assert_eq!(e.data["exitcode"], 5);
                assert_eq!(e.data["user"], me());
            }
            names.push(e.name);
        }
        assert_eq!(names, ["SHELL_OPENED", "SHELL_CLOSED"]);
    });
    // The guest's own record: who, on which channel, for how long.
    let text = std::fs::read_to_string(&log).unwrap();
    let opened = text.lines().find(|l| l.contains("shell opened"));
    let closed = text.lines().find(|l| l.contains("shell closed"));
    let user = format!("user={}", me());
    for line in [opened, closed] {
        let line = line.unwrap_or_else(|| panic!("no shell line in the log:\n{text}"));
        assert!(line.contains(&user), "{line}");
        assert!(line.contains("channel="), "{line}");
    }
    assert!(closed.unwrap().contains("seconds="), "{text}");
}

#[test]
fn a_forward_connects_inside_the_guest_and_a_reverse_forward_accepts_there() {
    on_live(|l| async move {
        // An echo server "inside the guest".
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = server.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = server.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let addr = ForwardAddress {
            host: Some("127.0.0.1".into()),
            port: Some(i64::from(port)),
            path: None,
        };
        let (mut s, _) = l.open::<cmd::GuestlinkForwardConnect>(&addr).await.unwrap();
        let w = s.writer();
        assert!(w.write(b"ping").await);
        assert!(w.eof().await);
        let mut got = Vec::new();
        while let Some(e) = s.recv().await {
            match e {
                StreamEvent::Data(d) => got.extend(d),
                StreamEvent::Eof => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, b"ping");
        // A refused connection is an error of that call alone.
        let closed = ForwardAddress {
            host: Some("127.0.0.1".into()),
            port: Some(1),
            path: None,
        };
        let e = l
            .call::<cmd::GuestlinkForwardConnect>(&closed)
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot connect to 127.0.0.1:1: Connection refused"),
            "{e}"
        );
        // Reverse: the agent listens, a guest program connects, the host gets a stream.
        let listen = ForwardAddress {
            host: Some("127.0.0.1".into()),
            port: Some(0),
            path: None,
        };
        let ret = l
            .call::<cmd::GuestlinkForwardListen>(&listen)
            .await
            .unwrap();
        let mut accepts = l.accepts(ret.stream);
        let gport = ret.port.unwrap() as u16;
        let client = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut c = tokio::net::TcpStream::connect(("127.0.0.1", gport))
                .await
                .unwrap();
            c.write_all(b"from the guest").await.unwrap();
            c.shutdown().await.unwrap();
            let mut back = Vec::new();
            c.read_to_end(&mut back).await.unwrap();
            back
        });
        let (mut s, peer) = accepts.recv().await.unwrap();
        assert!(peer.starts_with("127.0.0.1:"), "{peer}");
        let mut got = Vec::new();
        while let Some(e) = s.recv().await {
            match e {
                StreamEvent::Data(d) => got.extend(d),
                StreamEvent::Eof => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, b"from the guest");
        let w = s.writer();
        assert!(w.write(b"from the host").await);
        assert!(w.eof().await);
        assert_eq!(client.await.unwrap(), b"from the host");
    });
}

#[test]
fn blocking_guest_exec_blocks_every_live_program_and_forward_has_its_own_name() {
    let agent = Agent::start(
        GUESTLINKD,
        &["-b", "guest-exec,__org.guestlink_forward-listen"],
    );
    rt().block_on(async {
        let l = live(&agent).await;
        for e in [
            l.call::<cmd::GuestlinkStreamExec>(&exec_args("/bin/true", &[]))
                .await
                .unwrap_err(),
            l.call::<cmd::GuestlinkShell>(&ShellArgs {
                user: None,
                command: None,
                env: None,
                terminal: None,
            })
            .await
            .unwrap_err(),
            l.call::<cmd::GuestlinkForwardListen>(&ForwardAddress {
                host: None,
                port: Some(0),
                path: None,
            })
            .await
            .unwrap_err(),
        ] {
            assert!(e.to_string().contains("has been disabled"), "{e}");
        }
        // Forwards out are still allowed.
        let e = l
            .call::<cmd::GuestlinkForwardConnect>(&ForwardAddress {
                host: Some("127.0.0.1".into()),
                port: Some(1),
                path: None,
            })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("Connection refused"), "{e}");
    });
    agent.terminate();
}

#[test]
fn the_live_table_of_a_policy_file_limits_users_and_destinations() {
    let dir = scratch("live-policy");
    std::fs::write(
        dir.join("10-live.toml"),
        "[live]\nusers = [\"nobody-at-all\"]\nforward-to = [\"127.0.0.1:1\"]\nforward-listen = []\n",
    )
    .unwrap();
    let policy = dir.display().to_string();
    let agent = Agent::start(GUESTLINKD, &["--policy-dir", &policy]);
    rt().block_on(async {
        let l = live(&agent).await;
        let e = l
            .call::<cmd::GuestlinkStreamExec>(&exec_args("/bin/true", &[]))
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("running as 'root' is not allowed by the policy"),
            "{e}"
        );
        let to = |port| ForwardAddress {
            host: Some("127.0.0.1".into()),
            port: Some(port),
            path: None,
        };
        let e = l
            .call::<cmd::GuestlinkForwardConnect>(&to(2))
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("forwarding to '127.0.0.1:2' is not allowed"),
            "{e}"
        );
        // The allowed destination is tried (and nothing listens there).
        let e = l
            .call::<cmd::GuestlinkForwardConnect>(&to(1))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("Connection refused"), "{e}");
        let e = l
            .call::<cmd::GuestlinkForwardListen>(&to(0))
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("listening on '127.0.0.1:0' is not allowed"),
            "{e}"
        );
    });
    agent.terminate();
}

#[test]
fn a_sync_ends_every_stream_and_turns_streams_off() {
    let agent = Agent::start(GUESTLINKD, &[]);
    let mut c = agent.connect();
    let v = c.json(br#"{"execute":"__org.guestlink_stream-enable"}"#);
    assert_eq!(v["return"]["version"], 1);
    let v = c.json(br#"{"execute":"__org.guestlink_stream-exec","arguments":{"path":"/bin/sleep","arg":["300"]}}"#);
    let pid = v["return"]["pid"].as_i64().unwrap() as i32;
    assert!(alive(pid));
    c.resync(7);
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "the program outlived the sync");
        std::thread::sleep(Duration::from_millis(50));
    }
    let v =
        c.json(br#"{"execute":"__org.guestlink_stream-exec","arguments":{"path":"/bin/true"}}"#);
    assert!(desc(&v).contains("needs live streams"), "{v}");
    // A frame now is not a frame: the JSON decoder takes it, and answers in its way.
    c.send(b"\xfe\x04\x00\x00\x00\x01\x00\x00\x00\x00\n");
    let v = parse(&c.line());
    assert_eq!(v["error"]["class"], "GenericError");
    c.resync(8);
    let v = c.json(br#"{"execute":"guest-ping"}"#);
    assert_eq!(v, serde_json::json!({"return": {}}));
    agent.terminate();
}

/// Reads frames and lines from a raw connection until a line satisfies `done`.
fn read_until(
    s: &mut std::os::unix::net::UnixStream,
    done: impl Fn(&serde_json::Value) -> bool,
) -> (Vec<guestlink_proto_stream::Frame>, Vec<serde_json::Value>) {
    use std::io::Read;
    let mut dec = guestlink_proto_stream::Decoder::new();
    let (mut frames, mut lines, mut line) = (Vec::new(), Vec::new(), Vec::new());
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no end: {frames:?} {lines:?}");
        let n = match s.read(&mut buf) {
            Ok(0) => panic!("the agent closed the connection"),
            Ok(n) => n,
            Err(_) => continue,
        };
        let mut pos = 0;
        while pos < n {
            if dec.in_frame() || (line.is_empty() && buf[pos] == guestlink_proto_stream::MAGIC) {
                let (used, f) = dec.feed(&buf[pos..n]);
                pos += used;
                frames.extend(f.map(Result::unwrap));
                continue;
            }
            let b = buf[pos];
            pos += 1;
            line.push(b);
            if b == b'\n' {
                let v = parse(&std::mem::take(&mut line));
                let stop = done(&v);
                lines.push(v);
                if stop {
                    return (frames, lines);
                }
            }
        }
    }
}

#[test]
fn hostile_frames_reset_their_stream_and_the_agent_keeps_serving() {
    use guestlink_proto_stream::{encode, Frame};
    use std::io::Write;
    let agent = Agent::start(GUESTLINKD, &[]);
    let mut s = std::os::unix::net::UnixStream::connect(&agent.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s.write_all(b"{\"execute\":\"__org.guestlink_stream-enable\"}\n{\"execute\":\"__org.guestlink_stream-exec\",\"arguments\":{\"path\":\"/bin/sleep\",\"arg\":[\"30\"]}}\n").unwrap();
    let (_, lines) = read_until(&mut s, |v| v["return"]["stream"].is_u64());
    let id = lines.last().unwrap()["return"]["stream"].as_u64().unwrap() as u32;
    let mut out = Vec::new();
    // A stream that does not exist, its end twice, then data after the end.
    encode(
        &mut out,
        &Frame::Data {
            stream: 999,
            data: b"lost".to_vec(),
        },
    );
    encode(&mut out, &Frame::Eof { stream: id });
    encode(&mut out, &Frame::Eof { stream: id });
    // A frame only the guest sends, on a second program.
    out.extend_from_slice(b"{\"execute\":\"__org.guestlink_stream-exec\",\"arguments\":{\"path\":\"/bin/sleep\",\"arg\":[\"30\"]}}\n");
    s.write_all(&out).unwrap();
    let (frames, lines) = read_until(&mut s, |v| v["return"]["stream"].is_u64());
    let second = lines.last().unwrap()["return"]["stream"].as_u64().unwrap() as u32;
    let mut out = Vec::new();
    encode(
        &mut out,
        &Frame::Exit {
            stream: second,
            status: ExitStatus::Code(0),
        },
    );
    // More credit than any window, on the first, then a frame too long to skip.
    encode(
        &mut out,
        &Frame::Credit {
            stream: id,
            bytes: u32::MAX,
        },
    );
    out.extend_from_slice(&[0xFE, 1, 0, 0, 0, 1, 0x7F, 0, 0, 0]);
    out.extend_from_slice(b"\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":4}}\n");
    s.write_all(&out).unwrap();
    let (more, _) = read_until(&mut s, |v| v["return"] == 4);
    let resets: Vec<_> = frames
        .iter()
        .chain(more.iter())
        .filter_map(|f| match f {
            Frame::Reset { stream, reason } => Some((*stream, reason.clone())),
            _ => None,
        })
        .collect();
    assert!(
        resets.contains(&(id, "the host sent more after its end of data".into())),
        "{resets:?}"
    );
    assert!(
        resets.contains(&(second, "the host sent a frame only the guest sends".into())),
        "{resets:?}"
    );
    // The agent still answers, on this connection and on a new one.
    s.write_all(b"{\"execute\":\"guest-ping\"}\n").unwrap();
    let (_, lines) = read_until(&mut s, |v| v.get("return").is_some());
    assert_eq!(lines.last().unwrap(), &serde_json::json!({"return": {}}));
    let mut c = agent.connect();
    assert_eq!(
        c.json(br#"{"execute":"guest-ping"}"#),
        serde_json::json!({"return": {}})
    );
    agent.terminate();
}
