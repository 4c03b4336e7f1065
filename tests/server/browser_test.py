#!/usr/bin/env python3
"""Browser test of `sdvk serve`'s web page (ctest server_browser): headless
Chromium (Debian's `chromium`) driven over the DevTools protocol, with a
WebSocket client written here on the standard library.

It opens the page, clicks into the prompt box and types a prompt (real
input events), clicks Generate (a real mouse click at the button), waits
for the result picture to appear (decoded, with its parameters shown and a
gallery entry), and saves a screenshot for the record.

python3 browser_test.py SDVK_BINARY SCREENSHOT.png
Exit 77 (ctest SKIP_RETURN_CODE) when chromium is not installed."""
import base64
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sdvk_test_server import SKIP, Checker, Server, png_decode  # noqa: E402

PROMPT = "a red circle on a blue background"


class WebSocket:
    """Just enough RFC 6455 for the DevTools protocol: text frames, masked
    from the client, fragmented or not; answers pings."""

    def __init__(self, url, timeout=60):
        assert url.startswith("ws://")
        hostport, path = url[5:].split("/", 1)
        host, port = hostport.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" %
                        (path, hostport, key)).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = self.s.recv(4096)
            if not d:
                raise ConnectionError("websocket handshake: connection closed")
            buf += d
        head, self.buf = buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise ConnectionError("websocket handshake refused: %r" % head[:100])

    def _read(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise ConnectionError("websocket closed")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode, payload):
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.s.sendall(head + mask + body)

    def send(self, text):
        self._send_frame(1, text.encode())

    def recv(self):
        parts = []
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 15, b1 & 127
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 128 else None
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if opcode == 9:
                self._send_frame(10, data)
                continue
            if opcode == 8:
                raise ConnectionError("websocket closed by the browser")
            if opcode in (0, 1, 2):
                parts.append(data)
                if b0 & 0x80:
                    return b"".join(parts).decode()

    def close(self):
        try:
            self._send_frame(8, b"")
        except OSError:
            pass
        self.s.close()


class DevTools:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 1

    def call(self, method, **params):
        i = self.next_id
        self.next_id += 1
        self.ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("JS error in %r: %s" % (expr[:60], r["exceptionDetails"]))
        return r["result"].get("value")

    def click(self, selector):
        rect = self.eval("(() => { const r = document.querySelector(%s).getBoundingClientRect();"
                         " return [r.x + r.width / 2, r.y + r.height / 2]; })()" % json.dumps(selector))
        x, y = rect
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                      clickCount=0 if kind == "mouseMoved" else 1)

    def wait(self, expr, timeout, what):
        t0 = time.time()
        while time.time() - t0 < timeout:
            v = self.eval(expr)
            if v:
                return v
            time.sleep(0.1)
        raise AssertionError("timed out waiting for " + what)


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def main():
    sdvk, shot = sys.argv[1], sys.argv[2]
    chromium = find_chromium()
    if not chromium:
        print("SKIP: chromium is not installed (Debian: apt-get install chromium, or "
              "bash tools/install_deps.sh --tests): the browser test did not run")
        sys.exit(SKIP)
    c = Checker("server_browser")
    srv = Server(sdvk)
    profile = tempfile.mkdtemp(prefix="sdvk-chromium-")
    # Loopback only: every other host name resolves to nothing and any other
    # request would go to a dead proxy; no background services.
    cmd = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
           "--user-data-dir=" + profile, "--window-size=1100,800", "--no-first-run",
           "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-extensions", "--disable-default-apps", "--no-pings",
           "--disable-domain-reliability", "--disable-client-side-phishing-detection",
           "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
           "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
           "--proxy-server=127.0.0.1:9", "about:blank"]
    browser = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ws = None
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        t0 = time.time()
        while not os.path.exists(port_file) and time.time() - t0 < 60 and browser.poll() is None:
            time.sleep(0.1)
        if not os.path.exists(port_file):
            err = browser.stderr.read().decode(errors="replace") if browser.poll() is not None else ""
            raise AssertionError("chromium did not start its DevTools server: " + err[-2000:])
        with open(port_file) as f:
            dport = int(f.readline())
        url = "http://127.0.0.1:%d/" % srv.port
        hc = http.client.HTTPConnection("127.0.0.1", dport, timeout=30)
        hc.request("PUT", "/json/new?" + url)
        target = json.loads(hc.getresponse().read())
        hc.close()
        ws = WebSocket(target["webSocketDebuggerUrl"])
        dt = DevTools(ws)
        dt.call("Page.enable")
        dt.call("Runtime.enable")
        dt.wait("document.readyState === 'complete' && !!document.getElementById('sampler') &&"
                " document.getElementById('sampler').options.length > 0",
                30, "the page to load its sampler list")
        c.ok(dt.eval("document.getElementById('model-line').textContent").startswith("model sdvk-demo"),
             "the page shows the model")
        c.eq(dt.eval("Number(document.getElementById('width').value)"), 64, "width from /health")
        # type the prompt like a person: click into the box, insert text
        dt.click("#prompt")
        c.ok(dt.eval("document.activeElement.id") == "prompt", "the prompt box has the focus")
        dt.call("Input.insertText", text=PROMPT)
        c.eq(dt.eval("document.getElementById('prompt').value"), PROMPT, "the prompt was typed")
        dt.click("#generate")
        dt.wait("(() => { const i = document.getElementById('result-image');"
                " return !i.hidden && i.complete && i.naturalWidth > 0; })()", 120, "the result picture")
        c.eq(dt.eval("document.getElementById('result-image').naturalWidth"), 64, "result picture width")
        src = dt.eval("document.getElementById('result-image').src")
        c.ok(src.startswith("data:image/png;base64,"), "result is a PNG")
        w, h, _, _, texts = png_decode(base64.b64decode(src.split(",", 1)[1]))
        c.eq((w, h), (64, 64), "decoded result size")
        info = dt.eval("document.getElementById('result-info').textContent")
        c.ok(info.startswith(PROMPT) and "Steps: 20" in info, "parameters shown: %r" % info)
        c.eq(texts.get("parameters"), info, "shown parameters = the PNG's")
        c.eq(dt.eval("document.querySelectorAll('#gallery img').length"), 1, "one picture in the gallery")
        c.ok(dt.eval("document.getElementById('progress-text').textContent").startswith("done"),
             "progress says done")
        c.eq(dt.eval("document.getElementById('error').textContent"), "", "no error shown")
        # a bigger second picture: live progress shows, then it lands in the gallery too
        dt.eval("document.getElementById('width').value = 192; document.getElementById('height').value = 192;"
                " document.getElementById('steps').value = 30; true")
        dt.click("#generate")
        step_text = dt.wait("(() => { const t = document.getElementById('progress-text').textContent;"
                            " return /^step [1-9][0-9]*\\/30/.test(t) ? t : ''; })()", 120,
                            "live progress in the page")
        c.ok("/30" in step_text, "the page shows the sampler step: %r" % step_text)
        dt.wait("document.querySelectorAll('#gallery img').length === 2", 120, "a second gallery entry")
        c.eq(dt.eval("document.getElementById('result-image').naturalWidth"), 192, "second picture width")
        time.sleep(0.5)  # the progress bar's transition
        shot_png = base64.b64decode(dt.call("Page.captureScreenshot", format="png")["data"])
        with open(shot, "wb") as f:
            f.write(shot_png)
        sw, sh, _, _, _ = png_decode(shot_png)
        c.ok(sw >= 800 and sh >= 600, "screenshot %dx%d saved to %s" % (sw, sh, shot))
    finally:
        if ws:
            ws.close()
        browser.terminate()
        try:
            browser.wait(20)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        shutil.rmtree(profile, ignore_errors=True)
        c.eq(srv.stop(), 0, "server exit code after SIGTERM")
    c.finish(srv)


if __name__ == "__main__":
    main()
