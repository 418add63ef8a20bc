"""The ALB backend end to end against the fake AWS (ELBv2 calls, signatures checked by
botocore): fixed-response and target-group modes, bypass rules, priorities found among
other rules (priority 1 taken), two environments on one listener, interrupted switches,
a rule deleted by hand, throttling, and the 1024-character budget. The fake also routes a
request through the listener's rules as an ALB would, so the tests check what users get.
The fake is as unkind as AWS (aws-behaviour.md §7-9): an unused target group is not
health-checked, a group with no healthy target answers the load balancer's own 503, rules and
their conditions have limits, and a listener may authenticate (OIDC, Cognito) before it
forwards."""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from fake_aws import TOKEN, FakeAws  # noqa: E402
from harness import BIN, codedeploy  # noqa: E402

ACCOUNT = "arn:aws:elasticloadbalancing:eu-west-1:111122223333"
L_HTTPS = f"{ACCOUNT}:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
L_HTTP = f"{ACCOUNT}:listener/app/web/50dc6c495c0c9188/0467ef3c8400ae65"
L_OIDC = f"{ACCOUNT}:listener/app/sso/8e3f6c495c0c9188/a1b2c3d4e5f60718"
L_COGNITO = f"{ACCOUNT}:listener/app/sso/8e3f6c495c0c9188/b2c3d4e5f6071829"
L_TO_HTTPS = f"{ACCOUNT}:listener/app/edge/7c1e6c495c0c9188/c3d4e5f607182930"
L_BLUE_GREEN = f"{ACCOUNT}:listener/app/edge/7c1e6c495c0c9188/d4e5f60718293041"
TG_GREEN = f"{ACCOUNT}:targetgroup/green/84f3e7cd35e9f178"
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
      health_timeout: 20s
      poll_interval: 100ms
"""


class Alb(unittest.TestCase):
    def setUp(self):
        self.fake = FakeAws()
        self.fake.setup(
            target_groups={TG_APP: {"i-app1": True}, TG_PAGE: {"i-page1": True}, TG_GREEN: {"i-green1": True}},
            target_group_settings={TG_PAGE: {"interval": 0.5, "healthy_threshold": 2}},
            listeners=[{"arn": L_HTTPS, "target_group": TG_APP}, {"arn": L_HTTP, "target_group": TG_APP},
                       {"arn": L_OIDC, "target_group": TG_APP, "auth": "oidc"},
                       {"arn": L_COGNITO, "target_group": TG_APP, "auth": "cognito"},
                       {"arn": L_TO_HTTPS, "redirect": True},
                       {"arn": L_BLUE_GREEN, "target_group": TG_APP, "second_group": TG_GREEN,
                        "sticky_seconds": 3600}],
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

    def cli(self, *args, stdin=None, check=0, env=None):
        p = subprocess.run([BIN, "--config", self.config, *args], input=stdin, capture_output=True,
                           text=True, cwd=self.dir, env=self.fake.env(**(env or {})), timeout=120)
        if check is not None:
            self.assertEqual(p.returncode, check, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def handle(self, deployment, status, group="prod-web", *flags, check=0, env=None):
        return self.cli("handle", *flags, stdin=json.dumps(codedeploy(deployment, status, group=group)),
                        check=check, env=env)

    def rules(self):
        return self.fake.state()["rules"]

    def ours(self, env):
        return {arn: r for arn, r in self.rules().items()
                if r["tags"].get("intermission:environment") == env}

    def foreign_rules(self):
        return {arn: r for arn, r in self.rules().items() if "intermission:environment" not in r["tags"]}

    def answer(self, listener=L_HTTPS, **request):
        return self.fake._call("POST", "/__fake/route", dict(listener=listener, **request))

    def route(self, listener=L_HTTPS, **request):
        """What a user gets: a fixed response's status code, the target group that serves the
        request, or "LB 503" — the load balancer's own error (a group with no healthy target)."""
        r = self.answer(listener, **request)
        if r.get("fixed_response"):
            return str(r["status"])
        return r.get("target_group") or f"LB {r['status']}"

    def roles(self, env):
        return sorted((r["listener"], r["tags"]["intermission:role"]) for r in self.ours(env).values())

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
        self.assertEqual([p for p, _ in https], [2, 4, 5, 6, 7, 8], "free priorities, found not assumed")
        self.assertEqual(https[-1][1], "maintenance", "bypass rules sit above the maintenance rule")
        for r in mine.values():
            per_condition = [len(c.get(k, {}).get("Values", [])) for c in r["conditions"]
                             for k in ("PathPatternConfig", "HostHeaderConfig", "SourceIpConfig", "HttpHeaderConfig")]
            self.assertLessEqual(sum(per_condition), 5)
            self.assertLessEqual(max(per_condition), 3)
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

    def test_target_group_mode_switches_on_though_an_unused_group_is_not_health_checked(self):
        # aws-behaviour.md §7: no rule forwards to the page group, so its target is "unused"
        # and would stay so while the backend waited for it to become healthy.
        self.assertEqual(self.fake.state()["targets"][TG_PAGE], {"i-page1": "unused"})
        self.handle("d-1", "CREATED", "staging-web")
        self.assertEqual(self.route(host="staging.example.com", path="/"), TG_PAGE)
        self.assertEqual(self.route(host="www.example.com", path="/"), TG_APP, "other hosts untouched")
        # Users were sent there only after the target had passed its checks (2 x 0.5 s after
        # the warm-up rule made the group used).
        creates = [c["t"] for c in self.fake.calls() if c["action"] == "CreateRule" and c["status"] == 200]
        self.assertEqual(len(creates), 2, "the warm-up rule, then the maintenance rule")
        self.assertGreaterEqual(creates[1] - creates[0], 1.0)
        self.assertEqual(self.roles("staging"), [(L_HTTPS, "maintenance"), (L_HTTPS, "warm-up")])
        warm_up = [r for r in self.ours("staging").values() if r["tags"]["intermission:role"] == "warm-up"][0]
        secret = warm_up["conditions"][0]["HttpHeaderConfig"]["Values"][0]
        self.assertRegex(secret, "^[0-9a-f]{32}$", "a random secret: no real request matches it")
        before = self.rules()
        self.cli("tick")
        self.assertEqual(self.rules(), before, "the secret is kept, nothing is replaced")
        self.handle("d-1", "SUCCEEDED", "staging-web")
        self.assertEqual(self.fake.state()["targets"][TG_PAGE], {"i-page1": "unused"})
        self.assert_nothing_left_and_others_untouched()

    def test_target_group_mode_falls_back_to_the_built_in_page_when_the_group_loses_its_targets(self):
        self.handle("d-1", "CREATED", "staging-web")
        self.assertEqual(self.route(host="staging.example.com", path="/"), TG_PAGE)
        self.fake._call("POST", "/__fake/target", {"group": TG_PAGE, "id": "i-page1", "healthy": False})
        self.assertEqual(self.route(host="staging.example.com", path="/"), "LB 503", "what users get now")
        self.cli("tick")
        self.assertEqual(self.route(host="staging.example.com", path="/"), "503", "the built-in page")
        body = self.answer(host="staging.example.com", path="/")["actions"][0]["FixedResponseConfig"]["MessageBody"]
        self.assertIn("data-intermission=maintenance", body)
        self.assertIn("warm-up", [r for _, r in self.roles("staging")], "the group is still checked")
        self.fake._call("POST", "/__fake/target", {"group": TG_PAGE, "id": "i-page1", "healthy": True})
        deadline = time.monotonic() + 30  # healthy again after 2 checks of 0.5 s
        while self.fake.state()["targets"][TG_PAGE] != {"i-page1": "healthy"} and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.fake.state()["targets"][TG_PAGE], {"i-page1": "healthy"})
        self.cli("tick")
        self.assertEqual(self.route(host="staging.example.com", path="/"), TG_PAGE)
        self.assertEqual(self.roles("staging"), [(L_HTTPS, "maintenance"), (L_HTTPS, "warm-up")])
        self.handle("d-1", "SUCCEEDED", "staging-web")
        self.assert_nothing_left_and_others_untouched()

    def test_target_group_mode_never_switches_to_an_empty_group(self):
        with open(self.config, "w") as f:  # the wait ends in failure here: no need to wait long
            f.write(CONFIG.replace("health_timeout: 20s", "health_timeout: 2s"))
        self.fake._call("POST", "/__fake/target", {"group": TG_PAGE, "id": "i-page1", "healthy": False})
        p = self.handle("d-1", "CREATED", "staging-web", check=1)
        self.assertIn("no healthy target", p.stderr)
        self.assertIn("i-page1 unhealthy (Target.FailedHealthChecks)", p.stderr)
        self.assertEqual(self.roles("staging"), [(L_HTTPS, "warm-up")], "no maintenance rule")
        self.assertEqual(self.route(host="staging.example.com", path="/"), TG_APP)
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
        self.assertEqual(self.roles("staging"), [(L_HTTPS, "maintenance"), (L_HTTPS, "warm-up")],
                         "prod's off leaves staging's rules")
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
        self.assertEqual(len(self.ours("prod")), 12)
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
        self.assertEqual(len(self.ours("prod")), 12)

    def test_throttling_during_the_switch(self):
        for action in ["DescribeListeners", "DescribeRules", "DescribeTags", "CreateRule", "DeleteRule"]:
            self.fake.fail(action, "Throttling", "pass", "Throttling")
        self.handle("d-1", "CREATED")
        self.assertEqual(self.route(path="/"), "503")
        self.handle("d-1", "SUCCEEDED")
        self.assert_nothing_left_and_others_untouched()
        throttled = [c for c in self.fake.calls() if c["code"] == "Throttling"]
        self.assertGreaterEqual(len(throttled), 10)

    def test_a_rule_made_whose_answer_was_lost_is_not_an_error(self):
        # The first CreateRule is made but its answer never arrives; the retry finds the
        # priority taken by that very rule (PriorityInUse).
        self.fake.fail("CreateRule", "lost")
        self.handle("d-1", "CREATED")
        self.assertEqual(self.route(path="/"), "503")
        self.assertEqual(len(self.ours("prod")), 12, "no rule made twice")
        codes = [c["code"] for c in self.fake.calls() if c["action"] == "CreateRule"]
        self.assertIn("PriorityInUse", codes, "the retry met its own rule")
        self.handle("d-1", "SUCCEEDED")
        self.assert_nothing_left_and_others_untouched()

    def test_dry_run_shows_the_planned_elbv2_calls(self):
        p = self.handle("d-1", "CREATED", "prod-web", "--dry-run")
        lines = [l.strip() for l in p.stdout.splitlines() if l.strip().startswith("would")]
        https = [l for l in lines if L_HTTPS in l]
        self.assertEqual(https[0], f"would create the bypass-cidr-1 rule at priority 2 (forward) on listener {L_HTTPS}")
        self.assertEqual(https[-1], f"would create the maintenance rule at priority 8 (fixed-response 503) on listener {L_HTTPS}")
        self.assertEqual(len(lines), 12, "6 rules on each of the two listeners")
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

    def write_config(self, extra):
        with open(self.config, "w") as f:
            f.write(CONFIG.replace("      bypass_secret: s3cret-42\n", "      bypass_secret: s3cret-42\n" + extra, 1))

    def test_a_rule_change_never_leaves_a_moment_without_a_maintenance_rule(self):
        self.handle("d-1", "CREATED")
        with open(os.path.join(self.dir, "page.html"), "w") as f:
            f.write("<h1>New page</h1>")
        self.write_config("      page_file: page.html\n")
        # Every CreateRule fails (the client tries 4 times): the old page must stay up.
        self.fake.fail("CreateRule", "503", "503", "503", "503")
        self.cli("tick", check=1)
        for listener in (L_HTTPS, L_HTTP):
            self.assertEqual(self.route(listener, path="/"), "503", "still the maintenance page")
        self.assertEqual(len(self.ours("prod")), 12, "nothing deleted before its replacement exists")
        self.cli("tick")
        served = self.answer(path="/")["actions"][0]["FixedResponseConfig"]["MessageBody"]
        self.assertEqual(served, "<h1>New page</h1>")
        self.assertEqual(len(self.ours("prod")), 12, "the old rules are gone")
        # A new bypass secret: new bypass rules at free priorities, so the maintenance rule moves
        # below them; a failure half-way still leaves a maintenance rule.
        with open(self.config) as f:
            text = f.read()
        with open(self.config, "w") as f:
            f.write(text.replace("bypass_secret: s3cret-42", "bypass_secret: n3w-s3cret"))
        self.fake.fail("CreateRule", "pass", "503", "503", "503", "503")
        self.cli("tick", check=1)
        self.assertEqual(self.route(path="/"), "503")
        self.assertEqual(self.route(L_HTTP, path="/"), "503")
        self.cli("tick")
        for listener in (L_HTTPS, L_HTTP):
            self.assertEqual(self.route(listener, path="/"), "503")
            self.assertEqual(self.route(listener, path="/", headers={"X-Intermission-Bypass": "n3w-s3cret"}), TG_APP)
            self.assertEqual(self.route(listener, path="/", headers={"X-Intermission-Bypass": "s3cret-42"}), "503")
        self.assertEqual(len(self.ours("prod")), 12)
        https = sorted((r["priority"], r["tags"]["intermission:role"]) for r in self.ours("prod").values()
                       if r["listener"] == L_HTTPS)
        self.assertEqual(https[-1][1], "maintenance", "bypass rules still sit above the maintenance rule")
        self.handle("d-1", "SUCCEEDED")
        self.assert_nothing_left_and_others_untouched()

    def add_environment(self, name, listeners, extra=""):
        """CONFIG and one more ALB environment on `listeners`, with a bypass secret."""
        with open(self.config, "w") as f:
            f.write(CONFIG + f"""  {name}:
    backend:
      type: alb
      listeners: [{", ".join(listeners)}]
      bypass_secret: s3cret-42
{extra}""")

    def sso_config(self, extra=""):
        self.add_environment("sso", [L_OIDC, L_COGNITO], extra)

    def test_bypass_rules_keep_the_listeners_authentication(self):
        self.sso_config()
        # OIDC: ELBv2 never returns the client secret a copy needs; without it, refused.
        p = self.handle("d-1", "CREATED", "sso-web", check=3)
        self.assertIn("authenticates with OIDC", p.stderr)
        self.assertIn("oidc_client_secret_env", p.stderr)
        self.assertEqual(self.ours("sso"), {}, "nothing half-made")
        self.assertTrue(self.answer(L_OIDC, path="/")["authenticated"])
        # With the secret: bypass clients still log in; everyone else gets the page.
        self.sso_config("      oidc_client_secret_env: IDP_SECRET\n")
        self.cli("tick", env={"IDP_SECRET": "idp-client-secret"})
        for listener in (L_OIDC, L_COGNITO):
            self.assertEqual(self.route(listener, path="/"), "503")
            bypass = self.answer(listener, path="/", headers={"X-Intermission-Bypass": "s3cret-42"})
            self.assertEqual((bypass.get("target_group"), bypass["authenticated"]), (TG_APP, True), listener)
        self.handle("d-1", "SUCCEEDED", "sso-web", env={"IDP_SECRET": "idp-client-secret"})
        self.assertEqual(self.ours("sso"), {})

    def test_bypass_rules_copy_a_redirect_and_a_sticky_forward(self):
        # The usual pair: plain HTTP redirected to HTTPS, and an HTTPS listener that shares
        # traffic between blue and green with stickiness. Neither default action is refused.
        self.add_environment("edge", [L_TO_HTTPS, L_BLUE_GREEN])
        self.handle("d-1", "CREATED", "edge-web")
        bypass = {"X-Intermission-Bypass": "s3cret-42"}
        for listener in (L_TO_HTTPS, L_BLUE_GREEN):
            self.assertEqual(self.route(listener, path="/"), "503", listener)
        redirected = self.answer(L_TO_HTTPS, path="/", headers=bypass)
        self.assertEqual((redirected["status"], redirected.get("redirect")), (301, "HTTPS://#{host}:443/#{path}"),
                         "a bypass client on HTTP is sent to HTTPS as without maintenance")
        sticky = self.answer(L_BLUE_GREEN, path="/", headers=bypass)
        self.assertEqual((sticky.get("target_group"), sticky.get("sticky_seconds")), (TG_APP, 3600),
                         "a bypass client keeps its target group stickiness")
        before = self.rules()
        self.cli("tick")
        self.assertEqual(self.rules(), before, "the copies match their fingerprints: nothing remade")
        self.handle("d-1", "SUCCEEDED", "edge-web")
        self.assertEqual(self.ours("edge"), {})
        self.assertEqual(self.answer(L_TO_HTTPS, path="/")["status"], 301)

    def test_a_switch_that_would_pass_the_rules_quota_does_not_start(self):
        self.fake.setup(rules_per_listener=6)  # L_HTTPS holds 2 rules of others; prod needs 6
        self.write_config("      max_rules: 6\n")
        p = self.handle("d-1", "CREATED", check=3)
        self.assertIn("over its quota of 6", p.stderr)
        self.assertEqual(self.ours("prod"), {}, "nothing created")
        # Not told the quota: the API's TooManyRules is said clearly, and no listener is left
        # in maintenance while another is not.
        self.write_config("")
        p = self.handle("d-2", "CREATED", check=3)
        self.assertIn("rules quota", p.stderr)
        self.assertIn("TooManyRules", p.stderr)
        for listener in (L_HTTPS, L_HTTP):
            self.assertEqual(self.route(listener, path="/"), TG_APP)
        self.assertNotIn("maintenance", [r for _, r in self.roles("prod")])

    def test_a_listener_with_more_than_100_rules_is_read_page_by_page(self):
        """aws-behaviour.md §8: DescribeRules pages and DescribeTags takes at most 20 ARNs. With
        102 rules of others on one listener (the quota raised to 200 and max_rules told so),
        the listener is read in pages of 100 and its tags in batches of 20: ours land on the
        second page, where the switch must find them to keep them and to remove them, and
        every priority on either page must be seen as taken."""
        self.fake.setup(rules_per_listener=200,
                        rules=[{"listener": L_HTTPS, "priority": p, "path": f"/p{p}/*"}
                               for p in range(4, 104)])
        self.write_config("      max_rules: 200\n")
        self.others = self.foreign_rules()
        theirs = {arn for arn, r in self.others.items() if r["listener"] == L_HTTPS}
        self.assertEqual(len(theirs), 102)
        before_on = len(self.fake.calls())
        self.handle("d-1", "CREATED")
        on_run = self.fake.calls()[before_on:]
        self.assertEqual(self.route(path="/"), "503")
        # A rule the run created is known by the tags it gave: DescribeTags may not show a rule
        # that new yet, and is not asked for it (each step of the run observes again).
        asked = {v for c in on_run if c["action"] == "DescribeTags"
                 for k, v in urllib.parse.parse_qsl(c["body"]) if k.startswith("ResourceArns.member.")}
        self.assertTrue(asked & theirs, "the rules of others were read")
        self.assertFalse(asked & set(self.ours("prod")), "our new rules' tags were asked for")
        self.assertEqual(self.route(path="/p103/x"), "200", "a rule of the second page still answers first")
        https = sorted((r["priority"], r["tags"]["intermission:role"]) for r in self.ours("prod").values()
                       if r["listener"] == L_HTTPS)
        self.assertEqual([p for p, _ in https], [2, 104, 105, 106, 107, 108],
                         "free priorities, found on both pages")
        self.assertEqual(https[-1][1], "maintenance")
        before = self.rules()
        self.cli("tick")
        self.assertEqual(self.rules(), before, "our rules on the second page were found: nothing remade")
        self.handle("d-1", "SUCCEEDED")
        self.assertEqual(self.route(path="/"), TG_APP)
        self.assert_nothing_left_and_others_untouched()

        calls = [(c["action"], urllib.parse.parse_qsl(c["body"])) for c in self.fake.calls()
                 if c["status"] == 200 and c["action"] in ("DescribeRules", "DescribeTags")]
        pages = [dict(p) for a, p in calls if a == "DescribeRules" and dict(p).get("ListenerArn") == L_HTTPS]
        self.assertTrue(pages and all(p.get("PageSize") == "100" for p in pages), pages)
        self.assertIn("100", [p.get("Marker") for p in pages], "the second page was asked for")
        batches = [[v for k, v in p if k.startswith("ResourceArns.member.")]
                   for a, p in calls if a == "DescribeTags"]
        self.assertLessEqual(max(len(b) for b in batches), 20)
        self.assertIn(20, [len(b) for b in batches], "full batches of 20")
        self.assertLessEqual(theirs, {arn for b in batches for arn in b},
                             "the tags of every rule, those of the second page too, were read")

    def test_condition_limits_are_checked_when_the_config_loads(self):
        with open(self.config, "a") as f:
            f.write(f"""  qa:
    backend:
      type: alb
      listeners: [{L_HTTP}]
      hosts: ["*.a.example.com", "*.b.example.com", "*.c.example.com", "*.d.example.com"]
      bypass_secret: {"k" * 107}
""")
        p = self.cli("check-config", check=3)
        self.assertIn("environments.qa.backend.bypass_secret: must have no * or ? (ALB wildcards) "
                      "and at most 106", p.stderr)
        self.assertIn("environments.qa.backend.hosts: the hosts have 4 wildcards; an ALB rule takes "
                      "at most 5, and the bypass cookie rule uses 2 of them", p.stderr)
        self.assertIn("environments.qa.backend.hosts: an ALB condition takes at most 3 values", p.stderr)


if __name__ == "__main__":
    unittest.main()
