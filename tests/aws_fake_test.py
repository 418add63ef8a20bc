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
        cls.fake.setup(load_balancers=[{"name": "web-lb", "interval": 1.5, "healthy_threshold": 2}],
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
        time.sleep(3.1)
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
        self.assertEqual(health["TargetHealthDescriptions"][0]["TargetHealth"]["State"], "unhealthy")

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


if __name__ == "__main__":
    unittest.main()


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
