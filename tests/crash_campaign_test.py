"""The crash and fault campaign (issue 14): for every backend (HAProxy, Classic ELB, ALB, `log`)
`intermission handle` is SIGKILLed right after each backend step of a switch and at seeded random
moments; after the dead process's switching lease runs out, the next `tick` must converge the
backend to the ledger's decision. Store faults are injected at every step: SQLite held locked by
another connection (BEGIN EXCLUSIVE), DynamoDB throttling and 5xx from a fault proxy in front of
dynalite. Every run is counted; the table (backend x crash point/fault -> runs, converged) is
printed and, with INTERMISSION_CRASH_TABLE=FILE, written for docs/crash-campaign.md.

Kills come from the peer's side, without hooks in the product: the fake AWS kills after its Nth
answered mutating call (/__fake/kill-after), a proxy on HAProxy's admin socket after the Nth
answered `add map`/`del map`, and for the `log` backend a watcher after the file grows.
Seed: INTERMISSION_CRASH_SEED (default 14)."""

import collections
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(__file__))
from fake_aws import TOKEN, FakeAws  # noqa: E402
from harness import BIN, codedeploy  # noqa: E402

SEED = int(os.environ.get("INTERMISSION_CRASH_SEED", "14"))
RANDOM_KILLS = 3  # seeded random moments per switch direction and backend
LEASE = 2  # store.lease (seconds) in every config here: a dead holder blocks this long
ORDER = ["haproxy", "elb-classic", "alb", "log", "log + sqlite", "log + dynamodb"]

# (backend, point) -> {"runs", "converged", "killed"}
RESULTS = collections.defaultdict(lambda: {"runs": 0, "converged": 0, "killed": 0})


def record(backend, point, converged, killed=False):
    r = RESULTS[(backend, point)]
    r["runs"] += 1
    r["converged"] += int(converged)
    r["killed"] += int(killed)


def table():
    rows = ["| backend | crash point / fault | runs | killed there | end state correct |",
            "|---|---|---:|---:|---:|"]
    keys = sorted(RESULTS, key=lambda k: (ORDER.index(k[0]) if k[0] in ORDER else 99, k[1]))
    for b, p in keys:
        r = RESULTS[(b, p)]
        rows.append(f"| {b} | {p} | {r['runs']} | {r['killed']} | {r['converged']} |")
    runs = sum(r["runs"] for r in RESULTS.values())
    ok = sum(r["converged"] for r in RESULTS.values())
    killed = sum(r["killed"] for r in RESULTS.values())
    rows.append(f"| **total** | {len(RESULTS)} crash points and faults | {runs} | {killed} | {ok} |")
    return "\n".join(rows)


def tearDownModule():
    text = table()
    print(f"\ncrash campaign (seed {SEED}):\n{text}\n", file=sys.stderr)
    out = os.environ.get("INTERMISSION_CRASH_TABLE")
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")


class Campaign(unittest.TestCase):
    """Drives one backend through crashed and clean switches. Subclasses provide the world
    (env, config), `steps()` (backend steps done so far), `arm(pid, n)` (kill after step n,
    precisely, or None to use the step watcher) and `backend_problems(on)`."""

    backend = "?"
    lease_wait = True

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-crash-")
        self.dir = self._tmp.name
        self.config = os.path.join(self.dir, "config.yaml")
        self.rng = random.Random(f"{SEED}-{self.backend}")
        self.serial = 0

    def tearDown(self):
        self._tmp.cleanup()

    def env(self):
        return dict(os.environ, USER="crash")

    def write_config(self, text):
        with open(self.config, "w") as f:
            f.write(text)

    # -- processes --------------------------------------------------------------------------
    def cli(self, *args, stdin=None, check=0):
        p = subprocess.run([BIN, "--config", self.config, "--log-level", "error", *args],
                           input=stdin, capture_output=True, text=True, cwd=self.dir,
                           env=self.env(), timeout=120)
        if check is not None:
            self.assertEqual(p.returncode, check, f"{args}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def start(self, message):
        p = subprocess.Popen([BIN, "--config", self.config, "--log-level", "error", "handle"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             cwd=self.dir, env=self.env(), text=True)
        p.stdin.write(json.dumps(message))
        p.stdin.close()
        return p

    def finish(self, p):
        p.wait(timeout=120)
        p.stdout.close()
        err = p.stderr.read()
        p.stderr.close()
        return p.returncode, err

    def status(self):
        return json.loads(self.cli("status", "--json").stdout)["environments"][0]

    def wait_for_lease(self):
        deadline = time.monotonic() + LEASE + 5
        while time.monotonic() < deadline:
            if self.status()["switching"] is None:
                return
            time.sleep(0.2)
        self.fail("the dead process's lease never ran out")

    def problems(self):
        """Why the environment is not converged to the ledger's decision (empty: it is)."""
        st = self.status()
        out = []
        if st["switching"] is not None:
            out.append(f"a lease is left: {st['switching']}")
        if st.get("observed", {}).get("on") != st["on"]:
            out.append(f"decision {st['on']} but observed {st.get('observed')}")
        if st["applied"]["on"] != st["on"]:
            out.append(f"decision {st['on']} but recorded as applied {st['applied']}")
        out += self.backend_problems(st["on"])
        return st["on"], out

    # -- the campaign ---------------------------------------------------------------------
    def message(self, on):
        if on:
            self.serial += 1
            return codedeploy(f"d-{self.serial}", "CREATED")
        return codedeploy(f"d-{self.serial}", "SUCCEEDED")

    def clean_switch(self, on):
        """A switch without faults; returns the number of backend steps it took."""
        before = self.steps()
        rc, err = self.finish(self.start(self.message(on)))
        self.assertEqual(rc, 0, err)
        decision, problems = self.problems()
        self.assertEqual((decision, problems), (on, []))
        return self.steps() - before

    def arm(self, pid, n):
        return False  # no precise hook: the step watcher kills

    def crashed_switch(self, on, point, after_step=None, delay=None):
        """Starts the switch to `on` and SIGKILLs it after backend step `after_step` (counted
        from this switch's start) or after `delay` seconds; then the next tick must converge."""
        base = self.steps()
        msg = self.message(on)
        p = self.start(msg)
        if after_step is not None and not self.arm(p.pid, after_step):
            self.watch_and_kill(p, lambda: self.steps() - base >= after_step)
        if delay is not None:
            threading.Timer(delay, lambda: p.poll() is None and p.send_signal(signal.SIGKILL)).start()
        rc, err = self.finish(p)
        killed = rc == -signal.SIGKILL
        if killed:
            self.wait_for_lease()
        self.cli("tick")
        decision, problems = self.problems()
        record(self.backend, point, not problems, killed)
        with self.subTest(point=point, on=on):
            self.assertEqual(problems, [], f"{point}: rc {rc}\n{err}")
        # Back to the other state, cleanly, for the next run.
        if decision:
            self.clean_switch(False)
        return killed

    def watch_and_kill(self, p, done):
        def watch():
            while p.poll() is None:
                if done():
                    p.send_signal(signal.SIGKILL)
                    return
                time.sleep(0.002)
        threading.Thread(target=watch, daemon=True).start()

    def run_campaign(self):
        # A clean round first: how many steps each direction takes (the crash points).
        t0 = time.monotonic()
        steps_on = self.clean_switch(True)
        self.switch_time = time.monotonic() - t0  # random kills land within a switch's time
        steps_off = self.clean_switch(False)
        self.assertGreater(steps_on, 0)
        self.assertGreater(steps_off, 0)
        for on, n, name in ((True, steps_on, "on"), (False, steps_off, "off")):
            for k in range(1, n + 1):
                if not on:
                    self.clean_switch(True)
                self.crashed_switch(on, f"{name}: SIGKILL after step {k}/{n}", after_step=k)
        # Random moments: seeded delays over the length of a whole switch.
        for on, name in ((True, "on"), (False, "off")):
            for _ in range(RANDOM_KILLS):
                if not on:
                    self.clean_switch(True)
                self.crashed_switch(on, f"{name}: SIGKILL at a random moment",
                                    delay=self.rng.uniform(0.0, self.switch_time))


class LogBackend(Campaign):
    backend = "log"

    def setUp(self):
        super().setUp()
        self.write_config(f"""\
store: {{path: state.db, lease: {LEASE}s}}
routes:
  - deployment_group: "*-*"
    environment: "{{1}}"
environments:
  prod:
    backend: {{type: log, path: steps.log, delay: 100ms}}
""")

    def steps(self):
        path = os.path.join(self.dir, "steps.log")
        if not os.path.exists(path):
            return 0
        with open(path) as f:
            return sum(1 for line in f if line.endswith("\n"))

    def backend_problems(self, on):
        return []  # the log backend's observation is its file: checked by problems()

    def test_crash_campaign(self):
        self.run_campaign()


class SqliteLocked(LogBackend):
    """Another connection holds the database with BEGIN EXCLUSIVE from step k of a switch for
    longer than a step: the switch waits (busy timeout) and still ends converged, no tick."""

    backend = "log + sqlite"

    def hold_lock(self, seconds):
        db = sqlite3.connect(os.path.join(self.dir, "state.db"), timeout=10, isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        db.execute("COMMIT")
        db.close()

    def locked_switch(self, on, k, n):
        base = self.steps()
        p = self.start(self.message(on))
        held = threading.Event()

        def locker():
            while p.poll() is None and self.steps() - base < k:
                time.sleep(0.002)
            if p.poll() is None:
                held.set()
                self.hold_lock(1.0)
        t = threading.Thread(target=locker)
        t.start()
        rc, err = self.finish(p)
        t.join()
        decision, problems = self.problems()
        point = f"{'on' if on else 'off'}: database locked (BEGIN EXCLUSIVE, 1 s) from step {k}/{n}"
        record(self.backend, point, rc == 0 and not problems and decision == on, held.is_set())
        with self.subTest(point=point):
            self.assertEqual((rc, problems, decision), (0, [], on), err)

    def test_crash_campaign(self):
        n_on = self.clean_switch(True)
        n_off = self.clean_switch(False)
        for k in range(0, n_on + 1):
            self.locked_switch(True, k, n_on)
            self.clean_switch(False)
        for k in range(0, n_off + 1):
            self.clean_switch(True)
            self.locked_switch(False, k, n_off)


if __name__ == "__main__":
    unittest.main()
