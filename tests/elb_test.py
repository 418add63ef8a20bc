"""The Classic ELB + Auto Scaling backend end to end, against the fake AWS: CodeDeploy SNS
events through `intermission handle`, with signatures checked by botocore and a health check
simulated by the fake. The ELB's InService count is recorded by the fake throughout."""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from fake_aws import TOKEN, FakeAws  # noqa: E402
from harness import BIN, codedeploy  # noqa: E402

INTERVAL, THRESHOLD = 0.2, 3  # the page host is InService 0.6 s after registration

CONFIG = """\
store: {path: state.db}
aws:
  region: eu-west-1
  max_attempts: 4
routes:
  - deployment_group: "*-*"
    environment: "{1}"
environments:
  prod:
    backend:
      type: elb-classic
      load_balancer: web-lb
      auto_scaling_group: web-asg
      page_instances: [i-page1]
      min_healthy: 2
      health_timeout: 3s
      poll_interval: 50ms
"""


def sns(message, message_id):
    return {"Records": [{"EventSource": "aws:sns", "Sns": {
        "Type": "Notification", "MessageId": message_id,
        "TopicArn": "arn:aws:sns:eu-west-1:111122223333:deployments",
        "Message": json.dumps(message)}}]}


class ElbFixture(unittest.TestCase):
    """Runs the real binary against the fake AWS; subclasses set the world up."""

    def tearDown(self):
        self.fake.stop()
        self._tmp.cleanup()

    def cli(self, *args, stdin=None, check=0, **env):
        p = subprocess.run([BIN, "--config", self.config, *args], input=stdin,
                           capture_output=True, text=True, cwd=self.dir,
                           env=self.fake.env(**env), timeout=120)
        if check is not None:
            self.assertEqual(p.returncode, check, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def handle(self, message, message_id, *flags, check=0, **env):
        return self.cli("handle", *flags, stdin=json.dumps(sns(message, message_id)),
                        check=check, **env)


class ElbClassic(ElbFixture):
    def setUp(self):
        self.fake = FakeAws()
        self.fake.setup(
            instances={"i-page1": "eu-west-1a"},
            load_balancers=[{"name": "web-lb", "interval": INTERVAL, "healthy_threshold": THRESHOLD}],
            groups=[{"name": "web-asg", "instances": ["i-app1", "i-app2"],
                     "load_balancers": ["web-lb"]}],
            deployments={"d-1": {"creator": "user", "status": "InProgress"},
                         "d-scale": {"creator": "autoscaling", "status": "InProgress"}},
            require_token=TOKEN)
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-elb-")
        self.dir = self._tmp.name
        self.config = os.path.join(self.dir, "config.yaml")
        with open(self.config, "w") as f:
            f.write(CONFIG)

    def in_maintenance(self):
        s = self.fake.state()
        return s["groups"]["web-asg"] == {"web-lb": "Removed"} and \
            s["lbs"]["web-lb"] == {"i-page1": "InService"}

    def serving_app(self):
        s = self.fake.state()
        return (s["groups"]["web-asg"] == {"web-lb": "Added"} or
                s["groups"]["web-asg"] == {"web-lb": "InService"}) and \
            s["lbs"]["web-lb"] == {"i-app1": "InService", "i-app2": "InService"}

    def min_in_service(self):
        series = self.fake.timeline()["web-lb"]
        return min(n for _, n in series), series

    def actions(self):
        return [c["action"] for c in self.fake.calls() if c["status"] == 200]

    def test_deployment_switches_on_and_off_and_never_leaves_zero_in_service(self):
        self.handle(codedeploy("d-1", "CREATED"), "m-1")
        self.assertTrue(self.in_maintenance(), self.fake.state())
        mutations = [a for a in self.actions() if not a.startswith("Describe") and a != "GetDeployment"]
        self.assertEqual(mutations, ["RegisterInstancesWithLoadBalancer", "DetachLoadBalancers"])
        self.handle(codedeploy("d-1", "SUCCEEDED"), "m-2")
        self.assertTrue(self.serving_app(), self.fake.state())
        mutations = [a for a in self.actions() if not a.startswith("Describe") and a != "GetDeployment"]
        self.assertEqual(mutations, ["RegisterInstancesWithLoadBalancer", "DetachLoadBalancers",
                                     "AttachLoadBalancers", "DeregisterInstancesFromLoadBalancer"])
        low, series = self.min_in_service()
        self.assertGreater(low, 0, f"the ELB had no InService instance: {series}")
        # A repeated run does nothing.
        before = len(self.fake.calls())
        self.cli("tick")
        self.assertFalse([c for c in self.fake.calls()[before:]
                          if not c["action"].startswith("Describe") and c["action"] != "GetDeployment"])

    def test_instances_stopped_by_the_deployment_are_not_replaced_by_auto_scaling(self):
        """aws-behaviour.md §5: with ELB health checks, Auto Scaling terminates an instance its
        attached ELB reports failing. A deployment stops the application on each instance; the
        switch has detached the group by then, so none is replaced mid-deployment."""
        self.fake.setup(replace_after=0.3)
        self.handle(codedeploy("d-1", "CREATED"), "m-1")
        self.assertTrue(self.in_maintenance(), self.fake.state())
        for iid in ("i-app1", "i-app2"):  # CodeDeploy's ApplicationStop, one after the other
            self.fake.instance(iid, healthy=False)
            time.sleep(0.6)
            self.fake.instance(iid, healthy=True)
        self.handle(codedeploy("d-1", "SUCCEEDED"), "m-2")
        self.assertTrue(self.serving_app(), self.fake.state())
        state = self.fake.state()
        self.assertEqual(state["replaced"], [])
        self.assertEqual(state["group_instances"]["web-asg"], ["i-app1", "i-app2"])
        # For contrast, the same failure while the group is attached: the instance goes.
        self.fake.instance("i-app1", healthy=False)
        deadline = time.monotonic() + 10
        while not self.fake.state()["replaced"] and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([r["old"] for r in self.fake.state()["replaced"]], ["i-app1"])

    def test_the_old_order_does_leave_zero_in_service(self):
        """For contrast, the 2016 recipe's order (detach first, register second), driven by the
        Debian awscli against the same fake, leaves the ELB with nothing InService."""
        aws = ["/usr/bin/aws", "--endpoint-url", self.fake.url]
        env = self.fake.env()
        subprocess.run(aws + ["autoscaling", "detach-load-balancers", "--auto-scaling-group-name",
                              "web-asg", "--load-balancer-names", "web-lb"],
                       check=True, env=env, capture_output=True)
        subprocess.run(aws + ["elb", "register-instances-with-load-balancer", "--load-balancer-name",
                              "web-lb", "--instances", "i-page1"],
                       check=True, env=env, capture_output=True)
        time.sleep(INTERVAL * THRESHOLD + 0.3)
        low, series = self.min_in_service()
        self.assertEqual(low, 0, series)
        self.assertEqual(series[-1][1], 1, "until the page host passes its health checks")

    def test_autoscaling_created_deployment_changes_nothing(self):
        self.handle(codedeploy("d-scale", "CREATED"), "m-1")
        self.assertTrue(self.serving_app())
        self.assertEqual([a for a in self.actions() if not a.startswith("Describe")],
                         ["GetDeployment"])
        status = json.loads(self.cli("status", "--json").stdout)["environments"][0]
        self.assertFalse(status["on"])
        self.assertEqual(status["deployments"][0]["creator"], "autoscaling")

    def test_throttling_and_5xx_on_every_call_still_complete(self):
        for action in ["GetDeployment", "DescribeInstanceHealth", "DescribeLoadBalancers",
                       "DescribeAutoScalingGroups", "RegisterInstancesWithLoadBalancer",
                       "DetachLoadBalancers", "AttachLoadBalancers",
                       "DeregisterInstancesFromLoadBalancer"]:
            self.fake.fail(action, "Throttling", "500")
        # A third fault on some calls; the client makes 4 attempts (aws.max_attempts).
        self.fake.fail("DetachLoadBalancers", "ResourceContention")
        self.fake.fail("DescribeInstanceHealth", "DependencyThrottle")
        self.fake.fail("DescribeAutoScalingGroups", "503")
        self.fake.fail("AttachLoadBalancers", "drop")
        started = time.monotonic()
        self.handle(codedeploy("d-1", "CREATED"), "m-1")
        self.handle(codedeploy("d-1", "SUCCEEDED"), "m-2")
        self.assertLess(time.monotonic() - started, 60, "bounded")
        self.assertTrue(self.serving_app())
        codes = {c["code"] for c in self.fake.calls() if c["code"]}
        self.assertTrue({"Throttling", "InternalFailure", "ResourceContention",
                         "DependencyThrottle", "ServiceUnavailable"} <= codes, codes)
        low, series = self.min_in_service()
        self.assertGreater(low, 0, series)

    def test_a_switch_interrupted_after_each_step_is_finished_by_the_next_run(self):
        # Each mutating call fails more times than the client retries: the run stops there.
        for action in ["RegisterInstancesWithLoadBalancer", "DetachLoadBalancers"]:
            self.fake.fail(action, "503", "503", "503", "503")
            p = self.handle(codedeploy("d-1", "CREATED"), "m-1", check=1)
            self.assertIn("ServiceUnavailable", p.stderr)
        self.cli("tick")  # the next run (SNS's retry would do the same) finishes the job
        self.assertTrue(self.in_maintenance(), self.fake.state())
        for action in ["AttachLoadBalancers", "DeregisterInstancesFromLoadBalancer"]:
            self.fake.fail(action, "503", "503", "503", "503")
            self.handle(codedeploy("d-1", "SUCCEEDED"), "m-2", check=1)
        self.cli("tick")
        self.assertTrue(self.serving_app(), self.fake.state())
        low, series = self.min_in_service()
        self.assertGreater(low, 0, series)

    def test_a_page_host_that_never_gets_healthy_does_not_detach_the_group(self):
        self.fake.instance("i-page1", healthy=False)
        p = self.handle(codedeploy("d-1", "CREATED"), "m-1", check=1)
        self.assertIn("did not serve every zone", p.stderr)
        self.assertIn("stays attached", p.stderr)
        self.assertEqual(self.fake.state()["groups"]["web-asg"], {"web-lb": "InService"})
        status = json.loads(self.cli("status", "--json").stdout)["environments"][0]
        self.assertTrue(status["on"], "the intent stays in the ledger")
        self.fake.instance("i-page1", healthy=True)
        self.cli("tick")
        self.assertTrue(self.in_maintenance())

    def test_wrong_credentials_name_the_aws_error(self):
        p = self.handle(codedeploy("d-1", "CREATED"), "m-1", check=1,
                        AWS_ACCESS_KEY_ID="AKIDWRONG")
        self.assertIn("InvalidClientTokenId", p.stderr)
        p = self.handle(codedeploy("d-1", "CREATED"), "m-1", check=1,
                        AWS_SECRET_ACCESS_KEY="not-the-secret")
        self.assertIn("SignatureDoesNotMatch", p.stderr)
        self.assertTrue(self.serving_app())

    def test_container_and_instance_metadata_credentials(self):
        """Without keys in the environment, credentials come from the ECS container endpoint,
        else from IMDSv2; both are temporary and need their session token."""
        no_keys = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": ""}
        self.handle(codedeploy("d-1", "CREATED"), "m-1", **no_keys,
                    AWS_CONTAINER_CREDENTIALS_FULL_URI=self.fake.url + "/container-credentials",
                    AWS_CONTAINER_AUTHORIZATION_TOKEN="container-auth-token")
        self.assertTrue(self.in_maintenance())
        self.handle(codedeploy("d-1", "SUCCEEDED"), "m-2", **no_keys,
                    AWS_EC2_METADATA_DISABLED="false",
                    AWS_EC2_METADATA_SERVICE_ENDPOINT=self.fake.url)
        self.assertTrue(self.serving_app())
        p = self.cli("tick", check=3, **no_keys)  # and with none at all: a clear error
        self.assertIn("no AWS credentials", p.stderr)

    def test_dry_run_shows_the_planned_aws_calls_in_order(self):
        p = self.handle(codedeploy("d-1", "CREATED"), "m-1", "--dry-run")
        lines = [l.strip() for l in p.stdout.splitlines() if "would" in l]
        self.assertEqual(lines, [
            "would register page instance(s) i-page1 with the load balancer",
            "would wait until page instance(s) i-page1 serve every zone",
            "would detach the Auto Scaling group from the load balancer"])
        self.assertTrue(self.serving_app(), "a dry run changes nothing")
        self.assertEqual([a for a in self.actions() if not a.startswith("Describe")],
                         ["GetDeployment"])


# The same environment with its page instances per test class and a health timeout that
# outlasts a drain.
ZONES_CONFIG = (CONFIG.replace("page_instances: [i-page1]", "page_instances: [%s]")
                .replace("health_timeout: 3s", "health_timeout: 8s"))

DRAIN = 2.0  # seconds of connection draining


class ElbClassicAsAwsReallyBehaves(ElbFixture):
    """Draining, Availability Zones and a group that cannot give min_healthy
    (aws-behaviour.md §1-4): what users get is read from the fake's per-zone view, which
    counts only instances the load balancer would send the next request to."""

    PAGES = "i-page-a, i-page-b"
    CROSS_ZONE = False

    def setUp(self):
        self.fake = FakeAws()
        self.fake.setup(
            instances={"i-page-a": "eu-west-1a", "i-page-b": "eu-west-1b", "i-app1": "eu-west-1a",
                       "i-app2": "eu-west-1b"},
            load_balancers=[{"name": "web-lb", "interval": INTERVAL, "healthy_threshold": THRESHOLD,
                             "draining": DRAIN, "zones": ["eu-west-1a", "eu-west-1b"],
                             "cross_zone": self.CROSS_ZONE}],
            groups=[{"name": "web-asg", "instances": ["i-app1", "i-app2"],
                     "load_balancers": ["web-lb"]}],
            deployments={f"d-{n}": {"creator": "user", "status": "InProgress"} for n in range(1, 5)},
            require_token=TOKEN)
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-elb-")
        self.dir = self._tmp.name
        self.config = os.path.join(self.dir, "config.yaml")
        with open(self.config, "w") as f:
            f.write(ZONES_CONFIG % self.PAGES)

    def assert_every_zone_always_served(self):
        for zone, series in self.fake.zone_timeline()["web-lb"].items():
            self.assertGreater(min(n for _, n in series), 0,
                               f"zone {zone} had nothing to send requests to: {series}")

    def test_a_deployment_inside_the_draining_window_registers_the_page_again(self):
        self.handle(codedeploy("d-1", "CREATED"), "m-1")
        self.handle(codedeploy("d-1", "SUCCEEDED"), "m-2")
        self.assertEqual(set(self.fake.state()["lbs"]["web-lb"].values()) - {"InService"},
                         {"Draining"}, "the page instances drain after the switch off")
        self.handle(codedeploy("d-2", "CREATED"), "m-3")  # inside the draining window
        self.assertEqual(self.fake.state()["groups"]["web-asg"], {"web-lb": "Removing"})
        time.sleep(DRAIN + 0.3)  # every drain over
        self.assertEqual(self.fake.state()["lbs"]["web-lb"],
                         {p.strip(): "InService" for p in self.PAGES.split(",")})
        self.assert_every_zone_always_served()

    def test_switching_off_inside_the_draining_window_waits_for_the_group_again(self):
        self.handle(codedeploy("d-1", "CREATED"), "m-1")
        # The group's instances are draining ("InService", deregistration in progress) and the
        # link is Removing: none of that may count as the app serving.
        self.handle(codedeploy("d-1", "SUCCEEDED"), "m-2")
        self.assertTrue(self.fake.state()["groups"]["web-asg"]["web-lb"] in ("Added", "InService"))
        time.sleep(DRAIN + 0.3)
        self.assertEqual(self.fake.state()["lbs"]["web-lb"],
                         {"i-app1": "InService", "i-app2": "InService"})
        self.assert_every_zone_always_served()

    def test_crossed_on_and_off_never_leave_a_zone_empty(self):
        for n in range(1, 4):
            self.handle(codedeploy(f"d-{n}", "CREATED"), f"m-{n}a")
            self.handle(codedeploy(f"d-{n}", "SUCCEEDED"), f"m-{n}b")
        time.sleep(DRAIN + 0.3)
        self.assertEqual(self.fake.state()["lbs"]["web-lb"],
                         {"i-app1": "InService", "i-app2": "InService"})
        self.assert_every_zone_always_served()

    def test_status_says_what_each_zone_has(self):
        status = json.loads(self.cli("status", "--json").stdout)["environments"][0]
        observed = status["observed"]["detail"]
        self.assertIn("cross-zone off", observed)
        self.assertIn("eu-west-1a", observed)
        self.assertIn("eu-west-1b", observed)

    def test_min_healthy_the_group_cannot_give_is_bounded_and_said(self):
        self.handle(codedeploy("d-1", "CREATED"), "m-1")
        self.fake.group("web-asg", ["i-app1"])  # scaled in during the deployment
        started = time.monotonic()
        self.handle(codedeploy("d-1", "SUCCEEDED"), "m-2")
        self.assertLess(time.monotonic() - started, 6, "no wait for an instance that cannot come")
        time.sleep(DRAIN + 0.3)
        self.assertEqual(self.fake.state()["lbs"]["web-lb"], {"i-app1": "InService"},
                         "the page is not left sharing the load balancer with the app")
        status = json.loads(self.cli("status", "--json").stdout)["environments"][0]
        self.assertIn("min_healthy 2 bounded to 1", status["observed"]["detail"])


class ElbClassicOneZoneWithoutAPage(ElbClassicAsAwsReallyBehaves):
    """Cross-zone off and no page instance in eu-west-1b: switching on would send that zone's
    share of the users to a 503, so the switch is refused and the app keeps serving."""

    PAGES = "i-page-a"

    def test_the_switch_is_refused_and_says_which_zone_needs_a_page_instance(self):
        p = self.handle(codedeploy("d-1", "CREATED"), "m-1", check=3)
        self.assertIn("eu-west-1b", p.stderr)
        self.assertIn("cross-zone", p.stderr)
        self.assertEqual(self.fake.state()["groups"]["web-asg"], {"web-lb": "InService"})
        self.assertEqual(self.fake.state()["lbs"]["web-lb"],
                         {"i-app1": "InService", "i-app2": "InService"},
                         "nothing registered: no user of zone a gets the page beside the app")
        self.assert_every_zone_always_served()

    # The inherited switching tests cannot switch on here.
    test_a_deployment_inside_the_draining_window_registers_the_page_again = None
    test_switching_off_inside_the_draining_window_waits_for_the_group_again = None
    test_crossed_on_and_off_never_leave_a_zone_empty = None
    test_min_healthy_the_group_cannot_give_is_bounded_and_said = None
    test_status_says_what_each_zone_has = None


class ElbClassicCrossZoneOn(ElbClassicAsAwsReallyBehaves):
    """Cross-zone on: one page instance serves every zone's share."""

    PAGES = "i-page-a"
    CROSS_ZONE = True

    def test_status_says_what_each_zone_has(self):
        status = json.loads(self.cli("status", "--json").stdout)["environments"][0]
        self.assertIn("cross-zone on", status["observed"]["detail"])


if __name__ == "__main__":
    unittest.main()
