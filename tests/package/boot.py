"""The installed package under a real systemd: the Debian root of the package test, with
guestlink's .deb installed, booted as a QEMU guest whose PID 1 is systemd.

Usage: python3 tests/package/boot.py ROOT

ROOT is left as it is: a copy becomes the guest's ext4 disk, with an fstab. The checks
read the guest's state with systemctl and journalctl through guest-exec, which the
shipped policy allows (as Debian's qemu-guest-agent does). The kernel and its modules are the host's (linux-image-amd64); a busybox
initramfs loads the virtio and ext4 modules, mounts the disk and hands over to
/lib/systemd/systemd. Nothing starts guestlinkd but what the package installed.

Checks, from the host side over the org.qemu.guest_agent.0 port:
- udev and systemd start guestlinkd at boot; it is Type=notify, active, watched (30 s);
- guestlinkd.socket is listening and guestlinkd serves it as the passed socket;
- sessions come from the real logind (a PAM login is pushed as SESSION_NEW, locked,
  and its end pushed as SESSION_REMOVED), and the user unit guestlink-session.service
  started by the user's own manager serves that session;
- the commands the unit's hardening must leave working work under it (files in /root,
  SSH keys, a password, the clock, freeze and thaw, vCPU offline and online);
- `guestlink service` lists, reads, starts, enables, restarts, stops and disables a unit
  through systemd's D-Bus API, and refuses a unit the policy does not list;
- `systemctl reload` reloads the policy in the same process, and the connection stays;
- after more than the watchdog interval the agent has not been restarted;
- stopped, the agent is started again by udev alone when its port is plugged back in,
  and by systemd when a guest program connects to the socket;
- a CPU and a DIMM hot-added through QEMU's monitor are onlined (CPU_ADDED,
  MEMORY_ADDED); a resized disk is reported (DISK_RESIZED), grown by `guestlink grow`,
  and grown by the agent itself with --grow-on-resize;
- a delayed shutdown is scheduled with systemd's shutdown(8), and cancelled;
- guest-shutdown powers the VM off through systemd.

Prints one line per check and exits non-zero if any fails.
"""
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "vm"))
import guest  # noqa: E402
import run  # noqa: E402
from run import Qga, check, first_ping, guest_exec, qmp, wait_events  # noqa: E402

MODULES = ["virtio_pci", "virtio_console", "virtio_blk", "ext4", "crc32c_generic"]

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /newroot
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /etc/modules.order); do insmod "/lib/modules/$m" 2>/dev/null; done
for _ in $(seq 100); do [ -b /dev/vda ] && break; sleep 0.1; done
mount -t ext4 -o rw /dev/vda /newroot || { echo "BOOT: no root disk"; poweroff -f; }
mount --move /dev /newroot/dev
umount /proc /sys
echo "BOOT: switching to systemd"
exec switch_root /newroot /lib/systemd/systemd
"""



def build_initramfs(out, kdir, modules=MODULES):
    """A busybox initramfs that loads `modules`, mounts /dev/vda and runs systemd."""
    c = guest.Cpio()
    c.add("bin/busybox", open("/bin/busybox", "rb").read())
    c.add("init", INIT.encode())
    mods = guest.module_closure(kdir, modules)
    for m in mods:
        c.add(f"lib/modules/{m}", open(os.path.join(kdir, m), "rb").read(), 0o644)
    c.add("etc/modules.order", ("\n".join(mods) + "\n").encode(), 0o644)
    open(out, "wb").write(gzip.compress(c.finish(), compresslevel=1))


def disk_image(root, work, size_mb, machine_id, customize=None):
    """An ext4 image of a copy of ROOT (the guest's /dev/vda, with an fstab and a fixed
    machine id: the root has none); `customize(stage)` changes the copy first."""
    stage = os.path.join(work, "root")
    subprocess.run(["cp", "-a", "--one-file-system", root, stage], check=True)
    for sub in ["proc", "sys", "dev", "run", "tmp"]:
        os.makedirs(os.path.join(stage, sub), exist_ok=True)
    with open(os.path.join(stage, "etc/fstab"), "w") as f:
        f.write("/dev/vda / ext4 rw,errors=remount-ro 0 1\n")
    with open(os.path.join(stage, "etc/machine-id"), "w") as f:
        f.write(machine_id + "\n")
    if customize:
        customize(stage)
    img = os.path.join(work, "disk.img")
    with open(img, "wb") as f:
        f.truncate(size_mb << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", stage, img], check=True)
    shutil.rmtree(stage)
    return img


def build_disk(root, work):
    """The package test's disk: info-level logs, a host name, a user to log in."""
    def customize(stage):
        # Info-level logs (the reload and the activated socket are logged at info),
        # set where an administrator would: the unit's EnvironmentFile.
        with open(os.path.join(stage, "etc/default/guestlinkd"), "a") as f:
            f.write("GUESTLINK_LOG=info\n")
        with open(os.path.join(stage, "etc/hostname"), "w") as f:
            f.write("guestlink-pkg\n")
        # A user to log in, for the sessions the real logind reports.
        subprocess.run(["chroot", stage, "useradd", "-m", "-s", "/bin/sh", "alice"], check=True)
        # A unit the host may act on (the policy's [services] table), installed but
        # neither enabled nor started.
        with open(os.path.join(stage, "etc/systemd/system/guestlink-demo.service"), "w") as f:
            f.write("[Unit]\nDescription=guestlink demo service\n[Service]\n"
                    "ExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n")
        # The data disk (/dev/vdb: GPT, ext4 on its one partition) that the resize
        # checks grow.
        os.makedirs(os.path.join(stage, "data"), exist_ok=True)
        with open(os.path.join(stage, "etc/fstab"), "a") as f:
            f.write("/dev/vdb1 /data ext4 rw 0 2\n")
        os.makedirs(os.path.join(stage, "etc/guestlink/policy.d"), exist_ok=True)
        with open(os.path.join(stage, "etc/guestlink/policy.d/60-services.toml"), "w") as f:
            f.write('[services]\nunits = ["guestlink-demo.service"]\n')
    return disk_image(root, work, 1536, "8c1e3f0a6b2d4e7f9a0b1c2d3e4f5a6b", customize)


def sh(c, script):
    """Runs a shell line in the guest: (exit code, stdout text)."""
    r = guest_exec(c, "/bin/sh", ["-c", script])
    if r is None:
        return None, ""
    return r[0], r[1].decode(errors="replace")


def props(c, unit, *names):
    code, out = sh(c, f"systemctl show {unit} " + " ".join(f"-p {n}" for n in names))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    root = os.path.abspath(sys.argv[1])
    if not os.path.exists(os.path.join(root, "usr/sbin/guestlinkd")):
        raise SystemExit(f"{root}: guestlink is not installed there")
    work = tempfile.mkdtemp(prefix="guestlink-boot-")
    kver = sorted(os.listdir("/lib/modules"))[-1]
    kdir = f"/lib/modules/{kver}"
    vmlinux = guest.extract_vmlinux(f"/boot/vmlinuz-{kver}", os.path.join(work, "vmlinux"))
    initrd = os.path.join(work, "initrd.gz")
    build_initramfs(initrd, kdir)
    t = time.monotonic()
    img = build_disk(root, work)
    print(f"disk image from {root} in {time.monotonic() - t:.1f} s")

    data = data_disk(work)
    qga = os.path.join(work, "qga.sock")
    mon = os.path.join(work, "qmp.sock")
    cmd = qemu_command(vmlinux, initrd, [f"file={img},if=virtio,format=raw,cache=unsafe",
                                         f"file={data},if=virtio,format=raw,id=data"], qga,
                       ["-qmp", f"unix:{mon},server=on,wait=off"])
    serve_guest(cmd, qga, work, "systemd started guestlinkd at boot", 300,
                lambda vm: checks(vm, qga, mon))


def qemu_command(vmlinux, initrd, drives, qga, extra=()):
    """A q35 guest booting `vmlinux` with the busybox `initrd` (the root is the first
    drive, /dev/vda), the given -drive specs, and org.qemu.guest_agent.0 on socket
    `qga`; KVM when it works, TCG otherwise."""
    accel = "kvm" if run.kvm_works() else "tcg"
    print(f"accelerator: {accel}")
    # Room for a hot-added CPU and memory (the resize checks); the kernel leaves hot-added
    # memory offline (memhp_default_state), so that onlining it is the agent's doing.
    cmd = ["qemu-system-x86_64", "-accel", accel, "-machine", "q35",
           "-m", "1024,slots=2,maxmem=2G", "-smp", "2,maxcpus=3",
           "-cpu", "max" if accel == "tcg" else "host",
           "-nographic", "-no-reboot", "-kernel", vmlinux, "-initrd", initrd,
           "-append", "console=ttyS0 panic=-1 loglevel=4 systemd.show_status=0 "
           "memhp_default_state=offline"]
    for d in drives:
        cmd += ["-drive", d]
    return cmd + ["-device", "virtio-serial-pci,id=vs0",
                  "-chardev", f"socket,id=qga,path={qga},server=on,wait=off",
                  "-device", "virtserialport,bus=vs0.0,chardev=qga,id=port-qga,"
                  "name=org.qemu.guest_agent.0", *extra]


def serve_guest(cmd, qga, work, what, timeout, then):
    """Boots `cmd`, checks that the agent answers guest-ping within `timeout` seconds
    (`what` names how it came to run), runs `then(vm)`, and ends the process with the
    tally; the guest's console is printed when a check failed, and `work` removed."""
    console = os.path.join(work, "console.log")
    vm = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(console, "wb"),
                          stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            if os.path.exists(qga):
                break
            time.sleep(0.1)
        t0 = time.monotonic()
        up = first_ping(qga, t0 + timeout)
        check(f"{what} ({time.monotonic() - t0:.0f} s to the first ping)", up)
        if up:
            then(vm)
    finally:
        if vm.poll() is None:
            vm.kill()
            vm.wait()
        if run.failed:
            print("--- guest console (last 60 lines) ---")
            print("\n".join(open(console, errors="replace").read().splitlines()[-60:]))
        shutil.rmtree(work, ignore_errors=True)
    print(f"{run.passed} passed, {len(run.failed)} failed")
    sys.exit(1 if run.failed else 0)


def checks(vm, qga, mon):
    c = Qga(qga, timeout=60)
    c.sync(7)
    p = props(c, "guestlinkd.service", "Type", "ActiveState", "SubState", "WatchdogUSec",
              "NRestarts", "MainPID", "ExecMainStartTimestampMonotonic", "TriggeredBy")
    check("guestlinkd.service is Type=notify and active (READY=1 reached systemd)",
          p.get("Type") == "notify" and p.get("ActiveState") == "active"
          and p.get("SubState") == "running", p)
    check("the watchdog is armed (WatchdogUSec=30s)", p.get("WatchdogUSec") == "30s", p)
    pid = p.get("MainPID")
    code, osr = sh(c, ". /etc/os-release; echo $ID")
    check("the guest is the Debian root of the package test", osr.strip() == "debian", osr)

    s = props(c, "guestlinkd.socket", "ActiveState", "Listen")
    check("guestlinkd.socket listens on /run/guestlink/agent.sock",
          s.get("ActiveState") == "active" and "/run/guestlink/agent.sock" in s.get("Listen", ""), s)
    code, out = sh(c, "guestlink --socket /run/guestlink/agent.sock ping")
    check("a guest program reaches guestlinkd over the activated socket", code == 0, out)
    code, log = sh(c, "journalctl -b -u guestlinkd.service -o cat --no-pager")
    check("guestlinkd serves the socket systemd passed (activated=true)",
          "guest socket listening" in log and "activated=true" in log, log[-2000:])
    check("no terminal colours in the journal", "\x1b[" not in log, log[-2000:])
    code, out = sh(c, "systemctl is-enabled guestlinkd.service guestlinkd.socket")
    check("the service and the socket are enabled", out.split() == ["enabled", "enabled"], out)
    code, out = sh(c, "udevadm info -q property -n /dev/vport0p1 | grep -E '^(TAGS|SYSTEMD_WANTS)='")
    check("udev tags the port and wants guestlinkd.service",
          "guestlinkd.service" in out and ":systemd:" in out, out)

    hardening(c)
    sessions(c)

    # A delayed shutdown is systemd's: scheduled through logind, cancelled with -c.
    r = c.call("__org.guestlink_shutdown", {"delay": 90, "message": "guestlink boot test"})
    code, sched = sh(c, "cat /run/systemd/shutdown/scheduled")
    code, _ = sh(c, "shutdown -c")
    code2, left = sh(c, "ls /run/systemd/shutdown/")
    check("__org.guestlink_shutdown with a delay schedules systemd's shutdown +2, cancellable",
          r == {"return": {}} and "MODE=poweroff" in sched and code == 0
          and "scheduled" not in left, (r, sched, left))

    # SIGHUP through systemd: the policy is reloaded in the same process, the host's
    # connection stays open.
    code, out = sh(c, "systemctl reload guestlinkd.service && echo reloaded")
    check("systemctl reload guestlinkd", code == 0 and "reloaded" in out, out)
    time.sleep(1)
    check("the connection survives the reload", c.call("guest-ping") == {"return": {}})
    p2 = props(c, "guestlinkd.service", "MainPID", "ActiveState")
    code, log = sh(c, "journalctl -b -u guestlinkd.service -o cat --no-pager")
    check("reloaded in the same process (SIGHUP: policy reloaded)",
          p2.get("MainPID") == pid and p2.get("ActiveState") == "active"
          and "SIGHUP: policy reloaded" in log, (p2, log[-1500:]))

    # The watchdog: past 30 s of life, systemd has not killed and restarted it.
    code, out = sh(c, "cut -d' ' -f1 /proc/uptime")
    started = int(p.get("ExecMainStartTimestampMonotonic", "0")) / 1e6
    age = float(out or 0) - started
    if age < 40:
        time.sleep(40 - age)
    p3 = props(c, "guestlinkd.service", "MainPID", "NRestarts", "ActiveState")
    code, out = sh(c, "cut -d' ' -f1 /proc/uptime")
    check(f"WATCHDOG=1 keeps it alive past 30 s ({float(out or 0) - started:.0f} s, same process)",
          p3.get("MainPID") == pid and p3.get("NRestarts") == "0"
          and p3.get("ActiveState") == "active", p3)
    c.close()

    services(qga)
    update_checks(qga)
    hotplug(qga, mon)
    resize(qga, mon)

    # guest-shutdown goes through systemd (logind or systemctl poweroff): the VM ends.
    c = Qga(qga, timeout=30)
    c.sync(9)
    c.s.sendall(b'{"execute":"guest-shutdown","arguments":{"mode":"powerdown"}}\n')
    # qemu-ga's convention: no reply on success, the channel just goes away; an error
    # comes back as a reply.
    reply = None
    try:
        reply = c.line()
    except (OSError, EOFError):
        pass
    try:
        vm.wait(timeout=180)
    except subprocess.TimeoutExpired:
        pass
    check("guest-shutdown powers the VM off through systemd", vm.poll() is not None, reply)


def services(qga):
    """`guestlink service` against the real systemd, over D-Bus from guestlinkd: the
    units listed, a unit read, started, enabled, stopped and disabled (each checked with
    systemctl in the guest too), and a unit the policy does not list refused."""
    cli = os.path.abspath("target/release/guestlink")

    def gl(*args):
        r = subprocess.run([cli, "--socket", qga, "--timeout", "120", "--json", "service", *args],
                           capture_output=True, text=True, timeout=180)
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError:
            return r.returncode, {"output": r.stdout + r.stderr}

    def systemctl(*args):
        c = Qga(qga, timeout=60)
        c.sync(31)
        code, out = sh(c, "systemctl " + " ".join(args))
        c.close()
        return out.strip()

    code, listed = gl("list")
    me = [u for u in listed if isinstance(u, dict) and u.get("unit") == "guestlinkd.service"] \
        if isinstance(listed, list) else []
    check("guestlink service list: systemd's units, guestlinkd.service running",
          code == 0 and len(me) == 1 and me[0]["sub-state"] == "running" and len(listed) > 20,
          str(listed)[:1500])
    code, st = gl("status", "guestlink-demo")
    check("guestlink service status: the demo unit is loaded, inactive and disabled",
          code == 0 and st.get("load-state") == "loaded" and st.get("active-state") == "inactive"
          and st.get("unit-file-state") == "disabled" and "main-pid" not in st, st)
    code, st = gl("start", "guestlink-demo")
    pid = st.get("main-pid")
    check("guestlink service start waits for systemd's job: running, with its main pid",
          code == 0 and st.get("sub-state") == "running" and isinstance(pid, int)
          and systemctl("show -p MainPID --value guestlink-demo.service") == str(pid), st)
    code, st = gl("enable", "guestlink-demo")
    check("guestlink service enable: systemctl is-enabled says enabled",
          code == 0 and st.get("unit-file-state") == "enabled"
          and systemctl("is-enabled guestlink-demo.service") == "enabled", st)
    code, st = gl("restart", "guestlink-demo.service")
    check("guestlink service restart: running in a new process",
          code == 0 and st.get("sub-state") == "running" and st.get("main-pid") not in (None, pid),
          st)
    code, st = gl("stop", "guestlink-demo")
    code2, st2 = gl("disable", "guestlink-demo")
    check("guestlink service stop and disable: inactive and disabled in systemctl too",
          code == 0 and code2 == 0 and st.get("active-state") == "inactive"
          and st2.get("unit-file-state") == "disabled"
          and systemctl("is-active guestlink-demo.service; systemctl is-enabled "
                        "guestlink-demo.service").split() == ["inactive", "disabled"], (st, st2))
    code, out = gl("stop", "systemd-journald")
    check("a unit the policy does not list is refused, and keeps running",
          code == 1 and "not allowed by the policy" in json.dumps(out)
          and systemctl("is-active systemd-journald.service") == "active", out)


def data_disk(work):
    """A 96 MiB disk with a GPT and one 64 MiB ext4 partition (/dev/vdb1, /data)."""
    img = os.path.join(work, "data.img")
    fs = os.path.join(work, "data.fs")
    with open(fs, "wb") as f:
        f.truncate(64 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "gldata", fs], check=True)
    with open(img, "wb") as f:
        f.truncate(96 << 20)
    subprocess.run(["sfdisk", "-q", img], input=b"label: gpt\nstart=2048, size=131072\n",
                   check=True)
    with open(fs, "rb") as src, open(img, "r+b") as dst:
        dst.seek(1 << 20)
        shutil.copyfileobj(src, dst)
    os.unlink(fs)
    return img


def resize(qga, mon):
    """Resize automation through QEMU's monitor: a CPU (device_add) and a DIMM
    (object-add, device_add pc-dimm) hot-added and onlined by guestlinkd, which pushes
    CPU_ADDED and MEMORY_ADDED; the data disk resized (block_resize): DISK_RESIZED, then
    `guestlink grow guest:/data` grows its GPT partition and ext4; restarted with
    --grow-on-resize, the agent grows them itself on the next resize."""
    cli = os.path.abspath("target/release/guestlink")
    c = Qga(qga, timeout=60)
    c.sync(41)
    r = c.call("__org.guestlink_events-subscribe",
               {"events": ["CPU_ADDED", "MEMORY_ADDED", "DISK_RESIZED"]})
    check("subscribed to CPU_ADDED, MEMORY_ADDED and DISK_RESIZED", "return" in r, r)

    code, online = sh(c, "cat /sys/devices/system/cpu/online")
    cpus = qmp(mon, {"execute": "query-hotpluggable-cpus"})[0].get("return", [])
    free = [x for x in cpus if "qom-path" not in x]
    added = None
    if free:
        args = {"driver": free[0]["type"], "id": "cpu-hot", **free[0]["props"]}
        added = qmp(mon, {"execute": "device_add", "arguments": args})[0]
    ev = wait_events(c, "CPU_ADDED", tries=600)
    code, now = sh(c, "cat /sys/devices/system/cpu/online")
    check("a CPU hot-added with device_add is onlined, and CPU_ADDED says so",
          added is not None and "return" in added and len(ev) == 1
          and ev[0]["data"] == {"logical-id": 2, "online": True}
          and online.strip() == "0-1" and now.strip() == "0-2", (online, added, ev, now))

    code, before = sh(c, "grep MemTotal /proc/meminfo")
    r = qmp(mon, {"execute": "object-add", "arguments": {
                "qom-type": "memory-backend-ram", "id": "mem-hot", "size": 256 << 20}},
            {"execute": "device_add", "arguments": {
                "driver": "pc-dimm", "id": "dimm-hot", "memdev": "mem-hot"}})
    evs = []
    for _ in range(20):
        evs += wait_events(c, "MEMORY_ADDED", tries=100)
        if sum(e["data"]["size"] for e in evs) >= 256 << 20:
            break
    code, after = sh(c, "grep MemTotal /proc/meminfo; "
                        "cat /sys/devices/system/memory/memory*/state | sort | uniq -c")
    kib = lambda t: int(t.split()[1]) if t.split()[1:] else 0  # noqa: E731
    check("a 256 MiB DIMM hot-added with device_add is onlined block by block (MEMORY_ADDED)",
          all("return" in x for x in r) and evs and all(e["data"]["online"] for e in evs)
          and sum(e["data"]["size"] for e in evs) == 256 << 20
          and kib(after) - kib(before) >= 250 << 10 and "offline" not in after,
          (r, evs, before, after))

    code, df0 = sh(c, "df -B1 --output=size /data | tail -1")
    r = qmp(mon, {"execute": "block_resize", "arguments": {"device": "data", "size": 160 << 20}})
    ev = wait_events(c, "DISK_RESIZED", tries=400)
    check("block_resize of the data disk is pushed as DISK_RESIZED (vdb, 160 MiB, nothing grown)",
          "return" in r[0] and len(ev) == 1
          and ev[0]["data"] == {"name": "vdb", "size": 160 << 20, "grown": []}, (r, ev))
    c.close()
    g = subprocess.run([cli, "--socket", qga, "--timeout", "120", "--json", "grow", "guest:/data"],
                       capture_output=True, text=True, timeout=180)
    try:
        grown = json.loads(g.stdout)
    except ValueError:
        grown = {}
    c = Qga(qga, timeout=60)
    c.sync(42)
    code, df1 = sh(c, "df -B1 --output=size /data | tail -1; sfdisk -l /dev/vdb 2>&1 | tail -1")
    check("guestlink grow guest:/data grows the GPT partition to the disk's end, then ext4",
          g.returncode == 0 and grown.get("device") == "/dev/vdb1"
          and grown.get("partition-grown") is True and grown.get("filesystem-grown") is True
          and grown.get("old-size") == 64 << 20 and grown.get("new-size", 0) > 150 << 20
          and int(df1.split()[0]) > int(df0) + (80 << 20), (g.stdout + g.stderr, df0, df1))

    # With --grow-on-resize the agent grows what is mounted from a resized disk itself.
    code, out = sh(c, "echo 'GUESTLINKD_ARGS=--grow-on-resize' >> /etc/default/guestlinkd && "
                      "systemd-run --quiet --on-active=1 --timer-property=AccuracySec=100ms "
                      "systemctl restart guestlinkd.service && echo ok")
    c.close()
    time.sleep(4)
    up = first_ping(qga, time.monotonic() + 60)
    c = Qga(qga, timeout=60)
    c.sync(43)
    c.call("__org.guestlink_events-subscribe", {"events": ["DISK_RESIZED"]})
    r = qmp(mon, {"execute": "block_resize", "arguments": {"device": "data", "size": 224 << 20}})
    ev = wait_events(c, "DISK_RESIZED", tries=600)
    grown = ev[0]["data"]["grown"] if ev else []
    code, df2 = sh(c, "df -B1 --output=size /data | tail -1")
    check("restarted with --grow-on-resize, it grows /data itself on the next resize",
          up and code == 0 and len(grown) == 1 and grown[0]["mountpoint"] == "/data"
          and grown[0]["partition-grown"] and grown[0]["filesystem-grown"]
          and int(df2) > int(df1.split()[0]) + (50 << 20), (out, ev, df1, df2))
    c.close()

    # The root: ext4 on the whole disk, already its size; /run is tmpfs.
    root = subprocess.run([cli, "--socket", qga, "--timeout", "120", "--json", "grow", "guest:/"],
                          capture_output=True, text=True, timeout=180)
    run_ = subprocess.run([cli, "--socket", qga, "--timeout", "60", "grow", "guest:/run"],
                          capture_output=True, text=True, timeout=120)
    try:
        r = json.loads(root.stdout)
    except ValueError:
        r = {}
    check("guestlink grow guest:/ on a whole-disk ext4 changes nothing; /run (tmpfs) is refused",
          root.returncode == 0 and r.get("device") == "/dev/vda"
          and r.get("partition-grown") is False and r.get("filesystem-grown") is False
          and run_.returncode == 1 and "not on a block device" in run_.stderr,
          (root.stdout + root.stderr, run_.stdout + run_.stderr))


def short_version(line):
    """The guestlinkd version in a -V line."""
    return line.rsplit("(guestlinkd ", 1)[-1].rstrip(")\n ")


def update_checks(qga):
    """`guestlink update` under systemd: the unit restarts on a build with another
    version (GUESTLINK_UPDATE_BINARY, scripts/build-update-variant.sh); then a new
    executable that does not start is rolled back by the guard (a transient unit) and
    the unit runs the previous one again."""
    variant = os.environ.get("GUESTLINK_UPDATE_BINARY")
    if not variant:
        if os.environ.get("CI"):
            check("GUESTLINK_UPDATE_BINARY names the build to update to", False)
        else:
            print("SKIPPED update: set GUESTLINK_UPDATE_BINARY (scripts/build-update-variant.sh)")
        return
    cli = os.path.abspath("target/release/guestlink")
    want = short_version(subprocess.run([variant, "-V"], capture_output=True, text=True).stdout)
    c = Qga(qga, timeout=60)
    c.sync(21)
    before = props(c, "guestlinkd.service", "MainPID")
    code, old = sh(c, "/usr/sbin/guestlinkd -V")
    c.close()
    r = subprocess.run([cli, "--socket", qga, "--timeout", "60", "--json", "update", "--binary",
                        variant], capture_output=True, text=True, timeout=300)
    try:
        got = json.loads(r.stdout)
    except ValueError:
        got = {}
    check(f"guestlink update reports {short_version(old)} -> {want} (through systemd)",
          r.returncode == 0 and got.get("result") == "updated" and got.get("restart") == "systemd"
          and got.get("old-version") == short_version(old) and got.get("new-version") == want
          and got.get("running-version") == want, r.stdout + r.stderr)
    c = Qga(qga, timeout=60)
    c.sync(22)
    after = props(c, "guestlinkd.service", "MainPID", "ActiveState")
    code, now = sh(c, "/usr/sbin/guestlinkd -V; ls /usr/sbin/guestlinkd.old 2>&1; "
                      "cat /var/run/guestlinkd.update.json")
    check("the unit runs the new executable in a new process; the old one is gone",
          after.get("ActiveState") == "active" and after.get("MainPID") != before.get("MainPID")
          and want in now and "No such file" in now and '"confirmed"' in now, (before, after, now))
    c.close()

    work = tempfile.mkdtemp(prefix="guestlink-update-")
    broken = os.path.join(work, "broken")
    with open(broken, "w") as f:
        f.write("#!/bin/sh\nif [ \"$1\" = -V ]; then echo 'QEMU Guest Agent 10.0.2 (guestlinkd 9.9.9)'; "
                "exit 0; fi\nexit 1\n")
    os.chmod(broken, 0o755)
    r = subprocess.run([cli, "--socket", qga, "--timeout", "60", "--json", "update", "--binary",
                        broken], capture_output=True, text=True, timeout=300)
    shutil.rmtree(work, ignore_errors=True)
    try:
        got = json.loads(r.stdout)
    except ValueError:
        got = {}
    check("an update that does not start is rolled back, and the CLI says why",
          r.returncode == 1 and got.get("result") == "rolled-back" and got.get("reason")
          and got.get("running-version") == want, r.stdout + r.stderr)
    c = Qga(qga, timeout=60)
    c.sync(23)
    code, now = sh(c, "/usr/sbin/guestlinkd -V; systemctl is-active guestlinkd.service")
    check("after the rollback the unit runs the previous executable", want in now
          and now.split()[-1] == "active", now)
    c.close()


def hardening(c):
    """Commands that need what the unit's hardening must leave: homes read-write,
    CAP_SYS_TIME, CAP_SYS_ADMIN for freezing, /sys/devices/system for vCPUs."""
    h = c.call("guest-file-open", {"path": "/root/from-host", "mode": "w"})
    ok = "return" in h
    if ok:
        c.call("guest-file-write", {"handle": h["return"], "buf-b64": "aGVsbG8="})
        c.call("guest-file-close", {"handle": h["return"]})
    code, out = sh(c, "cat /root/from-host")
    check("guest-file-open/write in /root (no ProtectHome)", ok and out == "hello", (h, out))

    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGd1ZXN0bGluayB0ZXN0IGtleSBmb3IgYm9vdA test@host"
    r = c.call("guest-ssh-add-authorized-keys", {"username": "root", "keys": [key]})
    code, out = sh(c, "cat /root/.ssh/authorized_keys")
    check("guest-ssh-add-authorized-keys for root", "return" in r and key in out, (r, out))

    code, before = sh(c, "grep ^root: /etc/shadow")
    r = c.call("guest-set-user-password", {"username": "root", "password": "Z3Vlc3RsaW5r",
                                           "crypted": False})
    code, after = sh(c, "grep ^root: /etc/shadow")
    check("guest-set-user-password changes /etc/shadow",
          "return" in r and after.startswith("root:$") and after != before, (r, after))

    t = 1_900_000_000 * 10**9
    r = c.call("guest-set-time", {"time": t})
    got = c.call("guest-get-time").get("return", 0)
    check("guest-set-time (CAP_SYS_TIME, ProtectClock=no)",
          "return" in r and abs(got - t) < 600 * 10**9, (r, got))
    c.call("guest-set-time", {"time": int(time.time() * 1e9)})

    r = c.call("guest-fsfreeze-freeze")
    status = c.call("guest-fsfreeze-status").get("return")
    thaw = c.call("guest-fsfreeze-thaw")
    after = c.call("guest-fsfreeze-status").get("return")
    check("guest-fsfreeze-freeze and thaw of the root (CAP_SYS_ADMIN)",
          r.get("return", 0) >= 1 and status == "frozen" and thaw.get("return", 0) >= 1
          and after == "thawed", (r, status, thaw, after))

    r = c.call("guest-set-vcpus", {"vcpus": [{"logical-id": 1, "online": False}]})
    off = c.call("guest-get-vcpus").get("return", [])
    r2 = c.call("guest-set-vcpus", {"vcpus": [{"logical-id": 1, "online": True}]})
    on = c.call("guest-get-vcpus").get("return", [])
    check("guest-set-vcpus offline and online (/sys/devices/system)",
          r.get("return") == 1 and r2.get("return") == 1
          and [v["online"] for v in off] == [True, False]
          and [v["online"] for v in on] == [True, True], (r, off, r2, on))

    fs = c.call("guest-get-fsinfo").get("return", [])
    check("guest-get-fsinfo sees the root on the virtio disk",
          any(f["mountpoint"] == "/" and f["type"] == "ext4" for f in fs), fs)


def sessions(c):
    """Sessions from the real logind over the system bus: a PAM login of alice
    (pam_systemd) is pushed to the host as SESSION_NEW, listed, locked through logind's
    LockSession, and its end is SESSION_REMOVED."""
    r = c.call("__org.guestlink_events-subscribe",
               {"events": ["SESSION_NEW", "SESSION_REMOVED"]})
    check("events-subscribe on the QGA port", "return" in r, r)
    code, out = sh(c, "systemd-run --quiet --unit=alice-login -p PAMName=login -p User=alice "
                      "/bin/sleep 600 && echo ok")
    check("a PAM login of alice (systemd-run -p PAMName=login)", code == 0, out)
    new = [e for e in run.wait_events(c, "SESSION_NEW", tries=200)
           if e.get("data", {}).get("user") == "alice"]
    check("logind's new session is pushed as SESSION_NEW (user alice)", len(new) == 1, new)
    listed = c.call("__org.guestlink_get-sessions").get("return", [])
    mine = [x for x in listed if x.get("user") == "alice"]
    check("__org.guestlink_get-sessions lists alice's logind session",
          len(mine) == 1 and new and mine[0]["id"] == new[0]["data"]["id"], listed)
    if mine:
        r = c.call("__org.guestlink_session-lock", {"session": mine[0]["id"]})
        check("__org.guestlink_session-lock through the real logind (LockSession)",
              r == {"return": {}}, r)
    # The user unit under alice's own user manager (started by pam_systemd with her
    # session): guestlink-session connects to the guest socket as her and serves it.
    for _ in range(120):
        code, out = sh(c, "systemctl is-active user@$(id -u alice).service")
        if out.strip() == "active":
            break
        time.sleep(0.5)
    code, out = sh(c, "runuser -u alice -- env XDG_RUNTIME_DIR=/run/user/$(id -u alice) "
                      "systemctl --user start guestlink-session.service 2>&1 && echo ok")
    served = False
    for _ in range(60):
        listed = c.call("__org.guestlink_get-sessions").get("return", [])
        if any(x.get("user") == "alice" and x.get("agent") for x in listed):
            served = True
            break
        time.sleep(0.5)
    code2, log = sh(c, "journalctl -b -o cat --no-pager _UID=$(id -u alice) | tail -20")
    check("guestlink-session.service under alice's user manager serves her session",
          code == 0 and served, (out, listed, log))
    sh(c, "runuser -u alice -- env XDG_RUNTIME_DIR=/run/user/$(id -u alice) "
          "systemctl --user stop guestlink-session.service")
    code, out = sh(c, "systemctl stop alice-login.service && echo ok")
    gone = [e for e in run.wait_events(c, "SESSION_REMOVED", tries=200)
            if e.get("data", {}).get("user") == "alice"]
    check("the logout is pushed as SESSION_REMOVED", code == 0 and len(gone) == 1, (out, gone))
    c.call("__org.guestlink_events-unsubscribe")


def went_silent(qga, timeout=60):
    """Whether the agent stops answering on the port within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not first_ping(qga, time.monotonic() + 3):
            return True
        time.sleep(1)
    return False


def hotplug(qga, mon):
    """Stopped, guestlinkd comes back only through udev when its port appears."""
    c = Qga(qga, timeout=30)
    c.sync(8)
    # Starts so far this boot: the boot's, and the update test's restarts.
    code, log = sh(c, "journalctl -b -o cat --no-pager _PID=1 | grep -c 'Started guestlinkd.service'")
    before = int(log.strip() or 0)
    # A transient timer stops the service after this reply has gone.
    code, out = sh(c, "systemd-run --quiet --on-active=2 --timer-property=AccuracySec=100ms "
                      "systemctl stop guestlinkd.service && echo ok")
    check("a transient unit will stop guestlinkd", code == 0, out)
    c.close()
    check("stopped, nothing answers on the port, and nothing restarts it",
          went_silent(qga) and not first_ping(qga, time.monotonic() + 8))
    run.replug_qga_port(mon)
    check("udev started guestlinkd for the new port (SYSTEMD_WANTS)",
          first_ping(qga, time.monotonic() + 60))
    c = Qga(qga, timeout=30)
    c.sync(10)
    code, log = sh(c, "journalctl -b -o cat --no-pager _PID=1 | grep -c 'Started guestlinkd.service'")
    check("systemd started it once more, for the plugged port",
          log.strip() == str(before + 1), (before, log))

    # Stopped again, with only the socket left listening: a guest program connecting
    # to it starts the service (socket activation), and the host's port answers again.
    code, out = sh(c, "systemd-run --quiet --on-active=2 --timer-property=AccuracySec=100ms "
                      "systemctl stop guestlinkd.service && "
                      "systemd-run --quiet --unit=guest-client --on-active=25 "
                      "--timer-property=AccuracySec=100ms "
                      "/usr/bin/guestlink --timeout 60 --socket /run/guestlink/agent.sock ping "
                      "&& echo ok")
    check("transient units will stop guestlinkd, then connect to its socket", code == 0, out)
    c.close()
    check("a connection to guestlinkd.socket starts the stopped service",
          went_silent(qga) and first_ping(qga, time.monotonic() + 120))
    c = Qga(qga, timeout=30)
    c.sync(11)
    code, out = sh(c, "systemctl show guest-client.service -p Result -p ExecMainStatus; "
                      "journalctl -b -o cat --no-pager _PID=1 | grep -c 'Started guestlinkd.service'")
    check("the guest program was answered; the service started once more",
          "Result=success" in out and "ExecMainStatus=0" in out
          and out.split()[-1] == str(before + 2), (before, out))
    c.close()


if __name__ == "__main__":
    main()
