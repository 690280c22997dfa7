//! The documentation each binary prints of itself, from the same clap definition as
//! its `--help`: `--generate-man` writes its manual page (`docs/man/`, the package's
//! man pages) and `--generate-completions SHELL` its completion script (bash, zsh,
//! fish, elvish, powershell). Both are hidden flags, taken before the normal parse so
//! they need none of the binary's required arguments.

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
