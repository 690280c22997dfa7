//! The process side of self-update (the checks and the swap are
//! `guestlink_core::update`'s): how the agent restarts on the new executable, the
//! new agent's confirmation once it serves, and the guard that rolls back.
//!
//! - Under systemd (the agent is a unit's process), the agent starts the guard as a
//!   transient unit (`systemd-run`, so the unit's restart does not kill it) and asks
//!   systemd to restart the unit. Otherwise it starts the guard detached and
//!   re-executes itself in place, with the same pid and arguments.
//! - The new agent confirms when it serves every channel (where it tells systemd
//!   READY=1): the marker says `confirmed` and `<exe>.old` is removed.
//! - The guard is the old executable (`--update-guard STATEDIR`). It waits for the
//!   confirmation for the trial period (30 s by default); without it (or as soon as a
//!   re-executed agent has died) it marks the update `rolled-back` with the reason,
//!   renames `<exe>.old` back, and restarts the old agent: `systemctl restart`, or
//!   the old executable with the agent's arguments.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use guestlink_core::update::{marker, Restart, UpdateConfig, DEFAULT_KEY, DEFAULT_TRIAL};

use crate::config::Config;

/// The update configuration of this process.
pub fn config(config: &Config) -> UpdateConfig {
    UpdateConfig {
        exe: std::env::current_exe().ok(),
        key: config
            .update_key
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_KEY)),
        trial: config
            .update_trial
            .map_or(DEFAULT_TRIAL, |s| Duration::from_secs(s.max(1))),
        restart: match systemd_unit() {
            Some(unit) => Restart::Systemd(unit),
            None => Restart::Exec,
        },
        argv: std::env::args().collect(),
    }
}

/// The systemd service this process is the main process of, if any.
fn systemd_unit() -> Option<String> {
    std::env::var_os("INVOCATION_ID")?;
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let unit = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .rsplit('/')
        .next()?
        .to_owned();
    unit.ends_with(".service").then_some(unit)
}

/// Confirms an update this agent is the result of: it serves. Called once, when every
/// channel is being served.
pub fn confirm(statedir: &Path) {
    let confirmed = marker::update(statedir, |m| match m {
        Some(mut m) if m.state == "pending" => {
            m.state = "confirmed".into();
            let _ = std::fs::remove_file(&m.backup);
            let new = m.new_version.clone();
            (Some(m), Some(new))
        }
        _ => (None, None),
    });
    match confirmed {
        Ok(Some(version)) => tracing::info!(%version, "update confirmed: the new agent serves"),
        Ok(None) => {}
        Err(e) => tracing::warn!("cannot confirm the update: {e}"),
    }
}

/// Restarts on the executable now in place: never returns when it re-executes.
pub fn restart(agent: &guestlink_core::Agent) {
    let statedir = agent.state().statedir().to_path_buf();
    let Some(m) = marker::read(&statedir) else {
        tracing::error!("restart asked for without an update marker; staying");
        return;
    };
    let guard_args = [
        m.backup.display().to_string(),
        "--update-guard".to_string(),
        statedir.display().to_string(),
    ];
    match agent.update_config().restart.clone() {
        Restart::Systemd(unit) => {
            let guard_unit = format!("guestlinkd-update-guard-{}", std::process::id());
            let started = std::process::Command::new("systemd-run")
                .args(["--quiet", "--collect", "--unit", &guard_unit])
                .args(&guard_args)
                .status();
            if !matches!(started, Ok(s) if s.success()) {
                tracing::warn!(
                    "systemd-run failed ({started:?}): the update has no rollback guard"
                );
            }
            tracing::info!(%unit, "restarting the unit on the new executable");
            let r = std::process::Command::new("systemctl")
                .args(["--no-block", "restart", &unit])
                .status();
            if !matches!(r, Ok(s) if s.success()) {
                tracing::error!("systemctl restart {unit} failed: {r:?}");
            }
        }
        Restart::Exec => {
            if let Err(e) = spawn_detached(&guard_args) {
                tracing::warn!("cannot start the update guard: {e:#}");
            }
            tracing::info!("re-executing on the new executable");
            let err = exec(&m.exe.display().to_string(), &m.argv);
            tracing::error!("cannot re-execute {}: {err}", m.exe.display());
        }
    }
}

fn cstrings(args: &[String]) -> anyhow::Result<Vec<CString>> {
    args.iter()
        .map(|a| CString::new(a.as_bytes()).context("an argument holds a NUL byte"))
        .collect()
}

/// Replaces this process with `exe` and `argv` (argv[0] kept); returns only on failure.
fn exec(exe: &str, argv: &[String]) -> nix::Error {
    let (Ok(path), Ok(args)) = (CString::new(exe), cstrings(argv)) else {
        return nix::Error::EINVAL;
    };
    match nix::unistd::execv(&path, &args) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// Starts `args` (args[0] the program) in a session of its own, not our child: the
/// intermediate child exits at once and is reaped here.
fn spawn_detached(args: &[String]) -> anyhow::Result<()> {
    let argv = cstrings(args)?;
    let path = argv.first().context("nothing to start")?.clone();
    // SAFETY: the children call only async-signal-safe functions (setsid, fork,
    // execv, _exit) before they exec or exit; every allocation happened above.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            let _ = nix::unistd::setsid();
            // SAFETY: as above.
            if let Ok(nix::unistd::ForkResult::Child) = unsafe { nix::unistd::fork() } {
                let _ = nix::unistd::execv(&path, &argv);
            }
            // SAFETY: _exit is async-signal-safe and ends the intermediate child.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            let _ = nix::sys::wait::waitpid(child, None);
            Ok(())
        }
    }
}

/// Whether `pid` runs (and is not a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// `--update-guard STATEDIR`: waits for the new agent's confirmation, else rolls back.
pub fn guard(statedir: &Path) -> anyhow::Result<()> {
    let start = Instant::now();
    let first = marker::read(statedir).context("no update marker")?;
    let trial = Duration::from_secs(first.trial_seconds);
    let reason = loop {
        std::thread::sleep(Duration::from_millis(200));
        let Some(m) = marker::read(statedir) else {
            return Ok(());
        };
        if m.state != "pending" {
            return Ok(());
        }
        if m.restart == "exec" && start.elapsed() > Duration::from_millis(500) && !alive(m.pid) {
            break "the new agent exited before it served".to_string();
        }
        if start.elapsed() >= trial {
            break format!(
                "the new agent did not serve within {} s",
                first.trial_seconds
            );
        }
    };
    let claimed = marker::update(statedir, |m| match m {
        Some(mut m) if m.state == "pending" => {
            m.state = "rolled-back".into();
            m.reason = Some(reason.clone());
            (Some(m.clone()), Some(m))
        }
        _ => (None, None),
    })?;
    let Some(m) = claimed else {
        return Ok(());
    };
    eprintln!("guestlinkd: rolling back the update: {reason}");
    std::fs::rename(&m.backup, &m.exe)
        .with_context(|| format!("putting {} back", m.exe.display()))?;
    if let Some(unit) = &m.unit {
        let _ = std::process::Command::new("systemctl")
            .args(["reset-failed", unit])
            .status();
        std::process::Command::new("systemctl")
            .args(["restart", unit])
            .status()
            .context("systemctl restart")?;
    } else {
        if alive(m.pid) {
            let pid = nix::unistd::Pid::from_raw(m.pid as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(5);
            while alive(m.pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let mut args = m.argv.clone();
        match args.first_mut() {
            Some(first) => *first = m.exe.display().to_string(),
            None => args.push(m.exe.display().to_string()),
        }
        spawn_detached(&args)?;
    }
    Ok(())
}
