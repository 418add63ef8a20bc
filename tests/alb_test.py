"""The ALB backend end to end against the fake AWS (ELBv2 calls, signatures checked by
botocore): fixed-response and target-group modes, bypass rules, priorities found among
other rules (priority 1 taken), two environments on one listener, interrupted switches,
a rule deleted by hand, throttling, and the 1024-character budget. The fake also routes a
request through the listener's rules as an ALB would, so the tests check what users get."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from fake_aws import TOKEN, FakeAws  # noqa: E402
from harness import BIN, codedeploy  # noqa: E402

ACCOUNT = "arn:aws:elasticloadbalancing:eu-west-1:111122223333"
L_HTTPS = f"{ACCOUNT}:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
L_HTTP = f"{ACCOUNT}:listener/app/web/50dc6c495c0c9188/0467ef3c8400ae65"
TG_APP = f"{ACCOUNT}:targetgroup/app/73e2d6bc24d8a067"
TG_PAGE = f"{ACCOUNT}:targetgroup/page/5dd4ab31d04a2d29"
CIDRS = ["203.0.113.0/28", "198.51.100.0/28", "192.0.2.0/28", "10.10.0.0/16", "10.20.0.0/16",
         "10.30.0.0/16", "10.40.0.0/16"]

CONFIG = f"""\
store: {{path: state.db}}
aws: {{region: eu-west-1, max_attempts: 4, codedeploy_lookup: false}}
routes:
  - deployment_group: "*-*"
    environment: "{{1}}"
environments:
  prod:
    backend:
      type: alb
      listeners: [{L_HTTPS}, {L_HTTP}]
      bypass_cidrs: {json.dumps(CIDRS)}
      bypass_secret: s3cret-42
  staging:
    backend:
      type: alb
      mode: target-group
      listeners: [{L_HTTPS}]
      hosts: [staging.example.com]
      target_group: {TG_PAGE}
      health_timeout: 2s
      poll_interval: 100ms
"""


class Alb(unittest.TestCase):
    def setUp(self):
        self.fake = FakeAws()
        self.fake.setup(
            target_groups={TG_APP: {"i-app1": True}, TG_PAGE: {"i-page1": True}},
            listeners=[{"arn": L_HTTPS, "target_group": TG_APP}, {"arn": L_HTTP, "target_group": TG_APP}],
            rules=[{"listener": L_HTTPS, "priority": 1, "path": "/admin/*"},
                   {"listener": L_HTTPS, "priority": 3, "path": "/legacy/*"},
                   {"listener": L_HTTP, "priority": 2, "path": "/.well-known/*"}],
            require_token=TOKEN)
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-alb-")
        self.dir = self._tmp.name
        self.config = os.path.join(self.dir, "config.yaml")
        with open(self.config, "w") as f:
            f.write(CONFIG)
        self.others = self.foreign_rules()

    def tearDown(self):
        self.fake.stop()
        self._tmp.cleanup()

    def cli(self, *args, stdin=None, check=0):
        p = subprocess.run([BIN, "--config", self.config, *args], input=stdin, capture_output=True,
                           text=True, cwd=self.dir, env=self.fake.env(), timeout=120)
        if check is not None:
            self.assertEqual(p.returncode, check, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def handle(self, deployment, status, group="prod-web", *flags, check=0):
        return self.cli("handle", *flags, stdin=json.dumps(codedeploy(deployment, status, group=group)),
                        check=check)

    def rules(self):
        return self.fake.state()["rules"]

    def ours(self, env):
        return {arn: r for arn, r in self.rules().items()
                if r["tags"].get("intermission:environment") == env}

    def foreign_rules(self):
        return {arn: r for arn, r in self.rules().items() if "intermission:environment" not in r["tags"]}

    def route(self, listener=L_HTTPS, **request):
        r = self.fake._call("POST", "/__fake/route", dict(listener=listener, **request))
        a = r["actions"][0]
        if a["Type"] == "fixed-response":
            return a["FixedResponseConfig"]["StatusCode"]
        groups = a.get("ForwardConfig", {}).get("TargetGroups") or [{"TargetGroupArn": a.get("TargetGroupArn")}]
        return groups[0]["TargetGroupArn"]

    def assert_nothing_left_and_others_untouched(self):
        self.assertEqual(self.ours("prod"), {})
        self.assertEqual(self.ours("staging"), {})
        self.assertEqual(self.foreign_rules(), self.others)

    def test_fixed_response_on_and_off_with_bypass(self):
        self.assertEqual(self.route(path="/"), TG_APP)
        self.handle("d-1", "CREATED")
        # Every request gets the 503 page, on both listeners...
        self.assertEqual(self.route(path="/"), "503")
        self.assertEqual(self.route(L_HTTP, path="/checkout"), "503")
        # ...except the bypass clients, who reach the app as the listener would send them.
        self.assertEqual(self.route(path="/", headers={"X-Intermission-Bypass": "s3cret-42"}), TG_APP)
        self.assertEqual(self.route(path="/", headers={"Cookie": "a=1; intermission_bypass=s3cret-42; b=2"}), TG_APP)
        self.assertEqual(self.route(path="/", headers={"Cookie": "intermission_bypass=wrong"}), "503")
        for ip in ["203.0.113.5", "10.40.1.2"]:
            self.assertEqual(self.route(path="/", ip=ip), TG_APP, ip)
        # Rules of others keep their place: priority 1 was taken and still answers first.
        self.assertEqual(self.route(path="/admin/x"), "200")
        mine = self.ours("prod")
        https = sorted((r["priority"], r["tags"]["intermission:role"]) for r in mine.values()
                       if r["listener"] == L_HTTPS)
        self.assertEqual([p for p, _ in https], [2, 4, 5, 6, 7], "free priorities, found not assumed")
        self.assertEqual(https[-1][1], "maintenance", "bypass rules sit above the maintenance rule")
        for r in mine.values():
            values = sum(len(c.get(k, {}).get("Values", [])) for c in r["conditions"]
                         for k in ("PathPatternConfig", "HostHeaderConfig", "SourceIpConfig", "HttpHeaderConfig"))
            self.assertLessEqual(values, 5)
        body = [r for r in mine.values() if r["tags"]["intermission:role"] == "maintenance"][0]
        self.assertIn("data-intermission=maintenance",
                      body["actions"][0]["FixedResponseConfig"]["MessageBody"])
        # A repeated run changes nothing.
        before = self.rules()
        self.cli("tick")
        self.assertEqual(self.rules(), before)
        self.handle("d-1", "SUCCEEDED")
        self.assertEqual(self.route(path="/"), TG_APP)
        self.assert_nothing_left_and_others_untouched()

    def test_target_group_mode_never_switches_to_an_empty_group(self):
        self.fake._call("POST", "/__fake/target", {"group": TG_PAGE, "id": "i-page1", "healthy": False})
        p = self.handle("d-1", "CREATED", "staging-web", check=1)
        self.assertIn("no healthy target", p.stderr)
        self.assertEqual(self.ours("staging"), {})
        self.fake._call("POST", "/__fake/target", {"group": TG_PAGE, "id": "i-page1", "healthy": True})
        self.cli("tick")
        self.assertEqual(self.route(host="staging.example.com", path="/"), TG_PAGE)
        self.assertEqual(self.route(host="www.example.com", path="/"), TG_APP, "other hosts untouched")
        self.handle("d-1", "SUCCEEDED", "staging-web")
        self.assert_nothing_left_and_others_untouched()

    def test_two_environments_on_one_listener(self):
        self.handle("d-1", "CREATED")
        self.handle("d-2", "CREATED", "staging-web")
        prod = {r["priority"] for r in self.ours("prod").values() if r["listener"] == L_HTTPS}
        staging = {r["priority"] for r in self.ours("staging").values()}
        self.assertFalse(prod & staging)
        self.handle("d-1", "SUCCEEDED")
        self.assertEqual(self.ours("prod"), {})
        self.assertEqual(len(self.ours("staging")), 1, "prod's off leaves staging's rule")
        self.handle("d-2", "SUCCEEDED", "staging-web")
        self.assert_nothing_left_and_others_untouched()

    def test_an_interrupted_switch_is_finished_by_the_next_run(self):
        # Two rules get created, then CreateRule fails more often than the client retries.
        self.fake.fail("CreateRule", "pass", "pass", "503", "503", "503", "503")
        p = self.handle("d-1", "CREATED", check=1)
        self.assertIn("ServiceUnavailable", p.stderr)
        self.assertEqual(len(self.ours("prod")), 2)
        self.cli("tick")
        self.assertEqual(self.route(path="/"), "503")
        self.assertEqual(len(self.ours("prod")), 10)
        # And the off switch, interrupted after its first deletion.
        self.fake.fail("DeleteRule", "pass", "503", "503", "503", "503")
        self.handle("d-1", "SUCCEEDED", check=1)
        self.assertEqual(self.route(path="/"), TG_APP, "the maintenance rules went first")
        self.cli("tick")
        self.assert_nothing_left_and_others_untouched()

    def test_a_rule_deleted_by_hand_during_maintenance_comes_back(self):
        self.handle("d-1", "CREATED")
        maintenance = [arn for arn, r in self.ours("prod").items()
                       if r["tags"]["intermission:role"] == "maintenance" and r["listener"] == L_HTTPS]
        self.fake._call("POST", "/__fake/delete-rule", {"arn": maintenance[0]})
        self.assertEqual(self.route(path="/"), TG_APP)
        self.cli("tick")
        self.assertEqual(self.route(path="/"), "503")
        self.assertEqual(len(self.ours("prod")), 10)

    def test_throttling_during_the_switch(self):
        for action in ["DescribeListeners", "DescribeRules", "DescribeTags", "CreateRule", "DeleteRule"]:
            self.fake.fail(action, "Throttling", "pass", "Throttling")
        self.handle("d-1", "CREATED")
        self.assertEqual(self.route(path="/"), "503")
        self.handle("d-1", "SUCCEEDED")
        self.assert_nothing_left_and_others_untouched()
        throttled = [c for c in self.fake.calls() if c["code"] == "Throttling"]
        self.assertGreaterEqual(len(throttled), 10)

    def test_dry_run_shows_the_planned_elbv2_calls(self):
        p = self.handle("d-1", "CREATED", "prod-web", "--dry-run")
        lines = [l.strip() for l in p.stdout.splitlines() if l.strip().startswith("would")]
        https = [l for l in lines if L_HTTPS in l]
        self.assertEqual(https[0], f"would create the bypass-cidr-1 rule at priority 2 (forward) on listener {L_HTTPS}")
        self.assertEqual(https[-1], f"would create the maintenance rule at priority 7 (fixed-response 503) on listener {L_HTTPS}")
        self.assertEqual(len(lines), 10, "5 rules on each of the two listeners")
        self.assertEqual(self.ours("prod"), {}, "a dry run changes nothing")

    def test_the_1024_character_budget_is_checked_when_the_config_loads(self):
        page = os.path.join(self.dir, "page.html")
        with open(page, "w") as f:
            f.write("<p>" + "x" * 1100 + "</p>")
        with open(self.config, "a") as f:
            f.write(f"""  qa:
    backend:
      type: alb
      listeners: [{L_HTTP}]
      page_file: page.html
""")
        p = self.cli("check-config", check=3)
        self.assertIn("environments.qa.backend.page_file: the page has 1107 characters", p.stderr)
        self.assertIn("mode: target-group", p.stderr)
        # 1000 two-byte characters are 2000 bytes but 1000 characters: accepted, as the API does.
        with open(page, "w", encoding="utf-8") as f:
            f.write("\u00e9" * 1000)
        self.cli("check-config", check=0)


if __name__ == "__main__":
    unittest.main()
