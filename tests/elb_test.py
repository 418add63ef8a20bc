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
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from fake_aws import TOKEN, FakeAws  # noqa: E402
from harness import BIN, codedeploy, wait_until  # noqa: E402

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
                         "d-scale": {"creator": "autoscaling", "status": "InProgress"},
                         "d-scale-in": {"creator": "autoscalingTermination",
                                        "status": "InProgress"}},
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
        # Scale-out (autoscaling) and scale-in termination hooks (autoscalingTermination), with
        # the default config's skipped creators: neither puts the site into maintenance.
        self.handle(codedeploy("d-scale", "CREATED"), "m-1")
        self.handle(codedeploy("d-scale-in", "CREATED"), "m-2")
        self.assertTrue(self.serving_app())
        self.assertEqual([a for a in self.actions() if not a.startswith("Describe")],
                         ["GetDeployment", "GetDeployment"])
        status = json.loads(self.cli("status", "--json").stdout)["environments"][0]
        self.assertFalse(status["on"])
        self.assertEqual(sorted(d["creator"] for d in status["deployments"]),
                         ["autoscaling", "autoscalingTermination"])

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
# outlasts an instance a test holds back for a moment.
ZONES_CONFIG = (CONFIG.replace("page_instances: [i-page1]", "page_instances: [%s]")
                .replace("health_timeout: 3s", "health_timeout: 8s"))

# Seconds of connection draining: longer than any test, so a drain ends only when a test says
# the instance's in-flight requests are done (fake.drained), and "this call came while that
# instance was draining" is a fact of the fake's call log rather than a race with a timer.
DRAIN = 600.0
HOLD = 1.5  # seconds a test keeps one zone's instance from serving while the switch waits


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
        self.pages = [p.strip() for p in self.PAGES.split(",")]

    def assert_every_zone_always_served(self):
        for zone, series in self.fake.zone_timeline()["web-lb"].items():
            self.assertGreater(min(n for _, n in series), 0,
                               f"zone {zone} had nothing to send requests to: {series}")

    def lb(self):
        return self.fake.state()["lbs"]["web-lb"]

    def end_drains(self):
        """Every draining instance's in-flight requests are done (the timeout is far away)."""
        for iid, state in self.lb().items():
            if state == "Draining":
                self.fake.drained("web-lb", iid)

    def made(self, action):
        """The fake's log of the successful calls of `action`, in order."""
        return [c for c in self.fake.calls() if c["action"] == action and c["status"] == 200]

    @staticmethod
    def instances_in(call):
        params = urllib.parse.parse_qsl(call["body"])
        return sorted(v for k, v in params if k.startswith("Instances.member."))

    def draining_at(self, call):
        """The instances of web-lb that were draining when the fake received `call`."""
        return set(call["draining"].get("web-lb", []))

    def handle_in_background(self, message, message_id):
        """`intermission handle` started, not waited for: the test acts while it waits."""
        path = os.path.join(self.dir, f"{message_id}.json")
        with open(path, "w") as f:
            json.dump(sns(message, message_id), f)
        with open(path) as stdin:
            run = subprocess.Popen([BIN, "--config", self.config, "handle"], stdin=stdin,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   cwd=self.dir, env=self.fake.env())
        self.addCleanup(lambda: run.poll() is None and (run.kill(), run.wait()))
        return run

    def finish(self, run):
        out, err = run.communicate(timeout=60)
        self.assertEqual(run.returncode, 0, f"stdout:\n{out}\nstderr:\n{err}")

    def zone_reached(self, zone, n, after=0.0):
        """When the fake first saw `zone`'s node with `n` or more instances to send to."""
        series = self.fake.zone_timeline()["web-lb"][zone]
        return next((t for t, k in series if t >= after and k >= n), None), series

    def test_the_switch_on_waits_for_every_zones_page_instance(self):
        """Cross-zone off: zone b's node sends only to zone b's instances, so the group may be
        detached only once i-page-b serves, however long after i-page-a it gets there."""
        self.fake.instance("i-page-b", healthy=False)  # its health check fails for now
        run = self.handle_in_background(codedeploy("d-1", "CREATED"), "m-1")
        self.assertTrue(wait_until(lambda: self.lb().get("i-page-a") == "InService", 10), self.lb())
        time.sleep(HOLD)  # ample time for a switch that waits for one zone only to detach
        state = self.fake.state()
        self.assertEqual(state["lbs"]["web-lb"]["i-page-b"], "OutOfService")
        self.assertEqual(state["groups"]["web-asg"], {"web-lb": "InService"},
                         "the group was detached while zone b had no page instance serving")
        self.assertEqual(self.made("DetachLoadBalancers"), [])
        self.assertIsNone(run.poll(), "the switch is still waiting for zone b")
        self.fake.instance("i-page-b", healthy=True)
        self.finish(run)
        self.assertEqual(self.fake.state()["groups"]["web-asg"], {"web-lb": "Removing"})
        [detach] = self.made("DetachLoadBalancers")
        page_b_serving, series = self.zone_reached("eu-west-1b", 2)  # i-app2 and i-page-b
        self.assertIsNotNone(page_b_serving, series)
        self.assertGreaterEqual(detach["t"], page_b_serving,
                                f"detached before zone b's page served: {series}")
        self.assert_every_zone_always_served()

    def test_the_switch_off_waits_for_every_zones_app_instance(self):
        """The same going back: with two app instances in zone a, min_healthy 2 is met while
        zone b's only app instance is still starting; the page instances may be deregistered
        only once it serves, or zone b's users would get the load balancer's 503."""
        self.fake.group("web-asg", ["i-app1", "i-app2", "i-app3"], zone="eu-west-1a")
        self.assertTrue(wait_until(lambda: self.lb().get("i-app3") == "InService", 10), self.lb())
        self.handle(codedeploy("d-1", "CREATED"), "m-1")
        self.fake.instance("i-app2", booting=True)  # its application starts slowly this time
        run = self.handle_in_background(codedeploy("d-1", "SUCCEEDED"), "m-2")
        # Attached again, zone a's instances serve 0.6 s after they are registered.
        self.assertTrue(wait_until(lambda: self.lb().get("i-app1") == "InService" and
                                   self.lb().get("i-app3") == "InService", 10), self.lb())
        time.sleep(HOLD)
        lb = self.lb()
        self.assertEqual(lb["i-app2"], "OutOfService")
        self.assertEqual({p: lb.get(p) for p in self.pages}, {p: "InService" for p in self.pages},
                         "a page instance left while zone b had no app instance serving")
        self.assertEqual(self.made("DeregisterInstancesFromLoadBalancer"), [])
        self.assertIsNone(run.poll(), "the switch is still waiting for zone b")
        self.fake.instance("i-app2", booting=False)
        self.finish(run)
        [attach] = self.made("AttachLoadBalancers")
        [deregister] = self.made("DeregisterInstancesFromLoadBalancer")
        app2_serving, series = self.zone_reached("eu-west-1b", 2, after=attach["t"])
        self.assertIsNotNone(app2_serving, series)
        self.assertGreaterEqual(deregister["t"], app2_serving,
                                f"the pages left before zone b's app served: {series}")
        self.end_drains()
        self.assertEqual(self.lb(), {"i-app1": "InService", "i-app2": "InService",
                                     "i-app3": "InService"})
        self.assert_every_zone_always_served()

    def test_a_deployment_inside_the_draining_window_registers_the_page_again(self):
        self.handle(codedeploy("d-1", "CREATED"), "m-1")
        self.handle(codedeploy("d-1", "SUCCEEDED"), "m-2")
        lb = self.lb()
        self.assertEqual({p: lb[p] for p in self.pages}, {p: "Draining" for p in self.pages},
                         "the page instances drain after the switch off")
        self.handle(codedeploy("d-2", "CREATED"), "m-3")  # inside the draining window
        first, again = self.made("RegisterInstancesWithLoadBalancer")
        self.assertEqual(self.instances_in(again), sorted(self.pages))
        self.assertLessEqual(set(self.pages), self.draining_at(again),
                             "the second deployment's registration came while the pages drained")
        lb = self.lb()
        self.assertEqual({p: lb[p] for p in self.pages}, {p: "InService" for p in self.pages},
                         "registered again and serving, though their first drain never ended")
        self.assertEqual(self.fake.state()["groups"]["web-asg"], {"web-lb": "Removing"})
        self.end_drains()
        self.assertEqual(self.lb(), {p: "InService" for p in self.pages})
        self.assertEqual(self.fake.state()["groups"]["web-asg"], {"web-lb": "Removed"})
        self.assert_every_zone_always_served()

    def test_switching_off_inside_the_draining_window_waits_for_the_group_again(self):
        self.handle(codedeploy("d-1", "CREATED"), "m-1")
        # The group's instances are draining ("InService", deregistration in progress) and the
        # link is Removing: none of that may count as the app serving.
        self.assertEqual(self.fake.state()["groups"]["web-asg"], {"web-lb": "Removing"})
        self.handle(codedeploy("d-1", "SUCCEEDED"), "m-2")
        [attach] = self.made("AttachLoadBalancers")
        self.assertLessEqual({"i-app1", "i-app2"}, self.draining_at(attach),
                             "the switch off came while the group's instances drained")
        [deregister] = self.made("DeregisterInstancesFromLoadBalancer")
        self.assertFalse({"i-app1", "i-app2"} & self.draining_at(deregister))
        self.assertGreaterEqual(deregister["t"] - attach["t"], INTERVAL * THRESHOLD,
                                "the pages left only once the group's instances, registered "
                                "again, had passed their health checks")
        self.assertIn(self.fake.state()["groups"]["web-asg"]["web-lb"], ("Added", "InService"))
        self.end_drains()
        self.assertEqual(self.lb(), {"i-app1": "InService", "i-app2": "InService"})
        self.assert_every_zone_always_served()

    def test_crossed_on_and_off_never_leave_a_zone_empty(self):
        for n in range(1, 4):
            self.handle(codedeploy(f"d-{n}", "CREATED"), f"m-{n}a")
            self.handle(codedeploy(f"d-{n}", "SUCCEEDED"), f"m-{n}b")
        # Every switch after the first came inside the previous one's draining window.
        registers = self.made("RegisterInstancesWithLoadBalancer")
        attaches = self.made("AttachLoadBalancers")
        self.assertEqual((len(registers), len(attaches)), (3, 3))
        for call in registers[1:]:
            self.assertLessEqual(set(self.pages), self.draining_at(call))
        for call in attaches:
            self.assertLessEqual({"i-app1", "i-app2"}, self.draining_at(call))
        self.end_drains()
        self.assertEqual(self.lb(), {"i-app1": "InService", "i-app2": "InService"})
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
        # Exit 0: a wait for a second instance that cannot come would end in the health timeout.
        self.handle(codedeploy("d-1", "SUCCEEDED"), "m-2")
        self.end_drains()
        self.assertEqual(self.lb(), {"i-app1": "InService"},
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

    def test_status_says_what_each_zone_has(self):
        """Before any deployment, status names the zone that has no page instance, in text and
        in JSON, and only that zone."""
        missing = "zone eu-west-1b has no page instance"
        text = self.cli("status").stdout
        self.assertIn(missing, text)
        self.assertNotIn("zone eu-west-1a has no page instance", text)
        detail = json.loads(self.cli("status", "--json").stdout)["environments"][0]["observed"]["detail"]
        self.assertIn("cross-zone off", detail)
        self.assertIn(missing, detail)
        self.assertIn("maintenance cannot switch on", detail)
        self.assertNotIn("zone eu-west-1a has no page instance", detail)

    # The inherited switching tests cannot switch on here.
    test_the_switch_on_waits_for_every_zones_page_instance = None
    test_the_switch_off_waits_for_every_zones_app_instance = None
    test_a_deployment_inside_the_draining_window_registers_the_page_again = None
    test_switching_off_inside_the_draining_window_waits_for_the_group_again = None
    test_crossed_on_and_off_never_leave_a_zone_empty = None
    test_min_healthy_the_group_cannot_give_is_bounded_and_said = None


class ElbClassicCrossZoneOn(ElbClassicAsAwsReallyBehaves):
    """Cross-zone on: one page instance serves every zone's share."""

    PAGES = "i-page-a"
    CROSS_ZONE = True

    # Every zone's node reaches every instance: no zone waits for its own.
    test_the_switch_on_waits_for_every_zones_page_instance = None
    test_the_switch_off_waits_for_every_zones_app_instance = None

    def test_status_says_what_each_zone_has(self):
        status = json.loads(self.cli("status", "--json").stdout)["environments"][0]
        self.assertIn("cross-zone on", status["observed"]["detail"])


if __name__ == "__main__":
    unittest.main()
