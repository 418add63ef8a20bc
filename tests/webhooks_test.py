"""`intermission serve` and the native webhooks of the tools Kubernetes users deploy with: the
payloads of testing/fixtures/flux and testing/fixtures/github (from the tools' docs and source),
signed as Flux's generic-hmac provider and GitHub sign them, and the body an Argo CD template
renders with its bearer token, posted to the running daemon, switch an environment on and off
(as the operator API's status shows); wrong secrets get 401, repeats are acted on once, events
about something else are acknowledged and ignored."""

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from harness import wait_until  # noqa: E402
from stack import BIN, free_ports, wait_for_port  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing", "fixtures")
TOKEN = "operator-token-0123456789abcdef0123"
FLUX_SECRET = "flux-secret-0123456789abcdef0123456789"
ARGOCD_TOKEN = "argocd-token-0123456789abcdef012345678"
GITHUB_SECRET = "github-secret-0123456789abcdef01234567"
WEBHOOK_SECRET = "webhook-secret-abcdef0123456789abcd"
README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")


def fixture(path):
    with open(os.path.join(FIXTURES, path), encoding="utf-8") as f:
        return f.read()


def now_rfc3339(shift=0):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + shift))



class NativeWebhooks(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-webhooks-")
        self.dir = self._tmp.name
        self.public, self.admin = free_ports(2)
        config = os.path.join(self.dir, "config.yaml")
        with open(config, "w") as f:
            f.write(f"""store:
  path: state.db
serve:
  listen: 127.0.0.1:{self.public}
  admin_listen: 127.0.0.1:{self.admin}
  tick_interval: 1s
  flux:
    objects: {{Kustomization/apps/webapp: prod}}
  github:
    environments: {{github-pages: staging}}
environments:
  prod: {{backend: {{type: log, path: prod.log}}, failure_grace: 0s}}
  staging: {{backend: {{type: log, path: staging.log}}}}
  production: {{backend: {{type: log, path: production.log}}}}
""")
        env = dict(os.environ, INTERMISSION_OPERATOR_TOKEN=TOKEN, INTERMISSION_FLUX_SECRET=FLUX_SECRET,
                   INTERMISSION_ARGOCD_TOKEN=ARGOCD_TOKEN, INTERMISSION_GITHUB_SECRET=GITHUB_SECRET,
                   INTERMISSION_WEBHOOK_SECRET=WEBHOOK_SECRET)
        self.log = open(os.path.join(self.dir, "serve.log"), "w")
        self.serve = subprocess.Popen([BIN, "--config", config, "serve"], cwd=self.dir, env=env,
                                      stdout=subprocess.DEVNULL, stderr=self.log)
        wait_for_port(self.public)
        wait_for_port(self.admin)

    def tearDown(self):
        if self.serve.poll() is None:
            self.serve.terminate()
            self.serve.wait(timeout=20)
        self.log.close()
        self._tmp.cleanup()

    def post(self, path, body, headers):
        req = urllib.request.Request(f"http://127.0.0.1:{self.public}{path}", data=body.encode(),
                                     method="POST",
                                     headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read().decode())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode())

    def on(self, environment):
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin}/api/environments/{environment}",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read().decode())["environments"][0]["on"]

    # Flux: the notification-controller's forwarder signs json.Marshal(event) and posts those bytes.
    def flux(self, name, secret=FLUX_SECRET, algorithm="sha256", shift=0):
        # The sample's timestamp set to now (the daemon refuses events from another time).
        body = re.sub(r'"timestamp":\s*"[^"]*"', f'"timestamp":"{now_rfc3339(shift)}"',
                      fixture(f"flux/{name}"))
        sig = hmac.new(secret.encode(), body.encode(), getattr(hashlib, algorithm)).hexdigest()
        return self.post("/webhook/flux", body,
                         {"X-Signature": f"{algorithm}={sig}", "Gotk-Component": "kustomize-controller"})

    def github(self, name, event="deployment_status", state=None, delivery=None, secret=GITHUB_SECRET):
        body = fixture(f"github/{name}")
        body = re.sub(r'("deployment_status": \{.*?"created_at": )"[^"]*"', rf'\1"{now_rfc3339()}"', body,
                      count=1, flags=re.S)
        if state:
            body = re.sub(r'"state": "[a-z_]+"', f'"state": "{state}"', body, count=1)
        sig = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
        return self.post("/webhook/github", body,
                         {"X-Hub-Signature-256": f"sha256={sig}", "X-GitHub-Event": event,
                          "X-GitHub-Delivery": delivery or str(uuid.uuid4())})

    def argocd(self, status, token=ARGOCD_TOKEN):
        # What the README's Argo CD template renders (testing/fixtures/argocd).
        body = fixture("argocd/rendered-started.json").replace('"started"', f'"{status}"')
        return self.post("/webhook/argocd", body, {"Authorization": f"Bearer {token}"})

    def test_flux_events_switch_the_named_kustomizations_environment(self):
        status, body = self.flux("event-progressing-changeset.json", secret="wrong-secret-0123456789abcdef012345")
        self.assertEqual(status, 401, body)
        self.assertIn("X-Signature", body["error"])
        self.assertFalse(self.on("prod"))
        status, body = self.flux("event-progressing-changeset.json")
        self.assertEqual((status, body["outcome"], body["environment"]), (200, "recorded", "prod"), body)
        self.assertTrue(wait_until(lambda: self.on("prod")))
        status, body = self.flux("event-health-check-failed.json", algorithm="sha512")
        self.assertEqual((status, body["outcome"]), (200, "recorded"), body)
        self.assertTrue(wait_until(lambda: not self.on("prod")), "failed: off (failure_grace 0s)")
        status, body = self.flux("event-validation-failed.docs.json")
        self.assertEqual((status, body["outcome"]), (200, "recorded"), body)  # another revision's
        self.assertFalse(self.on("prod"))

    def test_flux_success_ends_the_deployment(self):
        self.assertEqual(self.flux("event-progressing-changeset.json")[0], 200)
        self.assertTrue(wait_until(lambda: self.on("prod")))
        status, body = self.flux("event-reconciliation-succeeded.json")
        self.assertEqual((status, body["outcome"]), (200, "recorded"), body)
        self.assertTrue(wait_until(lambda: not self.on("prod")))
        # A replayed start (later, so not the same bytes): an ended revision stays ended.
        status, body = self.flux("event-progressing-changeset.json", shift=5)
        self.assertEqual((status, body["outcome"]), (200, "unchanged"), body)
        self.assertIn("a final status is final", body["note"])
        self.assertFalse(self.on("prod"))

    def test_github_deployment_statuses_switch_the_environment_and_deliveries_count_once(self):
        status, body = self.github("deployment_status-success.octokit.json", state="in_progress",
                                   secret="wrong-secret-0123456789abcdef012345")
        self.assertEqual(status, 401, body)
        self.assertIn("X-Hub-Signature-256", body["error"])
        status, body = self.github("deployment_status-success.octokit.json", state="in_progress",
                                   delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
        self.assertEqual((status, body["outcome"], body["environment"]), (200, "recorded", "production"), body)
        self.assertTrue(wait_until(lambda: self.on("production")))
        status, body = self.github("deployment_status-success.octokit.json", state="in_progress",
                                   delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
        self.assertEqual((status, body["outcome"]), (200, "duplicate"), body)
        status, body = self.github("deployment_status-success.octokit.json", event="ping")
        self.assertEqual((status, body["outcome"]), (200, "ignored"), body)
        status, body = self.github("deployment_status-success.octokit.json", state="inactive")
        self.assertEqual((status, body["outcome"]), (200, "ignored"), body)
        self.assertIn("inactive", body["note"])
        status, body = self.github("deployment_status-success.octokit.json")
        self.assertEqual((status, body["outcome"]), (200, "recorded"), body)
        self.assertTrue(wait_until(lambda: not self.on("production")))
        # The documented gh-pages sample: github-pages renamed to staging by the config.
        status, body = self.github("deployment_status-in_progress-gh-pages.octokit.json")
        self.assertEqual((status, body["environment"]), (200, "staging"), body)
        self.assertTrue(wait_until(lambda: self.on("staging")))

    def test_argocd_notifications_carry_the_token(self):
        status, body = self.argocd("started", token="wrong-token-0123456789abcdef0123456789")
        self.assertEqual(status, 401, body)
        self.assertIn("Authorization", body["error"])
        status, body = self.argocd("started")
        self.assertEqual((status, body["outcome"]), (200, "recorded"), body)
        self.assertTrue(wait_until(lambda: self.on("prod")))
        self.assertEqual(self.argocd("started")[1]["outcome"], "duplicate")
        status, body = self.argocd("succeeded")
        self.assertEqual((status, body["outcome"]), (200, "recorded"), body)
        self.assertTrue(wait_until(lambda: not self.on("prod")))

    def test_the_readmes_pipeline_recipe_signs_as_the_daemon_checks(self):
        with open(README, encoding="utf-8") as f:
            readme = f.read()
        recipe = re.search(r"```sh\n *(# intermission-notify STATUS.*?)```", readme, re.S).group(1)
        recipe = re.sub(r"^ +", "", recipe, flags=re.M).replace(
            "https://deploy-hooks.example.com", f"http://127.0.0.1:{self.public}")
        env = dict(os.environ, INTERMISSION_WEBHOOK_SECRET=WEBHOOK_SECRET, CI_PIPELINE_ID="4711",
                   GITLAB_USER_LOGIN="alice")
        run = lambda status: subprocess.run(["bash", "-c", recipe, "intermission-notify", status],
                                            env=env, capture_output=True, text=True, timeout=30)
        p = run("started")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["outcome"], "recorded", p.stdout)
        self.assertTrue(wait_until(lambda: self.on("prod")))
        p = run("succeeded")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(wait_until(lambda: not self.on("prod")))


if __name__ == "__main__":
    unittest.main()
