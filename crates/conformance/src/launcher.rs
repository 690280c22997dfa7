//! Starting agent instances the way QEMU's harness does: `unix-listen` on
//! `<dir>/sock`, state in `<dir>`, working directory `<dir>`, SIGTERM to stop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::conn::Conn;
use crate::Failure;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// How to start an agent binary.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The agent program.
    pub program: PathBuf,
}

/// A running agent.
#[derive(Debug)]
pub struct Instance {
    child: Option<Child>,
    /// Its state and working directory.
    pub dir: PathBuf,
    /// Its socket.
    pub socket: PathBuf,
}

fn scratch() -> Result<PathBuf, Failure> {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("qgatest.{}.{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| Failure(format!("cannot create {dir:?}: {e}")))?;
    Ok(dir)
}

impl Launcher {
    /// A launcher for `program`.
    pub fn new(program: impl Into<PathBuf>) -> Launcher {
        // The agent runs in its own scratch directory: a relative path must not move.
        let program = program.into();
        Launcher {
            program: std::fs::canonicalize(&program).unwrap_or(program),
        }
    }

    /// Starts an instance with extra arguments; `env` replaces the environment when
    /// given.
    pub fn start(&self, extra: &[&str], env: Option<&[(&str, &str)]>) -> Result<Instance, Failure> {
        let dir = scratch()?;
        let socket = dir.join("sock");
        let mut cmd = Command::new(&self.program);
        cmd.args(["-m", "unix-listen", "-t"])
            .arg(&dir)
            .arg("-p")
            .arg(&socket)
            .args(extra)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(env) = env {
            cmd.env_clear().envs(env.iter().copied());
        }
        // guestlinkd's guest-side socket goes with the instance, not the system's.
        cmd.env("GUESTLINK_GUEST_SOCKET", dir.join("guest.sock"));
        let child = cmd
            .spawn()
            .map_err(|e| Failure(format!("cannot start {}: {e}", self.program.display())))?;
        let mut instance = Instance {
            child: Some(child),
            dir,
            socket,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !instance.socket.exists() {
            if let Some(child) = instance.child.as_mut() {
                if let Ok(Some(st)) = child.try_wait() {
                    return Err(Failure(format!("the agent exited at start ({st})")));
                }
            }
            if Instant::now() > deadline {
                return Err(Failure("the agent did not create its socket".into()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(instance)
    }

    /// Runs the agent to completion with these arguments and environment.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Result<Output, Failure> {
        Command::new(&self.program)
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .current_dir(cwd)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Failure(format!("cannot run {}: {e}", self.program.display())))
    }
}

impl Instance {
    /// Connects to it.
    pub fn connect(&self) -> Result<Conn, Failure> {
        Conn::connect(&self.socket, Duration::from_secs(10))
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> Result<ExitStatus, Failure> {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().map_err(|e| Failure(e.to_string()))? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(Failure("the agent ignored SIGTERM".into()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
