#!/usr/bin/env bash
# guestlinkd for Windows guests, cross-built on Linux: the rustup target
# x86_64-pc-windows-gnu with Debian's MinGW-w64 linker, then the MSI with wixl
# (msitools), as QEMU builds qemu-ga's.
# Output: target/windows/guestlinkd.exe and target/windows/guestlink-VERSION-x86_64.msi;
# target/windows/test/ holds what the Wine test needs beside them (a bcryptprimitives
# shim: Wine 8 lacks the DLL that Rust's standard library calls on Windows 10+).
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-pc-windows-gnu
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
for tool in x86_64-w64-mingw32-gcc wixl; do
    command -v "$tool" >/dev/null || {
        echo "build-windows: $tool is missing (apt-get install gcc-mingw-w64-x86-64 wixl)" >&2
        exit 1
    }
done
cargo build --release --quiet --target "$target" -p guestlinkd --bin guestlinkd
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
out=target/windows
mkdir -p "$out/test"
cp "target/$target/release/guestlinkd.exe" "$out/guestlinkd.exe"
msi="$out/guestlink-$version-x86_64.msi"
wixl -a x64 -D "Version=$version" -D "Bin=$out/guestlinkd.exe" \
    -D "Policy=dist/policy.d/50-default.toml" -o "$msi" dist/windows/guestlink.wxs
x86_64-w64-mingw32-gcc -O2 -shared -Wl,--kill-at -o "$out/test/bcryptprimitives.dll" \
    tests/windows/bcryptprimitives.c -ladvapi32
printf '%-44s %10s bytes\n' "$out/guestlinkd.exe" "$(stat -c %s "$out/guestlinkd.exe")"
printf '%-44s %10s bytes\n' "$msi" "$(stat -c %s "$msi")"
