"""Shared helpers for the integration tests: a scratch directory with a config, and a way to
run the real `intermission` binary in it."""

import base64
import datetime
import fcntl
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import unittest
import zlib

BIN = os.environ.get("INTERMISSION_BIN", "build/src/app/intermission")
FIXTURES = os.environ.get("INTERMISSION_FIXTURES", "testing/fixtures/aws")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = os.environ.get("INTERMISSION_SCREENSHOTS", os.path.join(os.getcwd(), "screenshots"))

DEFAULT_CONFIG = """\
store:
  path: state.db
routes:
  - deployment_group: "*-*"
    environment: "{1}"
environments:
  prod:
    backend: {type: log, path: steps.log}
  staging:
    backend: {type: log, path: steps.log}
"""


def parse_time(text):
    """Seconds since the epoch of an ISO 8601 UTC time as intermission writes it."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def wait_until(predicate, timeout=20.0):
    """Polls `predicate` until it is true or `timeout` seconds have passed; returns whether it
    became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def stop_process(proc, timeout=10):
    """SIGTERM, then SIGKILL if `proc` has not exited within `timeout` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()


def codedeploy(deployment_id, status, group="prod-web", app="shop", **extra):
    """A bare CodeDeploy trigger message as CodeDeploy sends it today."""
    m = {"region": "eu-west-1", "accountId": "111122223333", "eventTriggerName": "t",
         "applicationName": app, "deploymentId": deployment_id, "deploymentGroupName": group,
         "createTime": None, "completeTime": None, "status": status}
    m.update(extra)
    return m


def race_handle(test, config, cwd, status, processes, timeout):
    """`processes` CLI `handle` runs at once, each with its own CodeDeploy event (d-0, d-1, ...)
    of `status`, sharing one config (and so one store); every one must exit 0."""
    procs = [subprocess.Popen([BIN, "--config", config, "--log-level", "error", "handle"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=cwd, text=True)
             for _ in range(processes)]
    for i, p in enumerate(procs):
        p.stdin.write(json.dumps(codedeploy(f"d-{i}", status)))
    for p in procs:
        p.stdin.close()
    for p in procs:
        p.wait(timeout=timeout)
        test.assertEqual(p.returncode, 0, p.stderr.read())
        p.stdout.close()
        p.stderr.close()


class Workspace(unittest.TestCase):
    """A test case with its own directory and config."""

    config_text = DEFAULT_CONFIG

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-it-")
        self.dir = self._tmp.name
        self.config = os.path.join(self.dir, "config.yaml")
        with open(self.config, "w") as f:
            f.write(self.config_text)

    def tearDown(self):
        self._tmp.cleanup()

    def run_cli(self, *args, stdin=None, check=None, timeout=60):
        """Runs intermission --config <ours> ARGS; returns CompletedProcess (text)."""
        env = dict(os.environ, USER="tester")
        p = subprocess.run([BIN, "--config", self.config, *args], input=stdin,
                           capture_output=True, text=True, cwd=self.dir, env=env,
                           timeout=timeout)
        if check is not None:
            self.assertEqual(p.returncode, check,
                             f"intermission {' '.join(args)}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def handle(self, message, *flags, check=0):
        return self.run_cli("handle", *flags, stdin=json.dumps(message), check=check)

    def status(self):
        p = self.run_cli("status", "--json", check=0)
        return {e["environment"]: e for e in json.loads(p.stdout)["environments"]}

    def steps(self):
        path = os.path.join(self.dir, "steps.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def step_time(self, environment, on):
        """When `environment` was last switched to `on`, as the log backend wrote it (seconds
        since the epoch): the step's own time, whatever the machine's speed."""
        return parse_time([st for st in self.steps() if st["environment"] == environment
                           and st["on"] == on][-1]["time"])


def read_png(path_or_bytes):
    """Decodes an 8-bit, non-interlaced RGB or RGBA PNG (a path or its bytes) into
    (width, height, rows of RGB)."""
    if isinstance(path_or_bytes, bytes):
        data = path_or_bytes
    else:
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append([tuple(line[x * channels:x * channels + 3]) for x in range(width)])
        prev = line
    return width, height, rows


class DevTools:
    """Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
    commands go to its fd 3, answers and events come from its fd 4, each a JSON text ended by a
    NUL byte), with nothing but the standard library. One page (target) per instance."""

    def __init__(self, timeout=30):
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="intermission-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds():
            # Out of the way first, so that neither end is overwritten if it already is 3 or 4.
            reader = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            writer = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(reader, 3)
            os.dup2(writer, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--hide-scrollbars", "--remote-debugging-pipe",
             f"--user-data-dir={self._profile.name}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer, self._next = b"", 0
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=None)
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target["targetId"], "flatten": True},
                                 session=None)["sessionId"]

    def call(self, method, params=None, session=""):
        """Sends a command (to the page unless session=None: the browser) and returns its
        result; raises on an error answer or after `timeout` seconds."""
        self._next += 1
        message = {"id": self._next, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session or self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self._buffer:
                text, _, self._buffer = self._buffer.partition(b"\0")
                answer = json.loads(text)
                if answer.get("id") == self._next:
                    if "error" in answer:
                        raise RuntimeError(f"{method}: {answer['error']}")
                    return answer.get("result", {})
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise TimeoutError(f"{method}: no answer from Chromium")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise EOFError("Chromium closed the pipe")
            self._buffer += chunk

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, timeout=10.0):
        """Waits until the expression is truthy in the page; returns whether it became so."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluate(expression):
                return True
            time.sleep(0.1)
        return False

    def viewport(self, width, height, mobile=False):
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def open(self, url):
        self.call("Page.navigate", {"url": url})
        if not self.wait_for(f"location.href === {json.dumps(url)} && "
                             "document.readyState === 'complete'"):
            raise TimeoutError(f"{url} did not load")

    def screenshot(self, path=None, full_page=False):
        """A PNG of the viewport (or of the whole page, as tall as its content, at the
        viewport's width), kept at `path` when given; returns read_png of it."""
        params = {"format": "png"}
        if full_page:
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            view = self.evaluate("[innerWidth, innerHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": view[0],
                              "height": max(view[1], int(size["height"])), "scale": 1}
            params["captureBeyondViewport"] = True
        data = base64.b64decode(self.call("Page.captureScreenshot", params)["data"])
        if path:
            with open(path, "wb") as f:
                f.write(data)
        return read_png(data)

    def click(self, selector):
        """A real mouse click (move, press, release) at the middle of the element: what a
        person does, so it lands on whatever is on top there."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        if box is None:
            raise LookupError(f"no element {selector}")
        x, y = box
        self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent",
                      {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def key(self, key, code, key_code):
        """Presses and releases a key (e.g. "Tab", "Tab", 9)."""
        for kind in ("rawKeyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": code,
                                                 "windowsVirtualKeyCode": key_code})

    def type(self, text):
        """Types text into the focused element."""
        self.call("Input.insertText", {"text": text})

    def close(self):
        try:
            self.call("Browser.close", session=None)
        except (RuntimeError, TimeoutError, EOFError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)
        self._profile.cleanup()
