//! Socket activation: systemd's `systemd-socket-activate` makes the guest socket
//! (named `guest`, as `guestlinkd.socket` names it) and a host channel socket, and
//! starts guestlinkd on the first connection. Both sockets must be served, the guest
//! socket must stay in place when the agent exits (systemd owns it), and programs the
//! agent runs must not inherit the `LISTEN_*` variables.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{peer_available, scratch, Conn, Kill, GUESTLINKD};

const ACTIVATE: &str = "/usr/bin/systemd-socket-activate";

#[test]
fn guest_socket_and_channel_from_systemd() {
    if !peer_available(ACTIVATE) {
        return;
    }
    let dir = scratch("activation");
    let guest = dir.join("guest.sock");
    let qga = dir.join("qga.sock");
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut child = Kill(
        Command::new(ACTIVATE)
            .arg("-l")
            .arg(&guest)
            .arg("-l")
            .arg(&qga)
            .arg("--fdname=guest:qga")
            .arg(GUESTLINKD)
            .arg("-t")
            .arg(&state)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(guest.exists() && qga.exists()) {
        assert!(
            Instant::now() < deadline,
            "systemd-socket-activate made no sockets"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The first connection starts the agent, which takes both sockets.
    let mut g = Conn::connect_to(&guest);
    let v = g.json(b"{\"execute\":\"guest-ping\"}\n");
    assert_eq!(v["return"], serde_json::json!({}), "{v}");
    let mut h = Conn::connect_to(&qga);
    let v = h.json(b"{\"execute\":\"guest-info\"}\n");
    assert!(v["return"]["version"].is_string(), "{v}");

    // A program the agent runs sees no LISTEN_* variables.
    let script = "env | grep -q ^PATH= || exit 4; env | grep -q ^LISTEN_ && exit 3; exit 0";
    let req = serde_json::json!({"execute": "guest-exec", "arguments": {
        "path": "/bin/sh", "arg": ["-c", script]}});
    let v = h.json(format!("{req}\n").as_bytes());
    let pid = v["return"]["pid"].as_i64().unwrap_or_else(|| panic!("{v}"));
    let code = loop {
        let req =
            format!("{{\"execute\":\"guest-exec-status\",\"arguments\":{{\"pid\":{pid}}}}}\n");
        let v = h.json(req.as_bytes());
        if v["return"]["exited"] == true {
            break v["return"]["exitcode"].clone();
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(10),
            "the program never ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        code, 0,
        "LISTEN_* reached a program the agent ran (3), or no PATH (4)"
    );

    // The agent stops; the guest socket is systemd's and stays.
    let _ = Command::new("pkill")
        .args(["-TERM", "-P", &child.0.id().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(500));
    assert!(guest.exists(), "the activated guest socket was removed");
    let _ = child.0.kill();
}
