//! guestlinkd ready for a single sign-on hand-off, for the tests of the greeter side
//! (`pam_guestlink.so` under pamtester, LightDM with `guestlink-session greeter`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{sibling, Kill};

/// guestlinkd with a QGA socket for the host, handing credentials off on a socket of
/// the test's and announcing their token on the test's bus; killed when dropped.
#[derive(Debug)]
pub struct SsoAgent {
    /// The host's QGA socket (`DIR/qga.sock`).
    pub qga: PathBuf,
    /// The credentials socket (`DIR/sso/credentials.sock`), there during a hand-off.
    pub socket: PathBuf,
    /// guestlinkd's log (`DIR/guestlinkd.log`).
    pub log: PathBuf,
    _child: Kill,
}

impl SsoAgent {
    /// Starts guestlinkd in `dir`, announcing on the D-Bus at `bus` (an address), and
    /// waits until the host can connect.
    pub fn start(dir: &Path, bus: &str) -> SsoAgent {
        let qga = dir.join("qga.sock");
        let socket = dir.join("sso").join("credentials.sock");
        let log = dir.join("guestlinkd.log");
        let child = Command::new(sibling("guestlinkd", "guestlinkd"))
            .arg("--channel")
            .arg(format!("qga=unix-listen:{}", qga.display()))
            .args(["--sessions", "none", "-t"])
            .arg(dir)
            .env("GUESTLINK_SYSTEM_BUS", bus)
            .env("GUESTLINK_CREDENTIALS_SOCKET", &socket)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("guestlinkd's log"))
            .spawn()
            .expect("guestlinkd");
        let agent = SsoAgent {
            qga,
            socket,
            log,
            _child: Kill(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&agent.qga).is_err() {
            assert!(
                Instant::now() < deadline,
                "guestlinkd never listened: {}",
                std::fs::read_to_string(&agent.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }
}
