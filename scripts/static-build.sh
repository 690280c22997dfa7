#!/usr/bin/env bash
# Static guestlinkd, guestlink-session and guestlink for images without a userland
# (initramfs, minimal cloud images) and for the agent image (`guestlink iso --from`):
# glibc linked in (static-pie), no shared library needed; users are resolved through
# the guest's getent (docs/delivery.md). For the build machine's architecture it then
# prints guestlinkd's size beside qemu-ga's binary plus the shared libraries it loads
# (docs/benchmarks.md).
#
# Usage: scripts/static-build.sh [TARGET]
#   TARGET defaults to the build machine's (x86_64-unknown-linux-gnu here);
#   aarch64-unknown-linux-gnu cross-builds with Debian's gcc-aarch64-linux-gnu and
#   libc6-dev-arm64-cross, and runs the results under qemu-aarch64-static
#   (qemu-user-static) to check them.
# Output: target/TARGET/minsize/ (profile minsize: size over speed, LTO, stripped).
set -euo pipefail
cd "$(dirname "$0")/.."
host="$(rustc -vV | sed -n 's/^host: //p')"
target="${1:-$host}"
run=()
case "$target" in
"$host") ;;
aarch64-unknown-linux-gnu)
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    run=(qemu-aarch64-static)
    ;;
*) echo "static-build.sh: no cross toolchain set up for $target" >&2; exit 2 ;;
esac
# rust-lld cannot resolve glibc's versioned symbols in libc.a; the system linker can.
RUSTFLAGS="-C target-feature=+crt-static -C link-arg=-fuse-ld=bfd" \
    cargo build --profile minsize --quiet --target "$target" -p guestlinkd -p guestlink-session \
        -p guestlink 2>&1 \
    | grep -v "statically linked applications requires at runtime" || true
for b in guestlinkd guestlink-session guestlink; do
    bin="target/$target/minsize/$b"
    # A static executable has no program interpreter (PT_INTERP); this holds for any
    # architecture, where ldd only reads the build machine's.
    if readelf -lW "$bin" | grep -q "Requesting program interpreter"; then
        echo "$bin is not static:"; readelf -lW "$bin" | grep interpreter; exit 1
    fi
    "${run[@]}" "$bin" --version
done
bin="target/$target/minsize/guestlinkd"
size() { stat -L -c %s "$1"; }
ours=$(size "$bin")
printf '%-44s %10s\n' "guestlinkd ($target), static, stripped" "$ours bytes"
[ "$target" = "$host" ] || exit 0
if [ -x /usr/sbin/qemu-ga ]; then
    total=$(size /usr/sbin/qemu-ga)
    printf '%-44s %10s\n' "/usr/sbin/qemu-ga" "$(size /usr/sbin/qemu-ga)"
    for lib in $(ldd /usr/sbin/qemu-ga | grep -o '/[^ ]*'); do
        real=$(readlink -f "$lib"); s=$(size "$real"); total=$((total + s))
        printf '  %-42s %10s\n' "$lib" "$s"
    done
    printf '%-44s %10s\n' "qemu-ga + shared libraries" "$total bytes"
    awk -v a="$ours" -v b="$total" 'BEGIN { printf "ratio (stripped guestlinkd / qemu-ga with libraries): %.2f\n", a / b }'
fi
