//! `guest-fsfreeze-*` and `guest-fstrim`.
//!
//! Freezing runs the `-F` hook (or, without one, the `fsfreeze/` actions) with
//! `freeze`, marks the agent frozen (the marker file
//! and the gate's safe set), then freezes the mounts in reverse mount order; a failure
//! thaws what was frozen and reports the error. Thawing undoes the freezes in reverse,
//! clears the state and runs the hook with `thaw`. The optional watchdog
//! ([`run_watchdog`]) thaws by itself when the host never does.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use guestlink_vocabulary::commands::{
    GuestFsfreezeFreeze, GuestFsfreezeFreezeList, GuestFsfreezeStatus, GuestFsfreezeThaw,
    GuestFstrim,
};
use guestlink_vocabulary::types::{
    self as t, Empty, GuestFilesystemTrimResponse, GuestFilesystemTrimResult,
    GuestFsfreezeFreezeListArgs, GuestFstrimArgs,
};

use super::file::with_errno;
use crate::agent::Agent;
use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;
use crate::events::{Audience, EventRecord};
use crate::platform::{Filesystems, TrimError};
use guestlink_vocabulary::events::{FsFreezeEvent, FsThawEvent};
use guestlink_vocabulary::types::FreezeChange;

/// Runs filesystem ioctls off the async thread.
async fn blocking<T: Send + 'static>(
    fs: &Arc<dyn Filesystems>,
    f: impl FnOnce(&dyn Filesystems) -> T + Send + 'static,
) -> Result<T, CommandError> {
    let fs = fs.clone();
    super::off_thread(move || f(&*fs)).await
}

async fn run_hook(agent: &Agent, action: &str) -> Result<(), CommandError> {
    let Some(hook) = agent.fsfreeze_hook() else {
        return run_action_hooks(agent, action).await;
    };
    if let Err(e) = crate::os::check_executable(hook) {
        return Err(with_errno(
            format!("can't access fsfreeze hook '{}'", hook.display()),
            &e,
        ));
    }
    let status = tokio::process::Command::new(hook)
        .arg(action)
        .stdin(std::process::Stdio::null())
        .status()
        .await
        .map_err(|e| with_errno("failed to run fsfreeze hook", &e))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(CommandError::new(format!(
            "fsfreeze hook has failed with status {code}"
        ))),
        None => Err(CommandError::new(
            "fsfreeze hook was terminated by a signal",
        )),
    }
}

/// Without `-F`: the executables of `fsfreeze/` in the actions directories (what
/// qemu's fsfreeze-hook script does with its `fsfreeze-hook.d`), in name order, each
/// with `freeze` or `thaw`; the first that fails stops a freeze.
async fn run_action_hooks(agent: &Agent, action: &str) -> Result<(), CommandError> {
    let actions = agent.actions();
    for hook in actions.list(Path::new("fsfreeze")) {
        let o = actions
            .run(&hook.path, &[action], &[])
            .await
            .map_err(|e| with_errno(format!("failed to run fsfreeze hook '{}'", hook.name), &e))?;
        if !o.success() {
            tracing::warn!(hook = %hook.path.display(), stderr = %String::from_utf8_lossy(&o.stderr), "fsfreeze hook failed");
            return Err(CommandError::new(match o.code {
                Some(code) => format!(
                    "fsfreeze hook '{}' has failed with status {code}",
                    hook.name
                ),
                None => format!("fsfreeze hook '{}' was terminated by a signal", hook.name),
            }));
        }
    }
    Ok(())
}

fn mount_list_error(e: &io::Error) -> CommandError {
    with_errno("failed to read the mount list", e)
}

async fn freeze(agent: &Agent, only: Option<Vec<String>>) -> Result<i64, CommandError> {
    let state = agent.state();
    let mut guard = state.freeze.lock().await;
    run_hook(agent, "freeze").await?;
    let fs = &agent.platform().filesystems;
    let mut mounts = blocking(fs, |fs| fs.mounts())
        .await?
        .map_err(|e| mount_list_error(&e))?;
    if let Some(only) = &only {
        mounts.retain(|m| only.iter().any(|o| Path::new(o) == m.dir));
    }
    state
        .set_frozen(true)
        .map_err(|e| with_errno("failed to record the frozen state", &e))?;
    let dirs: Vec<PathBuf> = mounts.into_iter().rev().map(|m| m.dir).collect();
    let result = blocking(fs, move |fs| {
        let mut frozen = Vec::new();
        for dir in dirs {
            match fs.freeze(&dir) {
                Ok(()) => frozen.push(dir),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EBUSY)) => {}
                Err(e) => {
                    for d in frozen.iter().rev() {
                        let _ = fs.thaw(d);
                    }
                    return Err(with_errno(
                        format!("failed to freeze {}", dir.display()),
                        &e,
                    ));
                }
            }
        }
        Ok(frozen)
    })
    .await
    .and_then(std::convert::identity);
    match result {
        Ok(frozen) if !frozen.is_empty() => {
            let n = frozen.len() as i64;
            tracing::warn!(count = n, "filesystems frozen");
            guard.frozen = Some(frozen);
            agent.publish(
                EventRecord::new::<FsFreezeEvent>(&FreezeChange { count: n }),
                Audience::Everyone,
            );
            Ok(n)
        }
        Ok(_) => {
            let _ = state.set_frozen(false);
            Ok(0)
        }
        Err(e) => {
            let _ = state.set_frozen(false);
            Err(e)
        }
    }
}

/// Thaws what `guest-fsfreeze-freeze` froze (every mount when the agent started frozen
/// and does not know), clears the frozen state and runs the hook with `thaw`.
pub async fn thaw(agent: &Agent) -> Result<i64, CommandError> {
    let state = agent.state();
    let mut guard = state.freeze.lock().await;
    if !state.frozen() {
        return Ok(0);
    }
    let fs = &agent.platform().filesystems;
    let targets: Vec<PathBuf> = match guard.frozen.take() {
        Some(list) => list.into_iter().rev().collect(),
        None => blocking(fs, |fs| fs.mounts())
            .await?
            .map_err(|e| mount_list_error(&e))?
            .into_iter()
            .map(|m| m.dir)
            .collect(),
    };
    let thawed = blocking(fs, move |fs| {
        targets
            .iter()
            .filter(|d| matches!(fs.thaw(d), Ok(true)))
            .count()
    })
    .await?;
    state
        .set_frozen(false)
        .map_err(|e| with_errno("failed to clear the frozen state", &e))?;
    tracing::warn!(count = thawed, "filesystems thawed");
    agent.publish(
        EventRecord::new::<FsThawEvent>(&FreezeChange {
            count: thawed as i64,
        }),
        Audience::Everyone,
    );
    drop(guard);
    run_hook(agent, "thaw").await?;
    Ok(thawed as i64)
}

/// Thaws automatically `timeout` after each freeze that the host has not undone.
pub async fn run_watchdog(agent: Arc<Agent>, timeout: Duration) {
    let mut events = agent.state().freeze_events();
    loop {
        if events.changed().await.is_err() {
            return;
        }
        let (generation, at) = *events.borrow_and_update();
        tokio::time::sleep_until((at + timeout).into()).await;
        if agent.state().frozen() && agent.state().freeze_generation() == generation {
            tracing::warn!(
                seconds = timeout.as_secs(),
                "filesystems still frozen after the freeze timeout; thawing them"
            );
            if let Err(e) = thaw(&agent).await {
                tracing::error!("automatic thaw failed: {e}");
            }
        }
    }
}

impl Handler for GuestFsfreezeStatus {
    async fn handle(
        ctx: Context<'_>,
        _args: Empty,
    ) -> Result<t::GuestFsfreezeStatus, CommandError> {
        Ok(if ctx.agent.state().frozen() {
            t::GuestFsfreezeStatus::Frozen
        } else {
            t::GuestFsfreezeStatus::Thawed
        })
    }
}

impl Handler for GuestFsfreezeFreeze {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<i64, CommandError> {
        freeze(ctx.agent, None).await
    }
}

impl Handler for GuestFsfreezeFreezeList {
    async fn handle(
        ctx: Context<'_>,
        args: GuestFsfreezeFreezeListArgs,
    ) -> Result<i64, CommandError> {
        freeze(ctx.agent, args.mountpoints).await
    }
}

impl Handler for GuestFsfreezeThaw {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<i64, CommandError> {
        thaw(ctx.agent).await
    }
}

impl Handler for GuestFstrim {
    async fn handle(
        ctx: Context<'_>,
        args: GuestFstrimArgs,
    ) -> Result<GuestFilesystemTrimResponse, CommandError> {
        let minimum = args.minimum.unwrap_or(0);
        let fs = &ctx.agent.platform().filesystems;
        let paths = blocking(fs, move |fs| {
            let mounts = fs.mounts().map_err(|e| mount_list_error(&e))?;
            Ok::<_, CommandError>(
                mounts
                    .into_iter()
                    .map(|m| {
                        let path = m.dir.to_string_lossy().into_owned();
                        match fs.trim(&m.dir, minimum as u64) {
                            Ok(trimmed) => GuestFilesystemTrimResult {
                                path,
                                trimmed: Some(trimmed as i64),
                                minimum: Some(minimum),
                                error: None,
                            },
                            Err(e) => GuestFilesystemTrimResult {
                                path,
                                error: Some(trim_error_text(&e)),
                                ..Default::default()
                            },
                        }
                    })
                    .collect(),
            )
        })
        .await??;
        Ok(GuestFilesystemTrimResponse { paths })
    }
}

fn trim_error_text(e: &TrimError) -> String {
    use crate::error::strerror;
    match e {
        TrimError::Open(e) => format!("failed to open: {}", strerror(e)),
        TrimError::Trim(e) if matches!(e.raw_os_error(), Some(libc::ENOTTY | libc::EOPNOTSUPP)) => {
            "trim not supported".to_string()
        }
        TrimError::Trim(e) => format!("failed to trim: {}", strerror(e)),
    }
}
