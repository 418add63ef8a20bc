"""Shared helpers for the integration tests: a scratch directory with a config, and a way to
run the real `intermission` binary in it."""

import json
import os
import subprocess
import tempfile
import unittest

BIN = os.environ.get("INTERMISSION_BIN", "build/src/app/intermission")
FIXTURES = os.environ.get("INTERMISSION_FIXTURES", "testing/fixtures/aws")

DEFAULT_CONFIG = """\
store:
  path: state.db
routes:
  - deployment_group: "*-*"
    environment: "{1}"
environments:
  prod:
    backend: {type: log, path: steps.log}
  staging:
    backend: {type: log, path: steps.log}
"""


def codedeploy(deployment_id, status, group="prod-web", app="shop", **extra):
    """A bare CodeDeploy trigger message as CodeDeploy sends it today."""
    m = {"region": "eu-west-1", "accountId": "111122223333", "eventTriggerName": "t",
         "applicationName": app, "deploymentId": deployment_id, "deploymentGroupName": group,
         "createTime": None, "completeTime": None, "status": status}
    m.update(extra)
    return m


def race_handle(test, config, cwd, status, processes, timeout):
    """`processes` CLI `handle` runs at once, each with its own CodeDeploy event (d-0, d-1, ...)
    of `status`, sharing one config (and so one store); every one must exit 0."""
    procs = [subprocess.Popen([BIN, "--config", config, "--log-level", "error", "handle"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=cwd, text=True)
             for _ in range(processes)]
    for i, p in enumerate(procs):
        p.stdin.write(json.dumps(codedeploy(f"d-{i}", status)))
    for p in procs:
        p.stdin.close()
    for p in procs:
        p.wait(timeout=timeout)
        test.assertEqual(p.returncode, 0, p.stderr.read())
        p.stdout.close()
        p.stderr.close()


class Workspace(unittest.TestCase):
    """A test case with its own directory and config."""

    config_text = DEFAULT_CONFIG

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-it-")
        self.dir = self._tmp.name
        self.config = os.path.join(self.dir, "config.yaml")
        with open(self.config, "w") as f:
            f.write(self.config_text)

    def tearDown(self):
        self._tmp.cleanup()

    def run_cli(self, *args, stdin=None, check=None, timeout=60):
        """Runs intermission --config <ours> ARGS; returns CompletedProcess (text)."""
        env = dict(os.environ, USER="tester")
        p = subprocess.run([BIN, "--config", self.config, *args], input=stdin,
                           capture_output=True, text=True, cwd=self.dir, env=env,
                           timeout=timeout)
        if check is not None:
            self.assertEqual(p.returncode, check,
                             f"intermission {' '.join(args)}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def handle(self, message, *flags, check=0):
        return self.run_cli("handle", *flags, stdin=json.dumps(message), check=check)

    def status(self):
        p = self.run_cli("status", "--json", check=0)
        return {e["environment"]: e for e in json.loads(p.stdout)["environments"]}

    def steps(self):
        path = os.path.join(self.dir, "steps.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
