//! `guest-exec` and `guest-exec-status`: start a program, collect its exit and output.
//!
//! Each child gets a task that feeds its standard input, drains the captured pipes
//! (keeping at most 16 MiB per stream, and no more than the exec table's budget for
//! all children together, counting the rest as truncated, so the child never blocks on
//! a full pipe), waits for it and stores the outcome in the exec table.
//! The tasks run while other commands are served; the child is always reaped.

use std::process::Stdio;

use guestlink_vocabulary::commands::{GuestExec, GuestExecStatus};
use guestlink_vocabulary::types::{
    self as t, base64_decode, Base64Data, GuestExecArgs, GuestExecCaptureOutputMode as Mode,
    GuestExecStatusArgs,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;
use crate::events::{Audience, EventRecord};
use crate::limits::{EXEC_OUTPUT, EXEC_PROCESSES};
use crate::state::exec::OutputBudget;
use crate::state::{Captured, ExecLookup, ExecOutcome};
use guestlink_vocabulary::events::ExecExitedEvent;
use guestlink_vocabulary::types::ExecExited;

/// Reads `r` to its end, keeping the first [`EXEC_OUTPUT`] bytes that `budget` grants.
async fn drain(mut r: impl AsyncRead + Unpin, budget: &OutputBudget) -> Captured {
    let mut out = Captured::default();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => {
                let room = EXEC_OUTPUT - out.data.len();
                let want = n.min(room);
                let granted = budget.take(want);
                out.data.extend_from_slice(&buf[..granted]);
                if granted < want && !out.truncated {
                    tracing::warn!(
                        "guest-exec output truncated: the limit exec-output-total ({} MiB) is reached",
                        crate::limits::EXEC_OUTPUT_TOTAL >> 20
                    );
                }
                if n > granted {
                    out.truncated = true;
                }
            }
        }
    }
}

/// GLib's spawn failure text, which qemu-ga ≥ 9.1 reports as is.
fn spawn_error(path: &str, e: &std::io::Error) -> CommandError {
    let reason = crate::error::strerror(e);
    CommandError::new(format!(
        "Failed to execute child process \u{201C}{path}\u{201D} ({reason})"
    ))
}

/// The read end of the pipe both streams share (`merged`).
#[cfg(unix)]
type MergedReader = tokio::net::unix::pipe::Receiver;
/// No shared pipe on Windows: never made.
#[cfg(not(unix))]
type MergedReader = tokio::process::ChildStdout;

/// One pipe for both standard output and standard error (`merged`).
#[cfg(unix)]
fn merged_pipe() -> std::io::Result<(MergedReader, std::os::fd::OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    Ok((tokio::net::unix::pipe::Receiver::from_owned_fd(r)?, w))
}

impl Handler for GuestExec {
    async fn handle(ctx: Context<'_>, args: GuestExecArgs) -> Result<t::GuestExec, CommandError> {
        // Children not yet collected by guest-exec-status, running or not.
        if ctx.agent.state().exec.len() >= EXEC_PROCESSES {
            return Err(CommandError::new(format!(
                "too many processes started and not yet collected with guest-exec-status (limit exec-processes: {EXEC_PROCESSES})"
            )));
        }
        let input = match &args.input_data {
            Some(text) => {
                Some(base64_decode(text.as_bytes()).map_err(|e| CommandError::new(e.to_string()))?)
            }
            None => None,
        };
        let mode = args.capture_output.map(|c| c.mode()).unwrap_or(Mode::None);
        let mut cmd = tokio::process::Command::new(&args.path);
        cmd.args(args.arg.iter().flatten());
        if let Some(env) = &args.env {
            cmd.env_clear();
            for entry in env {
                match entry.split_once('=') {
                    Some((k, v)) if !k.is_empty() => cmd.env(k, v),
                    _ => cmd.env(entry, ""),
                };
            }
        }
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        #[cfg_attr(not(unix), allow(unused_mut))]
        let mut merged: Option<MergedReader> = None;
        match mode {
            Mode::None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
            Mode::Stdout => {
                cmd.stdout(Stdio::piped()).stderr(Stdio::null());
            }
            Mode::Stderr => {
                cmd.stdout(Stdio::null()).stderr(Stdio::piped());
            }
            Mode::Separated => {
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
            #[cfg(not(unix))]
            Mode::Merged => {
                // As qemu-ga for Windows: GLib cannot give one pipe to both streams.
                return Err(CommandError::new("merged unsupported on windows"));
            }
            #[cfg(unix)]
            Mode::Merged => {
                let (r, w) = merged_pipe().map_err(|e| spawn_error(&args.path, &e))?;
                let w2 = w.try_clone().map_err(|e| spawn_error(&args.path, &e))?;
                cmd.stdout(Stdio::from(w)).stderr(Stdio::from(w2));
                merged = Some(r);
            }
        }
        let mut child = cmd.spawn().map_err(|e| spawn_error(&args.path, &e))?;
        // Our copies of the merged pipe's write end went into `cmd`; drop them so the
        // reader sees the end when the child (and its children) close theirs.
        drop(cmd);
        let pid = i64::from(child.id().unwrap_or(0));
        let record = ctx.agent.state().exec.insert(pid);
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        tracing::info!(path = %args.path, pid, ?mode, "guest-exec started");
        let bus = ctx.agent.events().clone();
        let budget = ctx.agent.state().exec.budget();
        tokio::spawn(async move {
            let feed = async {
                if let (Some(mut w), Some(data)) = (stdin, input) {
                    // A child that exits without reading its input is not an error.
                    let _ = w.write_all(&data).await;
                }
            };
            let out = async {
                match (stdout, merged) {
                    (Some(r), _) => Some(drain(r, &budget).await),
                    (None, Some(r)) => Some(drain(r, &budget).await),
                    _ => None,
                }
            };
            let err = async {
                match stderr {
                    Some(r) => Some(drain(r, &budget).await),
                    None => None,
                }
            };
            let ((), stdout, stderr, status) = tokio::join!(feed, out, err, child.wait());
            let mut outcome = ExecOutcome {
                stdout,
                stderr,
                ..ExecOutcome::default()
            };
            match status {
                Ok(status) => {
                    outcome.exitcode = status.code().map(i64::from);
                    outcome.signal = crate::os::exit_signal(&status).map(i64::from);
                }
                Err(e) => tracing::warn!(pid, "cannot wait for child: {e}"),
            }
            tracing::info!(pid, exitcode = ?outcome.exitcode, signal = ?outcome.signal, "guest-exec child ended");
            let exited = ExecExited {
                pid,
                exitcode: outcome.exitcode,
                signal: outcome.signal,
            };
            record.finish(outcome);
            // The host started it: only the host and root hear of it.
            bus.publish(
                EventRecord::new::<ExecExitedEvent>(&exited),
                Audience::User(0),
            );
        });
        Ok(t::GuestExec { pid })
    }
}

fn split(captured: Option<Captured>) -> (Option<Base64Data>, Option<bool>) {
    match captured {
        Some(c) if !c.data.is_empty() => (Some(Base64Data(c.data)), Some(c.truncated)),
        _ => (None, None),
    }
}

impl Handler for GuestExecStatus {
    async fn handle(
        ctx: Context<'_>,
        args: GuestExecStatusArgs,
    ) -> Result<t::GuestExecStatus, CommandError> {
        match ctx.agent.state().exec.poll(args.pid) {
            ExecLookup::Unknown => Err(CommandError::new(format!(
                "PID {} does not exist",
                args.pid
            ))),
            ExecLookup::Running => Ok(t::GuestExecStatus {
                exited: false,
                ..Default::default()
            }),
            ExecLookup::Exited(o) => {
                let (out_data, out_truncated) = split(o.stdout);
                let (err_data, err_truncated) = split(o.stderr);
                Ok(t::GuestExecStatus {
                    exited: true,
                    exitcode: o.exitcode,
                    signal: o.signal,
                    out_data,
                    err_data,
                    out_truncated,
                    err_truncated,
                })
            }
        }
    }

    fn reply_size_hint(reply: &t::GuestExecStatus) -> usize {
        let len = |d: &Option<Base64Data>| d.as_ref().map_or(0, |d| d.0.len());
        (len(&reply.out_data) + len(&reply.err_data)) / 3 * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_is_bounded_by_the_shared_budget() {
        let budget = OutputBudget::new(100);
        let first = drain(&[7u8; 60][..], &budget).await;
        assert_eq!((first.data.len(), first.truncated), (60, false));
        let second = drain(&[8u8; 300][..], &budget).await;
        assert_eq!((second.data.len(), second.truncated), (40, true));
        assert_eq!(budget.left(), 0);
        let starved = drain(&[9u8; 10][..], &budget).await;
        assert_eq!((starved.data.len(), starved.truncated), (0, true));
        budget.give_back(first.data.len());
        let after = drain(&[1u8; 10][..], &budget).await;
        assert_eq!((after.data.len(), after.truncated), (10, false));
    }
}
