//! Starting agent instances the way QEMU's harness does: `unix-listen` on
//! `<dir>/sock`, state in `<dir>`, working directory `<dir>`, SIGTERM to stop.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use guestlink_testkit::Launch;

use crate::conn::Conn;
use crate::Failure;

/// How to start an agent binary.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The agent program.
    pub program: PathBuf,
    launch: Launch,
}

/// A running agent, stopped and its directory removed when dropped.
#[derive(Debug)]
pub struct Instance {
    agent: guestlink_testkit::Agent,
    /// Its state and working directory.
    pub dir: PathBuf,
    /// Its socket.
    pub socket: PathBuf,
}

impl Launcher {
    /// A launcher for `program`.
    pub fn new(program: impl Into<PathBuf>) -> Launcher {
        // The agent runs in its own scratch directory: a relative path must not move.
        let launch = Launch::new(program).tag("qgatest");
        Launcher {
            program: launch.program.clone(),
            launch,
        }
    }

    /// Starts an instance with extra arguments; `env` replaces the environment when
    /// given.
    pub fn start(&self, extra: &[&str], env: Option<&[(&str, &str)]>) -> Result<Instance, Failure> {
        let agent = self
            .launch
            .spawn(extra, |cmd| {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
                if let Some(env) = env {
                    cmd.env_clear().envs(env.iter().copied());
                }
            })
            .map_err(Failure)?;
        Ok(Instance {
            dir: agent.dir.to_path_buf(),
            socket: agent.sock.clone(),
            agent,
        })
    }

    /// Starts an instance as one that an earlier instance left frozen: the marker
    /// `qga.state.isfrozen` is in its state directory before it starts.
    pub fn start_frozen(&self) -> Result<Instance, Failure> {
        let agent = self
            .launch
            .spawn(&[], |cmd| {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
                if let Some(dir) = cmd.get_current_dir() {
                    let _ = std::fs::write(dir.join("qga.state.isfrozen"), "");
                }
            })
            .map_err(Failure)?;
        Ok(Instance {
            dir: agent.dir.to_path_buf(),
            socket: agent.sock.clone(),
            agent,
        })
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
    pub fn terminate(self) -> Result<ExitStatus, Failure> {
        self.agent.stop(Duration::from_secs(10)).map_err(Failure)
    }
}
