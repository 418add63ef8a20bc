"""The Lambda zip as Lambda runs it: unpacked at /var/task inside an otherwise empty chroot
(no shell, no libraries, no CA files of the host), started as `bootstrap` against a fake
Runtime API on loopback, handling the captured CodeDeploy sequence end to end against the
fake AWS (Classic ELB backend)."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import zipfile

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, os.path.dirname(__file__))
from fake_aws import KEY, SECRET, TOKEN, FakeAws  # noqa: E402
from fake_lambda_runtime import FakeLambdaRuntime  # noqa: E402
from dynalite import Dynalite  # noqa: E402
from harness import BIN, FIXTURES  # noqa: E402
from notifications_test import Receiver  # noqa: E402

ZIP = os.environ.get("INTERMISSION_LAMBDA_ZIP", "build/intermission-lambda.zip")

CONFIG = """\
store: {path: /tmp/state.db}
aws:
  region: eu-west-1
  max_attempts: 4
routes:
  - application: temporary-status
    environment: prod
environments:
  prod:
    backend:
      type: elb-classic
      load_balancer: web-lb
      auto_scaling_group: web-asg
      page_instances: [i-page1]
      health_timeout: 5s
      poll_interval: 50ms
"""


def captured_sequence():
    """The real failed-deployment-and-rollback SNS deliveries, with their 2022 times removed
    (a 2022 start is, rightly, expired on arrival today)."""
    with open(os.path.join(FIXTURES, "lambda-sns-codedeploy-lifecycle-2022.json")) as f:
        capture = json.load(f)
    out = []
    for record in capture["failedDeployment"]:
        sns = record["Records"][0]["Sns"]
        message = json.loads(sns["Message"])
        message["createTime"] = None
        message["completeTime"] = None
        sns["Message"] = json.dumps(message)
        del sns["Timestamp"]
        out.append(record)
    return out


class LambdaInChroot(unittest.TestCase):
    def setUp(self):
        self.fake = FakeAws()
        self.fake.setup(
            instances={"i-page1": "eu-west-1a"},
            load_balancers=[{"name": "web-lb", "interval": 0.1, "healthy_threshold": 3}],
            groups=[{"name": "web-asg", "instances": ["i-app1"], "load_balancers": ["web-lb"]}],
            deployments={"d-MainDeployment": {"creator": "user", "status": "Failed"},
                         "d-RollbackDeploy": {"creator": "codeDeployRollback",
                                              "status": "Succeeded",
                                              "rollback_of": "d-MainDeployment"}},
            require_token=TOKEN)
        self.runtime = FakeLambdaRuntime()
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-chroot-")
        self.root = self._tmp.name
        with zipfile.ZipFile(ZIP) as z:
            z.extractall(os.path.join(self.root, "var", "task"))
        os.chmod(os.path.join(self.root, "var", "task", "bootstrap"), 0o755)
        for lib in os.listdir(os.path.join(self.root, "var", "task", "lib")):
            os.chmod(os.path.join(self.root, "var", "task", "lib", lib), 0o755)
        os.makedirs(os.path.join(self.root, "tmp"))  # Lambda's writable /tmp
        self.proc = None

    def tearDown(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.runtime.stop()
        self.fake.stop()
        self._tmp.cleanup()

    def start(self, config=CONFIG, **extra_env):
        env = {k: v for k, v in self.fake.env().items() if k.startswith("AWS_")}
        env.update(extra_env)
        env.update(AWS_LAMBDA_RUNTIME_API=self.runtime.address, LAMBDA_TASK_ROOT="/var/task",
                   INTERMISSION_CONFIG_YAML=config, TZ="UTC",
                   AWS_LAMBDA_FUNCTION_NAME="intermission", _HANDLER="intermission")
        chroot = [shutil.which("chroot") or "/usr/sbin/chroot", self.root, "/var/task/bootstrap"]
        if os.geteuid() != 0:  # an unprivileged user may chroot inside its own user namespace
            chroot = ["unshare", "--user", "--map-root-user"] + chroot
        started = time.monotonic()
        self.proc = subprocess.Popen(chroot, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        first_next = self.runtime.wait_for_next(1)[0]
        return first_next - started

    def logs(self):
        self.proc.kill()
        out, _ = self.proc.communicate(timeout=10)
        self.proc = None
        return out

    def test_the_root_holds_nothing_but_the_zip(self):
        entries = sorted(os.listdir(self.root))
        self.assertEqual(entries, ["tmp", "var"])
        self.assertFalse(os.path.exists(os.path.join(self.root, "bin")))
        self.assertFalse(os.path.exists(os.path.join(self.root, "lib64")))
        self.assertFalse(os.path.exists(os.path.join(self.root, "etc")))

    def test_captured_sequence_end_to_end(self):
        cold = self.start()
        print(f"\ncold start (process start -> first next): {cold * 1000:.0f} ms", file=sys.stderr)
        kinds = []
        for event in captured_sequence():
            kind, body, _ = self.runtime.invoke(event)
            kinds.append(kind)
            self.assertEqual(kind, "response", body)
        state = self.fake.state()
        self.assertIn(state["groups"]["web-asg"], ({"web-lb": "Added"}, {"web-lb": "InService"}))
        self.assertEqual(state["lbs"]["web-lb"], {"i-app1": "InService"})
        mutations = [c["action"] for c in self.fake.calls()
                     if c["status"] == 200 and not c["action"].startswith(("Describe", "Get"))]
        self.assertEqual(mutations, ["RegisterInstancesWithLoadBalancer", "DetachLoadBalancers",
                                     "AttachLoadBalancers", "DeregisterInstancesFromLoadBalancer"],
                         "one switch on, one switch off, through the failure and its rollback")
        series = self.fake.timeline()["web-lb"]
        self.assertGreater(min(n for _, n in series), 0, series)
        logs = self.logs()
        lines = [json.loads(l) for l in logs.splitlines() if l.startswith("{")]
        self.assertTrue(lines, logs)
        self.assertTrue(any(l.get("kind") == "switched" for l in lines), "JSON logs on stdout")

    def test_captured_sequence_with_the_dynamodb_store_on_dynalite(self):
        dynamo = Dynalite()
        try:
            dynamo.create_table("intermission", self.fake.env(AWS_ENDPOINT_URL=dynamo.url))
            config = CONFIG.replace("store: {path: /tmp/state.db}",
                                    "store: {type: dynamodb, table: intermission}")
            self.start(config, AWS_ENDPOINT_URL_DYNAMODB=dynamo.url)
            for event in captured_sequence():
                kind, body, _ = self.runtime.invoke(event)
                self.assertEqual(kind, "response", body)
            self.assertIn(self.fake.state()["groups"]["web-asg"], ({"web-lb": "Added"}, {"web-lb": "InService"}))
            series = self.fake.timeline()["web-lb"]
            self.assertGreater(min(n for _, n in series), 0, series)
            # The ledger lives in DynamoDB: read it back with the awscli.
            out = subprocess.run(
                ["/usr/bin/aws", "--endpoint-url", dynamo.url, "dynamodb", "get-item",
                 "--table-name", "intermission", "--key",
                 '{"pk": {"S": "env#prod"}, "sk": {"S": "state"}}'],
                capture_output=True, text=True, check=True, env=self.fake.env())
            state = json.loads(json.loads(out.stdout)["Item"]["state"]["S"])
            statuses = {d["id"]: d["status"] for d in state["deployments"]}
            self.assertEqual(statuses, {"d-MainDeployment": "Failed",
                                        "d-RollbackDeploy": "Succeeded"})
            self.assertFalse(state["applied"]["on"])
        finally:
            dynamo.stop()

    def test_malformed_event_is_acknowledged_not_retried(self):
        self.start()
        kind, body, _ = self.runtime.invoke("{not json")
        self.assertEqual(kind, "response")
        self.assertEqual(json.loads(body)["status"], "ignored")
        kind, body, _ = self.runtime.invoke({"Records": [{"Sns": {"Type": "Notification",
                                                                  "MessageId": "t",
                                                                  "Message": "test message"}}]})
        self.assertEqual(kind, "response")

    def test_backend_failure_is_an_error_so_lambda_retries(self):
        self.start()
        for _ in range(4):
            self.fake.fail("DescribeInstanceHealth", "503")
        kind, body, error_type = self.runtime.invoke(captured_sequence()[0])
        self.assertEqual(kind, "error")
        self.assertEqual(error_type, "Intermission.Unavailable")
        self.assertIn("ServiceUnavailable", json.loads(body)["errorMessage"])
        # Lambda's retry of the same event finishes the switch.
        kind, _, _ = self.runtime.invoke(captured_sequence()[0])
        self.assertEqual(kind, "response")
        self.assertEqual(self.fake.state()["groups"]["web-asg"], {"web-lb": "Removed"})

    def status(self, config, **env):
        """`intermission status --json` on the host, against the chroot's ledger."""
        path = os.path.join(self.dir_for_status(), "status.yaml")
        with open(path, "w") as f:
            f.write(config.replace("/tmp/state.db", os.path.join(self.root, "tmp", "state.db")))
        out = subprocess.run([BIN, "--config", path, "status", "--json", "--no-observe"],
                             capture_output=True, text=True, env=self.fake.env(**env), timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return {e["environment"]: e for e in json.loads(out.stdout)["environments"]}

    def dir_for_status(self):
        d = os.path.join(self.root, "host")
        os.makedirs(d, exist_ok=True)
        return d

    def drain_throttling(self, action_body, service="elasticloadbalancing"):
        """Makes signed calls of our own until the fake stops throttling them: the faults
        injected but not used up by the invocation (how many it used depends on its jitter)."""
        for _ in range(100):
            request = AWSRequest(method="POST", url=self.fake.url + "/", data=action_body,
                                 headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
            SigV4Auth(Credentials(KEY, SECRET, TOKEN), service, "eu-west-1").add_auth(request)
            prepared = request.prepare()
            data = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
            try:
                with urllib.request.urlopen(urllib.request.Request(
                        prepared.url, data=data, headers=dict(prepared.headers), method="POST"),
                        timeout=10) as reply:
                    reply.read()
                return
            except urllib.error.HTTPError as e:
                with e:
                    self.assertIn(b"Throttling", e.read())
        self.fail("the fake kept throttling")

    def invoke_before_deadline(self, event, late):
        """One invocation that must answer before the deadline the runtime handed out (Lambda
        kills it there); `late` says what it means if it did not. Returns (kind, body)."""
        try:
            kind, body, _ = self.runtime.invoke(event, timeout=30)
        except TimeoutError:
            self.logs()
            self.fail("the invocation never ended")
        self.assertGreaterEqual(self.runtime.time_left_ms(), 0, late)
        return kind, body

    def throttled_invocation_gives_its_lease_back(self, config, **env):
        # aws-behaviour.md §14: Lambda kills an invocation at its deadline, and a lease it holds
        # stays taken. Throttling that outlasts the invocation (10 attempts with backoff take
        # ~15 s) must end it before its deadline, with the lease given back.
        config = config.replace("max_attempts: 4", "max_attempts: 10")
        self.start(config, **env)
        self.runtime.timeout_ms = 5000
        for _ in range(10):
            self.fake.fail("DescribeInstanceHealth", "Throttling")
        kind, body = self.invoke_before_deadline(
            captured_sequence()[0], "the invocation ran past its deadline (Lambda kills it there, with the lease held)")
        self.assertEqual(kind, "response", body)
        answer = json.loads(body)
        self.assertEqual(answer["status"], "deferred", body)
        self.assertIn("stopped before the invocation's deadline", answer["error"])
        self.assertIn("Throttling", answer["error"])
        self.assertIn("held no switching lease", answer["error"], "the controller gave it back")
        prod = self.status(config, **env)["prod"]
        self.assertIsNone(prod.get("switching"), "the lease is free for the next invocation")
        self.assertEqual(self.fake.state()["groups"]["web-asg"], {"web-lb": "InService"},
                         "nothing switched yet")
        # The next invocation (the tick) continues at once and finishes the switch.
        self.drain_throttling("Action=DescribeInstanceHealth&Version=2012-06-01&LoadBalancerName=web-lb")
        self.runtime.timeout_ms = 30000
        started = time.monotonic()
        kind, body, _ = self.runtime.invoke({"intermission": "tick"})
        self.assertEqual(kind, "response", body)
        self.assertEqual(json.loads(body)["status"], "done", body)
        self.assertLess(time.monotonic() - started, 10, "no wait for a lease left behind")
        state = self.fake.state()
        self.assertEqual(state["groups"]["web-asg"], {"web-lb": "Removed"})
        self.assertEqual(state["lbs"]["web-lb"], {"i-page1": "InService"})
        logs = self.logs()
        self.assertIn("stopped before the invocation's deadline", logs)

    def test_throttled_invocation_gives_its_lease_back_before_its_deadline(self):
        self.throttled_invocation_gives_its_lease_back(CONFIG)

    def test_throttled_invocation_gives_its_dynamodb_lease_back_before_its_deadline(self):
        dynamo = Dynalite()
        try:
            dynamo.create_table("intermission", self.fake.env(AWS_ENDPOINT_URL=dynamo.url))
            config = CONFIG.replace("store: {path: /tmp/state.db}",
                                    "store: {type: dynamodb, table: intermission}")
            self.throttled_invocation_gives_its_lease_back(config,
                                                           AWS_ENDPOINT_URL_DYNAMODB=dynamo.url)
        finally:
            dynamo.stop()

    def announced_inside_the_invocation(self, config, audit_kinds, **env):
        """An invocation is frozen once it answers, so its notices are sent before it answers:
        the failed deployment's switch on and the rollback's switch off reach Slack and the
        signed webhook; a receiver that never answers costs each switching invocation at most
        its share of the deadline (here 5 s), never the answer; each delivery is audited."""
        slack, webhook, hung = Receiver(), Receiver(), Receiver(hang=True)
        self.addCleanup(slack.close)
        self.addCleanup(webhook.close)
        self.addCleanup(hung.close)
        config += (
            "notifications:\n  timeout: 1s\n  attempts: 3\n  backoff: 100ms\n  targets:\n"
            f"    - type: slack\n      name: team\n      url: {slack.url}\n"
            f"    - type: webhook\n      name: ops\n      url: {webhook.url}\n"
            "      secret_env: OPS_SECRET\n"
            f"    - type: slack\n      name: hung\n      url: {hung.url}\n")
        self.start(config, OPS_SECRET="webhook-signing-secret-0123456789abcdef", **env)
        self.runtime.timeout_ms = 5000
        for event in captured_sequence():
            kind, body = self.invoke_before_deadline(
                event, "the invocation ran past its deadline waiting for a receiver")
            self.assertEqual(kind, "response", body)
        # Delivered before the answers: nothing is still on its way.
        self.assertEqual([b["kind"] for b in webhook.bodies()], ["switched-on", "switched-off"])
        texts = [b["text"] for b in slack.bodies()]
        self.assertEqual(len(texts), 2, texts)
        self.assertIn("prod: maintenance ON", texts[0])
        self.assertIn("prod: maintenance OFF", texts[1])
        self.assertGreaterEqual(len(hung.posts), 2, "the hung receiver was tried for each")
        kinds = audit_kinds()
        self.assertEqual(kinds.count("notified"), 4, kinds)
        self.assertEqual(kinds.count("notify-failed") + kinds.count("notify-dropped"), 2, kinds)
        self.assertIn("notice delivered", self.logs())

    def test_switches_are_announced_inside_the_invocation_and_a_hung_receiver_costs_no_deadline(self):
        def audit_kinds():
            with sqlite3.connect(os.path.join(self.root, "tmp", "state.db")) as db:
                return [k for (k,) in db.execute(
                    "SELECT kind FROM audit WHERE kind LIKE 'notif%' ORDER BY id")]
        self.announced_inside_the_invocation(CONFIG, audit_kinds)

    def test_switches_are_announced_and_audited_with_the_dynamodb_store(self):
        # The audit lines go through the AWS client, whose calls the invocation's deadline
        # bounds: they are written in the time kept for cleaning up.
        dynamo = Dynalite()
        self.addCleanup(dynamo.stop)
        dynamo.create_table("intermission", self.fake.env(AWS_ENDPOINT_URL=dynamo.url))

        def audit_kinds():
            out = subprocess.run(["/usr/bin/aws", "--endpoint-url", dynamo.url, "dynamodb", "scan",
                                  "--table-name", "intermission"], capture_output=True, text=True,
                                 env=self.fake.env(), check=True)
            items = sorted(json.loads(out.stdout)["Items"], key=lambda i: i["sk"]["S"])
            return [i["kind"]["S"] for i in items
                    if i["sk"]["S"].startswith("audit#") and i["kind"]["S"].startswith("notif")]
        config = CONFIG.replace("store: {path: /tmp/state.db}",
                                "store: {type: dynamodb, table: intermission}")
        self.announced_inside_the_invocation(config, audit_kinds,
                                             AWS_ENDPOINT_URL_DYNAMODB=dynamo.url)

    def test_bad_config_is_an_init_error(self):
        self.proc = subprocess.Popen(
            ["/usr/sbin/chroot" if os.geteuid() == 0 else "unshare", *([] if os.geteuid() == 0 else ["--user", "--map-root-user", "chroot"]),
             self.root, "/var/task/bootstrap"],
            env={"AWS_LAMBDA_RUNTIME_API": self.runtime.address,
                 "INTERMISSION_CONFIG_YAML": "environments: {prod: {backend: {type: nope}}}"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        error = self.runtime.wait_for_init_error()
        self.assertEqual(error["errorType"], "Runtime.ConfigError")
        self.assertIn("'nope' is not a known backend", error["errorMessage"])
        self.proc.wait(timeout=10)
        self.assertNotEqual(self.proc.returncode, 0)


if __name__ == "__main__":
    unittest.main()
