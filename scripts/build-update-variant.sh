#!/usr/bin/env bash
# A static guestlinkd whose version says it is another build (GUESTLINK_VERSION at
# build time), for `guestlink update` in the systemd guest (tests/package/boot.py).
# Built with scripts/static-build.sh's settings, so only guestlinkd is rebuilt; run it
# after that script (it replaces the static guestlinkd there) and after any use of the
# static build. Output: target/update-test/guestlinkd.
set -euo pipefail
cd "$(dirname "$0")/.."
host="$(rustc -vV | sed -n 's/^host: //p')"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)+update-test"
GUESTLINK_VERSION="$version" RUSTFLAGS="-C target-feature=+crt-static -C link-arg=-fuse-ld=bfd" \
    cargo build --profile minsize --quiet --target "$host" -p guestlinkd 2>&1 \
    | grep -v "statically linked applications requires at runtime" || true
mkdir -p target/update-test
cp "target/$host/minsize/guestlinkd" target/update-test/guestlinkd
target/update-test/guestlinkd -V
