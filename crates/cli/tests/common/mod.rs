//! What the CLI's tests share: the binaries under test and Debian's qemu-ga.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

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
