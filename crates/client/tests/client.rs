//! The client against both real agents (typed calls decode qemu-ga's replies too), over
//! a pty, and against a scripted agent that answers late, to show that a timed-out
//! call's late reply is never taken for the next call's answer.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use guestlink_client::{Client, ClientError, Endpoint};
use guestlink_vocabulary::commands as cmd;
use guestlink_vocabulary::types::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const QEMU_GA: &str = "/usr/sbin/qemu-ga";

use guestlink_testkit::{peer_available, Kill};

/// The workspace's guestlinkd.
fn guestlinkd() -> PathBuf {
    guestlink_testkit::sibling("guestlinkd", "guestlinkd")
}

/// An agent on a private socket, killed (and its directory removed) when dropped.
struct Agent(guestlink_testkit::Agent);

impl std::ops::Deref for Agent {
    type Target = guestlink_testkit::Agent;

    fn deref(&self) -> &guestlink_testkit::Agent {
        &self.0
    }
}

impl Agent {
    fn start(bin: &Path, tag: &str) -> Agent {
        Agent(
            guestlink_testkit::Launch::new(bin)
                .tag(&format!("client-{tag}"))
                .spawn(&[], |_| {})
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint::path(&self.sock)
    }
}

async fn typed_calls(endpoint: &Endpoint, dir: &Path) {
    let mut c = Client::connect(endpoint, Duration::from_secs(10))
        .await
        .unwrap();
    c.call::<cmd::GuestPing>(&Empty {}).await.unwrap();
    assert_eq!(
        c.call::<cmd::GuestSync>(&GuestSyncArgs { id: 42 })
            .await
            .unwrap(),
        42
    );
    let info = c.call::<cmd::GuestInfo>(&Empty {}).await.unwrap();
    assert!(info.supported_commands.len() >= 40);
    c.call::<cmd::GuestGetOsinfo>(&Empty {}).await.unwrap();
    c.call::<cmd::GuestGetHostName>(&Empty {}).await.unwrap();
    c.call::<cmd::GuestGetTimezone>(&Empty {}).await.unwrap();
    c.call::<cmd::GuestGetUsers>(&Empty {}).await.unwrap();
    assert!(c.call::<cmd::GuestGetTime>(&Empty {}).await.unwrap() > 0);
    assert!(!c
        .call::<cmd::GuestNetworkGetInterfaces>(&Empty {})
        .await
        .unwrap()
        .is_empty());
    c.call::<cmd::GuestGetFsinfo>(&Empty {}).await.unwrap();
    c.call::<cmd::GuestGetDisks>(&Empty {}).await.unwrap();
    c.call::<cmd::GuestGetVcpus>(&Empty {}).await.unwrap();
    c.call::<cmd::GuestGetDiskstats>(&Empty {}).await.unwrap();
    c.call::<cmd::GuestGetCpustats>(&Empty {}).await.unwrap();
    c.call::<cmd::GuestGetMemoryBlocks>(&Empty {})
        .await
        .unwrap();
    assert_eq!(
        c.call::<cmd::GuestFsfreezeStatus>(&Empty {}).await.unwrap(),
        GuestFsfreezeStatus::Thawed
    );
    // Files: bytes in, the same bytes out, through the typed base64 members.
    let path = dir.join("f").to_string_lossy().into_owned();
    let h = c
        .call::<cmd::GuestFileOpen>(&GuestFileOpenArgs {
            path: path.clone(),
            mode: Some("w+".into()),
        })
        .await
        .unwrap();
    let data: Vec<u8> = (0..=255u8).collect();
    let w = c
        .call::<cmd::GuestFileWrite>(&GuestFileWriteArgs {
            handle: h,
            buf_b64: base64_encode(&data),
            count: None,
        })
        .await
        .unwrap();
    assert_eq!(w.count, 256);
    c.call::<cmd::GuestFileSeek>(&GuestFileSeekArgs {
        handle: h,
        offset: 0,
        whence: GuestFileWhence::Name(QGASeek::Set),
    })
    .await
    .unwrap();
    let r = c
        .call::<cmd::GuestFileRead>(&GuestFileReadArgs {
            handle: h,
            count: Some(1000),
        })
        .await
        .unwrap();
    assert_eq!((r.count, r.eof, r.buf_b64.0), (256, true, data));
    c.call::<cmd::GuestFileClose>(&GuestFileHandleArgs { handle: h })
        .await
        .unwrap();
    // Exec with a boolean capture (understood by every version).
    let pid = c
        .call::<cmd::GuestExec>(&GuestExecArgs {
            path: "echo".into(),
            arg: Some(vec!["hi".into()]),
            capture_output: Some(GuestExecCaptureOutput::Flag(true)),
            ..Default::default()
        })
        .await
        .unwrap()
        .pid;
    let status = loop {
        let s = c
            .call::<cmd::GuestExecStatus>(&GuestExecStatusArgs { pid })
            .await
            .unwrap();
        if s.exited {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(status.out_data.unwrap().0, b"hi\n");
    // Errors are typed.
    let e = c.execute("guest-no-such", None).await.unwrap_err();
    assert!(e.is_command_not_found(), "{e}");
    let e = c
        .call::<cmd::GuestFileClose>(&GuestFileHandleArgs { handle: 1 })
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Agent { ref class, .. } if class == "GenericError"),
        "{e}"
    );
}

#[tokio::test]
async fn typed_calls_work_against_guestlinkd_and_qemu_ga() {
    let ours = Agent::start(&guestlinkd(), "ours");
    typed_calls(&ours.endpoint(), &ours.dir).await;
    if peer_available(QEMU_GA) {
        let theirs = Agent::start(Path::new(QEMU_GA), "theirs");
        typed_calls(&theirs.endpoint(), &theirs.dir).await;
    }
}

/// Raw bulk transfer with guestlinkd: a round trip, the automatic opt-in again after a
/// resync, and the typed call refusing a payload command. qemu-ga does not offer it.
#[tokio::test]
async fn bulk_transfer_with_guestlinkd_only() {
    let ours = Agent::start(&guestlinkd(), "bulk");
    let mut c = Client::connect(&ours.endpoint(), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(c.offers_bulk().await.unwrap());
    let path = ours.dir.join("raw");
    let h = c
        .call::<cmd::GuestFileOpen>(&GuestFileOpenArgs {
            path: path.display().to_string(),
            mode: Some("w+".into()),
        })
        .await
        .unwrap();
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i ^ (i >> 9)) as u8).collect();
    let w = c.file_write_raw(h, &data).await.unwrap();
    assert_eq!(w.count as usize, data.len());
    // A resync turns bulk mode off on both sides; the next raw call turns it on again.
    c.resync().await.unwrap();
    c.call::<cmd::GuestFileSeek>(&GuestFileSeekArgs {
        handle: h,
        offset: 0,
        whence: GuestFileWhence::Value(0),
    })
    .await
    .unwrap();
    let (back, eof) = c.file_read_raw(h, 8 << 20).await.unwrap();
    assert!(eof);
    assert_eq!(back, data);
    // Too large for one call: refused by the client before anything is sent.
    let e = c.file_read_raw(h, (48 << 20) + 1).await.unwrap_err();
    assert!(matches!(e, ClientError::TooLarge { .. }), "{e}");
    let e = c
        .call::<cmd::GuestlinkFileReadRaw>(&GuestFileReadArgs {
            handle: h,
            count: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Protocol(_)), "{e}");
    // The connection is still in step.
    c.call::<cmd::GuestPing>(&Empty {}).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);

    if peer_available(QEMU_GA) {
        let theirs = Agent::start(Path::new(QEMU_GA), "bulk-theirs");
        let mut c = Client::connect(&theirs.endpoint(), Duration::from_secs(10))
            .await
            .unwrap();
        assert!(!c.offers_bulk().await.unwrap());
        let e = c.enable_bulk().await.unwrap_err();
        assert!(e.is_command_not_found(), "{e}");
    }
}

/// A raw write cut off in the middle of its payload (the agent stopped taking bytes,
/// the call timed out) leaves the connection unusable: every later call says so rather
/// than sending the agent what it would take as the rest of the payload.
#[tokio::test]
async fn a_payload_cut_off_breaks_the_connection_for_good() {
    let ours = Agent::start(&guestlinkd(), "broken");
    let mut c = Client::connect(&ours.endpoint(), Duration::from_secs(10))
        .await
        .unwrap();
    let h = c
        .call::<cmd::GuestFileOpen>(&GuestFileOpenArgs {
            path: ours.dir.join("cut").display().to_string(),
            mode: Some("w".into()),
        })
        .await
        .unwrap();
    c.enable_bulk().await.unwrap();
    let pid = nix::unistd::Pid::from_raw(ours.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    c.set_timeout(Duration::from_millis(300));
    // More than the socket buffers hold: the write blocks until the timeout.
    let data = vec![7u8; 16 << 20];
    let e = c.file_write_raw(h, &data).await.unwrap_err();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(matches!(e, ClientError::Timeout(_)), "{e}");
    c.set_timeout(Duration::from_secs(5));
    let e = c.call::<cmd::GuestPing>(&Empty {}).await.unwrap_err();
    assert!(matches!(e, ClientError::Broken), "{e}");
    assert!(e.to_string().contains("connect again"), "{e}");
    // A new connection works.
    let mut again = Client::connect(&ours.endpoint(), Duration::from_secs(10))
        .await
        .unwrap();
    again.call::<cmd::GuestPing>(&Empty {}).await.unwrap();
}

#[test]
fn blocking_client_and_unreachable_socket() {
    let ours = Agent::start(&guestlinkd(), "blocking");
    let mut c =
        guestlink_client::blocking::Client::connect(&ours.endpoint(), Duration::from_secs(5))
            .unwrap();
    c.call::<cmd::GuestPing>(&Empty {}).unwrap();
    let e = guestlink_client::blocking::Client::connect(
        &Endpoint::path("/nonexistent/socket"),
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot connect to /nonexistent/socket"),
        "{e}"
    );
}

#[tokio::test]
async fn over_a_pty() {
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = nix::unistd::ttyname(&pty.slave).unwrap();
    let child = Command::new(guestlinkd())
        .args(["-m", "virtio-serial", "-p"])
        .arg(&slave)
        .args(["-t", "/tmp"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let _agent = Kill(child);
    drop(pty.slave);
    guestlink_fdio::make_raw(&pty.master, None).unwrap();
    let nonblock = nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(
        std::os::fd::AsRawFd::as_raw_fd(&pty.master),
        nix::fcntl::FcntlArg::F_SETFL(nonblock),
    )
    .unwrap();
    let stream =
        guestlink_fdio::FdStream::new(pty.master, guestlink_fdio::EofMeaning::End).unwrap();
    let mut c = Client::over(Box::new(stream), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        c.call::<cmd::GuestSync>(&GuestSyncArgs { id: 7 })
            .await
            .unwrap(),
        7
    );
    c.call::<cmd::GuestGetOsinfo>(&Empty {}).await.unwrap();
}

/// An agent that answers `guest-get-time` 300 ms late, the suspend and shutdown
/// commands as a guest going down would, and everything else at once.
async fn late_agent(listener: tokio::net::UnixListener) {
    let (s, _) = listener.accept().await.unwrap();
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line).await.unwrap() == 0 {
            return;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_start_matches('\u{FFFD}');
        let v: serde_json::Value = match serde_json::from_str(text.trim_start_matches(|c| c != '{'))
        {
            Ok(v) => v,
            Err(_) => continue,
        };
        match v["execute"].as_str() {
            Some("guest-sync-delimited") => {
                let reply = format!("{{\"return\": {}}}\n", v["arguments"]["id"]);
                w.write_all(&[0xFF]).await.unwrap();
                w.write_all(reply.as_bytes()).await.unwrap();
            }
            Some("guest-get-time") => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                w.write_all(b"{\"return\": 111}\n").await.unwrap();
            }
            // As an agent whose guest suspends (no reply), cannot suspend (an error),
            // or goes down (the channel closes).
            Some("guest-suspend-disk") => {}
            Some("guest-suspend-ram") => w
                .write_all(b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"no S3\"}}\n")
                .await
                .unwrap(),
            Some("guest-shutdown") => return,
            Some(_) => w.write_all(b"{\"return\": {}}\n").await.unwrap(),
            None => {}
        }
    }
}

/// A client of [`late_agent`] on a socket in a fresh directory (removed by the test).
async fn scripted_agent(tag: &str, timeout: Duration) -> (Client, PathBuf) {
    let dir = std::env::temp_dir().join(format!("gl-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("sock");
    let listener = tokio::net::UnixListener::bind(&sock).unwrap();
    tokio::spawn(late_agent(listener));
    let c = Client::connect_unix(&sock, timeout).await.unwrap();
    (c, dir)
}

#[tokio::test]
async fn a_late_reply_is_not_the_next_answer() {
    let (mut c, dir) = scripted_agent("late", Duration::from_millis(100)).await;
    let e = c.call::<cmd::GuestGetTime>(&Empty {}).await.unwrap_err();
    assert!(matches!(e, ClientError::Timeout(_)), "{e}");
    // The next call resynchronises first; the late `111` is skipped as stale.
    c.set_timeout(Duration::from_secs(2));
    let r = c.call::<cmd::GuestPing>(&Empty {}).await.unwrap();
    assert_eq!(r, Empty {});
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_command_that_replies_only_on_failure_succeeds_by_silence() {
    let (mut c, dir) = scripted_agent("silent", Duration::from_millis(200)).await;
    // Silence within the (shorter) timeout: under way.
    assert_eq!(
        c.execute_silent("guest-suspend-disk", None).await.unwrap(),
        None
    );
    assert_eq!(
        c.timeout(),
        Duration::from_millis(200),
        "the timeout is restored"
    );
    // An error is the agent's.
    let e = c
        .execute_silent("guest-suspend-ram", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Agent { desc, .. } if desc == "no S3"),
        "{e}"
    );
    // An unexpected success comes back as such.
    assert_eq!(
        c.execute_silent("guest-ping", None).await.unwrap(),
        Some(serde_json::json!({}))
    );
    // The channel closing as the guest goes down: under way too.
    let mode = serde_json::json!({"mode": "powerdown"});
    assert_eq!(
        c.execute_silent("guest-shutdown", Some(mode))
            .await
            .unwrap(),
        None
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn events_arrive_and_the_subscription_outlives_a_resync() {
    let ours = Agent::start(&guestlinkd(), "events");
    let mut c = Client::connect(&ours.endpoint(), Duration::from_secs(10))
        .await
        .unwrap();
    let sub = c.subscribe(Some(&["FSTHAW"]), Some(1)).await.unwrap();
    assert_eq!(sub.heartbeat, Some(1));
    let e = tokio::time::timeout(Duration::from_secs(5), c.next_event())
        .await
        .expect("a heartbeat")
        .unwrap();
    assert_eq!(
        (e.name.as_str(), &e.data["sequence"]),
        ("HEARTBEAT", &1.into())
    );
    // A resync ends the subscription on the agent's side; the client renews it before
    // it waits again (the agent's heartbeat count starts over).
    c.resync().await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(5), c.next_event())
        .await
        .expect("a heartbeat after the resync")
        .unwrap();
    assert_eq!(
        (e.name.as_str(), &e.data["sequence"]),
        ("HEARTBEAT", &1.into())
    );
    // After unsubscribing nothing comes.
    c.unsubscribe().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), c.next_event())
            .await
            .is_err()
    );
}
