"""The agent image and its cloud-init seed at a real first boot, with no guest network.

Usage: python3 tests/iso/run.py --release-dir target/release --from DIR [--from DIR2] [--root ROOT]

DIR holds the static guestlinkd, guestlink-session and guestlink for the build machine's
architecture (scripts/static-build.sh); DIR2, when given, the same for another (the aarch64
cross-build, scripts/static-build.sh aarch64-unknown-linux-gnu). The image carries both.
An aarch64 build is checked without an aarch64 machine: the image's install.sh installs it
into a --root with --arch aarch64 and removes it again, and the installed guestlinkd,
run under qemu-aarch64-static (user-mode emulation), answers QGA on a unix socket.
ROOT (default /tmp/guestlink-ciroot) is a Debian root made with debootstrap: systemd,
udev and cloud-init, and no guest agent at all. It is booted under QEMU (TCG here) as
tests/package/boot.py boots its root, without a network card, with two read-only disks
attached: the seed (`guestlink iso --cloud-init`, label cidata) and the agent image
(`guestlink iso`, label GUESTLINK). Nothing is done inside the guest by hand: cloud-init
finds the seed, its user-data mounts the agent image and runs install.sh, and the host
waits for guestlinkd to answer guest-ping on org.qemu.guest_agent.0.

Before booting, both images are read with tools other than ours: isoinfo (genisoimage)
for the labels and the Joliet and Rock Ridge trees, and xorriso for the file list.
Prints one line per check and exits non-zero if any fails.
"""
import argparse
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "vm"))
sys.path.insert(0, os.path.join(HERE, "..", "package"))
import boot  # noqa: E402
import guest  # noqa: E402
import run  # noqa: E402
from run import Qga, check  # noqa: E402

MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
# debootstrap resolves no virtual packages: python3-cryptography's cffi API is named.
PACKAGES = "systemd,systemd-sysv,udev,dbus,cloud-init,python3-cffi-backend,procps"
MODULES = boot.MODULES + ["isofs"]
HOSTNAME = "guestlink-ci"


def make_root(root):
    if os.path.exists(os.path.join(root, "usr/bin/cloud-init")):
        return
    shutil.rmtree(root, ignore_errors=True)
    suite = "bookworm"
    for line in open("/etc/os-release"):
        if line.startswith("VERSION_CODENAME="):
            suite = line.split("=", 1)[1].strip() or suite
    log = "/tmp/guestlink-ciroot-debootstrap.log"
    with open(log, "w") as f:
        r = subprocess.run(["debootstrap", "--variant=minbase", f"--include={PACKAGES}", suite,
                            root, MIRROR], stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        print(open(log).read()[-3000:])
        raise SystemExit("debootstrap failed")


def read_back(image, label, files):
    """The image as isoinfo and xorriso read it."""
    d = subprocess.run(["isoinfo", "-d", "-i", image], capture_output=True, text=True).stdout
    check(f"isoinfo: {os.path.basename(image)} is labelled {label}, with Joliet and Rock Ridge",
          f"Volume id: {label}\n" in d and "Joliet" in d and "Rock Ridge signatures" in d, d)
    listing = subprocess.run(["xorriso", "-indev", image, "-find", "/", "-type", "f", "-exec",
                              "lsdl"], capture_output=True, text=True).stdout
    missing = [f for f in files if f"'/{f}'" not in listing]
    check(f"xorriso lists {', '.join(files)}", not missing, listing)
    return listing


def elf_arch(path):
    """The `uname -m` name of an executable's architecture, from its ELF header."""
    with open(path, "rb") as f:
        head = f.read(20)
    machine = int.from_bytes(head[18:20], "little")
    return {62: "x86_64", 183: "aarch64"}.get(machine, f"machine {machine}")


EMULATORS = {"aarch64": "qemu-aarch64-static"}


def foreign_arch(image, arch, built, work):
    """Another architecture's executables on the image: install.sh --arch installs and
    removes them, and the installed guestlinkd serves QGA under user-mode emulation."""
    disc = os.path.join(work, "disc")
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", image, "-extract", "/", disc],
                   check=True, capture_output=True)
    want = {b: hashlib.sha256(open(os.path.join(built, b), "rb").read()).hexdigest()
            for b in ["guestlinkd", "guestlink-session", "guestlink"]}
    sums = {}
    for line in open(os.path.join(disc, "SHA256SUMS")).read().splitlines():
        digest, _, name = line.partition("  ")
        sums[name] = digest
    check(f"SHA256SUMS lists the {arch} executables as built",
          all(sums.get(f"{arch}/{b}") == h for b, h in want.items()), sums)
    root = os.path.join(work, f"root-{arch}")
    os.makedirs(root)
    r = subprocess.run(["sh", os.path.join(disc, "install.sh"), "--root", root, "--arch", arch,
                        "--no-start"], capture_output=True, text=True)
    installed = os.path.join(root, "usr/sbin/guestlinkd")
    check(f"install.sh --arch {arch} --root installs the {arch} guestlinkd",
          r.returncode == 0 and os.path.exists(installed) and elf_arch(installed) == arch
          and hashlib.sha256(open(installed, "rb").read()).hexdigest() == want["guestlinkd"],
          r.stdout + r.stderr)
    emulator = shutil.which(EMULATORS.get(arch, ""))
    check(f"an emulator runs {arch} executables here ({EMULATORS.get(arch)})", emulator is not None)
    state = tempfile.mkdtemp(prefix=f"guestlink-{arch}-")
    sock = os.path.join(state, "qga.sock")
    agent = subprocess.Popen([emulator, installed, "-m", "unix-listen", "-p", sock, "-t", state],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(sock) and time.monotonic() < deadline and agent.poll() is None:
            time.sleep(0.1)
        c = Qga(sock, timeout=30)
        c.sync(27)
        ping = c.call("guest-ping")
        info = c.call("guest-info").get("return", {})
        osinfo = c.call("guest-get-osinfo").get("return", {})
        bad = c.call("guest-sync", {})
        c.close()
        check(f"the {arch} guestlinkd answers guest-ping, guest-info and guest-get-osinfo",
              ping == {"return": {}} and info.get("version")
              and any(x["name"] == "guest-get-osinfo" for x in info.get("supported_commands", []))
              and osinfo.get("machine") == arch, (ping, osinfo))
        check(f"the {arch} guestlinkd's errors are qemu-ga's",
              bad.get("error", {}).get("desc") == "Parameter 'id' is missing", bad)
    finally:
        agent.terminate()
        try:
            code = agent.wait(timeout=10)
        except subprocess.TimeoutExpired:
            agent.kill()
            code = agent.wait()
    check(f"the {arch} guestlinkd exits 0 on SIGTERM", code == 0, agent.stderr.read())
    r = subprocess.run(["sh", os.path.join(disc, "install.sh"), "--root", root, "--uninstall"],
                       capture_output=True, text=True)
    left = [os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs]
    check(f"install.sh --uninstall removes everything it installed for {arch}",
          r.returncode == 0 and not left, r.stdout + r.stderr + str(left))
    shutil.rmtree(disc, ignore_errors=True)


def sh(c, script, timeout=60):
    """Runs a shell line in the guest: (exit code, output), waiting up to `timeout` s."""
    r = c.call("guest-exec", {"path": "/bin/sh", "arg": ["-c", script + " 2>&1"],
                              "capture-output": True})
    if "return" not in r:
        return None, str(r)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = c.call("guest-exec-status", {"pid": r["return"]["pid"]})["return"]
        if v["exited"]:
            return v.get("exitcode"), base64.b64decode(v.get("out-data", "")).decode(errors="replace")
        time.sleep(0.2)
    return None, "timed out"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--release-dir", required=True)
    ap.add_argument("--from", dest="static", action="append", required=True)
    ap.add_argument("--root", default="/tmp/guestlink-ciroot")
    a = ap.parse_args()
    cli = os.path.join(os.path.abspath(a.release_dir), "guestlink")
    dirs = {elf_arch(os.path.join(d, "guestlinkd")): os.path.abspath(d) for d in a.static}
    static = dirs[os.uname().machine]

    t = time.monotonic()
    make_root(a.root)
    agents = [p for p in ["usr/sbin/qemu-ga", "usr/sbin/guestlinkd", "usr/sbin/spice-vdagentd"]
              if os.path.exists(os.path.join(a.root, p))]
    check(f"a Debian root with cloud-init and no agent ({time.monotonic() - t:.0f} s)", not agents,
          agents)

    work = tempfile.mkdtemp(prefix="guestlink-iso-")
    agent_iso = os.path.join(work, "guestlink.iso")
    seed_iso = os.path.join(work, "seed.iso")
    subprocess.run([cli, "iso", "-o", agent_iso] + [x for d in dirs.values() for x in ["--from", d]],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([cli, "iso", "--cloud-init", "-o", seed_iso, "--hostname", HOSTNAME,
                    "--instance-id", "iid-guestlink-ci"], check=True, stdout=subprocess.DEVNULL)
    read_back(agent_iso, "GUESTLINK", ["install.sh", "SHA256SUMS", "README.txt",
                                       "systemd/guestlinkd.service", "udev/60-guestlinkd.rules"]
              + [f"{arch}/{b}" for arch in dirs for b in ["guestlinkd", "guestlink-session"]])
    read_back(seed_iso, "cidata", ["meta-data", "user-data"])
    for arch, d in dirs.items():
        if arch != os.uname().machine:
            foreign_arch(agent_iso, arch, d, work)

    kver = sorted(os.listdir("/lib/modules"))[-1]
    kdir = f"/lib/modules/{kver}"
    vmlinux = guest.extract_vmlinux(f"/boot/vmlinuz-{kver}", os.path.join(work, "vmlinux"))
    initrd = os.path.join(work, "initrd.gz")
    boot.build_initramfs(initrd, kdir, MODULES)
    img = boot.disk_image(a.root, work, 2048, "5d1c2e3f4a5b6c7d8e9f0a1b2c3d4e5f")

    qga = os.path.join(work, "qga.sock")
    drives = [f"file={img},if=virtio,format=raw,cache=unsafe",
              f"file={seed_iso},if=virtio,format=raw,readonly=on",
              f"file={agent_iso},if=virtio,format=raw,readonly=on"]
    cmd = boot.qemu_command(vmlinux, initrd, drives, qga, ["-nic", "none"])
    boot.serve_guest(cmd, qga, work, "first boot: cloud-init installed guestlinkd from the "
                     "image, which answers guest-ping", 900,
                     lambda vm: checks(qga, static, cli))


def checks(qga, static, cli):
    c = Qga(qga, timeout=60)
    c.sync(11)
    code, out = sh(c, "/usr/sbin/guestlinkd -V")
    check("the agent is guestlinkd", "guestlinkd" in out, out)
    # The minimal root lacks locales and ssh, which cloud-init's own modules report; the
    # user-data's runcmd (scripts_user) must not be among its errors.
    code, out = sh(c, "cloud-init status --wait >/dev/null; cat /run/cloud-init/result.json; "
                      "grep 'install.sh:' /var/log/cloud-init-output.log", timeout=300)
    check("cloud-init ran the seed's runcmd without error (install.sh's own report)",
          '"errors"' in out and "scripts_user" not in out and "scripts-user" not in out
          and "install.sh: installed and started" in out, out)
    code, out = sh(c, "hostname")
    check("the seed's meta-data reached the guest (host name)", out.strip() == HOSTNAME, out)
    code, out = sh(c, "systemctl is-active guestlinkd.service; "
                      "systemctl is-enabled guestlinkd.service guestlinkd.socket")
    check("guestlinkd.service runs; the service and the socket are enabled",
          out.split() == ["active", "enabled", "enabled"], out)
    code, out = sh(c, "sha256sum /usr/sbin/guestlinkd /usr/bin/guestlink-session")
    want = [hashlib.sha256(open(os.path.join(static, b), "rb").read()).hexdigest()
            for b in ["guestlinkd", "guestlink-session"]]
    check("the installed executables are the image's static builds",
          [line.split()[0] for line in out.splitlines()] == want, out)
    code, out = sh(c, "cat /var/lib/guestlink/install-manifest")
    check("install.sh recorded what it installed",
          "f\t/usr/sbin/guestlinkd" in out and "l\t/etc/systemd/system/multi-user.target.wants/"
          "guestlinkd.service" in out, out)
    code, out = sh(c, "guestlink --socket /run/guestlink/agent.sock ping")
    check("a guest program reaches guestlinkd over its socket (the static guestlink)",
          code == 0, out)
    code, out = sh(c, "findmnt -n -o SOURCE -S LABEL=GUESTLINK || echo unmounted")
    check("the agent image was unmounted after the install", out.strip() == "unmounted", out)
    c.close()
    # The static agent resolves users through the guest's getent (its NSS).
    r = subprocess.run([cli, "--socket", qga, "exec", "--no-stdin", "-u", "nobody", "id", "-un"],
                       capture_output=True, text=True, timeout=120)
    check("the static agent runs a program as a user of the guest's database (exec -u nobody)",
          r.returncode == 0 and r.stdout.strip() == "nobody", r.stdout + r.stderr)


if __name__ == "__main__":
    main()
