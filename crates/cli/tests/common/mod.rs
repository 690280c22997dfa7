//! What the CLI's tests share: the binaries under test and Debian's qemu-ga.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const GUESTLINK: &str = env!("CARGO_BIN_EXE_guestlink");
pub const QEMU_GA: &str = "/usr/sbin/qemu-ga";

/// A binary of another package of the workspace (the package has its name). `cargo test
/// --workspace` has built it already; a test run of this package alone builds it (a
/// nested `cargo build -p` resolves features differently and recompiles dependencies,
/// so it is the fallback only).
pub fn built(name: &'static str) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_build_at_a_time = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = Path::new(GUESTLINK).with_file_name(name);
    if !path.exists() {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", name])
            .status()
            .unwrap();
        assert!(st.success(), "cannot build {name}");
    }
    path
}

pub fn guestlinkd() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| built("guestlinkd")).clone()
}

/// Whether Debian's qemu-ga is here; in CI it must be (`.ci/run` installs it), so a
/// test never passes there without its peer.
pub fn have_qemu_ga() -> bool {
    if Path::new(QEMU_GA).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "qemu-ga is required in CI"
    );
    eprintln!("SKIPPED: {QEMU_GA} is not installed");
    false
}

/// An agent serving a private unix socket (`<dir>/sock`), killed when dropped.
pub struct Agent {
    pub child: Child,
    pub dir: PathBuf,
}

impl Agent {
    pub fn start(bin: &Path, tag: &str, extra: &[&str]) -> Agent {
        let dir = std::env::temp_dir().join(format!("gl-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(bin)
            .args(["-m", "unix-listen", "-p"])
            .arg(dir.join("sock"))
            .arg("-t")
            .arg(&dir)
            .args(extra)
            .env("GUESTLINK_GUEST_SOCKET", dir.join("guest.sock"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dir.join("sock").exists() {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(20));
        }
        Agent { child, dir }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, b"")
    }

    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = Command::new(GUESTLINK)
            .arg("--socket")
            .arg(self.dir.join("sock"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Agent {
    /// `guestlink --socket <its socket>`, to add arguments to.
    pub fn cli(&self) -> Command {
        let mut c = Command::new(GUESTLINK);
        c.arg("--socket").arg(self.dir.join("sock"));
        c
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
