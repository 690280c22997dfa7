//! Lifecycle hooks: what the guest's administrator wants done before and after a
//! migration or a hibernation (oVirt's `hooks.d`), as actions under `lifecycle/EVENT/`
//! in the actions directories. A hook that fails is logged with its output and does
//! not stop the others.

use std::path::Path;

use guestlink_vocabulary::commands::GuestlinkLifecycleEvent;
use guestlink_vocabulary::types::{HookResult, LifecycleEventArgs};

use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;
use crate::policy::Decision;

/// The events hooks exist for.
pub const LIFECYCLE_EVENTS: &[&str] = &[
    "before_migration",
    "after_migration",
    "before_hibernation",
    "after_hibernation",
];

impl Handler for GuestlinkLifecycleEvent {
    async fn handle(
        ctx: Context<'_>,
        args: LifecycleEventArgs,
    ) -> Result<Vec<HookResult>, CommandError> {
        let event = args.event.as_str();
        if !LIFECYCLE_EVENTS.contains(&event) {
            return Err(CommandError::new(format!(
                "unknown lifecycle event '{event}' (expected {})",
                LIFECYCLE_EVENTS.join(", ")
            )));
        }
        let failure = if args.failure.unwrap_or(false) {
            "1"
        } else {
            "0"
        };
        let actions = ctx.agent.actions();
        let hooks = actions.list(&Path::new("lifecycle").join(event));
        let mut results = Vec::with_capacity(hooks.len());
        for hook in hooks {
            // A hook is the administrator's, not the host's: it runs unless what it
            // declares it needs is refused on this channel.
            let refused = crate::actions::declared_needs(&hook.path)
                .unwrap_or_default()
                .into_iter()
                .find(|n| ctx.agent.decide(n, ctx.call) != Decision::Allow);
            if let Some(need) = refused {
                tracing::info!(hook = %hook.path.display(), need = %need, "lifecycle hook not run: the policy refuses what it needs");
                results.push(HookResult {
                    name: hook.name,
                    denied: Some(true),
                    ..HookResult::default()
                });
                continue;
            }
            let env = [("GUESTLINK_EVENT", event), ("GUESTLINK_FAILURE", failure)];
            let result = match actions.run(&hook.path, &[event], &env).await {
                Ok(o) => {
                    if !o.success() {
                        tracing::warn!(
                            hook = %hook.path.display(),
                            code = ?o.code,
                            signal = ?o.signal,
                            timed_out = o.timed_out,
                            stdout = %String::from_utf8_lossy(&o.stdout),
                            stderr = %String::from_utf8_lossy(&o.stderr),
                            "lifecycle hook failed"
                        );
                    }
                    HookResult {
                        name: hook.name,
                        exitcode: o.code.map(i64::from),
                        signal: o.signal.map(i64::from),
                        timed_out: o.timed_out,
                        denied: None,
                    }
                }
                Err(e) => {
                    tracing::warn!(hook = %hook.path.display(), "lifecycle hook not started: {e}");
                    HookResult {
                        name: hook.name,
                        exitcode: Some(127),
                        signal: None,
                        timed_out: false,
                        denied: None,
                    }
                }
            };
            results.push(result);
        }
        tracing::info!(event, hooks = results.len(), "lifecycle event handled");
        Ok(results)
    }
}
