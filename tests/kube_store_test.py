"""The Kubernetes store against the fake API server (tests/fake_k8s.py: HTTPS on loopback,
RBAC, resourceVersion and 409s): the one store suite run as a service account that has exactly
the Role the README gives, a missing verb named in the error, and 24 processes racing on one
environment's ConfigMap and Lease."""

import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from fake_k8s import FakeK8s  # noqa: E402
from harness import BIN, race_handle  # noqa: E402

SUITE = os.environ.get("INTERMISSION_ADAPTER_TESTS", "build/src/adapters/intermission_adapters_unit_tests")
PROCESSES = 24
SA_TOKEN = "intermission-sa-token-0123456789"
SA_USER = "system:serviceaccount:ops:intermission"
# The Role of README.md ("Choosing a store"), exactly.
RULES = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create", "update"]},
         {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}]


class KubeStore(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.k8s = FakeK8s(tokens={SA_TOKEN: (SA_USER, ["system:serviceaccounts", "system:serviceaccounts:ops",
                                                        "system:authenticated"])})
        cls.admin("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": "ops"}})
        cls.admin("POST", "/api/v1/namespaces/ops/serviceaccounts",
                  {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "intermission"}})
        cls.admin("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/ops/roles",
                  {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "intermission-store"}, "rules": RULES})
        cls.admin("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/ops/rolebindings",
                  {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "intermission-store"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "intermission-store"},
                   "subjects": [{"kind": "ServiceAccount", "name": "intermission", "namespace": "ops"}]})
        cls.kubeconfig = cls.k8s.kubeconfig(token=SA_TOKEN, name="sa-config")

    @classmethod
    def tearDownClass(cls):
        cls.k8s.stop()

    @classmethod
    def admin(cls, method, path, body=None):
        return cls.k8s.must(method, path, body)

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-kubetest-")
        self.dir = self._tmp.name
        self.config = os.path.join(self.dir, "config.yaml")

    def tearDown(self):
        self._tmp.cleanup()

    def write_config(self, backend, kubeconfig=None, namespace="ops"):
        with open(self.config, "w") as f:
            f.write(f"""\
store: {{type: kubernetes, namespace: {namespace}, kubeconfig: "{kubeconfig or self.kubeconfig}", lease: 5s}}
routes:
  - deployment_group: "*-*"
    environment: "{{1}}"
environments:
  prod:
    backend: {backend}
""")

    def cli(self, *args, stdin=None, check=0):
        p = subprocess.run([BIN, "--config", self.config, *args], input=stdin, capture_output=True, text=True,
                           cwd=self.dir, timeout=120)
        if check is not None:
            self.assertEqual(p.returncode, check, f"{args}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def steps(self):
        path = os.path.join(self.dir, "steps.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line)["on"] for line in f if line.strip()]

    def configmaps(self):
        out = self.admin("GET", "/api/v1/namespaces/ops/configmaps?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dintermission")
        return {i["metadata"]["annotations"]["intermission/environment"]: i for i in out["items"]}

    def test_the_store_suite_passes_as_a_service_account_with_the_documented_role(self):
        env = dict(os.environ, INTERMISSION_TEST_KUBECONFIG=self.kubeconfig, INTERMISSION_TEST_KUBE_NAMESPACE="ops")
        p = subprocess.run([SUITE, "--gtest_filter=Stores/StoreSuite.*"], capture_output=True, text=True,
                           env=env, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout[-6000:] + p.stderr[-2000:])
        self.assertNotIn("SKIPPED", p.stdout)
        ran = set(re.findall(r"\[       OK \] Stores/StoreSuite\.\w+/(\w+)", p.stdout))
        self.assertEqual(ran, {"sqlite", "kubernetes"})
        # Every request the store made was one the Role allows (the fake checked them all).
        forbidden = [r for r in self.k8s.requests() if r.get("status") == 403 and r.get("user") == SA_USER]
        self.assertEqual(forbidden, [])

    def test_a_missing_rbac_verb_is_named(self):
        self.admin("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/ops/roles",
                   {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "read-only"},
                    "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
                              {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get"]}]})
        token = "read-only-token-0123456789"
        self.k8s.tokens[token] = ("system:serviceaccount:ops:reader", ["system:serviceaccounts"])
        self.k8s.write_tokens()
        self.admin("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/ops/rolebindings",
                   {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "reader"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-only"},
                    "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "ops"}]})
        self.write_config("{type: log, path: steps.log}", kubeconfig=self.k8s.kubeconfig(token=token, name="ro"))
        self.assertEqual(json.loads(self.cli("status", "--json").stdout)["environments"][0]["on"], False)
        p = self.cli("on", "prod", check=None)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"system:serviceaccount:ops:reader needs verb '(create|update)' on resource "
                                   r"'(leases|configmaps)' in API group .* in namespace ops")

    def test_24_processes_racing_lose_nothing_and_switch_once(self):
        self.write_config("{type: log, path: steps.log, delay: 300ms}")

        def race(status):
            race_handle(self, self.config, self.dir, status, PROCESSES, timeout=240)

        race("CREATED")
        st = json.loads(self.cli("status", "--json").stdout)["environments"][0]
        self.assertTrue(st["on"])
        self.assertEqual(len(st["active_deployments"]), PROCESSES)
        self.assertEqual(self.steps(), [True], "one switch, by the lease holder")
        race("SUCCEEDED")
        st = json.loads(self.cli("status", "--json").stdout)["environments"][0]
        self.assertFalse(st["on"])
        self.assertEqual(self.steps(), [True, False])
        cm = self.configmaps()["prod"]
        audit = json.loads(cm["data"]["audit"])
        self.assertEqual(len([a for a in audit if a["kind"] == "deployment"]), 2 * PROCESSES)
        lease = self.admin("GET", "/apis/coordination.k8s.io/v1/namespaces/ops/leases/" + cm["metadata"]["name"])
        self.assertNotIn("holderIdentity", lease["spec"], "given back")
        self.assertRegex(lease["spec"]["renewTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


if __name__ == "__main__":
    unittest.main()
