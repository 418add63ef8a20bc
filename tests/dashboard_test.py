"""The admin listener's live dashboard in the real headless Chromium (Debian), driven over the
DevTools protocol: `intermission serve` with two environments (log backend), one put on through
the operator API and one with a window scheduled. Screenshots at desktop and phone widths are
kept in the build tree and checked by their pixels (the ON and off badges drawn, the timeline's
up bar, text, nothing past the right edge on a phone); the page is keyboard-reachable; then an
operator signs in with the token and a real mouse click on prod's "Off" lifts maintenance, as
the API, the backend's log and the audit trail (with the operator's name) show, and the page
updates itself; a change made elsewhere (the operator API, while the page is open) shows up
through the page's own poll, without a reload; a window scheduled from the page is recorded. A
cross-site form post is refused."""

import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, SCREENSHOTS, DevTools  # noqa: E402
from stack import free_ports, wait_for_port  # noqa: E402

TOKEN = "operator-token-0123456789abcdef0123"  # at least 32 characters
ON = (0xb3, 0x47, 0x1d)   # the ON badge and the up bars (Palette::kOn)
OFF = (0x2b, 0x7a, 0x3d)  # the off badge and button (Palette::kOff)


def count(rows, colour, x0=0, x1=None):
    return sum(1 for row in rows for px in row[x0:x1] if px == colour)


class Dashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="intermission-dashboard-")
        cls.dir = cls._tmp.name
        cls.public, cls.admin = free_ports(2)
        cls.config = os.path.join(cls.dir, "config.yaml")
        with open(cls.config, "w") as f:
            f.write(f"""store:
  path: state.db
routes:
  - deployment_group: "*-*"
    environment: "{{1}}"
serve:
  listen: 127.0.0.1:{cls.public}
  admin_listen: 127.0.0.1:{cls.admin}
  tick_interval: 1s
environments:
  prod:
    backend: {{type: log, path: prod.log}}
  staging:
    backend: {{type: log, path: staging.log}}
""")
        cls.addClassCleanup(cls._tmp.cleanup)
        env = dict(os.environ, INTERMISSION_OPERATOR_TOKEN=TOKEN)
        cls.serve = subprocess.Popen([BIN, "--config", cls.config, "serve"], cwd=cls.dir, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.addClassCleanup(cls.stop_serve)
        wait_for_port(cls.public)
        wait_for_port(cls.admin)
        cls.base = f"http://127.0.0.1:{cls.admin}"
        os.makedirs(SCREENSHOTS, exist_ok=True)
        cls.browser = DevTools()
        cls.addClassCleanup(cls.browser.close)

    @classmethod
    def stop_serve(cls):
        cls.serve.terminate()
        cls.serve.wait(timeout=20)

    def request(self, method, path, body=None, headers=None):
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {TOKEN}",
                                              "Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def prod(self):
        status, doc = self.request("GET", "/api/environments/prod")
        self.assertEqual(status, 200, doc)
        return doc["environments"][0]

    def backend_log(self, env):
        path = os.path.join(self.dir, f"{env}.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line)["on"] for line in f if line.strip()]

    def wait(self, predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.1)
        return False

    def setUp(self):
        # prod: up, held by an operator for 2 h; staging: off with a window to come.
        status, doc = self.request("POST", "/api/environments/prod/on",
                                   {"reason": "Database upgrade", "who": "alice", "for": "2h"})
        self.assertEqual(status, 200, doc)
        self.assertTrue(self.wait(lambda: self.prod()["applied"]["on"]), self.prod())
        status, doc = self.request("GET", "/api/environments/staging/windows")
        if not doc["windows"]:
            status, doc = self.request("POST", "/api/environments/staging/windows",
                                       {"at": "+1h", "for": "1h", "reason": "Disk swap"})
            self.assertEqual(status, 201, doc)

    def shoot(self, name, width, height, mobile):
        b = self.browser
        b.viewport(width, height, mobile)
        b.open(self.base + "/")
        self.assertEqual(b.evaluate("innerWidth"), width)
        w, h, rows = b.screenshot(os.path.join(SCREENSHOTS, f"dashboard-{name}.png"), full_page=True)
        self.assertEqual(w, width)
        self.assertGreaterEqual(h, height)
        self.assertEqual(b.evaluate("document.documentElement.scrollWidth"), width,
                         "no horizontal scrolling")
        return rows

    def check_pixels(self, rows, width):
        self.assertEqual(rows[2][2], (255, 255, 255), "white background")
        self.assertGreater(count(rows, ON), 200, "the ON badge and the up bar are drawn")
        self.assertGreater(count(rows, OFF), 100, "the off badge (staging) is drawn")
        dark = sum(1 for row in rows for px in row if max(px) < 90)
        self.assertGreater(dark, 1500, "the page shows text")
        # Nothing is drawn in the right-most 4 px: the layout stays inside the width.
        edge = [px for row in rows for px in row[width - 4:] if px != (255, 255, 255)]
        self.assertFalse(edge, "something reaches the right edge")

    def test_1_screenshots_at_desktop_and_phone_width(self):
        rows = self.shoot("desktop", 1280, 900, False)
        self.check_pixels(rows, 1280)
        b = self.browser
        self.assertIn("Database upgrade", b.evaluate("document.body.innerText"))
        self.assertTrue(b.evaluate("!!document.querySelector('.countdown[data-end]')"),
                        "the expected end counts down")
        first = b.evaluate("document.querySelector('.countdown').textContent")
        self.assertTrue(b.wait_for(f"document.querySelector('.countdown').textContent !== {json.dumps(first)}", 3),
                        "the countdown ticks in the browser")
        self.assertEqual(b.evaluate("document.querySelectorAll('svg.timeline').length"), 4,
                         "24 h and 7 d for each environment")
        self.assertTrue(b.evaluate("!!document.querySelector('section[data-env=staging] rect.window')"),
                        "staging's window to come is drawn")
        # Keyboard: the first Tab reaches the token field, which shows where the focus is.
        b.key("Tab", "Tab", 9)
        self.assertEqual(b.evaluate("document.activeElement.id"), "token")
        self.assertNotEqual(b.evaluate("getComputedStyle(document.activeElement).outlineStyle"), "none")

        rows = self.shoot("phone", 390, 844, True)
        self.check_pixels(rows, 390)
        self.assertLessEqual(
            b.evaluate("Math.max(...[...document.querySelectorAll('section, svg, button')]"
                       ".map(e => e.getBoundingClientRect().right))"), 390)

    def test_2_a_click_on_off_lifts_maintenance(self):
        b = self.browser
        b.viewport(1280, 900)
        b.open(self.base + "/")
        self.assertTrue(b.evaluate("document.querySelector('section[data-env=prod] fieldset').disabled"),
                        "no controls before signing in")
        b.click("#token")
        b.type(TOKEN)
        b.click("#who")
        b.type("ops-tester")
        b.click("#login button[type=submit]")
        self.assertTrue(b.wait_for("!document.querySelector('section[data-env=prod] fieldset').disabled"),
                        b.evaluate("document.getElementById('message').textContent"))
        self.assertIsNone(b.evaluate("document.cookie || null"), "no cookie: the token is in this tab only")
        b.click("section[data-env=prod] input[name=reason]")
        b.type("upgrade done")
        b.click("section[data-env=prod] button[data-action=off]")
        self.assertTrue(self.wait(lambda: not self.prod()["on"]), self.prod())
        self.assertTrue(self.wait(lambda: self.prod()["applied"]["on"] is False), self.prod())
        self.assertEqual(self.backend_log("prod")[-1], False, "the backend was switched off")
        lifted = [a for a in self.prod()["recent"] if a["kind"] == "lifted"]
        self.assertTrue(lifted and lifted[-1]["who"] == "ops-tester", self.prod()["recent"])
        self.assertIn("upgrade done", lifted[-1]["message"])
        self.assertTrue(b.wait_for("!!document.querySelector('section[data-env=prod] .badge.off')"),
                        "the page shows it without a reload")
        self.assertIn("off", b.evaluate("document.getElementById('message').textContent"))
        self.assertTrue(b.evaluate("!!document.querySelector('section[data-env=prod] path.hold-off')"),
                        "the lift is on prod's timeline")

        # Schedule: a window on staging, from the keyboard-and-mouse form.
        for field, text in (("at", "+2h"), ("for", "30m"), ("reason", "Kernel update")):
            b.click(f"section[data-env=staging] form.schedule input[name={field}]")
            b.type(text)
        b.click("section[data-env=staging] form.schedule button[type=submit]")

        def scheduled():
            return [w for w in self.request("GET", "/api/environments/staging/windows")[1]["windows"]
                    if w["reason"] == "Kernel update"]
        self.assertTrue(self.wait(scheduled), b.evaluate("document.getElementById('message').textContent"))
        self.assertEqual(scheduled()[0]["who"], "ops-tester")
        self.assertTrue(b.wait_for("document.querySelector('section[data-env=staging] .status')"
                                   ".textContent.includes('Kernel update')"))

    def test_4_a_change_made_elsewhere_shows_up_through_the_poll(self):
        # An operator uses the API (curl, a pipeline) while someone watches the dashboard: the
        # page must show it from its own poll of /dashboard.json, not only after its own clicks.
        b = self.browser
        b.viewport(1280, 900)
        b.open(self.base + "/")
        prod = "section[data-env=prod]"
        self.assertTrue(b.evaluate(f"!!document.querySelector('{prod} .badge.on')"), "prod is on (setUp)")
        b.evaluate("window.notReloaded = true")  # gone if the page were loaded again
        # One poll period (data-poll seconds), twice, and the daemon's tick: a bound, not a sleep.
        bound = 2 * b.evaluate("Number(document.body.getAttribute('data-poll'))") + 2
        status, doc = self.request("POST", "/api/environments/prod/off",
                                   {"reason": "lifted from a pipeline", "who": "ci-bot"})
        self.assertEqual(status, 200, doc)
        self.assertTrue(b.wait_for(f"!!document.querySelector('{prod} .badge.off')", bound),
                        b.evaluate(f"document.querySelector('{prod} .status').innerText"))
        status, doc = self.request("POST", "/api/environments/prod/on",
                                   {"reason": "Second try at the upgrade", "who": "ci-bot", "for": "1h"})
        self.assertEqual(status, 200, doc)
        self.assertTrue(b.wait_for(f"!!document.querySelector('{prod} .badge.on') && document.querySelector("
                                   f"'{prod} .status').textContent.includes('Second try at the upgrade')", bound),
                        b.evaluate(f"document.querySelector('{prod} .status').innerText"))
        self.assertIn("ci-bot", b.evaluate(f"document.querySelector('{prod} .status').textContent"))
        self.assertTrue(b.evaluate("window.notReloaded === true"), "updated in place, without a reload")

    def test_3_a_cross_site_form_post_is_refused(self):
        before = self.prod()
        status, doc = self.request("POST", "/api/environments/prod/off", b"reason=pwned",
                                   {"Authorization": "Basic " + base64.b64encode(f"x:{TOKEN}".encode()).decode(),
                                    "Content-Type": "application/x-www-form-urlencoded",
                                    "Origin": "http://attacker.example",
                                    "Sec-Fetch-Site": "cross-site"})
        self.assertEqual(status, 403, doc)
        self.assertIn("cross-site", doc["error"])
        after = self.prod()
        self.assertEqual(after["on"], before["on"])
        self.assertEqual(after["version"], before["version"], "nothing was recorded")


if __name__ == "__main__":
    unittest.main()
