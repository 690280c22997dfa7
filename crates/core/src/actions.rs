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

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::limits::{ACTION_OUTPUT, ACTION_TIMEOUT};
use tokio::io::{AsyncRead, AsyncReadExt};

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
            dirs: crate::os::drop_in_dirs("actions.d"),
            timeout: ACTION_TIMEOUT,
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
    /// The first [`ACTION_OUTPUT`] bytes of its stdout.
    pub stdout: Vec<u8>,
    /// The first [`ACTION_OUTPUT`] bytes of its stderr.
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
    if crate::dropins::masked(path) {
        return Some("disabled (a link to /dev/null)".into());
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot be read: {e}")),
    };
    if !meta.is_file() {
        return Some("not a regular file".into());
    }
    crate::os::untrusted_executable(path, &meta)
}

/// The files that may run, in name order; the others are logged with the reason.
fn usable(files: std::collections::BTreeMap<String, PathBuf>) -> Vec<Found> {
    files
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

impl Actions {
    /// The runnable executables of subdirectory `sub` of every directory, merged by
    /// name (a later directory wins, and may disable), in name order. What is skipped
    /// is logged with the reason.
    pub fn list(&self, sub: &Path) -> Vec<Found> {
        usable(crate::dropins::merge(&self.dirs, sub, |_| true))
    }

    /// The named actions (the executables at the top of the directories; the
    /// subdirectories hold hooks).
    pub fn actions(&self) -> Vec<Found> {
        let mut files = crate::dropins::merge(&self.dirs, Path::new(""), valid_name);
        files.retain(|_, p| !p.is_dir());
        usable(files)
    }

    /// The action called `name`.
    pub fn find(&self, name: &str) -> Option<Found> {
        if !valid_name(name) {
            return None;
        }
        self.actions().into_iter().find(|f| f.name == name)
    }

    /// Runs `path` with `args` and `env`, `input` on its stdin, under the time limit.
    pub async fn run(
        &self,
        path: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> std::io::Result<Outcome> {
        self.run_with_input(path, args, env, None).await
    }

    /// [`Actions::run`] with `input` fed to stdin.
    pub async fn run_with_input(
        &self,
        path: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        input: Option<Vec<u8>>,
    ) -> std::io::Result<Outcome> {
        let mut cmd = tokio::process::Command::new(path);
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        crate::os::own_group(&mut cmd);
        let mut child = cmd.spawn()?;
        let pid = child.id();
        if let (Some(mut stdin), Some(data)) = (child.stdin.take(), input) {
            // Fed beside the reading, so that a child that writes before it reads
            // cannot deadlock with us.
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = stdin.write_all(&data).await;
            });
        }
        let out = capped(child.stdout.take());
        let err = capped(child.stderr.take());
        let waited = async {
            let (status, out, err) = tokio::join!(child.wait(), out, err);
            (status, out, err)
        };
        match tokio::time::timeout(self.timeout, waited).await {
            Ok((status, (stdout, t1), (stderr, t2))) => {
                let status = status?;
                Ok(Outcome {
                    code: status.code(),
                    signal: crate::os::exit_signal(&status),
                    timed_out: false,
                    stdout,
                    stderr,
                    truncated: t1 || t2,
                })
            }
            Err(_) => {
                if let Some(pid) = pid {
                    // The whole group: a script's children go too.
                    crate::os::kill_group(pid);
                }
                Ok(Outcome {
                    signal: crate::os::KILLED,
                    timed_out: true,
                    ..Outcome::default()
                })
            }
        }
    }
}

/// Action names: letters, digits, `-`, `_` and `.`, not starting with `.`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// What an action counts as for the policy: the commands on its `# guestlink-needs:`
/// line (within its first 4 KiB), or `guest-exec` when it has none.
pub fn needs(path: &Path) -> Vec<String> {
    declared_needs(path).unwrap_or_else(|| vec!["guest-exec".to_string()])
}

/// The commands on a file's `# guestlink-needs:` line, if it has one.
pub fn declared_needs(path: &Path) -> Option<Vec<String>> {
    use std::io::Read;
    let mut head = Vec::new();
    let f = std::fs::File::open(path).ok()?;
    f.take(4096).read_to_end(&mut head).ok()?;
    let text = String::from_utf8_lossy(&head);
    text.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix("# guestlink-needs:")?;
        Some(
            rest.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        )
    })
}

/// Reads a pipe to its end, keeping the first [`ACTION_OUTPUT`] bytes.
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
                let room = ACTION_OUTPUT - kept.len();
                kept.extend_from_slice(&buf[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
}
