//! The generated documents are current: `docs/man/guestlinkd.8` is what
//! `guestlinkd-docs --generate-man` writes (from the clap definitions behind `--help`, and
//! every option of `--help` is in it), and `docs/protocol.md` is what
//! `guestlinkd-docs --dump-reference` writes from the vocabulary. Regenerate with `scripts/gen-docs.sh`.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_guestlinkd");
const DOCS: &str = env!("CARGO_BIN_EXE_guestlinkd-docs");

fn output(args: &[&str]) -> String {
    let bin = if args[0].starts_with("--generate") || args[0].starts_with("--dump") {
        DOCS
    } else {
        BIN
    };
    let out = Command::new(bin).args(args).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn checked_in(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn the_manual_page_is_current_and_has_every_option() {
    let man = output(&["--generate-man"]);
    assert!(
        man == checked_in("docs/man/guestlinkd.8"),
        "docs/man/guestlinkd.8 is stale: run scripts/gen-docs.sh"
    );
    let help = output(&["--help"]);
    for word in help.split_whitespace() {
        if let Some(opt) = word.strip_prefix("--") {
            let end = opt
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(opt.len());
            let opt = opt[..end].trim_end_matches('-');
            if opt.is_empty() {
                continue;
            }
            assert!(
                man.contains(&format!("\\-\\-{}", opt.replace('-', "\\-"))),
                "--{opt} is missing from the manual page"
            );
        }
    }
}

#[test]
fn the_protocol_reference_is_current() {
    let reference = output(&["--dump-reference"]);
    assert!(
        reference == checked_in("docs/protocol.md"),
        "docs/protocol.md is stale: run scripts/gen-docs.sh"
    );
    // Every command of guest-info is in it.
    for name in guestlink_vocabulary::commands::ALL_COMMANDS
        .iter()
        .map(|c| c.meta.name)
    {
        assert!(reference.contains(&format!("### `{name}`")), "{name}");
    }
}
