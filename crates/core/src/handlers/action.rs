//! Running the administrator's actions for the host (`__org.guestlink_action-run`) and
//! listing them. The gate checks `action:NAME` and what the action declares it needs
//! (the handler's [`Handler::gates`]) before it is found, run and reported here.

use crate::agent::Agent;
use crate::context::Context;
use crate::dispatch::Handler;
use crate::error::CommandError;
use crate::policy::Decision;
use guestlink_vocabulary::commands::{GuestlinkActionList, GuestlinkActionRun};
use guestlink_vocabulary::types::{ActionInfo, ActionResult, ActionRunArgs, Empty};
use guestlink_vocabulary::Command as _;

/// `action:NAME` and what the action needs.
fn action_gates(name: &str, needs: &[String]) -> Vec<String> {
    std::iter::once(format!("action:{name}"))
        .chain(needs.iter().cloned())
        .collect()
}

impl Handler for GuestlinkActionRun {
    /// `action:NAME`, then each command the action needs (`guest-exec` when it
    /// declares nothing). Just `action:NAME` for an action that does not exist (the
    /// handler then says so).
    fn gates(agent: &Agent, args: &ActionRunArgs) -> Vec<String> {
        let needs = agent
            .actions()
            .find(&args.name)
            .map(|found| crate::actions::needs(&found.path))
            .unwrap_or_default();
        action_gates(&args.name, &needs)
    }

    async fn handle(ctx: Context<'_>, args: ActionRunArgs) -> Result<ActionResult, CommandError> {
        let actions = ctx.agent.actions();
        let found = actions
            .find(&args.name)
            .ok_or_else(|| CommandError::new(format!("no action '{}'", args.name)))?;
        let argv: Vec<String> = args.arg.unwrap_or_default();
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        tracing::info!(action = %found.path.display(), "running an action for the host");
        let o = actions
            .run_with_input(
                &found.path,
                &argv,
                &[("GUESTLINK_ACTION", found.name.as_str())],
                args.input_data.map(|d| d.0),
            )
            .await
            .map_err(|e| {
                CommandError::new(format!("failed to run action '{}': {e}", found.name))
            })?;
        Ok(ActionResult {
            exitcode: o.code.map(i64::from),
            signal: o.signal.map(i64::from),
            timed_out: o.timed_out,
            out_data: o.stdout.into(),
            err_data: o.stderr.into(),
            truncated: o.truncated,
        })
    }
}

impl Handler for GuestlinkActionList {
    async fn handle(ctx: Context<'_>, _args: Empty) -> Result<Vec<ActionInfo>, CommandError> {
        Ok(ctx
            .agent
            .actions()
            .actions()
            .into_iter()
            .map(|f| {
                let needs = crate::actions::needs(&f.path);
                // The same names the gate checks when it is run.
                let enabled = std::iter::once(GuestlinkActionRun::NAME.to_string())
                    .chain(action_gates(&f.name, &needs))
                    .all(|n| ctx.agent.decide(&n, ctx.call) == Decision::Allow);
                ActionInfo {
                    name: f.name,
                    needs,
                    enabled,
                }
            })
            .collect())
    }
}
