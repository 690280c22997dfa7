#!/usr/bin/env bash
# The Debian package in a fresh Debian root (debootstrap, minbase plus systemd, udev,
# logind (dbus, libpam-systemd) and qemu-guest-agent, the package it replaces): it must
# refuse to share the ports with qemu-guest-agent, take its place through apt, install
# its files, enable its units, pass `systemd-analyze verify`, boot under systemd in QEMU
# (tests/package/boot.py), run, and leave no running process and no stray file after
# `dpkg -r` and `dpkg --purge`.
#
#   scripts/build-deb.sh && tests/package/run.sh [DEB]
#
# Needs root, debootstrap, and for the boot qemu-system-x86, linux-image-amd64 and
# busybox-static; the root is made in $PACKAGE_ROOT (default
# /tmp/guestlink-pkgroot) from $DEBIAN_MIRROR (default deb.debian.org).
set -euo pipefail
cd "$(dirname "$0")/../.."

deb=${1:-$(ls -t target/debian/guestlink_*.deb | head -1)}
root=${PACKAGE_ROOT:-/tmp/guestlink-pkgroot}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
pass=0

ok() { echo "ok    $*"; pass=$((pass + 1)); }
fail() { echo "FAIL  $*"; exit 1; }
in_root() { chroot "$root" "$@"; }

cleanup() {
    umount "$root/proc" 2>/dev/null || true
}
trap cleanup EXIT

# --- the package's control fields --------------------------------------------------
fields=$(dpkg-deb -f "$deb" Package Depends Conflicts Replaces Provides)
echo "$fields" | sed 's/^/      /'
for p in qemu-guest-agent spice-vdagent; do
    dpkg-deb -f "$deb" Conflicts | grep -qw "$p" || fail "Conflicts lacks $p"
    dpkg-deb -f "$deb" Replaces | grep -qw "$p" || fail "Replaces lacks $p"
    dpkg-deb -f "$deb" Provides | grep -qw "$p" || fail "Provides lacks $p"
done
dpkg-deb -f "$deb" Depends | grep -qw libc6 || fail "Depends lacks libc6 (shlibs)"
ok "control: conflicts with, replaces and provides qemu-guest-agent and spice-vdagent"

# --- a fresh Debian root with the agent it replaces ---------------------------------
if [ ! -x "$root/usr/sbin/qemu-ga" ] || [ -e "$root/usr/sbin/guestlinkd" ]; then
    rm -rf "$root"
    debootstrap --variant=minbase --include=systemd,udev,dbus,libpam-systemd,procps,qemu-guest-agent \
        "$suite" "$root" "$mirror" >/tmp/guestlink-debootstrap.log 2>&1 ||
        { tail -20 /tmp/guestlink-debootstrap.log; fail "debootstrap"; }
fi
mount -t proc proc "$root/proc"
cp "$deb" "$root/tmp/guestlink.deb"
ok "debootstrap $suite root with qemu-guest-agent $(in_root dpkg-query -W -f '${Version}' qemu-guest-agent)"

# Both agents cannot hold the ports: installing guestlink removes qemu-guest-agent
# (Conflicts + Replaces), in one dpkg -i.
snapshot() {
    (cd "$root" && find . -xdev \( -path ./proc -o -path ./dev -o -path ./sys -o -path ./run \
        -o -path ./tmp -o -path ./var/lib/dpkg -o -path ./var/lib/apt -o -path ./var/cache \
        -o -path ./var/log \) -prune -o -print | sort)
}
in_root dpkg -i /tmp/guestlink.deb >/tmp/guestlink-dpkg.log 2>&1 || { cat /tmp/guestlink-dpkg.log; fail "dpkg -i"; }
grep -q "Removing qemu-guest-agent" /tmp/guestlink-dpkg.log || fail "qemu-guest-agent not removed: $(cat /tmp/guestlink-dpkg.log)"
in_root dpkg -s qemu-guest-agent 2>/dev/null | grep -q "^Status: install ok installed" &&
    fail "qemu-guest-agent still installed"
[ ! -e "$root/usr/sbin/qemu-ga" ] || fail "qemu-ga left behind"
in_root dpkg -s guestlink | grep -q "^Status: install ok installed" || fail "guestlink not installed"
ok "dpkg -i replaces qemu-guest-agent"

# What the root looks like without either agent, for the purge check: remove ours,
# purge qemu-guest-agent's leftovers, take the picture, install again.
in_root dpkg --purge guestlink >/dev/null
in_root dpkg --purge qemu-guest-agent >/dev/null 2>&1 || true
before=$(snapshot)
in_root dpkg -i /tmp/guestlink.deb >/tmp/guestlink-dpkg.log 2>&1 || { cat /tmp/guestlink-dpkg.log; fail "dpkg -i"; }
ok "dpkg -i on a root without qemu-guest-agent"

# --- files -----------------------------------------------------------------------------
for f in /usr/sbin/guestlinkd /usr/bin/guestlink /usr/bin/guestlink-session \
    /usr/lib/systemd/system/guestlinkd.service /usr/lib/systemd/system/guestlinkd.socket \
    /usr/lib/systemd/user/guestlink-session.service /usr/lib/udev/rules.d/60-guestlinkd.rules \
    /usr/lib/guestlink/policy.d/50-default.toml /etc/default/guestlinkd \
    /usr/lib/x86_64-linux-gnu/security/pam_guestlink.so \
    /usr/share/man/man8/guestlinkd.8.gz /usr/share/man/man1/guestlink.1.gz \
    /usr/share/man/man1/guestlink-session.1.gz /usr/share/man/man1/guestlink-exporter.1.gz \
    /usr/share/bash-completion/completions/guestlink /usr/share/bash-completion/completions/guestlinkd \
    /usr/share/zsh/vendor-completions/_guestlink /usr/share/fish/vendor_completions.d/guestlink.fish \
    /usr/share/doc/guestlink/copyright /usr/share/doc/guestlink/protocol.md \
    /usr/share/doc/guestlink/examples/policy.d/55-no-exec.toml /usr/share/xgreeters/guestlink-sso.desktop; do
    [ -f "$root$f" ] || fail "missing $f"
    in_root dpkg -S "$f" >/dev/null 2>&1 || fail "$f is not the package's"
done
ok "binaries, units, udev rules, policy, default config, man pages, completions, docs, greeter"
for page in docs/man/*; do
    m=$(basename "$page")
    sec=${m##*.}
    zcat "$root/usr/share/man/man$sec/$m.gz" | cmp -s - "docs/man/$m" || fail "$m differs from docs/man"
done
grep -q "complete -F" "$root/usr/share/bash-completion/completions/guestlink" || fail "bash completion"
grep -q "exporter" "$root/usr/share/bash-completion/completions/guestlink" || fail "completion lacks exporter"
ok "man pages are docs/man's; completions know the subcommands"
in_root dpkg-query -W -f '${Conffiles}\n' guestlink | grep -q /etc/default/guestlinkd ||
    fail "/etc/default/guestlinkd is not a conffile"
ok "/etc/default/guestlinkd is a conffile"

# --- units -----------------------------------------------------------------------------
[ -L "$root/etc/systemd/system/multi-user.target.wants/guestlinkd.service" ] || fail "service not enabled"
[ -L "$root/etc/systemd/system/sockets.target.wants/guestlinkd.socket" ] || fail "socket not enabled"
ok "guestlinkd.service and guestlinkd.socket enabled by the maintainer scripts"
out=$(in_root systemd-analyze verify --man=no /usr/lib/systemd/system/guestlinkd.service \
    /usr/lib/systemd/system/guestlinkd.socket 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"
ok "systemd-analyze verify guestlinkd.service guestlinkd.socket (installed)"
mkdir -p "$root/run/user/0"
out=$(in_root env XDG_RUNTIME_DIR=/run/user/0 systemd-analyze --user verify --man=no \
    /usr/lib/systemd/user/guestlink-session.service 2>&1) || fail "systemd-analyze --user verify: $out"
[ -z "$out" ] || fail "systemd-analyze --user verify: $out"
ok "systemd-analyze --user verify guestlink-session.service"
grep -c 'SYSTEMD_WANTS}+="guestlinkd.service"' "$root/usr/lib/udev/rules.d/60-guestlinkd.rules" |
    grep -qx 5 || fail "udev rules"
ok "udev rules start guestlinkd for its five ports"

# --- under a real systemd: a copy of this root booted in QEMU (tests/package/boot.py):
# udev and socket activation start it, READY=1, the watchdog, reload, the commands the
# hardening must leave working, and guest-shutdown through systemd.
python3 -u tests/package/boot.py "$root" 2>&1 | sed 's/^/      /' ||
    fail "the installed package booted under systemd (tests/package/boot.py)"
ok "the installed package booted under systemd in QEMU (tests/package/boot.py)"

# --- it runs ---------------------------------------------------------------------------
in_root guestlinkd --version | grep -q guestlinkd || fail "guestlinkd --version"
in_root guestlinkd --check-config >/dev/null || fail "guestlinkd --check-config with the shipped policy"
rm -f "$root/run/gl-test.sock"
chroot "$root" /usr/sbin/guestlinkd -m unix-listen -p /run/gl-test.sock -t /run --guest-socket none \
    </dev/null >/dev/null 2>&1 &
for _ in $(seq 100); do [ -S "$root/run/gl-test.sock" ] && break; sleep 0.1; done
in_root guestlink --socket /run/gl-test.sock ping >/dev/null || fail "installed guestlink cannot ping installed guestlinkd"
ok "the installed guestlinkd serves the installed guestlink"
# As Debian's qemu-guest-agent: the shipped policy lets the host run programs.
[ "$(in_root guestlink --socket /run/gl-test.sock exec -- echo allowed)" = allowed ] ||
    fail "guest-exec under the shipped policy"
ok "the shipped policy allows guest-exec, as qemu-guest-agent's"

# --- removal ---------------------------------------------------------------------------
running() {
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] || continue
        exe=$(readlink "$p/exe" 2>/dev/null || true)
        case "$exe" in "$root"/usr/sbin/guestlinkd* | "$root"/usr/bin/guestlink*) echo "${p#/proc/} $exe" ;; esac
    done
}
[ -n "$(running)" ] || fail "the agent is not running before the removal"
in_root dpkg -r guestlink >/tmp/guestlink-dpkg.log 2>&1 || { cat /tmp/guestlink-dpkg.log; fail "dpkg -r"; }
sleep 0.2
[ -z "$(running)" ] || fail "still running after dpkg -r: $(running)"
[ ! -e "$root/usr/sbin/guestlinkd" ] || fail "binary left after dpkg -r"
[ -f "$root/etc/default/guestlinkd" ] || fail "dpkg -r removed the conffile"
ok "dpkg -r stops the agent, removes the files and keeps the configuration"
in_root dpkg --purge guestlink >/tmp/guestlink-dpkg.log 2>&1 || { cat /tmp/guestlink-dpkg.log; fail "dpkg --purge"; }
after=$(snapshot)
if [ "$before" != "$after" ]; then
    diff <(echo "$before") <(echo "$after") || true
    fail "dpkg --purge left files behind"
fi
[ ! -e "$root/etc/systemd/system/sockets.target.wants/guestlinkd.socket" ] || fail "socket still enabled"
ok "dpkg --purge leaves the root as it was before the install"

echo "$pass passed"
