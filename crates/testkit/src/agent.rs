//! An agent (guestlinkd, or qemu-ga for the differential tests) serving a unix socket
//! in a scratch directory, the way every test starts one: its state directory is the
//! scratch directory, guestlinkd's guest socket lives there too (never the system's),
//! and the socket exists before the test goes on.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::dir::Scratch;

/// How long an agent has to create its socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start an agent: `PROGRAM -m unix-listen -p DIR/sock -t DIR EXTRA…`.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The agent program (made absolute: the agent runs in its scratch directory).
    pub program: PathBuf,
    /// A tag for the scratch directory's name.
    pub tag: String,
}

impl Launch {
    /// An agent program to start.
    pub fn new(program: impl Into<PathBuf>) -> Launch {
        let program = program.into();
        Launch {
            program: std::fs::canonicalize(&program).unwrap_or(program),
            tag: "agent".into(),
        }
    }

    /// Names its scratch directories after `tag`.
    pub fn tag(mut self, tag: &str) -> Launch {
        tag.clone_into(&mut self.tag);
        self
    }

    /// The command that starts it in `dir` with `extra` arguments (standard input
    /// closed), for a caller to adjust before [`Launch::spawn`].
    pub fn command(&self, dir: &Path, extra: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(["-m", "unix-listen", "-p"])
            .arg(dir.join("sock"))
            .arg("-t")
            .arg(dir)
            .args(extra)
            .current_dir(dir)
            .stdin(Stdio::null());
        guest_socket_in(&mut cmd, dir);
        cmd
    }

    /// Starts it with `extra` arguments, `adjust` having its say on the command (the
    /// environment, where output goes), and waits for its socket. An agent that exits
    /// first, or does not make its socket in time, is an error.
    pub fn spawn(
        &self,
        extra: &[&str],
        adjust: impl FnOnce(&mut Command),
    ) -> Result<Agent, String> {
        let dir = Scratch::try_new(&self.tag)?;
        let mut cmd = self.command(&dir, extra);
        adjust(&mut cmd);
        // Even when `adjust` cleared the environment.
        guest_socket_in(&mut cmd, &dir);
        let child = spawn_retrying(&mut cmd)
            .map_err(|e| format!("cannot start {}: {e}", self.program.display()))?;
        let mut agent = Agent {
            child: Some(child),
            sock: dir.join("sock"),
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while std::os::unix::net::UnixStream::connect(&agent.sock).is_err() {
            if let Some(Ok(Some(st))) = agent.child.as_mut().map(Child::try_wait) {
                return Err(format!("the agent exited at start ({st})"));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not listen on {}",
                    self.program.display(),
                    agent.sock.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(agent)
    }
}

/// Spawns `cmd`, again while the executable is busy: a test that has just copied an
/// executable can find it held open for writing by a child that another test's thread
/// forked meanwhile and that has not reached its exec yet (ETXTBSY, for a moment).
pub fn spawn_retrying(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// guestlinkd's guest-side socket goes with the agent, never the system's.
fn guest_socket_in(cmd: &mut Command, dir: &Path) {
    cmd.env("GUESTLINK_GUEST_SOCKET", dir.join("guest.sock"));
}

/// A running agent, killed and its directory removed when dropped.
#[derive(Debug)]
pub struct Agent {
    child: Option<Child>,
    /// Its socket.
    pub sock: PathBuf,
    /// Its state and working directory.
    pub dir: Scratch,
}

impl Agent {
    /// Starts `program` with `extra` arguments and waits for its socket; panics when it
    /// does not come up (a test cannot go on).
    pub fn start(program: impl Into<PathBuf>, extra: &[&str]) -> Agent {
        Launch::new(program)
            .spawn(extra, |_| {})
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The running process, to wait for or signal.
    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("the agent is running")
    }

    /// Sends SIGTERM and waits for the exit status; panics if the agent is still there
    /// ten seconds later.
    pub fn terminate(self) -> ExitStatus {
        self.stop(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends SIGTERM and waits for the exit status (SIGKILL after `grace`: an error).
    pub fn stop(mut self, grace: Duration) -> Result<ExitStatus, String> {
        let mut child = self.child.take().expect("the agent is running");
        // SAFETY: kill(2) on our own child, which has not been reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the agent ignored SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
