//! What the CLI's tests share: the binaries under test and Debian's qemu-ga.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const GUESTLINK: &str = env!("CARGO_BIN_EXE_guestlink");
pub const QEMU_GA: &str = "/usr/sbin/qemu-ga";

#[allow(unused_imports)]
pub use guestlink_testkit::{peer_available, Kill, Scratch};

/// A binary of another package of the workspace (the package has its name).
pub fn built(name: &'static str) -> PathBuf {
    guestlink_testkit::sibling(name, name)
}

pub fn guestlinkd() -> PathBuf {
    built("guestlinkd")
}

/// Whether Debian's qemu-ga is here; in CI it must be (`.ci/run` installs it), so a
/// test never passes there without its peer.
pub fn have_qemu_ga() -> bool {
    peer_available(QEMU_GA)
}

/// An agent serving a private unix socket (`<dir>/sock`), killed when dropped, with
/// the CLI to drive it.
pub struct Agent(pub guestlink_testkit::Agent);

impl std::ops::Deref for Agent {
    type Target = guestlink_testkit::Agent;

    fn deref(&self) -> &guestlink_testkit::Agent {
        &self.0
    }
}

impl Agent {
    pub fn start(bin: &Path, tag: &str, extra: &[&str]) -> Agent {
        Agent(
            guestlink_testkit::Launch::new(bin)
                .tag(&format!("cli-{tag}"))
                .spawn(extra, |_| {})
                .unwrap_or_else(|e| panic!("{e}")),
        )
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
