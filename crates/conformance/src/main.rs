//! `guestlink-conformance`: runs the QGA conformance suite against an agent binary
//! (`--agent PATH`, every case) or an agent behind a socket (`--socket PATH`, e.g. the
//! host end of a VM's virtio-serial port). Exits 1 when a case fails.

#![forbid(unsafe_code)]

use clap::Parser;
use guestlink_conformance::runner::Options;
use guestlink_conformance::{run, Launcher, Target};

/// Run the QEMU Guest Agent conformance suite.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Start this agent binary for the run (QEMU's harness: unix-listen, -t and cwd in
    /// a scratch directory).
    #[arg(long, conflicts_with = "socket", required_unless_present = "socket")]
    agent: Option<std::path::PathBuf>,
    /// Use the agent listening on this socket.
    #[arg(long)]
    socket: Option<std::path::PathBuf>,
    /// Also run cases that change the guest (SSH keys); only on a disposable guest.
    #[arg(long, requires = "ssh_user")]
    guest_changes: bool,
    /// The account whose SSH keys those cases rewrite.
    #[arg(long)]
    ssh_user: Option<String>,
    /// Only these case ids (T01, X13, ...).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let target = match (cli.agent, cli.socket) {
        (Some(a), _) => Target::Launch(Launcher::new(a)),
        (None, Some(s)) => Target::Socket(s),
        (None, None) => anyhow::bail!("give --agent or --socket"),
    };
    let report = run(
        &target,
        &Options {
            guest_changes: cli.guest_changes,
            ssh_user: cli.ssh_user,
            only: cli.only,
        },
    );
    print!("{}", report.render());
    if !report.failed().is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
