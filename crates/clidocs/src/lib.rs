//! The documentation each binary prints of itself, from the same clap definition as
//! its `--help`: `--generate-man` writes its manual page, `--generate-man-dir DIR` that
//! page and one per subcommand (`guestlink-exporter.1`, as git names them; these are
//! `docs/man/` and the package's man pages), and `--generate-completions SHELL` its
//! completion script (bash, zsh, fish, elvish, powershell). Both are hidden flags, taken before the normal parse so
//! they need none of the binary's required arguments.

#![forbid(unsafe_code)]

use std::process::ExitCode;

/// Handles `--generate-man` / `--generate-completions SHELL` when they are the first
/// argument: writes to standard output and returns the exit status. Returns `None`
/// for any other command line.
pub fn handle(command: impl FnOnce() -> clap::Command, section: &str) -> Option<ExitCode> {
    let mut args = std::env::args().skip(1);
    let first = args.next()?;
    let out = &mut std::io::stdout();
    match first.as_str() {
        "--generate-man" => {
            let man = clap_mangen::Man::new(command()).section(section);
            Some(match man.render(out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(1),
            })
        }
        "--generate-man-dir" => {
            let Some(dir) = args.next() else {
                eprintln!("--generate-man-dir needs a directory");
                return Some(ExitCode::from(2));
            };
            let result = pages(command(), section)
                .into_iter()
                .try_for_each(|(name, page)| {
                    std::fs::write(std::path::Path::new(&dir).join(name), page)
                });
            Some(match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cannot write the manual pages to {dir}: {e}");
                    ExitCode::from(1)
                }
            })
        }
        "--generate-completions" => {
            let shell = args
                .next()
                .and_then(|s| s.parse::<clap_complete::Shell>().ok());
            let Some(shell) = shell else {
                eprintln!("--generate-completions needs bash, zsh, fish, elvish or powershell");
                return Some(ExitCode::from(2));
            };
            let mut cmd = command();
            let name = cmd.get_name().to_string();
            clap_complete::generate(shell, &mut cmd, name, out);
            Some(ExitCode::SUCCESS)
        }
        _ => None,
    }
}

/// The manual pages of a command: its own (`NAME.SECTION`) and one for each visible
/// subcommand (`NAME-SUB.SECTION`), with the options the parent passes down.
pub fn pages(command: clap::Command, section: &str) -> Vec<(String, Vec<u8>)> {
    let mut command = command;
    command.build();
    let name = command.get_name().to_string();
    let render = |cmd: clap::Command| {
        let mut out = Vec::new();
        // Rendering into memory cannot fail.
        let _ = clap_mangen::Man::new(cmd).section(section).render(&mut out);
        out
    };
    let mut pages = vec![(format!("{name}.{section}"), render(command.clone()))];
    for sub in command.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let full = format!("{name}-{}", sub.get_name());
        let page = sub
            .clone()
            .name(full.clone())
            .bin_name(format!("{name} {}", sub.get_name()));
        pages.push((format!("{full}.{section}"), render(page)));
    }
    pages
}
