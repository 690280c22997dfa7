//! Commands that change the machine: shutdown, suspend, clock, CPUs, memory blocks.
//! Arguments are checked here with qemu-ga's texts; the action itself is the
//! platform's [`Machine`](crate::platform::Machine), which tests replace.

use guestlink_vocabulary::commands::{
    GuestSetMemoryBlocks, GuestSetTime, GuestSetVcpus, GuestShutdown, GuestSuspendDisk,
    GuestSuspendHybrid, GuestSuspendRam, GuestlinkShutdown,
};
use guestlink_vocabulary::types::{
    Empty, GuestMemoryBlockResponse, GuestSetMemoryBlocksArgs, GuestSetTimeArgs, GuestSetVcpusArgs,
    GuestShutdownArgs, GuestlinkShutdownArgs,
};

use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;
use crate::platform::{ShutdownMode, SuspendMode};

/// 2070-01-01T00:00:00Z: qemu-ga accepts years 1970 to 2069.
const YEAR_2070: i64 = 3_155_760_000;

/// Runs a machine action off the async thread (helpers like hwclock can be slow).
pub(crate) async fn act<T: Send + 'static>(
    ctx: &Context<'_>,
    f: impl FnOnce(&dyn crate::platform::Machine) -> T + Send + 'static,
) -> Result<T, CommandError> {
    let m = ctx.agent.platform().machine.clone();
    super::off_thread(move || f(&*m)).await
}

fn shutdown_mode(mode: Option<&str>) -> Result<ShutdownMode, CommandError> {
    match mode {
        None | Some("powerdown") => Ok(ShutdownMode::Powerdown),
        Some("halt") => Ok(ShutdownMode::Halt),
        Some("reboot") => Ok(ShutdownMode::Reboot),
        // The unbalanced parenthesis is qemu-ga's.
        Some(_) => Err(CommandError::new(
            "mode is invalid (valid values are: halt|powerdown|reboot",
        )),
    }
}

/// The longest message broadcast before a shutdown.
const SHUTDOWN_MESSAGE_MAX: usize = 1024;

/// What users are told when the host gives no message.
const DEFAULT_SHUTDOWN_MESSAGE: &str = "hypervisor initiated shutdown";

/// A host's message made safe for terminals: control characters (escape sequences
/// included) become spaces, and it is cut at `SHUTDOWN_MESSAGE_MAX` bytes.
pub fn terminal_safe(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(SHUTDOWN_MESSAGE_MAX));
    for c in message.chars() {
        if out.len() + c.len_utf8() > SHUTDOWN_MESSAGE_MAX {
            break;
        }
        out.push(if c.is_control() && c != '\n' { ' ' } else { c });
    }
    out
}

impl Handler for GuestlinkShutdown {
    async fn handle(ctx: Context<'_>, args: GuestlinkShutdownArgs) -> Result<Empty, CommandError> {
        let mode = shutdown_mode(args.mode.as_deref())?;
        let delay = args.delay.unwrap_or(0);
        if delay < 0 {
            return Err(CommandError::new(
                "Parameter 'delay' expects a number of seconds, 0 or more",
            ));
        }
        // shutdown(8) counts in minutes: a delay is rounded up so users get at least it.
        let minutes = u32::try_from((delay as u64).div_ceil(60)).unwrap_or(u32::MAX);
        let message = terminal_safe(args.message.as_deref().unwrap_or(DEFAULT_SHUTDOWN_MESSAGE));
        tracing::warn!(?mode, minutes, "shutdown scheduled by the host");
        act(&ctx, move |m| m.schedule_shutdown(mode, minutes, &message))
            .await?
            .map_err(CommandError::new)?;
        Ok(Empty {})
    }
}

impl Handler for GuestShutdown {
    async fn handle(ctx: Context<'_>, args: GuestShutdownArgs) -> Result<Empty, CommandError> {
        let mode = shutdown_mode(args.mode.as_deref())?;
        tracing::warn!(?mode, "shutdown requested by the host");
        if let Some(done) = power_action(&ctx, "shutdown", shutdown_word(mode)).await {
            return done;
        }
        act(&ctx, move |m| m.shutdown(mode))
            .await?
            .map_err(CommandError::new)?;
        Ok(Empty {})
    }
}

fn shutdown_word(mode: ShutdownMode) -> &'static str {
    match mode {
        ShutdownMode::Powerdown => "powerdown",
        ShutdownMode::Halt => "halt",
        ShutdownMode::Reboot => "reboot",
    }
}

/// Where qemu-ga runs a fixed helper (shutdown(8), pm-utils), an action the
/// distribution or the administrator put at `power/NAME` in the actions directories
/// runs instead, with the mode as its argument. `None`: there is none, use the
/// platform.
async fn power_action(
    ctx: &Context<'_>,
    name: &str,
    mode: &str,
) -> Option<Result<Empty, CommandError>> {
    let actions = ctx.agent.actions();
    let found = actions
        .list(std::path::Path::new("power"))
        .into_iter()
        .find(|f| f.name == name)?;
    tracing::info!(action = %found.path.display(), mode, "power action instead of the built-in helper");
    Some(match actions.run(&found.path, &[mode], &[]).await {
        Ok(o) if o.success() => Ok(Empty {}),
        Ok(_) => Err(CommandError::new(format!(
            "child process has failed to {name}"
        ))),
        Err(e) => Err(CommandError::new(format!("failed to {name}: {e}"))),
    })
}

async fn suspend(ctx: Context<'_>, mode: SuspendMode) -> Result<Empty, CommandError> {
    tracing::warn!(?mode, "suspend requested by the host");
    let word = match mode {
        SuspendMode::Disk => "disk",
        SuspendMode::Ram => "ram",
        SuspendMode::Hybrid => "hybrid",
    };
    if let Some(done) = power_action(&ctx, "suspend", word).await {
        return done;
    }
    act(&ctx, move |m| m.suspend(mode))
        .await?
        .map_err(CommandError::new)?;
    Ok(Empty {})
}

impl Handler for GuestSuspendDisk {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<Empty, CommandError> {
        suspend(ctx, SuspendMode::Disk).await
    }
}

impl Handler for GuestSuspendRam {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<Empty, CommandError> {
        suspend(ctx, SuspendMode::Ram).await
    }
}

impl Handler for GuestSuspendHybrid {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<Empty, CommandError> {
        suspend(ctx, SuspendMode::Hybrid).await
    }
}

impl Handler for GuestSetTime {
    async fn handle(ctx: Context<'_>, args: GuestSetTimeArgs) -> Result<Empty, CommandError> {
        match args.time {
            Some(ns) => {
                let secs = ns / 1_000_000_000;
                let micros = (ns % 1_000_000_000) / 1000;
                if !(0..YEAR_2070).contains(&secs) || ns < 0 {
                    return Err(CommandError::new("Invalid time"));
                }
                tracing::warn!(secs, "setting the clock");
                act(&ctx, move |m| {
                    m.set_clock(secs, micros)
                        .map_err(|e| format!("Failed to set time to guest: {e}"))?;
                    m.sync_rtc(true)
                })
                .await?
                .map_err(CommandError::new)?;
            }
            None => {
                tracing::warn!("setting the clock from the RTC");
                act(&ctx, |m| m.sync_rtc(false))
                    .await?
                    .map_err(CommandError::new)?;
            }
        }
        Ok(Empty {})
    }
}

impl Handler for GuestSetVcpus {
    async fn handle(ctx: Context<'_>, args: GuestSetVcpusArgs) -> Result<i64, CommandError> {
        let vcpus = args.vcpus;
        act(&ctx, move |m| {
            let mut done = 0i64;
            for v in &vcpus {
                match m.set_vcpu(v.logical_id, v.online) {
                    Ok(()) => done += 1,
                    Err(e) if done == 0 => return Err(CommandError::new(e)),
                    Err(e) => {
                        tracing::info!(cpu = v.logical_id, "stopping at CPU: {e}");
                        break;
                    }
                }
            }
            Ok(done)
        })
        .await?
    }
}

impl Handler for GuestSetMemoryBlocks {
    async fn handle(
        ctx: Context<'_>,
        args: GuestSetMemoryBlocksArgs,
    ) -> Result<Vec<GuestMemoryBlockResponse>, CommandError> {
        let blocks = args.mem_blks;
        act(&ctx, move |m| {
            blocks
                .iter()
                .map(|b| {
                    let (response, error_code) = m.set_memory_block(b.phys_index, b.online);
                    GuestMemoryBlockResponse {
                        phys_index: b.phys_index,
                        response,
                        error_code,
                    }
                })
                .collect()
        })
        .await
    }
}
