#!/usr/bin/env bash
# Peak memory of guestlinkd and guestlink-session while a large clipboard goes from the
# host into the guest's session and back (QGA clipboard-set, then clipboard-get), with
# the session agent's headless clipboard. Prints each process's peak RSS (VmHWM) and its
# multiple of the data's size. The measure of how much the clipboard path copies.
#
# Usage: scripts/clipboard-rss.sh [MiB] [TARGET_DIR]   (default 32, target/release)
set -euo pipefail
mib=${1:-32}
bin=${2:-target/release}
dir=$(mktemp -d)
trap 'kill $agent $session 2>/dev/null || true; rm -rf "$dir"' EXIT
"$bin/guestlinkd" --channel "qga=unix-listen:$dir/qga.sock" --guest-socket "$dir/agent.sock" \
    --sessions none -t "$dir" >/dev/null 2>&1 &
agent=$!
for _ in $(seq 100); do [ -S "$dir/agent.sock" ] && break; sleep 0.05; done
"$bin/guestlink-session" --socket "$dir/agent.sock" run --backend headless --session s1 \
    >/dev/null 2>&1 &
session=$!
head -c $((mib << 20)) /dev/urandom >"$dir/data"
gl=("$bin/guestlink" --socket "$dir/qga.sock" --timeout 120)
for _ in $(seq 100); do "${gl[@]}" clipboard get >/dev/null 2>&1 && break; sleep 0.05; done
"${gl[@]}" clipboard set --type application/octet-stream --file "$dir/data"
"${gl[@]}" clipboard get --type application/octet-stream >"$dir/back"
cmp -s "$dir/data" "$dir/back" || { echo "clipboard-rss: the data came back changed" >&2; exit 1; }
peak() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; }
for p in "guestlinkd $agent" "guestlink-session $session"; do
    set -- $p
    kib=$(peak "$2")
    awk -v n="$1" -v k="$kib" -v m="$mib" \
        'BEGIN { printf "%-18s peak RSS %7d KiB, %.1fx the %d MiB clipboard\n", n, k, k / (m * 1024), m }'
done
