//! Host-invokable actions: executables in layered directories, run without a shell.
//!
//! The directories are read in order, the vendor's first (`/usr/lib/guestlink/actions.d`)
//! and the administrator's last (`/etc/guestlink/actions.d`), with systemd's override
//! rules: a file replaces the same-named file of an earlier directory, and a link to
//! `/dev/null` or a file without execute permission disables it. A file is run only
//! when it is a regular file owned by root (or by the agent's own user) and writable by
//! nobody else. Each runs with its arguments as argv, a time limit (its process group
//! is killed after it) and its output kept up to a cap.
//!
//! The oVirt lifecycle hooks are the executables of `lifecycle/EVENT/`.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The default directories, vendor first.
pub const DEFAULT_DIRS: &[&str] = &["/usr/lib/guestlink/actions.d", "/etc/guestlink/actions.d"];

/// How long one action may run before its process group is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Output kept from each of an action's stdout and stderr.
pub const OUTPUT_CAP: usize = 64 << 10;

/// Where actions are looked for, and how they run.
#[derive(Debug, Clone)]
pub struct Actions {
    /// Directories in override order: a later one wins.
    pub dirs: Vec<PathBuf>,
    /// Time limit of one action.
    pub timeout: Duration,
}

impl Default for Actions {
    fn default() -> Self {
        Actions {
            dirs: DEFAULT_DIRS.iter().map(PathBuf::from).collect(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// An action found in the directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its file name.
    pub name: String,
    /// The file that wins.
    pub path: PathBuf,
}

/// How an action ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that ended it.
    pub signal: Option<i32>,
    /// Whether it was killed for its time.
    pub timed_out: bool,
    /// The first [`OUTPUT_CAP`] bytes of its stdout.
    pub stdout: Vec<u8>,
    /// The first [`OUTPUT_CAP`] bytes of its stderr.
    pub stderr: Vec<u8>,
    /// Whether either output went past the cap.
    pub truncated: bool,
}

impl Outcome {
    /// Whether it exited with 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Why a file found is not run.
fn unusable(path: &Path) -> Option<String> {
    let link = std::fs::symlink_metadata(path).ok()?;
    if link.file_type().is_symlink()
        && std::fs::canonicalize(path).is_ok_and(|t| t == Path::new("/dev/null"))
    {
        return Some("disabled (a link to /dev/null)".into());
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot be read: {e}")),
    };
    if !meta.is_file() {
        return Some("not a regular file".into());
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Some("disabled (not executable)".into());
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != me {
        return Some(format!("owned by uid {}, not root", meta.uid()));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Some("writable by its group or by others".into());
    }
    None
}

impl Actions {
    /// The runnable executables of subdirectory `sub` of every directory, merged by
    /// name (a later directory wins, and may disable), in name order. What is skipped
    /// is logged with the reason.
    pub fn list(&self, sub: &Path) -> Vec<Found> {
        let mut winners: BTreeMap<String, PathBuf> = BTreeMap::new();
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                winners.insert(name, entry.path());
            }
        }
        winners
            .into_iter()
            .filter_map(|(name, path)| match unusable(&path) {
                None => Some(Found { name, path }),
                Some(why) => {
                    tracing::info!(action = %path.display(), "not run: {why}");
                    None
                }
            })
            .collect()
    }

    /// Runs `path` with `args` and `env`, no stdin, under the time limit.
    pub async fn run(
        &self,
        path: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> std::io::Result<Outcome> {
        let mut cmd = tokio::process::Command::new(path);
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let pid = child.id();
        let out = capped(child.stdout.take());
        let err = capped(child.stderr.take());
        let waited = async {
            let (status, out, err) = tokio::join!(child.wait(), out, err);
            (status, out, err)
        };
        match tokio::time::timeout(self.timeout, waited).await {
            Ok((status, (stdout, t1), (stderr, t2))) => {
                let status = status?;
                use std::os::unix::process::ExitStatusExt;
                Ok(Outcome {
                    code: status.code(),
                    signal: status.signal(),
                    timed_out: false,
                    stdout,
                    stderr,
                    truncated: t1 || t2,
                })
            }
            Err(_) => {
                if let Some(pid) = pid {
                    // The whole group: a script's children go too.
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                Ok(Outcome {
                    signal: Some(libc::SIGKILL),
                    timed_out: true,
                    ..Outcome::default()
                })
            }
        }
    }
}

/// Reads a pipe to its end, keeping the first [`OUTPUT_CAP`] bytes.
async fn capped(pipe: Option<impl AsyncRead + Unpin>) -> (Vec<u8>, bool) {
    let Some(mut pipe) = pipe else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return (kept, truncated),
            Ok(n) => {
                let room = OUTPUT_CAP - kept.len();
                kept.extend_from_slice(&buf[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
}
