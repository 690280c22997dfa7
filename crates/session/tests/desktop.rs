//! The session agent against the real guestlinkd: the host sets and reads the guest
//! clipboard through the QGA channel; with the X11 back end on a real Xvfb, `xclip` is
//! the other application in the guest, in both directions; the host's display layout
//! resizes Xvfb through XRandR; on a headless sway, wl-clipboard is the other
//! application, and a host's offer is fetched only when wl-paste pastes; on a headless
//! Mutter, the host's two-monitor layouts are read back through DisplayConfig, and the
//! clipboard goes through Mutter's remote desktop API with xclip on its Xwayland; on a
//! headless KWin, wl-clipboard is the other application and the layouts are read back
//! with KDE's kscreen-doctor; a SPICE host's GRAPHICS_DEVICE_INFO puts each display on
//! the sway output it names.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guestlink_client::{Client, Endpoint};
use guestlink_vocabulary::commands::{
    GuestlinkClipboardGet, GuestlinkClipboardOffer, GuestlinkClipboardSet, GuestlinkDisplaySet,
};
use guestlink_vocabulary::types::{
    Base64Data, ClipboardGetArgs, ClipboardOfferArgs, ClipboardSelection, ClipboardSetArgs,
    Display, DisplaySetArgs,
};

const SESSION: &str = env!("CARGO_BIN_EXE_guestlink-session");

use guestlink_testkit::{Kill, Scratch};

/// guestlinkd, another package of the workspace.
fn guestlinkd() -> PathBuf {
    guestlink_testkit::sibling("guestlinkd", "guestlinkd")
}

/// A scratch directory, removed when dropped.
fn scratch(tag: &str) -> Scratch {
    Scratch::new(&format!("session-{tag}"))
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(path).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// guestlinkd with a QGA socket and a guest socket in `dir`.
fn daemon(dir: &Path) -> Kill {
    let child = Command::new(guestlinkd())
        .arg("--channel")
        .arg(format!(
            "qga=unix-listen:{}",
            dir.join("qga.sock").display()
        ))
        .arg("--guest-socket")
        .arg(dir.join("agent.sock"))
        .args(["--sessions", "none", "-t"])
        .arg(dir)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&dir.join("qga.sock"));
    wait_for(&dir.join("agent.sock"));
    Kill(child)
}

fn session_agent(dir: &Path, backend: &str, display: Option<&str>) -> Kill {
    let mut cmd = Command::new(SESSION);
    cmd.arg("--socket")
        .arg(dir.join("agent.sock"))
        .args(["run", "--backend", backend, "--session", "test-1"])
        .stdin(Stdio::null());
    if let Some(d) = display {
        cmd.env("DISPLAY", d);
    }
    Kill(cmd.spawn().unwrap())
}

async fn host(dir: &Path) -> Client {
    Client::connect(
        &Endpoint::path(dir.join("qga.sock")),
        Duration::from_secs(10),
    )
    .await
    .unwrap()
}

async fn host_set(c: &mut Client, text: &str) -> Result<(), String> {
    c.call::<GuestlinkClipboardSet>(&ClipboardSetArgs {
        selection: None,
        mime_type: "text/plain;charset=utf-8".into(),
        data: Base64Data(text.as_bytes().to_vec()),
    })
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

async fn host_get(c: &mut Client, selection: Option<ClipboardSelection>) -> Result<String, String> {
    c.call::<GuestlinkClipboardGet>(&ClipboardGetArgs {
        selection,
        mime_type: None,
    })
    .await
    .map(|d| String::from_utf8_lossy(&d.data.0).into_owned())
    .map_err(|e| e.to_string())
}

/// Retries `f` until the session agent has registered.
async fn until_registered<T>(
    c: &mut Client,
    mut f: impl AsyncFnMut(&mut Client) -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match f(c).await {
            Ok(v) => return v,
            Err(e) if e.contains("no session agent") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test]
async fn headless_round_trip_through_the_host_channel() {
    let dir = scratch("headless");
    let _d = daemon(&dir);
    let mut c = host(&dir).await;
    let e = host_get(&mut c, None).await.unwrap_err();
    assert!(e.contains("no session agent"), "{e}");
    let _s = session_agent(&dir, "headless", None);
    until_registered(&mut c, async |c| host_set(c, "héllo, guest").await).await;
    assert_eq!(host_get(&mut c, None).await.unwrap(), "héllo, guest");
    let e = host_get(&mut c, Some(ClipboardSelection::Primary))
        .await
        .unwrap_err();
    assert!(e.contains("empty"), "{e}");
    // The shell tool in the guest reaches the same clipboard through guestlinkd.
    let out = Command::new(SESSION)
        .arg("--socket")
        .arg(dir.join("agent.sock"))
        .args(["clipboard", "get"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, "héllo, guest".as_bytes());
}

/// A clipboard larger than base64 inside a QGA message allows (64 MiB of JSON) crosses
/// raw both ways: from the host in bulk mode, and between guestlinkd and the session
/// agent (`session-data`, `reply-raw`); a count of one byte more than
/// clipboard-size is refused. A guest program that is not a session
/// agent may not turn bulk transfer on.
#[tokio::test]
async fn a_64_mib_clipboard_crosses_raw() {
    use guestlink_vocabulary::commands::{GuestlinkClipboardGetRaw, GuestlinkClipboardSetRaw};
    use guestlink_vocabulary::types::{ClipboardSetRawArgs, CLIPBOARD_SIZE};
    use guestlink_vocabulary::Command as _;
    let dir = scratch("raw");
    let agent = daemon(&dir);
    let mut c = host(&dir).await;
    let session = session_agent(&dir, "headless", None);
    until_registered(&mut c, async |c| host_set(c, "first").await).await;
    let data: Vec<u8> = (0..CLIPBOARD_SIZE).map(|i| (i * 7 % 251) as u8).collect();
    let args = |count: usize| ClipboardSetRawArgs {
        selection: None,
        mime_type: "application/octet-stream".into(),
        count: count as i64,
    };
    c.call_with_payload_up_to::<GuestlinkClipboardSetRaw>(
        &args(data.len()),
        &data,
        Some(CLIPBOARD_SIZE),
    )
    .await
    .unwrap();
    let get = ClipboardGetArgs {
        selection: None,
        mime_type: Some("application/octet-stream".into()),
    };
    let (head, back) = c
        .call_with_reply_payload::<GuestlinkClipboardGetRaw>(&get, CLIPBOARD_SIZE, |r| r.count)
        .await
        .unwrap();
    assert_eq!(head.mime_type, "application/octet-stream");
    assert!(back == data, "the clipboard came back changed");
    drop(back);
    // One copy at a time in guestlinkd, two in the headless session agent (what it
    // holds and what it sends); base64 with whole copies took 5 and 3.8 times.
    let peak = |pid: u32| guestlink_testkit::memory(pid).0 as f64 * 1024.0 / CLIPBOARD_SIZE as f64;
    let (agent_peak, session_peak) = (peak(agent.0.id()), peak(session.0.id()));
    assert!(
        agent_peak < 2.0,
        "guestlinkd peaked at {agent_peak:.1}x the clipboard"
    );
    assert!(
        session_peak < 3.0,
        "guestlink-session peaked at {session_peak:.1}x the clipboard"
    );
    // One byte more than clipboard-size: refused (no payload follows such a request).
    let reply = c
        .call_raw(&serde_json::json!({
            "execute": GuestlinkClipboardSetRaw::NAME,
            "arguments": args(CLIPBOARD_SIZE + 1),
        }))
        .await
        .unwrap();
    let e = reply["error"]["desc"].as_str().unwrap_or_default();
    assert!(e.contains("clipboard-size"), "{reply}");
    host_set(&mut c, "after").await.unwrap();
    assert_eq!(host_get(&mut c, None).await.unwrap(), "after");
    let mut program = Client::connect(
        &Endpoint::path(dir.join("agent.sock")),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let e = program.enable_bulk().await.unwrap_err();
    assert!(e.to_string().contains("registered session agents"), "{e}");
}

fn require(program: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!("{program} is required for this test: apt-get install xvfb xclip xserver-xorg-core (.ci/run does)")
    })
}

fn xclip(display: &str, args: &[&str]) -> Command {
    xclip_in(&[("DISPLAY".to_string(), display.to_string())], args)
}

/// xclip in the environment `env` (an X server's `DISPLAY` and `XAUTHORITY`).
fn xclip_in(env: &[(String, String)], args: &[&str]) -> Command {
    let mut c = Command::new(require("xclip"));
    c.envs(env.iter().cloned()).args(args);
    c
}

/// Copies `text` with xclip, which keeps serving the selection until killed.
fn copy_with_xclip(display: &str, text: &str) -> Kill {
    copy_with_xclip_in(&[("DISPLAY".to_string(), display.to_string())], text)
}

/// Copies `text` with xclip in the environment `env`.
fn copy_with_xclip_in(env: &[(String, String)], text: &str) -> Kill {
    use std::io::Write;
    let mut copy = xclip_in(env, &["-i", "-selection", "clipboard", "-quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    copy.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    Kill(copy)
}

#[tokio::test]
async fn x11_clipboard_with_xvfb_and_xclip() {
    let xvfb = require("Xvfb");
    let dir = scratch("x11");
    let display = format!(":{}", 50 + std::process::id() % 400);
    let _x = Kill(
        Command::new(xvfb)
            .args([display.as_str(), "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{}", &display[1..]));
    wait_for(&socket);
    let _d = daemon(&dir);
    let mut c = host(&dir).await;
    c.subscribe(Some(&["CLIPBOARD_CHANGED"]), None)
        .await
        .unwrap();
    let _s = session_agent(&dir, "x11", Some(&display));
    // Host to guest: xclip pastes what the host set.
    until_registered(&mut c, async |c| host_set(c, "from the host ✓").await).await;
    let out = xclip(&display, &["-o", "-selection", "clipboard"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "from the host ✓");
    // Guest to host: xclip copies; the host hears of it and pastes.
    let _copy = copy_with_xclip(&display, "copied in the guest");
    let e = tokio::time::timeout(Duration::from_secs(10), c.next_event())
        .await
        .expect("CLIPBOARD_CHANGED")
        .unwrap();
    assert_eq!(e.name, "CLIPBOARD_CHANGED");
    assert_eq!(e.data["selection"], "clipboard");
    assert!(e.data["types"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "text/plain;charset=utf-8"));
    assert_eq!(host_get(&mut c, None).await.unwrap(), "copied in the guest");
    // Images: the host sets a PNG, xclip pastes it as image/png.
    let png: Vec<u8> = b"\x89PNG\r\n\x1a\n"
        .iter()
        .copied()
        .chain((0..=255u8).cycle().take(5000))
        .collect();
    c.call::<GuestlinkClipboardSet>(&ClipboardSetArgs {
        selection: None,
        mime_type: "image/png".into(),
        data: Base64Data(png.clone()),
    })
    .await
    .unwrap();
    let out = xclip(
        &display,
        &["-o", "-selection", "clipboard", "-t", "image/png"],
    )
    .output()
    .unwrap();
    assert_eq!(out.stdout, png);
    let out = xclip(
        &display,
        &["-o", "-selection", "clipboard", "-t", "TARGETS"],
    )
    .output()
    .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("image/png"));
    // A large copy goes through INCR.
    let big: String = (0..300_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let _copy2 = copy_with_xclip(&display, &big);
    let _ = tokio::time::timeout(Duration::from_secs(10), c.next_event()).await;
    assert_eq!(host_get(&mut c, None).await.unwrap(), big);
}

/// `guestlink-session run` for session test-1 with `backend` (auto when `None`), in
/// the environment `env` (a compositor's, a bus's).
fn session_in(dir: &Path, backend: Option<&str>, env: &[(String, String)]) -> Kill {
    let mut cmd = Command::new(SESSION);
    cmd.arg("--socket").arg(dir.join("agent.sock")).arg("run");
    if let Some(b) = backend {
        cmd.args(["--backend", b]);
    }
    cmd.args(["--session", "test-1"])
        .envs(env.iter().cloned())
        .stdin(Stdio::null());
    Kill(cmd.spawn().unwrap())
}

/// Checks that `e` asks the host for the clipboard in `mime`, and answers with `text`.
async fn answer_fetch(c: &mut Client, e: &guestlink_client::Event, mime: &str, text: &str) {
    assert_eq!(e.data["command"], "__org.guestlink_clipboard-fetch");
    assert_eq!(e.data["arguments"]["mime-type"], mime);
    let r = c
        .call_raw(&serde_json::json!({
            "execute": "__org.guestlink_guest-reply",
            "arguments": {"tag": e.data["tag"], "return": {
                "mime-type": mime,
                "data": Base64Data(text.as_bytes().to_vec()),
            }},
        }))
        .await
        .unwrap();
    assert_eq!(r, serde_json::json!({"return": {}}));
}

/// Sends the host's first layout, once the session agent has registered.
async fn first_layout(c: &mut Client, displays: &[(i64, i64, i64, i64)]) {
    let args = layout(displays);
    until_registered(c, async |c| {
        c.call::<GuestlinkDisplaySet>(&args)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
}

/// A layout of displays 0, 1, ... of (width, height, x, y).
fn layout(displays: &[(i64, i64, i64, i64)]) -> DisplaySetArgs {
    DisplaySetArgs {
        displays: displays
            .iter()
            .enumerate()
            .map(|(i, &(w, h, x, y))| Display {
                id: i as i64,
                width: w,
                height: h,
                x: Some(x),
                y: Some(y),
                output: None,
            })
            .collect(),
    }
}

/// A headless sway (a wlroots compositor with data-control), run as nobody because sway
/// refuses root; returns it and the environment its clients need.
fn sway(dir: &Path) -> (Kill, Vec<(String, String)>) {
    sway_with_outputs(dir, 1)
}

/// The same with `outputs` headless outputs.
fn sway_with_outputs(dir: &Path, outputs: u32) -> (Kill, Vec<(String, String)>) {
    let runtime = dir.join("xdg");
    std::fs::create_dir_all(&runtime).unwrap();
    let st = Command::new("chown")
        .arg("65534:65534")
        .arg(&runtime)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let child = Command::new(require("setpriv"))
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "env"])
        .arg(format!("XDG_RUNTIME_DIR={}", runtime.display()))
        .arg(format!("HOME={}", runtime.display()))
        .args([
            "WLR_BACKENDS=headless",
            "WLR_LIBINPUT_NO_DEVICES=1",
            "WLR_RENDERER=pixman",
        ])
        .arg(format!("WLR_HEADLESS_OUTPUTS={outputs}"))
        .arg(require("sway"))
        .args(["-c", "/dev/null"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let socket = runtime.join("wayland-1");
    wait_for(&socket);
    let env = vec![
        ("XDG_RUNTIME_DIR".to_string(), runtime.display().to_string()),
        ("WAYLAND_DISPLAY".to_string(), "wayland-1".to_string()),
    ];
    (Kill(child), env)
}

#[tokio::test]
async fn wayland_clipboard_with_sway_and_wl_clipboard() {
    let dir = scratch("wayland");
    let (_sway, env) = sway(&dir);
    wl_clipboard_both_ways(&dir, &env).await;
}

/// The host sets the clipboard and wl-paste pastes it; wl-copy copies and the host
/// hears of it and reads it: through the compositor's data-control, in `env`.
async fn wl_clipboard_both_ways(dir: &Path, env: &[(String, String)]) {
    let dir = dir.to_path_buf();
    let _d = daemon(&dir);
    let mut c = host(&dir).await;
    c.subscribe(Some(&["CLIPBOARD_CHANGED"]), None)
        .await
        .unwrap();
    let _s = session_in(&dir, Some("wayland"), env);
    // Host to guest: wl-paste pastes what the host set.
    until_registered(&mut c, async |c| {
        host_set(c, "from the host, on Wayland").await
    })
    .await;
    // The compositor may take a moment to make the new source the selection.
    let deadline = Instant::now() + Duration::from_secs(5);
    let out = loop {
        let out = Command::new(require("wl-paste"))
            .arg("--no-newline")
            .envs(env.iter().cloned())
            .output()
            .unwrap();
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "from the host, on Wayland"
    );
    // Our own source is not announced as a change (only the empty selections found at
    // start may be); wl-copy's is.
    while let Ok(e) = tokio::time::timeout(Duration::from_millis(700), c.next_event()).await {
        let e = e.unwrap();
        assert!(e.data["types"].as_array().unwrap().is_empty(), "{e:?}");
    }
    let st = Command::new(require("wl-copy"))
        .arg("copied with wl-copy")
        .envs(env.iter().cloned())
        .status()
        .unwrap();
    assert!(st.success());
    // The session agent also reports the state it found at start (an empty primary
    // selection): wait for the copy.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), c.next_event())
            .await
            .expect("CLIPBOARD_CHANGED")
            .unwrap();
        assert_eq!(e.name, "CLIPBOARD_CHANGED");
        let text = e.data["types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "text/plain;charset=utf-8");
        if e.data["selection"] == "clipboard" && text {
            break;
        }
        assert!(Instant::now() < deadline, "no change with text: {e:?}");
    }
    assert_eq!(host_get(&mut c, None).await.unwrap(), "copied with wl-copy");
    let _ = Command::new("pkill")
        .args(["-f", "wl-copy copied with wl-copy"])
        .status();
}

/// A wl-paste of the clipboard's text, run in the background.
fn wl_paste(env: &[(String, String)]) -> tokio::task::JoinHandle<std::process::Output> {
    let mut cmd = tokio::process::Command::new(require("wl-paste"));
    cmd.arg("--no-newline").envs(env.iter().cloned());
    tokio::spawn(async move { cmd.output().await.unwrap() })
}

#[tokio::test]
async fn wayland_host_offer_is_fetched_only_when_pasted() {
    let dir = scratch("wayland-lazy");
    let (_sway, env) = sway(&dir);
    let _d = daemon(&dir);
    let mut c = host(&dir).await;
    c.subscribe(Some(&["GUEST_REQUEST"]), None).await.unwrap();
    let _s = session_in(&dir, Some("wayland"), &env);
    // The host offers text without sending it: the session agent takes the selection
    // with a source of its own.
    until_registered(&mut c, async |c| {
        c.call::<GuestlinkClipboardOffer>(&ClipboardOfferArgs {
            selection: None,
            types: vec!["text/plain;charset=utf-8".into()],
        })
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    })
    .await;
    // Lazy: nothing is asked of the host until a program pastes.
    assert!(
        tokio::time::timeout(Duration::from_millis(700), c.next_event())
            .await
            .is_err(),
        "the host was asked before anything pasted"
    );
    let paste = wl_paste(&env);
    let e = tokio::time::timeout(Duration::from_secs(10), c.next_event())
        .await
        .expect("the paste asks the host")
        .unwrap();
    assert_eq!(e.name, "GUEST_REQUEST");
    let text = "fetched when pasted, on Wayland ✓";
    answer_fetch(&mut c, &e, "text/plain;charset=utf-8", text).await;
    let out = tokio::time::timeout(Duration::from_secs(10), paste)
        .await
        .expect("wl-paste finishes")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
    // A second paste is answered from what the host sent: it is not asked again.
    let again = tokio::time::timeout(Duration::from_secs(10), wl_paste(&env))
        .await
        .expect("the second wl-paste finishes")
        .unwrap();
    assert_eq!(String::from_utf8(again.stdout).unwrap(), text);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), c.next_event())
            .await
            .is_err(),
        "the host was asked twice"
    );
}

/// An Xorg server with the dummy video driver: unlike Xvfb it has RandR outputs whose
/// modes can be added and set, as a real driver's.
const DUMMY_CONF: &str = r#"
Section "Device"
    Identifier "dummy"
    Driver "dummy"
    VideoRam 65536
EndSection
Section "Monitor"
    Identifier "monitor"
    HorizSync 5.0-1000.0
    VertRefresh 5.0-200.0
EndSection
Section "Screen"
    Identifier "screen"
    Device "dummy"
    Monitor "monitor"
    DefaultDepth 24
    SubSection "Display"
        Depth 24
        Virtual 2560 1600
    EndSubSection
EndSection
"#;

#[tokio::test]
async fn x11_displays_follow_the_host_layout() {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::ConnectionExt as _;
    let xorg = require("Xorg");
    assert!(
        Path::new("/usr/lib/xorg/modules/drivers/dummy_drv.so").exists(),
        "Xorg's dummy driver is required: apt-get install xserver-xorg-core xserver-xorg-video-dummy (.ci/run does)"
    );
    let dir = scratch("xrandr");
    std::fs::write(dir.join("xorg.conf"), DUMMY_CONF).unwrap();
    std::fs::create_dir(dir.join("conf.d")).unwrap();
    let display = format!(":{}", 450 + std::process::id() % 400);
    let _x = Kill(
        Command::new(xorg)
            .args([display.as_str(), "-noreset", "-nolisten", "tcp", "-config"])
            .arg(dir.join("xorg.conf"))
            .arg("-configdir")
            .arg(dir.join("conf.d"))
            .arg("-logfile")
            .arg(dir.join("xorg.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(&PathBuf::from(format!("/tmp/.X11-unix/X{}", &display[1..])));
    let _d = daemon(&dir);
    let mut c = host(&dir).await;
    let _s = session_agent(&dir, "x11", Some(&display));
    let set = |w: i64, h: i64| DisplaySetArgs {
        displays: vec![Display {
            id: 0,
            width: w,
            height: h,
            x: None,
            y: None,
            output: None,
        }],
    };
    let size = || {
        let (conn, screen) = x11rb::connect(Some(&display)).unwrap();
        let root = conn.setup().roots[screen].root;
        let g = conn.get_geometry(root).unwrap().reply().unwrap();
        (g.width, g.height)
    };
    // A size the driver has a mode for.
    until_registered(&mut c, async |c| {
        c.call::<GuestlinkDisplaySet>(&set(800, 600))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(size(), (800, 600));
    // One it has not (a client window's odd size): the agent makes the mode.
    c.call::<GuestlinkDisplaySet>(&set(1234, 567))
        .await
        .unwrap();
    assert_eq!(size(), (1234, 567));
    // Larger than before: the screen grows first.
    c.call::<GuestlinkDisplaySet>(&set(1920, 1080))
        .await
        .unwrap();
    assert_eq!(size(), (1920, 1080));
    // Nothing switched on: refused, and the screen stays.
    let e = c.call::<GuestlinkDisplaySet>(&set(0, 0)).await.unwrap_err();
    assert!(e.to_string().contains("no display switched on"), "{e}");
    assert_eq!(size(), (1920, 1080));
}

/// A session bus and a runtime directory of their own, in `dir`: the bus and the
/// environment (`DBUS_SESSION_BUS_ADDRESS`, `XDG_RUNTIME_DIR`) of its clients.
fn session_bus(dir: &Path) -> (Kill, Vec<(String, String)>) {
    use std::io::BufRead as _;
    let mut bus = Command::new(require("dbus-daemon"))
        .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut address = String::new();
    std::io::BufReader::new(bus.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    let bus = Kill(bus);
    let runtime = dir.join("xdg");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let env = vec![
        (
            "DBUS_SESSION_BUS_ADDRESS".to_string(),
            address.trim().to_string(),
        ),
        ("XDG_RUNTIME_DIR".to_string(), runtime.display().to_string()),
    ];
    (bus, env)
}

/// A headless Mutter (GNOME's compositor) with a 1024x768 and an 800x600 virtual
/// monitor, on a session bus of its own, with Xwayland when `x11`; the bus, Mutter and
/// the environment its clients need.
fn mutter(dir: &Path, x11: bool) -> (Kill, Kill, Vec<(String, String)>) {
    let (bus, env) = session_bus(dir);
    let mutter = Kill(
        Command::new(require("mutter"))
            .args(["--headless", "--wayland"])
            .args((!x11).then_some("--no-x11"))
            .args([
                "--virtual-monitor",
                "1024x768",
                "--virtual-monitor",
                "800x600",
            ])
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("mutter.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    (bus, mutter, env)
}

/// A connection to the bus of [`mutter`], once Mutter's DisplayConfig answers on it.
async fn mutter_bus(dir: &Path, env: &[(String, String)]) -> zbus::Connection {
    let bus = zbus::connection::Builder::address(env[0].1.as_str())
        .build()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let up = bus
            .call_method(
                Some("org.gnome.Mutter.DisplayConfig"),
                "/org/gnome/Mutter/DisplayConfig",
                Some("org.gnome.Mutter.DisplayConfig"),
                "GetCurrentState",
                &(),
            )
            .await
            .is_ok();
        if up {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Mutter did not start: {}",
            std::fs::read_to_string(dir.join("mutter.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bus
}

/// The X server Mutter started (Xwayland): its `DISPLAY` and `XAUTHORITY`, from Mutter's
/// log and its runtime directory.
fn mutter_xwayland(dir: &Path, env: &[(String, String)]) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let display = loop {
        let log = std::fs::read_to_string(dir.join("mutter.log")).unwrap_or_default();
        let found = log
            .lines()
            .find_map(|l| l.split("Using public X11 display ").nth(1))
            .and_then(|d| d.split([',', ' ']).next())
            .map(str::to_string);
        if let Some(d) = found {
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "Mutter started no Xwayland: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let runtime = PathBuf::from(&env[1].1);
    let auth = std::fs::read_dir(&runtime)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".mutter-Xwaylandauth"))
        })
        .expect("Mutter's Xwayland authority file");
    vec![
        ("DISPLAY".to_string(), display),
        ("XAUTHORITY".to_string(), auth.display().to_string()),
    ]
}

/// Mutter's logical monitors: (x, y, primary, connector), by connector.
async fn logical_monitors(bus: &zbus::Connection) -> Vec<(i32, i32, bool, String)> {
    type Spec = (String, String, String, String);
    type Props = std::collections::HashMap<String, zbus::OwnedVariant>;
    type Mode = (String, i32, i32, f64, f64, Vec<f64>, Props);
    let reply = bus
        .call_method(
            Some("org.gnome.Mutter.DisplayConfig"),
            "/org/gnome/Mutter/DisplayConfig",
            Some("org.gnome.Mutter.DisplayConfig"),
            "GetCurrentState",
            &(),
        )
        .await
        .unwrap();
    type Logical = (i32, i32, f64, u32, bool, Vec<Spec>, Props);
    type State = (u32, Vec<(Spec, Vec<Mode>, Props)>, Vec<Logical>, Props);
    let (_, _, logical, _): State = reply.body().deserialize().unwrap();
    let mut out: Vec<_> = logical
        .into_iter()
        .map(|l| (l.0, l.1, l.4, l.5[0].0.clone()))
        .collect();
    out.sort_by(|a, b| a.3.cmp(&b.3));
    out
}

#[tokio::test]
async fn mutter_displays_follow_the_host_layout() {
    let dir = scratch("mutter");
    let (_bus, _mutter, env) = mutter(&dir, false);
    let bus = mutter_bus(&dir, &env).await;
    assert_eq!(
        logical_monitors(&bus).await,
        [
            (0, 0, true, "Meta-0".to_string()),
            (1024, 0, false, "Meta-1".to_string())
        ]
    );
    let _d = daemon(&dir);
    let mut c = host(&dir).await;
    // No clipboard back end on Mutter (it has no data-control) but the layout is taken.
    let _s = session_in(&dir, None, &env);
    // Two monitors, the second to the left of the first and lower.
    first_layout(&mut c, &[(1024, 768, 800, 0), (800, 600, 0, 168)]).await;
    assert_eq!(
        logical_monitors(&bus).await,
        [
            (800, 0, true, "Meta-0".to_string()),
            (0, 168, false, "Meta-1".to_string())
        ]
    );
    // One display: the second monitor goes off.
    c.call::<GuestlinkDisplaySet>(&layout(&[(1024, 768, 0, 0)]))
        .await
        .unwrap();
    assert_eq!(
        logical_monitors(&bus).await,
        [(0, 0, true, "Meta-0".to_string())]
    );
    // Nothing switched on: refused, and the layout stays.
    let e = c
        .call::<GuestlinkDisplaySet>(&layout(&[(0, 0, 0, 0)]))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no display switched on"), "{e}");
    assert_eq!(logical_monitors(&bus).await.len(), 1);
}

/// GNOME on Wayland: Mutter has no data-control, so the session agent takes the
/// clipboard through Mutter's remote desktop API; xclip on Mutter's own Xwayland is the
/// other program (an X client's selection is bridged by Mutter like a Wayland client's).
#[tokio::test]
async fn mutter_clipboard_with_xwayland_and_xclip() {
    let dir = scratch("mutter-clipboard");
    let (_bus, _mutter, mut env) = mutter(&dir, true);
    let _ = mutter_bus(&dir, &env).await;
    let x = mutter_xwayland(&dir, &env);
    let _d = daemon(&dir);
    let mut c = host(&dir).await;
    c.subscribe(Some(&["CLIPBOARD_CHANGED", "GUEST_REQUEST"]), None)
        .await
        .unwrap();
    // Chosen by itself: a Wayland session without data-control.
    env.push(("WAYLAND_DISPLAY".to_string(), "wayland-0".to_string()));
    let _s = session_in(&dir, None, &env);
    // Host to guest: an X program pastes what the host set.
    until_registered(&mut c, async |c| {
        host_set(c, "from the host, on GNOME").await
    })
    .await;
    let paste = |x: &[(String, String)]| {
        xclip_in(x, &["-o", "-selection", "clipboard"])
            .output()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let out = loop {
        let out = paste(&x);
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "from the host, on GNOME"
    );
    // Guest to host: xclip copies, the host hears of it and reads it.
    let _copy = copy_with_xclip_in(&x, "copied in an X program on GNOME ✓");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), c.next_event())
            .await
            .expect("CLIPBOARD_CHANGED")
            .unwrap();
        let text = e.data["types"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "text/plain;charset=utf-8"));
        if e.name == "CLIPBOARD_CHANGED" && text {
            assert_eq!(e.data["selection"], "clipboard");
            break;
        }
        assert!(Instant::now() < deadline, "no change with text: {e:?}");
    }
    assert_eq!(
        host_get(&mut c, None).await.unwrap(),
        "copied in an X program on GNOME ✓"
    );
    // Mutter's API has no primary selection: said so, not faked.
    let e = host_get(&mut c, Some(ClipboardSelection::Primary))
        .await
        .unwrap_err();
    assert!(e.contains("no primary selection"), "{e}");
    // A host offer: nothing is asked of the host until xclip pastes. HTML, because
    // Mutter itself reads a new clipboard's text and images at once, to keep a copy
    // for when the owner leaves.
    c.call::<GuestlinkClipboardOffer>(&ClipboardOfferArgs {
        selection: None,
        types: vec!["text/html".into()],
    })
    .await
    .unwrap();
    while let Ok(e) = tokio::time::timeout(Duration::from_millis(700), c.next_event()).await {
        let e = e.unwrap();
        assert_ne!(e.name, "GUEST_REQUEST", "the host was asked before a paste");
    }
    let x2 = x.clone();
    let paste_later = tokio::task::spawn_blocking(move || {
        xclip_in(&x2, &["-o", "-selection", "clipboard", "-t", "text/html"])
            .output()
            .unwrap()
    });
    let e = loop {
        let e = tokio::time::timeout(Duration::from_secs(10), c.next_event())
            .await
            .expect("the paste asks the host")
            .unwrap();
        if e.name == "GUEST_REQUEST" {
            break e;
        }
    };
    let html = "<b>fetched when pasted, on GNOME</b>";
    answer_fetch(&mut c, &e, "text/html", html).await;
    let out = tokio::time::timeout(Duration::from_secs(10), paste_later)
        .await
        .expect("xclip finishes")
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), html);
}

/// A headless KWin (KDE Plasma's compositor) with `outputs` virtual outputs of 1024x768,
/// on a session bus of its own; the bus, KWin and the environment its clients need.
/// Debian's kwin_wayland carries a file capability (CAP_SYS_RESOURCE) that a container
/// may not grant, so a copy without it is run.
fn kwin(dir: &Path, outputs: u32) -> (Kill, Kill, Vec<(String, String)>) {
    let (bus, mut env) = session_bus(dir);
    let copy = dir.join("kwin_wayland");
    std::fs::copy(require("kwin_wayland"), &copy).unwrap();
    let kwin = Kill(
        guestlink_testkit::spawn_retrying(
            Command::new(&copy)
                .args(["--virtual", "--width", "1024", "--height", "768"])
                .args(["--output-count", &outputs.to_string()])
                .args(["--socket", "wayland-kde", "--no-lockscreen"])
                .args(["--no-global-shortcuts", "--no-kactivities"])
                .envs(env.iter().cloned())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("kwin.log")).unwrap()),
        )
        .unwrap(),
    );
    wait_for(&PathBuf::from(&env[1].1).join("wayland-kde"));
    env.push(("WAYLAND_DISPLAY".to_string(), "wayland-kde".to_string()));
    (bus, kwin, env)
}

/// KWin's outputs as KDE's own kscreen-doctor reads them (through KWin's output
/// device protocol): (name, enabled, x, y, width, height), by name.
fn kscreen_outputs(env: &[(String, String)]) -> Vec<(String, bool, i64, i64, i64, i64)> {
    let out = Command::new(require("kscreen-doctor"))
        .arg("-j")
        .envs(env.iter().cloned())
        .env("QT_QPA_PLATFORM", "wayland")
        .env("KSCREEN_BACKEND", "KWayland")
        .env("KSCREEN_BACKEND_INPROCESS", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut outputs: Vec<_> = v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let size = o["modes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["id"] == o["currentModeId"])
                .map(|m| {
                    (
                        m["size"]["width"].as_i64().unwrap(),
                        m["size"]["height"].as_i64().unwrap(),
                    )
                })
                .unwrap_or_default();
            (
                o["name"].as_str().unwrap().to_string(),
                o["enabled"].as_bool().unwrap(),
                o["pos"]["x"].as_i64().unwrap(),
                o["pos"]["y"].as_i64().unwrap(),
                size.0,
                size.1,
            )
        })
        .collect();
    outputs.sort();
    outputs
}

#[tokio::test]
async fn kde_clipboard_with_kwin_and_wl_clipboard() {
    let dir = scratch("kwin-clipboard");
    let (_bus, _kwin, env) = kwin(&dir, 1);
    wl_clipboard_both_ways(&dir, &env).await;
}

#[tokio::test]
async fn kde_displays_follow_the_host_layout() {
    let dir = scratch("kwin-outputs");
    let (_bus, _kwin, env) = kwin(&dir, 2);
    assert_eq!(
        kscreen_outputs(&env),
        [
            ("Virtual-0".to_string(), true, 0, 0, 1024, 768),
            ("Virtual-1".to_string(), true, 1024, 0, 1024, 768)
        ]
    );
    let _d = daemon(&dir);
    let mut c = host(&dir).await;
    let _s = session_in(&dir, None, &env);
    // Two monitors, the first on the right of the second and higher.
    first_layout(&mut c, &[(1024, 768, 1024, 0), (1024, 768, 0, 200)]).await;
    assert_eq!(
        kscreen_outputs(&env),
        [
            ("Virtual-0".to_string(), true, 1024, 0, 1024, 768),
            ("Virtual-1".to_string(), true, 0, 200, 1024, 768)
        ]
    );
    // A size the outputs have no mode for (virtual outputs have one, and KDE's
    // protocol no custom modes): their preferred mode, at the host's positions.
    c.call::<GuestlinkDisplaySet>(&layout(&[(800, 600, 0, 0), (1280, 720, 1024, 0)]))
        .await
        .unwrap();
    assert_eq!(
        kscreen_outputs(&env),
        [
            ("Virtual-0".to_string(), true, 0, 0, 1024, 768),
            ("Virtual-1".to_string(), true, 1024, 0, 1024, 768)
        ]
    );
    // One display: the configuration disables the second output, which KWin's virtual
    // back end accepts and ignores (`kscreen-doctor output.Virtual-1.disable` too): the
    // first output's part is applied.
    c.call::<GuestlinkDisplaySet>(&layout(&[(1024, 768, 300, 0)]))
        .await
        .unwrap();
    let outputs = kscreen_outputs(&env);
    assert_eq!(
        outputs[0],
        ("Virtual-0".to_string(), true, 300, 0, 1024, 768)
    );
    // Nothing switched on: refused.
    let e = c
        .call::<GuestlinkDisplaySet>(&layout(&[(0, 0, 0, 0)]))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no display switched on"), "{e}");
}

/// A sysfs with one graphics card at PCI 00:02.0 whose outputs are named `connectors`
/// (as the compositor under test names them), for guestlinkd's `GUESTLINK_SYSFS`.
fn sysfs_with_card(dir: &Path, connectors: &[&str]) -> PathBuf {
    let sys = dir.join("sys");
    let card = sys.join("devices/pci0000:00/0000:00:02.0/drm/card0");
    std::fs::create_dir_all(sys.join("class/drm")).unwrap();
    std::fs::create_dir_all(&card).unwrap();
    std::os::unix::fs::symlink(&card, sys.join("class/drm/card0")).unwrap();
    for connector in connectors {
        let name = format!("card0-{connector}");
        std::fs::create_dir_all(card.join(&name)).unwrap();
        std::os::unix::fs::symlink(card.join(&name), sys.join("class/drm").join(&name)).unwrap();
    }
    sys
}

/// A SPICE host, on a pty, of a guestlinkd whose card has the outputs `connectors`,
/// with a session agent (`backend`) in the desktop of `env`. The host says display 0
/// is on the card's second output and display 1 on its first (GRAPHICS_DEVICE_INFO, as
/// spice-server sends it for a two-head card), then sends `monitors` (width, height,
/// x, y) until `shown` reads `want` back from the compositor: each monitor lands on the
/// output the host named, not on the outputs in order.
async fn spice_layout_lands<T: PartialEq + std::fmt::Debug>(
    dir: &Path,
    env: &[(String, String)],
    backend: Option<&str>,
    connectors: &[&str],
    monitors: [(u32, u32, i32, i32); 2],
    want: T,
    mut shown: impl AsyncFnMut() -> T,
) {
    use guestlink_client::vdagent::{spice_gtk_caps, Host};
    use guestlink_proto_vdagent::messages::{DeviceDisplay, Monitor, MonitorsConfig, USE_POS};
    use guestlink_proto_vdagent::AgentMessage;
    let sys = sysfs_with_card(dir, connectors);
    let (stream, _slave, port) = guestlink_testkit::host_pty();
    let _d = Kill(
        Command::new(guestlinkd())
            .arg("--channel")
            .arg(format!("vdagent=virtio-serial:{}", port.display()))
            .arg("--guest-socket")
            .arg(dir.join("agent.sock"))
            .args(["--sessions", "none", "--pointer", "none", "-t"])
            .arg(dir)
            .env("GUESTLINK_SYSFS", &sys)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut spice = Host::new(stream, spice_gtk_caps());
    spice
        .answer_greeting(Duration::from_secs(10))
        .await
        .expect("the agent greets the host");
    wait_for(&dir.join("agent.sock"));
    let _s = session_in(dir, backend, env);
    let record = |monitor_id, device_display_id| DeviceDisplay {
        channel_id: 0,
        monitor_id,
        device_display_id,
        address: "pci/0000/02.0".to_string(),
    };
    spice
        .send(&AgentMessage::GraphicsDeviceInfo(vec![
            record(0, 1),
            record(1, 0),
        ]))
        .await
        .unwrap();
    let config = AgentMessage::MonitorsConfig(MonitorsConfig {
        flags: USE_POS,
        monitors: monitors
            .iter()
            .map(|&(width, height, x, y)| Monitor {
                height,
                width,
                depth: 32,
                x,
                y,
            })
            .collect(),
        physical: None,
    });
    // The session agent may register after the layout came: it is given the last one
    // when it does; resent until the compositor shows it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        spice.send(&config).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got = shown().await;
        if got == want {
            break;
        }
        assert!(Instant::now() < deadline, "the compositor shows {got:?}");
    }
}

#[tokio::test]
async fn spice_displays_land_on_the_outputs_the_host_names() {
    let dir = scratch("spice-outputs");
    let (_sway, env) = sway_with_outputs(&dir, 2);
    spice_layout_lands(
        &dir,
        &env,
        Some("wayland"),
        &["HEADLESS-1", "HEADLESS-2"],
        [(1280, 720, 0, 0), (800, 600, 1280, 0)],
        vec![
            ("HEADLESS-1".to_string(), true, 1280, 0, 800, 600),
            ("HEADLESS-2".to_string(), true, 0, 0, 1280, 720),
        ],
        async || sway_outputs(&env),
    )
    .await;
}

/// GNOME: Mutter's 1024x768 Meta-0 and 800x600 Meta-1, read back through its
/// DisplayConfig. Display 0 (the primary) is the 800x600 one on the left.
#[tokio::test]
async fn spice_displays_land_on_mutters_outputs() {
    let dir = scratch("spice-mutter");
    let (_bus, _mutter, env) = mutter(&dir, false);
    let bus = mutter_bus(&dir, &env).await;
    spice_layout_lands(
        &dir,
        &env,
        None,
        &["Meta-0", "Meta-1"],
        [(800, 600, 0, 0), (1024, 768, 800, 0)],
        vec![
            (800, 0, false, "Meta-0".to_string()),
            (0, 0, true, "Meta-1".to_string()),
        ],
        async || logical_monitors(&bus).await,
    )
    .await;
}

/// KDE: KWin's two 1024x768 virtual outputs, read back with kscreen-doctor.
#[tokio::test]
async fn spice_displays_land_on_kwins_outputs() {
    let dir = scratch("spice-kwin");
    let (_bus, _kwin, env) = kwin(&dir, 2);
    spice_layout_lands(
        &dir,
        &env,
        None,
        &["Virtual-0", "Virtual-1"],
        [(1024, 768, 0, 0), (1024, 768, 1024, 0)],
        vec![
            ("Virtual-0".to_string(), true, 1024, 0, 1024, 768),
            ("Virtual-1".to_string(), true, 0, 0, 1024, 768),
        ],
        async || kscreen_outputs(&env),
    )
    .await;
}

/// sway's outputs through its own IPC (`swaymsg -t get_outputs`): (name, active, x, y,
/// width, height), by name.
fn sway_outputs(env: &[(String, String)]) -> Vec<(String, bool, i64, i64, i64, i64)> {
    let runtime = PathBuf::from(&env[0].1);
    let sock = std::fs::read_dir(&runtime)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("sway-ipc."))
        })
        .expect("sway's IPC socket");
    let out = Command::new(require("swaymsg"))
        .args(["-t", "get_outputs", "-r"])
        .env("SWAYSOCK", &sock)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut v: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let r = &o["rect"];
            (
                o["name"].as_str().unwrap().to_string(),
                o["active"].as_bool().unwrap(),
                r["x"].as_i64().unwrap(),
                r["y"].as_i64().unwrap(),
                r["width"].as_i64().unwrap(),
                r["height"].as_i64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn wlroots_displays_follow_the_host_layout() {
    let dir = scratch("wlr-outputs");
    let (_sway, env) = sway_with_outputs(&dir, 2);
    let _d = daemon(&dir);
    let mut c = host(&dir).await;
    let _s = session_in(&dir, Some("wayland"), &env);
    // Two monitors of sizes the outputs have no mode for, the second on the left.
    first_layout(&mut c, &[(1280, 720, 1024, 0), (1024, 768, 0, 0)]).await;
    assert_eq!(
        sway_outputs(&env),
        [
            ("HEADLESS-1".to_string(), true, 1024, 0, 1280, 720),
            ("HEADLESS-2".to_string(), true, 0, 0, 1024, 768)
        ]
    );
    // Another size for both.
    c.call::<GuestlinkDisplaySet>(&layout(&[(800, 600, 0, 0), (640, 480, 800, 0)]))
        .await
        .unwrap();
    assert_eq!(
        sway_outputs(&env),
        [
            ("HEADLESS-1".to_string(), true, 0, 0, 800, 600),
            ("HEADLESS-2".to_string(), true, 800, 0, 640, 480)
        ]
    );
    // One display: the configuration disables the second output, which wlroots'
    // headless back end cannot do (`swaymsg output HEADLESS-2 disable` fails the same
    // way): the refusal comes back as an error (sway 1.7 has applied the first output's
    // part meanwhile; it does not apply configurations atomically).
    let e = c
        .call::<GuestlinkDisplaySet>(&layout(&[(1024, 768, 0, 0)]))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("the compositor refused it"), "{e}");
    assert!(sway_outputs(&env)[1].1, "HEADLESS-2 went off after all");
}
