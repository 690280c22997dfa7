#!/usr/bin/env python3
"""guestlinkd under a real libvirt: the test guest of run.py booted as a libvirt domain
(QEMU under TCG) with libvirt's own QGA channel and guestlink's `org.guestlink.0`.

Checks that libvirt's agent client works with guestlinkd unchanged (virsh
qemu-agent-command, domtime, domhostname, guestinfo, domfsinfo) while libvirt holds
the QGA socket, and that `guestlink --domain NAME` finds the domain's
`org.guestlink.0` socket through virsh and streams through it.

Needs libvirtd running (started here when it is not: `.ci/run` installs the daemon and
the QEMU driver). Prints one line per check and exits non-zero if any fails.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import guest  # noqa: E402
import run  # noqa: E402
from run import check  # noqa: E402

DOMAIN = "guestlink-libvirt-test"


def virsh(*args, timeout=60):
    return subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True,
                          text=True, timeout=timeout)


def ensure_libvirtd(work):
    """A libvirtd to talk to: the running one, or one started here (as root, with QEMU
    run as root and no cgroups: this is a container, not a host)."""
    if virsh("version").returncode == 0:
        return None
    conf = "/etc/libvirt/qemu.conf"
    wanted = ['user = "root"', 'group = "root"', "dynamic_ownership = 0",
              'security_driver = "none"', "cgroup_controllers = [ ]", "namespaces = [ ]",
              'stdio_handler = "file"']
    text = open(conf).read() if os.path.exists(conf) else ""
    missing = [w for w in wanted if w not in text]
    if missing:
        with open(conf, "a") as f:
            f.write("\n# guestlink tests: QEMU as root, no cgroups or namespaces\n")
            f.write("\n".join(missing) + "\n")
    # libvirt resolves its compiled-in QEMU user even when told to use root.
    if subprocess.run(["id", "libvirt-qemu"], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", "libvirt-qemu"],
                       check=True)
    os.makedirs("/run/libvirt", exist_ok=True)
    log = open(os.path.join(work, "libvirtd.log"), "w")
    d = subprocess.Popen(["libvirtd"], stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 30
    while virsh("version").returncode != 0:
        if time.monotonic() > deadline or d.poll() is not None:
            raise SystemExit("libvirtd did not start: " + open(log.name).read()[-2000:])
        time.sleep(0.3)
    return d


DOMAIN_XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>512</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet loglevel=4</cmdline>
  </os>
  <cpu mode='maximum'/>
  <on_reboot>destroy</on_reboot>
  <devices>
    <serial type='file'><source path='{console}'/><target port='0'/></serial>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <controller type='virtio-serial' index='0'/>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <channel type='unix'>
      <target type='virtio' name='org.guestlink.0'/>
    </channel>
  </devices>
</domain>
"""


def agent_cmd(cmd, timeout=10):
    r = virsh("qemu-agent-command", DOMAIN, "--timeout", str(timeout), json.dumps(cmd))
    return json.loads(r.stdout) if r.returncode == 0 else {"virsh-error": r.stderr.strip()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--release-dir", default="target/release")
    opts = ap.parse_args()
    rel = os.path.abspath(opts.release_dir)
    cli = os.path.join(rel, "guestlink")
    work = tempfile.mkdtemp(prefix="gl-libvirt-")
    os.chmod(work, 0o755)
    t0 = time.monotonic()
    daemon = ensure_libvirtd(work)
    kver = sorted(os.listdir("/lib/modules"))[-1]
    kdir = f"/lib/modules/{kver}"
    kernel = guest.extract_vmlinux(f"/boot/vmlinuz-{kver}", os.path.join(work, "vmlinux"))
    initrd = os.path.join(work, "initramfs.gz")
    guest.build_initramfs(initrd, kdir, [
        (os.path.join(rel, "guestlinkd"), "/usr/bin/guestlinkd"),
        (os.path.join(rel, "guestlink-session"), "/usr/bin/guestlink-session")])
    console = os.path.join(work, "console.log")
    disk = os.path.join(work, "data.img")
    with open(disk, "wb") as f:
        f.truncate(32 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "gldata", disk], check=True)
    xml = os.path.join(work, "domain.xml")
    with open(xml, "w") as f:
        f.write(DOMAIN_XML.format(name=DOMAIN, kernel=kernel, initrd=initrd, console=console,
                                  disk=disk))
    virsh("destroy", DOMAIN)
    virsh("undefine", DOMAIN)
    r = virsh("create", xml)
    check("libvirt starts the domain", r.returncode == 0, r.stderr)
    try:
        if r.returncode == 0:
            domain_checks(cli)
    finally:
        virsh("destroy", DOMAIN)
        if run.failed and os.path.exists(console):
            print("---- guest console ----")
            print(open(console, errors="replace").read()[-4000:])
        if daemon is not None:
            daemon.terminate()
            daemon.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{run.passed} passed, {len(run.failed)} failed, {time.monotonic() - t0:.1f} s in all")
    sys.exit(1 if run.failed else 0)


def domain_checks(cli):
    # libvirt's own agent client: it connects when the guest side opens the port.
    deadline = time.monotonic() + 150
    ping = {}
    while time.monotonic() < deadline:
        ping = agent_cmd({"execute": "guest-ping"}, timeout=5)
        if ping.get("return") == {}:
            break
        time.sleep(1)
    check("virsh qemu-agent-command guest-ping", ping.get("return") == {}, ping)
    if ping.get("return") != {}:
        return
    info = agent_cmd({"execute": "guest-info"})
    names = {c["name"] for c in info.get("return", {}).get("supported_commands", [])}
    check("virsh qemu-agent-command guest-info lists the QGA commands",
          {"guest-exec", "guest-get-fsinfo", "guest-sync-delimited"} <= names, info)
    r = virsh("domhostname", DOMAIN, "--source", "agent")
    check("virsh domhostname --source agent", r.stdout.strip() == "guestlink-vm",
          r.stdout + r.stderr)
    r = virsh("domtime", DOMAIN)
    check("virsh domtime", r.returncode == 0 and "Time:" in r.stdout, r.stdout + r.stderr)
    r = virsh("guestinfo", DOMAIN, "--os", "--hostname")
    check("virsh guestinfo --os --hostname", r.returncode == 0
          and "guestlink-vm" in r.stdout and "guestlink test VM" in r.stdout,
          r.stdout + r.stderr)
    r = virsh("domfsinfo", DOMAIN)
    check("virsh domfsinfo (the data disk on vda)", r.returncode == 0 and "/mnt/data" in r.stdout
          and "vda" in r.stdout, r.stdout + r.stderr)
    # guestlink beside libvirt: libvirt holds the QGA socket, guestlink finds its own port.
    r = subprocess.run([cli, "--domain", DOMAIN, "--timeout", "30", "exec", "--", "sh", "-c",
                        "cat; hostname; exit 4"], input=b"from the host\n",
                       capture_output=True, timeout=120)
    check("guestlink --domain: streamed exec through org.guestlink.0 while libvirt holds QGA",
          r.returncode == 4 and r.stdout == b"from the host\nguestlink-vm\n", repr(r))
    r = subprocess.run([cli, "--domain", DOMAIN, "shell"], input=b"echo $((6*7)); exit 0\n",
                       capture_output=True, timeout=120)
    check("guestlink --domain shell", r.returncode == 0 and r.stdout == b"42\n", repr(r))
    ping = agent_cmd({"execute": "guest-ping"})
    check("libvirt's agent client still answered afterwards", ping.get("return") == {}, ping)


if __name__ == "__main__":
    main()
