#!/bin/sh
# Builds the Debian package: the release binaries, the assets generated from the clap
# definitions (man pages gzipped, bash/zsh/fish completions for the three binaries),
# then `cargo deb` (cargo install cargo-deb). The .deb lands in target/debian/.
set -eu
cd "$(dirname "$0")/.."

cargo build --release -p guestlinkd -p guestlink -p guestlink-session -p guestlink-pam
out=build/deb-assets
rm -rf "$out"
mkdir -p "$out/man" "$out/bash" "$out/zsh" "$out/fish"
for page in docs/man/*; do
    gzip -9 -n -c "$page" >"$out/man/$(basename "$page").gz"
done
# guestlinkd's come from guestlinkd-docs, which is not shipped.
for bin in guestlinkd guestlink guestlink-session; do
    gen=target/release/$bin
    [ "$bin" = guestlinkd ] && gen=target/release/guestlinkd-docs
    $gen --generate-completions bash >"$out/bash/$bin"
    $gen --generate-completions zsh >"$out/zsh/_$bin"
    $gen --generate-completions fish >"$out/fish/$bin.fish"
done
cargo deb -p guestlinkd --no-build --output target/debian/
