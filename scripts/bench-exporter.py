#!/usr/bin/env python3
"""What `guestlink exporter` costs with hundreds of VMs, measured from /proc.

1. `--vms` simulated VMs (`guestlink exporter-sim`, one process, libvirt's layout),
   the exporter at its default intervals, then at 1 s / 5 s;
2. `--real` real guestlinkd and as many real qemu-ga processes on unix sockets,
   polled every second: the exporter's cost, and the agents' own CPU time and memory
   under that polling, guestlinkd against qemu-ga in the same run (as ratios).

Prints a Markdown table for docs/benchmarks.md. Times are wall-clock on a shared
machine: compare the ratios, not the absolute numbers.

    cargo build --release && python3 scripts/bench-exporter.py
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HZ = os.sysconf("SC_CLK_TCK")


def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / HZ


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def scrape(port):
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(1 << 16):
            data += chunk
    body = data.split(b"\r\n\r\n", 1)[1].decode()
    return time.perf_counter() - t, body


def sample(body, series):
    for line in body.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


def wait_up(port, n, limit=120):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            _, body = scrape(port)
            if sample(body, 'guestlink_exporter_vms{state="up"}') == n:
                return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit(f"not all {n} agents up within {limit} s")


def exporter(gl, directory, port, ping, stats):
    return subprocess.Popen(
        [gl, "--timeout", "5", "exporter", "--dir", directory,
         "--listen", f"127.0.0.1:{port}", "--ping-interval", ping,
         "--stats-interval", stats],
        stderr=subprocess.DEVNULL)


def measure(gl, directory, n, ping, stats, seconds, agents=()):
    port = free_port()
    exp = exporter(gl, directory, port, ping, stats)
    try:
        wait_up(port, n)
        time.sleep(2)
        c0, t0 = cpu(exp.pid), time.time()
        a0 = {k: sum(cpu(p) for p in pids) for k, pids in agents}
        time.sleep(seconds)
        c1, t1 = cpu(exp.pid), time.time()
        a1 = {k: sum(cpu(p) for p in pids) for k, pids in agents}
        lat = []
        for _ in range(10):
            dt, body = scrape(port)
            lat.append(dt)
        row = {
            "cpu_pct": 100 * (c1 - c0) / (t1 - t0),
            "rss_mib": status_kib(exp.pid, "VmRSS") / 1024,
            "hwm_mib": status_kib(exp.pid, "VmHWM") / 1024,
            "scrape_ms": 1000 * statistics.median(lat),
            "scrape_kib": len(body) / 1024,
            "up": sample(body, 'guestlink_exporter_vms{state="up"}'),
            "agents": {k: {
                "cpu_s": a1[k] - a0[k],
                "rss_mib": sum(status_kib(p, "VmRSS") for p in pids) / 1024,
            } for k, pids in agents},
            "seconds": t1 - t0,
        }
        return row
    finally:
        exp.send_signal(signal.SIGTERM)
        exp.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--guestlink", default="target/release/guestlink")
    ap.add_argument("--guestlinkd", default="target/release/guestlinkd")
    ap.add_argument("--qemu-ga", default="/usr/sbin/qemu-ga")
    ap.add_argument("--vms", type=int, default=500)
    ap.add_argument("--real", type=int, default=100)
    ap.add_argument("--seconds", type=int, default=60)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gl-bench-exp-")
    rows = []
    try:
        sim_dir = os.path.join(tmp, "sim")
        sim = subprocess.Popen([a.guestlink, "exporter-sim", "--vms", str(a.vms), "--dir", sim_dir],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert sim.stdout.readline().strip() == b"ready"
        for ping, stats in [("15s", "60s"), ("1s", "5s")]:
            r = measure(a.guestlink, sim_dir, a.vms, ping, stats, a.seconds)
            rows.append((f"{a.vms} simulated VMs, ping {ping}, stats {stats}", r))
        sim.stdin.close()
        sim.wait()

        real_dir = os.path.join(tmp, "real")
        procs = {"guestlinkd": [], "qemu-ga": []}
        for kind, binary in [("guestlinkd", a.guestlinkd), ("qemu-ga", a.qemu_ga)]:
            for i in range(a.real):
                d = os.path.join(real_dir, f"domain-{i}-{kind}{i}")
                st = os.path.join(tmp, "state", f"{kind}{i}")
                os.makedirs(d)
                os.makedirs(st)
                cmd = [binary, "-m", "unix-listen", "-p", os.path.join(d, "org.qemu.guest_agent.0"),
                       "-t", st, "-f", os.path.join(st, "pid")]
                if kind == "guestlinkd":
                    cmd += ["--guest-socket", "none"]
                procs[kind].append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL))
        time.sleep(3)
        agents = [(k, [p.pid for p in v]) for k, v in procs.items()]
        r = measure(a.guestlink, real_dir, 2 * a.real, "1s", "5s", a.seconds, agents)
        rows.append((f"{a.real} guestlinkd + {a.real} qemu-ga, ping 1s, stats 5s", r))
        for v in procs.values():
            for p in v:
                p.terminate()
            for p in v:
                p.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"Measured over {a.seconds} s each, after every agent was up.\n")
    print("| setup | exporter CPU | exporter RSS (peak) | scrape time | scrape size |")
    print("|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['cpu_pct']:.2f} % of a core | {r['rss_mib']:.1f} MiB "
              f"({r['hwm_mib']:.1f}) | {r['scrape_ms']:.1f} ms | {r['scrape_kib']:.0f} KiB |")
    ag = rows[-1][1]["agents"]
    if ag:
        g, q = ag["guestlinkd"], ag["qemu-ga"]
        print("\nThe agents under that polling (all of each kind together):\n")
        print("| | CPU time | RSS |")
        print("|---|---|---|")
        for k in ("guestlinkd", "qemu-ga"):
            print(f"| {a.real} × {k} | {ag[k]['cpu_s']:.2f} s | {ag[k]['rss_mib']:.0f} MiB |")
        ratio = lambda x, y: x / y if y else float("nan")
        print(f"| guestlinkd / qemu-ga | {ratio(g['cpu_s'], q['cpu_s']):.2f} | "
              f"{ratio(g['rss_mib'], q['rss_mib']):.2f} |")


if __name__ == "__main__":
    main()
