"""End to end with a real HAProxy (Debian 2.6) on loopback: CodeDeploy events fed to
`intermission handle` switch every request to the maintenance page and back, with zero
failed requests, while a bounded traffic generator runs throughout."""

import json
import os
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import codedeploy  # noqa: E402
from stack import BYPASS_SECRET, PAGE_MARKER, Stack, Traffic  # noqa: E402


def sns(message, message_id):
    """The Lambda event SNS would deliver for a CodeDeploy trigger message."""
    return {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": {
        "Type": "Notification", "MessageId": message_id,
        "TopicArn": "arn:aws:sns:eu-west-1:111122223333:deployments",
        "Subject": f"{message['status']}: AWS CodeDeploy {message['deploymentId']}",
        "Message": json.dumps(message)}}]}


class HaproxyEndToEnd(unittest.TestCase):
    def setUp(self):
        self.stack = Stack().start()
        self.traffic = Traffic(self.stack.port, clients=4)
        self.traffic.start()
        time.sleep(0.5)

    def tearDown(self):
        self.traffic.stop()
        self.stack.stop()

    def switch(self, message, message_id):
        self.stack.handle(sns(message, message_id))
        return time.monotonic()

    def wait(self, seconds):
        time.sleep(seconds)
        return time.monotonic()

    def assert_only(self, kind, since, until):
        counts = self.traffic.kinds(since, until)
        # Some requests in the window (not a rate: the machine may be slow), and only of one kind.
        self.assertGreater(counts[kind], 2, counts)
        others = {k: v for k, v in counts.items() if k != kind and v}
        self.assertEqual(others, {}, f"expected only {kind} between the switches: {counts}")

    def assert_no_failures(self, allow_stale_retries=False):
        total = self.traffic.kinds()
        self.assertEqual(total["error"], 0, self.traffic.errors[:5])
        self.assertEqual(total["other"], 0, self.traffic.errors[:5])
        if not allow_stale_retries:
            # A switch never closes a connection: not even a browser-style retry was needed.
            self.assertEqual(self.traffic.stale_retries, 0)

    def test_created_then_succeeded_switches_with_zero_failed_requests(self):
        before = self.wait(0.5)
        self.assert_only("app", None, before)
        on = self.switch(codedeploy("d-1", "CREATED"), "m-1")
        after_on = self.wait(1.5)
        self.assert_only("page", on, after_on)
        off = self.switch(codedeploy("d-1", "SUCCEEDED"), "m-2")
        after_off = self.wait(1.5)
        self.assert_only("app", off, after_off)
        self.traffic.stop()
        self.assert_no_failures()
        # The page came with its headers, and the ledger agrees.
        status = json.loads(self.stack.cli("status", "--json").stdout)["environments"][0]
        self.assertFalse(status["on"])
        self.assertFalse(status["observed"]["on"])
        self.assertIn("live entry absent", status["observed"]["detail"])

    def test_overlapping_deployments_lift_only_after_both_end(self):
        self.switch(codedeploy("d-1", "CREATED"), "a-1")
        self.switch(codedeploy("d-2", "CREATED"), "b-1")
        first_done = self.switch(codedeploy("d-1", "SUCCEEDED"), "a-2")
        t = self.wait(1.0)
        self.assert_only("page", first_done, t)
        last_done = self.switch(codedeploy("d-2", "SUCCEEDED"), "b-2")
        t = self.wait(1.0)
        self.assert_only("app", last_done, t)
        self.traffic.stop()
        self.assert_no_failures()

    def test_reload_during_maintenance_keeps_maintenance(self):
        self.switch(codedeploy("d-1", "CREATED"), "m-1")
        with open(self.stack.map) as f:
            self.assertIn("prod on", f.read(), "the map file on disk has the entry")
        self.stack.reload_haproxy()
        reloaded = time.monotonic()
        t = self.wait(1.0)
        self.assert_only("page", reloaded, t)
        self.traffic.stop()
        # The old process closes idle keep-alive connections as it leaves; clients retry those
        # requests on a new connection as browsers do. Nothing else may fail.
        self.assert_no_failures(allow_stale_retries=True)

    def test_bypass_by_cookie_header_and_cidr_sees_the_app(self):
        self.switch(codedeploy("d-1", "CREATED"), "m-1")
        url = f"http://127.0.0.1:{self.stack.port}/"
        with self.assertRaises(urllib.error.HTTPError) as plain:
            urllib.request.urlopen(url, timeout=5)
        self.assertEqual(plain.exception.code, 503)
        self.assertIn(PAGE_MARKER, plain.exception.read().decode())
        for headers in ({"Cookie": f"intermission_bypass={BYPASS_SECRET}"},
                        {"X-Intermission-Bypass": BYPASS_SECRET}):
            with self.subTest(headers=headers):
                r = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5)
                self.assertEqual(r.status, 200)
        with self.assertRaises(urllib.error.HTTPError):
            urllib.request.urlopen(urllib.request.Request(
                url, headers={"Cookie": "intermission_bypass=wrong"}), timeout=5)
        # A client from the bypass CIDR (127.0.0.2/32) sees the app throughout.
        office = Traffic(self.stack.port, clients=1, source="127.0.0.2", max_seconds=5)
        office.start()
        time.sleep(1.0)
        office.stop()
        counts = office.kinds()
        self.assertGreater(counts["app"], 2, counts)
        self.assertEqual(counts["app"], sum(counts.values()), counts)

    def test_failure_and_rollback_show_the_page_once(self):
        on = self.switch(codedeploy("d-main", "CREATED"), "1")
        self.switch(codedeploy("d-main", "FAILED"), "2")
        self.switch(codedeploy("d-rb", "CREATED", rollbackInformation=json.dumps(
            {"RollbackTriggeringDeploymentId": "d-main"})), "3")
        self.switch(codedeploy("d-rb", "IN_PROGRESS"), "4")
        t = self.wait(0.5)
        self.assert_only("page", on, t)
        off = self.switch(codedeploy("d-rb", "SUCCEEDED"), "5")
        t = self.wait(1.0)
        self.assert_only("app", off, t)
        self.traffic.stop()
        self.assert_no_failures()
        status = json.loads(self.stack.cli("status", "--json").stdout)["environments"][0]
        switched = [a for a in status["recent"] if a["kind"] == "switched"]
        self.assertEqual(len(switched), 2, switched)


if __name__ == "__main__":
    unittest.main()
