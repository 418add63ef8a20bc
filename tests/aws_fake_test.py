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
from fake_aws import TOKEN, FakeAws  # noqa: E402

AWS = "/usr/bin/aws"


class AwsCliDrivesTheFake(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = FakeAws()
        cls.fake.setup(load_balancers=[{"name": "web-lb", "interval": 1.5, "healthy_threshold": 2}],
                       groups=[{"name": "web-asg", "instances": ["i-app1", "i-app2"],
                                "load_balancers": ["web-lb"]}],
                       deployments={"d-1": {"creator": "autoscaling", "status": "Succeeded"}},
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
                                  "--auto-scaling-group-name", "web-asg")["LoadBalancers"], [])
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


if __name__ == "__main__":
    unittest.main()
