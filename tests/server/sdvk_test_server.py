"""Helpers for the `sdvk serve` tests: start a server on a free loopback port,
talk HTTP with the standard library, decode PNGs (zlib + struct), read RSS.

Only Python's standard library: these run in CI without the oracle venv."""
import base64
import http.client
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib

SKIP = 77  # ctest SKIP_RETURN_CODE


class Server:
    """`sdvk serve --listen 127.0.0.1:0 ...` as a child process. The port is
    read from the "listening on" line; stderr is kept for the report."""

    def __init__(self, sdvk, *args, env=None, timeout=60):
        self.sdvk = sdvk
        cmd = [sdvk, "serve", "--listen", "127.0.0.1:0", "--backend", "cpu"] + list(args)
        e = dict(os.environ)
        if env:
            e.update(env)
        self.log_path = None
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
        self.stderr_lines = []
        self._t = threading.Thread(target=self._drain_stderr, daemon=True)
        self._t.start()
        deadline = time.time() + timeout
        line = b""
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if b"listening on" in line:
                break
        text = line.decode(errors="replace")
        if "listening on" not in text:
            self.proc.kill()
            self.proc.wait()
            time.sleep(0.2)
            raise RuntimeError("server did not start: %r\n%s" % (text, "".join(self.stderr_lines)))
        self.port = int(text.split("127.0.0.1:")[1].split("/")[0])
        self.host = "127.0.0.1"

    def _drain_stderr(self):
        for raw in self.proc.stderr:
            self.stderr_lines.append(raw.decode(errors="replace"))

    def conn(self, timeout=120):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, raw=None, timeout=120):
        """(status, headers dict, parsed JSON or bytes)."""
        c = self.conn(timeout)
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        if "application/json" in hdrs.get("content-type", ""):
            try:
                payload = json.loads(payload)
            except ValueError:
                pass
        return r.status, hdrs, payload

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Sends sig, waits; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("server did not exit within %d s after signal %d" % (timeout, sig))
        self._t.join(5)
        return self.proc.returncode

    def log(self):
        return "".join(self.stderr_lines)


def png_decode(data):
    """A PNG -> (width, height, channels, pixels bytes, {text key: value}).
    8-bit grey/RGB/RGBA, non-interlaced: what sdvk writes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos = 8
    idat = b""
    texts = {}
    w = h = ctype = depth = None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        assert zlib.crc32(kind + chunk) & 0xffffffff == crc, "bad CRC in %r" % kind
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and interlace == 0
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"tEXt":
            k, v = chunk.split(b"\0", 1)
            texts[k.decode("latin-1")] = v.decode("latin-1")
        elif kind == b"iTXt":
            k, rest = chunk.split(b"\0", 1)
            flag = rest[0]
            rest = rest[2:]
            _lang, rest = rest.split(b"\0", 1)
            _tk, rest = rest.split(b"\0", 1)
            texts[k.decode("latin-1")] = (zlib.decompress(rest) if flag else rest).decode("utf-8")
        elif kind == b"IEND":
            break
    ch = {0: 1, 2: 3, 6: 4}[ctype]
    raw = zlib.decompress(idat)
    stride = w * ch
    out = bytearray()
    prev = bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b = prev[i]
            c = prev[i - ch] if i >= ch else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        out += line
        prev = line
    return w, h, ch, bytes(out), texts


def png_encode(w, h, rgb):
    """RGB bytes -> a minimal PNG (for upload tests)."""
    raw = b"".join(b"\0" + rgb[y * w * 3:(y + 1) * w * 3] for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def b64(data):
    return base64.b64encode(data).decode()


class Checker:
    """Counts checks; prints each failure; exits 1 at the end if any failed."""

    def __init__(self, name):
        self.name = name
        self.n = 0
        self.failed = []

    def ok(self, cond, what):
        self.n += 1
        if not cond:
            self.failed.append(what)
            print("FAIL:", what, flush=True)
        return cond

    def eq(self, got, want, what):
        return self.ok(got == want, "%s: got %r, want %r" % (what, got, want))

    def finish(self, server=None):
        if server is not None and self.failed:
            print("---- server log ----\n" + server.log())
        print("%s: %d checks, %d failed" % (self.name, self.n, len(self.failed)))
        sys.exit(1 if self.failed else 0)
