#!/usr/bin/env bash
# Regenerates what is generated from the code: the manual pages (from the clap
# definitions behind --help) and the protocol reference (from the command vocabulary).
# Tests fail when the checked-in files differ from what this writes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin guestlinkd --bin guestlink --bin guestlink-session
./target/debug/guestlinkd --generate-man > docs/man/guestlinkd.8
./target/debug/guestlink --generate-man > docs/man/guestlink.1
./target/debug/guestlink-session --generate-man > docs/man/guestlink-session.1
./target/debug/guestlinkd --dump-reference > docs/protocol.md
