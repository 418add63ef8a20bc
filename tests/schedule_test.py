"""Scheduled maintenance windows end to end with the daemon: a window set two seconds ahead
through the operator API goes up and down by itself (the daemon wakes at its start and end,
not at its hourly tick), and `status` and the public /windows.json show it meanwhile."""

import json
import os
import subprocess
import sys
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, Workspace, parse_time, stop_process, wait_until  # noqa: E402
from stack import free_ports, wait_for_port  # noqa: E402

TOKEN = "operator-token-0123456789abcdef0123"



class ScheduledWindow(Workspace):
    def setUp(self):
        super().setUp()
        self.public, self.admin = free_ports(2)
        with open(self.config, "a") as f:
            # An hour between ticks: only the wake-up at the window's start and end can be
            # on time.
            f.write(f"serve:\n  listen: 127.0.0.1:{self.public}\n"
                    f"  admin_listen: 127.0.0.1:{self.admin}\n  tick_interval: 1h\n")
        env = dict(os.environ, INTERMISSION_OPERATOR_TOKEN=TOKEN)
        self.daemon = subprocess.Popen([BIN, "--config", self.config, "serve"], cwd=self.dir,
                                       env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True)
        wait_for_port(self.public)
        wait_for_port(self.admin)
        # The first periodic tick (at start-up) has run: nothing is on.
        self.assertTrue(wait_until(lambda: self.switches() == [False] or self.switches() == [],
                                   20))

    def tearDown(self):
        try:
            stop_process(self.daemon)
        finally:
            self.daemon.stderr.close()
        super().tearDown()

    def api(self, method, path, body=None, token=TOKEN):
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode())
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read()), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read()), dict(e.headers)

    def public_windows(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.public}/windows.json",
                                    timeout=10) as r:
            headers = dict(r.headers)
            body = json.loads(r.read())
        return {e["environment"]: e["windows"] for e in body["environments"]}, headers

    def switches(self):
        return [s["on"] for s in self.steps() if s["environment"] == "prod"]

    def test_a_window_goes_up_and_down_by_itself(self):
        # Six seconds long, so the checks while it is active fit in it on a slow machine; when
        # it went up and down is read from the steps' own times, not from how fast we looked.
        code, body, _ = self.api("POST", "/api/environments/prod/windows",
                                 {"at": "+2s", "for": "6s", "reason": "database upgrade",
                                  "who": "alice"})
        self.assertEqual(code, 201, body)
        self.assertEqual(body["id"], "w1")
        self.assertFalse(body["on"])

        windows, headers = self.public_windows()
        self.assertEqual([w["id"] for w in windows["prod"]], ["w1"])
        self.assertEqual(windows["prod"][0]["reason"], "database upgrade")
        self.assertFalse(windows["prod"][0]["active"])
        self.assertNotIn("who", windows["prod"][0], "the public list names no operator")
        self.assertEqual(windows["staging"], [])
        self.assertIn("max-age", headers["Cache-Control"])
        start, end = parse_time(windows["prod"][0]["start"]), parse_time(windows["prod"][0]["end"])
        self.assertEqual(end - start, 6)
        st = self.status()["prod"]
        self.assertFalse(st["on"])
        self.assertEqual([(w["id"], w["active"]) for w in st["windows"]], [("w1", False)])

        self.assertTrue(wait_until(lambda: True in self.switches(), 20), self.switches())
        went_up = self.step_time("prod", True)
        self.assertGreaterEqual(went_up, start)
        self.assertLess(went_up, start + 1.5, "up at the window's start, not at the next tick")
        st = self.status()["prod"]
        self.assertTrue(st["on"])
        self.assertEqual([(w["id"], w["active"]) for w in st["windows"]], [("w1", True)])
        self.assertIn("maintenance window w1", " ".join(st["why"]))
        self.assertTrue(self.public_windows()[0]["prod"][0]["active"])
        text = self.run_cli("status", "prod", "--no-observe", check=0).stdout
        self.assertIn("window w1 (active)", text)

        self.assertTrue(wait_until(lambda: self.switches()[-1:] == [False], 20), self.switches())
        went_down = self.step_time("prod", False)
        self.assertGreaterEqual(went_down, end)
        self.assertLess(went_down, end + 1.5, "down at the window's end")
        self.assertEqual(self.public_windows()[0]["prod"], [])
        kinds = [a["kind"] for a in self.status()["prod"]["recent"]]
        for kind in ("window-scheduled", "window-started", "window-ended"):
            self.assertIn(kind, kinds)

    def test_the_operator_api_changes_lists_cancels_and_refuses(self):
        code, body, _ = self.api("POST", "/api/environments/prod/windows",
                                 {"at": "+1h", "for": "30m"}, token=None)
        self.assertEqual(code, 401)
        code, body, _ = self.api("POST", "/api/environments/prod/windows",
                                 {"at": "2001-01-01T00:00:00Z", "for": "30m"})
        self.assertEqual(code, 400)
        self.assertIn("in the past", body["error"])
        code, body, _ = self.api("POST", "/api/environments/prod/windows",
                                 {"at": "+1h", "until": "9999-12-31T23:00:00Z"})
        self.assertEqual(code, 400)
        self.assertIn("too long", body["error"])
        code, body, _ = self.api("POST", "/api/environments/prod/windows", {"at": "tomorrow"})
        self.assertEqual(code, 400)
        code, body, _ = self.api("POST", "/api/environments/prod/windows",
                                 {"at": "+1h", "for": "30m", "reason": "upgrade"})
        self.assertEqual(code, 201, body)
        code, body, _ = self.api("POST", "/api/environments/prod/windows/w1", {"for": "2h"})
        self.assertEqual(code, 200, body)
        code, body, _ = self.api("GET", "/api/environments/prod/windows")
        self.assertEqual(code, 200)
        [w] = body["windows"]
        self.assertEqual(w["reason"], "upgrade")
        self.assertEqual(w["who"], "operator-api")
        code, body, _ = self.api("DELETE", "/api/environments/prod/windows/w1")
        self.assertEqual(code, 200, body)
        code, body, _ = self.api("DELETE", "/api/environments/prod/windows/w1")
        self.assertEqual(code, 404)
        self.assertEqual(self.public_windows()[0]["prod"], [])
        self.assertNotIn(True, self.switches())


if __name__ == "__main__":
    unittest.main()
