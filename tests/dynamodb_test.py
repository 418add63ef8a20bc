"""The DynamoDB store against dynalite (a DynamoDB emulator from npm) on loopback: the same
compare-and-set contract as SQLite — many processes racing on one environment never lose an
update — with audit items that carry a TTL attribute."""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from dynalite import Dynalite  # noqa: E402
from fake_aws import FakeAws  # noqa: E402
from harness import BIN, Workspace, codedeploy  # noqa: E402

PROCESSES = 16


class DynamoDbStore(Workspace):
    config_text = """\
store:
  type: dynamodb
  table: intermission
  audit_ttl: 30d
aws:
  region: eu-west-1
  codedeploy_lookup: false
routes:
  - deployment_group: "*-*"
    environment: "{1}"
environments:
  prod:
    backend: {type: log, path: steps.log, delay: 300ms}  # as slow as a real load balancer
  staging:
    backend: {type: log, path: steps.log}
  qa:
    backend: {type: log, path: steps.log}
  big:
    backend: {type: log, path: steps.log}
  busy:
    backend: {type: log, path: steps.log}
"""

    @classmethod
    def setUpClass(cls):
        cls.dynamo = Dynalite()
        cls.fake = FakeAws()  # only for its environment helper: credentials and region
        cls.env = cls.fake.env(AWS_ENDPOINT_URL=cls.dynamo.url)
        cls.dynamo.create_table("intermission", cls.env)

    @classmethod
    def tearDownClass(cls):
        cls.dynamo.stop()
        cls.fake.stop()

    def run_cli(self, *args, stdin=None, check=None, timeout=60):
        p = subprocess.run([BIN, "--config", self.config, *args], input=stdin,
                           capture_output=True, text=True, cwd=self.dir,
                           env=dict(self.env, USER="tester"), timeout=timeout)
        if check is not None:
            self.assertEqual(p.returncode, check, p.stderr)
        return p

    def scan(self):
        out = subprocess.run(["/usr/bin/aws", "--endpoint-url", self.dynamo.url, "dynamodb",
                              "scan", "--table-name", "intermission"], capture_output=True,
                             text=True, env=self.env, check=True)
        return json.loads(out.stdout)["Items"]

    def test_state_and_audit_round_trip(self):
        self.handle(codedeploy("d-1", "CREATED", group="staging-web"))
        st = self.status()["staging"]
        self.assertTrue(st["on"])
        self.assertEqual([d["id"] for d in st["active_deployments"]], ["d-1"])
        self.assertIn("deployment", [a["kind"] for a in st["recent"]])
        self.handle(codedeploy("d-1", "SUCCEEDED", group="staging-web"))
        st = self.status()["staging"]
        self.assertFalse(st["on"])
        kinds = [a["kind"] for a in st["recent"]]
        self.assertEqual(kinds.count("switched"), 2, kinds)
        items = [i for i in self.scan() if i["pk"]["S"] == "env#staging"]
        state = [i for i in items if i["sk"]["S"] == "state"]
        self.assertEqual(len(state), 1)
        audit = [i for i in items if i["sk"]["S"].startswith("audit#")]
        self.assertTrue(audit)
        for a in audit:
            ttl = int(a["expires_at"]["N"])
            self.assertGreater(ttl - int(a["time_ms"]["N"]) // 1000, 29 * 86400, "30-day TTL")

    def test_many_processes_racing_never_lose_an_update(self):
        procs = [subprocess.Popen([BIN, "--config", self.config, "--log-level", "error", "handle"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, cwd=self.dir, env=self.env, text=True)
                 for _ in range(PROCESSES)]
        for i, p in enumerate(procs):
            p.stdin.write(json.dumps(codedeploy(f"d-{i}", "CREATED")))
        for p in procs:
            p.stdin.close()
        for p in procs:
            p.wait(timeout=120)
            err = p.stderr.read()
            p.stdout.close()
            p.stderr.close()
            self.assertEqual(p.returncode, 0, err)
        st = self.status()["prod"]
        self.assertEqual(sorted(d["id"] for d in st["active_deployments"]),
                         sorted(f"d-{i}" for i in range(PROCESSES)))
        deployments = [i for i in self.scan() if i["pk"]["S"] == "env#prod"
                       and i["sk"]["S"].startswith("audit#") and i["kind"]["S"] == "deployment"]
        self.assertEqual(len(deployments), PROCESSES, "one audit line per recorded event")
        # The switching lease: one process switched the backend, the others left it to it.
        with open(os.path.join(self.dir, "steps.log")) as f:
            steps = [json.loads(line) for line in f]
        self.assertEqual([s["on"] for s in steps if s["environment"] == "prod"], [True])
        self.assertEqual([i for i in self.scan()
                          if i["pk"]["S"] == "env#prod" and i["sk"]["S"] == "lease"], [],
                         "every lease given up")

    def test_lease_held_by_another_process_defers_the_switch(self):
        until = int(time.time() * 1000) + 600_000
        subprocess.run(["/usr/bin/aws", "--endpoint-url", self.dynamo.url, "dynamodb", "put-item",
                        "--table-name", "intermission", "--item", json.dumps({
                            "pk": {"S": "env#qa"}, "sk": {"S": "lease"},
                            "holder": {"S": "replica-2"}, "until_ms": {"N": str(until)}})],
                       env=self.env, check=True, capture_output=True)
        out = self.run_cli("on", "qa", "--reason", "db upgrade", check=0)
        self.assertIn("qa: maintenance on (operator hold", out.stdout)
        self.assertIn("replica-2 is switching qa", out.stdout + out.stderr)
        self.assertTrue(self.status()["qa"]["on"], "the hold is recorded")
        steps = os.path.join(self.dir, "steps.log")
        logged = open(steps).read() if os.path.exists(steps) else ""
        self.assertNotIn('"environment":"qa"', logged, "the backend was left alone")
        lease = [i for i in self.scan() if i["pk"]["S"] == "env#qa" and i["sk"]["S"] == "lease"]
        self.assertEqual(lease[0]["holder"]["S"], "replica-2", "a live lease is not taken over")
        # status says who is switching, so an operator knows why nothing moved yet.
        qa = self.status()["qa"]
        self.assertEqual(qa["switching"]["holder"], "replica-2")
        text = self.run_cli("status", "qa", "--no-observe", check=0).stdout
        self.assertIn("being switched by replica-2 (lease until ", text)
        self.assertIsNone(self.status()["prod"]["switching"])

    def test_an_environment_that_outgrows_an_item_is_refused_with_a_reason(self):
        # Operator text is bounded (500 bytes), a deployment's names too (512 bytes each: a
        # longer one is ignored), and finished records by count; what can still outgrow an item
        # is hundreds of deployments running at once with names near that bound (records that
        # count are never dropped). CodeDeploy allows 100 characters; a hand-made message may
        # say anything.
        huge = codedeploy("d-huge", "CREATED", group="big-web", app="x" * 400_000)
        p = self.handle(huge, check=0)
        self.assertIn("more than the 512 a deployment may carry", p.stderr)
        self.assertFalse(self.status()["big"]["on"], "ignored, not kept")
        pad = "x" * 500
        events = [codedeploy(f"d-{i:03d}{pad}", "CREATED", group="big-web", app="shop" + pad)
                  for i in range(320)]
        p = self.run_cli("--log-level", "error", "handle", stdin=json.dumps(events), check=1,
                         timeout=280)
        self.assertIn("the ledger of 'big' would be", p.stderr)
        self.assertIn("400 KB", p.stderr)
        self.assertNotIn("ValidationException", p.stderr)
        # What was refused was not written: the ledger is still read, the page up for the
        # deployments it holds.
        items = [i for i in self.scan() if i["pk"]["S"] == "env#big" and i["sk"]["S"] == "state"]
        self.assertLessEqual(len(items[0]["state"]["S"]), 384 * 1024)
        running = len(json.loads(items[0]["state"]["S"])["deployments"])
        self.assertGreater(running, 200)
        self.assertLess(running, 320)
        self.assertTrue(self.status()["big"]["on"])

    def test_a_busy_environment_stays_within_one_item(self):
        # 1,500 finished deployments (scale-outs, say) in a day: about 450 KB of records if
        # all were kept, over DynamoDB's 400 KB item limit.
        events = [codedeploy(f"d-{i:05d}", "SUCCEEDED", group="busy-web") for i in range(1500)]
        self.run_cli("--log-level", "error", "handle", stdin=json.dumps(events), check=0,
                     timeout=280)
        items = [i for i in self.scan() if i["pk"]["S"] == "env#busy" and i["sk"]["S"] == "state"]
        state = json.loads(items[0]["state"]["S"])
        self.assertLessEqual(len(state["deployments"]), 200)
        self.assertIn("d-01499", [d["id"] for d in state["deployments"]], "the newest are kept")
        self.assertFalse(self.status()["busy"]["on"])


if __name__ == "__main__":
    unittest.main()
