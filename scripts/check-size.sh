#!/usr/bin/env bash
# The size budget of the release binaries, after `cargo build --release` (stripped by
# the profile): guestlinkd at most 3,000,000 bytes; the sizes of guestlink and
# guestlink-session are reported. Fails when guestlinkd is over its budget.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=3000000
size() { stat -L -c %s "$1"; }
for bin in guestlinkd guestlink guestlink-session; do
    printf '%-20s %10s bytes\n' "$bin" "$(size "target/release/$bin")"
done
d=$(size target/release/guestlinkd)
if [ "$d" -gt "$budget" ]; then
    echo "guestlinkd is $d bytes, over its budget of $budget (docs/benchmarks.md)" >&2
    exit 1
fi
echo "guestlinkd is within its budget of $budget bytes"
