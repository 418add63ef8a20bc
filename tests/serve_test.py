"""`intermission serve` end to end: SNS-shaped notifications, signed by our test CA, posted to
the running daemon switch a real HAProxy (the e2e stack) to the maintenance page and back;
forged, tampered, wrong-topic and replayed inputs are refused; subscriptions are confirmed
only for allowed topics; a genuine start replayed after many other messages or a restart does
not raise the page again; the operator API needs its token; the webhook needs its HMAC and
refuses replays; /metrics passes promtool; SIGHUP with a bad config keeps the daemon up."""

import concurrent.futures
import hashlib
import hmac
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import codedeploy, wait_until  # noqa: E402
from http_probe import probe  # noqa: E402
from sns_signing import REGION, TOPIC, WRONG_SUBJECT, Signer, now_iso  # noqa: E402
from stack import BIN, Stack, Traffic, free_ports, wait_for_port  # noqa: E402

TOKEN = "operator-token-0123456789abcdef0123"  # at least 32 characters
SECRET = "webhook-secret-abcdef0123456789abcd"  # at least 32 characters



def answer(handler, status, body, headers=()):
    """Sends one whole answer on an http.server handler."""
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class ConfirmRecorder(http.server.BaseHTTPRequestHandler):
    """Stands in for SNS's ConfirmSubscription endpoint (AWS_ENDPOINT_URL_SNS); a signing
    certificate asked from it hangs (answers nothing for 15 s)."""
    seen = []
    cert_fetches = []

    def do_GET(self):
        if self.path.startswith("/SimpleNotificationService-"):
            ConfirmRecorder.cert_fetches.append(self.path)
            time.sleep(15)
            return
        ConfirmRecorder.seen.append(self.path)
        answer(self, 200, b"<ConfirmSubscriptionResponse/>")

    def log_message(self, *args):
        pass


class Serve(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="intermission-serve-")
        cls.signer = Signer(os.path.join(cls._tmp.name, "pki"))
        cls.confirm = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ConfirmRecorder)
        threading.Thread(target=cls.confirm.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.confirm.shutdown()
        cls._tmp.cleanup()

    def setUp(self):
        self.stack = Stack().start()
        self.public, self.admin = free_ports(2)
        with open(self.stack.config, "a") as f:
            f.write(f"""serve:
  listen: 127.0.0.1:{self.public}
  admin_listen: 127.0.0.1:{self.admin}
  tick_interval: 1s
  sns:
    topics: [{TOPIC}]
    ca_file: {self.signer.ca}
    cert_dir: {self.signer.certs}
""")
        env = dict(os.environ, INTERMISSION_OPERATOR_TOKEN=TOKEN, INTERMISSION_WEBHOOK_SECRET=SECRET,
                   AWS_ENDPOINT_URL_SNS=f"http://127.0.0.1:{self.confirm.server_address[1]}")
        self.serve = subprocess.Popen([BIN, "--config", self.stack.config, "serve"], cwd=self.stack.dir,
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for_port(self.public)
        wait_for_port(self.admin)

    def tearDown(self):
        if self.serve.poll() is None:
            self.serve.terminate()
            self.serve.wait(timeout=20)
        self.stack.stop()

    def post(self, port, path, body, headers=None, timeout=10):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="POST",
                                     headers={"Content-Type": "text/plain; charset=UTF-8", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def get(self, port, path, headers=None):
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def sns(self, message, message_id, **changes):
        # A current Timestamp: a start older than max_duration would (rightly) be expired.
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        return self.post(self.public, "/sns",
                         self.signer.notification(message, message_id=message_id, timestamp=now,
                                                  **changes),
                         {"x-amz-sns-message-type": "Notification"})

    def maintenance(self):
        status, body = self.get(self.stack.port, "/")
        return status == 503

    def test_signed_notifications_switch_haproxy_with_zero_failed_requests(self):
        traffic = Traffic(self.stack.port, clients=2)
        traffic.start()
        try:
            status, body = self.sns(codedeploy("d-1", "CREATED"), "m-1")
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body)["outcome"], "recorded")
            self.assertTrue(wait_until(self.maintenance, 20.0), "the page is up")
            # Users get the page (on a busy machine the clients may need a moment to see it).
            self.assertTrue(wait_until(lambda: traffic.kinds()["page"] > 0, 20), traffic.kinds())
            # SNS redelivers the same message: harmless.
            self.assertEqual(self.sns(codedeploy("d-1", "CREATED"), "m-1")[0], 200)
            status, _ = self.sns(codedeploy("d-1", "SUCCEEDED"), "m-2")
            self.assertEqual(status, 200)
            self.assertTrue(wait_until(lambda: not self.maintenance(), 20.0))
        finally:
            traffic.stop()
        counts = traffic.kinds()
        self.assertEqual(counts["error"] + counts["other"], 0, traffic.errors[:5])
        self.assertGreater(counts["page"], 0)

    def test_forged_tampered_and_wrong_topic_messages_are_refused(self):
        forged = self.signer.notification(codedeploy("d-9", "CREATED"), message_id="f-1", timestamp=now_iso())
        forged["Message"] = json.dumps(codedeploy("d-9", "CREATED", group="prod-api"))
        self.assertEqual(self.post(self.public, "/sns", forged)[0], 403)
        other = self.sns(codedeploy("d-9", "CREATED"), "f-2",
                         topic=f"arn:aws:sns:{REGION}:123456789012:not-ours")
        self.assertEqual(other[0], 403)
        self.assertIn("allow-list", other[1])
        url = self.sns(codedeploy("d-9", "CREATED"), "f-3",
                       SigningCertURL="https://attacker.example/SimpleNotificationService-1.pem")
        self.assertEqual(url[0], 403)
        self.assertEqual(self.post(self.public, "/sns", "not json at all")[0], 403)
        time.sleep(0.5)
        self.assertFalse(self.maintenance())
        _, metrics = self.get(self.admin, "/metrics")
        self.assertIn('intermission_sns_verification_failures_total{reason="signature"} 1', metrics)
        self.assertIn('intermission_sns_verification_failures_total{reason="topic"} 1', metrics)

    def test_subscriptions_are_confirmed_only_for_allowed_topics(self):
        ConfirmRecorder.seen.clear()
        status, body = self.post(self.public, "/sns", self.signer.confirmation(timestamp=now_iso()))
        self.assertEqual(status, 200, body)
        self.assertEqual(len(ConfirmRecorder.seen), 1)
        self.assertIn("Action=ConfirmSubscription", ConfirmRecorder.seen[0])
        status, _ = self.post(self.public, "/sns",
                              self.signer.confirmation(topic=f"arn:aws:sns:{REGION}:123456789012:other",
                                                       timestamp=now_iso()))
        self.assertEqual(status, 403)
        self.assertEqual(len(ConfirmRecorder.seen), 1, "no request for a topic we do not allow")

    def test_only_the_verified_message_is_acted_on(self):
        genuine = self.signer.notification(codedeploy("d-1", "SUCCEEDED"), message_id="g-1",
                                           timestamp=now_iso())
        forged = dict(genuine, MessageId="f-1", Message=json.dumps(codedeploy("d-evil", "CREATED")))
        wrapped = {"Records": [{"EventSource": "aws:sns", "Sns": genuine},
                               {"EventSource": "aws:sns", "Sns": forged}]}
        status, body = self.post(self.public, "/sns", wrapped)
        self.assertEqual(status, 403, body)
        unsigned = {"Records": [{"EventSource": "aws:sns", "Sns": genuine},
                                {"operator": {"environment": "prod", "action": "on", "for": "8760h"}}]}
        self.assertEqual(self.post(self.public, "/sns", unsigned)[0], 403)
        # Whoever may publish to the topic gets no operator powers and no ticks.
        for i, inner in enumerate([{"operator": {"environment": "prod", "action": "on", "for": "8760h"}},
                                   [{"operator": {"environment": "prod", "action": "on"}}],
                                   {"detail-type": "Scheduled Event", "source": "aws.events"},
                                   {"intermission": "tick"}]):
            status, body = self.sns(inner, f"op-{i}")
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body)["outcome"], "ignored", body)
        time.sleep(0.5)
        self.assertFalse(self.maintenance())

    def test_replays_old_and_future_messages_and_wrong_certificates_are_refused(self):
        status, body = self.sns(codedeploy("d-1", "CREATED"), "r-1")
        self.assertEqual((status, json.loads(body)["outcome"]), (200, "recorded"), body)
        self.assertTrue(wait_until(self.maintenance, 20.0))
        self.assertEqual(self.sns(codedeploy("d-1", "SUCCEEDED"), "r-2")[0], 200)
        self.assertTrue(wait_until(lambda: not self.maintenance(), 20.0))
        # The start again, byte for byte: acknowledged, not acted on.
        status, body = self.sns(codedeploy("d-1", "CREATED"), "r-1")
        self.assertEqual((status, json.loads(body)["outcome"]), (200, "duplicate"), body)
        old = self.signer.notification(codedeploy("d-7", "CREATED"), message_id="r-3",
                                       timestamp=now_iso(-3 * 3600))
        status, body = self.post(self.public, "/sns", old)
        self.assertEqual(status, 403)
        self.assertIn("too old", body)
        future = self.signer.notification(codedeploy("d-8", "CREATED"), message_id="r-4",
                                          timestamp=now_iso(3600))
        status, body = self.post(self.public, "/sns", future)
        self.assertEqual(status, 403)
        self.assertIn("in the future", body)
        status, body = self.sns(codedeploy("d-9", "CREATED"), "r-5", cert=WRONG_SUBJECT)
        self.assertEqual(status, 403)
        self.assertIn("not issued to", body)
        time.sleep(0.5)
        self.assertFalse(self.maintenance())

    def test_a_hanging_certificate_url_stalls_nothing_and_leaks_nothing(self):
        ConfirmRecorder.cert_fetches.clear()
        results = {}

        # "At once" is under 5 s below: far from the 10-s hang, whatever the machine's load.
        # Messages are signed before the clock starts (signing runs openssl).
        def sign_new(name):
            return self.signer.notification(codedeploy("d-5", "CREATED"), message_id=f"h-{name}",
                                            timestamp=now_iso(), cert=f"SimpleNotificationService-{name}.pem")

        def post_new(name, m=None):
            m = m or sign_new(name)
            started = time.monotonic()
            results[name] = (*self.post(self.public, "/sns", m, timeout=20), time.monotonic() - started)

        first = threading.Thread(target=post_new, args=("0a0a0a0a",))
        first.start()
        self.assertTrue(wait_until(lambda: len(ConfirmRecorder.cert_fetches) == 1, 20))
        # While the fetch hangs, both listeners answer, and a message whose certificate we
        # have is verified and acted on at once.
        for port, path in [(self.public, "/healthz"), (self.admin, "/metrics")]:
            started = time.monotonic()
            self.assertEqual(self.get(port, path)[0], 200)
            self.assertLess(time.monotonic() - started, 5.0)
        ok = self.signer.notification(codedeploy("d-2", "CREATED"), message_id="h-ok", timestamp=now_iso())
        started = time.monotonic()
        status, body = self.post(self.public, "/sns", ok)
        self.assertEqual(status, 200, body)
        self.assertLess(time.monotonic() - started, 5.0)
        # New URLs beyond the rate limit are refused at once, and never fetched.
        signed = {f"{i:08x}b": sign_new(f"{i:08x}b") for i in range(12)}
        others = [threading.Thread(target=post_new, args=item) for item in signed.items()]
        for t in others:
            t.start()
        for t in [first, *others]:
            t.join(timeout=30)
        self.assertEqual(len(results), 13, "every request answered")
        time.sleep(1.0)  # the hanging fetch has timed out (10 s) and its failure is remembered
        fast = [n for n, (status, _, took) in results.items() if status == 503 and took < 5.0]
        self.assertGreaterEqual(len(fast), 6, results)
        self.assertLessEqual(len(ConfirmRecorder.cert_fetches), 6)
        for name, (status, body, took) in results.items():
            self.assertEqual(status, 503, (name, body))
            self.assertLess(took, 14.0, "answered before SNS gives up (15 s)")
            self.assertNotIn("127.0.0.1", body)
            self.assertNotIn("Timeout", body)
            self.assertNotIn(name, body)
        # The failure is remembered: asking again fetches nothing.
        fetched = len(ConfirmRecorder.cert_fetches)
        post_new("0a0a0a0a")
        self.assertEqual(results["0a0a0a0a"][0], 503)
        self.assertLess(results["0a0a0a0a"][2], 5.0)
        self.assertEqual(len(ConfirmRecorder.cert_fetches), fetched)

    def test_operator_api_needs_its_token(self):
        self.assertEqual(self.post(self.admin, "/api/environments/prod/on", {})[0], 401)
        self.assertEqual(self.post(self.admin, "/api/environments/prod/on", {},
                                   {"Authorization": "Bearer wrong"})[0], 401)
        auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        status, body = self.post(self.admin, "/api/environments/prod/on",
                                 {"reason": "database upgrade", "for": "10m", "who": "alice"}, auth)
        self.assertEqual(status, 200, body)
        self.assertTrue(wait_until(self.maintenance, 20.0))
        status, body = self.get(self.admin, "/api/environments/prod", auth)
        env = json.loads(body)["environments"][0]
        self.assertTrue(env["on"])
        self.assertEqual(env["hold"]["who"], "alice")
        self.assertEqual(self.get(self.admin, "/api/environments/nope", auth)[0], 404)
        self.post(self.admin, "/api/environments/prod/off", {}, auth)
        self.assertTrue(wait_until(lambda: not self.maintenance(), 20.0))
        status, page = self.get(self.admin, "/")
        self.assertEqual(status, 200)
        self.assertIn("<section class=\"env\" data-env=\"prod\"", page)

    def webhook(self, body, timestamp=None, secret=SECRET):
        ts = str(int(time.time()) if timestamp is None else timestamp)
        raw = json.dumps(body)
        sig = "sha256=" + hmac.new(secret.encode(), f"{ts}.{raw}".encode(), hashlib.sha256).hexdigest()
        return self.post(self.public, "/webhook", raw,
                         {"X-Intermission-Timestamp": ts, "X-Intermission-Signature": sig}), (raw, ts, sig)

    def test_webhook_hmac_window_and_replays(self):
        (status, body), (raw, ts, sig) = self.webhook(
            {"environment": "prod", "deployment_id": "build-42", "status": "started"})
        self.assertEqual(status, 200, body)
        self.assertTrue(wait_until(self.maintenance, 20.0))
        replay = self.post(self.public, "/webhook", raw,
                           {"X-Intermission-Timestamp": ts, "X-Intermission-Signature": sig})
        self.assertEqual(replay[0], 409)
        (status, _), _ = self.webhook({"environment": "prod", "deployment_id": "build-42",
                                       "status": "succeeded"}, secret="wrong")
        self.assertEqual(status, 401)
        (status, _), _ = self.webhook({"environment": "prod", "deployment_id": "build-42",
                                       "status": "succeeded"}, timestamp=int(time.time()) - 3600)
        self.assertEqual(status, 401)
        (status, _), _ = self.webhook({"environment": "prod", "deployment_id": "build-42",
                                       "status": "succeeded"})
        self.assertEqual(status, 200)
        self.assertTrue(wait_until(lambda: not self.maintenance(), 20.0))

    def test_metrics_pass_promtool_and_sighup_keeps_a_bad_config_out(self):
        self.sns(codedeploy("d-1", "CREATED"), "m-1")
        self.assertTrue(wait_until(self.maintenance, 20.0))
        time.sleep(1.2)  # a tick, for the gauges
        status, metrics = self.get(self.admin, "/metrics")
        self.assertEqual(status, 200)
        for name in ["intermission_events_total", "intermission_switches_total",
                     "intermission_switch_duration_seconds_count", "intermission_maintenance",
                     "intermission_http_requests_total"]:
            self.assertIn(name, metrics)
        check = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        with open(self.stack.config, "a") as f:
            f.write("nonsense: [\n")
        self.serve.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        self.assertIsNone(self.serve.poll(), "a bad config is refused, the daemon keeps running")
        self.assertEqual(self.get(self.admin, "/healthz")[0], 200)
        self.serve.send_signal(signal.SIGTERM)
        self.assertEqual(self.serve.wait(timeout=20), 0)


class SnsReplays(unittest.TestCase):
    """A genuine signed DeploymentStart, replayed byte for byte within its Timestamp window for a
    deployment that has ended (its DeploymentSuccess seen), must not raise the page again
    (docs/sns.md, "Replays"): not after more than 256 other messages, which push its ids out of
    the ledger's recent ids (kRecentMessageIds) and the ended deployment out of its records
    (kMaxSettledRecords, 200), and not after a daemon restart, which empties /sns's memory of
    ids. The others are successes of deployments whose start was lost, so none of them switches."""

    OTHERS = 260

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="intermission-replays-")
        cls.signer = Signer(os.path.join(cls._tmp.name, "pki"))
        # Signed once for every test (each has its own daemon and store), well within the window.
        now = now_iso()

        def sign(args):
            deployment, status, message_id = args
            return cls.signer.notification(codedeploy(deployment, status), message_id=message_id,
                                           timestamp=now)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            cls.start_d1, cls.end_d1, *cls.others = pool.map(sign, [
                ("d-1", "CREATED", "start-d-1"), ("d-1", "SUCCEEDED", "end-d-1"),
                *[(f"d-{100 + i}", "SUCCEEDED", f"other-{i}") for i in range(cls.OTHERS)]])

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def setUp(self):
        self._dir = tempfile.TemporaryDirectory(prefix="intermission-replays-")
        self.dir = self._dir.name
        self.public, self.admin = free_ports(2)
        self.config = os.path.join(self.dir, "config.yaml")
        with open(self.config, "w") as f:
            f.write(f"""store: {{path: state.db}}
routes:
  - deployment_group: "*-*"
    environment: "{{1}}"
environments:
  prod:
    backend: {{type: log, path: steps.log}}
serve:
  listen: 127.0.0.1:{self.public}
  admin_listen: 127.0.0.1:{self.admin}
  tick_interval: 1s
  sns:
    topics: [{TOPIC}]
    ca_file: {self.signer.ca}
    cert_dir: {self.signer.certs}
""")
        self.serve = None
        self.start_daemon()

    def tearDown(self):
        self.stop_daemon()
        self._dir.cleanup()

    def start_daemon(self):
        self.serve = subprocess.Popen([BIN, "--config", self.config, "serve"], cwd=self.dir,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.public)

    def stop_daemon(self):
        if self.serve.poll() is None:
            self.serve.terminate()
            self.serve.wait(timeout=20)

    def post(self, message):
        req = urllib.request.Request(f"http://127.0.0.1:{self.public}/sns",
                                     data=json.dumps(message).encode(), method="POST",
                                     headers={"Content-Type": "text/plain; charset=UTF-8",
                                              "x-amz-sns-message-type": "Notification"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())["outcome"]
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def prod(self):
        """The ledger's view of prod (its decision, no backend observation)."""
        p = subprocess.run([BIN, "--config", self.config, "status", "prod", "--json", "--no-observe"],
                           capture_output=True, text=True, cwd=self.dir, timeout=30, check=True)
        return json.loads(p.stdout)["environments"][0]

    def switches(self):
        """The switches done so far, in order: True for on, False for off."""
        try:
            with open(os.path.join(self.dir, "steps.log")) as f:
                return [json.loads(line)["on"] for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def start_and_end_d1(self):
        self.assertEqual(self.post(self.start_d1), (200, "recorded"))
        self.assertTrue(wait_until(lambda: self.switches() == [True]), self.switches())
        self.assertEqual(self.post(self.end_d1), (200, "recorded"))
        self.assertTrue(wait_until(lambda: self.switches() == [True, False]), self.switches())

    def bury_d1(self):
        """More than 256 other messages for prod (over kRecentMessageIds) and more than 200
        other settled deployments (over kMaxSettledRecords): the ledger has dropped d-1's record
        and its message ids, and keeps only its id among the forgotten (core::kReplayWindow)."""
        for m in self.others:
            self.assertEqual(self.post(m), (200, "recorded"))
        self.assertTrue(wait_until(lambda: all(d["id"] != "d-1" for d in self.prod()["deployments"])),
                        "the ledger still has d-1's record")

    def assert_page_stays_off(self):
        self.assertFalse(self.prod()["on"])  # decided at once, before the answer
        time.sleep(1.0)  # a switch would follow within milliseconds
        self.assertEqual(self.switches(), [True, False])

    def test_a_replay_after_more_than_256_other_messages_is_a_duplicate(self):
        self.start_and_end_d1()
        self.bury_d1()
        self.assertEqual(self.post(self.start_d1), (200, "duplicate"))
        self.assert_page_stays_off()

    def test_a_replay_after_a_restart_does_not_raise_the_page(self):
        self.start_and_end_d1()
        self.stop_daemon()
        self.start_daemon()
        # The daemon has forgotten the ids; the ledger knows d-1 has ended, and a late start
        # for a finished deployment changes nothing.
        self.assertEqual(self.post(self.start_d1), (200, "unchanged"))
        self.assert_page_stays_off()

    # After a restart /sns has forgotten every MessageId (ServeApi::seen_sns_ is in memory
    # only), d-1's ids have left the ledger's recent_message_ids (256) and its record was dropped
    # by the count bound (kMaxSettledRecords): the ledger remembers d-1 among the forgotten for
    # core::kReplayWindow, so the replayed start is late, not a new deployment.
    def test_a_replay_after_a_restart_and_more_than_256_other_messages_does_not_raise_the_page(self):
        self.start_and_end_d1()
        self.bury_d1()
        self.stop_daemon()
        self.start_daemon()
        self.assertEqual(self.post(self.start_d1), (200, "unchanged"))
        self.assert_page_stays_off()


class Replicas(unittest.TestCase):
    """Two daemons sharing one store and one (slow) backend: they switch an environment one at
    a time, and SIGTERM lets the switch in progress finish before the daemon exits."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-replicas-")
        self.dir = self._tmp.name
        self.steps = os.path.join(self.dir, "steps.log")
        self.daemons = []
        ports = free_ports(4)
        for i in range(2):
            public, admin = ports[2 * i], ports[2 * i + 1]
            config = os.path.join(self.dir, f"config-{admin}.yaml")
            with open(config, "w") as f:
                f.write(f"""store: {{path: state.db}}
serve:
  listen: 127.0.0.1:{public}
  admin_listen: 127.0.0.1:{admin}
  tick_interval: 1s
environments:
  prod:
    backend: {{type: log, path: steps.log, delay: 3s}}
""")
            env = dict(os.environ, INTERMISSION_OPERATOR_TOKEN=TOKEN)
            p = subprocess.Popen([BIN, "--config", config, "serve"], cwd=self.dir, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            self.daemons.append((p, admin))
        for p, admin in self.daemons:
            try:
                wait_for_port(admin)
            except RuntimeError:
                p.kill()
                raise AssertionError(f"a daemon did not start: {p.communicate()[1][-2000:]}")

    def tearDown(self):
        for p, _ in self.daemons:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=20)
            p.stderr.close()
        self._tmp.cleanup()

    def operator(self, admin, verb):
        req = urllib.request.Request(
            f"http://127.0.0.1:{admin}/api/environments/prod/{verb}", data=b"{}", method="POST",
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status

    def admin_get(self, admin, path):
        req = urllib.request.Request(f"http://127.0.0.1:{admin}{path}",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read().decode()

    def metric(self, admin, name):
        """The value of a counter in /metrics (summed over its labels), 0 when absent."""
        total = 0.0
        for line in self.admin_get(admin, "/metrics").splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def logged(self):
        if not os.path.exists(self.steps):
            return []
        with open(self.steps) as f:
            return [json.loads(line)["on"] for line in f]

    def test_replicas_take_turns_and_sigterm_finishes_the_switch(self):
        # Both replicas are told at once; each records, one switches, the other defers.
        statuses = []
        threads = [threading.Thread(target=lambda a=admin: statuses.append(self.operator(a, "on")))
                   for _, admin in self.daemons]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(statuses, [200, 200])
        # While the (3 s) switch runs, the status page and API say who is doing it.
        admin = self.daemons[0][1]
        self.assertTrue(wait_until(lambda: " holds the lease until " in self.admin_get(admin, "/"), 2.5))
        self.assertTrue(json.loads(self.admin_get(admin, "/api/environments/prod"))
                        ["environments"][0]["switching"]["holder"])
        self.assertTrue(wait_until(lambda: self.logged() == [True], 10), self.logged())
        time.sleep(3.5)  # a slow second switch by the other replica would show by now
        self.assertEqual(self.logged(), [True], "the backend was switched once, not per replica")
        deferred = sum(self.metric(admin, "intermission_switches_deferred_total") for _, admin in self.daemons)
        self.assertGreaterEqual(deferred, 1, "the replica that found the lease taken says so")

        # SIGTERM while a switch is in progress (each step takes 3 s): it finishes, then exits.
        first, admin = self.daemons[0]
        self.daemons[1][0].terminate()
        self.assertEqual(self.daemons[1][0].wait(timeout=20), 0)
        self.assertEqual(self.operator(admin, "off"), 200)
        self.assertTrue(wait_until(lambda: " holds the lease until " in self.admin_get(admin, "/"), 2.5),
                        "the worker has taken the switch up")
        first.terminate()
        self.assertEqual(first.wait(timeout=20), 0)
        self.assertEqual(self.logged(), [True, False], "the switch in progress was finished")


FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing", "fixtures", "sns")
GENUINE_TOPIC = "arn:aws:sns:us-west-2:131990247566:dongie-standard-topic"
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"  # Debian's libfaketime


class GenuineMessages(unittest.TestCase):
    """AWS-signed SNS messages from the AWS SDK for Java v2's validator tests
    (testing/fixtures/sns/*.source.txt says where each came from) sent to a running `serve`,
    its certificate the genuine file in `cert_dir` (no chain built from it). The messages are
    from 2026-03-06 19:31-20:00 UTC: the daemon runs under libfaketime at 20:01 that day, so
    its one-hour Timestamp window takes them, as it would have when they were sent."""

    def setUp(self):
        if not os.path.exists(FAKETIME_LIB):
            self.fail(f"{FAKETIME_LIB} is missing: scripts/install-deps.sh installs libfaketime")
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-genuine-")
        self.dir = self._tmp.name
        self.confirm = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ConfirmRecorder)
        threading.Thread(target=self.confirm.serve_forever, daemon=True).start()
        ConfirmRecorder.seen.clear()
        self.public, admin = free_ports(2)
        config = os.path.join(self.dir, "config.yaml")
        with open(config, "w") as f:
            f.write(f"""store: {{path: state.db}}
serve:
  listen: 127.0.0.1:{self.public}
  admin_listen: 127.0.0.1:{admin}
  sns:
    topics: [{GENUINE_TOPIC}]
    cert_dir: {os.path.join(FIXTURES, "certs")}
environments:
  prod:
    backend: {{type: log, path: steps.log}}
""")
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTERMISSION_")}
        env.update(LD_PRELOAD=FAKETIME_LIB, FAKETIME="@2026-03-06 20:01:00", TZ="UTC",
                   FAKETIME_DONT_FAKE_MONOTONIC="1", FAKETIME_DONT_RESET="1",
                   AWS_ENDPOINT_URL_SNS=f"http://127.0.0.1:{self.confirm.server_address[1]}")
        self.daemon = subprocess.Popen([BIN, "--config", config, "serve"], cwd=self.dir, env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for_port(self.public)

    def tearDown(self):
        self.daemon.terminate()
        self.daemon.communicate(timeout=20)
        self.confirm.shutdown()
        self.confirm.server_close()
        self._tmp.cleanup()

    def post(self, body, kind):
        req = urllib.request.Request(f"http://127.0.0.1:{self.public}/sns", data=body.encode(),
                                     method="POST",
                                     headers={"Content-Type": "text/plain; charset=UTF-8",
                                              "x-amz-sns-message-type": kind})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def read(self, name):
        with open(os.path.join(FIXTURES, name)) as f:
            return f.read()

    def test_genuine_notifications_and_confirmation_are_taken_and_a_changed_byte_is_not(self):
        for name in ["java-v2-notification-with-subject.json",
                     "java-v2-notification-signature-v2.json"]:
            status, body = self.post(self.read(name), "Notification")
            self.assertEqual(status, 200, f"{name}: {body}")
            # Verified, and then not acted on: plain text is no CodeDeploy event.
            self.assertEqual(json.loads(body)["outcome"], "ignored", body)
        status, body = self.post(self.read("java-v2-subscription-confirmation.json"),
                                 "SubscriptionConfirmation")
        self.assertEqual(status, 200, body)
        self.assertEqual(len(ConfirmRecorder.seen), 1)
        self.assertIn("Action=ConfirmSubscription", ConfirmRecorder.seen[0])
        self.assertIn("TopicArn=arn:aws:sns:us-west-2:131990247566:dongie-standard-topic&Token=",
                      ConfirmRecorder.seen[0])
        genuine = json.loads(self.read("java-v2-notification-signature-v2.json"))
        changed = dict(genuine, Message=genuine["Message"].replace("2", "3", 1))
        self.assertNotEqual(changed["Message"], genuine["Message"])
        status, body = self.post(json.dumps(changed), "Notification")
        self.assertEqual(status, 403, body)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "steps.log")), "nothing switched")


class CertServer(http.server.BaseHTTPRequestHandler):
    """SNS's certificate host over HTTPS: serves the signer's certificates, or (redirect)
    answers every request with a 301 elsewhere, as a hijacked or misconfigured host might."""
    certs = None
    redirect = False
    wrapped = False  # the certificate inside an HTML page, answered 200 (a captive portal)
    paths = []

    def do_GET(self):
        CertServer.paths.append(self.path)
        if CertServer.redirect and not self.path.startswith("/moved/"):
            answer(self, 301, b"", [("Location", "/moved" + self.path)])
            return
        try:
            with open(os.path.join(CertServer.certs, os.path.basename(self.path)), "rb") as f:
                pem = f.read()
        except OSError:
            answer(self, 404, b"not found")
            return
        if CertServer.wrapped:
            pem = b"<html><body><pre>" + pem + b"</pre></body></html>"
        answer(self, 200, pem)

    def log_message(self, *args):
        pass


class CertificateFetch(unittest.TestCase):
    """The signing certificate fetched over HTTPS (no cert_dir): taken from a host the
    configured CA vouches for, not from one it does not, and a redirect is not followed."""

    @classmethod
    def setUpClass(cls):
        import ssl
        cls._tmp = tempfile.TemporaryDirectory(prefix="intermission-certfetch-")
        d = cls._tmp.name
        cls.signer = Signer(os.path.join(d, "pki"))
        cls.https_ca = os.path.join(d, "https.pem")
        key = os.path.join(d, "https.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cls.https_ca, "-days", "30", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        CertServer.certs = cls.signer.certs
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CertServer)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cls.https_ca, key)
        cls.server.socket = context.wrap_socket(cls.server.socket, server_side=True)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()
        cls._tmp.cleanup()

    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=self._tmp.name)
        CertServer.paths.clear()
        CertServer.redirect = False
        CertServer.wrapped = False
        self.daemon = None

    def tearDown(self):
        if self.daemon is not None:
            self.daemon.terminate()
            self.daemon.communicate(timeout=20)

    def start(self, ca_file):
        self.public, admin = free_ports(2)
        config = os.path.join(self.dir, "config.yaml")
        with open(config, "w") as f:
            f.write(f"""store: {{path: state.db}}
serve:
  listen: 127.0.0.1:{self.public}
  admin_listen: 127.0.0.1:{admin}
  sns:
    topics: [{TOPIC}]
    ca_file: {ca_file}
routes:
  - {{deployment_group: "prod-*", environment: prod}}
environments:
  prod:
    backend: {{type: log, path: steps.log}}
""")
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTERMISSION_")}
        env["AWS_ENDPOINT_URL_SNS"] = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.daemon = subprocess.Popen([BIN, "--config", config, "serve"], cwd=self.dir, env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for_port(self.public)

    def deliver(self, seconds=5.0):
        """Posts a signed start as SNS does, again while the answer is 503 (SNS retries), for
        at most `seconds`; the last answer."""
        message = self.signer.notification(codedeploy("d-1", "CREATED"), message_id="c-1",
                                           timestamp=now_iso())
        deadline = time.monotonic() + seconds
        while True:
            req = urllib.request.Request(f"http://127.0.0.1:{self.public}/sns", method="POST",
                                         data=json.dumps(message).encode(),
                                         headers={"x-amz-sns-message-type": "Notification"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                answer = (e.code, e.read().decode())
            if answer[0] != 503 or time.monotonic() > deadline:
                return answer
            time.sleep(0.1)

    def test_a_certificate_from_a_host_the_ca_vouches_for_is_used(self):
        self.start(self.https_ca)
        status, body = self.deliver()
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["outcome"], "recorded", body)
        self.assertEqual(CertServer.paths, ["/SimpleNotificationService-0123456789abcdef.pem"])

    def test_a_host_the_ca_does_not_vouch_for_gives_no_certificate(self):
        self.start(self.signer.ca)  # a CA, but not the one that issued the host's certificate
        status, body = self.deliver(seconds=2.0)
        self.assertEqual(status, 503, body)
        self.assertEqual(CertServer.paths, [], "nothing was asked over an untrusted connection")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "steps.log")))
        self.daemon.terminate()
        err = self.daemon.communicate(timeout=20)[1]
        self.daemon = None
        self.assertIn("certificate", err.lower())

    def test_a_redirect_is_not_followed(self):
        CertServer.redirect = True
        self.start(self.https_ca)
        status, body = self.deliver(seconds=2.0)
        self.assertEqual(status, 503, body)
        self.assertTrue(CertServer.paths, "the host was asked")
        self.assertFalse([p for p in CertServer.paths if p.startswith("/moved/")],
                         "the redirect was followed")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "steps.log")))

    def test_an_answer_that_is_more_than_one_certificate_is_not_taken(self):
        # A 200 whose body holds a certificate among other things (an HTML page, a truncated
        # or doubled PEM) must not take the place of a certificate: the fetch is a failure.
        CertServer.wrapped = True
        self.start(self.https_ca)
        status, body = self.deliver(seconds=2.0)
        self.assertEqual(status, 503, body)
        self.assertTrue(CertServer.paths, "the host was asked")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "steps.log")))
        self.daemon.terminate()
        err = self.daemon.communicate(timeout=20)[1]
        self.daemon = None
        self.assertIn("not one PEM certificate", err)


class AdminListener(unittest.TestCase):
    """The admin listener's doors: Host checked (DNS rebinding), status and metrics optionally
    behind the token, and a token that is configured but unusable said and kept out. A log
    backend: no HAProxy needed."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-admin-")
        self.dir = self._tmp.name
        self.daemon = None

    def tearDown(self):
        if self.daemon is not None:
            if self.daemon.poll() is None:
                self.daemon.terminate()
            self.daemon.wait(timeout=20)
            self.daemon.stderr.close()
        self._tmp.cleanup()

    def start(self, serve_extra="", env_extra=None, environments_extra=""):
        self.public, self.admin = free_ports(2)
        public = self.public
        config = os.path.join(self.dir, "config.yaml")
        with open(config, "w") as f:
            f.write(f"""store: {{path: state.db}}
serve:
  listen: 127.0.0.1:{public}
  admin_listen: 127.0.0.1:{self.admin}
{serve_extra}environments:
  prod:
    backend: {{type: log, path: steps.log}}
{environments_extra}""")
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTERMISSION_")}
        env.update(env_extra or {})
        self.daemon = subprocess.Popen([BIN, "--config", config, "serve"], cwd=self.dir, env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for_port(self.admin)

    def request(self, path, headers=None, method="GET", data=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin}{path}", headers=headers or {},
                                     method=method, data=data)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def stderr(self):
        self.daemon.terminate()
        return self.daemon.communicate(timeout=20)[1]

    def test_a_store_write_waiting_for_a_lock_stalls_no_listener(self):
        """The operator API's store write waits for another process's lock; meanwhile both
        listeners still accept and answer /healthz at once (the handlers run on a thread of
        their own, not on the I/O thread), and the write lands once the lock is gone."""
        import sqlite3
        import threading
        self.start(env_extra={"INTERMISSION_OPERATOR_TOKEN": TOKEN})
        self.assertEqual(self.request("/healthz")[0], 200)  # the database exists now
        db = sqlite3.connect(os.path.join(self.dir, "state.db"), timeout=10, isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")
        answer = {}

        def switch_on():
            answer["on"] = self.request("/api/environments/prod/on", method="POST", data=b"{}",
                                        headers={"Authorization": f"Bearer {TOKEN}",
                                                 "Content-Type": "application/json"})
        t = threading.Thread(target=switch_on)
        t.start()
        time.sleep(0.5)  # the handler now waits for the lock
        try:
            for port in (self.admin, self.public):
                started = time.monotonic()
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
                    self.assertEqual(r.status, 200)
                # A stalled listener would wait for the lock, held until after this loop.
                self.assertLess(time.monotonic() - started, 3.0, f"listener {port} stalled")
            self.assertTrue(t.is_alive(), "the write was still waiting for the lock")
        finally:
            time.sleep(1.0)
            db.execute("ROLLBACK")
            db.close()
        t.join(timeout=20)
        self.assertEqual(answer["on"][0], 200, answer)

    def test_an_unreadable_environment_is_shown_as_such_and_the_others_still_are(self):
        """One environment's stored state is garbage: the dashboard, its JSON, the operator API's
        list and /windows.json still answer 200 for the others and name the unreadable one,
        as `intermission status` does; the environment asked for by name alone is a 503."""
        import sqlite3
        self.start(env_extra={"INTERMISSION_OPERATOR_TOKEN": TOKEN},
                   environments_extra="  staging:\n    backend: {type: log, path: staging.log}\n")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        self.assertEqual(self.request("/api/environments/prod/on", auth, "POST", b"{}")[0], 200)
        with sqlite3.connect(os.path.join(self.dir, "state.db")) as db:
            db.execute("UPDATE environments SET state = 'not a state' WHERE name = 'prod'")
        status, body = self.request("/", auth)
        self.assertEqual(status, 200, body)
        self.assertIn("unreadable", body)
        self.assertIn('data-env="staging"', body)
        for path, port in [("/dashboard.json", self.admin), ("/api/environments", self.admin),
                           ("/windows.json", self.public)]:
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=auth)
            with urllib.request.urlopen(req, timeout=10) as r:
                self.assertEqual(r.status, 200, path)
                envs = {e["environment"]: e for e in json.loads(r.read())["environments"]}
            self.assertIn("error", envs["prod"], path)
            self.assertNotIn("error", envs["staging"], path)
        status, body = self.request("/api/environments/prod", auth)
        self.assertEqual(status, 503, body)
        self.assertEqual(self.request("/api/environments/staging", auth)[0], 200)

    def test_a_rebinding_host_gets_421_and_nothing_else(self):
        self.start(env_extra={"INTERMISSION_OPERATOR_TOKEN": TOKEN})
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for path in ["/", "/metrics", "/api/environments"]:
            for host in [f"attacker.example:{self.admin}", "127.0.0.1.nip.io", "localhost.attacker.example"]:
                status, body = self.request(path, {"Host": host, **auth})
                self.assertEqual(status, 421, f"{path} Host: {host}")
                self.assertNotIn("prod", body)
            self.assertEqual(self.request(path, {"Host": f"localhost:{self.admin}", **auth})[0], 200, path)
            self.assertEqual(self.request(path, auth)[0], 200, path)  # Host: 127.0.0.1:port
        self.assertEqual(self.request("/healthz", {"Host": "attacker.example"})[0], 200)

    def test_listed_admin_hosts_are_served(self):
        self.start("  admin_hosts: [ops.example.internal]\n")
        self.assertEqual(self.request("/", {"Host": "ops.example.internal"})[0], 200)
        self.assertEqual(self.request("/", {"Host": "ops.example.com"})[0], 421)

    def test_status_and_metrics_can_require_the_token(self):
        self.start("  status_requires_token: true\n", {"INTERMISSION_OPERATOR_TOKEN": TOKEN})
        for path in ["/", "/metrics"]:
            status, body = self.request(path)
            self.assertEqual(status, 401, path)
            self.assertNotIn("prod", body)
            self.assertEqual(self.request(path, {"Authorization": "Bearer wrong"})[0], 401, path)
            self.assertEqual(self.request(path, {"Authorization": f"Bearer {TOKEN}"})[0], 200, path)

    def test_an_unreadable_token_file_is_said_and_keeps_the_api_shut(self):
        # The environment holds a good token, but the configured file wins, and it is missing.
        self.start("  operator_token_file: no-such-token\n", {"INTERMISSION_OPERATOR_TOKEN": TOKEN})
        status, body = self.request("/api/environments", {"Authorization": f"Bearer {TOKEN}"})
        self.assertEqual(status, 403, body)
        self.assertEqual(self.request("/healthz")[0], 200, "the rest of the daemon runs")
        err = self.stderr()
        self.assertIn("operator token unusable", err)
        self.assertIn("no-such-token cannot be read", err)

    def test_a_short_token_is_said_and_refused(self):
        with open(os.path.join(self.dir, "token"), "w") as f:
            f.write("short-token\n")
        self.start("  operator_token_file: token\n")
        status, body = self.request("/api/environments", {"Authorization": "Bearer short-token"})
        self.assertEqual(status, 403, body)
        err = self.stderr()
        self.assertIn("is 11 characters long; at least 32 are required", err)

    def test_the_token_comes_from_a_systemd_credential(self):
        creds = os.path.join(self.dir, "credentials")
        os.makedirs(creds)
        with open(os.path.join(creds, "operator-token"), "w") as f:
            f.write(TOKEN + "\n")
        self.start(env_extra={"CREDENTIALS_DIRECTORY": creds})
        self.assertEqual(self.request("/api/environments", {"Authorization": f"Bearer {TOKEN}"})[0], 200)
        self.assertEqual(self.request("/api/environments", {"Authorization": "Bearer wrong"})[0], 401)

    def rss_kib(self):
        with open(f"/proc/{self.daemon.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    def stream(self, head, filler, limit=8 << 20):
        """Sends `head`, then `filler` bytes until `limit` are sent or the daemon stops taking
        them; returns the answer read after (until the daemon closes, within 5 s) and whether it
        closed."""
        s = socket.create_connection(("127.0.0.1", self.public), timeout=5)
        answer, closed = b"", False
        try:
            s.sendall(head)
            block = filler * (64 * 1024)
            sent = 0
            while sent < limit:
                try:
                    s.sendall(block)
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(block)
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    closed = True
                    break
                except socket.timeout:
                    break
                if not chunk:
                    closed = True
                    break
                answer += chunk
        finally:
            s.close()
        return answer, closed

    def test_an_endless_chunk_line_or_trailer_gets_400_with_bounded_memory(self):
        """Beast 1.81 puts no limit on a chunk's size line or on the trailer section: the
        daemon's read buffer is what bounds them. 8 MiB of one chunk extension (then of one
        trailer line) posted to /sns: answered 400 and closed, and the daemon's memory stays put
        (it grew by gigabytes when the buffer had no bound)."""
        self.start()
        head = b"POST /sns HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        for name, raw in [("chunk extension", head + b"1;"),
                          ("trailer", head + b"1\r\na\r\n0\r\nX-Trailer: ")]:
            with self.subTest(name):
                before = self.rss_kib()
                started = time.monotonic()
                answer, closed = self.stream(raw, b"a")
                grown = self.rss_kib() - before
                self.assertLess(grown, 4096, f"RSS grew by {grown} KiB")
                self.assertTrue(answer.startswith(b"HTTP/1.1 400"), answer[:100])
                self.assertTrue(closed)
                self.assertLess(time.monotonic() - started, 10)
        self.assertEqual(self.request("/healthz")[0], 200)

    def test_framing_host_and_repeated_field_rules(self):
        """The daemon's listeners keep the page server's request rules (RFC 9112 §3.2, §6.1,
        §6.3) and refuse a second line of a field a check reads: each gets one 400 and a close."""
        self.start(env_extra={"INTERMISSION_OPERATOR_TOKEN": TOKEN})
        host = f"127.0.0.1:{self.admin}"
        auth = f"Authorization: Bearer {TOKEN}\r\n"
        cases = [
            (self.public, "Transfer-Encoding: gzip, a request smuggled in its body",
             b"POST /sns HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"
             b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"),
            (self.public, "Transfer-Encoding in HTTP/1.0",
             b"POST /sns HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
             b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
            (self.admin, "HTTP/1.1 without Host", b"GET /healthz HTTP/1.1\r\n\r\n"),
            (self.admin, "two Host lines, the rebinding one first",
             f"GET /api/environments HTTP/1.1\r\nHost: evil.example\r\nHost: {host}\r\n{auth}\r\n".encode()),
            (self.admin, "a Host with userinfo",
             f"GET /api/environments HTTP/1.1\r\nHost: localhost:1@evil.example\r\n{auth}\r\n".encode()),
            (self.admin, "two Origin lines, the cross-site one first",
             f"POST /api/environments/prod/on HTTP/1.1\r\nHost: {host}\r\n{auth}"
             f"Origin: https://evil.example\r\nOrigin: http://{host}\r\n"
             f"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}".encode()),
        ]
        def environments():
            status, body = self.request("/api/environments", {"Authorization": f"Bearer {TOKEN}"})
            self.assertEqual(status, 200, body)
            return json.loads(body)["environments"]
        before = environments()
        for port, name, raw in cases:
            with self.subTest(name):
                p = probe(port, raw)
                self.assertEqual(p.statuses, [400])
                self.assertTrue(p.closed)
        # Not switched by the request with two Origin lines; one cross-site Origin is a 403.
        status, body = self.request("/api/environments/prod/on", method="POST", data=b"{}",
                                    headers={"Authorization": f"Bearer {TOKEN}",
                                             "Content-Type": "application/json",
                                             "Origin": "https://evil.example"})
        self.assertEqual(status, 403, body)
        self.assertEqual(environments(), before)
        self.assertEqual(self.request("/healthz")[0], 200)


if __name__ == "__main__":
    unittest.main()
