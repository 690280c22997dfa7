//! guestlink: the host-side CLI.
//!
//! `guestlink --socket PATH ping|info|call JSON` talks to the host end of an agent
//! channel; `guestlink demo` starts a private guestlinkd on a temporary socket, shows
//! what it answers, and stops it.

mod demo;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use guestlink_client::Client;
use guestlink_vocabulary::commands::{GuestInfo, GuestPing};
use guestlink_vocabulary::types::Empty;

/// Drive a guest agent (guestlinkd or qemu-ga) from the host.
#[derive(Debug, Parser)]
#[command(name = "guestlink", version)]
struct Cli {
    /// Host end of the agent channel (a unix socket).
    #[arg(long, short = 's', global = true, env = "GUESTLINK_SOCKET")]
    socket: Option<PathBuf>,
    /// Seconds to wait for each reply.
    #[arg(long, global = true, default_value_t = 10.0)]
    timeout: f64,
    /// Print raw JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Check that the agent answers.
    Ping,
    /// Agent version and its commands.
    Info,
    /// Send one raw request, e.g. '{"execute":"guest-get-time"}', and print the reply.
    Call {
        /// The request object.
        request: String,
    },
    /// Start a private guestlinkd on a temporary socket, talk to it, and stop it.
    Demo {
        /// The guestlinkd binary (default: next to this one, else on PATH).
        #[arg(long)]
        agent: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("guestlink: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("guestlink: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn connect(cli: &Cli) -> anyhow::Result<Client> {
    let socket = cli
        .socket
        .as_ref()
        .context("no agent socket given: use --socket PATH (or GUESTLINK_SOCKET)")?;
    Ok(Client::connect_unix(socket, Duration::from_secs_f64(cli.timeout)).await?)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Cmd::Demo { agent } => demo::run(agent.clone(), Duration::from_secs_f64(cli.timeout)).await,
        Cmd::Ping => {
            let mut c = connect(&cli).await?;
            let start = std::time::Instant::now();
            c.call::<GuestPing>(&Empty {}).await?;
            println!(
                "agent answered in {:.3} ms",
                start.elapsed().as_secs_f64() * 1e3
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Info => {
            let mut c = connect(&cli).await?;
            let info = c.call::<GuestInfo>(&Empty {}).await?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print!("{}", render::info(&info));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Call { request } => {
            let req: serde_json::Value =
                serde_json::from_str(request).context("the request is not valid JSON")?;
            let mut c = connect(&cli).await?;
            let reply = c.call_raw(&req).await?;
            println!(
                "{}",
                if cli.json {
                    reply.to_string()
                } else {
                    serde_json::to_string_pretty(&reply)?
                }
            );
            Ok(if reply.get("error").is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
