#!/usr/bin/env bash
# Peak memory of `guestlink cp` and guestlinkd while copying a large file to the guest
# and back (a private guestlinkd on a unix socket; the file is sparse-free random data).
# Usage: scripts/bench-cp.sh [GiB] (default 4). Needs twice that much free space in
# $TMPDIR (or /tmp) and the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
gib="${1:-4}"
dir="$(mktemp -d "${TMPDIR:-/tmp}/guestlink-bench-cp.XXXXXX")"
trap 'kill "$agent" 2>/dev/null || true; rm -rf "$dir"' EXIT
./target/release/guestlinkd -m unix-listen -p "$dir/sock" -t "$dir" &
agent=$!
for _ in $(seq 50); do [ -S "$dir/sock" ] && break; sleep 0.1; done
head -c "$((gib << 30))" /dev/urandom > "$dir/src"
rss() { awk '/VmHWM/ {print $2}' "/proc/$agent/status"; }
echo "file: ${gib} GiB; guestlinkd peak RSS before: $(rss) KiB"
for way in up down; do
    if [ "$way" = up ]; then args=("$dir/src" "guest:$dir/in-guest"); else args=("guest:$dir/in-guest" "$dir/back"); fi
    /usr/bin/time -f "guestlink cp ($way): %e s, peak RSS %M KiB" \
        ./target/release/guestlink -s "$dir/sock" --timeout 600 cp "${args[@]}"
    echo "guestlinkd peak RSS after the copy $way: $(rss) KiB"
    [ "$way" = up ] && rm -f "$dir/src"
done
rm -f "$dir/in-guest" "$dir/back"
