//! guestlinkd-docs: guestlinkd's manual page and shell completions, from the same clap
//! definition as `guestlinkd --help` (`--generate-man`, `--generate-man-dir DIR`,
//! `--generate-completions SHELL`), and the command vocabulary's JSON schema
//! (`--dump-schema`) and Markdown reference (`--dump-reference`, docs/protocol.md). A
//! binary of its own so that the daemon, which sits in every guest, carries no
//! documentation generators; packaging runs it at build time, and `guestlink schema`
//! prints the same schema on the host.

// The command line's doc comments are written for users: `[,uid=N]` is option syntax.
#![allow(rustdoc::broken_intra_doc_links)]

#[path = "../cli.rs"]
#[allow(dead_code)]
mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("--dump-schema") => {
            let doc = guestlink_vocabulary::commands::schema_document(env!("CARGO_PKG_VERSION"));
            println!("{doc:#}");
            return ExitCode::SUCCESS;
        }
        Some("--dump-reference") => {
            print!("{}", guestlink_vocabulary::reference::markdown());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    guestlink_clidocs::handle(<cli::Cli as clap::CommandFactory>::command, "8").unwrap_or_else(
        || {
            eprintln!(
                "usage: guestlinkd-docs --generate-man | --generate-man-dir DIR | --generate-completions SHELL | --dump-schema | --dump-reference"
            );
            ExitCode::from(2)
        },
    )
}
