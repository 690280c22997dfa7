"""guestlinkd.exe under Wine, driven from the host side over a serial line.

Usage: python3 tests/windows/run.py [--release-dir target/release]
                                    [--windows-dir target/windows]

Needs scripts/build-windows.sh to have run (guestlinkd.exe, the MSI and the Wine shim in
target/windows) and Debian's wine64. There is no Windows to boot here, so this is what
can be shown without one:

- the MSI's tables: files, the service entry (name, start type, account, arguments),
  its control on install and removal, the policy under ProgramData;
- in a fresh Wine prefix, COM1 is mapped to a pty (Wine's HKLM\\Software\\Wine\\Ports,
  which becomes the prefix's dosdevices link); guestlinkd.exe serves QGA on it with
  `-m isa-serial -p COM1`, and the host side holds the pty's master, passed on to a
  unix socket so that the project's tools can use it;
- the conformance suite and the `guestlink` CLI drive it: framing, sync, errors, info,
  file round trips, guest-exec (`cmd /c echo`), and the information commands Wine backs;
- Windows semantics: commands qemu-ga for Windows does not have are absent, and its
  Windows-only errors (merged output, set-time without a time) are given;
- the service commands (`guestlink service`) through Wine's service control manager;
- the service: `-s install` registers it with Wine's service control manager, `net start`
  runs it (`-d`, under StartServiceCtrlDispatcher) and it answers on COM1, `net stop`
  stops it, `-s uninstall` removes it;
- the MSI: Wine's msiexec installs it (files, policy, the service started) and removes it.

Prints one line per check and exits non-zero if any fails.
"""
import argparse
import json
import os
import pty
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tty

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vm"))
import run as vm  # noqa: E402  (its check() and counters, as libvirt.py uses them)
from run import Qga, check  # noqa: E402

WINE = "/usr/lib/wine/wine64"
WINESERVER = "/usr/lib/wine/wineserver64"

def msi_table(msi, table):
    """The rows of an MSI table (msiinfo export), as lists of columns."""
    out = subprocess.run(["msiinfo", "export", msi, table], capture_output=True,
                         text=True, check=True).stdout
    return [line.rstrip("\r").split("\t") for line in out.splitlines()[3:] if line]


def check_flags(env):
    """qemu-ga's flags with Windows' defaults."""
    exe = r"C:\guestlink\guestlinkd.exe"

    def agent(*args):
        return subprocess.run([WINE, exe, *args], env=env, capture_output=True, text=True,
                              timeout=60)

    r = agent("-D")
    check("-D: qemu-ga's key file with Windows' defaults",
          r.returncode == 0 and "method=virtio-serial\n" in r.stdout
          and "statedir=C:\\ProgramData\\qemu-ga\n" in r.stdout, r.stdout + r.stderr)
    r = agent("-V")
    check("-V", r.returncode == 0 and r.stdout.startswith("QEMU Guest Agent "), r.stdout)
    r = agent("-m", "unix-listen", "-p", "x")
    check("-m unix-listen: qemu-ga's refusal on Windows", r.returncode == 1
          and "unsupported channel method/type: unix-listen" in r.stderr, r.stderr)
    # The gate reads C:\ProgramData\guestlink\policy.d (where the MSI puts the policy).
    policy = os.path.join(env["WINEPREFIX"], "drive_c", "ProgramData", "guestlink", "policy.d")
    os.makedirs(policy, exist_ok=True)
    with open(os.path.join(policy, "90-wine-test.toml"), "w") as f:
        f.write('[[rule]]\ndeny = ["guest-get-users"]\nreason = "wine-test"\n')
    r = agent("--explain", "command=guest-get-users", "--explain", "command=guest-ping")
    shutil.rmtree(os.path.dirname(policy))
    check("the policy gate reads ProgramData\\guestlink\\policy.d",
          "command=guest-get-users: deny" in r.stdout and "wine-test" in r.stdout
          and "command=guest-ping: allow" in r.stdout, r.stdout + r.stderr)
    r = agent("-s", "vss-install")
    check("-s vss-install: says there is no VSS provider", r.returncode == 1
          and "VSS provider" in r.stderr, r.stderr)


def check_msi(msi):
    files = {r[2].split("|")[-1] for r in msi_table(msi, "File")}
    check("msi: files", {"guestlinkd.exe", "50-default.toml"} <= files, files)
    services = msi_table(msi, "ServiceInstall")
    svc = services[0] if services else []
    # Columns: id, Name, DisplayName, ServiceType, StartType, ErrorControl, LoadOrderGroup,
    # Dependencies, StartName, Password, Arguments, Component_, Description.
    check("msi: service entry",
          len(svc) >= 11 and svc[1] == "guestlinkd" and svc[3] == "16" and svc[4] == "2"
          and svc[8] == "LocalSystem" and svc[10] == "-d -r", svc)
    controls = msi_table(msi, "ServiceControl")
    ctl = controls[0] if controls else []
    # Events: 1 start on install, 2|32 stop on install and removal, 128 delete on removal.
    check("msi: service started, stopped and removed",
          len(ctl) >= 3 and ctl[1] == "guestlinkd" and int(ctl[2]) == 1 | 2 | 32 | 128, ctl)
    dirs = {r[0]: r for r in msi_table(msi, "Directory")}
    check("msi: policy under ProgramData",
          dirs.get("POLICYDIR", [None, None])[1] == "DATADIR"
          and dirs.get("DATADIR", [None, None])[1] == "CommonAppDataFolder", dirs)


class Bridge:
    """The pty's master end, passed on to one unix-socket client at a time."""

    def __init__(self, master, path):
        self.master = master
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(path)
        self.srv.listen(1)
        self.stop = False
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while not self.stop:
            r, _, _ = select.select([self.srv, self.master], [], [], 0.2)
            if self.master in r:
                os.read(self.master, 65536)  # nobody listening: dropped, as a port would
            if self.srv not in r:
                continue
            conn, _ = self.srv.accept()
            while not self.stop:
                r, _, _ = select.select([conn, self.master], [], [], 0.2)
                if conn in r:
                    data = conn.recv(65536)
                    if not data:
                        break
                    os.write(self.master, data)
                if self.master in r:
                    conn.sendall(os.read(self.master, 65536))
            conn.close()


def wait_for_agent(sock, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        try:
            q = Qga(sock, timeout=3)
            q.sync(int(time.time()) % 100000)
            return q
        except (OSError, EOFError, ValueError):
            time.sleep(0.5)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--release-dir", default="target/release")
    ap.add_argument("--windows-dir", default="target/windows")
    ap.add_argument("--keep", action="store_true", help="keep the Wine prefix")
    opts = ap.parse_args()
    rel = os.path.abspath(opts.release_dir)
    win = os.path.abspath(opts.windows_dir)
    exe = os.path.join(win, "guestlinkd.exe")
    msis = [f for f in os.listdir(win) if f.endswith(".msi")] if os.path.isdir(win) else []
    for need in [exe, os.path.join(win, "test", "bcryptprimitives.dll"), WINE,
                 os.path.join(rel, "guestlink"), os.path.join(rel, "guestlink-conformance")]:
        if not os.path.exists(need):
            sys.exit(f"missing {need}: run scripts/build-windows.sh and cargo build --release, "
                     "and install wine64")
    if not msis:
        sys.exit(f"no MSI in {win}: run scripts/build-windows.sh")
    check_msi(os.path.join(win, msis[0]))

    work = tempfile.mkdtemp(prefix="guestlink-wine-")
    prefix = os.path.join(work, "prefix")
    env = dict(os.environ, WINEPREFIX=prefix, WINEDEBUG="-all", WINEDLLOVERRIDES="mscoree,mshtml=")
    t0 = time.time()
    subprocess.run([WINE, "wineboot", "-i"], env=env, capture_output=True, check=True)
    print(f"      (Wine prefix made in {time.time() - t0:.1f} s)")
    system32 = os.path.join(prefix, "drive_c", "windows", "system32")
    shutil.copy(os.path.join(win, "test", "bcryptprimitives.dll"), system32)
    os.makedirs(os.path.join(prefix, "drive_c", "guestlink"))
    shutil.copy(exe, os.path.join(prefix, "drive_c", "guestlink", "guestlinkd.exe"))

    check_flags(env)
    master, slave = pty.openpty()
    tty.setraw(slave)
    slave_path = os.ttyname(slave)
    subprocess.run([WINE, "reg", "add", r"HKLM\Software\Wine\Ports", "/v", "COM1", "/d",
                    slave_path, "/f"], env=env, capture_output=True, check=True)
    # Wine maps the ports at its next start.
    subprocess.run([WINESERVER, "-k"], env=env)
    subprocess.run([WINESERVER, "-w"], env=env)
    sock = os.path.join(work, "qga.sock")
    bridge = Bridge(master, sock)

    agent_exe = r"C:\guestlink\guestlinkd.exe"
    # The service commands may act on the test's service only.
    policy = os.path.join(prefix, "drive_c", "ProgramData", "guestlink", "policy.d")
    os.makedirs(policy, exist_ok=True)
    with open(os.path.join(policy, "90-services.toml"), "w") as f:
        f.write('[services]\nunits = ["guestlinkd"]\n')
    log = open(os.path.join(work, "agent.log"), "w")
    agent = subprocess.Popen([WINE, agent_exe, "-m", "isa-serial", "-p", "COM1",
                              "-t", r"C:\guestlink"], env=env, stdout=log, stderr=log)
    try:
        q = wait_for_agent(sock)
        check("guestlinkd.exe answers guest-sync-delimited on COM1", q is not None,
              open(os.path.join(work, "agent.log")).read()[-2000:])
        if q is None:
            return
        check("COM1 is the pty", os.readlink(os.path.join(prefix, "dosdevices", "com1"))
              == slave_path)
        user = run_protocol_checks(q)
        check_keys_file(prefix, user)
        run_protocol_checks_rest(q)
        q.close()
        run_conformance(rel, sock)
        run_cli(rel, sock, prefix)
        check_services(rel, sock, env, agent_exe)
    finally:
        agent.terminate()
        try:
            agent.wait(10)
        except subprocess.TimeoutExpired:
            agent.kill()
        shutil.rmtree(os.path.dirname(policy), ignore_errors=True)
    run_service(env, sock, agent_exe)
    run_msi(env, prefix, os.path.join(win, msis[0]))
    bridge.stop = True
    subprocess.run([WINESERVER, "-k"], env=env)
    if not opts.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{vm.passed} passed, {len(vm.failed)} failed")
    if vm.failed:
        print("failed: " + ", ".join(vm.failed))
        sys.exit(1)


def run_protocol_checks(q):
    info = q.call("guest-info")["return"]
    names = {c["name"] for c in info["supported_commands"]}
    check("guest-info: the Windows command set",
          {"guest-get-devices", "guest-exec", "guest-file-open", "guest-get-osinfo",
           "guest-ssh-add-authorized-keys", "guest-set-user-password", "guest-get-load",
           "__org.guestlink_stream-enable", "__org.guestlink_bulk-enable"} <= names
          and not names & {"guest-get-memory-blocks", "guest-set-vcpus", "guest-suspend-hybrid",
                           "guest-get-diskstats", "guest-network-get-route",
                           "__org.guestlink_clipboard-get", "__org.guestlink_session-lock"},
          sorted(names))
    r = q.call("guest-get-memory-blocks")
    check("a Linux-only command is CommandNotFound",
          r.get("error", {}).get("class") == "CommandNotFound", r)
    osinfo = q.call("guest-get-osinfo")["return"]
    check("guest-get-osinfo as qemu-ga for Windows",
          osinfo.get("id") == "mswindows" and osinfo.get("name") == "Microsoft Windows"
          and osinfo.get("kernel-release", "").isdigit()
          and osinfo.get("version", "").startswith("Microsoft Windows")
          and osinfo.get("variant") in ("client", "server")
          and osinfo.get("machine") == "x86_64", osinfo)
    r = q.call("guest-exec", {"path": "cmd", "capture-output": "merged"})
    check("guest-exec merged: qemu-ga's Windows error",
          r.get("error", {}).get("desc") == "merged unsupported on windows", r)
    r = q.call("guest-set-time")
    check("guest-set-time without a time: qemu-ga's Windows error",
          r.get("error", {}).get("desc") == "Time argument is required on this platform", r)
    r = q.call("guest-get-host-name")["return"]
    check("guest-get-host-name", bool(r.get("host-name")), r)
    tz = q.call("guest-get-timezone")["return"]
    check("guest-get-timezone", isinstance(tz.get("offset"), int) and tz.get("zone"), tz)
    ifs = q.call("guest-network-get-interfaces")["return"]
    lo = [a for i in ifs for a in i.get("ip-addresses", []) if a["ip-address"] == "127.0.0.1"]
    check("guest-network-get-interfaces: addresses and counters",
          lo and lo[0]["prefix"] == 8 and all("statistics" in i for i in ifs), ifs[:2])
    vcpus = q.call("guest-get-vcpus")["return"]
    check("guest-get-vcpus", len(vcpus) == os.cpu_count() and all(v["online"] for v in vcpus),
          vcpus)
    fs = q.call("guest-get-fsinfo")["return"]
    check("guest-get-fsinfo: C: with its size",
          any(f["mountpoint"] == "C:\\" and f.get("total-bytes", 0) > 0 for f in fs), fs)
    r = q.call("guest-get-disks")
    check("guest-get-disks answers", isinstance(r.get("return"), list), r)
    r = q.call("guest-fstrim")
    paths = r.get("return", {}).get("paths", [])
    check("guest-fstrim: one result per fixed volume (Wine has no defrag.exe: an error each)",
          any(p.get("path") == "C:\\" and ("error" in p or "trimmed" in p) for p in paths), r)
    r = q.call("guest-fsfreeze-freeze")
    status = q.call("guest-fsfreeze-status").get("return")
    check("guest-fsfreeze-freeze: refused without VSS, and nothing stays frozen",
          r.get("error", {}).get("class") == "GenericError" and status == "thawed", (r, status))
    t = q.call("guest-get-time")["return"]
    check("guest-get-time", abs(t / 1e9 - time.time()) < 60, t)
    r = q.call("guest-get-devices")
    check("guest-get-devices answers (Wine has no PCI devices)", r.get("return") == [], r)
    r = q.call("guest-get-users")
    check("guest-get-users answers (WTS)", isinstance(r.get("return"), list), r)
    # Files: a Windows path, write, seek, read back.
    h = q.call("guest-file-open", {"path": r"C:\guestlink\round.txt", "mode": "w+"})["return"]
    w = q.call("guest-file-write", {"handle": h, "buf-b64": "aGVsbG8gd2luZG93cw=="})["return"]
    q.call("guest-file-seek", {"handle": h, "offset": 0, "whence": "set"})
    rd = q.call("guest-file-read", {"handle": h, "count": 100})["return"]
    q.call("guest-file-close", {"handle": h})
    check("guest-file-* round trip on C:", w["count"] == 13 and rd["buf-b64"] == "aGVsbG8gd2luZG93cw=="
          and rd["eof"], (w, rd))
    r = q.call("guest-file-open", {"path": r"C:\no\such\dir\x", "mode": "r"})
    check("guest-file-open of a missing file: GenericError",
          r.get("error", {}).get("class") == "GenericError"
          and r["error"]["desc"].startswith(r"failed to open file 'C:\no\such\dir\x' (mode: 'r')"), r)
    # guest-exec: cmd /c echo, output captured.
    pid = q.call("guest-exec", {"path": "cmd", "arg": ["/c", "echo hello from cmd"],
                                "capture-output": True})["return"]["pid"]
    st = {}
    for _ in range(100):
        st = q.call("guest-exec-status", {"pid": pid})["return"]
        if st.get("exited"):
            break
        time.sleep(0.1)
    import base64
    out = base64.b64decode(st.get("out-data", "")).decode(errors="replace")
    check("guest-exec: cmd /c echo, exit code and output",
          st.get("exited") and st.get("exitcode") == 0 and "hello from cmd" in out, st)
    # Events: EXEC_EXITED reaches a subscriber.
    q.call("__org.guestlink_events-subscribe", {"events": ["EXEC_EXITED"]})
    pid = q.call("guest-exec", {"path": "cmd", "arg": ["/c", "exit 5"]})["return"]["pid"]
    events = []
    for _ in range(100):
        q.call("guest-ping")
        events = q.take_events("EXEC_EXITED")
        if events:
            break
        time.sleep(0.1)
    q.call("__org.guestlink_events-unsubscribe", {})
    check("events: EXEC_EXITED for a program that ended",
          events and events[0]["data"].get("pid") == pid
          and events[0]["data"].get("exitcode") == 5, events)
    r = q.call("guest-exec", {"path": "no-such-program.exe"})
    check("guest-exec of a missing program: GenericError",
          r.get("error", {}).get("class") == "GenericError", r)
    # SSH keys for Windows OpenSSH, for the account Wine runs as.
    import getpass
    user = getpass.getuser()
    r = q.call("guest-ssh-add-authorized-keys", {"username": user, "keys": ["ssh-ed25519 AAAA k1", "ssh-ed25519 AAAA k2"]})
    got = q.call("guest-ssh-get-authorized-keys", {"username": user})
    q.call("guest-ssh-remove-authorized-keys", {"username": user, "keys": ["ssh-ed25519 AAAA k1"]})
    left = q.call("guest-ssh-get-authorized-keys", {"username": user})
    check("guest-ssh-*-authorized-keys for a Wine account",
          "return" in r and got.get("return", {}).get("keys") == ["ssh-ed25519 AAAA k1", "ssh-ed25519 AAAA k2"]
          and left.get("return", {}).get("keys") == ["ssh-ed25519 AAAA k2"], (r, got, left))
    return user


def check_keys_file(prefix, user):
    """The keys are where Windows OpenSSH reads them (Wine's account is no administrator)."""
    path = os.path.join(prefix, "drive_c", "users", user, ".ssh", "authorized_keys")
    text = open(path).read() if os.path.exists(path) else ""
    check("the keys file is <profile>\\.ssh\\authorized_keys", text == "ssh-ed25519 AAAA k2", text)


def run_protocol_checks_rest(q):
    # (A plain password is not tried: Wine's NetUserSetInfo never returns.)
    r = q.call("guest-set-user-password", {"username": "x", "password": "cGFzcw==",
                                           "crypted": True})
    check("guest-set-user-password crypted: unsupported, as qemu-ga for Windows",
          r.get("error", {}).get("desc") == "this feature or command is not currently supported",
          r)
    r = q.call("guest-ssh-get-authorized-keys", {"username": "nobody-such"})
    check("guest-ssh-get-authorized-keys of an unknown user: GenericError",
          r.get("error", {}).get("desc", "").startswith("failed to lookup user 'nobody-such'"), r)
    q.s.sendall(b'{"execute": "guest-ping", "arguments": {"x": 1}}\n')
    r = json.loads(q.line())
    check("an unexpected argument: GenericError", r.get("error", {}).get("class") == "GenericError", r)
    q.s.sendall(b'{"execute": ]\n')
    r = json.loads(q.line())
    check("malformed JSON: an error, and the agent serves on",
          "error" in r and q.call("guest-ping") == {"return": {}}, r)


def run_conformance(rel, sock):
    r = subprocess.run([os.path.join(rel, "guestlink-conformance"), "--socket", sock],
                       capture_output=True, text=True, timeout=600)
    print("\n".join("      " + line for line in r.stdout.splitlines()))
    check("conformance suite over COM1", r.returncode == 0, r.stderr[-2000:])


def run_cli(rel, sock, prefix):
    gl = [os.path.join(rel, "guestlink"), "--socket", sock]

    def cli(*args, stdin=None):
        return subprocess.run(gl + list(args), capture_output=True, text=True, timeout=120,
                              input=stdin)

    r = cli("ping")
    check("guestlink ping", r.returncode == 0, r.stderr)
    r = cli("--json", "osinfo")
    check("guestlink osinfo", r.returncode == 0 and '"mswindows"' in r.stdout, r.stdout + r.stderr)
    r = cli("-v", "exec", "--", "cmd", "/c", "echo", "via the CLI")
    check("guestlink exec cmd /c echo, streamed", r.returncode == 0 and "via the CLI" in r.stdout
          and "stream" in r.stderr, r.stdout + r.stderr)
    # (Wine's findstr and find do not read a pipe; cmd's set /p does.)
    r = cli("exec", "--", "cmd", "/c", "set /p v= & echo got %v%", stdin="from the host\n")
    check("guestlink exec: our input reaches the program",
          r.returncode == 0 and "got from the host" in r.stdout, r.stdout + r.stderr)
    r = cli("exec", "--user", "someone-else", "--", "cmd", "/c", "echo")
    check("guestlink exec as another account: refused with the reason",
          r.returncode != 0 and "own account" in r.stderr, r.stderr)
    r = cli("shell", "echo", "shell-works")
    check("guestlink shell COMMAND: cmd /c", r.returncode == 0 and "shell-works" in r.stdout,
          r.stdout + r.stderr)
    check_terminal_shell(gl)
    check_forward(gl)
    r = cli("exec", "--", "cmd", "/c", "exit 3")
    check("guestlink exec: the exit status is ours", r.returncode == 3, r.returncode)
    data = os.urandom(300_000)
    src = os.path.join(os.path.dirname(sock), "to-guest.bin")
    back = os.path.join(os.path.dirname(sock), "from-guest.bin")
    with open(src, "wb") as f:
        f.write(data)
    r1 = cli("cp", src, r"guest:C:\guestlink\copied.bin")
    r2 = cli("cp", r"guest:C:\guestlink\copied.bin", back)
    ok = r1.returncode == 0 and r2.returncode == 0 and open(back, "rb").read() == data
    inside = os.path.join(prefix, "drive_c", "guestlink", "copied.bin")
    check("guestlink cp to the guest and back (300 kB)",
          ok and open(inside, "rb").read() == data, r1.stderr + r2.stderr)
    check_paths(cli, prefix)
    for sub, want in [("hostname", ""), ("interfaces", "127.0.0.1"), ("vcpus", ""),
                      ("fsinfo", "C:"), ("time", ""), ("timezone", ""), ("users", "")]:
        r = cli(sub)
        check(f"guestlink {sub}", r.returncode == 0 and want in r.stdout, r.stdout + r.stderr)
    r = cli("info")
    check("guestlink info", r.returncode == 0 and "guest-get-devices" in r.stdout, r.stderr)


def check_paths(cli, prefix):
    """The path commands on Windows paths: mkdir -p, stat, ls, rm -r, and the drive's
    root refused."""
    inside = os.path.join(prefix, "drive_c", "guestlink", "tree")
    r = cli("mkdir", "-p", r"guest:C:\guestlink\tree\sub")
    check("guestlink mkdir -p on a Windows path",
          r.returncode == 0 and os.path.isdir(os.path.join(inside, "sub")), r.stderr)
    with open(os.path.join(inside, "sub", "f.txt"), "wb") as f:
        f.write(b"twelve bytes")
    r = cli("--json", "stat", r"guest:C:\guestlink\tree\sub\f.txt")
    check("guestlink stat: a file of 12 bytes",
          r.returncode == 0 and '"size": 12' in r.stdout and '"file"' in r.stdout,
          r.stdout + r.stderr)
    r = cli("ls", r"guest:C:\guestlink\tree")
    check("guestlink ls lists the directory", r.returncode == 0 and "sub" in r.stdout,
          r.stdout + r.stderr)
    r = cli("rm", r"guest:C:\guestlink\tree")
    check("guestlink rm of a directory without -r: refused",
          r.returncode != 0 and os.path.isdir(inside), r.stderr)
    r = cli("rm", "-r", r"guest:C:\guestlink\tree")
    check("guestlink rm -r removes the tree", r.returncode == 0 and not os.path.exists(inside),
          r.stderr)
    r = cli("rm", "-r", "guest:C:\\")
    check("guestlink rm -r of the drive's root: refused",
          r.returncode != 0 and "root directory" in r.stderr, r.stderr)
    r = cli("stat", "guest:relative")
    check("guestlink stat of a relative path: refused",
          r.returncode != 0 and "not absolute" in r.stderr, r.stderr)


def check_services(rel, sock, env, agent_exe):
    """The service commands through Wine's service control manager, on a guestlinkd
    service of the test's (registered with -s install on a port that does not exist, with
    -r, so it runs, retrying the port, until stopped): status, start, stop, disable, enable, and
    the policy's refusal of any other service."""
    gl = [os.path.join(rel, "guestlink"), "--socket", sock, "--timeout", "60"]

    def cli(*args):
        return subprocess.run(gl + list(args), capture_output=True, text=True, timeout=120)

    def status():
        r = cli("--json", "service", "status", "guestlinkd")
        try:
            return json.loads(r.stdout)
        except ValueError:
            return {"error": r.stdout + r.stderr}

    r = subprocess.run([WINE, agent_exe, "-s", "install", "-m", "isa-serial", "-p", "COM7", "-r"],
                       env=env, capture_output=True, text=True, timeout=60)
    check("services: a guestlinkd service on COM7 is registered", r.returncode == 0,
          r.stdout + r.stderr)
    try:
        r = cli("service", "list")
        check("guestlink service list: Wine's services and ours",
              r.returncode == 0 and "guestlinkd" in r.stdout and "Spooler" in r.stdout,
              r.stdout + r.stderr)
        s = status()
        check("guestlink service status: stopped, started at boot (enabled)",
              s.get("active-state") == "inactive" and s.get("sub-state") == "stopped"
              and s.get("unit-file-state") == "enabled"
              and s.get("description") == "guestlink Guest Agent", s)
        r = cli("--json", "service", "start", "guestlinkd")
        s = status()
        check("guestlink service start: running, with its process",
              r.returncode == 0 and s.get("active-state") == "active"
              and s.get("sub-state") == "running" and s.get("main-pid", 0) > 0,
              r.stderr + str(s))
        r = cli("service", "stop", "guestlinkd")
        s = status()
        check("guestlink service stop: stopped", r.returncode == 0
              and s.get("active-state") == "inactive", r.stderr + str(s))
        r = cli("service", "disable", "guestlinkd")
        s = status()
        check("guestlink service disable: a manual start",
              r.returncode == 0 and s.get("unit-file-state") == "disabled"
              and "0x3" in service_key(env), r.stderr + str(s))
        r = cli("service", "enable", "guestlinkd")
        s = status()
        check("guestlink service enable: an automatic start again",
              r.returncode == 0 and s.get("unit-file-state") == "enabled"
              and "0x2" in service_key(env), r.stderr + str(s))
        r = cli("service", "stop", "Spooler")
        check("guestlink service stop of a service the policy does not list: refused",
              r.returncode != 0 and "not allowed by the policy" in r.stderr, r.stderr)
        r = cli("service", "status", "no-such-service")
        check("guestlink service status of an unknown service: Windows' error",
              r.returncode != 0 and "does not exist" in r.stderr, r.stderr)
        r = cli("service", "status", "a\\b")
        check("guestlink service status of a name with a backslash: refused",
              r.returncode != 0 and "invalid service name" in r.stderr, r.stderr)
    finally:
        subprocess.run([WINE, "net", "stop", "guestlinkd"], env=env, capture_output=True,
                       timeout=60)
        r = subprocess.run([WINE, agent_exe, "-s", "uninstall"], env=env, capture_output=True,
                           text=True, timeout=60)
        check("services: the test's service is removed", r.returncode == 0, r.stdout + r.stderr)


def run_msi(env, prefix, msi):
    """Wine's msiexec installs the MSI: files, the service (started, retrying the vioserial
    port Wine does not have), the policy; and removes it all again."""
    shutil.copy(msi, os.path.join(prefix, "drive_c", "guestlink.msi"))
    r = subprocess.run([WINE, "msiexec", "/i", r"C:\guestlink.msi", "/qn"], env=env,
                       capture_output=True, text=True, timeout=120)
    exe = os.path.join(prefix, "drive_c", "Program Files", "guestlink", "guestlinkd.exe")
    policy = os.path.join(prefix, "drive_c", "ProgramData", "guestlink", "policy.d",
                          "50-default.toml")
    check("msiexec /i installs guestlinkd.exe and the policy",
          r.returncode == 0 and os.path.exists(exe) and os.path.exists(policy),
          r.stdout + r.stderr)
    key = service_key(env)
    state = subprocess.run([WINE, "sc", "query", "guestlinkd"], env=env, capture_output=True,
                           text=True, timeout=60).stdout
    check("the MSI registers the service and starts it",
          "guestlinkd.exe -d -r" in key and "RUNNING" in state, key + state)
    r = subprocess.run([WINE, "msiexec", "/x", r"C:\guestlink.msi", "/qn"], env=env,
                       capture_output=True, text=True, timeout=120)
    check("msiexec /x removes the files and the service",
          r.returncode == 0 and not os.path.exists(exe) and not os.path.exists(policy)
          and "guestlinkd.exe" not in service_key(env), r.stdout + r.stderr)


def service_key(env):
    """The service's registry key as `reg query` prints it (Wine's sc has no `qc`)."""
    return subprocess.run([WINE, "reg", "query", r"HKLM\System\CurrentControlSet\Services\guestlinkd"],
                          env=env, capture_output=True, text=True, timeout=60).stdout


def check_terminal_shell(gl):
    """`guestlink shell` on a terminal: Windows has no terminal for it yet (ConPTY), and
    says so rather than start a shell without one."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(gl[0], gl + ["shell"])
    out = b""
    end = time.time() + 30
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    check("guestlink shell on a terminal: refused with the reason (no ConPTY yet)",
          "ConPTY" in text and os.waitstatus_to_exitcode(status) != 0, text[-1500:])


def check_forward(gl):
    """`guestlink forward` as ssh -L: a host port, connected from inside the guest (Wine
    shares the host's network) to an echo server on the host."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    target = srv.getsockname()[1]

    def echo():
        c, _ = srv.accept()
        c.sendall(c.recv(1024))
        c.close()

    threading.Thread(target=echo, daemon=True).start()
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    local = probe.getsockname()[1]
    probe.close()
    fwd = subprocess.Popen(gl + ["forward", f"127.0.0.1:{local}:127.0.0.1:{target}"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got = b""
    try:
        for _ in range(100):
            try:
                c = socket.create_connection(("127.0.0.1", local), timeout=10)
                break
            except OSError:
                time.sleep(0.1)
        else:
            c = None
        if c:
            c.sendall(b"through the guest")
            got = c.recv(1024)
            c.close()
    finally:
        fwd.terminate()
        out, err = fwd.communicate(timeout=10)
    check("guestlink forward: a connection made from inside the guest",
          got == b"through the guest", err)


def run_service(env, sock, agent_exe):
    r = subprocess.run([WINE, agent_exe, "-s", "install", "-m", "isa-serial", "-p", "COM1"],
                       env=env, capture_output=True, text=True, timeout=60)
    check("-s install registers the service", r.returncode == 0
          and "installed successfully" in r.stdout, r.stdout + r.stderr)
    r = service_key(env)
    # (Wine's service manager does not keep failure actions: the restart is not checked.)
    check("the service runs guestlinkd.exe -d with the given options, automatically",
          "guestlinkd.exe -d -m isa-serial -p COM1" in r and "0x2" in r, r)
    r = subprocess.run([WINE, "net", "start", "guestlinkd"], env=env, capture_output=True,
                       text=True, timeout=60)
    # (A loaded machine has taken more than 30 s for Wine's service manager to start it.)
    q = wait_for_agent(sock, 90)
    check("net start: the service answers on COM1", q is not None and
          q.call("guest-ping") == {"return": {}}, r.stdout + r.stderr)
    if q:
        q.close()
    r = subprocess.run([WINE, "net", "stop", "guestlinkd"], env=env, capture_output=True,
                       text=True, timeout=60)
    q = wait_for_agent(sock, 3)
    check("net stop: the service stops", r.returncode == 0 and q is None, r.stdout + r.stderr)
    r = subprocess.run([WINE, agent_exe, "-s", "uninstall"], env=env, capture_output=True,
                       text=True, timeout=60)
    check("-s uninstall removes it", r.returncode == 0 and "deleted successfully" in r.stdout,
          r.stdout + r.stderr)
    r = service_key(env)
    check("the service is gone", "guestlinkd.exe" not in r, r)


if __name__ == "__main__":
    main()
