"""Building the test guest: an uncompressed kernel, and an initramfs with busybox, the
virtio and input modules, guestlinkd and guestlink-session (with their shared
libraries) and an /init that links /dev/virtio-ports/<name>, mounts the virtio disk and
starts the agent and a headless session agent.

Everything comes from Debian packages on the host: linux-image-amd64 (the kernel and its
modules), busybox-static. No root file system image is needed.
"""
import gzip
import io
import lzma
import os
import stat
import subprocess

MODULES = [
    "virtio_pci", "virtio_console", "virtio_blk", "virtio_net", "ext4",
    "crc32c_generic", "vsock_loopback", "uinput", "evdev",
]

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mkdir -p /proc /sys /dev /run /tmp /mnt/data /var/lib/guestlink
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
for m in $(cat /etc/modules.order); do insmod "/lib/modules/$m" 2>/dev/null; done
hostname guestlink-vm
ip link set lo up
ip link set eth0 up 2>/dev/null
mount -t ext4 /dev/vda /mnt/data && echo "GUEST: data disk mounted"
# What udev would do: /dev/virtio-ports/<name> for every port, also for ports plugged
# later (the hot-plug test).
links() {
    mkdir -p /dev/virtio-ports
    for p in /sys/class/virtio-ports/*; do
        [ -e "$p/name" ] || continue
        n=$(cat "$p/name")
        [ -n "$n" ] && ln -sfn "../$(basename "$p")" "/dev/virtio-ports/$n"
    done
    for l in /dev/virtio-ports/*; do [ -e "$l" ] || rm -f "$l"; done
}
links
( while :; do links; sleep 0.3; done ) &
echo "GUEST: ports: $(ls /dev/virtio-ports | tr '\n' ' ')"
# One daemon for every port: QGA, and the SPICE agent port (whose host may be QEMU's
# qemu-vdagent, or nobody); the pointer is a real uinput tablet. No logind here: the
# headless session agent is the desktop.
GUESTLINK_LOG=info /usr/bin/guestlinkd -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0 -r \
    --channel vdagent=virtio-serial:/dev/virtio-ports/com.redhat.spice.0 \
    --channel ovirt=virtio-serial:/dev/virtio-ports/ovirt-guest-agent.0 \
    --channel qga=virtio-serial:/dev/virtio-ports/org.guestlink.exporter.0 \
    --channel qga=virtio-serial:/dev/virtio-ports/org.guestlink.0 \
    --sessions none --pointer uinput \
    -t /var/lib/guestlink -l /tmp/guestlinkd.log &
echo "GUEST: guestlinkd started"
/usr/bin/guestlink-session run --backend headless --session vm >/tmp/session.log 2>&1 &
# Debian's qemu-ga on a port of its own, when the host put it in the initramfs: the
# reference for the ping comparison (tests/vm/run.py --only-ping-speed).
if [ -x /usr/sbin/qemu-ga ] && [ -e /dev/virtio-ports/org.qemu.guest_agent.ref ]; then
    mkdir -p /var/run
    /usr/sbin/qemu-ga -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.ref \
        -t /var/run -f /var/run/qemu-ga.pid -l /tmp/qemu-ga.log &
    echo "GUEST: qemu-ga started"
    # The floor of the comparison: a program that only reads a request and writes a
    # fixed reply, on a third port.
    if [ -x /usr/sbin/ping-floor ] && [ -e /dev/virtio-ports/org.qemu.guest_agent.floor ]; then
        /usr/sbin/ping-floor /dev/virtio-ports/org.qemu.guest_agent.floor &
    fi
    # Both agents' resident memory once a second for a minute (smaps_rollup walks the
    # page tables; /proc/PID/status lags on this kernel), sampled by neither agent.
    ( for i in $(seq 60); do
        sleep 1
        for n in guestlinkd qemu-ga; do
            p=$(pidof $n | tr ' ' '\n' | tail -n 1)
            echo $n $(grep -E '^(Rss|Anonymous):' /proc/$p/smaps_rollup | tr -s ' \t' ' ')
        done > /tmp/idle-rss.new
        mv /tmp/idle-rss.new /tmp/idle-rss
    done ) &
fi
# PID 1 reaps orphans and never exits.
while :; do wait; sleep 1; done
"""

# A lifecycle hook as the oVirt agent shipped one (drop the page cache before a
# migration), and one the administrator disabled with a link to /dev/null in /etc.
HOOK = r"""#!/bin/sh
sync
echo 3 > /proc/sys/vm/drop_caches
echo "$1 failure=$GUESTLINK_FAILURE" >> /tmp/hooks.log
"""
HOOKS = "usr/lib/guestlink/actions.d/lifecycle/before_migration"
DISABLED = "etc/guestlink/actions.d/lifecycle/before_migration"

# busybox poweroff/reboot signal init, which is a shell here: force the syscall instead.
POWER = "#!/bin/sh\nsync\nexec /bin/busybox {0} -f\n"

# busybox-static has no chpasswd: this stand-in does what chpasswd(8) does with
# "user:password" lines on standard input (-e: already hashed), so that the agent's own
# code path (find chpasswd, feed it the line) runs unchanged.
CHPASSWD = r"""#!/bin/sh
while IFS=: read -r user pass; do
    if [ "$1" = "-e" ]; then hash="$pass"; else hash=$(mkpasswd -m sha512 "$pass") || exit 1; fi
    grep -q "^$user:" /etc/shadow || { echo "chpasswd: user '$user' does not exist" >&2; exit 1; }
    sed -i "s|^$user:[^:]*:|$user:$hash:|" /etc/shadow
done
"""


def extract_vmlinux(vmlinuz, out):
    """The ELF kernel inside a bzImage (xz or gzip), as scripts/extract-vmlinux finds it."""
    data = open(vmlinuz, "rb").read()
    for magic, opener in ((b"\xfd7zXZ\x00", "xz"), (b"\x1f\x8b\x08", "gz")):
        at = data.find(magic)
        while at >= 0:
            try:
                if opener == "xz":
                    elf = lzma.LZMADecompressor().decompress(data[at:])
                else:
                    elf = gzip.GzipFile(fileobj=io.BytesIO(data[at:])).read()
                if elf.startswith(b"\x7fELF"):
                    open(out, "wb").write(elf)
                    return out
            except (lzma.LZMAError, OSError, EOFError):
                pass
            at = data.find(magic, at + 1)
    raise SystemExit(f"no kernel image found inside {vmlinuz}")


def module_closure(kdir, names):
    """Module paths (relative to kdir) with their dependencies first."""
    deps = {}
    for line in open(os.path.join(kdir, "modules.dep")):
        mod, _, rest = line.partition(":")
        deps[mod] = rest.split()
    by_name = {os.path.basename(m).split(".ko")[0].replace("-", "_"): m for m in deps}
    order = []

    def visit(m):
        if m in order:
            return
        for d in deps.get(m, []):
            visit(d)
        order.append(m)

    for n in names:
        if n in by_name:
            visit(by_name[n])
    return order


def shared_libraries(binary):
    """The libraries ldd lists for `binary`, with the dynamic loader."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        for p in parts:
            if p.startswith("/") and os.path.exists(p):
                libs.append(p)
    return libs


class Cpio:
    """A newc cpio archive written in memory."""

    def __init__(self):
        self.buf = bytearray()
        self.ino = 1
        self.dirs = set()

    def _entry(self, name, mode, data=b""):
        self.ino += 1
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0))
        self.buf += hdr.encode() + name.encode() + b"\0"
        self.buf += b"\0" * (-len(self.buf) % 4)
        self.buf += data
        self.buf += b"\0" * (-len(self.buf) % 4)

    def dir(self, name):
        name = name.strip("/")
        if name not in self.dirs:
            self.dirs.add(name)
            self._entry(name, stat.S_IFDIR | 0o755)

    def parents(self, path):
        """The directories above `path`, each written once."""
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.dir("/".join(parts[:i]))

    def add(self, path, data, mode=0o755):
        """A file at `path`, with the directories above it."""
        self.parents(path)
        self.file(path.lstrip("/"), data, mode)

    def file(self, name, data, mode=0o755):
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def finish(self):
        self._entry("TRAILER!!!", 0)
        return bytes(self.buf)


def build_initramfs(out, kdir, binaries):
    """`binaries`: (host path, guest path) pairs; their shared libraries come along."""
    c = Cpio()
    add = c.add
    for d in ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "lib64"]:
        c.dir(d)
    add("/bin/busybox", open("/bin/busybox", "rb").read())
    add("/init", INIT.encode())
    add("/sbin/poweroff", POWER.format("poweroff").encode())
    add("/sbin/reboot", POWER.format("reboot").encode())
    add("/sbin/halt", POWER.format("halt").encode())
    add("/usr/sbin/chpasswd", CHPASSWD.encode())
    add("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    add("/etc/shadow", b"root:*:19000:0:99999:7:::\n", 0o600)
    add("/etc/group", b"root:x:0:\n")
    add("/etc/os-release", b'NAME="guestlink test VM"\nID=guestlink-vm\nVERSION_ID="1"\n'
        b'PRETTY_NAME="guestlink test VM"\n', 0o644)
    add(f"/{HOOKS}/50-drop-caches", HOOK.encode())
    add(f"/{HOOKS}/60-disabled", b"#!/bin/sh\necho disabled-hook-ran >> /tmp/hooks.log\n")
    c.parents(f"/{DISABLED}/x")
    c.symlink(f"{DISABLED}/60-disabled", "/dev/null")
    mods = module_closure(kdir, MODULES)
    for m in mods:
        add(f"/lib/modules/{m}", open(os.path.join(kdir, m), "rb").read(), 0o644)
    add("/etc/modules.order", ("\n".join(mods) + "\n").encode(), 0o644)
    libs = set()
    for src, dst in binaries:
        add(dst, open(src, "rb").read())
        libs.update(shared_libraries(src))
    for lib in sorted(libs):
        real = os.path.realpath(lib)
        add(lib, open(real, "rb").read())
    open(out, "wb").write(gzip.compress(c.finish(), compresslevel=1))
    return mods
