#!/usr/bin/env bash
# Regenerates what is generated from the code: the manual pages (from the clap
# definitions behind --help) and the protocol reference (from the command vocabulary).
# Tests fail when the checked-in files differ from what this writes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin guestlinkd --bin guestlinkd-docs --bin guestlink --bin guestlink-session
# One page per binary and one per subcommand (guestlink-exporter.1, ...).
rm -f docs/man/*.1 docs/man/*.8
./target/debug/guestlinkd-docs --generate-man-dir docs/man
./target/debug/guestlink --generate-man-dir docs/man
./target/debug/guestlink-session --generate-man-dir docs/man
./target/debug/guestlink schema --markdown > docs/protocol.md
