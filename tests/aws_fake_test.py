"""The fake AWS itself, checked with an independent client: the Debian awscli drives every
call intermission uses, signed by awscli's own SigV4, and reads the replies by the services'
models. If the fake spoke the protocols wrongly, awscli would fail here."""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from fake_aws import KEY, TOKEN, FakeAws  # noqa: E402

AWS = "/usr/bin/aws"
LISTENER = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"


class AwsCliDrivesTheFake(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = FakeAws()
        cls.fake.setup(load_balancers=[{"name": "web-lb", "interval": 300, "healthy_threshold": 2}],
                       groups=[{"name": "web-asg", "instances": ["i-app1", "i-app2"],
                                "load_balancers": ["web-lb"]}],
                       instances={"i-page": "eu-west-1a"},
                       deployments={"d-1": {"creator": "autoscaling", "status": "Succeeded"}},
                       target_groups={"arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/app/1": {"i-app1": True},
                                      "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/page/2": {"i-page": False}},
                       listeners=[{"arn": LISTENER, "target_group": "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/app/1"}],
                       rules=[{"listener": LISTENER, "priority": 1, "path": "/admin/*"}],
                       require_token=TOKEN)

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()

    def aws(self, *args, env=None, check=True):
        p = subprocess.run([AWS, "--endpoint-url", self.fake.url, "--output", "json", *args],
                           capture_output=True, text=True, env=env or self.fake.env(), timeout=60)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr)
            return json.loads(p.stdout) if p.stdout.strip() else {}
        return p

    def test_every_call_intermission_uses(self):
        health = self.aws("elb", "describe-instance-health", "--load-balancer-name", "web-lb")
        self.assertEqual({s["InstanceId"]: s["State"] for s in health["InstanceStates"]},
                         {"i-app1": "InService", "i-app2": "InService"})
        reg = self.aws("elb", "register-instances-with-load-balancer", "--load-balancer-name",
                       "web-lb", "--instances", "i-page")
        self.assertEqual(sorted(i["InstanceId"] for i in reg["Instances"]),
                         ["i-app1", "i-app2", "i-page"], "all registered instances, as AWS does")
        page = self.aws("elb", "describe-instance-health", "--load-balancer-name", "web-lb",
                        "--instances", "i-page")["InstanceStates"][0]
        self.assertEqual(page["State"], "OutOfService")
        self.assertEqual(page["ReasonCode"], "ELB")
        self.fake.advance(600)  # the clock moves on by hand: awscli's speed cannot matter
        page = self.aws("elb", "describe-instance-health", "--load-balancer-name", "web-lb",
                        "--instances", "i-page")["InstanceStates"][0]
        self.assertEqual(page["State"], "InService", "after HealthyThreshold x Interval")
        lbs = self.aws("elb", "describe-load-balancers", "--load-balancer-names", "web-lb")
        self.assertEqual(lbs["LoadBalancerDescriptions"][0]["HealthCheck"]["HealthyThreshold"], 2)
        group_lbs = self.aws("autoscaling", "describe-load-balancers",
                             "--auto-scaling-group-name", "web-asg")
        self.assertEqual(group_lbs["LoadBalancers"], [{"LoadBalancerName": "web-lb",
                                                       "State": "InService"}])
        self.aws("autoscaling", "detach-load-balancers", "--auto-scaling-group-name", "web-asg",
                 "--load-balancer-names", "web-lb")
        self.assertEqual(self.aws("autoscaling", "describe-load-balancers",
                                  "--auto-scaling-group-name", "web-asg")["LoadBalancers"],
                         [{"LoadBalancerName": "web-lb", "State": "Removed"}],
                         "no draining on this load balancer: removed at once")
        self.aws("autoscaling", "attach-load-balancers", "--auto-scaling-group-name", "web-asg",
                 "--load-balancer-names", "web-lb")
        groups = self.aws("autoscaling", "describe-auto-scaling-groups",
                          "--auto-scaling-group-names", "web-asg")["AutoScalingGroups"]
        self.assertEqual([i["InstanceId"] for i in groups[0]["Instances"]], ["i-app1", "i-app2"])
        self.assertEqual(groups[0]["LoadBalancerNames"], ["web-lb"])
        self.aws("elb", "deregister-instances-from-load-balancer", "--load-balancer-name",
                 "web-lb", "--instances", "i-page")
        d = self.aws("deploy", "get-deployment", "--deployment-id", "d-1")["deploymentInfo"]
        self.assertEqual((d["creator"], d["status"]), ("autoscaling", "Succeeded"))

    def test_every_elbv2_call_intermission_uses(self):
        listener = self.aws("elbv2", "describe-listeners", "--listener-arns", LISTENER)["Listeners"][0]
        self.assertEqual(listener["DefaultActions"][0]["Type"], "forward")
        rules = self.aws("elbv2", "describe-rules", "--listener-arn", LISTENER)["Rules"]
        self.assertEqual([r["Priority"] for r in rules], ["1", "default"])
        created = self.aws(
            "elbv2", "create-rule", "--listener-arn", LISTENER, "--priority", "2",
            "--conditions", '[{"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}},'
                            '{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-A", "Values": ["b"]}}]',
            "--actions", '[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503",'
                         '"ContentType": "text/html", "MessageBody": "<p>back soon</p>"}}]',
            "--tags", "Key=intermission:environment,Value=prod")["Rules"][0]
        self.assertEqual(created["Actions"][0]["FixedResponseConfig"]["MessageBody"], "<p>back soon</p>")
        tags = self.aws("elbv2", "describe-tags", "--resource-arns", created["RuleArn"])
        self.assertEqual(tags["TagDescriptions"][0]["Tags"],
                         [{"Key": "intermission:environment", "Value": "prod"}])
        again = self.aws("elbv2", "create-rule", "--listener-arn", LISTENER, "--priority", "2",
                         "--conditions", '[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}}]',
                         "--actions", '[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}]',
                         check=False)
        self.assertIn("PriorityInUse", again.stderr)
        self.aws("elbv2", "delete-rule", "--rule-arn", created["RuleArn"])
        gone = self.aws("elbv2", "delete-rule", "--rule-arn", created["RuleArn"], check=False)
        self.assertIn("RuleNotFound", gone.stderr)
        health = self.aws("elbv2", "describe-target-health", "--target-group-arn",
                          "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/page/2")
        # aws-behaviour.md §7: no rule forwards to the page group, so it is not health-checked.
        self.assertEqual(health["TargetHealthDescriptions"][0]["TargetHealth"]["State"], "unused")
        self.assertEqual(health["TargetHealthDescriptions"][0]["TargetHealth"]["Reason"], "Target.NotInUse")

    def test_errors_are_read_by_awscli_as_aws_errors(self):
        p = self.aws("elb", "describe-instance-health", "--load-balancer-name", "nope", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("LoadBalancerNotFound", p.stderr)
        p = self.aws("deploy", "get-deployment", "--deployment-id", "d-404", check=False)
        self.assertIn("DeploymentDoesNotExistException", p.stderr)

    def test_signatures_are_checked(self):
        p = self.aws("elb", "describe-instance-health", "--load-balancer-name", "web-lb",
                     env=self.fake.env(AWS_SECRET_ACCESS_KEY="wrong-secret"), check=False)
        self.assertIn("SignatureDoesNotMatch", p.stderr)
        p = self.aws("elb", "describe-instance-health", "--load-balancer-name", "web-lb",
                     env=self.fake.env(AWS_ACCESS_KEY_ID="AKIDUNKNOWN"), check=False)
        self.assertIn("InvalidClientTokenId", p.stderr)

    def test_injected_throttling_is_retried_by_awscli_too(self):
        self.fake.fail("DescribeInstanceHealth", "Throttling")
        self.aws("elb", "describe-instance-health", "--load-balancer-name", "web-lb")
        codes = [c["code"] for c in self.fake.calls() if c["action"] == "DescribeInstanceHealth"]
        self.assertIn("Throttling", codes)

    def test_sts_as_awscli_calls_it(self):
        """STS (fake_sts.py, aws-behaviour.md §13): AssumeRoleWithWebIdentity unsigned and
        checked against the token the fake holds, AssumeRole signed; the temporary credentials
        then work on the other services only with their session token."""
        web_role = "arn:aws:iam::111122223333:role/irsa"
        role = "arn:aws:iam::111122223333:role/deployer"
        jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYSJ9.c2ln"
        self.fake._call("POST", "/__fake/sts", {"web_identity_token": jwt, "web_identity_roles": [web_role],
                                                "assumable_roles": {role: [KEY]}})
        out = self.aws("sts", "assume-role-with-web-identity", "--role-arn", web_role,
                       "--role-session-name", "awscli", "--web-identity-token", jwt)
        creds = out["Credentials"]
        self.assertTrue(creds["AccessKeyId"].startswith("ASIA"))
        self.assertIn("Expiration", creds)
        self.assertTrue(out["AssumedRoleUser"]["Arn"].endswith(":assumed-role/irsa/awscli"))
        temporary = self.fake.env(AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
                                  AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
                                  AWS_SESSION_TOKEN=creds["SessionToken"])
        self.aws("elb", "describe-load-balancers", env=temporary)
        temporary["AWS_SESSION_TOKEN"] = ""
        p = self.aws("elb", "describe-load-balancers", env=temporary, check=False)
        self.assertIn("InvalidClientTokenId", p.stderr, "the session token is required")
        p = self.aws("sts", "assume-role-with-web-identity", "--role-arn", web_role,
                     "--role-session-name", "awscli", "--web-identity-token", "forged", check=False)
        self.assertIn("InvalidIdentityToken", p.stderr)
        p = self.aws("sts", "assume-role-with-web-identity", "--role-arn", role,
                     "--role-session-name", "awscli", "--web-identity-token", jwt, check=False)
        self.assertIn("AccessDenied", p.stderr)
        # AssumeRole: signed (checked with botocore), by a key the role trusts.
        out = self.aws("sts", "assume-role", "--role-arn", role, "--role-session-name", "deploy")
        creds = out["Credentials"]
        self.aws("elb", "describe-load-balancers",
                 env=self.fake.env(AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
                                   AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
                                   AWS_SESSION_TOKEN=creds["SessionToken"]))
        p = self.aws("sts", "assume-role", "--role-arn", role, "--role-session-name", "deploy",
                     env=self.fake.env(AWS_SECRET_ACCESS_KEY="wrong"), check=False)
        self.assertIn("SignatureDoesNotMatch", p.stderr)
        p = self.aws("sts", "assume-role", "--role-arn", web_role, "--role-session-name", "deploy",
                     check=False)
        self.assertIn("AccessDenied", p.stderr, "a role that does not trust the caller")
        # Expired temporary credentials are refused, as AWS refuses them.
        self.fake._call("POST", "/__fake/sts", {"expires_in": 1})
        creds = self.aws("sts", "assume-role", "--role-arn", role, "--role-session-name", "short")["Credentials"]
        time.sleep(1.2)
        p = self.aws("elb", "describe-load-balancers", check=False,
                     env=self.fake.env(AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
                                       AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
                                       AWS_SESSION_TOKEN=creds["SessionToken"]))
        self.assertIn("ExpiredToken", p.stderr)
        self.fake._call("POST", "/__fake/sts", {"expires_in": None})


class AutoScalingReplacesWhatTheElbFails(unittest.TestCase):
    """aws-behaviour.md §5 through awscli: a group with ELB health checks replaces an instance
    its attached ELB reports failing, and once detached replaces nothing (why the switch
    detaches the group for a deployment). The fake's clock is moved by hand."""

    def setUp(self):
        self.fake = FakeAws()
        self.fake.setup(load_balancers=[{"name": "web-lb", "interval": 300, "healthy_threshold": 2}],
                        groups=[{"name": "web-asg", "instances": ["i-app1", "i-app2"],
                                 "load_balancers": ["web-lb"]}],
                        replace_after=60, require_token=TOKEN)

    def tearDown(self):
        self.fake.stop()

    aws = AwsCliDrivesTheFake.aws

    def group(self):
        g = self.aws("autoscaling", "describe-auto-scaling-groups",
                     "--auto-scaling-group-names", "web-asg")["AutoScalingGroups"][0]
        self.assertEqual(g["HealthCheckType"], "ELB")
        return {i["InstanceId"]: i["HealthStatus"] for i in g["Instances"]}

    def elb(self):
        return {s["InstanceId"]: (s["State"], s["ReasonCode"]) for s in self.aws(
            "elb", "describe-instance-health", "--load-balancer-name", "web-lb")["InstanceStates"]}

    def test_an_attached_failing_instance_is_replaced_a_detached_one_is_not(self):
        self.fake.instance("i-app1", healthy=False)
        self.fake.advance(30)
        self.assertEqual(self.group(), {"i-app1": "Unhealthy", "i-app2": "Healthy"}, "not yet")
        self.fake.advance(31)
        members = self.group()
        self.assertNotIn("i-app1", members, "terminated")
        [new] = set(members) - {"i-app2"}
        self.assertRegex(new, r"^i-[0-9a-f]{17}$")
        self.assertEqual(self.elb(), {"i-app2": ("InService", "N/A"), new: ("OutOfService", "ELB")},
                         "the new instance is registered and health-checked from the start")

        self.aws("autoscaling", "detach-load-balancers", "--auto-scaling-group-name", "web-asg",
                 "--load-balancer-names", "web-lb")
        self.fake.instance("i-app2", healthy=False)
        self.fake.advance(600)
        self.assertEqual(set(self.group()), {"i-app2", new}, "a detached group replaces nothing")
        self.assertEqual(len(self.fake.state()["replaced"]), 1)


ARN = "arn:aws:elasticloadbalancing:eu-west-1:111122223333"
L_WEB = f"{ARN}:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
L_SSO = f"{ARN}:listener/app/sso/8e3f6c495c0c9188/a1b2c3d4e5f60718"
L_TO_HTTPS = f"{ARN}:listener/app/web/50dc6c495c0c9188/0467ef3c8400ae65"
L_BLUE_GREEN = f"{ARN}:listener/app/bg/6a1f3c495c0c9188/c3d4e5f607182930"
TG_APP = f"{ARN}:targetgroup/app/73e2d6bc24d8a067"
TG_PAGE = f"{ARN}:targetgroup/page/5dd4ab31d04a2d29"
TG_GREEN = f"{ARN}:targetgroup/green/84f3e7cd35e9f178"
FIXED = '[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}]'


def path_rule(*values):
    return json.dumps([{"Field": "path-pattern", "PathPatternConfig": {"Values": list(values)}}])


def header_rule(name, *values):
    return json.dumps([{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": name,
                                                                     "Values": list(values)}}])


PAGE_INTERVAL = 300.0  # seconds: HealthCheckIntervalSeconds is 5-300 in the ELBv2 API reference


class Elbv2IsAsUnkindAsAws(unittest.TestCase):
    """aws-behaviour.md §7-9, each checked through awscli so that a fake gone kind fails here."""

    def setUp(self):
        self.fake = FakeAws()
        self.fake.setup(target_groups={TG_APP: {"i-app1": True}, TG_PAGE: {"i-page1": True, "i-page2": False},
                                       TG_GREEN: {"i-green1": True}},
                        target_group_settings={TG_PAGE: {"interval": PAGE_INTERVAL, "healthy_threshold": 2},
                                               TG_APP: {"deregistration_delay": 8.0}},
                        listeners=[{"arn": L_WEB, "target_group": TG_APP},
                                   {"arn": L_SSO, "target_group": TG_APP, "auth": "oidc"},
                                   {"arn": L_TO_HTTPS, "redirect": True},
                                   {"arn": L_BLUE_GREEN, "target_group": TG_APP, "second_group": TG_GREEN,
                                    "sticky_seconds": 3600}],
                        require_token=TOKEN)

    def tearDown(self):
        self.fake.stop()

    aws = AwsCliDrivesTheFake.aws

    def health(self, group):
        return {d["Target"]["Id"]: (d["TargetHealth"]["State"], d["TargetHealth"].get("Reason"))
                for d in self.aws("elbv2", "describe-target-health", "--target-group-arn", group)
                ["TargetHealthDescriptions"]}

    def create(self, priority, conditions, actions=FIXED, listener=L_WEB, check=True):
        r = self.aws("elbv2", "create-rule", "--listener-arn", listener, "--priority", str(priority),
                     "--conditions", conditions, "--actions", actions, check=check)
        return r["Rules"][0]["RuleArn"] if check else r

    def route(self, **request):
        return self.fake._call("POST", "/__fake/route", dict(listener=L_WEB, **request))

    def test_a_group_no_rule_uses_is_not_health_checked_until_one_forwards_to_it(self):
        self.assertEqual(self.health(TG_PAGE), {"i-page1": ("unused", "Target.NotInUse"),
                                                "i-page2": ("unused", "Target.NotInUse")})
        self.assertEqual(self.health(TG_APP), {"i-app1": ("healthy", None)}, "the default action uses it")
        # The page group's interval is far longer than any awscli run; the clock moves on by hand.
        rule = self.create(5, header_rule("X-Warm-Up", "k3y"),
                           json.dumps([{"Type": "forward", "TargetGroupArn": TG_PAGE}]))
        self.assertEqual(self.health(TG_PAGE)["i-page1"], ("initial", "Elb.RegistrationInProgress"))
        answer = self.route(headers={"X-Warm-Up": "k3y"})
        self.assertEqual((answer["status"], answer.get("error")), (503, "no healthy target"),
                         "a user sent to a group that is still checking gets the load balancer's 503")
        self.fake.advance(PAGE_INTERVAL)
        self.assertEqual(self.health(TG_PAGE)["i-page1"], ("initial", "Elb.InitialHealthChecking"))
        self.assertEqual(self.route(headers={"X-Warm-Up": "k3y"})["status"], 503)
        self.fake.advance(PAGE_INTERVAL)
        self.assertEqual(self.health(TG_PAGE), {"i-page1": ("healthy", None),
                                                "i-page2": ("unhealthy", "Target.FailedHealthChecks")})
        self.assertEqual(self.route(headers={"X-Warm-Up": "k3y"})["target_group"], TG_PAGE)
        self.aws("elbv2", "delete-rule", "--rule-arn", rule)
        self.assertEqual(self.health(TG_PAGE)["i-page1"], ("unused", "Target.NotInUse"),
                         "no longer used: no longer checked")

    def test_a_deregistered_target_drains_for_the_deregistration_delay(self):
        # The delay (8 s) is far longer than an awscli run on a busy machine.
        self.aws("elbv2", "deregister-targets", "--target-group-arn", TG_APP, "--targets", "Id=i-app1")
        self.assertEqual(self.health(TG_APP), {"i-app1": ("draining", "Target.DeregistrationInProgress")})
        self.assertEqual(self.route()["status"], 503, "a draining target takes no new requests")
        deadline = time.monotonic() + 15
        while self.fake.state()["targets"][TG_APP] and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.health(TG_APP), {}, "gone once the delay is over")

    def test_the_101st_rule_is_too_many(self):
        self.fake.setup(rules=[{"listener": L_WEB, "priority": p, "path": f"/r{p}/*"} for p in range(1, 101)])
        p = self.create(101, path_rule("/x"), check=False)
        self.assertIn("TooManyRules", p.stderr)
        self.fake.setup(rules_per_listener=101)  # a raised quota, or a lower one for tests
        self.create(101, path_rule("/x"))

    def test_condition_limits(self):
        p = self.create(2, path_rule("/a", "/b", "/c", "/d", "/e", "/f"), check=False)
        self.assertIn("InvalidConfigurationRequest", p.stderr)
        self.assertIn("'5' condition values", p.stderr)
        p = self.create(2, path_rule("/a", "/b", "/c", "/d"), check=False)
        self.assertIn("'3' values", p.stderr)
        hosts = {"Field": "host-header", "HostHeaderConfig": {"Values": ["*.a.example", "*.b.example"]}}
        two = json.dumps([hosts] + json.loads(path_rule("/a*", "/b*", "/c**")))
        p = self.create(2, two, check=False)
        self.assertIn("'5' wildcards", p.stderr)
        self.create(2, json.dumps([hosts] + json.loads(path_rule("/a*", "/b*", "/c*"))))
        p = self.create(3, header_rule("X-A", "v" * 129), check=False)
        self.assertIn("InvalidConfigurationRequest", p.stderr)
        self.assertIn("'128' characters", p.stderr)
        self.create(3, header_rule("X-A", "v" * 128))
        p = self.create(2, path_rule("/z"), check=False)
        self.assertIn("PriorityInUse", p.stderr)
        body = '[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503", "MessageBody": "%s"}}]'
        p = self.create(4, path_rule("/y"), body % ("x" * 1025), check=False)
        self.assertIn("1024", p.stderr)
        self.create(4, path_rule("/y"), body % ("x" * 1024))

    def test_describe_rules_pages(self):
        self.fake.setup(rules=[{"listener": L_WEB, "priority": p, "path": f"/r{p}/*"} for p in range(1, 6)])
        seen, pages, marker = [], 0, []
        while True:
            page = self.aws("elbv2", "describe-rules", "--listener-arn", L_WEB, "--page-size", "2", *marker)
            pages += 1
            self.assertLessEqual(len(page["Rules"]), 2)
            seen += [r["Priority"] for r in page["Rules"]]
            if "NextMarker" not in page:
                break
            marker = ["--marker", page["NextMarker"]]
        self.assertEqual(seen, ["1", "2", "3", "4", "5", "default"])
        self.assertEqual(pages, 3, "six rules in pages of two")

    def test_describe_tags_takes_at_most_20_arns_and_knows_its_rules(self):
        arns = [self.create(p, path_rule(f"/t{p}")) for p in (1, 2)]
        unknown = arns[0][:-16] + "0" * 16
        p = self.aws("elbv2", "describe-tags", "--resource-arns", *(arns * 10), unknown, check=False)
        self.assertIn("ValidationError", p.stderr)
        self.assertIn("20", p.stderr)
        self.assertEqual(len(self.aws("elbv2", "describe-tags", "--resource-arns", *(arns * 10))
                             ["TagDescriptions"]), 20)
        p = self.aws("elbv2", "describe-tags", "--resource-arns", unknown, check=False)
        self.assertIn("RuleNotFound", p.stderr)
        p = self.aws("elbv2", "delete-rule", "--rule-arn", unknown, check=False)
        self.assertIn("RuleNotFound", p.stderr)

    def test_header_names_and_values_match_case_insensitively(self):
        self.create(1, header_rule("X-Intermission-Bypass", "S3cret"))
        self.assertEqual(self.route(headers={"x-intermission-bypass": "s3CRET"})["status"], 503)
        self.assertEqual(self.route(headers={"x-intermission-bypass": "other"})["target_group"], TG_APP)

    def test_an_oidc_default_action_and_its_secret(self):
        listener = self.aws("elbv2", "describe-listeners", "--listener-arns", L_SSO)["Listeners"][0]
        actions = listener["DefaultActions"]
        self.assertEqual([a["Type"] for a in actions], ["authenticate-oidc", "forward"])
        self.assertEqual(actions[0]["AuthenticateOidcConfig"]["ClientId"], "intermission-test")
        self.assertNotIn("ClientSecret", actions[0]["AuthenticateOidcConfig"], "AWS never returns it")
        answer = self.fake._call("POST", "/__fake/route", {"listener": L_SSO})
        self.assertTrue(answer["authenticated"])
        # A copy as read back cannot be created: it lacks the secret.
        p = self.create(1, path_rule("/*"), json.dumps(actions), L_SSO, check=False)
        self.assertIn("InvalidLoadBalancerAction", p.stderr)
        actions[0]["AuthenticateOidcConfig"]["ClientSecret"] = "idp-client-secret"
        self.create(1, path_rule("/*"), json.dumps(actions), L_SSO)
        answer = self.fake._call("POST", "/__fake/route", {"listener": L_SSO})
        self.assertEqual((answer["priority"], answer["authenticated"]), (1, True))

    def test_a_redirect_and_a_sticky_forward_as_default_actions(self):
        # RedirectActionConfig and TargetGroupStickinessConfig, ELBv2 API reference.
        listener = self.aws("elbv2", "describe-listeners", "--listener-arns", L_TO_HTTPS)["Listeners"][0]
        redirect = listener["DefaultActions"]
        self.assertEqual(redirect[0]["RedirectConfig"]["StatusCode"], "HTTP_301")
        answer = self.fake._call("POST", "/__fake/route", {"listener": L_TO_HTTPS})
        self.assertEqual((answer["status"], answer["redirect"]), (301, "HTTPS://#{host}:443/#{path}"))
        self.create(1, path_rule("/a/*"), json.dumps(redirect), L_TO_HTTPS)
        loop = [{"Type": "redirect", "RedirectConfig": {"StatusCode": "HTTP_302", "Query": "x=1"}}]
        p = self.create(2, path_rule("/b/*"), json.dumps(loop), L_TO_HTTPS, check=False)
        self.assertIn("InvalidLoadBalancerAction", p.stderr)

        forward = self.aws("elbv2", "describe-listeners", "--listener-arns", L_BLUE_GREEN)["Listeners"][0]["DefaultActions"]
        self.assertEqual(forward[0]["ForwardConfig"]["TargetGroupStickinessConfig"],
                         {"Enabled": True, "DurationSeconds": 3600})
        self.assertEqual(self.fake._call("POST", "/__fake/route", {"listener": L_BLUE_GREEN})["sticky_seconds"], 3600)
        forward[0]["ForwardConfig"]["TargetGroupStickinessConfig"] = {"Enabled": True}
        p = self.create(1, path_rule("/a/*"), json.dumps(forward), L_BLUE_GREEN, check=False)
        self.assertIn("ValidationError", p.stderr)


class ClassicElbIsAsUnkindAsAws(unittest.TestCase):
    """The Classic ELB, Auto Scaling and EC2 behaviours of aws-behaviour.md §1-4, read back by
    the Debian awscli. Each assertion fails if the fake goes kind again."""

    # Seconds of connection draining and of "Adding": far longer than an awscli run on a busy
    # machine; a test ends a drain early with fake.drained() (in-flight requests done).
    DRAIN = 60.0
    LINK = 60.0

    def setUp(self):
        self.fake = FakeAws()
        self.fake.setup(
            instances={"i-page-a": "eu-west-1a", "i-page-b": "eu-west-1b", "i-page-c": "eu-west-1c"},
            load_balancers=[{"name": "lb", "interval": 3, "healthy_threshold": 2,
                             "draining": self.DRAIN, "zones": ["eu-west-1a", "eu-west-1b"]},
                            {"name": "lb-cross", "zones": ["eu-west-1a", "eu-west-1b"],
                             "cross_zone": True}],
            groups=[{"name": "asg", "instances": ["i-app1"], "load_balancers": ["lb"]}],
            link_delay=self.LINK, require_token=TOKEN)

    def tearDown(self):
        self.fake.stop()

    aws = AwsCliDrivesTheFake.aws

    def wait_for(self, predicate, limit=20):
        deadline = time.monotonic() + limit
        while not predicate():
            self.assertLess(time.monotonic(), deadline, "the fake never got there")
            time.sleep(0.05)

    def health(self, lb, *ids):
        args = ["elb", "describe-instance-health", "--load-balancer-name", lb]
        if ids:
            args += ["--instances", *ids]
        return {s["InstanceId"]: (s["State"], s["ReasonCode"], s["Description"])
                for s in self.aws(*args)["InstanceStates"]}

    def link(self):
        lbs = self.aws("autoscaling", "describe-load-balancers", "--auto-scaling-group-name",
                       "asg")["LoadBalancers"]
        return [l["State"] for l in lbs]

    def test_a_draining_instance_is_reported_in_service_until_the_timeout(self):  # §1
        self.aws("elb", "deregister-instances-from-load-balancer", "--load-balancer-name", "lb",
                 "--instances", "i-app1")
        self.assertEqual(self.health("lb", "i-app1")["i-app1"],
                         ("InService", "N/A", "Instance deregistration currently in progress."))
        self.assertEqual(self.fake.state()["lbs"]["lb"], {"i-app1": "Draining"})
        self.assertEqual(self.fake.state()["zones"]["lb"], {"eu-west-1a": 0, "eu-west-1b": 0},
                         "a draining instance takes no new requests")
        self.fake.drained("lb", "i-app1")
        self.assertEqual(self.health("lb", "i-app1")["i-app1"][0], "OutOfService")
        self.assertEqual(self.health("lb"), {}, "gone once drained")

    def test_the_group_link_is_asynchronous_both_ways(self):  # §2
        self.assertEqual(self.link(), ["InService"])
        self.aws("autoscaling", "detach-load-balancers", "--auto-scaling-group-name", "asg",
                 "--load-balancer-names", "lb")
        self.assertEqual(self.link(), ["Removing"], "while the group's instances drain")
        self.assertEqual(self.health("lb")["i-app1"][2], "Instance deregistration currently in progress.")
        self.fake.drained("lb", "i-app1")
        self.assertEqual(self.link(), ["Removed"])
        self.aws("autoscaling", "attach-load-balancers", "--auto-scaling-group-name", "asg",
                 "--load-balancer-names", "lb")
        self.assertEqual(self.link(), ["Adding"])
        self.assertEqual(self.health("lb")["i-app1"],
                         ("OutOfService", "ELB", "Instance registration is still in progress."))  # §3
        self.fake.setup(link_delay=0)
        self.wait_for(lambda: self.fake.state()["groups"]["asg"] == {"lb": "InService"})
        self.assertEqual(self.link(), ["InService"], "an instance passed its health check")

    def test_a_drain_that_never_finishes_ends_at_its_timeout(self):  # §1, §2
        # No fake.drained here: the in-flight requests never finish, so the timeout ends it.
        self.aws("autoscaling", "detach-load-balancers", "--auto-scaling-group-name", "asg",
                 "--load-balancer-names", "lb")
        self.fake.advance(self.DRAIN - 10)  # ten seconds' margin for awscli's own time
        self.assertEqual(self.health("lb", "i-app1")["i-app1"],
                         ("InService", "N/A", "Instance deregistration currently in progress."),
                         "still draining shortly before the timeout")
        self.assertEqual(self.link(), ["Removing"])
        self.fake.advance(11)
        self.assertEqual(self.health("lb", "i-app1")["i-app1"],
                         ("OutOfService", "Instance", "Instance is not currently registered with the LoadBalancer."))
        self.assertEqual(self.health("lb"), {}, "gone at the timeout")
        self.assertEqual(self.link(), ["Removed"])

    def test_the_link_is_added_until_an_instance_passes_an_elb_health_check(self):  # §2
        self.aws("autoscaling", "detach-load-balancers", "--auto-scaling-group-name", "asg",
                 "--load-balancer-names", "lb")
        self.fake.drained("lb", "i-app1")
        self.assertEqual(self.link(), ["Removed"])
        self.fake.instance("i-app1", booting=True)  # its application is slow to start
        self.aws("autoscaling", "attach-load-balancers", "--auto-scaling-group-name", "asg",
                 "--load-balancer-names", "lb")
        self.assertEqual(self.link(), ["Adding"])
        self.fake.advance(self.LINK + 1)  # the link delay is over, the registration long enough
        self.assertEqual(self.link(), ["Added"], "attached, but no instance has passed a check yet")
        self.assertEqual(self.health("lb", "i-app1")["i-app1"],
                         ("OutOfService", "ELB", "Instance registration is still in progress."))
        self.fake.instance("i-app1", booting=False)
        self.assertEqual(self.link(), ["InService"])
        self.assertEqual(self.health("lb", "i-app1")["i-app1"][0], "InService")

    def test_an_instance_that_fails_its_checks_is_out_of_service_for_reason_instance(self):  # §3
        self.aws("elb", "register-instances-with-load-balancer", "--load-balancer-name", "lb",
                 "--instances", "i-page-a")
        self.assertEqual(self.health("lb", "i-page-a")["i-page-a"][:2], ("OutOfService", "ELB"))
        self.fake.advance(7)  # HealthyThreshold 2 x Interval 3 s
        self.assertEqual(self.health("lb", "i-page-a")["i-page-a"], ("InService", "N/A", "N/A"))
        self.fake.instance("i-page-a", healthy=False)
        state, reason, description = self.health("lb", "i-page-a")["i-page-a"]
        self.assertEqual((state, reason), ("OutOfService", "Instance"),
                         "the instance's own fault, not the load balancer's registration")
        self.assertIn("failed", description)
        self.assertEqual(self.fake.state()["zones"]["lb"], {"eu-west-1a": 1, "eu-west-1b": 0},
                         "only i-app1 takes zone a's requests")
        self.fake.instance("i-page-a", healthy=True)
        self.assertEqual(self.health("lb", "i-page-a")["i-page-a"][0], "InService")

    def test_instances_outside_the_enabled_zones_and_unknown_ones_are_refused(self):  # §4
        p = self.aws("elb", "register-instances-with-load-balancer", "--load-balancer-name", "lb",
                     "--instances", "i-page-c", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("InvalidInstance", p.stderr)
        self.assertIn("Availability Zone", p.stderr)
        p = self.aws("elb", "register-instances-with-load-balancer", "--load-balancer-name", "lb",
                     "--instances", "i-nonesuch", check=False)
        self.assertIn("InvalidInstance", p.stderr)
        self.assertNotIn("i-page-c", self.health("lb"), "nothing of a refused call registered")

    def test_zones_cross_zone_and_what_each_zone_serves(self):  # §4
        lb = self.aws("elb", "describe-load-balancers", "--load-balancer-names", "lb")
        self.assertEqual(lb["LoadBalancerDescriptions"][0]["AvailabilityZones"],
                         ["eu-west-1a", "eu-west-1b"])
        attrs = self.aws("elb", "describe-load-balancer-attributes", "--load-balancer-name", "lb")
        self.assertFalse(attrs["LoadBalancerAttributes"]["CrossZoneLoadBalancing"]["Enabled"],
                         "off by default, as for load balancers made with the API")
        self.assertTrue(attrs["LoadBalancerAttributes"]["ConnectionDraining"]["Enabled"])
        ec2 = self.aws("ec2", "describe-instances", "--instance-ids", "i-page-b", "i-app1")
        zones = {i["InstanceId"]: i["Placement"]["AvailabilityZone"]
                 for r in ec2["Reservations"] for i in r["Instances"]}
        self.assertEqual(zones, {"i-page-b": "eu-west-1b", "i-app1": "eu-west-1a"})
        # The only instance is in 1a: with cross-zone off, 1b's share of the traffic gets 503.
        self.assertEqual(self.fake.state()["zones"]["lb"], {"eu-west-1a": 1, "eu-west-1b": 0})
        for lb_name in ("lb-cross",):
            self.aws("elb", "register-instances-with-load-balancer", "--load-balancer-name",
                     lb_name, "--instances", "i-page-a")
        self.wait_for(lambda: self.fake.state()["zones"]["lb-cross"] == {"eu-west-1a": 1, "eu-west-1b": 1})
        # with cross-zone on, every zone's node reaches every instance
        p = self.aws("ec2", "describe-instances", "--instance-ids", "i-nonesuch", check=False)
        self.assertIn("InvalidInstanceID.NotFound", p.stderr)


if __name__ == "__main__":
    unittest.main()
