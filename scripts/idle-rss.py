#!/usr/bin/env python3
"""Idle memory of guestlink's long-running processes beside qemu-ga's, in one run.

Starts, each in a scratch directory: Debian's qemu-ga on a unix socket; guestlinkd
with its default configuration's channels open (QGA on a unix socket, the SPICE and
oVirt ports as pty pairs whose host ends this script holds, the guest socket);
guestlink-session (headless clipboard) registered with that guestlinkd; and
`guestlink events`, a host CLI waiting for events. After one guest-ping each and a
settling pause, prints each process's VmRSS, RssAnon and RssFile (KiB), and the
ratio of guestlinkd's VmRSS to qemu-ga's.

Usage: scripts/idle-rss.py [TARGET_DIR]   (default target/release)
"""

import os
import pty
import shutil
import socket
import subprocess
import sys
import tempfile
import time

TARGET = sys.argv[1] if len(sys.argv) > 1 else "target/release"
QEMU_GA = "/usr/sbin/qemu-ga"


def wait_for(path, what):
    deadline = time.time() + 10
    while not os.path.exists(path):
        if time.time() > deadline:
            sys.exit(f"{what}: {path} never appeared")
        time.sleep(0.05)


def ping(path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b'{"execute":"guest-ping"}\n')
    reply = s.makefile("rb").readline()
    s.close()
    if b'"return"' not in reply:
        sys.exit(f"{path}: {reply!r}")


def memory(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0])
    return out


def main():
    scratch = tempfile.mkdtemp(prefix="gl-idle-")
    procs = {}
    hosts = []
    try:
        q = os.path.join(scratch, "qga")
        procs["qemu-ga"] = subprocess.Popen(
            [QEMU_GA, "-m", "unix-listen", "-p", q, "-t", scratch],
            stderr=subprocess.DEVNULL,
        )
        ports = []
        for _ in range(2):
            host, guest = pty.openpty()
            hosts.append(host)
            ports.append(os.ttyname(guest))
        g, guest_sock = os.path.join(scratch, "gl"), os.path.join(scratch, "guest.sock")
        procs["guestlinkd"] = subprocess.Popen(
            [
                f"{TARGET}/guestlinkd", "-m", "unix-listen", "-p", g, "-t", scratch,
                "--guest-socket", guest_sock,
                "--channel", f"vdagent=virtio-serial:{ports[0]}",
                "--channel", f"ovirt=virtio-serial:{ports[1]}",
            ],
            stderr=subprocess.DEVNULL,
        )
        wait_for(q, "qemu-ga")
        wait_for(g, "guestlinkd")
        wait_for(guest_sock, "guestlinkd's guest socket")
        procs["guestlink-session"] = subprocess.Popen(
            [f"{TARGET}/guestlink-session", "--socket", guest_sock,
             "run", "--backend", "headless", "--session", "1"],
            stderr=subprocess.DEVNULL,
        )
        procs["guestlink events"] = subprocess.Popen(
            [f"{TARGET}/guestlink", "-s", g, "events"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        ping(q)
        ping(g)
        time.sleep(3)
        for name, p in procs.items():
            if p.poll() is not None:
                sys.exit(f"{name} exited with {p.returncode}")
        figures = {name: memory(p.pid) for name, p in procs.items()}
        print(f"{'process':20} {'VmRSS':>8} {'RssAnon':>8} {'RssFile':>8}  (KiB)")
        for name, m in figures.items():
            print(f"{name:20} {m['VmRSS']:8} {m['RssAnon']:8} {m['RssFile']:8}")
        ratio = figures["guestlinkd"]["VmRSS"] / figures["qemu-ga"]["VmRSS"]
        print(f"guestlinkd / qemu-ga idle RSS: {ratio:.3f}")
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
        for h in hosts:
            os.close(h)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
