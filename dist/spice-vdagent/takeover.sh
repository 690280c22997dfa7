#!/bin/sh
# Hands the SPICE agent port (com.redhat.spice.0) from spice-vdagentd to guestlinkd, or
# back with --undo. Run as root. A virtio port admits one opener, so spice-vdagentd's
# activation (its udev rule, socket and service) must be off before guestlinkd serves
# the port; its per-session spice-vdagent is masked too (guestlink-session replaces it).
set -eu
here=$(dirname "$0")
rules=/etc/udev/rules.d/70-spice-vdagentd.rules
autostart=/etc/xdg/autostart/spice-vdagent.desktop

if [ "${1:-}" = "--undo" ]; then
    rm -f "$rules"
    systemctl unmask spice-vdagentd.socket spice-vdagentd.service 2>/dev/null || true
    systemctl --global unmask spice-vdagent.service 2>/dev/null || true
    if dpkg-divert --list "$autostart" 2>/dev/null | grep -q guestlink; then
        dpkg-divert --package guestlink --rename --remove "$autostart"
    fi
    udevadm control --reload 2>/dev/null || true
    echo "spice-vdagentd's activation is back; restart guestlinkd without the vdagent channel"
    exit 0
fi

systemctl stop spice-vdagentd.service spice-vdagentd.socket 2>/dev/null || true
systemctl mask spice-vdagentd.socket spice-vdagentd.service 2>/dev/null || true
systemctl --global mask spice-vdagent.service 2>/dev/null || true
install -m 0644 "$here/70-spice-vdagentd.rules" "$rules"
# The XDG autostart entry starts spice-vdagent in every X session; set it aside.
if [ -e "$autostart" ] && command -v dpkg-divert >/dev/null; then
    dpkg-divert --package guestlink --rename --divert "$autostart.disabled-by-guestlink" \
        --add "$autostart"
fi
pkill -x spice-vdagent 2>/dev/null || true
udevadm control --reload 2>/dev/null || true
echo "spice-vdagentd is off; guestlinkd may now serve com.redhat.spice.0"
