#!/usr/bin/env python3
"""The floor under the guest-ping CPU figure: what a program that does nothing but read a
request and write a fixed reply costs per round trip, beside guestlinkd and qemu-ga, each
on a unix socket with the agent and this client on one CPU (as `guestlink bench`'s "on
one CPU" row). The agent's CPU is its threads' scheduler run time
(/proc/PID/task/*/schedstat) over 20,000 pings, after 2,000 to warm up; three rounds.

The floor is compiled from the C below with `cc`.

Usage: scripts/ping-floor.py [TARGET_DIR]   (default target/release)
"""

import os
import socket
import subprocess
import sys
import tempfile
import time

TARGET = sys.argv[1] if len(sys.argv) > 1 else "target/release"
QEMU_GA = "/usr/sbin/qemu-ga"
FLOOR = r"""
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
    if (bind(l, (void *)&a, sizeof a) || listen(l, 1)) return 1;
    for (;;) {
        int c = accept(l, 0, 0);
        static const char reply[] = "{\"return\": {}}\n";
        char buf[4096];
        while (read(c, buf, sizeof buf) > 0)
            if (write(c, reply, sizeof reply - 1) < 0) break;
        close(c);
    }
}
"""
PING = b'{"execute":"guest-ping"}\n'


def cpu_ns(pid):
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def per_ping(cmd, sock, pings=20000):
    """us of the agent's CPU per guest-ping, agent and client on CPU 0."""
    proc = subprocess.Popen(["taskset", "-c", "0"] + cmd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while not os.path.exists(sock):
            if time.time() > deadline:
                sys.exit(f"{cmd[0]} did not listen on {sock}")
            time.sleep(0.05)
        time.sleep(0.3)
        c = socket.socket(socket.AF_UNIX)
        c.connect(sock)
        f = c.makefile("rb")
        for _ in range(2000):
            c.sendall(PING)
            if b'"return"' not in f.readline():
                sys.exit(f"{cmd[0]} did not answer guest-ping")
        before = cpu_ns(proc.pid)
        for _ in range(pings):
            c.sendall(PING)
            f.readline()
        return (cpu_ns(proc.pid) - before) / pings / 1000
    finally:
        proc.kill()
        proc.wait()


def main():
    scratch = tempfile.mkdtemp(prefix="gl-floor-")
    src, floor = os.path.join(scratch, "floor.c"), os.path.join(scratch, "floor")
    with open(src, "w") as f:
        f.write(FLOOR)
    subprocess.run(["cc", "-O2", "-o", floor, src], check=True)
    os.sched_setaffinity(0, {0})
    for r in range(3):
        s = {n: os.path.join(scratch, f"{n}{r}.sock") for n in ("floor", "gl", "qga")}
        fl = per_ping([floor, s["floor"]], s["floor"])
        gl = per_ping([os.path.join(TARGET, "guestlinkd"), "-m", "unix-listen", "-p", s["gl"],
                       "-t", scratch, "--guest-socket", "none"], s["gl"])
        qg = per_ping([QEMU_GA, "-m", "unix-listen", "-p", s["qga"], "-t", scratch], s["qga"])
        print(f"round {r + 1}: us per guest-ping on one CPU: floor {fl:.2f}, guestlinkd "
              f"{gl:.2f}, qemu-ga {qg:.2f}; over qemu-ga: floor {fl / qg:.2f}, guestlinkd "
              f"{gl / qg:.2f}")


if __name__ == "__main__":
    main()
