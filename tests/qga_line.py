"""A minimal QGA line client for the host end of an agent's port (a unix socket), shared
by the end-to-end tests (tests/vm, tests/windows)."""
import json
import socket


class Qga:
    """A minimal line client for the host end of the agent's port."""

    def __init__(self, path, timeout=30):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.events = []

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("port closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.lstrip(b"\xff")

    def sync(self, ident):
        self.s.sendall(b"\xff" + json.dumps(
            {"execute": "guest-sync-delimited", "arguments": {"id": ident}}).encode() + b"\n")
        while True:
            v = json.loads(self.line() or b"null")
            if isinstance(v, dict) and v.get("return") == ident:
                return

    def call(self, name, args=None):
        req = {"execute": name}
        if args is not None:
            req["arguments"] = args
        self.s.sendall(json.dumps(req).encode() + b"\n")
        while True:
            v = json.loads(self.line())
            if isinstance(v, dict) and "event" in v:
                self.events.append(v)
                continue
            return v

    def take_events(self, name):
        found = [e for e in self.events if e["event"] == name]
        self.events = [e for e in self.events if e["event"] != name]
        return found

    def close(self):
        self.s.close()
