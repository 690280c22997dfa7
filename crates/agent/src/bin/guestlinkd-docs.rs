//! guestlinkd-docs: guestlinkd's manual page and shell completions, from the same clap
//! definition as `guestlinkd --help` (`--generate-man`, `--generate-man-dir DIR`,
//! `--generate-completions SHELL`). A binary of its own so that the daemon, which sits
//! in every guest, carries no man page or completion generators; packaging runs it at
//! build time.

// The command line's doc comments are written for users: `[,uid=N]` is option syntax.
#![allow(rustdoc::broken_intra_doc_links)]

#[path = "../cli.rs"]
#[allow(dead_code)]
mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    guestlink_clidocs::handle(<cli::Cli as clap::CommandFactory>::command, "8").unwrap_or_else(
        || {
            eprintln!(
                "usage: guestlinkd-docs --generate-man | --generate-man-dir DIR | --generate-completions SHELL"
            );
            ExitCode::from(2)
        },
    )
}
