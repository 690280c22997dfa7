#!/bin/sh
# guestlink's installer for guests without its package: any systemd distribution.
#
#   sh install.sh [--root DIR] [--arch ARCH] [--no-start]   install or update
#   sh install.sh [--root DIR] --uninstall                  remove what it installed
#
# It installs guestlinkd, guestlink-session (and guestlink, when on the image) from the
# directory of the guest's architecture, the systemd units, the udev rules, the default
# policy and /etc/default/guestlinkd, enables guestlinkd.service and guestlinkd.socket,
# masks the agents that would hold the same ports (qemu-guest-agent, spice-vdagentd),
# and starts guestlinkd when systemd runs. Every file, directory, link and mask it
# makes is written to /var/lib/guestlink/install-manifest; --uninstall removes exactly
# those, keeping a configuration file the administrator changed. Running it again
# updates the files and changes nothing else. --root DIR works on another root (an
# image being built): nothing is started there.
set -eu

prog=install.sh
root=""
arch=""
uninstall=0
start=1
while [ $# -gt 0 ]; do
    case "$1" in
    --root) [ $# -ge 2 ] || { echo "$prog: --root needs a directory" >&2; exit 2; }
        root=$2; shift 2 ;;
    --root=*) root=${1#--root=}; shift ;;
    --arch) [ $# -ge 2 ] || { echo "$prog: --arch needs a name" >&2; exit 2; }
        arch=$2; shift 2 ;;
    --arch=*) arch=${1#--arch=}; shift ;;
    --uninstall) uninstall=1; shift ;;
    --no-start) start=0; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "$prog: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ -n "$root" ]; then
    [ -d "$root" ] || { echo "$prog: $root is not a directory" >&2; exit 1; }
    R=$(cd "$root" && pwd)
    [ "$R" = / ] && R=""
    start=0
else
    R=""
fi
here=$(cd "$(dirname "$0")" && pwd)
manifest=/var/lib/guestlink/install-manifest
live=0
if [ "$start" = 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    live=1
fi
# The agents whose ports guestlinkd serves.
others="qemu-guest-agent.service spice-vdagentd.service spice-vdagentd.socket"

say() { echo "$prog: $*"; }
die() { echo "$prog: $*" >&2; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---- uninstall -----------------------------------------------------------------------
if [ "$uninstall" = 1 ]; then
    [ -f "$R$manifest" ] || { say "nothing to remove: no $R$manifest"; exit 0; }
    if [ "$live" = 1 ]; then
        systemctl stop guestlinkd.service guestlinkd.socket 2>/dev/null || true
    fi
    # Newest first: files before the directories that hold them.
    list=$(sed '1!G;h;$!d' "$R$manifest")
    rm -f "$R$manifest"
    echo "$list" | while IFS='	' read -r kind path sum; do
        [ -n "$kind" ] || continue
        p=$R$path
        case "$kind" in
        f) rm -f "$p" ;;
        c) if [ -f "$p" ] && [ "$(sha "$p")" != "$sum" ]; then
               say "kept $path: changed since it was installed"
           else
               rm -f "$p"
           fi ;;
        l) if [ -L "$p" ]; then rm -f "$p"; fi ;;
        m) if [ -L "$p" ] && [ "$(readlink "$p")" = /dev/null ]; then rm -f "$p"; fi ;;
        d) rmdir "$p" 2>/dev/null || say "kept $path: not empty" ;;
        esac
    done
    if [ "$live" = 1 ]; then
        systemctl daemon-reload || true
        udevadm control --reload-rules 2>/dev/null || true
        # An agent unmasked here starts again when its port is announced.
        udevadm trigger --subsystem-match=virtio-ports --action=add 2>/dev/null || true
    fi
    say "removed guestlink${R:+ from $R}"
    exit 0
fi

# ---- install -------------------------------------------------------------------------
if [ -f "$R/var/lib/dpkg/info/guestlink.list" ] ||
    { [ -z "$R" ] && command -v rpm >/dev/null 2>&1 && rpm -q guestlink >/dev/null 2>&1; }; then
    die "guestlink is installed as a package here: update or remove it with the package manager"
fi
[ -n "$arch" ] || arch=$(uname -m)
case "$arch" in
amd64) arch=x86_64 ;;
arm64) arch=aarch64 ;;
esac
[ -x "$here/$arch/guestlinkd" ] || die "this image has no guestlinkd for $arch (it has: $(cd "$here" && for d in */; do [ -e "$d/guestlinkd" ] && printf '%s ' "${d%/}"; done))"
if [ -f "$here/SHA256SUMS" ]; then
    (cd "$here" && sha256sum -c SHA256SUMS) >/dev/null 2>&1 ||
        die "the files do not match SHA256SUMS: the image is damaged"
fi

old=$(mktemp)
new=$(mktemp)
stage=""
trap 'rm -f "$old" "$new"; [ -z "$stage" ] || rm -f "$stage"' EXIT
[ -f "$R$manifest" ] && cp "$R$manifest" "$old"
# Records what was made, in order; "ours" tells what an earlier run made.
listed() { awk -F '\t' -v k="$1" -v p="$2" '$1 == k && $2 == p { f = 1 } END { exit !f }' "$3"; }
record() {
    if ! listed "$1" "$2" "$new"; then
        printf '%s\t%s\t%s\n' "$1" "$2" "${3:-}" >>"$new"
    fi
}
ours() { listed "$1" "$2" "$old"; }
ours_sum() { awk -F '\t' -v k="$1" -v p="$2" '$1 == k && $2 == p { print $3; exit }' "$old"; }

# mkdir -p that records each directory it had to make.
dir() {
    d=""
    for part in $(echo "$1" | tr / ' '); do
        d="$d/$part"
        if [ ! -d "$R$d" ]; then
            mkdir "$R$d"
            chmod 755 "$R$d"
            record d "$d"
        elif ours d "$d"; then
            record d "$d"
        fi
    done
}

# put SRC DEST MODE: a file replaced as a whole (a rename, so a running binary is safe).
put() {
    dest=$2
    if [ -e "$R$dest" ] && ! ours f "$dest"; then
        die "$dest exists and was not installed by $prog: remove it first"
    fi
    dir "$(dirname "$dest")"
    stage="$R$dest.guestlink-new"
    cp "$1" "$stage"
    chmod "$3" "$stage"
    mv -f "$stage" "$R$dest"
    stage=""
    record f "$dest"
}

# config SRC DEST: installed when absent; updated when unchanged since we installed it.
config() {
    dest=$2
    dir "$(dirname "$dest")"
    if [ -e "$R$dest" ]; then
        if ! ours c "$dest"; then
            say "left $dest as it is (not installed by $prog)"
            return
        fi
        was=$(ours_sum c "$dest")
        if [ "$(sha "$R$dest")" != "$was" ]; then
            record c "$dest" "$was"
            return
        fi
    fi
    put_config_file "$1" "$dest"
}
put_config_file() {
    dir "$(dirname "$2")"
    cp "$1" "$R$2.guestlink-new"
    chmod 644 "$R$2.guestlink-new"
    mv -f "$R$2.guestlink-new" "$R$2"
    record c "$2" "$(sha "$R$2")"
}

# link TARGET NAME: a symbolic link (a unit's enablement).
link() {
    dir "$(dirname "$2")"
    if [ -L "$R$2" ] && [ "$(readlink "$R$2")" = "$1" ]; then
        if ours l "$2"; then record l "$2"; fi
        return 0
    fi
    if [ -e "$R$2" ] || [ -L "$R$2" ]; then
        die "$2 exists and is not the link $prog makes"
    fi
    ln -s "$1" "$R$2"
    record l "$2"
}

# mask UNIT: the agents that would hold our ports never start (unmasked on uninstall).
mask() {
    m=/etc/systemd/system/$1
    if ours m "$m"; then
        dir /etc/systemd/system
        record m "$m"
        return
    fi
    if [ -e "$R$m" ] || [ -L "$R$m" ]; then
        return 0
    fi
    found=0
    for d in /usr/lib/systemd/system /lib/systemd/system; do
        [ -e "$R$d/$1" ] && found=1
    done
    [ "$found" = 1 ] || return 0
    if [ "$live" = 1 ]; then
        systemctl stop "$1" 2>/dev/null || true
    fi
    dir /etc/systemd/system
    ln -s /dev/null "$R$m"
    record m "$m"
    say "masked $1 (guestlinkd serves its port)"
}

put "$here/$arch/guestlinkd" /usr/sbin/guestlinkd 755
for b in guestlink-session guestlink; do
    if [ -f "$here/$arch/$b" ]; then
        put "$here/$arch/$b" "/usr/bin/$b" 755
    fi
done
put "$here/systemd/guestlinkd.service" /usr/lib/systemd/system/guestlinkd.service 644
put "$here/systemd/guestlinkd.socket" /usr/lib/systemd/system/guestlinkd.socket 644
put "$here/systemd/guestlink-session.service" /usr/lib/systemd/user/guestlink-session.service 644
put "$here/udev/60-guestlinkd.rules" /usr/lib/udev/rules.d/60-guestlinkd.rules 644
put "$here/policy.d/50-default.toml" /usr/lib/guestlink/policy.d/50-default.toml 644
config "$here/default/guestlinkd" /etc/default/guestlinkd
link /usr/lib/systemd/system/guestlinkd.service /etc/systemd/system/multi-user.target.wants/guestlinkd.service
link /usr/lib/systemd/system/guestlinkd.socket /etc/systemd/system/sockets.target.wants/guestlinkd.socket
for u in $others; do mask "$u"; done
dir /var/lib/guestlink
cp "$new" "$R$manifest.guestlink-new"
chmod 644 "$R$manifest.guestlink-new"
mv -f "$R$manifest.guestlink-new" "$R$manifest"

version=$("$R/usr/sbin/guestlinkd" -V 2>/dev/null | head -1 || true)
if [ "$live" = 1 ]; then
    systemctl daemon-reload
    udevadm control --reload-rules 2>/dev/null || true
    systemctl start guestlinkd.socket
    # A running agent restarts on the new binary; otherwise its ports start it.
    systemctl restart guestlinkd.service
    udevadm trigger --subsystem-match=virtio-ports --action=add 2>/dev/null || true
    say "installed and started ${version:-guestlinkd}"
elif [ -n "$R" ]; then
    say "installed ${version:-guestlinkd} into $R: it starts when that system boots"
else
    say "installed ${version:-guestlinkd}: systemd is not running here, it starts at the next boot"
fi
