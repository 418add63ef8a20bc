"""The fake Kubernetes API server (testing/fake_k8s) driven by two clients that are not ours:
kubectl (Debian's kubernetes-client, or whichever kubectl is installed) and the official Python
client (Debian's python3-kubernetes), for every call intermission makes; and checks that the
fake is as unkind as a real API server (stale writes, lagging endpoints, RBAC, limits, names).
Run by ctest; each class starts one fake."""

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_k8s  # noqa: E402

try:
    from kubernetes import client as kc
    from kubernetes.client.rest import ApiException
except ImportError:  # python3-kubernetes missing: scripts/install-deps.sh installs it
    kc = None

# tests/CMakeLists.txt sets this: under ctest a missing client fails its class instead of
# skipping it, since scripts/install-deps.sh installs both (a skip there would read as a pass).
REQUIRE_CLIENTS = os.environ.get("INTERMISSION_REQUIRE_KUBE_CLIENTS") == "1"


def require(available, what):
    """Skips the calling class's tests when `what` is missing, or fails them under ctest."""
    if available:
        return
    message = f"{what} is not installed (scripts/install-deps.sh installs it)"
    if REQUIRE_CLIENTS:
        raise AssertionError(message + "; INTERMISSION_REQUIRE_KUBE_CLIENTS=1 (ctest) requires it")
    raise unittest.SkipTest(message)

SA_USER = "system:serviceaccount:ops:intermission"
SA_TOKEN = "sa-token-intermission"

MANIFEST = """
apiVersion: v1
kind: Namespace
metadata: {name: web}
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: web}
spec:
  selector: {app: a}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec:
      containers:
      - {name: app, image: registry.example/app:1, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: web}
data: {mode: normal}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: web}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: app, port: 80}]}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: app, namespace: web}
spec:
  rules:
  - host: app.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: app, port: {number: 80}}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: intermission, namespace: web}
rules:
- {apiGroups: [""], resources: [services], verbs: [get, patch, update], resourceNames: [app]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: intermission, namespace: web}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: intermission}
subjects: [{kind: ServiceAccount, name: intermission, namespace: ops}]
"""


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing", "fake_k8s"))
import kube_model  # noqa: E402


class KubeModelTest(unittest.TestCase):
    """The fake's pure rules against the RFCs' own examples."""

    def test_merge_patch_rfc7386_appendix_a(self):
        cases = [({"a": "b"}, {"a": "c"}, {"a": "c"}), ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
                 ({"a": "b"}, {"a": None}, {}), ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
                 ({"a": ["b"]}, {"a": "c"}, {"a": "c"}), ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
                 ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
                 ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}), (["a", "b"], ["c", "d"], ["c", "d"]),
                 ({"a": "b"}, ["c"], ["c"]), ({"a": "foo"}, None, None), ({"a": "foo"}, "bar", "bar"),
                 ({"e": None}, {"a": 1}, {"e": None, "a": 1}), ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
                 ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}})]
        for target, patch, result in cases:
            self.assertEqual(kube_model.merge_patch(target, patch), result, (target, patch))

    def test_json_patch_rfc6902(self):
        doc = {"foo": ["bar", "baz"], "q": {"x": 1}}
        self.assertEqual(kube_model.json_patch(doc, [{"op": "add", "path": "/foo/1", "value": "qux"}])["foo"],
                         ["bar", "qux", "baz"])
        self.assertEqual(kube_model.json_patch(doc, [{"op": "remove", "path": "/foo/0"}])["foo"], ["baz"])
        self.assertEqual(kube_model.json_patch(doc, [{"op": "move", "from": "/q/x", "path": "/y"}]),
                         {"foo": ["bar", "baz"], "q": {}, "y": 1})
        self.assertEqual(kube_model.json_patch({"a~b": 1, "c/d": 2}, [{"op": "test", "path": "/a~0b", "value": 1},
                                                                      {"op": "remove", "path": "/c~1d"}]), {"a~b": 1})
        for bad in ([{"op": "test", "path": "/q/x", "value": 2}], [{"op": "remove", "path": "/nope"}],
                    [{"op": "replace", "path": "/nope", "value": 1}], [{"op": "add", "path": "/foo/9", "value": 1}]):
            with self.assertRaises(kube_model.PatchError):
                kube_model.json_patch(doc, bad)
        self.assertEqual(doc, {"foo": ["bar", "baz"], "q": {"x": 1}})  # all or nothing, input untouched

    def test_label_selectors(self):
        sel = kube_model.parse_label_selector
        labels = {"app": "a", "tier": "web"}
        for text, want in (("app=a", True), ("app==a", True), ("app!=a", False), ("app in (a, b)", True),
                           ("app notin (a)", False), ("tier", True), ("!tier", False), ("!zone", True),
                           ("app=a,tier in (db)", False), ("", True), ("zone!=x", True)):
            self.assertEqual(sel(text)(labels), want, text)

    def test_strategic_merge_directives(self):
        cur = {"spec": {"containers": [{"name": "a", "image": "1", "env": [{"name": "X", "value": "1"}]},
                                       {"name": "b", "image": "1"}], "finalizers": ["f1", "f2"]}}
        out = kube_model.strategic_merge_patch(cur, {"spec": {
            "$setElementOrder/containers": [{"name": "a"}],
            "containers": [{"name": "a", "image": "2"}, {"name": "b", "$patch": "delete"}],
            "$deleteFromPrimitiveList/finalizers": ["f1"]}})
        self.assertEqual(out, {"spec": {"containers": [{"name": "a", "image": "2", "env": [{"name": "X", "value": "1"}]}],
                                        "finalizers": ["f2"]}})


class KubectlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require(fake_k8s.kubectl(), "kubectl")
        cls.fake = fake_k8s.FakeK8s(tokens={SA_TOKEN: (SA_USER, [])}, endpoints=0.3, podReady=0.3,
                                    deployment=0.1, termination=0.3)
        cls.admin = cls.fake.kubeconfig()
        cls.sa = cls.fake.kubeconfig(token=SA_TOKEN, name="sa")
        cls.tmp = tempfile.TemporaryDirectory(prefix="intermission-kube-")
        cls.manifest = os.path.join(cls.tmp.name, "all.yaml")
        with open(cls.manifest, "w") as f:
            f.write(MANIFEST)
        cls.applied = cls.kubectl(cls, "apply", "-f", cls.manifest)

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        cls.tmp.cleanup()

    def kubectl(self, *args, config=None, stdin=None):
        # Discovery is cached per server under --cache-dir: ours, not the user's ~/.kube.
        r = subprocess.run(["kubectl", "--kubeconfig", config or self.admin, "--cache-dir",
                            os.path.join(self.tmp.name, "cache"), *args], input=stdin,
                           capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr

    def get(self, path):
        status, body = self.fake.request("GET", path)
        return body if status == 200 else None

    def test_apply_creates_then_leaves_unchanged(self):
        rc, out, err = self.applied
        self.assertEqual(rc, 0, err)
        for line in ("namespace/web created", "service/app created", "deployment.apps/app created",
                     "httproute.gateway.networking.k8s.io/app created", "ingress.networking.k8s.io/app created",
                     "rolebinding.rbac.authorization.k8s.io/intermission created"):
            self.assertIn(line, out)
        rc, out, err = self.kubectl("apply", "-f", self.manifest)
        self.assertEqual(rc, 0, err)
        self.assertIn("service/app unchanged", out)
        self.assertIn("httproute.gateway.networking.k8s.io/app unchanged", out)
        svc = self.get("/api/v1/namespaces/web/services/app")
        self.assertIn("kubectl.kubernetes.io/last-applied-configuration", svc["metadata"]["annotations"])
        # The Deployment controller's status is what kubectl's rollout check (a watch) reads.
        rc, out, err = self.kubectl("rollout", "status", "deployment/app", "-n", "web", "--timeout=20s")
        self.assertEqual(rc, 0, err)
        self.assertIn('deployment "app" successfully rolled out', out)

    def test_apply_changes_through_strategic_merge_patch(self):
        dep = """apiVersion: apps/v1
kind: Deployment
metadata: {name: smp, namespace: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: smp}}
  template:
    metadata: {labels: {app: smp}}
    spec:
      containers:
      - name: app
        image: one
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
        ports: [{name: http, containerPort: 8080}, {name: admin, containerPort: 9090}]
      - {name: side, image: side}
"""
        rc, out, err = self.kubectl("apply", "-f", "-", stdin=dep)
        self.assertEqual(rc, 0, err)
        changed = dep.replace("image: one", "image: two").replace(', {name: B, value: "2"}', "") \
            .replace(", {name: admin, containerPort: 9090}", "").replace("      - {name: side, image: side}\n", "")
        rc, out, err = self.kubectl("apply", "-f", "-", stdin=changed)
        self.assertEqual(rc, 0, err)
        self.assertIn("deployment.apps/smp configured", out)
        containers = self.get("/apis/apps/v1/namespaces/web/deployments/smp")["spec"]["template"]["spec"]["containers"]
        self.assertEqual(containers, [{"name": "app", "image": "two", "env": [{"name": "A", "value": "1"}],
                                       "ports": [{"name": "http", "containerPort": 8080}]}])

    def test_server_dry_run_validates_and_stores_nothing(self):
        before = self.get("/api/v1/namespaces/web/configmaps/settings")["data"]
        changed = MANIFEST.replace("mode: normal", "mode: changed").replace("name: app, namespace: web}\nspec:\n  selector",
                                                                            "name: App, namespace: web}\nspec:\n  selector", 1)
        rc, out, err = self.kubectl("apply", "--dry-run=server", "-f", "-", stdin=changed)
        self.assertNotEqual(rc, 0)
        # The invalid Service name is refused with the API server's words, the rest is a dry run.
        self.assertIn('Service "App" is invalid: metadata.name: Invalid value: "App": a DNS-1035 label', err)
        self.assertIn("configmap/settings configured (server dry run)", out)
        self.assertEqual(self.get("/api/v1/namespaces/web/configmaps/settings")["data"], before)
        self.assertIsNone(self.get("/api/v1/namespaces/web/services/App"))

    def test_patch_merge_and_json_with_test(self):
        rc, out, err = self.kubectl("patch", "configmap", "settings", "-n", "web", "--type", "merge",
                                    "-p", '{"data":{"extra":"1"}}')
        self.assertEqual(rc, 0, err)
        rc, out, err = self.kubectl("patch", "configmap", "settings", "-n", "web", "--type", "json",
                                    "-p", '[{"op":"test","path":"/data/extra","value":"2"},'
                                          '{"op":"replace","path":"/data/extra","value":"3"}]')
        self.assertNotEqual(rc, 0)
        self.assertIn("The request is invalid", err)  # the server says no more than that
        self.assertEqual(self.get("/api/v1/namespaces/web/configmaps/settings")["data"]["extra"], "1")

    def test_unknown_fields_are_refused_or_dropped(self):
        # kubectl 1.27+ asks for fieldValidation=Strict (refused); older ones get the server's
        # default, Warn (dropped, with a warning kubectl prints).
        rc, out, err = self.kubectl("apply", "-f", "-", stdin="apiVersion: v1\nkind: ConfigMap\n"
                                    "metadata: {name: typo, namespace: web, lables: {a: b}}\ndata: {a: b}\n")
        self.assertTrue('strict decoding error: unknown field "metadata.lables"' in err or
                        'unknown field "metadata.lables"' in err, err)
        cm = self.get("/api/v1/namespaces/web/configmaps/typo")
        self.assertTrue(cm is None or "lables" not in cm["metadata"], cm)

    def test_get_and_delete(self):
        rc, _, err = self.kubectl("create", "configmap", "doomed", "-n", "web", "--from-literal=a=b")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.kubectl("get", "cm", "-n", "web", "-l", "!nothing", "-o", "json")
        self.assertEqual(rc, 0, err)
        self.assertIn("doomed", [i["metadata"]["name"] for i in json.loads(out)["items"]])
        rc, out, err = self.kubectl("delete", "configmap", "doomed", "-n", "web")
        self.assertEqual(rc, 0, err)
        self.assertIn('configmap "doomed" deleted', out)
        rc, out, err = self.kubectl("get", "configmap", "doomed", "-n", "web")
        self.assertEqual(rc, 1)
        self.assertIn('Error from server (NotFound): configmaps "doomed" not found', err)

    def test_delete_pod_waits_for_graceful_termination(self):
        # kubectl delete waits (with a watch on the pod's name) until the pod is really gone.
        self.fake.add_pod("web", "victim", {"app": "victim"}, ready=True)
        t0 = time.monotonic()
        rc, out, err = self.kubectl("delete", "pod", "victim", "-n", "web")
        self.assertEqual(rc, 0, err)
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)  # termination delay 0.3 s
        self.assertIsNone(self.get("/api/v1/namespaces/web/pods/victim"))
        watches = lambda: [r for r in self.fake.requests() if "watch=" in r["path"] and "/pods" in r["path"]]  # noqa: E731
        self.assertEqual(wait_for(watches, timeout=3)[0]["status"], 200)  # the fake saw it hang up

    def test_kustomize_then_apply(self):
        d = os.path.join(self.tmp.name, "kust")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "cm.yaml"), "w") as f:
            f.write("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: page}\ndata: {a: b}\n")
        with open(os.path.join(d, "kustomization.yaml"), "w") as f:
            f.write("namespace: web\ncommonLabels: {app.kubernetes.io/name: intermission}\nresources: [cm.yaml]\n")
        rc, out, err = self.kubectl("kustomize", d)
        self.assertEqual(rc, 0, err)
        self.assertIn("namespace: web", out)
        rc, out2, err = self.kubectl("apply", "-f", "-", stdin=out)
        self.assertEqual(rc, 0, err)
        cm = self.get("/api/v1/namespaces/web/configmaps/page")
        self.assertEqual(cm["metadata"]["labels"], {"app.kubernetes.io/name": "intermission"})

    def test_rbac_with_service_account_token(self):
        rc, out, _ = self.kubectl("auth", "can-i", "patch", "services/app", "-n", "web", config=self.sa)
        self.assertEqual(out.strip(), "yes")
        rc, out, _ = self.kubectl("auth", "can-i", "patch", "services/other", "-n", "web", config=self.sa)
        self.assertEqual(out.strip(), "no")
        rc, out, err = self.kubectl("auth", "can-i", "--list", "-n", "web", config=self.sa)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"endpointslices\.discovery\.k8s\.io\s+\[\]\s+\[\]\s+\[list\]")
        self.assertRegex(out, r"services\s+\[\]\s+\[app\]\s+\[get patch update\]")
        rc, out, err = self.kubectl("delete", "service", "app", "-n", "web", config=self.sa)
        self.assertEqual(rc, 1)
        self.assertIn('Error from server (Forbidden): services "app" is forbidden: User '
                      '"system:serviceaccount:ops:intermission" cannot delete resource "services" in API group "" '
                      'in the namespace "web"', err)

    def test_impersonation_checks_a_service_accounts_rights(self):
        # kubectl --as: the admin may impersonate, the service account's RBAC then applies.
        as_sa = ("--as", SA_USER)
        rc, out, _ = self.kubectl("auth", "can-i", "list", "endpointslices.discovery.k8s.io", "-n", "web", *as_sa)
        self.assertEqual(out.strip(), "yes")
        rc, out, err = self.kubectl("get", "configmaps", "-n", "web", *as_sa)
        self.assertEqual(rc, 1)
        self.assertIn(f'configmaps is forbidden: User "{SA_USER}" cannot list resource "configmaps"', err)
        rc, out, err = self.kubectl("get", "services", "-n", "web", "--as", "bob", config=self.sa)
        self.assertIn(f'users "bob" is forbidden: User "{SA_USER}" cannot impersonate resource "users" in API '
                      'group "" at the cluster scope', err)

    def create(self, obj):
        rc, out, err = self.kubectl("create", "-f", "-", stdin=json.dumps(obj))
        self.assertEqual(rc, 0, err)
        return out

    def get_json(self, *args):
        rc, out, err = self.kubectl("get", *args, "-o", "json")
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def replace(self, obj):
        """kubectl replace of `obj` (a PUT carrying its metadata.resourceVersion, as
        intermission's every write): (rc, stdout, stderr)."""
        return self.kubectl("replace", "-f", "-", stdin=json.dumps(obj))

    def puts(self, path):
        return [r["status"] for r in self.fake.requests() if r["method"] == "PUT" and r["path"].startswith(path)]

    def test_replace_with_a_stale_resource_version_conflicts(self):
        self.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "rep", "namespace": "web"},
                     "spec": {"selector": {"app": "rep"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        stale = self.get_json("service", "rep", "-n", "web")
        # Another writer (a deployment tool) changes the Service after we read it.
        rc, _, err = self.kubectl("patch", "service", "rep", "-n", "web", "--type", "merge",
                                  "-p", '{"metadata":{"labels":{"team":"shop"}}}')
        self.assertEqual(rc, 0, err)
        stale["spec"]["selector"] = {"app": "page"}
        rc, out, err = self.replace(stale)
        self.assertEqual(rc, 1, out)
        self.assertIn('Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled '
                      'on services "rep": the object has been modified; please apply your changes to the latest '
                      'version and try again', err)
        now = self.get_json("service", "rep", "-n", "web")
        self.assertEqual((now["spec"]["selector"], now["metadata"]["labels"]), ({"app": "rep"}, {"team": "shop"}))
        # From a fresh read it lands, and keeps what the server owns (clusterIP) and the other
        # writer's label.
        now["spec"]["selector"] = {"app": "page"}
        rc, out, err = self.replace(now)
        self.assertEqual(rc, 0, err)
        self.assertIn("service/rep replaced", out)
        done = self.get_json("service", "rep", "-n", "web")
        self.assertEqual((done["spec"]["selector"], done["spec"]["clusterIP"], done["metadata"]["labels"]),
                         ({"app": "page"}, stale["spec"]["clusterIP"], {"team": "shop"}))
        # A write race the fake makes (another writer just before ours) is a Conflict too.
        self.fake.inject_conflicts("/api/v1/namespaces/web/services/rep", 1)
        done["spec"]["selector"] = {"app": "rep"}
        rc, _, err = self.replace(done)
        self.assertEqual(rc, 1)
        self.assertIn("(Conflict)", err)
        self.assertEqual(self.puts("/api/v1/namespaces/web/services/rep"), [409, 200, 409])

    def test_endpointslices_and_pods_by_label(self):
        self.fake.add_pod("web", "w-1", {"app": "w", "track": "a"}, ready=True,
                          ports=[{"name": "http", "containerPort": 8080}])
        self.fake.add_pod("web", "w-2", {"app": "w", "track": "b"}, ready=False,
                          ports=[{"name": "http", "containerPort": 8080}])
        self.fake.add_pod("web", "other", {"app": "other"}, ready=True)
        self.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "watched", "namespace": "web"},
                     "spec": {"selector": {"app": "w"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        slices = lambda: self.get_json("endpointslices", "-n", "web", "-l", "kubernetes.io/service-name=watched")  # noqa: E731

        def ready(doc):
            return sorted(a for s in doc["items"] for ep in s.get("endpoints") or []
                          if ep["conditions"]["ready"] for a in ep["addresses"])
        pods = {p["metadata"]["name"]: p for p in self.get_json("pods", "-n", "web", "-l", "app=w")["items"]}
        self.assertEqual(sorted(pods), ["w-1", "w-2"])
        self.assertEqual({n: [c["status"] for c in p["status"]["conditions"] if c["type"] == "Ready"]
                          for n, p in pods.items()}, {"w-1": ["True"], "w-2": ["False"]})
        ip = {n: p["status"]["podIP"] for n, p in pods.items()}
        doc = wait_for(lambda: (lambda d: d if ready(d) == [ip["w-1"]] else None)(slices()))
        item = doc["items"][0]
        self.assertEqual(item["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
                         "endpointslice-controller.k8s.io")
        self.assertEqual([p["port"] for p in item["ports"]], [8080])  # the named targetPort, resolved
        self.assertEqual({ep["addresses"][0]: ep["conditions"]["ready"] for ep in item["endpoints"]},
                         {ip["w-1"]: True, ip["w-2"]: False})
        # The selection is the server's (the selector is in the query), as in intermission's calls.
        listed = [r["path"] for r in self.fake.requests() if r["path"].startswith(
            "/apis/discovery.k8s.io/v1/namespaces/web/endpointslices?")]
        self.assertIn("labelSelector=kubernetes.io%2Fservice-name%3Dwatched", listed[-1])
        names = lambda sel: sorted(p["metadata"]["name"] for p in self.get_json("pods", "-n", "web", "-l", sel)["items"])  # noqa: E731
        self.assertEqual(names("app=w,track!=a"), ["w-2"])
        self.assertEqual(names("app in (w,other),track notin (b)"), ["other", "w-1"])
        self.assertEqual(names("app=nothing"), [])
        # A pod turning Ready shows in the pods at once, in the slices after the controller's lag.
        self.fake.set_ready("web", "w-2", True)
        self.assertEqual([c["status"] for c in self.get_json("pod", "w-2", "-n", "web")["status"]["conditions"]
                          if c["type"] == "Ready"], ["True"])
        wait_for(lambda: ready(slices()) == sorted(ip.values()))

    def test_lease_get_and_replace(self):
        rc, _, err = self.kubectl("create", "namespace", "ops")
        self.assertEqual(rc, 0, err)
        rc, _, err = self.kubectl("get", "lease", "switch", "-n", "ops")
        self.assertEqual(rc, 1)
        self.assertIn('Error from server (NotFound): leases.coordination.k8s.io "switch" not found', err)
        self.assertIn("lease.coordination.k8s.io/switch created", self.create({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "switch", "namespace": "ops"},
            "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "acquireTime": "2026-01-01T00:00:00.000000Z",
                     "renewTime": "2026-01-01T00:00:00.000000Z", "leaseTransitions": 0}}))
        lease = self.get_json("lease", "switch", "-n", "ops")
        lease["spec"].update(holderIdentity="b", renewTime="2026-01-01T00:00:05.250000Z", leaseTransitions=1)
        rc, out, err = self.replace(lease)
        self.assertEqual(rc, 0, err)
        self.assertIn("lease.coordination.k8s.io/switch replaced", out)
        # The same read again: another replica's take-over must lose.
        lease["spec"]["holderIdentity"] = "c"
        rc, _, err = self.replace(lease)
        self.assertEqual(rc, 1)
        self.assertIn('Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled '
                      'on leases.coordination.k8s.io "switch": the object has been modified', err)
        # MicroTime is exactly six fraction digits, as the real server parses it.
        fresh = self.get_json("lease", "switch", "-n", "ops")
        fresh["spec"]["renewTime"] = "2026-01-01T00:00:06Z"
        rc, _, err = self.replace(fresh)
        self.assertEqual(rc, 1)
        self.assertIn('Error from server (BadRequest): error when replacing "STDIN": Lease in version "v1" cannot '
                      'be handled as a Lease: parsing time "2026-01-01T00:00:06Z"', err)
        spec = self.get_json("lease", "switch", "-n", "ops")["spec"]
        self.assertEqual((spec["holderIdentity"], spec["renewTime"], spec["leaseTransitions"]),
                         ("b", "2026-01-01T00:00:05.250000Z", 1))

    def test_httproute_and_ingress_get_then_replace(self):
        route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                 "metadata": {"name": "sw", "namespace": "web"},
                 "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}}
        ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "sw", "namespace": "web"},
                   "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                       "service": {"name": "app", "port": {"number": 80}}}}]}}]}}

        def route_backend(obj, name=None):
            ref = obj["spec"]["rules"][0]["backendRefs"][0]
            if name:
                ref.update(name=name, port=8080)
            return ref["name"]

        def ingress_backend(obj, name=None):
            svc = obj["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
            if name:
                svc.update(name=name, port={"number": 8080})
            return svc["name"]
        for obj, resource, backend in ((route, "httproutes.gateway.networking.k8s.io", route_backend),
                                       (ingress, "ingresses.networking.k8s.io", ingress_backend)):
            plural, group = resource.split(".", 1)
            with self.subTest(kind=obj["kind"]):
                self.create(obj)
                read = self.get_json(resource, "sw", "-n", "web")
                before = json.loads(json.dumps(read))
                self.assertEqual(read["metadata"]["generation"], 1)
                backend(read, "page")
                read["metadata"].setdefault("annotations", {})["intermission.dev/original"] = "{}"
                rc, out, err = self.replace(read)
                self.assertEqual(rc, 0, err)
                self.assertIn(f"{obj['kind'].lower()}.{group}/sw replaced", out)
                now = self.get_json(resource, "sw", "-n", "web")
                self.assertEqual((backend(now), now["metadata"]["generation"]), ("page", 2))
                self.assertEqual(now["metadata"]["annotations"], {"intermission.dev/original": "{}"})
                # The read before that write is stale now.
                rc, _, err = self.replace(before)
                self.assertEqual(rc, 1)
                self.assertIn(f'Error from server (Conflict): error when replacing "STDIN": Operation cannot be '
                              f'fulfilled on {resource} "sw": the object has been modified', err)
                self.assertEqual(backend(self.get_json(resource, "sw", "-n", "web")), "page")
                # Restored from a fresh read: the spec is as before.
                before["metadata"]["resourceVersion"] = now["metadata"]["resourceVersion"]
                rc, out, err = self.replace(before)
                self.assertEqual(rc, 0, err)
                after = self.get_json(resource, "sw", "-n", "web")
                self.assertEqual((after["spec"], after["metadata"].get("annotations")), (before["spec"], None))
                self.assertEqual(after["metadata"]["generation"], 3)
                self.assertEqual(self.puts(f"/apis/{obj['apiVersion']}/namespaces/web/{plural}/sw"),
                                 [200, 409, 200])

    def test_client_certificate(self):
        cfg = self.fake.kubeconfig(cert=self.fake.client_cert("alice", ["dev"]), name="alice")
        rc, out, err = self.kubectl("get", "configmaps", "-n", "web", config=cfg)
        self.assertEqual(rc, 1)
        self.assertIn('configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" '
                      'in the namespace "web"', err)
        # Bound to the bootstrap cluster-admin role through her group: allowed.
        status, _ = self.fake.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
            "metadata": {"name": "dev-admin"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                          "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "dev"}]})
        self.assertEqual(status, 201)
        rc, out, err = self.kubectl("get", "configmaps", "-n", "web", "-o", "name", config=cfg)
        self.assertEqual(rc, 0, err)
        self.assertIn("configmap/settings", out)


def wait_for(predicate, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out")


class PythonClientTest(unittest.TestCase):
    """Every call intermission makes, through the official Python client."""

    @classmethod
    def setUpClass(cls):
        require(kc is not None, "python3-kubernetes")
        warnings.simplefilter("ignore", ResourceWarning)  # the client's pooled sockets
        cls.fake = fake_k8s.FakeK8s(tokens={SA_TOKEN: (SA_USER, [])}, endpoints=0.6, podReady=0.3,
                                    deployment=0.1, termination=0.3)
        cls.api = cls.client(fake_k8s.ADMIN_TOKEN)
        cls.core = kc.CoreV1Api(cls.api)
        cls.core.create_namespace({"metadata": {"name": "web"}})
        cls.core.create_namespace({"metadata": {"name": "ops"}})

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()

    @classmethod
    def client(cls, token, content_type=None):
        cfg = kc.Configuration()
        cfg.host = cls.fake.url
        cfg.ssl_ca_cert = cls.fake.ca
        cfg.api_key = {"authorization": "Bearer " + token}
        api = kc.ApiClient(cfg)
        if content_type:
            api.set_default_header("Content-Type", content_type)
        return api

    def service(self, name, selector):
        return self.core.create_namespaced_service("web", {
            "metadata": {"name": name}, "spec": {"selector": selector,
                                                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})

    def test_service_get_patch_replace_and_stale_replace(self):
        self.service("svc1", {"app": "one"})
        svc = self.core.read_namespaced_service("svc1", "web")
        self.assertEqual(svc.spec.selector, {"app": "one"})
        stale = svc.metadata.resource_version
        # Strategic merge patch (the client's default for a dict): the selector map merges.
        patched = self.core.patch_namespaced_service("svc1", "web", {"spec": {"selector": {"tier": "page"}}})
        self.assertEqual(patched.spec.selector, {"app": "one", "tier": "page"})
        self.assertNotEqual(patched.metadata.resource_version, stale)
        # Merge patch with "null" deletes a key (RFC 7386).
        merge = kc.CoreV1Api(self.client(fake_k8s.ADMIN_TOKEN, "application/merge-patch+json"))
        patched = merge.patch_namespaced_service("svc1", "web", {"spec": {"selector": {"tier": None}}})
        self.assertEqual(patched.spec.selector, {"app": "one"})
        svc.spec.selector = {"app": "two"}
        with self.assertRaises(ApiException) as e:
            self.core.replace_namespaced_service("svc1", "web", svc)
        self.assertEqual(e.exception.status, 409)
        body = json.loads(e.exception.body)
        self.assertEqual(body["reason"], "Conflict")
        self.assertEqual(body["message"], 'Operation cannot be fulfilled on services "svc1": the object has been '
                                          "modified; please apply your changes to the latest version and try again")
        fresh = self.core.read_namespaced_service("svc1", "web")
        fresh.spec.selector = {"app": "two"}
        done = self.core.replace_namespaced_service("svc1", "web", fresh)
        self.assertEqual(done.spec.selector, {"app": "two"})
        self.assertEqual(done.spec.cluster_ip, svc.spec.cluster_ip)

    def test_patch_carrying_a_stale_resource_version_conflicts(self):
        self.service("svc2", {"app": "x"})
        rv = self.core.read_namespaced_service("svc2", "web").metadata.resource_version
        self.core.patch_namespaced_service("svc2", "web", {"metadata": {"labels": {"a": "b"}}})
        with self.assertRaises(ApiException) as e:
            self.core.patch_namespaced_service("svc2", "web", {"metadata": {"resourceVersion": rv},
                                                               "spec": {"selector": {"app": "y"}}})
        self.assertEqual(e.exception.status, 409)

    def test_endpoints_follow_pod_readiness_after_a_delay(self):
        # The pod first: a Service with no pods would get the placeholder slice this client
        # cannot read (test_empty_service_slice_has_null_endpoints).
        self.fake.add_pod("web", "p3", {"app": "three"}, ready=True, ports=[{"name": "http", "containerPort": 8080}])
        self.service("svc3", {"app": "three"})
        disc = kc.DiscoveryV1Api(self.api)

        def ready_addresses():
            slices = disc.list_namespaced_endpoint_slice("web", label_selector="kubernetes.io/service-name=svc3")
            return [a for s in slices.items for ep in (s.endpoints or []) if ep.conditions.ready for a in ep.addresses]
        addrs = wait_for(ready_addresses)
        slices = disc.list_namespaced_endpoint_slice("web", label_selector="kubernetes.io/service-name=svc3")
        self.assertEqual(slices.items[0].ports[0].port, 8080)  # the named port, resolved from the pod
        self.assertEqual(slices.items[0].address_type, "IPv4")
        # A longer lag for this test, so "not yet" is read well inside it however slow the
        # machine is.
        self.fake.configure(endpoints=3.0)
        self.addCleanup(self.fake.configure, endpoints=0.6)
        t0 = time.monotonic()
        self.fake.set_ready("web", "p3", False)
        self.assertEqual(ready_addresses(), addrs)  # not yet: the controller lags
        wait_for(lambda: not ready_addresses())
        self.assertGreaterEqual(time.monotonic() - t0, 2.95)  # the endpoint delay, 3 s
        record = self.fake.endpoint_record("web", "svc3")
        self.assertEqual([r["ready"] for r in record], [0, 1, 0])

    def test_record_shows_a_gap_when_the_selector_moves_to_unready_pods(self):
        self.fake.add_pod("web", "sw-app", {"app": "sw"}, ready=True, ports=[{"name": "http", "containerPort": 80}])
        self.fake.add_pod("web", "sw-page", {"app": "sw-page"}, ready=True, ports=[{"name": "http", "containerPort": 80}])
        self.fake.add_pod("web", "sw-cold", {"app": "sw-cold"}, ready=False, ports=[{"name": "http", "containerPort": 80}])
        self.service("sw", {"app": "sw"})
        wait_for(lambda: self.fake.endpoint_record("web", "sw")[-1]["ready"] == 1)
        # Make before break: both ready, the slice is rewritten in one write, never empty.
        t0 = time.time()
        self.core.patch_namespaced_service("sw", "web", {"spec": {"selector": {"app": "sw-page"}}})
        wait_for(lambda: len(self.fake.endpoint_record("web", "sw")) == 3)
        self.assertEqual([r["ready"] for r in self.fake.endpoint_record("web", "sw")], [0, 1, 1])
        self.assertEqual(self.fake.min_ready("web", "sw", since=t0), 1)
        # To pods that are not ready: the record shows the gap a test must catch.
        t1 = time.time()
        self.core.patch_namespaced_service("sw", "web", {"spec": {"selector": {"app": "sw-cold"}}})
        wait_for(lambda: self.fake.endpoint_record("web", "sw")[-1]["ready"] == 0)
        self.assertEqual(self.fake.min_ready("web", "sw", since=t1), 0)

    def test_empty_service_slice_has_null_endpoints(self):
        # As on a real cluster: a Service with no pods keeps a slice with "endpoints": null,
        # which this Python client cannot deserialise (kubernetes-client/python#2423).
        self.service("empty", {"app": "nothing"})
        disc = kc.DiscoveryV1Api(self.api)
        wait_for(lambda: self.fake.request("GET", "/apis/discovery.k8s.io/v1/namespaces/web/endpointslices"
                                                  "?labelSelector=kubernetes.io/service-name%3Dempty")[1]["items"])
        status, body = self.fake.request("GET", "/apis/discovery.k8s.io/v1/namespaces/web/endpointslices"
                                                "?labelSelector=kubernetes.io/service-name%3Dempty")
        self.assertEqual((body["items"][0]["endpoints"], body["items"][0]["ports"]), (None, None))
        with self.assertRaises(ValueError):
            disc.list_namespaced_endpoint_slice("web", label_selector="kubernetes.io/service-name=empty")

    def test_watch(self):
        from kubernetes import watch
        self.core.create_namespaced_config_map("ops", {"metadata": {"name": "w1", "labels": {"w": "1"}}})
        rv = self.core.list_namespaced_config_map("ops", label_selector="w=1").metadata.resource_version
        self.core.patch_namespaced_config_map("w1", "ops", {"data": {"a": "b"}})
        self.core.delete_namespaced_config_map("w1", "ops")
        events = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
            self.core.list_namespaced_config_map, "ops", label_selector="w=1", resource_version=rv, timeout_seconds=1)]
        self.assertEqual(events, [("MODIFIED", "w1"), ("DELETED", "w1")])

    def test_secret_string_data_and_dry_run_create(self):
        sec = self.core.create_namespaced_secret("ops", {"metadata": {"name": "hook"}, "stringData": {"key": "s3cret"}})
        self.assertEqual((sec.data, sec.string_data, sec.type), ({"key": "czNjcmV0"}, None, "Opaque"))
        with self.assertRaises(ApiException) as e:
            self.core.create_namespaced_secret("ops", {"metadata": {"name": "raw"}, "data": {"key": "s3cret!"}})
        self.assertEqual(json.loads(e.exception.body)["message"],
                         'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 6')
        dry = self.core.create_namespaced_config_map("ops", {"metadata": {"name": "dry"}}, dry_run="All")
        self.assertEqual(dry.metadata.name, "dry")
        with self.assertRaises(ApiException) as e:
            self.core.read_namespaced_config_map("dry", "ops")
        self.assertEqual(e.exception.status, 404)

    def test_dropped_and_slow_requests(self):
        self.fake.inject_fault("/configmaps/slow$", "timeout", seconds=0.5)
        status, body = self.fake.request("GET", "/api/v1/namespaces/ops/configmaps/slow")
        self.assertEqual((status, body["reason"]), (504, "Timeout"))
        self.fake.inject_fault("/configmaps/gone$", "drop")
        with self.assertRaises(Exception):
            self.fake.request("GET", "/api/v1/namespaces/ops/configmaps/gone")
        status, body = self.fake.request("GET", "/api/v1/namespaces/ops/configmaps/gone")
        self.assertEqual((status, body["reason"]), (404, "NotFound"))

    def test_pods_by_selector(self):
        self.fake.add_pod("web", "sel-a", {"app": "sel", "track": "a"})
        self.fake.add_pod("web", "sel-b", {"app": "sel", "track": "b"})
        names = lambda sel: sorted(p.metadata.name for p in self.core.list_namespaced_pod("web", label_selector=sel).items)  # noqa: E731
        self.assertEqual(names("app=sel,track in (a,c)"), ["sel-a"])
        self.assertEqual(names("app=sel,track!=a"), ["sel-b"])
        self.assertEqual(names("app=sel,track"), ["sel-a", "sel-b"])
        all_ns = self.core.list_pod_for_all_namespaces(label_selector="app=sel", field_selector="metadata.name=sel-b")
        self.assertEqual([p.metadata.name for p in all_ns.items], ["sel-b"])

    def test_configmap_store_and_limits(self):
        cm = self.core.create_namespaced_config_map("ops", {"metadata": {"name": "ledger"}, "data": {"v": "1"}})
        cm.data["v"] = "2"
        cm2 = self.core.replace_namespaced_config_map("ledger", "ops", cm)
        cm.data["v"] = "3"
        with self.assertRaises(ApiException) as e:
            self.core.replace_namespaced_config_map("ledger", "ops", cm)  # compare-and-set lost
        self.assertEqual(e.exception.status, 409)
        with self.assertRaises(ApiException) as e:
            self.core.create_namespaced_config_map("ops", {"metadata": {"name": "ledger"}})
        self.assertEqual(json.loads(e.exception.body)["message"], 'configmaps "ledger" already exists')
        cm2.data["v"] = "x" * (1024 * 1024)  # exactly 1 MiB of values is allowed, one byte more is not
        cm2 = self.core.replace_namespaced_config_map("ledger", "ops", cm2)
        cm2.data["w"] = "x"
        with self.assertRaises(ApiException) as e:
            self.core.replace_namespaced_config_map("ledger", "ops", cm2)
        body = json.loads(e.exception.body)
        self.assertEqual((e.exception.status, body["reason"]), (422, "Invalid"))
        self.assertEqual(body["message"], 'ConfigMap "ledger" is invalid: []: Too long: must have at most 1048576 bytes')
        with self.assertRaises(ApiException) as e:
            self.core.create_namespaced_config_map("ops", {"metadata": {"name": "Bad_Name"}})
        self.assertIn('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase '
                      "RFC 1123 subdomain", json.loads(e.exception.body)["message"])
        with self.assertRaises(ApiException) as e:
            self.core.read_namespaced_config_map("nothing", "ops")
        self.assertEqual(json.loads(e.exception.body)["details"], {"name": "nothing", "kind": "configmaps"})

    def test_lease(self):
        coord = kc.CoordinationV1Api(self.api)
        lease = coord.create_namespaced_lease("ops", {
            "metadata": {"name": "switch"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15,
                                                    "renewTime": "2026-01-01T00:00:00.000000Z"}})
        lease.spec.holder_identity = "b"
        # This client writes a MicroTime with Python's isoformat(), which has no fraction when the
        # microseconds are 0: the API server's RFC3339Micro parse refuses that (micro_time.go).
        with self.assertRaises(ApiException) as e:
            coord.replace_namespaced_lease("switch", "ops", lease)
        self.assertEqual(e.exception.status, 400)
        self.assertIn('parsing time "2026-01-01T00:00:00+00:00" as "2006-01-02T15:04:05.000000Z07:00"',
                      json.loads(e.exception.body)["message"])
        lease.spec.renew_time = datetime.datetime(2026, 1, 1, 1, 0, 0, 250000, tzinfo=datetime.timezone(
            datetime.timedelta(hours=1)))
        done = coord.replace_namespaced_lease("switch", "ops", lease)
        status, raw = self.fake.request("GET", "/apis/coordination.k8s.io/v1/namespaces/ops/leases/switch")
        self.assertEqual(raw["spec"]["renewTime"], "2026-01-01T00:00:00.250000Z")  # served in UTC
        self.assertEqual(done.spec.holder_identity, "b")
        with self.assertRaises(ApiException) as e:
            coord.replace_namespaced_lease("switch", "ops", lease)
        self.assertIn('leases.coordination.k8s.io "switch"', json.loads(e.exception.body)["message"])
        self.assertEqual(coord.read_namespaced_lease("switch", "ops").spec.holder_identity, "b")

    def test_ingress_and_httproute(self):
        net = kc.NetworkingV1Api(self.api)
        ing = net.create_namespaced_ingress("web", {"metadata": {"name": "ing"}, "spec": {"rules": [{"http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}})
        self.assertEqual(ing.metadata.generation, 1)
        ing.spec.rules[0].http.paths[0].backend.service.name = "page"
        ing = net.replace_namespaced_ingress("ing", "web", ing)
        self.assertEqual((ing.metadata.generation, ing.spec.rules[0].http.paths[0].backend.service.name), (2, "page"))
        co = kc.CustomObjectsApi(self.api)
        args = ("gateway.networking.k8s.io", "v1", "web", "httproutes")
        co.create_namespaced_custom_object(*args, {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                                                   "metadata": {"name": "r"}, "spec": {"parentRefs": [{"name": "gw"}],
                                                   "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}})
        route = co.get_namespaced_custom_object(*args, "r")
        route["spec"]["rules"][0]["backendRefs"][0]["name"] = "page"
        route = co.replace_namespaced_custom_object(*args, "r", route)
        self.assertEqual(route["metadata"]["generation"], 2)
        # This client patches custom objects with a merge patch: lists are replaced whole.
        co.patch_namespaced_custom_object(*args, "r", {"spec": {"rules": [{"backendRefs": [{"name": "page", "port": 8080}]}]}})
        route = co.get_namespaced_custom_object(*args, "r")
        self.assertEqual(route["spec"]["rules"], [{"backendRefs": [{"name": "page", "port": 8080}]}])
        self.assertEqual(route["spec"]["parentRefs"], [{"name": "gw"}])
        # A Gateway controller reports the route: ResolvedRefs is False while "page" is missing.
        co.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", "web", "gateways", {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw"},
            "spec": {"gatewayClassName": "fake", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}})

        def resolved():
            parents = (co.get_namespaced_custom_object(*args, "r").get("status") or {}).get("parents") or []
            conds = {c["type"]: c for p in parents for c in p["conditions"]}
            return conds.get("ResolvedRefs")
        cond = wait_for(resolved)
        self.assertEqual((cond["status"], cond["reason"], cond["observedGeneration"]), ("False", "BackendNotFound", 3))
        self.service("page", {"app": "page"})
        wait_for(lambda: resolved()["status"] == "True")
        # Strategic merge patch has no meaning for a custom resource: 415, as for a CRD.
        status, body = self.fake.request("PATCH", "/apis/gateway.networking.k8s.io/v1/namespaces/web/httproutes/r",
                                         {"spec": {}}, content_type="application/strategic-merge-patch+json")
        self.assertEqual((status, body["reason"]), (415, "UnsupportedMediaType"))

    def test_rbac_denial_and_bad_token(self):
        sa = kc.CoreV1Api(self.client(SA_TOKEN))
        with self.assertRaises(ApiException) as e:
            sa.patch_namespaced_service("app", "web", {"spec": {}})
        body = json.loads(e.exception.body)
        self.assertEqual((e.exception.status, body["reason"]), (403, "Forbidden"))
        self.assertEqual(body["message"], 'services "app" is forbidden: User "system:serviceaccount:ops:intermission" '
                                          'cannot patch resource "services" in API group "" in the namespace "web"')
        rbac = kc.RbacAuthorizationV1Api(self.api)
        rbac.create_namespaced_role("web", {"metadata": {"name": "cm"}, "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "list"],
             "resourceNames": ["only"]}]})
        rbac.create_namespaced_role_binding("web", {"metadata": {"name": "cm"}, "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm"}, "subjects": [
            {"kind": "ServiceAccount", "name": "intermission", "namespace": "ops"}]})
        self.core.create_namespaced_config_map("web", {"metadata": {"name": "only"}})
        self.assertEqual(sa.read_namespaced_config_map("only", "web").metadata.name, "only")
        # resourceNames cannot limit create or list: a rule with names never allows them.
        for call in (lambda: sa.create_namespaced_config_map("web", {"metadata": {"name": "only2"}}),
                     lambda: sa.list_namespaced_config_map("web")):
            with self.assertRaises(ApiException) as e:
                call()
            self.assertEqual(e.exception.status, 403)
        with self.assertRaises(ApiException) as e:
            kc.CoreV1Api(self.client("wrong")).list_namespaced_service("web")
        self.assertEqual((e.exception.status, json.loads(e.exception.body)["reason"]), (401, "Unauthorized"))

    def test_kubeconfig_with_client_certificate(self):
        from kubernetes import config
        cert = self.fake.client_cert("ops-admin", ["system:masters"])
        api = config.new_client_from_config(config_file=self.fake.kubeconfig(cert=cert, name="ops-admin"))
        self.assertEqual(kc.CoreV1Api(api).read_namespace("web").metadata.name, "web")
        log = self.fake.requests()[-1]
        self.assertEqual((log["path"], log["user"]), ("/api/v1/namespaces/web", "ops-admin"))

    def test_in_cluster_configuration(self):
        from kubernetes import config
        d = self.fake.service_account_dir(SA_TOKEN, "ops")
        loader = config.incluster_config.InClusterConfigLoader(
            token_filename=os.path.join(d, "token"), cert_filename=os.path.join(d, "ca.crt"),
            environ=self.fake.in_cluster_env())
        cfg = kc.Configuration()
        loader.load_and_set(cfg)
        with self.assertRaises(ApiException) as e:  # the account has no rights in "ops"
            kc.CoreV1Api(kc.ApiClient(cfg)).list_namespaced_config_map("ops")
        self.assertEqual(e.exception.status, 403)
        self.assertEqual(self.fake.requests()[-1]["user"], SA_USER)

    def test_control_api_is_admin_only_and_tokens_rotate(self):
        status, body = self.fake.request("GET", "/__fake/requests", token=SA_TOKEN)
        self.assertEqual((status, body["reason"]), (403, "Forbidden"))
        self.fake.tokens["rotated-token"] = (SA_USER, [])
        self.fake.write_tokens()
        status, body = self.fake.request("GET", "/api/v1/namespaces/web/services", token="rotated-token")
        self.assertEqual(status, 403)  # known now, and still only what RBAC allows
        del self.fake.tokens["rotated-token"]
        self.fake.write_tokens()
        status, body = self.fake.request("GET", "/api/v1/namespaces/web/services", token="rotated-token")
        self.assertEqual(status, 401)

    def test_injected_conflicts_and_faults(self):
        self.core.create_namespaced_config_map("ops", {"metadata": {"name": "storm"}, "data": {"n": "0"}})
        self.fake.inject_conflicts("/api/v1/namespaces/ops/configmaps/storm", 2)
        outcomes = []
        for _ in range(3):
            cm = self.core.read_namespaced_config_map("storm", "ops")
            cm.data["n"] = str(int(cm.data["n"]) + 1)
            try:
                self.core.replace_namespaced_config_map("storm", "ops", cm)
                outcomes.append("ok")
            except ApiException as e:
                outcomes.append(e.status)
        self.assertEqual(outcomes, [409, 409, "ok"])
        # A patch without resourceVersion lands on the other writer's version; one with it, 409.
        self.fake.inject_conflicts("/api/v1/namespaces/ops/configmaps/storm", 2)
        rv = self.core.read_namespaced_config_map("storm", "ops").metadata.resource_version
        self.core.patch_namespaced_config_map("storm", "ops", {"data": {"m": "1"}})
        with self.assertRaises(ApiException) as e:
            self.core.patch_namespaced_config_map("storm", "ops", {"metadata": {"resourceVersion": rv},
                                                                   "data": {"m": "2"}})
        self.assertEqual(e.exception.status, 409)
        # 429 with Retry-After: the client's urllib3 waits it out and retries by itself.
        self.fake.inject_fault("/configmaps/storm$", 429, count=1, method="GET", retryAfter=1)
        t0 = time.monotonic()
        self.assertEqual(self.core.read_namespaced_config_map("storm", "ops").data["n"], "1")
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        self.fake.inject_fault("/configmaps/storm$", 500, count=1, method="GET")
        with self.assertRaises(ApiException) as e:
            self.core.read_namespaced_config_map("storm", "ops")
        self.assertEqual((e.exception.status, json.loads(e.exception.body)["reason"]), (500, "InternalError"))
        log = [r for r in self.fake.requests() if r["path"].startswith("/api/v1/namespaces/ops/configmaps/storm")]
        self.assertEqual([r["status"] for r in log if r["method"] == "PUT"], [409, 409, 200])
        self.assertEqual([r["status"] for r in log if r["method"] == "GET"][-3:], [429, 200, 500])
        self.assertEqual({r["user"] for r in log}, {fake_k8s.ADMIN_USER})

    def test_pods_need_their_service_account(self):
        apps = kc.AppsV1Api(self.api)
        apps.create_namespaced_deployment("web", {"metadata": {"name": "nosa"}, "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "nosa"}}, "template": {
                "metadata": {"labels": {"app": "nosa"}},
                "spec": {"serviceAccountName": "page", "containers": [{"name": "c", "image": "x"}]}}}})

        def failure():
            conds = apps.read_namespaced_deployment("nosa", "web").status.conditions or []
            return next((c for c in conds if c.type == "ReplicaFailure"), None)
        cond = wait_for(failure)
        self.assertEqual(cond.reason, "FailedCreate")
        self.assertIn('error looking up service account web/page: serviceaccount "page" not found', cond.message)
        self.assertEqual(self.core.list_namespaced_pod("web", label_selector="app=nosa").items, [])
        self.core.create_namespaced_service_account("web", {"metadata": {"name": "page"}})
        wait_for(lambda: apps.read_namespaced_deployment("nosa", "web").status.ready_replicas == 1)
        self.assertIsNone(failure())

    def settled(self, app, image, replicas):
        """The Deployment's pods all run `image`, are Ready, and the endpoints show exactly them."""
        pods = [p for p in self.core.list_namespaced_pod("web", label_selector=f"app={app}").items
                if p.metadata.deletion_timestamp is None and p.metadata.owner_references]
        if len(pods) != replicas or any(p.spec.containers[0].image != image for p in pods):
            return False
        if not all(any(c.type == "Ready" and c.status == "True" for c in p.status.conditions) for p in pods):
            return False
        return self.fake.endpoint_record("web", app)[-1]["addresses"] == sorted(p.status.pod_ip for p in pods)

    def test_deployment_makes_ready_pods_and_rolls_without_a_gap(self):
        self.service("dep", {"app": "dep"})
        apps = kc.AppsV1Api(self.api)
        template = {"metadata": {"labels": {"app": "dep"}}, "spec": {"containers": [
            {"name": "c", "image": "one", "ports": [{"name": "http", "containerPort": 8080}]}]}}
        apps.create_namespaced_deployment("web", {"metadata": {"name": "dep"}, "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": "dep"}}, "template": template}})
        wait_for(lambda: apps.read_namespaced_deployment("dep", "web").status.ready_replicas == 2)
        wait_for(lambda: self.settled("dep", "one", 2))
        apps.patch_namespaced_deployment("dep", "web", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "two"}]}}}})
        wait_for(lambda: self.settled("dep", "two", 2))
        counts = [r["ready"] for r in self.fake.endpoint_record("web", "dep")]
        self.assertEqual(counts[0], 0)
        self.assertNotIn(0, counts[counts.index(2):])
        # A template whose pods never become Ready: one surge pod, then the rollout stalls
        # (maxSurge 25% of 2 rounds up to 1, maxUnavailable down to 0), the old pods stay.
        apps.patch_namespaced_deployment("dep", "web", {"spec": {"template": {"metadata": {"annotations": {
            "fake-k8s.intermission/hold-ready": "true"}}}}})
        wait_for(lambda: apps.read_namespaced_deployment("dep", "web").status.updated_replicas == 1)
        time.sleep(1.2)  # longer than the endpoint delay
        status = apps.read_namespaced_deployment("dep", "web").status
        self.assertEqual((status.replicas, status.updated_replicas, status.ready_replicas), (3, 1, 2))
        self.assertEqual(self.fake.endpoint_record("web", "dep")[-1]["ready"], 2)

    def test_rolling_update_of_four_loses_one_and_recreate_loses_all(self):
        self.fake.add_pod("web", "seed4", {"app": "four", "seed": "1"}, ready=False)  # no placeholder slice
        self.service("four", {"app": "four"})
        apps = kc.AppsV1Api(self.api)
        template = {"metadata": {"labels": {"app": "four"}}, "spec": {"containers": [
            {"name": "c", "image": "one", "ports": [{"name": "http", "containerPort": 8080}]}]}}
        apps.create_namespaced_deployment("web", {"metadata": {"name": "four"}, "spec": {
            "replicas": 4, "selector": {"matchLabels": {"app": "four"}}, "template": template}})
        wait_for(lambda: self.settled("four", "one", 4))
        t0 = time.time()
        apps.patch_namespaced_deployment("four", "web", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "two"}]}}}})
        wait_for(lambda: self.settled("four", "two", 4), timeout=20)
        self.assertEqual(self.fake.min_ready("web", "four", since=t0), 3)  # maxUnavailable 25% of 4
        t1 = time.time()
        apps.patch_namespaced_deployment("four", "web", {"spec": {"strategy": {"type": "Recreate",
                                                                               "rollingUpdate": None},
            "template": {"spec": {"containers": [{"name": "c", "image": "three"}]}}}})
        wait_for(lambda: self.settled("four", "three", 4), timeout=20)
        self.assertEqual(self.fake.min_ready("web", "four", since=t1), 0)


if __name__ == "__main__":
    unittest.main()
