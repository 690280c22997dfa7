#!/usr/bin/env bash
# Static guestlinkd, guestlink-session and guestlink for images without a userland
# (initramfs, minimal cloud images) and for the agent image (`guestlink iso --from`):
# glibc linked in (static-pie), no shared library needed; users are resolved through
# the guest's getent (docs/delivery.md). Then guestlinkd's size beside qemu-ga's binary
# plus the shared libraries it loads (docs/benchmarks.md).
# Output: target/x86_64-unknown-linux-gnu/minsize/ (profile minsize: size over speed,
# LTO, stripped).
set -euo pipefail
cd "$(dirname "$0")/.."
host="$(rustc -vV | sed -n 's/^host: //p')"
# rust-lld cannot resolve glibc's versioned symbols in libc.a; the system linker can.
RUSTFLAGS="-C target-feature=+crt-static -C link-arg=-fuse-ld=bfd" \
    cargo build --profile minsize --quiet --target "$host" -p guestlinkd -p guestlink-session \
        -p guestlink 2>&1 \
    | grep -v "statically linked applications requires at runtime" || true
for b in guestlinkd guestlink-session guestlink; do
    bin="target/$host/minsize/$b"
    if ldd "$bin" >/dev/null 2>&1 && ! ldd "$bin" 2>&1 | grep -q "statically linked"; then
        echo "$bin is not static:"; ldd "$bin"; exit 1
    fi
    "$bin" --version
done
bin="target/$host/minsize/guestlinkd"
size() { stat -L -c %s "$1"; }
ours=$(size "$bin")
ours_stripped=$ours
printf '%-44s %10s\n' "guestlinkd, static, stripped" "$ours bytes"
if [ -x /usr/sbin/qemu-ga ]; then
    total=$(size /usr/sbin/qemu-ga)
    printf '%-44s %10s\n' "/usr/sbin/qemu-ga" "$(size /usr/sbin/qemu-ga)"
    for lib in $(ldd /usr/sbin/qemu-ga | grep -o '/[^ ]*'); do
        real=$(readlink -f "$lib"); s=$(size "$real"); total=$((total + s))
        printf '  %-42s %10s\n' "$lib" "$s"
    done
    printf '%-44s %10s\n' "qemu-ga + shared libraries" "$total bytes"
    awk -v a="$ours_stripped" -v b="$total" 'BEGIN { printf "ratio (stripped guestlinkd / qemu-ga with libraries): %.2f\n", a / b }'
fi
