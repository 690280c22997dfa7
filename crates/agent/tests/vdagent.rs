//! guestlinkd's SPICE vdagent front end against a host harness playing spice-server
//! over a pty (the way the port looks in a guest), with a headless `guestlink-session`
//! as the desktop: greeting and capabilities, chunking, the clipboard both ways
//! (lazy, 1 MiB, multi-byte UTF-8, serials, MAX_CLIPBOARD), monitors with and without
//! the millimetre array, the pointer through the recording back end, file transfer
//! (collisions, traversal, cancel, disconnect, space, lock, policy) and bad input.

mod common;

use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guestlink_client::vdagent::{spice_gtk_caps, Host};
use guestlink_fdio::FdStream;
use guestlink_proto_vdagent::messages::{caps, Monitor, MonitorsConfig, PHYSICAL_SIZE, USE_POS};
use guestlink_proto_vdagent::{encode_on, AgentMessage, Capabilities, Port};

use common::*;

const T: Duration = Duration::from_secs(10);
const NOBODY: u32 = 65534;
const TEXT: u32 = 1;

struct Setup {
    host: Host<FdStream>,
    _agent: Kill,
    _session: Option<Kill>,
    _slave: OwnedFd,
    /// Removed last, once the programs using it are gone.
    dir: Scratch,
}

fn sessions_file(dir: &Path, locked: bool) {
    write_sessions(dir, true, locked);
}

/// Session 1 of user nobody, for guestlinkd's `--sessions file:`.
fn write_sessions(dir: &Path, active: bool, locked: bool) {
    let text = format!(
        r#"[{{"id":"1","uid":{NOBODY},"user":"nobody","seat":"seat0","active":{active},"locked":{locked}}}]"#
    );
    let tmp = dir.join("sessions.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, dir.join("sessions.json")).unwrap();
}

impl Setup {
    async fn start(extra: &[&str], with_session: bool) -> Setup {
        let dir = scratch("vdagent");
        sessions_file(&dir, false);
        let dl = dir.join("dl");
        std::fs::create_dir(&dl).unwrap();
        std::os::unix::fs::chown(&dl, Some(NOBODY), Some(NOBODY)).unwrap();
        let (stream, slave, path) = host_pty();
        let agent = Command::new(GUESTLINKD)
            .arg("--channel")
            .arg(format!("vdagent=virtio-serial:{}", path.display()))
            .arg("--guest-socket")
            .arg(dir.join("guest.sock"))
            .arg("--sessions")
            .arg(format!("file:{}", dir.join("sessions.json").display()))
            .args(if extra.contains(&"--pointer") {
                vec![]
            } else {
                vec![
                    "--pointer".to_string(),
                    format!("record:{}", dir.join("pointer").display()),
                ]
            })
            .arg("--transfer-dir")
            .arg(&dl)
            .arg("-t")
            .arg(&dir)
            .args(extra)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let agent = Kill(agent);
        let host = Host::new(stream, spice_gtk_caps());
        let mut s = Setup {
            host,
            dir,
            _agent: agent,
            _session: None,
            _slave: slave,
        };
        s.host
            .answer_greeting(T)
            .await
            .expect("the agent greets the host");
        if with_session {
            s.start_session_agent();
        }
        s
    }

    /// A headless `guestlink-session` for session 1, once it is registered.
    fn start_session_agent(&mut self) {
        self._session = Some(Kill(
            Command::new(session_bin())
                .arg("--socket")
                .arg(self.dir.join("guest.sock"))
                .args(["run", "--backend", "headless", "--session", "1"])
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        ));
        self.wait_for_session_agent();
    }

    fn wait_for_session_agent(&self) {
        let deadline = Instant::now() + T;
        loop {
            let out = self.guest_socket_call(r#"{"execute":"__org.guestlink_get-sessions"}"#);
            if out.replace(' ', "").contains(r#""agent":true"#) {
                return;
            }
            assert!(Instant::now() < deadline, "no session agent: {out}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn guest_socket_call(&self, request: &str) -> String {
        use std::io::{BufRead, Write};
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(self.dir.join("guest.sock")) else {
            return String::new();
        };
        s.write_all(request.as_bytes()).unwrap();
        let mut line = String::new();
        std::io::BufReader::new(s).read_line(&mut line).unwrap();
        line
    }

    /// `guestlink-session clipboard ARGS` in the guest, running while the host serves.
    fn clipboard(&self, args: &[&str], input: Option<Vec<u8>>) -> tokio::process::Child {
        let mut cmd = tokio::process::Command::new(session_bin());
        cmd.arg("--socket")
            .arg(self.dir.join("guest.sock"))
            .arg("clipboard")
            .args(args);
        spawn_fed(cmd, input)
    }

    /// The host asks for the guest clipboard in type `kind`; the agent's answer.
    async fn host_request(&mut self, kind: u32) -> AgentMessage {
        self.host
            .send(&AgentMessage::ClipboardRequest { selection: 0, kind })
            .await
            .unwrap();
        next(&mut self.host, is::clipboard).await
    }

    /// A program in the guest pastes (`guestlink-session clipboard ARGS`); the host
    /// sees the REQUEST (of type `asked`, when given) and answers with `answer` (type,
    /// data). What the program printed.
    async fn paste(
        &mut self,
        args: &[&str],
        asked: impl Into<Option<u32>>,
        answer: (u32, Vec<u8>),
    ) -> (bool, Vec<u8>, String) {
        let paste = self.clipboard(args, None);
        let m = next(&mut self.host, is::request).await;
        if let Some(kind) = asked.into() {
            assert_eq!(m, AgentMessage::ClipboardRequest { selection: 0, kind });
        }
        let (kind, data) = answer;
        self.host
            .send(&AgentMessage::Clipboard {
                selection: 0,
                kind,
                data,
            })
            .await
            .unwrap();
        finished(paste).await
    }

    fn pointer_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pointer")).unwrap_or_default()
    }
}

async fn finished(child: tokio::process::Child) -> (bool, Vec<u8>, String) {
    let out = tokio::time::timeout(T, child.wait_with_output())
        .await
        .expect("the guest tool hangs")
        .unwrap();
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The host's next message of a kind (the others before it are skipped).
async fn next(host: &mut Host<FdStream>, want: fn(&AgentMessage) -> bool) -> AgentMessage {
    host.expect(T, want).await.unwrap().0
}

/// Message kinds, for [`next`].
mod is {
    use guestlink_proto_vdagent::AgentMessage as M;
    pub fn request(m: &M) -> bool {
        matches!(m, M::ClipboardRequest { .. })
    }
    pub fn clipboard(m: &M) -> bool {
        matches!(m, M::Clipboard { .. })
    }
    pub fn grab(m: &M) -> bool {
        matches!(m, M::ClipboardGrab { .. })
    }
    pub fn release(m: &M) -> bool {
        matches!(m, M::ClipboardRelease { .. })
    }
    pub fn reply(m: &M) -> bool {
        matches!(m, M::Reply { .. })
    }
}

fn grab(serial: u32, types: Vec<u32>) -> AgentMessage {
    AgentMessage::ClipboardGrab {
        selection: 0,
        serial: Some(serial),
        types,
    }
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + T;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greets_every_client_with_its_capabilities() {
    let mut s = Setup::start(&[], false).await;
    let agent = s.host.agent.clone().unwrap();
    for bit in [0, 1, 2, 5, 6, 7, 8, 10, 14, 16, 17] {
        assert!(agent.has(bit), "capability {bit} missing: {:?}", agent.0);
    }
    assert!(
        !agent.has(4) && !agent.has(9) && !agent.has(3),
        "{:?}",
        agent.0
    );
    // A client connecting later announces with request = 1 and gets an answer.
    let again = s.host.connect_client(T).await.unwrap();
    assert_eq!(again, agent);
    // One whose predecessor vanished halfway through a message: the half is dropped,
    // the greeting that follows it is not swallowed.
    let after = s.host.reconnect_after_vanished_client(T).await.unwrap();
    assert_eq!(after, agent);
    // Without a pointer back end the mouse is not claimed.
    let mut none = Setup::start(&["--pointer", "none"], false).await;
    let caps = none.host.agent.clone().unwrap();
    assert!(!caps.has(caps::MOUSE_STATE) && caps.has(caps::CLIPBOARD_BY_DEMAND));
    // Files need no session agent: the daemon writes them for the active session's user.
    none.host.send(&start_msg(9, "a.txt", 1)).await.unwrap();
    assert_eq!(status(&mut none.host, 9).await.0, 0);
    none.host
        .send(&AgentMessage::FileXferData {
            id: 9,
            data: b"x".to_vec(),
        })
        .await
        .unwrap();
    assert_eq!(status(&mut none.host, 9).await.0, 3);
    let meta = std::fs::metadata(none.dir.join("dl/a.txt")).unwrap();
    assert_eq!(meta.uid(), NOBODY);
    // No active session: VDAGENT_NOT_CONNECTED.
    write_sessions(&none.dir, false, false);
    tokio::time::sleep(Duration::from_millis(600)).await;
    none.host.send(&start_msg(10, "b.txt", 1)).await.unwrap();
    assert_eq!(status(&mut none.host, 10).await, (6, vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_clipboard_reaches_the_guest_only_when_pasted() {
    let mut s = Setup::start(&[], true).await;
    let text = "héllo wörld ✓ 日本語 🚀".as_bytes().to_vec();
    s.host.send(&grab(0, vec![TEXT])).await.unwrap();
    // Lazy: nothing is asked until a program pastes.
    assert!(s.host.is_silent(Duration::from_millis(500)).await.unwrap());
    let (ok, out, err) = s.paste(&["get"], TEXT, (TEXT, text.clone())).await;
    assert!(ok, "{err}");
    assert_eq!(out, text);

    // 1 MiB, its chunks interleaved with a spice-server mouse chunk on port 2.
    let big: Vec<u8> = "ünïcödé ✓ ".repeat(80_000).into_bytes()[..1 << 20].to_vec();
    let big = String::from_utf8_lossy(&big).into_owned().into_bytes();
    s.host.send(&grab(1, vec![TEXT])).await.unwrap();
    let paste = s.clipboard(&["get"], None);
    next(&mut s.host, is::request).await;
    let msg = AgentMessage::Clipboard {
        selection: 0,
        kind: TEXT,
        data: big.clone(),
    };
    let mut bytes = Vec::new();
    encode_on(
        Port::Client,
        4,
        &msg.to_data(s.host.negotiated()),
        &mut bytes,
    );
    let mut mouse = Vec::new();
    let m = AgentMessage::MouseState {
        x: 7,
        y: 8,
        buttons: 0,
        display_id: 0,
    };
    encode_on(Port::Server, 1, &m.to_data(s.host.negotiated()), &mut mouse);
    let first = 8 + 2048;
    s.host.send_raw(&bytes[..first]).await.unwrap();
    s.host.send_raw(&mouse).await.unwrap();
    s.host.send_raw(&bytes[first..]).await.unwrap();
    let (ok, out, err) = finished(paste).await;
    assert!(ok, "{err}");
    assert_eq!(out.len(), big.len());
    assert!(out == big, "the 1 MiB paste differs");
    wait_until("the interleaved mouse event", || {
        s.pointer_log().contains("3 0 7\n3 1 8\n0 0 0\n")
    })
    .await;

    // A grab with a stale serial is dropped: the last one still holds.
    s.host.send(&grab(0, vec![TEXT])).await.unwrap();
    assert_eq!(
        s.paste(&["get"], None, (TEXT, b"still".to_vec())).await.1,
        b"still"
    );

    // A paste fails when the host answers NONE, and after it lets go.
    let paste = s.clipboard(&["get"], None);
    next(&mut s.host, is::request).await;
    s.host
        .send(&AgentMessage::Clipboard {
            selection: 0,
            kind: 0,
            data: vec![],
        })
        .await
        .unwrap();
    assert!(!finished(paste).await.0);
    s.host
        .send(&AgentMessage::ClipboardRelease { selection: 0 })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ok, _, err) = finished(s.clipboard(&["get"], None)).await;
    assert!(!ok, "the released clipboard still pastes");
    assert!(
        s.host.is_silent(Duration::from_millis(200)).await.unwrap(),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_clipboard_reaches_the_host() {
    let mut s = Setup::start(&[], true).await;
    let text = "copié dans l'invité ✓".as_bytes().to_vec();
    let (ok, _, err) = finished(s.clipboard(&["set"], Some(text.clone()))).await;
    assert!(ok, "{err}");
    let m = next(&mut s.host, is::grab).await;
    assert_eq!(m, grab(0, vec![TEXT]));
    let m = s.host_request(TEXT).await;
    assert_eq!(
        m,
        AgentMessage::Clipboard {
            selection: 0,
            kind: TEXT,
            data: text
        }
    );
    // A type the guest does not offer: NONE, at once.
    let m = s.host_request(2).await;
    assert_eq!(
        m,
        AgentMessage::Clipboard {
            selection: 0,
            kind: 0,
            data: vec![]
        }
    );

    // 1 MiB of UTF-8 comes back whole, in chunks of at most 2048 bytes on port 1.
    let big = "日本語のテキスト ✓ ".repeat(40_000).into_bytes();
    assert!(big.len() >= 1 << 20);
    finished(s.clipboard(&["set"], Some(big.clone()))).await;
    let m = next(&mut s.host, is::grab).await;
    assert_eq!(m, grab(1, vec![TEXT]), "the serial counts on");
    let m = s.host_request(TEXT).await;
    let AgentMessage::Clipboard { data, kind, .. } = m else {
        unreachable!()
    };
    assert_eq!(kind, TEXT);
    assert!(data == big, "the 1 MiB copy differs");
    assert!(
        s.host.largest_chunk <= 2048,
        "chunk of {}",
        s.host.largest_chunk
    );
    assert_eq!(s.host.foreign_port_chunks, 0);

    // MAX_CLIPBOARD: larger data is answered with the type and no bytes.
    s.host
        .send(&AgentMessage::MaxClipboard(1000))
        .await
        .unwrap();
    let m = s.host_request(TEXT).await;
    assert_eq!(
        m,
        AgentMessage::Clipboard {
            selection: 0,
            kind: TEXT,
            data: vec![]
        }
    );

    // Primary, and clearing: a release with the 4-byte selection header.
    finished(s.clipboard(&["set", "--selection", "primary", "sel"], None)).await;
    let m = next(&mut s.host, is::grab).await;
    assert_eq!(
        m,
        AgentMessage::ClipboardGrab {
            selection: 1,
            serial: Some(0),
            types: vec![TEXT]
        }
    );
    let (ok, _, err) = finished(s.clipboard(&["clear"], None)).await;
    assert!(ok, "{err}");
    let m = next(&mut s.host, is::release).await;
    assert_eq!(m, AgentMessage::ClipboardRelease { selection: 0 });

    // A new client hears what the guest holds, with serials from 0 again.
    s.host.connect_client(T).await.unwrap();
    let m = next(&mut s.host, is::grab).await;
    assert_eq!(
        m,
        AgentMessage::ClipboardGrab {
            selection: 1,
            serial: Some(0),
            types: vec![TEXT]
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_with_and_without_physical_sizes_and_the_pointer() {
    let mut s = Setup::start(&[], false).await;
    let mon = |width, height, x, y| Monitor {
        height,
        width,
        depth: 32,
        x,
        y,
    };
    let plain = MonitorsConfig {
        flags: 0,
        monitors: vec![mon(1024, 768, 0, 0)],
        physical: None,
    };
    s.host
        .send(&AgentMessage::MonitorsConfig(plain))
        .await
        .unwrap();
    let m = next(&mut s.host, is::reply).await;
    assert_eq!(m, AgentMessage::Reply { kind: 2, error: 1 });
    // spice-gtk always appends the millimetre array (spice-vdagentd rejects it).
    let gtk = MonitorsConfig {
        flags: USE_POS | PHYSICAL_SIZE,
        monitors: vec![mon(800, 600, 0, 0), mon(1280, 720, 800, 0)],
        physical: Some(vec![(300, 400), (340, 600)]),
    };
    s.host
        .send(&AgentMessage::MonitorsConfig(gtk))
        .await
        .unwrap();
    let m = next(&mut s.host, is::reply).await;
    assert_eq!(m, AgentMessage::Reply { kind: 2, error: 1 });

    // The pointer: display 1 is 800 pixels to the right; buttons and the wheel.
    let ms = |x, y, buttons, display_id| AgentMessage::MouseState {
        x,
        y,
        buttons,
        display_id,
    };
    s.host
        .send_on(Port::Server, &ms(10, 20, 0x2, 1))
        .await
        .unwrap();
    s.host
        .send_on(Port::Server, &ms(10, 20, 0x2 | 0x10, 1))
        .await
        .unwrap();
    s.host
        .send_on(Port::Server, &ms(10, 20, 0x2, 5))
        .await
        .unwrap();
    wait_until("the pointer events", || {
        s.pointer_log() == "3 0 810\n3 1 20\n1 272 1\n0 0 0\n2 8 1\n0 0 0\n"
    })
    .await;
    // The client goes away with the button held: it is released.
    s.host
        .send_on(Port::Server, &AgentMessage::ClientDisconnected)
        .await
        .unwrap();
    wait_until("the release", || {
        s.pointer_log().ends_with("2 8 1\n0 0 0\n1 272 0\n0 0 0\n")
    })
    .await;
}

fn start_msg(id: u32, name: &str, size: u64) -> AgentMessage {
    let escaped = name.replace('\\', "\\\\");
    AgentMessage::FileXferStart {
        id,
        keyfile: format!("[vdagent-file-xfer]\nname={escaped}\nsize={size}\n").into_bytes(),
    }
}

/// A transfer of 10 bytes of which `data` came; its partial file, once written.
async fn half_sent(
    h: &mut Host<FdStream>,
    dir: &Path,
    id: u32,
    name: &str,
    data: &[u8],
) -> PathBuf {
    h.send(&start_msg(id, name, 10)).await.unwrap();
    assert_eq!(status(h, id).await.0, 0);
    h.send(&AgentMessage::FileXferData {
        id,
        data: data.to_vec(),
    })
    .await
    .unwrap();
    let path = dir.join("dl").join(name);
    let len = data.len() as u64;
    wait_until("the partial file", || {
        std::fs::metadata(&path).is_ok_and(|m| m.len() == len)
    })
    .await;
    path
}

async fn status(host: &mut Host<FdStream>, id: u32) -> (u32, Vec<u8>) {
    let (m, _) = host
        .expect(
            T,
            |m| matches!(m, AgentMessage::FileXferStatus { id: i, .. } if *i == id),
        )
        .await
        .unwrap();
    let AgentMessage::FileXferStatus { result, detail, .. } = m else {
        unreachable!()
    };
    (result, detail)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_land_in_the_users_directory() {
    let mut s = Setup::start(&[], true).await;
    let h = &mut s.host;
    h.send(&start_msg(1, "report.txt", 5)).await.unwrap();
    assert_eq!(status(h, 1).await, (0, vec![]));
    h.send(&AgentMessage::FileXferData {
        id: 1,
        data: b"hello".to_vec(),
    })
    .await
    .unwrap();
    assert_eq!(status(h, 1).await, (3, vec![]));
    let first = s.dir.join("dl/report.txt");
    assert_eq!(std::fs::read(&first).unwrap(), b"hello");
    assert_eq!(
        std::fs::metadata(&first).unwrap().uid(),
        NOBODY,
        "owned by the session's user"
    );

    // The same name again: a numbered variant; data in several pieces.
    h.send(&start_msg(2, "report.txt", 6)).await.unwrap();
    assert_eq!(status(h, 2).await.0, 0);
    for piece in [&b"abc"[..], b"def"] {
        h.send(&AgentMessage::FileXferData {
            id: 2,
            data: piece.to_vec(),
        })
        .await
        .unwrap();
    }
    assert_eq!(status(h, 2).await.0, 3);
    assert_eq!(
        std::fs::read(s.dir.join("dl/report (1).txt")).unwrap(),
        b"abcdef"
    );

    // Names that try to leave the directory: ERROR with INVALID_FILENAME.
    for (id, name) in [(3, "../evil"), (4, "/etc/evil"), (5, "a/b"), (6, "..")] {
        h.send(&start_msg(id, name, 1)).await.unwrap();
        assert_eq!(status(h, id).await, (2, vec![0, 10, 0, 0, 0]), "{name}");
    }
    assert!(!s.dir.join("evil").exists() && !Path::new("/etc/evil").exists());

    // Cancelled by the client: the partial file goes.
    let partial = half_sent(h, &s.dir, 7, "partial.bin", b"1234").await;
    h.send(&AgentMessage::FileXferStatus {
        id: 7,
        result: 1,
        detail: vec![],
    })
    .await
    .unwrap();
    wait_until("the cancelled file to go", || !partial.exists()).await;

    // More data than announced: ERROR, and the file goes.
    h.send(&start_msg(8, "over.bin", 2)).await.unwrap();
    assert_eq!(status(h, 8).await.0, 0);
    h.send(&AgentMessage::FileXferData {
        id: 8,
        data: b"123".to_vec(),
    })
    .await
    .unwrap();
    assert_eq!(status(h, 8).await.0, 2);
    assert!(!s.dir.join("dl/over.bin").exists());

    // Not enough space: the free bytes come with the status.
    h.send(&start_msg(9, "huge.iso", 1 << 60)).await.unwrap();
    let (code, detail) = status(h, 9).await;
    assert_eq!(code, 4);
    assert_eq!(detail.len(), 8);
    assert!(u64::from_le_bytes(detail.try_into().unwrap()) < 1 << 60);

    // An empty file, as spice-gtk sends it and spice-vdagentd answers: CAN_SEND_DATA,
    // one empty DATA, SUCCESS.
    h.send(&start_msg(10, "empty", 0)).await.unwrap();
    assert_eq!(status(h, 10).await.0, 0);
    h.send(&AgentMessage::FileXferData {
        id: 10,
        data: Vec::new(),
    })
    .await
    .unwrap();
    assert_eq!(status(h, 10).await.0, 3);
    assert_eq!(std::fs::metadata(s.dir.join("dl/empty")).unwrap().len(), 0);

    // The client disconnects mid-transfer: the partial file goes.
    let cut = half_sent(h, &s.dir, 11, "cut.bin", b"12").await;
    h.send_on(Port::Server, &AgentMessage::ClientDisconnected)
        .await
        .unwrap();
    wait_until("the interrupted file to go", || !cut.exists()).await;

    // A locked session takes no files.
    sessions_file(&s.dir, true);
    tokio::time::sleep(Duration::from_millis(600)).await;
    s.host.send(&start_msg(12, "locked.txt", 1)).await.unwrap();
    assert_eq!(status(&mut s.host, 12).await.0, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_and_peers_without_detailed_errors() {
    // A clipboard the policy refuses is not offered at all.
    let off = Setup::start(
        &[
            "-b",
            "__org.guestlink_clipboard-offer,__org.guestlink_clipboard-get",
        ],
        false,
    )
    .await;
    let caps = off.host.agent.clone().unwrap();
    assert!(!caps.has(caps::CLIPBOARD_BY_DEMAND) && !caps.has(caps::CLIPBOARD_SELECTION));
    assert!(!caps.has(13), "file transfer is allowed");
    let mut s = Setup::start(&["-b", "__org.guestlink_transfer-start"], true).await;
    // FILE_XFER_DISABLED: the client offers no transfer; one it sends anyway is refused.
    assert!(s.host.agent.as_ref().unwrap().has(13));
    s.host.send(&start_msg(1, "a.txt", 1)).await.unwrap();
    assert_eq!(status(&mut s.host, 1).await.0, 7, "DISABLED by policy");
    assert!(!s.dir.join("dl/a.txt").exists());
    // A client without detailed errors gets ERROR for everything above SUCCESS.
    let mut plain = Capabilities::default();
    for bit in [caps::CLIPBOARD_BY_DEMAND, caps::CLIPBOARD_SELECTION] {
        plain.set(bit);
    }
    s.host.ours = plain;
    s.host.connect_client(T).await.unwrap();
    s.host.send(&start_msg(2, "a.txt", 1)).await.unwrap();
    assert_eq!(status(&mut s.host, 2).await, (2, vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_leaves_the_agent_serving() {
    let mut s = Setup::start(&[], true).await;
    let h = &mut s.host;
    let chunk = |port: u32, payload: &[u8]| {
        let mut b = Vec::new();
        b.extend_from_slice(&port.to_le_bytes());
        b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        b.extend_from_slice(payload);
        b
    };
    let header = |protocol: u32, kind: u32, size: u32| {
        let mut b = Vec::new();
        for v in [protocol, kind] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&size.to_le_bytes());
        b
    };
    // Wrong protocol, unknown type, wrong sizes, an announced size over the limit.
    h.send_raw(&chunk(1, &header(2, 4, 0))).await.unwrap();
    h.send_raw(&chunk(1, &header(1, 99, 0))).await.unwrap();
    let mut short_mouse = header(1, 1, 3);
    short_mouse.extend_from_slice(&[1, 2, 3]);
    h.send_raw(&chunk(2, &short_mouse)).await.unwrap();
    h.send_raw(&chunk(1, &header(1, 4, u32::MAX)))
        .await
        .unwrap();
    h.send_raw(&chunk(1, &header(1, 6, 0))).await.unwrap(); // caps shorter than 4
                                                            // Lost framing: a chunk larger than 2048 and a chunk for port 7.
    h.send_raw(&chunk(1, &vec![0xAB; 4096])).await.unwrap();
    h.send_raw(&chunk(7, b"junk")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Still serving: a new client, and a clipboard round trip.
    h.connect_client(T)
        .await
        .expect("the agent answers after bad input");
    finished(s.clipboard(&["set", "ok"], None)).await;
    let m = next(&mut s.host, is::grab).await;
    assert!(matches!(
        m,
        AgentMessage::ClipboardGrab { selection: 0, .. }
    ));
    let m = s.host_request(TEXT).await;
    assert_eq!(
        m,
        AgentMessage::Clipboard {
            selection: 0,
            kind: TEXT,
            data: b"ok".to_vec()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_agent_that_comes_later_gets_what_the_host_owns() {
    let mut s = Setup::start(&[], false).await;
    // The host copies before any desktop runs (QEMU does at boot).
    s.host.send(&grab(0, vec![TEXT])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.start_session_agent();
    let (ok, out, err) = s.paste(&["get"], TEXT, (TEXT, b"early".to_vec())).await;
    assert!(ok, "{err}");
    assert_eq!(out, b"early");
}

/// A 2×1 24-bit BMP: a red pixel and a blue one.
fn tiny_bmp() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"BM");
    b.extend_from_slice(&62u32.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&54u32.to_le_bytes());
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&2i32.to_le_bytes());
    b.extend_from_slice(&1i32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&24u16.to_le_bytes());
    b.extend_from_slice(&[0; 24]);
    // BGR, then padding to 4 bytes.
    b.extend_from_slice(&[0, 0, 255, 255, 0, 0, 0, 0]);
    b
}

fn is_png(data: &[u8], width: u32, height: u32) -> bool {
    data.starts_with(b"\x89PNG\r\n\x1a\n")
        && data.len() > 24
        && data[16..20] == width.to_be_bytes()
        && data[20..24] == height.to_be_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_in_other_formats_are_offered_as_png() {
    let mut s = Setup::start(&[], true).await;
    // The guest has a BMP: the host is offered BMP and PNG, and PNG is converted.
    let (ok, _, err) =
        finished(s.clipboard(&["set", "--type", "image/bmp"], Some(tiny_bmp()))).await;
    assert!(ok, "{err}");
    let m = next(&mut s.host, is::grab).await;
    assert_eq!(m, grab(0, vec![3, 2]));
    let m = s.host_request(2).await;
    let AgentMessage::Clipboard { kind, data, .. } = m else {
        unreachable!()
    };
    assert_eq!(kind, 2);
    assert!(
        is_png(&data, 2, 1),
        "not a 2x1 PNG: {:?}",
        &data[..data.len().min(32)]
    );
    let m = s.host_request(3).await;
    assert_eq!(
        m,
        AgentMessage::Clipboard {
            selection: 0,
            kind: 3,
            data: tiny_bmp()
        }
    );

    // A host with BMP only (a Windows client): a guest program that wants PNG gets it.
    s.host.send(&grab(0, vec![3])).await.unwrap();
    let (ok, out, err) = s
        .paste(&["get", "--type", "image/png"], 3, (3, tiny_bmp()))
        .await;
    assert!(ok, "{err}");
    assert!(is_png(&out, 2, 1));
    // Garbage that claims to be BMP: the paste fails, the agent goes on.
    s.host.send(&grab(1, vec![3])).await.unwrap();
    let (ok, _, err) = s
        .paste(
            &["get", "--type", "image/png"],
            None,
            (3, b"BMnonsense".to_vec()),
        )
        .await;
    assert!(!ok && (err.contains("BMP") || err.contains("bmp")), "{err}");
}
