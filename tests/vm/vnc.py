"""A small RFB (VNC) client for the vdagent end-to-end test: the 3.8 handshake with no
security, the extended clipboard pseudo-encoding (which QEMU needs to send the guest's
clipboard), legacy ClientCutText, pointer events, and the extended clipboard's notify,
request and provide messages."""
import socket
import struct
import zlib

EXTENDED_CLIPBOARD = 0xC0A1E5CE
TEXT = 1
CAPS, REQUEST, PEEK, NOTIFY, PROVIDE = 1 << 24, 1 << 25, 1 << 26, 1 << 27, 1 << 28


class Vnc:
    def __init__(self, path, timeout=30):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(timeout)
        self.s.connect(path)
        version = self.read(12)
        if not version.startswith(b"RFB 003."):
            raise ValueError(f"not an RFB server: {version!r}")
        self.s.sendall(b"RFB 003.008\n")
        n = self.read(1)[0]
        types = self.read(n)
        if 1 not in types:
            raise ValueError(f"the server wants authentication: {list(types)}")
        self.s.sendall(b"\x01")
        if struct.unpack(">I", self.read(4))[0] != 0:
            raise ValueError("security handshake failed")
        self.s.sendall(b"\x01")  # shared
        self.width, self.height = struct.unpack(">HH", self.read(4))
        self.read(16)
        self.name = self.read(struct.unpack(">I", self.read(4))[0])
        encodings = [0, EXTENDED_CLIPBOARD]
        self.s.sendall(struct.pack(">BxH", 2, len(encodings)) +
                       b"".join(struct.pack(">I", e) for e in encodings))
        self.server_caps = None

    def read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError("the VNC server closed the connection")
            buf += chunk
        return buf

    def cut_text(self, data):
        """Legacy ClientCutText: the client's clipboard now holds `data`."""
        self.s.sendall(struct.pack(">BxxxI", 6, len(data)) + data)

    def pointer(self, x, y, buttons=0):
        self.s.sendall(struct.pack(">BBHH", 5, buttons, x, y))

    def extended(self, flags, payload=b""):
        body = struct.pack(">I", flags) + payload
        self.s.sendall(struct.pack(">Bxxxi", 6, -len(body)) + body)

    def message(self):
        """The next server message as (kind, value); extended clipboard messages come
        as ("clipboard", (flags, payload))."""
        kind = self.read(1)[0]
        if kind == 3:
            self.read(3)
            (length,) = struct.unpack(">i", self.read(4))
            if length >= 0:
                return "cut-text", self.read(length)
            body = self.read(-length)
            return "clipboard", (struct.unpack(">I", body[:4])[0], body[4:])
        if kind == 2:
            return "bell", None
        if kind == 1:
            self.read(1)
            _, n = struct.unpack(">HH", self.read(4))
            self.read(6 * n)
            return "colour-map", None
        raise ValueError(f"unexpected server message {kind}")

    def clipboard_message(self, want):
        """Waits for an extended clipboard message with all the `want` flags."""
        while True:
            kind, value = self.message()
            if kind != "clipboard":
                continue
            flags, payload = value
            if flags & CAPS:
                self.server_caps = flags
                # Answer with our own capabilities: text, up to 1 MiB.
                self.extended(CAPS | REQUEST | NOTIFY | PROVIDE | TEXT,
                              struct.pack(">I", 1 << 20))
                continue
            if flags & want == want:
                return flags, payload

    def fetch_text(self):
        """Asks the server for the text it announced; returns it."""
        self.extended(REQUEST | TEXT)
        _, payload = self.clipboard_message(PROVIDE | TEXT)
        data = zlib.decompress(payload)
        (n,) = struct.unpack(">I", data[:4])
        return data[4:4 + n].rstrip(b"\0")

    def close(self):
        self.s.close()
