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
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(__file__))
from fake_aws import TOKEN, FakeAws  # noqa: E402
from harness import BIN, codedeploy  # noqa: E402

SEED = int(os.environ.get("INTERMISSION_CRASH_SEED", "14"))
RANDOM_KILLS = int(os.environ.get("INTERMISSION_CRASH_RANDOM", "2"))  # per direction, backend
LEASE = 3  # store.lease (seconds) in every config here: a dead holder blocks this long
# Each backend wait must be shorter than the lease (a config with a longer one is refused):
WAIT = "2500ms"  # the ELB health_timeout and the HAProxy command timeout here
# SQLite's busy timeout in seconds: SqliteStore::open's default (src/adapters/store/sqlite_store.h),
# which neither the configuration nor the command line can change.
BUSY_TIMEOUT = 10
ORDER = ["haproxy", "elb-classic", "alb", "log", "log + sqlite", "log + dynamodb"]

# (backend, point) -> {"runs", "converged", "killed"}
RESULTS = collections.defaultdict(lambda: {"runs": 0, "converged": 0, "killed": 0})


def record(backend, point, converged, killed=False):
    r = RESULTS[(backend, point)]
    r["runs"] += 1
    r["converged"] += int(converged)
    r["killed"] += int(killed)


def table():
    rows = ["| backend | crash point / fault | runs | killed / failed there | end state correct |",
            "|---|---|---:|---:|---:|"]
    def natural(text):  # "request 10" after "request 9"
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]
    keys = sorted(RESULTS, key=lambda k: (ORDER.index(k[0]) if k[0] in ORDER else 99, natural(k[1])))
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

    def status(self, *flags):
        return json.loads(self.cli("status", "--json", *flags).stdout)["environments"][0]

    def wait_for_lease(self):
        deadline = time.monotonic() + LEASE + 5
        while time.monotonic() < deadline:
            if self.status("--no-observe")["switching"] is None:
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

    def crashed_switch(self, on, point, after_step=None, delay=None, when=None):
        """Starts the switch to `on` and SIGKILLs it after backend step `after_step` (counted
        from this switch's start), after `delay` seconds or once `when()` is true; then the
        next tick must converge."""
        base = self.steps()
        msg = self.message(on)
        p = self.start(msg)
        if when is not None:
            self.watch_and_kill(p, when)
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
    delay = "100ms"  # each step's time: a crash can land inside it

    def setUp(self):
        super().setUp()
        self.write_config(f"""\
store: {{path: state.db, lease: {LEASE}s}}
routes:
  - deployment_group: "*-*"
    environment: "{{1}}"
environments:
  prod:
    backend: {{type: log, path: steps.log, delay: {self.delay}}}
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


# nanosleep and clock_nanosleep on x86-64: the log backend's delay (std::this_thread::sleep_for).
SLEEP_SYSCALLS = {"35", "230"}


def process_state(pid):
    """The state letter of /proc/PID/stat ("T": stopped), "" once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return ""


class SqliteLocked(LogBackend):
    """Another connection holds the database with BEGIN EXCLUSIVE: from the start of a switch
    (before it records its event), or from backend step k (once its event is recorded and its
    lease taken, and the k-1 steps before are done). Held 1 s, within the busy timeout, the
    switch waits for it and still ends converged by itself, exit 0, no tick. Held past the busy
    timeout from the last step, the write after the step really fails: the backend has switched
    but the ledger does not say so; the next tick (once the lease is gone) must converge."""

    backend = "log + sqlite"
    # The locker must see step k under way before it ends; the process is then stopped while
    # the lock is taken, so only seeing it in time is a race, and this leaves it ample time.
    delay = "500ms"

    def lease_taken(self, db):
        return db.execute("SELECT count(*) FROM leases").fetchone()[0] > 0

    def stopped_in_step(self, p, k, base, db):
        """Stops `p` (SIGSTOP) inside backend step k: the steps before it logged, its own not
        yet, and the main thread asleep in the log backend's delay — so the lease renewal
        before the step is committed and the write after it is still to come, and no
        transaction of the process is open. Returns whether it is stopped there (False: step k
        ended first, or the process did)."""
        def in_delay():
            with open(f"/proc/{p.pid}/syscall") as f:  # the main thread's syscall
                return f.read().split(" ", 1)[0] in SLEEP_SYSCALLS
        deadline = time.monotonic() + 30
        while p.poll() is None and time.monotonic() < deadline:
            done = self.steps() - base
            if done > k - 1:
                return False
            if done == k - 1 and self.lease_taken(db) and in_delay():
                os.kill(p.pid, signal.SIGSTOP)
                while p.poll() is None and process_state(p.pid) != "T":
                    time.sleep(0.001)
                if p.poll() is None and self.steps() - base == k - 1 and in_delay():
                    return True
                os.kill(p.pid, signal.SIGCONT)
            time.sleep(0.002)
        return False

    def locked_switch(self, on, k, n, seconds):
        """Locks from step k of n (0: before the process starts) for `seconds`; returns (rc,
        stderr, whether the process was still running when the lock was let go: it waited)."""
        db = sqlite3.connect(os.path.join(self.dir, "state.db"), timeout=10, isolation_level=None,
                             check_same_thread=False)  # the locker thread uses it
        if k == 0:
            db.execute("BEGIN EXCLUSIVE")
        base = self.steps()
        p = self.start(self.message(on))
        waited = []

        def locker():
            while k > 0:
                if not self.stopped_in_step(p, k, base, db):
                    return  # step k ended before it was seen: "never waited" says so
                db.execute("PRAGMA busy_timeout = 0")  # the process is stopped: never wait
                try:
                    db.execute("BEGIN EXCLUSIVE")
                    break
                except sqlite3.OperationalError:
                    pass  # it was stopped holding a lock after all: let it go on, try again
                finally:
                    db.execute("PRAGMA busy_timeout = 10000")
                    os.kill(p.pid, signal.SIGCONT)
                time.sleep(0.002)
            time.sleep(seconds)
            waited.append(p.poll() is None)
            db.execute("COMMIT")
        t = threading.Thread(target=locker)
        t.start()
        rc, err = self.finish(p)
        t.join()
        db.close()
        return rc, err, bool(waited and waited[0])

    def short_lock(self, on, k, n):
        rc, err, waited = self.locked_switch(on, k, n, 1.0)
        decision, problems = self.problems()
        where = f"from step {k}/{n}" + (" (before the event is recorded)" if k == 0 else "")
        point = f"{'on' if on else 'off'}: database locked 1 s (within the busy timeout) {where}"
        record(self.backend, point, rc == 0 and not problems and decision == on, rc != 0)
        with self.subTest(point=point):
            self.assertTrue(waited, "the switch was over before the lock was let go: it never waited")
            self.assertEqual((rc, problems, decision), (0, [], on), err)

    def long_lock(self, on, n):
        before = self.steps()
        rc, err, waited = self.locked_switch(on, n, n, BUSY_TIMEOUT + 1)
        switched = self.steps() - before  # the backend's steps done before the write failed
        failed = rc != 0
        if self.status("--no-observe")["switching"] is not None:
            self.wait_for_lease()  # its release may have failed too
        self.cli("tick")
        decision, problems = self.problems()
        point = (f"{'on' if on else 'off'}: database locked {BUSY_TIMEOUT + 1} s "
                 f"(past the busy timeout) from step {n}/{n}, then tick")
        record(self.backend, point, not problems and decision == on, failed)
        with self.subTest(point=point):
            self.assertTrue(waited, "the switch was over before the lock was let go")
            self.assertNotEqual(rc, 0, "a write past the busy timeout did not fail")
            self.assertEqual(switched, n, "the backend had switched when the write after it failed")
            self.assertIn("database is locked", err)
            self.assertEqual((problems, decision), ([], on), err)

    def test_crash_campaign(self):
        n_on = self.clean_switch(True)
        n_off = self.clean_switch(False)
        for k in range(0, n_on + 1):
            self.short_lock(True, k, n_on)
            self.clean_switch(False)
        for k in range(0, n_off + 1):
            self.clean_switch(True)
            self.short_lock(False, k, n_off)
        # Past the busy timeout: once per direction, from the last step (the write after the
        # backend's switch fails). Each run waits the whole timeout, which is not configurable.
        self.long_lock(True, n_on)
        self.clean_switch(False)
        self.clean_switch(True)
        self.long_lock(False, n_off)


class AwsCampaign(Campaign):
    """A backend behind the fake AWS: it kills after exactly its Nth answered mutating call."""

    def setUp(self):
        super().setUp()
        self.fake = FakeAws()
        self.addCleanup(self.fake.stop)

    def env(self):
        return self.fake.env(USER="crash")

    def arm(self, pid, n):
        self.fake._call("POST", "/__fake/kill-after", {"pid": pid, "calls": n})
        return True

    def crashed_switch(self, on, point, after_step=None, delay=None, when=None):
        killed = super().crashed_switch(on, point, after_step, delay, when)
        self.fake._call("POST", "/__fake/kill-after", {"pid": 0, "calls": None})  # disarm
        return killed

    def steps(self):
        return sum(1 for c in self.fake.calls() if c["status"] == 200 and
                   not c["action"].startswith("Describe") and c["action"] != "GetDeployment")


class ElbClassic(AwsCampaign):
    backend = "elb-classic"

    def setUp(self):
        super().setUp()
        self.fake.setup(
            instances={"i-page1": "eu-west-1a"},
            load_balancers=[{"name": "web-lb", "interval": 0.1, "healthy_threshold": 2}],
            groups=[{"name": "web-asg", "instances": ["i-app1", "i-app2"], "load_balancers": ["web-lb"]}],
            require_token=TOKEN)
        self.write_config(f"""\
store: {{path: state.db, lease: {LEASE}s}}
aws: {{region: eu-west-1, max_attempts: 4, codedeploy_lookup: false}}
routes:
  - deployment_group: "*-*"
    environment: "{{1}}"
environments:
  prod:
    backend:
      type: elb-classic
      load_balancer: web-lb
      auto_scaling_group: web-asg
      page_instances: [i-page1]
      min_healthy: 2
      health_timeout: {WAIT}
      poll_interval: 50ms
""")

    def backend_problems(self, on):
        out = []
        s = self.fake.state()
        group = s["groups"]["web-asg"].get("web-lb")
        lb = s["lbs"]["web-lb"]
        if on and (group not in (None, "Removed", "Removing") or
                   {i for i, st in lb.items() if st == "InService"} != {"i-page1"}):
            out.append(f"not in maintenance: {s['groups']} {lb}")
        if not on and (group not in ("Added", "InService", "Adding") or
                       any(i.startswith("i-page") and st != "Draining" for i, st in lb.items())):
            out.append(f"not serving the app: {s['groups']} {lb}")
        for zone, series in self.fake.zone_timeline()["web-lb"].items():
            low = min(n for _, n in series)
            if low <= 0:
                out.append(f"zone {zone} had nothing serving: {series}")
        return out

    def test_crash_campaign(self):
        self.run_campaign()


ALB_ARN = "arn:aws:elasticloadbalancing:eu-west-1:111122223333"
L_HTTPS = f"{ALB_ARN}:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
L_HTTP = f"{ALB_ARN}:listener/app/web/50dc6c495c0c9188/0467ef3c8400ae65"
TG_APP = f"{ALB_ARN}:targetgroup/app/73e2d6bc24d8a067"


class Alb(AwsCampaign):
    backend = "alb"

    def setUp(self):
        super().setUp()
        self.fake.setup(
            target_groups={TG_APP: {"i-app1": True}},
            listeners=[{"arn": L_HTTPS, "target_group": TG_APP}, {"arn": L_HTTP, "target_group": TG_APP}],
            rules=[{"listener": L_HTTPS, "priority": 1, "path": "/admin/*"}],
            require_token=TOKEN)
        self.write_config(f"""\
store: {{path: state.db, lease: {LEASE}s}}
aws: {{region: eu-west-1, max_attempts: 4, codedeploy_lookup: false}}
routes:
  - deployment_group: "*-*"
    environment: "{{1}}"
environments:
  prod:
    backend:
      type: alb
      listeners: [{L_HTTPS}]
      bypass_cidrs: [203.0.113.0/28]
      bypass_secret: s3cret-42
""")
        self.theirs = self.rules(False)
        self.expected_on = None

    def rules(self, ours):
        out = []
        for r in self.fake.state()["rules"].values():
            if ("intermission:environment" in r["tags"]) == ours:
                out.append(json.dumps({k: v for k, v in r.items() if k != "arn"}, sort_keys=True))
        return sorted(out)

    def route(self, listener, **request):
        a = self.fake._call("POST", "/__fake/route", dict(listener=listener, **request))["actions"][0]
        return a["FixedResponseConfig"]["StatusCode"] if a["Type"] == "fixed-response" else "app"

    def backend_problems(self, on):
        out = []
        mine = self.rules(True)
        if on:
            if self.expected_on is None:
                self.expected_on = mine  # the clean round's rule set is the reference
            if mine != self.expected_on:
                out.append(f"the maintenance rules are not exactly the clean set: {mine}")
        elif mine:
            out.append(f"maintenance rules left: {mine}")
        if self.rules(False) != self.theirs:
            out.append("rules of others changed")
        for listener in (L_HTTPS,):
            got = self.route(listener, path="/")
            if got != ("503" if on else "app"):
                out.append(f"{listener} routes / to {got}")
        if self.route(L_HTTPS, path="/", ip="203.0.113.5") != "app":
            out.append("a bypass client does not reach the app")
        return out

    def test_crash_campaign(self):
        self.run_campaign()


class AdminSocketProxy:
    """Sits on HAProxy's admin socket (one command per connection, as our client speaks it),
    counts answered map changes and SIGKILLs an armed pid right after the Nth was answered."""

    def __init__(self, path, upstream):
        self.path, self.upstream = path, upstream
        self.changes = 0
        self.armed = None  # (pid, changes at which to kill)
        self.lock = threading.Lock()
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(path)
        self.server.listen(16)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.relay, args=(client,), daemon=True).start()

    def relay(self, client):
        command = b""
        try:
            with client:
                while True:
                    chunk = client.recv(4096)
                    if not chunk:
                        break
                    command += chunk
                with socket.socket(socket.AF_UNIX) as up:
                    up.connect(self.upstream)
                    up.sendall(command)
                    up.shutdown(socket.SHUT_WR)
                    while True:
                        chunk = up.recv(65536)
                        if not chunk:
                            break
                        client.sendall(chunk)
                client.shutdown(socket.SHUT_WR)
        except OSError:
            return  # the client was killed mid-command: HAProxy may have applied it, or not
        if command.startswith((b"add map", b"del map", b"set map")):
            with self.lock:
                self.changes += 1
                if self.armed and self.changes >= self.armed[1]:
                    try:
                        os.kill(self.armed[0], signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    self.armed = None

    def close(self):
        self.server.close()


class Haproxy(Campaign):
    backend = "haproxy"

    def setUp(self):
        super().setUp()
        from stack import Stack
        self.stack = Stack().start()
        self.addCleanup(self.stack.stop)
        self.proxy = AdminSocketProxy(os.path.join(self.dir, "admin.sock"), self.stack.socket)
        self.addCleanup(self.proxy.close)
        self.write_config(f"""\
store: {{path: state.db, lease: {LEASE}s}}
routes:
  - deployment_group: "*-*"
    environment: "{{1}}"
environments:
  prod:
    backend: {{type: haproxy, socket: {self.proxy.path}, map: {self.stack.map}, timeout: {WAIT}}}
""")

    def steps(self):
        return self.proxy.changes

    def arm(self, pid, n):
        with self.proxy.lock:
            self.proxy.armed = (pid, self.proxy.changes + n)
        return True

    def crashed_switch(self, *args, **kwargs):
        killed = super().crashed_switch(*args, **kwargs)
        self.proxy.armed = None
        return killed

    def map_file_on(self):
        with open(self.stack.map) as f:
            return any(line.split()[:1] == ["prod"] for line in f)

    def live_on(self):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.stack.socket)
            s.sendall(f"show map {self.stack.map}\n".encode())
            s.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        return any(line.split()[1:2] == ["prod"] for line in reply.decode().splitlines())

    def backend_problems(self, on):
        out = []
        if self.live_on() != on:
            out.append(f"HAProxy's live map disagrees with the decision {on}")
        if self.map_file_on() != on:
            out.append(f"the map file disagrees with the decision {on} (a reload would flip it)")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.stack.port}/", timeout=5) as r:
                served = r.status
        except urllib.error.HTTPError as e:
            served = e.code
        if served != (503 if on else 200):
            out.append(f"a request got {served}")
        return out

    def test_crash_campaign(self):
        self.run_campaign()
        # And once the map file has been written (the last thing a step does).
        for on, name in ((True, "on"), (False, "off")):
            if not on:
                self.clean_switch(True)
            self.crashed_switch(on, f"{name}: SIGKILL after the map file write",
                                when=lambda on=on: self.map_file_on() == on)


class DynamoFaultProxy:
    """HTTP proxy in front of dynalite: forwards every request, except that the ones whose
    index is scheduled get a DynamoDB error instead (throttling or a 5xx)."""

    FAULTS = {
        "throttled": (400, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                      "The level of configured provisioned throughput for the table was exceeded."),
        "5xx": (500, "com.amazonaws.dynamodb.v20120810#InternalServerError", "Internal server error"),
    }

    def __init__(self, upstream):
        proxy = self
        self.upstream = upstream
        self.count = 0
        self.schedule = {}  # request index -> fault name
        self.ops = []       # X-Amz-Target of every request, in order
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    index = proxy.count
                    proxy.count += 1
                    proxy.ops.append(self.headers.get("X-Amz-Target", "?").split(".")[-1])
                    fault = proxy.schedule.pop(index, None)
                if fault is not None:
                    status, code, message = proxy.FAULTS[fault]
                    data = json.dumps({"__type": code, "message": message}).encode()
                    ctype = "application/x-amz-json-1.0"
                else:
                    req = urllib.request.Request(proxy.upstream + self.path, data=body, method="POST",
                                                 headers={k: v for k, v in self.headers.items()
                                                          if k.lower() not in ("host", "content-length")})
                    try:
                        with urllib.request.urlopen(req, timeout=30) as r:
                            status, data, ctype = r.status, r.read(), r.headers.get("Content-Type")
                    except urllib.error.HTTPError as e:
                        status, data, ctype = e.code, e.read(), e.headers.get("Content-Type")
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class DynamoDbFaults(LogBackend):
    """The DynamoDB store behind the fault proxy: every request of a switch, in turn, is
    throttled or answered with a 500 — once (the client's retry must absorb it) and as many
    times as the client tries (the run fails there; the next tick must converge)."""

    backend = "log + dynamodb"
    attempts = 3

    @classmethod
    def setUpClass(cls):
        from dynalite import Dynalite
        cls.dynamo = Dynalite()
        cls.fake = FakeAws()  # for its environment helper: credentials and region
        cls.dynamo.create_table("intermission", cls.fake.env(AWS_ENDPOINT_URL=cls.dynamo.url))
        cls.proxy = DynamoFaultProxy(cls.dynamo.url)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.close()
        cls.dynamo.stop()
        cls.fake.stop()

    def setUp(self):
        super().setUp()
        self.write_config(f"""\
store: {{type: dynamodb, table: intermission, lease: {LEASE}s}}
aws: {{region: eu-west-1, codedeploy_lookup: false, max_attempts: {self.attempts}}}
routes:
  - deployment_group: "*-*"
    environment: "{{1}}"
environments:
  prod:
    backend: {{type: log, path: steps.log}}
""")

    def env(self):
        return self.fake.env(AWS_ENDPOINT_URL=self.proxy.url, USER="crash")

    def faulted_switch(self, on, index, op, fault, times):
        with self.proxy.lock:
            start = self.proxy.count
            for i in range(times):
                self.proxy.schedule[start + index + i] = fault
        rc, err = self.finish(self.start(self.message(on)))
        with self.proxy.lock:
            self.proxy.schedule.clear()
        left = self.status("--no-observe")["switching"] is not None
        if rc != 0 or left:  # a failed lease release leaves it to run out, exit 0 or not
            self.wait_for_lease()
            self.cli("tick")
        decision, problems = self.problems()
        kind = "once" if times == 1 else f"{times}x, past the retries"
        point = f"{'on' if on else 'off'}: request {index + 1} ({op}) {fault} {kind}"
        record(self.backend, point, not problems, rc != 0 or left)  # failed there
        with self.subTest(point=point):
            self.assertEqual(problems, [], f"rc {rc}\n{err}")
            if times == 1:
                self.assertEqual((rc, decision), (0, on), err)
        if decision:
            self.clean_switch(False)

    def test_crash_campaign(self):
        for on in (True, False):
            if not on:
                self.clean_switch(True)
            start = self.proxy.count
            rc, err = self.finish(self.start(self.message(on)))
            self.assertEqual(rc, 0, err)
            ops = self.proxy.ops[start:self.proxy.count]  # the requests of one switch
            if on:
                self.clean_switch(False)
            # Every request gets both faults; which one outlasts the retries alternates.
            for index, op in enumerate(ops):
                for fault, times in (("throttled", self.attempts if index % 2 == 0 else 1),
                                     ("5xx", 1 if index % 2 == 0 else self.attempts)):
                    if not on:
                        self.clean_switch(True)
                    self.faulted_switch(on, index, op, fault, times)


if __name__ == "__main__":
    unittest.main()
