#!/usr/bin/env python3
"""Write the function layouts of the daemons that idle in a guest: the functions a
running program executes, for lld to place together at the front of its code (see
scripts/layout-link.rs, which both build scripts include).

crates/agent/layout.order (guestlinkd): runs the release build (`cargo build --release`
first; it leaves target/release/guestlinkd.map beside the binary) under valgrind's
callgrind, with its default configuration's channels open (QGA, the SPICE and oVirt ports as pty pairs
whose host ends this script holds, as a guest's virtio-serial ports, and the guest
socket), a QGA channel on a unix socket and the shipped policy, in two phases:

1. start-up, a session agent (guestlink-session, headless) registering on the guest
   socket, a guest-ping on each QGA channel, then idling long enough for the oVirt
   heartbeat;
2. the information commands management tools poll (libvirt, Proxmox, KubeVirt), a
   file read and a guest-exec.

crates/session/layout.order (guestlink-session): runs it under callgrind with its
headless clipboard, registered with a guestlinkd (not under callgrind), in two phases:
registering and idling; then the host setting, offering and reading the clipboard.

Every instruction executed is mapped to its function through the link map. A file
lists phase 1's functions, then the rest of phase 2's, each in their present order.
Regenerate it when a toolchain update or a change of dependencies renames the
functions (scripts/check-size.sh reports how many of its names the build still has).

Usage: scripts/gen-layout.py [TARGET_DIR]   (default target/release; needs valgrind)
Writes both files.
"""

import base64
import bisect
import glob
import json
import os
import pty
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tty

TARGET = sys.argv[1] if len(sys.argv) > 1 else "target/release"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLLED = ["guest-sync-delimited", "guest-info", "guest-get-osinfo", "guest-get-host-name",
          "guest-get-users", "guest-get-timezone", "guest-get-time", "guest-get-fsinfo",
          "guest-network-get-interfaces", "guest-get-vcpus", "guest-get-disks",
          "guest-get-memory-block-info", "guest-get-load", "guest-get-cpustats",
          "guest-get-diskstats"]
SECTION = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s+\S.*:\(\.text\.(\S+)\)$")


def functions(map_path):
    """(start, end, symbol) of every function section of the binary, by address."""
    out = []
    with open(map_path) as f:
        for line in f:
            m = SECTION.match(line)
            if m:
                start, size = int(m.group(1), 16), int(m.group(2), 16)
                # Cold functions come in sections of their own prefix.
                name = re.sub(r"^(unlikely|hot|startup|exit)\.", "", m.group(3))
                out.append((start, start + size, name))
    out.sort()
    return out


def executed(dump, binary):
    """Addresses of the instructions of `binary` that a callgrind dump counted."""
    addrs, obs, cur, last = set(), {}, None, 0
    with open(dump) as f:
        for line in f:
            m = re.match(r"^(c?)ob=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if m:
                if m.group(3):
                    obs[m.group(2)] = m.group(3)
                if not m.group(1):
                    cur = obs.get(m.group(2))
                continue
            head = line.split(" ", 1)[0]
            if not head or head[0] not in "0123456789+-*":
                continue
            if head == "*":
                pos = last
            elif head[0] in "+-":
                n = head[1:]
                delta = int(n, 16) if n.startswith("0x") else int(n)
                pos = last + delta if head[0] == "+" else last - delta
            else:
                pos = int(head, 16) if head.startswith("0x") else int(head)
            last = pos
            if cur == binary:
                addrs.add(pos)
    return addrs


def call(link, command, arguments=None):
    """One request over `link` (a socket, or the host end of a pty as an int)."""
    request = {"execute": command}
    if arguments is not None:
        request["arguments"] = arguments
    data = json.dumps(request).encode() + b"\n"
    if isinstance(link, int):
        os.write(link, data)
    else:
        link.sendall(data)
    reply = b""
    while b"\n" not in reply:
        chunk = os.read(link, 65536) if isinstance(link, int) else link.recv(65536)
        if not chunk:
            sys.exit(f"guestlinkd closed the connection on {command}")
        reply += chunk
    return json.loads(reply.split(b"\n")[0].strip())


def guestlinkd_run(binary, scratch, out):
    """guestlinkd's two phases under callgrind (`out` takes its dumps)."""
    hosts, ports = [], []
    for _ in range(3):
        host, guest = pty.openpty()
        tty.setraw(guest)
        hosts.append(host)
        ports.append(os.ttyname(guest))
    qga = os.path.join(scratch, "qga")
    guest_sock = os.path.join(scratch, "guest.sock")
    proc = subprocess.Popen(
        CALLGRIND + [f"--callgrind-out-file={out}", binary, "-m", "virtio-serial", "-p", ports[2],
                     "--channel", f"qga=unix-listen:{qga}", "-t", scratch,
                     "--policy-dir", os.path.join(REPO, "dist", "policy.d"),
                     "--guest-socket", guest_sock,
                     "--channel", f"vdagent=virtio-serial:{ports[0]}",
                     "--channel", f"ovirt=virtio-serial:{ports[1]}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(qga, proc)
        session = subprocess.Popen(
            [os.path.join(TARGET, "guestlink-session"), "run", "--backend", "headless",
             "--session", "layout", "--socket", guest_sock],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        s = socket.socket(socket.AF_UNIX)
        s.connect(qga)
        call(s, "guest-ping")
        s.close()
        # The rest as on a guest's virtio-serial port.
        s = hosts[2]
        call(s, "guest-ping")
        time.sleep(12)  # the oVirt heartbeat comes every 5 s
        dump(proc)
        for command in POLLED:
            call(s, command)
        handle = call(s, "guest-file-open", {"path": "/etc/os-release"})["return"]
        call(s, "guest-file-read", {"handle": handle, "count": 4096})
        call(s, "guest-file-close", {"handle": handle})
        pid = call(s, "guest-exec", {"path": "true", "capture-output": True})["return"]["pid"]
        for _ in range(100):
            if call(s, "guest-exec-status", {"pid": pid})["return"]["exited"]:
                break
            time.sleep(0.1)
        time.sleep(1)
        session.terminate()
        session.wait()
    finally:
        proc.terminate()
        proc.wait()


def session_run(binary, scratch, out):
    """guestlink-session's two phases under callgrind, beside a guestlinkd."""
    qga = os.path.join(scratch, "qga")
    guest_sock = os.path.join(scratch, "guest.sock")
    daemon = subprocess.Popen(
        [os.path.join(TARGET, "guestlinkd"), "-m", "unix-listen", "-p", qga, "-t", scratch,
         "--guest-socket", guest_sock, "--sessions", "none"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(qga, daemon)
        proc = subprocess.Popen(
            CALLGRIND + [f"--callgrind-out-file={out}", binary, "run", "--backend", "headless",
                         "--session", "layout", "--socket", guest_sock],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(qga)
            deadline = time.time() + 60
            text = {"mime-type": "text/plain;charset=utf-8",
                    "data": base64.b64encode(b"guestlink layout").decode()}
            # Registered once the host can set the session's clipboard.
            while "return" not in call(s, "__org.guestlink_clipboard-set", text):
                if time.time() > deadline or proc.poll() is not None:
                    sys.exit("guestlink-session did not register under valgrind")
                time.sleep(0.5)
            time.sleep(5)
            dump(proc)
            call(s, "__org.guestlink_clipboard-get", {"mime-type": "text/plain"})
            call(s, "__org.guestlink_clipboard-types")
            call(s, "__org.guestlink_clipboard-offer", {"types": ["text/plain;charset=utf-8"]})
            call(s, "__org.guestlink_clipboard-set", text)
            call(s, "__org.guestlink_clipboard-get", {"mime-type": "text/plain"})
            call(s, "__org.guestlink_clipboard-clear")
            time.sleep(1)
        finally:
            proc.terminate()
            proc.wait()
    finally:
        daemon.terminate()
        daemon.wait()


CALLGRIND = ["valgrind", "--tool=callgrind", "--dump-instr=yes", "--dump-line=no"]
PROGRAMS = [("guestlinkd", guestlinkd_run, os.path.join(REPO, "crates", "agent", "layout.order")),
            ("guestlink-session", session_run,
             os.path.join(REPO, "crates", "session", "layout.order"))]


def wait_for(path, proc):
    deadline = time.time() + 60
    while not os.path.exists(path):
        if time.time() > deadline or proc.poll() is not None:
            sys.exit(f"{path} never appeared")
        time.sleep(0.2)


def dump(proc):
    """Ends callgrind's first phase."""
    subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True,
                   stdout=subprocess.DEVNULL)


def layout(name, run, dest):
    binary = os.path.abspath(os.path.join(TARGET, name))
    map_path = binary + ".map"
    if not os.path.exists(map_path):
        sys.exit(f"{map_path} is missing: build with `cargo build --release` first")
    funcs = functions(map_path)
    starts = [f[0] for f in funcs]
    scratch = tempfile.mkdtemp(prefix="gl-layout-")
    out = os.path.join(scratch, "cg.out")
    run(binary, scratch, out)
    dumps = sorted(glob.glob(out + "*"))
    if len(dumps) < 2:
        sys.exit(f"callgrind left {len(dumps)} dump(s) of {name}, expected 2")
    order, seen = [], set()
    for d in dumps:
        hot = set()
        for addr in executed(d, binary):
            i = bisect.bisect_right(starts, addr) - 1
            if i >= 0 and addr < funcs[i][1]:
                hot.add(i)
        for i in sorted(hot - seen):
            order.append(funcs[i][2])
        seen |= hot
    shutil.rmtree(scratch, ignore_errors=True)
    size = sum(funcs[i][1] - funcs[i][0] for i in seen)
    with open(dest, "w") as f:
        f.write(f"# {name}'s function layout: written by scripts/gen-layout.py, read by\n"
                "# scripts/layout-link.rs (lld --symbol-ordering-file). Do not edit.\n")
        f.write("\n".join(order) + "\n")
    print(f"{name}: {len(order)} functions ({size >> 10} KiB of "
          f"{(funcs[-1][1] - funcs[0][0]) >> 10} KiB of code) written to {os.path.relpath(dest)}")


def main():
    if not shutil.which("valgrind"):
        sys.exit("needs valgrind (apt-get install valgrind)")
    for name, run, dest in PROGRAMS:
        layout(name, run, dest)


if __name__ == "__main__":
    main()
