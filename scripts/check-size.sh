#!/usr/bin/env bash
# The size budget of the release binaries, after `cargo build --release` (stripped by
# the profile): guestlinkd at most 3,000,000 bytes; the sizes of guestlink and
# guestlink-session are reported. Fails when guestlinkd is over its budget, or when
# the build no longer has most of the functions a layout (crates/agent/layout.order,
# crates/session/layout.order) names: a toolchain update or new dependencies renamed
# them, and an idle process would keep all its code resident again (regenerate with
# scripts/gen-layout.py).
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

# The function layouts (scripts/layout-link.rs).
for pair in guestlinkd:crates/agent guestlink-session:crates/session; do
    bin=${pair%%:*} order=${pair#*:}/layout.order
    listed=$(grep -vc '^#' "$order")
    found=$(grep -oE ':\(\.text\.(unlikely\.)?[^)]+\)$' "target/release/$bin.map" |
        sed -E 's/^:\(\.text\.(unlikely\.)?//; s/\)$//' |
        sort -u | comm -12 - <(grep -v '^#' "$order" | sort -u) | wc -l)
    echo "layout: $found of the $listed functions in $order are in the build"
    if [ $((found * 100)) -lt $((listed * 80)) ]; then
        echo "the function layout of $bin is stale: regenerate it with scripts/gen-layout.py" >&2
        exit 1
    fi
done
