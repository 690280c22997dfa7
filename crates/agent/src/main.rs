//! guestlinkd: the guest agent daemon.
//!
//! Parses qemu-ga's command line and configuration, answers the informational options
//! (`-V`, `-D`, `-b help`), works out which channels to serve, then
//! runs them on a single-threaded tokio runtime.

// Doc comments of the command line are its --help and manual page, written for users:
// `[,uid=N]` there is option syntax, not a link.
#![allow(rustdoc::broken_intra_doc_links)]

#[cfg(unix)]
mod activation;
mod channel;
mod cli;
mod config;
#[cfg(unix)]
mod desktop;
mod frontend;
#[cfg(target_os = "linux")]
mod hotplug;
mod logging;
#[cfg(unix)]
mod notify;
#[cfg(unix)]
#[path = "unix.rs"]
mod platform;
#[cfg(windows)]
#[path = "windows/mod.rs"]
mod platform;
mod policy;
#[cfg(unix)]
mod serve;
#[cfg(unix)]
mod sessions;
#[cfg(unix)]
mod transport;
#[cfg(unix)]
mod update;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::anyhow;
use clap::Parser;
use guestlink_core::actions::Actions;
use guestlink_core::state::transfers::TransferDir;
use guestlink_core::{Agent, AgentConfig};
use guestlink_vocabulary::{commands, QGA_COMPAT_VERSION};

use crate::cli::Cli;
use crate::config::Config;

fn main() -> ExitCode {
    // Sockets from systemd, taken while this is the only thread.
    #[cfg(unix)]
    activation::init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("guestlinkd: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn wants_list(values: &[String]) -> bool {
    values.iter().any(|v| v == "help" || v == "?")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.version {
        println!("{}", guestlink_core::update::version_line());
        return Ok(());
    }
    if wants_list(&cli.block_rpcs) || wants_list(&cli.allow_rpcs) {
        let mut out = std::io::stdout().lock();
        for c in commands::COMMAND_METAS.iter().filter(|c| c.available()) {
            writeln!(out, "{}", c.name)?;
        }
        return Ok(());
    }
    #[cfg(unix)]
    if let Some(statedir) = &cli.update_guard {
        return update::guard(statedir);
    }
    if let Some(cmd) = &cli.service {
        return platform::service_command(cmd, &cli);
    }
    let config = Config::load(&cli)?;
    if cli.dump_conf {
        print!("{}", config.dump());
        return Ok(());
    }
    let policy = policy::build(&config)?;
    if cli.dump_config {
        print!("{}{}", config.dump(), policy::dump(&config, &policy));
        return Ok(());
    }
    if !cli.explain.is_empty() {
        for spec in &cli.explain {
            println!(
                "{}",
                policy::explain(&policy, spec).map_err(|e| anyhow!(e))?
            );
        }
        return Ok(());
    }
    if cli.check_config {
        let files = guestlink_core::policy::file::files(&policy::dirs(&config)).len();
        println!(
            "configuration is valid: {files} policy file(s), {} rule(s)",
            policy.rules().len()
        );
        return Ok(());
    }
    platform::serve(cli, config, policy)
}

/// The agent `config` and `policy` describe, on `platform`; `session_users` are the
/// uids of `--session-user`. Unknown names in the allow and block lists are warned of.
fn new_agent(
    config: &Config,
    policy: guestlink_core::Policy,
    session_users: Vec<u32>,
    platform: guestlink_core::Platform,
) -> anyhow::Result<Arc<Agent>> {
    let known: Vec<&str> = commands::COMMAND_METAS.iter().map(|c| c.name).collect();
    for name in policy.unknown_names(&known) {
        tracing::warn!("unknown command '{name}' in allow/block list");
    }
    Ok(Arc::new(Agent::new(
        AgentConfig {
            version: QGA_COMPAT_VERSION.to_string(),
            policy,
            statedir: config.statedir.clone(),
            fsfreeze_hook: config.fsfreeze_hook.clone(),
            transfer_dir: match config.transfer_dir.as_deref() {
                Some(d) => TransferDir::parse(d).map_err(|e| anyhow!(e))?,
                None => TransferDir::default(),
            },
            session_users,
            actions: match &config.actions_dirs {
                Some(dirs) => Actions {
                    dirs: dirs.clone(),
                    ..Actions::default()
                },
                None => Actions::default(),
            },
            update: platform::update_config(config),
        },
        platform,
    )))
}
