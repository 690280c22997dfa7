//! Child processes of tests: killed when the test ends, workspace binaries found (or
//! built), and what a process costs in memory.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Mutex;

/// A child process killed and reaped when dropped.
#[derive(Debug)]
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The workspace binary `bin` of package `package`, beside the running test's own
/// binaries (`target/<profile>/`). `cargo test --workspace` has built it; a test run of
/// one package builds it here (a nested `cargo build -p` resolves features differently
/// and recompiles dependencies, so it is the fallback only).
pub fn sibling(package: &str, bin: &str) -> PathBuf {
    built(package, bin, &["--bin", bin])
}

/// The shared library `file` (`libNAME.so`) of package `package`, beside the running
/// test's binaries. A workspace test run builds libraries as rlibs only, so the cdylib
/// is built here when missing, with the profile the test was built with.
pub fn sibling_lib(package: &str, file: &str) -> PathBuf {
    built(package, file, &["--lib"])
}

fn built(package: &str, file: &str, what: &[&str]) -> PathBuf {
    static ONE_BUILD_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _guard = ONE_BUILD_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/<file>
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a test binary under target/<profile>/deps");
    let path = dir.join(file);
    if !path.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-q", "-p", package]).args(what);
        if dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let st = build.status().expect("cargo");
        assert!(st.success(), "cannot build {file}");
    }
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Peak and current resident set of process `pid`, in KiB.
pub fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("no status for process {pid}: {e}"));
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} for process {pid}"))
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_gone_once_its_guard_is() {
        let child = Command::new("sleep").arg("60").spawn().unwrap();
        let pid = child.id() as i32;
        drop(Kill(child));
        // Reaped as well as killed: no such process any more.
        // SAFETY: signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "process {pid} is still there");
    }

    #[test]
    fn memory_reads_this_process() {
        let (peak, now) = memory(std::process::id());
        assert!(peak >= now && now > 0, "{peak} {now}");
    }
}
