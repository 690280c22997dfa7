//! The same host script against spice-vdagentd (with spice-vdagent as its X11 session
//! agent) and against guestlinkd (with guestlink-session on X11), each on its own pty and
//! Xvfb display: greeting, clipboard both ways through real X11 programs (xclip), the
//! monitors reply, pointer events (the reference's fake uinput file against our
//! recorder) and a file transfer. What must agree is compared; where spice-vdagentd is
//! known to be wrong (it rejects the millimetre array spice-gtk sends) the difference
//! is asserted.

mod common;

use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guestlink_client::vdagent::{spice_gtk_caps, Host};
use guestlink_fdio::FdStream;
use guestlink_proto_vdagent::messages::{Monitor, MonitorsConfig, PHYSICAL_SIZE, USE_POS};
use guestlink_proto_vdagent::{AgentMessage, Port};

use common::*;

const T: Duration = Duration::from_secs(15);
const VDAGENTD: &str = "/usr/sbin/spice-vdagentd";
const VDAGENT: &str = "/usr/bin/spice-vdagent";

/// An Xvfb display of its own.
fn xvfb(dir: &Path) -> (Kill, String) {
    for n in 40..90 {
        let display = format!(":{}", n + (std::process::id() % 50) as usize * 3);
        let lock = format!("/tmp/.X{}-lock", &display[1..]);
        if Path::new(&lock).exists() {
            continue;
        }
        let child = Command::new("Xvfb")
            .args([
                display.as_str(),
                "-screen",
                "0",
                "1024x768x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("xvfb.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let socket = format!("/tmp/.X11-unix/X{}", &display[1..]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !Path::new(&socket).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        return (Kill(child), display);
    }
    panic!("no free X display");
}

/// Which agent runs the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Reference,
    Guestlink,
}

struct Side {
    which: Which,
    host: Host<FdStream>,
    display: String,
    _procs: Vec<Kill>,
    _slave: OwnedFd,
    /// Removed last, once the programs using it are gone.
    dir: Scratch,
}

impl Side {
    async fn start(which: Which) -> Side {
        let dir = scratch(match which {
            Which::Reference => "vd-ref",
            Which::Guestlink => "vd-ours",
        });
        std::fs::create_dir(dir.join("dl")).unwrap();
        let (x, display) = xvfb(&dir);
        let (stream, slave, port) = host_pty();
        let log = |name: &str| Stdio::from(std::fs::File::create(dir.join(name)).unwrap());
        let mut procs = vec![x];
        match which {
            Which::Reference => {
                let sock = dir.join("vdagentd.sock");
                // The fake uinput device: a regular file it appends events to.
                std::fs::write(dir.join("uinput"), b"").unwrap();
                procs.push(Kill(
                    Command::new(VDAGENTD)
                        .args(["-x", "-X", "-f", "-u"])
                        .arg(dir.join("uinput"))
                        .arg("-s")
                        .arg(&port)
                        .arg("-S")
                        .arg(&sock)
                        .stdout(log("vdagentd.out"))
                        .stderr(log("vdagentd.log"))
                        .spawn()
                        .unwrap(),
                ));
                let deadline = Instant::now() + T;
                while !sock.exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                procs.push(Kill(
                    Command::new(VDAGENT)
                        .args(["-x", "-S"])
                        .arg(&sock)
                        .arg("-s")
                        .arg(&port)
                        .arg("-f")
                        .arg(dir.join("dl"))
                        .args(["-o", "0"])
                        .env("DISPLAY", &display)
                        .env("HOME", &dir)
                        .stdout(log("vdagent.out"))
                        .stderr(log("vdagent.log"))
                        .spawn()
                        .unwrap(),
                ));
            }
            Which::Guestlink => {
                let sock = dir.join("guest.sock");
                procs.push(Kill(
                    Command::new(GUESTLINKD)
                        .arg("--channel")
                        .arg(format!("vdagent=virtio-serial:{}", port.display()))
                        .arg("--guest-socket")
                        .arg(&sock)
                        .args(["--sessions", "none", "--pointer"])
                        .arg(format!("record:{}", dir.join("pointer").display()))
                        .arg("--transfer-dir")
                        .arg(dir.join("dl"))
                        .arg("-t")
                        .arg(&dir)
                        .stdin(Stdio::null())
                        .stderr(log("guestlinkd.log"))
                        .spawn()
                        .unwrap(),
                ));
                procs.push(Kill(
                    Command::new(session_bin())
                        .arg("--socket")
                        .arg(&sock)
                        .args(["run", "--backend", "x11", "--session", "x"])
                        .env("DISPLAY", &display)
                        .stderr(log("session.log"))
                        .spawn()
                        .unwrap(),
                ));
            }
        }
        let host = Host::new(stream, spice_gtk_caps());
        let mut side = Side {
            which,
            host,
            display,
            dir,
            _procs: procs,
            _slave: slave,
        };
        // spice-vdagentd opens the port once its session agent reported the screen.
        if let Err(e) = side.host.answer_greeting(T).await {
            side.dump();
            panic!("{which:?} never greeted: {e}");
        }
        side
    }

    fn dump(&self) {
        for entry in std::fs::read_dir(&self.dir).unwrap().flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "log") {
                eprintln!(
                    "---- {} ----\n{}",
                    p.display(),
                    std::fs::read_to_string(&p).unwrap_or_default()
                );
            }
        }
    }

    fn xclip(&self, args: &[&str], input: Option<&[u8]>) -> tokio::process::Child {
        let mut cmd = tokio::process::Command::new("xclip");
        cmd.args(args).env("DISPLAY", &self.display);
        spawn_fed(cmd, input.map(<[u8]>::to_vec))
    }

    /// The pointer events the agent injected, as (type, code, value).
    fn pointer_events(&self) -> Vec<(u16, u16, i32)> {
        match self.which {
            Which::Reference => {
                let raw = std::fs::read(self.dir.join("uinput")).unwrap_or_default();
                raw.chunks_exact(24)
                    .map(|r| {
                        (
                            u16::from_le_bytes([r[16], r[17]]),
                            u16::from_le_bytes([r[18], r[19]]),
                            i32::from_le_bytes([r[20], r[21], r[22], r[23]]),
                        )
                    })
                    .collect()
            }
            Which::Guestlink => std::fs::read_to_string(self.dir.join("pointer"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let v: Vec<i64> = l.split(' ').filter_map(|x| x.parse().ok()).collect();
                    (v.len() == 3).then(|| (v[0] as u16, v[1] as u16, v[2] as i32))
                })
                .collect(),
        }
    }
}

/// What one agent did with the script.
#[derive(Debug, Default)]
struct Seen {
    pasted_in_guest: Vec<u8>,
    guest_grab: Option<AgentMessage>,
    guest_data: Option<AgentMessage>,
    reply_plain: Option<AgentMessage>,
    reply_with_mm: Option<AgentMessage>,
    pointer: Vec<(u16, u16, i32)>,
    transfer: Vec<(u32, u32)>,
    received_file: Vec<u8>,
    /// The empty file's statuses, and its size on disk.
    empty_transfer: Vec<(u32, u32)>,
    empty_file: Option<u64>,
    /// The capabilities that answered a client whose predecessor vanished mid-message.
    after_vanished: Option<guestlink_proto_vdagent::Capabilities>,
}

async fn next(side: &mut Side, what: &str, want: impl Fn(&AgentMessage) -> bool) -> AgentMessage {
    match side.host.expect(T, want).await {
        Ok((m, _)) => m,
        Err(e) => {
            side.dump();
            panic!("{:?}: no {what}: {e}", side.which);
        }
    }
}

async fn script(side: &mut Side) -> Seen {
    let mut seen = Seen::default();
    let text = "copié sur l'hôte ✓".as_bytes().to_vec();

    // Host -> guest: the host grabs; an X11 program pastes; the agent asks; it gets it.
    side.host
        .send(&AgentMessage::ClipboardGrab {
            selection: 0,
            serial: Some(0),
            types: vec![1],
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let paste = side.xclip(&["-o", "-selection", "clipboard"], None);
    let req = next(side, "clipboard request", |m| {
        matches!(m, AgentMessage::ClipboardRequest { .. })
    })
    .await;
    assert_eq!(
        req,
        AgentMessage::ClipboardRequest {
            selection: 0,
            kind: 1
        },
        "{:?}",
        side.which
    );
    side.host
        .send(&AgentMessage::Clipboard {
            selection: 0,
            kind: 1,
            data: text.clone(),
        })
        .await
        .unwrap();
    let out = tokio::time::timeout(T, paste.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    seen.pasted_in_guest = out.stdout;

    // Guest -> host: an X11 program copies; the agent grabs; the host asks.
    let copy = side.xclip(
        &["-i", "-selection", "clipboard"],
        Some("copié dans l'invité".as_bytes()),
    );
    seen.guest_grab = Some(
        next(side, "guest grab", |m| {
            matches!(m, AgentMessage::ClipboardGrab { .. })
        })
        .await,
    );
    side.host
        .send(&AgentMessage::ClipboardRequest {
            selection: 0,
            kind: 1,
        })
        .await
        .unwrap();
    seen.guest_data = Some(
        next(side, "clipboard data", |m| {
            matches!(m, AgentMessage::Clipboard { .. })
        })
        .await,
    );
    drop(copy);

    // Monitors, as spice-gtk sends them (with the millimetre array) and without.
    let mon = Monitor {
        height: 768,
        width: 1024,
        depth: 32,
        x: 0,
        y: 0,
    };
    side.host
        .send(&AgentMessage::MonitorsConfig(MonitorsConfig {
            flags: 0,
            monitors: vec![mon],
            physical: None,
        }))
        .await
        .unwrap();
    seen.reply_plain = Some(
        next(side, "monitors reply", |m| {
            matches!(m, AgentMessage::Reply { .. })
        })
        .await,
    );
    side.host
        .send(&AgentMessage::MonitorsConfig(MonitorsConfig {
            flags: USE_POS | PHYSICAL_SIZE,
            monitors: vec![mon],
            physical: Some(vec![(300, 400)]),
        }))
        .await
        .unwrap();
    seen.reply_with_mm = side
        .host
        .expect(Duration::from_secs(2), |m| {
            matches!(m, AgentMessage::Reply { .. })
        })
        .await
        .ok()
        .map(|(m, _)| m);

    // The pointer (spice-server sends it on port 2).
    for buttons in [0x2, 0x0] {
        side.host
            .send_on(
                Port::Server,
                &AgentMessage::MouseState {
                    x: 100,
                    y: 200,
                    buttons,
                    display_id: 0,
                },
            )
            .await
            .unwrap();
    }
    let deadline = Instant::now() + T;
    while side.pointer_events().iter().filter(|e| e.0 == 1).count() < 2 && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen.pointer = side.pointer_events();

    // A file.
    side.host
        .send(&AgentMessage::FileXferStart {
            id: 1,
            keyfile: b"[vdagent-file-xfer]\nname=report.txt\nsize=5\n".to_vec(),
        })
        .await
        .unwrap();
    let status = |m: &AgentMessage| matches!(m, AgentMessage::FileXferStatus { .. });
    if let AgentMessage::FileXferStatus { id, result, .. } =
        next(side, "transfer status", status).await
    {
        seen.transfer.push((id, result));
    }
    side.host
        .send(&AgentMessage::FileXferData {
            id: 1,
            data: b"hello".to_vec(),
        })
        .await
        .unwrap();
    if let AgentMessage::FileXferStatus { id, result, .. } =
        next(side, "transfer status", status).await
    {
        seen.transfer.push((id, result));
    }
    seen.received_file = std::fs::read(side.dir.join("dl/report.txt")).unwrap_or_default();

    // An empty file: spice-gtk waits for CAN_SEND_DATA, then sends one empty DATA.
    side.host
        .send(&AgentMessage::FileXferStart {
            id: 2,
            keyfile: b"[vdagent-file-xfer]\nname=empty.txt\nsize=0\n".to_vec(),
        })
        .await
        .unwrap();
    if let AgentMessage::FileXferStatus { id, result, .. } =
        next(side, "empty transfer status", status).await
    {
        seen.empty_transfer.push((id, result));
    }
    side.host
        .send(&AgentMessage::FileXferData {
            id: 2,
            data: Vec::new(),
        })
        .await
        .unwrap();
    if let AgentMessage::FileXferStatus { id, result, .. } =
        next(side, "empty transfer status", status).await
    {
        seen.empty_transfer.push((id, result));
    }
    seen.empty_file = std::fs::metadata(side.dir.join("dl/empty.txt"))
        .ok()
        .map(|m| m.len());

    // The client vanishes halfway through a message; the next one's greeting is heard.
    seen.after_vanished = side.host.reconnect_after_vanished_client(T).await.ok();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guestlinkd_behaves_like_spice_vdagentd() {
    if !peer_available(VDAGENTD) || !peer_available(VDAGENT) || !peer_available("/usr/bin/xclip") {
        return;
    }
    let mut reference = Side::start(Which::Reference).await;
    let mut ours = Side::start(Which::Guestlink).await;
    // Both claim the same core capabilities.
    let (r, o) = (
        reference.host.agent.clone().unwrap(),
        ours.host.agent.clone().unwrap(),
    );
    for bit in [0, 1, 2, 5, 6, 7, 8, 10, 16, 17] {
        assert_eq!(
            r.has(bit),
            o.has(bit),
            "capability {bit}: reference {:?}, ours {:?}",
            r.0,
            o.0
        );
    }
    let theirs = script(&mut reference).await;
    let mine = script(&mut ours).await;
    eprintln!("reference: {theirs:?}\nguestlink: {mine:?}");

    assert_eq!(theirs.pasted_in_guest, "copié sur l'hôte ✓".as_bytes());
    assert_eq!(mine.pasted_in_guest, theirs.pasted_in_guest);
    assert_eq!(
        mine.guest_grab, theirs.guest_grab,
        "the guest's grab (selection, serial, types)"
    );
    assert_eq!(mine.guest_data, theirs.guest_data);
    assert_eq!(mine.reply_plain, theirs.reply_plain);
    assert_eq!(
        mine.reply_plain,
        Some(AgentMessage::Reply { kind: 2, error: 1 })
    );
    // spice-vdagentd 0.22.1 rejects the millimetre array and never replies; we do.
    assert_eq!(theirs.reply_with_mm, None);
    assert_eq!(
        mine.reply_with_mm,
        Some(AgentMessage::Reply { kind: 2, error: 1 })
    );
    assert_eq!(mine.pointer, theirs.pointer, "pointer events");
    assert!(mine.pointer.contains(&(1, 0x110, 1)));
    assert_eq!(mine.transfer, theirs.transfer);
    assert_eq!(mine.transfer, vec![(1, 0), (1, 3)]);
    assert_eq!(mine.received_file, b"hello");
    assert_eq!(theirs.received_file, b"hello");
    assert_eq!(theirs.empty_transfer, vec![(2, 0), (2, 3)]);
    assert_eq!(mine.empty_transfer, theirs.empty_transfer);
    assert_eq!((theirs.empty_file, mine.empty_file), (Some(0), Some(0)));
    assert_eq!(theirs.after_vanished.as_ref(), Some(&r));
    assert_eq!(mine.after_vanished.as_ref(), Some(&o));
}
