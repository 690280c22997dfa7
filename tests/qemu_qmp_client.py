"""QEMU's own Python client (PyPI qemu.qmp, as used by qemu-ga-client) against guestlinkd.

Usage: python3 tests/qemu_qmp_client.py PATH-TO-guestlinkd
Prints 'N passed, N failed' and exits non-zero on any failure.
"""
import os, subprocess, sys, tempfile, time
from qemu.qmp.legacy import QEMUMonitorProtocol

agent = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="gl-qmp-")
sock = os.path.join(tmp, "qga.sock")
proc = subprocess.Popen([agent, "-m", "unix-listen", "-p", sock, "-t", tmp])
passed = failed = 0

def check(name, cond):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAILED:", name)

try:
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    q = QEMUMonitorProtocol(sock)
    check("connect without greeting", q.connect(negotiate=False) is None)
    check("guest-ping", q.cmd("guest-ping") == {})
    check("guest-sync echo", q.cmd("guest-sync", id=12345) == 12345)
    info = q.cmd("guest-info")
    check("guest-info version", isinstance(info["version"], str) and info["version"])
    check("guest-info commands", any(c["name"] == "guest-get-osinfo" for c in info["supported_commands"]))
    osinfo = q.cmd("guest-get-osinfo")
    check("guest-get-osinfo", "kernel-release" in osinfo)
    err = q.cmd_obj({"execute": "guest-bogus"})
    check("unknown command error", err["error"]["class"] == "CommandNotFound")
    check("argument error", q.cmd_obj({"execute": "guest-sync", "arguments": {}})["error"]["desc"] == "Parameter 'id' is missing")
    check("time", q.cmd("guest-get-time") > 0)
    q.close()
finally:
    proc.terminate()
    check("exit status 0 on SIGTERM", proc.wait(timeout=5) == 0)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
