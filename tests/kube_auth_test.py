"""Intermission's own Kubernetes client (src/adapters/kube/client.cpp) authenticating to the
HTTPS fake API server (tests/fake_k8s.py) every way but a kubeconfig token: a client
certificate from files and embedded (-data), the pod's service account (in-cluster, with the
kubelet's projected token rotated between two commands), and exec plugins that print a token or
a client certificate. Each test drives the real binary (`on`, then `status --json`, with the
kubernetes store) and reads from the fake's request log which identity every request came as:
the fake knows a certificate's user only from its CN and grants the store's Role only to the
group in its O, so a request that was not authenticated by that certificate fails. Each wrong
credential gets an error that says what to fix."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from fake_k8s import ADMIN_USER, FakeK8s  # noqa: E402
from harness import BIN  # noqa: E402

NS = "ops"
GROUP = "intermission-operators"  # the only group (cert O) the store's Role is bound to
SA_USER = f"system:serviceaccount:{NS}:intermission"
SA_TOKEN_1 = "sa-token-first-0123456789"
SA_TOKEN_2 = "sa-token-rotated-0123456789"
EXEC_TOKEN = "exec-plugin-token-0123456789"
EXEC_USER = "exec-user"
# The Role of README.md ("Choosing a store").
RULES = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create", "update"]},
         {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}]
REFUSED_401 = r"HTTP 401 Unauthorized.*client certificate"

# An exec plugin (users[].user.exec): prints the ExecCredential its arguments describe and logs
# each run (argv and the KUBERNETES_EXEC_INFO it was given) to $PLUGIN_LOG, one JSON line each.
PLUGIN = textwrap.dedent("""\
    import json, os, sys
    api, kind, a, b = sys.argv[1:5]
    with open(os.environ["PLUGIN_LOG"], "a") as log:
        log.write(json.dumps({"argv": sys.argv[1:], "info": json.loads(os.environ["KUBERNETES_EXEC_INFO"])}) + "\\n")
    if kind == "token":
        status = {"token": a}
    else:
        status = {"clientCertificateData": open(a).read(), "clientKeyData": open(b).read()}
    print(json.dumps({"apiVersion": api, "kind": "ExecCredential", "status": status}))
""")


class KubeAuthBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.k8s = FakeK8s(tokens={SA_TOKEN_1: (SA_USER, []), EXEC_TOKEN: (EXEC_USER, [])}, other_ca=True)
        cls.admin("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        cls.admin("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/roles",
                  {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "intermission-store"}, "rules": RULES})
        cls.admin("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/rolebindings",
                  {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "intermission-store"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "intermission-store"},
                   "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": GROUP},
                                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": EXEC_USER},
                                {"kind": "ServiceAccount", "name": "intermission", "namespace": NS}]})

    @classmethod
    def tearDownClass(cls):
        cls.k8s.stop()

    @classmethod
    def admin(cls, method, path, body=None):
        return cls.k8s.must(method, path, body)

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-kube-auth-")
        self.addCleanup(self._tmp.cleanup)
        self.dir = self._tmp.name
        self.config = os.path.join(self.dir, "config.yaml")
        # One environment (so one ConfigMap and Lease) per test: the tests share the fake.
        self.environment = re.sub(r"[^a-z0-9]+", "-", self._testMethodName[len("test_"):])[:40].strip("-")
        self.k8s.control("DELETE", "requests")

    def write_config(self, kubeconfig=None, namespace=NS):
        store = ["type: kubernetes", "lease: 5s"]
        if namespace:
            store.append(f"namespace: {namespace}")
        if kubeconfig:
            store.append(f'kubeconfig: "{kubeconfig}"')
        with open(self.config, "w") as f:
            f.write(f"store: {{{', '.join(store)}}}\n"
                    f"environments:\n  {self.environment}:\n    backend: {{type: log, path: steps.log}}\n")

    def cli(self, *args, env=None, wrap=()):
        return subprocess.run([*wrap, BIN, "--config", self.config, *args], capture_output=True, text=True,
                              cwd=self.dir, env=env, timeout=60)

    def assert_switches_on(self, **run):
        """`on` then `status --json` succeed and the environment reads as on."""
        p = self.cli("on", self.environment, **run)
        self.assertEqual(p.returncode, 0, f"on:\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        p = self.cli("status", "--json", **run)
        self.assertEqual(p.returncode, 0, f"status:\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        [env] = json.loads(p.stdout)["environments"]
        self.assertTrue(env["on"], env)

    def assert_refused(self, pattern, **run):
        """`status --json` fails, the environment's error matching `pattern`; returns it."""
        p = self.cli("status", "--json", **run)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        [env] = json.loads(p.stdout)["environments"]
        self.assertRegex(env.get("error", ""), pattern)
        return env["error"]

    def api_requests(self):
        return [r for r in self.k8s.requests() if not r["path"].startswith("/__fake/") and r["user"] != ADMIN_USER]

    def assert_only_as(self, user):
        """Every API request of the commands was authenticated as `user` and allowed (404 is the
        first read of the ConfigMap, before it exists)."""
        reqs = self.api_requests()
        self.assertTrue(reqs)
        self.assertEqual({r["user"] for r in reqs}, {user}, reqs)
        self.assertEqual([r for r in reqs if r["status"] >= 300 and r["status"] != 404], [])
        self.assertTrue(any(r["method"] in ("POST", "PUT") and f"/namespaces/{NS}/configmaps/" in r["path"] + "/"
                            for r in reqs), reqs)

    def assert_401_logged(self):
        self.assertIn(401, [r["status"] for r in self.api_requests()])


class ClientCertificate(KubeAuthBase):
    """kubeconfig users[].user client-certificate / client-key, and the -data variants."""

    def test_client_certificate_and_key_files(self):
        cert = self.k8s.client_cert("alice", ["dev", GROUP])
        self.write_config(self.k8s.kubeconfig(cert=cert, name="alice-files"))
        self.assert_switches_on()
        self.assert_only_as("alice")  # the CN; the Role came through the second O

    def test_client_certificate_and_key_data(self):
        cert = self.k8s.client_cert("bob", [GROUP])
        kubeconfig = self.k8s.kubeconfig(cert=cert, embed=True, name="bob-data")
        with open(kubeconfig) as f:
            user = json.load(f)["users"][0]["user"]
        self.assertEqual(sorted(user), ["client-certificate-data", "client-key-data"])
        # Only the kubeconfig holds it: the files it came from are gone.
        os.remove(cert[0])
        os.remove(cert[1])
        self.write_config(kubeconfig)
        self.assert_switches_on()
        self.assert_only_as("bob")

    def test_a_certificate_of_another_ca_gets_401(self):
        cert = self.k8s.client_cert("mallory", [GROUP], ca="other-ca")
        for embed in (False, True):
            with self.subTest(embed=embed):
                self.k8s.control("DELETE", "requests")
                self.write_config(self.k8s.kubeconfig(cert=cert, embed=embed, name="mallory"))
                self.assert_refused(REFUSED_401)
                self.assert_401_logged()

    def test_no_client_certificate_gets_401(self):
        self.write_config(self.k8s.kubeconfig(user={}, name="nobody"))
        self.assert_refused(REFUSED_401)
        self.assert_401_logged()

    def test_a_401_names_the_kubeconfig_and_user_refused(self):
        # The 401 says which kubeconfig, context and user the API server refused
        # (KubeClient::describe(), passed to status_error()).
        cert = self.k8s.client_cert("mallory", [GROUP], ca="other-ca")
        kubeconfig = self.k8s.kubeconfig(cert=cert, name="mallory-named")
        self.write_config(kubeconfig)
        self.assertIn(kubeconfig, self.assert_refused(REFUSED_401))

    def test_a_key_that_is_not_the_certificates_is_named(self):
        # A client key that does not match the certificate (curl: CURLE_SSL_CERTPROBLEM) is
        # named as the user's client-certificate/client-key, not as the cluster's CA.
        alice = self.k8s.client_cert("alice", [GROUP])
        other = self.k8s.client_cert("eve", [GROUP])
        self.write_config(self.k8s.kubeconfig(user={"client-certificate": alice[0], "client-key": other[1]},
                                              name="mismatched"))
        error = self.assert_refused(r"(?i)local SSL certificate")
        self.assertNotIn("certificate-authority", error)
        self.assertRegex(error, r"client[- ](certificate|key)")


class InCluster(KubeAuthBase):
    """The pod's service account: KUBERNETES_SERVICE_HOST/PORT and the directory the kubelet
    mounts. The client reads it only at /var/run/secrets/kubernetes.io/serviceaccount
    (Host::system() in client.cpp: no override), so the binary runs in its own mount namespace
    with the test's directory mounted there (unshare; in a user namespace when not root)."""

    MOUNT = "/run/secrets/kubernetes.io/serviceaccount"  # /var/run is /run

    def setUp(self):
        super().setUp()
        if shutil.which("unshare") is None:
            self.skipTest("no unshare command")
        self.home = os.path.join(self.dir, "home")  # no ~/.kube/config
        os.mkdir(self.home)

    def in_pod(self, sa_dir):
        """How to run a command as in a pod with `sa_dir` mounted: (wrapper argv, env)."""
        unshare = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--mount"]
        script = (f"mount -t tmpfs intermission-test /run && mkdir -p {self.MOUNT} && "
                  f'mount --bind "$0" {self.MOUNT} && exec "$@"')
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        env.update(self.k8s.in_cluster_env(), HOME=self.home)
        probe = subprocess.run([*unshare, "sh", "-c", script, sa_dir, "true"], capture_output=True, text=True)
        if probe.returncode != 0:
            self.skipTest(f"cannot make a mount namespace: {probe.stderr.strip()}")
        return {"wrap": [*unshare, "sh", "-c", script, sa_dir], "env": env}

    def test_service_account_token_rotated_between_two_commands(self):
        sa = self.k8s.projected_service_account_dir(SA_TOKEN_1, NS, name="sa-rotated")
        self.write_config(namespace=None)  # the pod's namespace, from the namespace file
        run = self.in_pod(sa)
        self.assert_switches_on(**run)
        self.assert_only_as(SA_USER)
        # The kubelet refreshes the bound token; the API server no longer takes the old one.
        self.k8s.rotate_token(sa, SA_TOKEN_2)
        self.k8s.tokens[SA_TOKEN_2] = self.k8s.tokens.pop(SA_TOKEN_1)
        self.k8s.write_tokens()
        try:
            self.k8s.control("DELETE", "requests")
            self.assert_switches_on(**run)
            self.assert_only_as(SA_USER)
            # Not the old token: it gets 401 now.
            status, _ = self.k8s.request("GET", f"/api/v1/namespaces/{NS}/configmaps", token=SA_TOKEN_1)
            self.assertEqual(status, 401)
        finally:
            self.k8s.tokens[SA_TOKEN_1] = self.k8s.tokens.pop(SA_TOKEN_2)
            self.k8s.write_tokens()

    def test_a_token_the_server_does_not_take_gets_401(self):
        sa = self.k8s.projected_service_account_dir("revoked-token-0123456789", NS, name="sa-revoked")
        self.write_config()
        self.assert_refused(r"HTTP 401 Unauthorized.*service account token", **self.in_pod(sa))
        self.assert_401_logged()

    def test_the_server_is_checked_against_ca_crt(self):
        sa = self.k8s.projected_service_account_dir(SA_TOKEN_1, NS, name="sa-other-ca")
        shutil.copy(self.k8s.other_ca, os.path.realpath(os.path.join(sa, "ca.crt")))  # not the server's CA
        self.write_config()
        error = self.assert_refused(r"certificate-authority", **self.in_pod(sa))
        self.assertIn("in-cluster service account", error)
        self.assertEqual(self.api_requests(), [], "no request got through")


class ExecPlugin(KubeAuthBase):
    """users[].user.exec: a command printing an ExecCredential (client.authentication.k8s.io)."""

    def setUp(self):
        super().setUp()
        self.plugin = os.path.join(self.dir, "plugin.py")
        with open(self.plugin, "w") as f:
            f.write(PLUGIN)
        self.plugin_log = os.path.join(self.dir, "plugin.log")

    def exec_kubeconfig(self, name, api, kind, a, b="-"):
        version = "client.authentication.k8s.io/" + api
        exec_entry = {"apiVersion": version, "command": "/usr/bin/python3", "args": ["-B", self.plugin, version, kind, a, b],
                      "env": [{"name": "PLUGIN_LOG", "value": self.plugin_log}]}
        if api == "v1":
            exec_entry["interactiveMode"] = "Never"
        return self.k8s.kubeconfig(user={"exec": exec_entry}, name=name)

    def runs(self):
        if not os.path.exists(self.plugin_log):
            return []
        with open(self.plugin_log) as f:
            return [json.loads(line) for line in f]

    def test_exec_plugin_token_v1(self):
        self.write_config(self.exec_kubeconfig("exec-token", "v1", "token", EXEC_TOKEN))
        self.assert_switches_on()
        self.assert_only_as(EXEC_USER)
        runs = self.runs()
        self.assertEqual(len(runs), 2, "once per command")
        self.assertEqual(runs[0]["info"]["apiVersion"], "client.authentication.k8s.io/v1")
        self.assertEqual(runs[0]["info"]["kind"], "ExecCredential")

    def test_exec_plugin_client_certificate_v1beta1(self):
        cert = self.k8s.client_cert("carol", [GROUP])
        self.write_config(self.exec_kubeconfig("exec-cert", "v1beta1", "cert", *cert))
        self.assert_switches_on()
        self.assert_only_as("carol")
        self.assertEqual(self.runs()[0]["info"]["apiVersion"], "client.authentication.k8s.io/v1beta1")

    def test_exec_plugin_certificate_of_another_ca_gets_401_after_one_rerun(self):
        cert = self.k8s.client_cert("mallory", [GROUP], ca="other-ca")
        self.write_config(self.exec_kubeconfig("exec-other-ca", "v1", "cert", *cert))
        self.assert_refused(REFUSED_401)
        # client-go re-runs the plugin once after a 401, for a fresh credential.
        self.assertEqual(len(self.runs()), 2)
        self.assertEqual([r["status"] for r in self.api_requests()], [401, 401])


if __name__ == "__main__":
    unittest.main()
