"""End-to-end test: guestlinkd inside a QEMU guest, driven over real virtio-serial ports.

Usage: python3 tests/vm/run.py [--release-dir target/release]

Builds the guest (tests/vm/guest.py), boots qemu-system-x86_64 (KVM when it really works,
TCG otherwise) with a virtio-serial controller and the ports org.qemu.guest_agent.0,
com.redhat.spice.0 and ovirt-guest-agent.0 on unix sockets, a virtio-net interface and a
small ext4 virtio disk, then checks from the host side with the project's own tools:
time to the first guest-ping, the conformance suite, the guestlink CLI, the destructive
commands for real, the oVirt channel (inventory, lifecycle hooks with completion), channel
life (reconnect, hot-unplug and re-plug), vsock inside the guest, and finally oVirt's
`shutdown` powering the VM off; the second VM ends with guest-shutdown.

A second VM puts QEMU's own `qemu-vdagent` chardev (clipboard and mouse on) on
com.redhat.spice.0, with a VNC display: text a VNC client pastes (ClientCutText) must
reach the guest clipboard, text copied in the guest must reach the VNC client (extended
clipboard), and the VNC pointer must come out of guestlinkd's uinput tablet.

Prints one line per check and exits non-zero if any fails.
"""
import argparse
import base64
import fcntl
import json
import os
import pty
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import guest  # noqa: E402
from qga_line import Qga  # noqa: E402
import vnc  # noqa: E402

passed, failed = 0, []
QEMU_GA = "/usr/sbin/qemu-ga"


def check(name, ok, detail=""):
    global passed
    if ok:
        passed += 1
        print(f"ok    {name}")
    else:
        failed.append(name)
        print(f"FAIL  {name} {detail}")


def kvm_works(timeout=20):
    """Whether KVM can really boot something here: a probe VM with a time limit."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    try:
        r = subprocess.run(
            ["qemu-system-x86_64", "-accel", "kvm", "-machine", "q35", "-nographic",
             "-no-reboot", "-display", "none", "-S", "-qmp", "stdio"],
            input=b'{"execute":"qmp_capabilities"}\n{"execute":"cont"}\n'
                  b'{"execute":"query-status"}\n{"execute":"quit"}\n',
            capture_output=True, timeout=timeout)
        return b'"running": true' in r.stdout
    except (subprocess.TimeoutExpired, OSError):
        return False


def qmp(path, *commands):
    """Runs QMP commands on the VM's monitor; returns their replies."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(path)
    f = s.makefile("rb")
    json.loads(f.readline())
    out = []
    for cmd in ({"execute": "qmp_capabilities"},) + commands:
        s.sendall(json.dumps(cmd).encode() + b"\n")
        while True:
            v = json.loads(f.readline())
            if "return" in v or "error" in v:
                break
        out.append(v)
    s.close()
    return out[1:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--release-dir", default="target/release")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--only-vdagent", action="store_true", help="boot only the vdagent VM")
    ap.add_argument("--only-stream-speed", type=int, metavar="ROUNDS",
                    help="boot the main VM and only compare streamed exec output with the "
                    "bulk read of a 64 MiB file, ROUNDS times")
    ap.add_argument("--only-ping-speed", type=int, metavar="ROUNDS",
                    help="boot the main VM and only compare guest-ping round trips of "
                    "guestlinkd and Debian's qemu-ga (on a port of its own), ROUNDS times")
    opts = ap.parse_args()
    rel = os.path.abspath(opts.release_dir)
    agent_bin = os.path.join(rel, "guestlinkd")
    cli = os.path.join(rel, "guestlink")
    conformance = os.path.join(rel, "guestlink-conformance")
    work = tempfile.mkdtemp(prefix="gl-vm-")
    t_start = time.monotonic()

    # The guest.
    kver = sorted(os.listdir("/lib/modules"))[-1]
    kdir = f"/lib/modules/{kver}"
    vmlinux = guest.extract_vmlinux(f"/boot/vmlinuz-{kver}", os.path.join(work, "vmlinux"))
    initrd = os.path.join(work, "initramfs.gz")
    # bash for QEMU's own exec test cases (T23/T24 run `bash -c`).
    session_bin = os.path.join(rel, "guestlink-session")
    binaries = [(agent_bin, "/usr/bin/guestlinkd"), (cli, "/usr/bin/guestlink"),
                (session_bin, "/usr/bin/guestlink-session"), ("/bin/bash", "/usr/bin/bash")]
    # Debian's qemu-ga as the reference of the ping comparison, on a port of its own.
    if opts.only_ping_speed:
        if not os.path.exists(QEMU_GA):
            sys.exit(f"--only-ping-speed needs {QEMU_GA} (apt-get install qemu-guest-agent)")
        binaries.append((QEMU_GA, QEMU_GA))
        binaries.append((build_floor(work), "/usr/sbin/ping-floor"))
    mods = guest.build_initramfs(initrd, kdir, binaries)
    disk = os.path.join(work, "data.img")
    with open(disk, "wb") as f:
        f.truncate(32 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "gldata", disk], check=True)
    print(f"guest built in {time.monotonic() - t_start:.1f} s: kernel {kver}, "
          f"{len(mods)} modules, initramfs {os.path.getsize(initrd) >> 10} KiB")

    accel = "kvm" if kvm_works() else "tcg"
    print(f"accelerator: {accel}")
    socks = {n: os.path.join(work, n + ".sock") for n in ("qga", "spice", "ovirt", "qmp", "gl")}
    # The exporter's own port, its socket where libvirt would put it.
    socks["exporter"] = os.path.join(work, "channels", "domain-1-glvm", "org.guestlink.exporter.0")
    os.makedirs(os.path.dirname(socks["exporter"]))
    ports = [("qga", "org.qemu.guest_agent.0"), ("spice", "com.redhat.spice.0"),
             ("ovirt", "ovirt-guest-agent.0"), ("exporter", "org.guestlink.exporter.0"),
             ("gl", "org.guestlink.0")]
    if opts.only_ping_speed:
        socks["ref"] = os.path.join(work, "ref.sock")
        ports.append(("ref", "org.qemu.guest_agent.ref"))
        socks["floor"] = os.path.join(work, "floor.sock")
        ports.append(("floor", "org.qemu.guest_agent.floor"))
    cmd = ["qemu-system-x86_64", "-accel", accel, "-machine", "q35", "-m", "512",
           "-smp", "2,maxcpus=2", "-cpu", "max" if accel == "tcg" else "host",
           "-nographic", "-no-reboot", "-kernel", vmlinux, "-initrd", initrd,
           "-append", "console=ttyS0 panic=-1 quiet loglevel=4",
           "-serial", "file:" + os.path.join(work, "console.log"), "-monitor", "none",
           "-qmp", f"unix:{socks['qmp']},server=on,wait=off",
           "-device", "virtio-serial-pci,id=vs0",
           "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0",
           "-drive", f"file={disk},format=raw,if=virtio"]
    for key, name in ports:
        cmd += ["-chardev", f"socket,id={key},path={socks[key]},server=on,wait=off",
                "-device", f"virtserialport,bus=vs0.0,chardev={key},id=port-{key},name={name}"]
    t_boot = time.monotonic()
    vm = subprocess.Popen(cmd if not opts.only_vdagent else ["true"], stdin=subprocess.DEVNULL)
    try:
        if opts.only_stream_speed:
            if first_ping(socks["qga"], t_boot + 150):
                stream_speed(cli, socks["gl"], socks["qga"], work, 64, opts.only_stream_speed)
        elif opts.only_ping_speed:
            ready = first_ping(socks["qga"], t_boot + 150)
            ready = ready and first_ping(socks["ref"], time.monotonic() + 60)
            check("both agents answer guest-ping", ready)
            if ready:
                time.sleep(5)  # the guest's start-up settles
                idle_rss(socks["qga"])
                ping_speed(socks["qga"], socks["ref"], socks["floor"], opts.only_ping_speed)
        elif not opts.only_vdagent:
            run_checks(vm, work, socks, cli, conformance, t_boot)
    finally:
        if vm.poll() is None:
            vm.kill()
        vm.wait()
        console = os.path.join(work, "console.log")
        if failed and os.path.exists(console):
            print("---- guest console ----")
            print(open(console, errors="replace").read()[-6000:])
    if not (opts.only_stream_speed or opts.only_ping_speed):
        vdagent_vm(work, vmlinux, initrd, accel)
    if not opts.keep:
        shutil.rmtree(work, ignore_errors=True)
    total = time.monotonic() - t_start
    print(f"{passed} passed, {len(failed)} failed, {total:.1f} s in all")
    sys.exit(1 if failed else 0)


def first_ping(sock, deadline):
    """Seconds until the agent in the guest answers guest-ping (retrying the connection)."""
    while time.monotonic() < deadline:
        try:
            c = Qga(sock, timeout=2)
            c.sync(1)
            v = c.call("guest-ping")
            c.close()
            if v == {"return": {}}:
                return True
        except (OSError, EOFError, ValueError):
            time.sleep(0.2)
    return False


def cli_run(cli, sock, *args, stdin=None):
    return subprocess.run([cli, "-s", sock, "--timeout", "30", *args], capture_output=True,
                          input=stdin, timeout=120)


def run_checks(vm, work, socks, cli, conformance, t_boot):
    qga = socks["qga"]
    ok = first_ping(qga, t_boot + 150)
    boot = time.monotonic() - t_boot
    print(f"QEMU start to first guest-ping reply: {boot:.1f} s")
    check("guest-ping through virtio-serial", ok)
    if not ok:
        return

    # The conformance suite over the real port (cases needing their own agent are n/a).
    r = subprocess.run([conformance, "--socket", qga, "--guest-changes", "--ssh-user", "root"],
                       capture_output=True, text=True, timeout=600)
    tail = r.stdout.strip().splitlines()[-1:] if r.stdout else []
    print("conformance:", tail[0] if tail else r.stderr[-500:])
    check("conformance suite over virtio-serial", r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:])

    # The CLI.
    for args, want in [(["ping"], b"agent answered"), (["osinfo"], b"guestlink test VM"),
                       (["hostname"], b"guestlink-vm"), (["interfaces"], b"eth0"),
                       (["fsinfo"], b"/mnt/data"), (["time"], b"from the host"),
                       (["users"], b""), (["info"], b"guest-sync-delimited")]:
        r = cli_run(cli, qga, *args)
        check(f"guestlink {args[0]}", r.returncode == 0 and want in r.stdout,
              r.stdout[-400:] + r.stderr[-400:])
    ovirt_checks(socks["ovirt"], qga)
    exporter_checks(cli, os.path.dirname(os.path.dirname(socks["exporter"])))
    r = cli_run(cli, qga, "exec", "--", "sh", "-c", "cat; echo err >&2; exit 7", stdin=b"in")
    check("guestlink exec (stdin, stdout, stderr, status)",
          r.returncode == 7 and r.stdout == b"in" and r.stderr == b"err\n", repr(r))
    live_checks(cli, socks["gl"], qga, work)
    manage_checks(cli, qga)
    idle_check(qga)
    src = os.path.join(work, "payload")
    with open(src, "wb") as f:
        f.write(os.urandom(3 << 20))
    r = cli_run(cli, qga, "--json", "cp", src, "guest:/mnt/data/payload")
    ok = r.returncode == 0 and json.loads(r.stdout or b"{}").get("verified") is True
    check("guestlink cp to the guest (raw bulk, sha256 verified)", ok and b'"raw"' in r.stdout,
          r.stdout + r.stderr)
    back = os.path.join(work, "back")
    r = cli_run(cli, qga, "cp", "--base64", "guest:/mnt/data/payload", back)
    check("guestlink cp from the guest (base64)",
          r.returncode == 0 and open(back, "rb").read() == open(src, "rb").read(), r.stderr)

    c = Qga(qga)
    c.sync(2)
    # Events over the virtio-serial port (guestlink extension, opt-in).
    v = c.call("__org.guestlink_events-subscribe",
               {"events": ["FSFREEZE", "FSTHAW", "EXEC_EXITED"]})
    check("__org.guestlink_events-subscribe", "return" in v, v)
    # fsfreeze on the virtio disk's ext4 mount, for real.
    v = c.call("guest-fsfreeze-freeze-list", {"mountpoints": ["/mnt/data"]})
    check("guest-fsfreeze-freeze-list /mnt/data", v.get("return") == 1, v)
    ev = wait_events(c, "FSFREEZE")
    check("FSFREEZE event with the count", [e["data"] for e in ev] == [{"count": 1}], ev)
    v = c.call("guest-fsfreeze-status")
    check("guest-fsfreeze-status frozen", v.get("return") == "frozen", v)
    # While frozen only the safe commands run (qemu-ga's rule).
    v = c.call("guest-exec", {"path": "true"})
    check("guest-exec is refused while frozen",
          "has been disabled" in v.get("error", {}).get("desc", ""), v)
    v = c.call("guest-fsfreeze-thaw")
    check("guest-fsfreeze-thaw", v.get("return") == 1, v)
    out = guest_exec(c, "sh", ["-c", "echo x > /mnt/data/after && cat /mnt/data/after"])
    check("the file system is writable after the thaw", out == (0, b"x\n"), out)
    exited = wait_events(c, "EXEC_EXITED")
    thaw = wait_events(c, "FSTHAW")
    check("FSTHAW and EXEC_EXITED events",
          [e["data"] for e in thaw] == [{"count": 1}] and
          any(e["data"].get("exitcode") == 0 for e in exited), (thaw, exited))
    # A sync ends the subscription: nothing more arrives.
    c.sync(3)
    c.events = []
    guest_exec(c, "true", [])
    c.call("guest-ping")
    check("no event after a sync", not c.events, c.events)

    # set-time, for real: set the clock a day ahead, read it back, then from the RTC.
    now = c.call("guest-get-time")["return"]
    v = c.call("guest-set-time", {"time": now + 86400 * 10**9})
    later = c.call("guest-get-time")["return"]
    check("guest-set-time moves the clock", "return" in v and later - now > 86000 * 10**9,
          (v, now, later))
    # Without a time the clock comes from the RTC, which the first call set a day ahead.
    v = c.call("guest-set-time")
    rtc = c.call("guest-get-time")["return"]
    check("guest-set-time without time sets the clock from the RTC",
          "return" in v and abs(rtc - later) < 120 * 10**9, (v, rtc - later))
    v = c.call("guest-set-time", {"time": time.time_ns()})
    check("guest-set-time back to the host's time", "return" in v, v)

    # set-user-password, then /etc/shadow.
    v = c.call("guest-set-user-password",
               {"username": "root", "password": "aHVudGVyMg==", "crypted": False})
    check("guest-set-user-password", v.get("return") == {}, v)
    shadow = guest_file(c, "/etc/shadow")
    field = shadow.split(b"\n")[0].split(b":")[1] if shadow else b""
    check("/etc/shadow holds a new hash for root", field.startswith(b"$"), shadow[:120])

    # SSH keys (also covered by the suite's S cases; here the file itself).
    v = c.call("guest-ssh-add-authorized-keys",
               {"username": "root", "keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx vm@test"]})
    keys = guest_file(c, "/root/.ssh/authorized_keys")
    check("guest-ssh-add-authorized-keys writes authorized_keys",
          v.get("return") == {} and b"vm@test" in keys, (v, keys))

    # vCPU hot-unplug inside the guest: offline cpu1, then online again.
    v = c.call("guest-get-vcpus")["return"]
    cpu1 = [x for x in v if x["logical-id"] == 1]
    if cpu1 and cpu1[0].get("can-offline"):
        r = c.call("guest-set-vcpus", {"vcpus": [{"logical-id": 1, "online": False}]})
        off = c.call("guest-get-vcpus")["return"]
        r2 = c.call("guest-set-vcpus", {"vcpus": [{"logical-id": 1, "online": True}]})
        on = c.call("guest-get-vcpus")["return"]
        check("guest-set-vcpus offline and online cpu1",
              r.get("return") == 1 and r2.get("return") == 1
              and not off[1]["online"] and on[1]["online"], (r, off, r2, on))
    else:
        print("  guest-set-vcpus: cpu1 cannot be taken offline in this guest:", v)

    # vsock inside the guest: a second agent on vsock-listen, reached through the
    # loopback transport by the guestlink CLI run in the guest.
    c.call("guest-exec", {"path": "sh", "arg": ["-c",
           "guestlinkd -m vsock-listen -p 1:5123 -t /tmp >/tmp/vsock.log 2>&1 &"]})
    time.sleep(1)
    out = guest_exec(c, "guestlink", ["--vsock", "1:5123", "--json", "hostname"])
    check("vsock-listen inside the guest (vsock_loopback)",
          out is not None and out[0] == 0 and b"guestlink-vm" in out[1], out)
    out = guest_exec(c, "guestlink", ["--vsock", "1:5123", "exec", "--", "sh", "-c",
                                      "echo streamed over vsock; exit 3"])
    check("streamed exec over vsock (vsock_loopback)",
          out == (3, b"streamed over vsock\n"), out)
    c.close()

    c = Qga(qga)
    c.sync(4)
    before = guest_exec(c, "pidof", ["guestlinkd"])
    c.close()
    channel_life(qga, socks["qmp"])
    c = Qga(qga)
    c.sync(5)
    after = guest_exec(c, "pidof", ["guestlinkd"])
    c.close()
    check("the agent never exited while no host was connected",
          before is not None and before == after, (before, after))

    # A third-party client: PyPI's qemu.qmp, as QEMU's qemu-ga-client drives an agent.
    try:
        from qemu.qmp.legacy import QEMUMonitorProtocol
        q = QEMUMonitorProtocol(qga)
        q.connect(negotiate=False)
        ok = q.cmd("guest-ping") == {} and q.cmd("guest-info")["version"]
        host = q.cmd("guest-get-host-name")
        q.close()
        check("qemu.qmp client drives the agent in the VM",
              ok and host == {"host-name": "guestlink-vm"}, host)
    except ImportError:
        check("qemu.qmp is installed (pip install qemu.qmp)", False)

    # Finally, oVirt's shutdown (no delay, a message, reboot as the string "false")
    # powers the VM off. (guest-shutdown ends the vdagent VM.)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(socks["ovirt"])
    s.sendall(b'{"__name__": "shutdown", "timeout": "0", "message": "guestlink VM test over", '
              b'"reboot": "false"}\n')
    check("oVirt shutdown powers the VM off", powered_off(vm), vm.returncode)
    s.close()


def powered_off(vm):
    """Whether QEMU exits cleanly within a minute (the guest powered off)."""
    try:
        vm.wait(timeout=60)
    except subprocess.TimeoutExpired:
        return False
    return vm.returncode == 0


def vdagent_vm(work, vmlinux, initrd, accel):
    """QEMU's qemu-vdagent chardev as the SPICE agent's host, driven from a VNC client."""
    qga = os.path.join(work, "vd-qga.sock")
    vnc_sock = os.path.join(work, "vd-vnc.sock")
    trace = os.path.join(work, "vd-trace.log")
    cmd = ["qemu-system-x86_64", "-accel", accel, "-machine", "q35", "-m", "512",
           "-cpu", "max" if accel == "tcg" else "host", "-vga", "std", "-display", "none",
           "-vnc", f"unix:{vnc_sock}", "-no-reboot", "-kernel", vmlinux, "-initrd", initrd,
           "-append", "console=ttyS0 panic=-1 quiet loglevel=4",
           "-serial", "file:" + os.path.join(work, "vd-console.log"), "-monitor", "none",
           "-device", "virtio-serial-pci,id=vs0",
           "-chardev", f"socket,id=qga,path={qga},server=on,wait=off",
           "-device", "virtserialport,bus=vs0.0,chardev=qga,name=org.qemu.guest_agent.0",
           "-chardev", "qemu-vdagent,id=vdagent,name=vdagent,clipboard=on,mouse=on",
           "-device", "virtserialport,bus=vs0.0,chardev=vdagent,name=com.redhat.spice.0",
           "-trace", "vdagent_*"]
    t_boot = time.monotonic()
    with open(trace, "wb") as log:
        vm = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=log)
        try:
            if vdagent_checks(qga, vnc_sock, trace, t_boot):
                # Finally, guest-shutdown powers this VM off.
                c = Qga(qga)
                c.sync(9)
                c.s.sendall(b'{"execute":"guest-shutdown"}\n')
                check("guest-shutdown powers the VM off", powered_off(vm), vm.returncode)
        finally:
            vm.kill()
            vm.wait()
    if failed:
        for name in ("vd-trace.log", "vd-console.log"):
            path = os.path.join(work, name)
            if os.path.exists(path):
                print(f"---- {name} ----")
                print(open(path, errors="replace").read()[-4000:])


def wait_for(what, fn, timeout=30):
    """`fn()` once it is truthy, or None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    print(f"  timed out waiting for {what}")
    return None


def vdagent_checks(qga, vnc_sock, trace, t_boot):
    ok = first_ping(qga, t_boot + 150)
    check("vdagent VM: guest-ping", ok)
    if not ok:
        return False
    c = Qga(qga)
    c.sync(1)
    # QEMU 7.2 speaks only after the agent's greeting: its answer shows in the trace.
    peer = wait_for("QEMU to see the agent's capabilities",
                    lambda: b"vdagent_peer_cap" in open(trace, "rb").read())
    check("qemu-vdagent received guestlinkd's capabilities", peer,
          open(trace, "rb").read()[-2000:])
    v = vnc.Vnc(vnc_sock)

    # VNC -> guest: a legacy ClientCutText becomes a grab; a paste in the guest fetches it.
    text = "hello from vnc ✓ ünïcödé".encode()
    v.cut_text(text)
    def pasted():
        out = guest_exec(c, "guestlink-session", ["clipboard", "get"])
        return out if out and out[0] == 0 and out[1] == text else None
    got = wait_for("the VNC text in the guest clipboard", pasted)
    check("VNC ClientCutText reaches the guest clipboard (lazy fetch through qemu-vdagent)",
          got is not None, guest_exec(c, "guestlink-session", ["clipboard", "get"]))

    # guest -> VNC: a copy in the guest is announced to the VNC client and provided.
    out = guest_exec(c, "guestlink-session", ["clipboard", "set", "hello from guest ✓"])
    check("guestlink-session clipboard set in the guest", out is not None and out[0] == 0, out)
    try:
        v.clipboard_message(vnc.NOTIFY | vnc.TEXT)
        got = v.fetch_text()
    except (OSError, ValueError, EOFError) as e:
        got = repr(e).encode()
    check("guest copy reaches the VNC client (extended clipboard)",
          got == "hello from guest ✓".encode(), got)

    # The pointer: VNC events through qemu-vdagent's MOUSE_STATE into the uinput tablet.
    find = ("for d in /sys/class/input/event*; do "
            "grep -q 'guestlink tablet' $d/device/name 2>/dev/null && echo /dev/input/${d##*/}; "
            "done")
    out = guest_exec(c, "sh", ["-c", find])
    dev = out[1].decode().split()[0] if out and out[1].strip() else ""
    check("guestlinkd made a uinput tablet", dev.startswith("/dev/input/event"), out)
    if dev:
        c.call("guest-exec", {"path": "sh", "arg": ["-c",
               f"dd if={dev} of=/tmp/events bs=24 count=64 2>/dev/null &"]})
        time.sleep(1)
        v.pointer(100, 200, 0)
        v.pointer(100, 200, 1)
        v.pointer(100, 200, 0)
        def released():
            ev = parse_input(guest_file(c, "/tmp/events"))
            return ev if (1, 0x110, 0) in ev else None
        events = wait_for("pointer events", released) or parse_input(guest_file(c, "/tmp/events"))
        xs = [val for t, code, val in events if t == 3 and code == 0]
        ys = [val for t, code, val in events if t == 3 and code == 1]
        left = [val for t, code, val in events if t == 1 and code == 0x110]
        # QEMU scales to the console size: expect a pixel of rounding.
        check("VNC pointer comes out of the uinput tablet (position and left click)",
              xs and abs(xs[-1] - 100) <= 2 and ys and abs(ys[-1] - 200) <= 2
              and left[:2] == [1, 0], events)
    v.close()
    if failed:
        for log in ("/tmp/guestlinkd.log", "/tmp/session.log"):
            print(f"---- guest {log} (without the test's own exec calls) ----")
            lines = guest_file(c, log).decode(errors="replace").splitlines()
            print("\n".join(l for l in lines if "org.qemu.guest_agent" not in l
                            and "clipboard-get" not in l and "session-reply" not in l
                            and "guest-sync" not in l and "guest-exec" not in l)[-5000:])
    c.close()
    return True


def parse_input(data):
    """`struct input_event` records (x86_64: 16 bytes of time, type, code, value)."""
    return [struct.unpack("<HHi", data[i + 16:i + 24]) for i in range(0, len(data) - 23, 24)]


def ovirt_checks(path, qga):
    """The oVirt channel over real virtio-serial: a heartbeat, the inventory after
    vdsm's refresh, a lifecycle event running the guest's hooks."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(path)
    f = s.makefile("rb")
    def until(name):
        for _ in range(200):
            m = json.loads(f.readline())
            if m.get("__name__") == name:
                return m
        return {}
    try:
        hb = until("heartbeat")
        check("oVirt heartbeat over virtio-serial (free-ram as a string)",
              isinstance(hb.get("free-ram"), str) and "memory-stat" in hb, hb)
        s.sendall(b'{"__name__": "refresh", "apiVersion": 3}\n')
        host = until("host-name")
        check("oVirt refresh: host-name", host.get("name") == "guestlink-vm", host)
        osinfo = until("os-info")
        check("oVirt refresh at API 3: os-info", osinfo.get("type") == "linux", osinfo)
        s.sendall(b'{"__name__": "lifecycle-event", "type": "before_migration", '
                  b'"reply_id": "vm-1"}\n')
        done = until("completion")
        check("oVirt lifecycle-event answered with completion",
              done == {"__name__": "completion", "reply_id": "vm-1", "done": True}, done)
        c = Qga(qga)
        c.sync(5)
        ran = guest_file(c, "/tmp/hooks.log")
        c.close()
        check("the vendor hook ran (page cache dropped), the one linked to /dev/null did not",
              ran == b"before_migration failure=0\n", ran)
    except (OSError, ValueError) as e:
        check("oVirt channel answers", False, repr(e))
    s.close()


def exporter_checks(cli, channels):
    """guestlink exporter on libvirt's layout, through QEMU's chardev and the guest's
    second QGA port, while this harness holds the first."""
    import socket as sk
    import urllib.request
    with sk.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exp = subprocess.Popen([cli, "--timeout", "10", "exporter", "--dir", channels,
                            "--listen", f"127.0.0.1:{port}", "--ping-interval", "1s",
                            "--stats-interval", "2s", "--scan-interval", "500ms"],
                           stderr=subprocess.DEVNULL)
    try:
        def scrape():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                    return r.read().decode()
            except OSError:
                return ""

        want = ['guestlink_agent_up{vm="glvm"} 1', 'agent="guestlinkd"',
                'guestlink_guest_memory_total_bytes{vm="glvm"}',
                'guestlink_guest_filesystem_size_bytes{vm="glvm",mountpoint="/mnt/data",fstype="ext4"}',
                'guestlink_guest_users{vm="glvm"}', 'guestlink_guest_load1{vm="glvm"}']
        text = wait_for("the exporter's figures for the VM",
                        lambda: (lambda t: t if all(w in t for w in want) else None)(scrape()),
                        timeout=60)
        check("exporter: the VM's agent, memory, filesystems, users and load over its own port",
              bool(text), scrape()[-3000:])
    finally:
        exp.terminate()
        exp.wait()


def wait_events(c, name, tries=40):
    """The `name` events received so far, pinging (which reads whatever the agent
    sent) until at least one has arrived."""
    for _ in range(tries):
        if any(e["event"] == name for e in c.events):
            break
        c.call("guest-ping")
        time.sleep(0.05)
    return c.take_events(name)


def guest_exec(c, path, args):
    """Runs a program in the guest; returns (exitcode, stdout) or None."""
    pid = c.call("guest-exec", {"path": path, "arg": args, "capture-output": True})
    if "return" not in pid:
        return None
    for _ in range(100):
        v = c.call("guest-exec-status", {"pid": pid["return"]["pid"]})["return"]
        if v["exited"]:
            return v.get("exitcode"), base64.b64decode(v.get("out-data", ""))
        time.sleep(0.1)
    return None


def guest_file(c, path):
    """A small guest file's content (empty if it cannot be read)."""
    h = c.call("guest-file-open", {"path": path})
    if "return" not in h:
        return b""
    v = c.call("guest-file-read", {"handle": h["return"], "count": 1 << 20})
    c.call("guest-file-close", {"handle": h["return"]})
    return base64.b64decode(v.get("return", {}).get("buf-b64", ""))


def shell_on_terminal(cli, sock, keys, rows=31, cols=97):
    """Runs `guestlink shell` on a pseudo-terminal of the given size, types `keys` once
    it is up, and returns (what it printed, its exit status)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    p = subprocess.Popen([cli, "-s", sock, "--timeout", "30", "shell"], stdin=slave,
                         stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out, typed = b"", False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every holder of the terminal has closed it
                break
            if not chunk:
                break
            out += chunk
            # The guest shell's prompt (busybox sh: "# ") means it reads input now.
            if not typed and b"# " in out:
                os.write(master, keys)
                typed = True
        elif p.poll() is not None:
            break
    os.close(master)
    try:
        status = p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        status = p.wait()
    return out, status


def stream_speed(cli, gl, qga, work, mib, rounds):
    """Speed over virtio-serial (printed, never asserted): a file read with the raw bulk
    transfer, against the same file streamed as the output of `cat`."""
    c = Qga(qga)
    c.sync(13)
    guest_exec(c, "sh", ["-c", f"dd if=/dev/urandom of=/tmp/big bs=1M count={mib} 2>/dev/null"])
    c.close()
    copy, streamed = os.path.join(work, "big-cp"), os.path.join(work, "big-exec")
    for _ in range(rounds):
        t = time.monotonic()
        r = cli_run(cli, gl, "cp", "--no-verify", "guest:/tmp/big", copy)
        t_cp = time.monotonic() - t
        t = time.monotonic()
        with open(streamed, "wb") as out:
            r2 = subprocess.run([cli, "-s", gl, "--timeout", "60", "exec", "--", "cat", "/tmp/big"],
                                stdout=out, stderr=subprocess.PIPE, timeout=120)
        t_exec = time.monotonic() - t
        same = r.returncode == 0 and r2.returncode == 0 and \
            open(copy, "rb").read() == open(streamed, "rb").read()
        check(f"a {mib} MiB file streamed as exec output equals its bulk copy", same,
              (r.stderr, r2.stderr))
        if same:
            print(f"  virtio-serial: bulk read {mib / t_cp:.1f} MiB/s, streamed exec output "
                  f"{mib / t_exec:.1f} MiB/s, ratio {t_cp / t_exec:.2f} (goal >= 0.8)")


FLOOR = r"""
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv) {
    static const char reply[] = "{\"return\": {}}\n";
    char buf[4096];
    int fd = open(argv[1], O_RDWR);
    if (fd < 0) return 1;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0 && write(fd, reply, sizeof reply - 1) < 0) return 1;
        if (n <= 0) usleep(10000); /* no host on the port */
    }
}
"""


def build_floor(work):
    """The floor of the ping comparison, built with the host's C compiler."""
    src, out = os.path.join(work, "floor.c"), os.path.join(work, "ping-floor")
    with open(src, "w") as f:
        f.write(FLOOR)
    subprocess.run(["cc", "-O2", "-o", out, src], check=True)
    return out


def ping_speed(gl, ref, floor, rounds, pings=200):
    """guest-ping round trips over virtio-serial (printed, never asserted): guestlinkd on
    org.qemu.guest_agent.0 against Debian's qemu-ga on a port of its own, in alternating
    rounds of `pings` calls, so that the drift of an emulated guest weighs on both alike.
    A third port has the floor: a program that only reads and writes a fixed reply, the
    most any agent could gain."""
    agents = {"guestlinkd": Qga(gl), "qemu-ga": Qga(ref), "floor": Qga(floor)}
    agents["guestlinkd"].sync(31)
    agents["qemu-ga"].sync(32)
    taken = {name: [] for name in agents}
    for r in range(rounds):
        order = list(agents.items()) if r % 2 == 0 else list(agents.items())[::-1]
        for name, c in order:
            t = time.monotonic()
            for _ in range(pings):
                c.s.sendall(b'{"execute":"guest-ping"}\n')
                if json.loads(c.line()) != {"return": {}}:
                    check(f"{name} answers guest-ping", False)
                    return
            taken[name].append((time.monotonic() - t) / pings)
    for c in agents.values():
        c.close()
    print("  guest-ping over virtio-serial (us per round trip), guestlinkd vs qemu-ga vs floor:")
    for r in range(rounds):
        a, b, f = (taken[n][r] * 1e6 for n in ("guestlinkd", "qemu-ga", "floor"))
        print(f"    round {r + 1}: {a:8.1f} vs {b:8.1f} vs {f:8.1f}  qemu-ga / guestlinkd "
              f"{b / a:.2f}x, qemu-ga / floor {b / f:.2f}x")
    med = {n: sorted(v)[len(v) // 2] * 1e6 for n, v in taken.items()}
    print(f"  median: {med['guestlinkd']:.1f} vs {med['qemu-ga']:.1f} us, guestlinkd "
          f"{med['qemu-ga'] / med['guestlinkd']:.2f}x faster (goal >= 3x); the floor "
          f"{med['floor']:.1f} us, {med['qemu-ga'] / med['floor']:.2f}x faster than qemu-ga")


def idle_rss(qga):
    """Idle memory of both agents in the guest (printed, never asserted): guestlinkd
    serving every port of the test VM with the session agent connected, qemu-ga its one
    port, each after answering its first guest-ping. The guest's init samples both once
    a second (tests/vm/guest.py); the latest sample is read, the first request either
    agent has had since its ping."""
    c = Qga(qga)
    rows = {}
    for _ in range(20):
        text = guest_file(c, "/tmp/idle-rss").decode(errors="replace")
        for line in text.splitlines():
            f = line.split()
            # guestlinkd Rss: N kB Anonymous: N kB
            if len(f) == 7:
                rows[f[0]] = (int(f[2]), int(f[5]))
        if len(rows) == 2:
            break
        time.sleep(0.5)
    c.close()
    if len(rows) != 2:
        check("both agents' idle memory is read in the guest", False, repr(rows))
        return
    print("  idle memory in the guest (KiB): Rss Anonymous")
    for name, (rss, anon) in rows.items():
        print(f"    {name:12} {rss:6} {anon:6}")
    print(f"  guestlinkd / qemu-ga idle RSS in the guest: "
          f"{rows['guestlinkd'][0] / rows['qemu-ga'][0]:.2f} (goal <= 1.0)")


def manage_checks(cli, qga):
    """The CLI's subcommands for the QGA commands that change the guest, for real."""
    def js(*args, stdin=None):
        r = cli_run(cli, qga, "--json", *args, stdin=stdin)
        try:
            return r.returncode, json.loads(r.stdout or b"null")
        except ValueError:
            return r.returncode, r.stdout + r.stderr
    code, _ = js("vcpus", "1=offline")
    _, cpus = js("vcpus")
    cpu1 = [x for x in cpus if x.get("logical-id") == 1] if isinstance(cpus, list) else []
    code2, _ = js("vcpus", "1=online")
    check("guestlink vcpus 1=offline, then 1=online",
          code == 0 and code2 == 0 and cpu1 and cpu1[0]["online"] is False, cpus)
    code, _ = js("time", "sync")
    _, t = js("time")
    check("guestlink time sync (the guest clock within 5 s of the host's)",
          code == 0 and isinstance(t, dict) and abs(t.get("skew-ms", 1e9)) < 5000, t)
    # One client at a time on QEMU's socket: the CLI's, then ours.
    c = Qga(qga)
    c.sync(21)
    before = guest_file(c, "/etc/shadow")
    c.close()
    code, _ = js("passwd", "root", stdin=b"from-the-cli\n")
    c = Qga(qga)
    c.sync(22)
    shadow = guest_file(c, "/etc/shadow")
    c.close()
    check("guestlink passwd root (password from standard input, stored hashed)",
          code == 0 and shadow != before and shadow.startswith(b"root:")
          and b"from-the-cli" not in shadow, (before[:60], shadow[:60]))
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHGuestlinkCliTestKeyxxxxxxxxxxxxxxxxxxxxxxxxx cli@host"
    code, _ = js("ssh-keys", "add", "root", key)
    _, listed = js("ssh-keys", "list", "root")
    code2, _ = js("ssh-keys", "remove", "root", key)
    _, after = js("ssh-keys", "list", "root")
    check("guestlink ssh-keys add, list and remove",
          code == 0 and code2 == 0 and key in listed.get("keys", [])
          and key not in after.get("keys", []), (listed, after))
    code, trimmed = js("fstrim")
    check("guestlink fstrim", code == 0 and isinstance(trimmed, dict) and "paths" in trimmed,
          trimmed)


def idle_check(qga):
    """guestlinkd's CPU while every host that came and went is idle (one still
    connected): each port has seen its host leave by now, and a hang-up must not leave
    the agent polling."""
    c = Qga(qga)
    c.sync(17)
    probe = ("p=$(pidof guestlinkd | tr ' ' '\\n' | tail -n 1); sleep 1; "
             "a=$(cut -d' ' -f14,15 /proc/$p/stat); sleep 3; "
             "b=$(cut -d' ' -f14,15 /proc/$p/stat); echo $a $b > /tmp/idle-cpu")
    # Detached, so that no child of the agent is being watched meanwhile.
    c.call("guest-exec", {"path": "sh", "arg": ["-c", f"({probe}) </dev/null >/dev/null 2>&1 &"]})
    time.sleep(6)
    ticks = None
    for _ in range(20):
        v = guest_file(c, "/tmp/idle-cpu").split()
        if len(v) == 4:
            u0, s0, u1, s1 = map(int, v)
            ticks = (u1 - u0) + (s1 - s0)
            break
        time.sleep(0.5)
    c.close()
    # 100 ticks a second: 300 would be a CPU kept busy the whole time.
    check("guestlinkd idles: CPU over 3 s with its hosts idle", ticks is not None and ticks < 30,
          f"{ticks} ticks")
    if ticks is not None:
        print(f"  guestlinkd used {ticks * 10} ms of CPU in 3 s of idling")


def live_checks(cli, gl, qga, work):
    """The live channel over guestlink's own port (org.guestlink.0), real virtio-serial."""
    r = cli_run(cli, gl, "-v", "exec", "--", "sh", "-c", "cat; echo err >&2; exit 7", stdin=b"in")
    check("streamed exec over org.guestlink.0 (stdin, stdout, stderr, status)",
          r.returncode == 7 and r.stdout == b"in" and r.stderr.endswith(b"err\n")
          and b"streaming" in r.stderr, repr(r))
    r = cli_run(cli, gl, "shell", stdin=b"echo $((6*7)); exit 5\n")
    check("guestlink shell without a terminal", r.returncode == 5 and r.stdout == b"42\n", repr(r))
    out, status = shell_on_terminal(cli, gl, b"stty size; tty; exit 3\r")
    check("guestlink shell on a terminal (a guest pty of the host's size, exit status)",
          status == 3 and b"31 97" in out and b"/dev/pts/" in out, (status, out[-600:]))
    # A forward to a unix socket in the guest: a second agent there, driven from here
    # through the forward (QGA inside a stream inside QGA), with a verified copy.
    c = Qga(qga)
    c.sync(11)
    c.call("guest-exec", {"path": "sh", "arg": ["-c",
           "guestlinkd -m unix-listen -p /tmp/inner.sock -t /tmp >/tmp/inner.log 2>&1 &"]})
    c.close()
    time.sleep(1)
    local = os.path.join(work, "fwd.sock")
    fwd = subprocess.Popen([cli, "-s", gl, "forward", f"{local}:/tmp/inner.sock"],
                           stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(local) and time.monotonic() < deadline:
            time.sleep(0.1)
        r = cli_run(cli, local, "hostname")
        check("forward to a guest unix socket (an agent behind it answers)",
              r.returncode == 0 and b"guestlink-vm" in r.stdout, repr(r))
        src = os.path.join(work, "fwd-payload")
        with open(src, "wb") as f:
            f.write(os.urandom(2 << 20))
        r = cli_run(cli, local, "--json", "cp", src, "guest:/tmp/fwd-payload")
        check("a verified copy through the forward",
              r.returncode == 0 and json.loads(r.stdout or b"{}").get("verified") is True,
              r.stdout + r.stderr)
    finally:
        fwd.kill()
        fwd.wait()
    stream_speed(cli, gl, qga, work, 32, 1)
    # The host goes away (the CLI is killed, so it cannot pass a signal on): the
    # agent sees the port hang up and ends the program's process group.
    p = subprocess.Popen([cli, "-s", gl, "exec", "--", "sh", "-c", "echo $$; exec sleep 300"],
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    pid = p.stdout.readline().strip().decode()
    p.kill()
    p.wait()
    gone = None
    deadline = time.monotonic() + 30
    c = Qga(qga)
    c.sync(12)
    while time.monotonic() < deadline:
        gone = guest_exec(c, "sh", ["-c", f"kill -0 {pid} 2>/dev/null && echo alive || echo gone"])
        if gone and gone[1] == b"gone\n":
            break
        time.sleep(1)
    c.close()
    check("a streamed program ends when the host leaves the port", pid.isdigit() and gone
          and gone[1] == b"gone\n", (pid, gone))


def channel_life(qga, qmp_sock):
    # The host disconnects mid-request and reconnects: a resync and the agent answers.
    c = Qga(qga)
    c.s.sendall(b'{"execute":"guest-get-osinf')
    c.close()
    c = Qga(qga)
    c.sync(3)
    check("reconnect after a half-sent request, then resync",
          c.call("guest-ping") == {"return": {}})
    c.close()
    # Hot-unplug the port and plug it back: the agent (-r) reopens it.
    replug_qga_port(qmp_sock)
    check("the agent answers on the re-plugged port", first_ping(qga, time.monotonic() + 30))


def replug_qga_port(qmp_sock):
    """Unplugs the virtserialport `port-qga` (chardev `qga`, on `vs0.0`) and plugs it
    back, as QEMU's monitor does for a hot-plugged agent channel."""
    r = qmp(qmp_sock, {"execute": "device_del", "arguments": {"id": "port-qga"}})
    check("device_del of the qga virtserialport", "return" in r[0], r)
    time.sleep(2)
    r = qmp(qmp_sock, {"execute": "device_add", "arguments": {
        "driver": "virtserialport", "bus": "vs0.0", "chardev": "qga", "id": "port-qga",
        "name": "org.qemu.guest_agent.0"}})
    check("device_add of the port again", "return" in r[0], r)


if __name__ == "__main__":
    main()
