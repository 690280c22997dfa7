//! Starting the programs of live streams on Windows: on pipes, as the agent's own
//! account (LocalSystem for the service), in a process group of their own without a
//! console window. The login shell is `%ComSpec%` (cmd.exe). Running as another user
//! (a token from the user's session) and a terminal (ConPTY) are not built yet, and are
//! refused with a reason.

use std::path::PathBuf;
use std::process::Stdio;

use guestlink_core::live::{BoxRead, BoxWrite, LiveChild, LiveCommand, Processes};

/// The system's processes.
#[derive(Debug, Default, Clone, Copy)]
pub struct WindowsProcesses;

/// The account name of this process.
fn own_user() -> Option<String> {
    std::env::var("USERNAME").ok()
}

impl Processes for WindowsProcesses {
    fn spawn(&self, cmd: &LiveCommand) -> Result<LiveChild, String> {
        let me = own_user();
        let default = cmd.user == guestlink_core::os::DEFAULT_LIVE_USER;
        if !default
            && !me
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(&cmd.user))
        {
            return Err(format!(
                "cannot run as '{}': guestlinkd for Windows runs programs as its own account only",
                cmd.user
            ));
        }
        if cmd.terminal.is_some() {
            return Err("a terminal (ConPTY) is not available on Windows yet".into());
        }
        let program = cmd.program.clone().unwrap_or_else(|| {
            std::env::var("ComSpec").unwrap_or_else(|_| r"C:\Windows\System32\cmd.exe".into())
        });
        let mut c = tokio::process::Command::new(&program);
        c.args(&cmd.args);
        c.envs(cmd.env.iter().map(|(k, v)| (k, v)));
        let cwd = match &cmd.cwd {
            Some(d) => d.clone(),
            None => std::env::var_os("USERPROFILE")
                .map(PathBuf::from)
                .filter(|p| p.is_dir())
                .unwrap_or_else(|| PathBuf::from(r"C:\")),
        };
        c.current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        guestlink_core::os::own_group(&mut c);
        let mut child = c.spawn().map_err(|e| {
            let reason = guestlink_core::error::strerror(&e);
            format!("Failed to execute child process \u{201C}{program}\u{201D} ({reason})")
        })?;
        let pid = child.id().map_or(0, |p| p as i32);
        let input = child.stdin.take().map(|w| Box::new(w) as BoxWrite);
        let output: BoxRead = match child.stdout.take() {
            Some(r) => Box::new(r),
            None => return Err("the program has no output pipe".into()),
        };
        let errors = child.stderr.take().map(|r| Box::new(r) as BoxRead);
        Ok(LiveChild {
            pid,
            input,
            output,
            errors,
            terminal: None,
            exit: Box::pin(async move { child.wait().await }),
        })
    }
}
