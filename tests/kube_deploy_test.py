"""deploy/kubernetes: the manifests render with `kubectl kustomize`, meet the "restricted" Pod
Security Standard and the wiring the daemon needs (config, secrets, probes, named ports), their
config passes `check-config`, and the Containerfile installs exactly the libraries the binary
links. Fast: no cluster, no container engine (neither exists here)."""

import hashlib
import hmac
import json
import os
import re
import shlex
import shutil
import signal
import sys
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_k8s import FakeK8s  # noqa: E402
from stack import free_ports  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KUBE = os.path.join(ROOT, "deploy", "kubernetes")
BIN = os.environ.get("INTERMISSION_BIN", os.path.join(ROOT, "build", "src", "app", "intermission"))
KUBECTL = os.environ.get("KUBECTL", "kubectl")
# The base and every overlay: each must render and hold on its own.
KUSTOMIZATIONS = ["", "overlays/example"]
# The volume types the "restricted" Pod Security Standard allows.
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}


def render(kustomization):
    """The objects `kubectl kustomize` makes of deploy/kubernetes/<kustomization>."""
    out = subprocess.run([KUBECTL, "kustomize", os.path.join(KUBE, kustomization)],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"kubectl kustomize {kustomization}: {out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def of_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def named(objects, kind, name, namespace=None):
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name
             and (namespace is None or o["metadata"].get("namespace") == namespace)]
    assert len(found) == 1, (kind, name, namespace, len(found))
    return found[0]


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def containerfile_stages():
    """The Containerfile's stages: a list of (FROM line, [instructions, continuation lines
    joined])."""
    with open(os.path.join(KUBE, "Containerfile")) as f:
        text = re.sub(r"\\\n", " ", f.read())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            stages.append((line, []))
        else:
            stages[-1][1].append(line)
    return stages


def apt_packages(instructions):
    """The packages of the `apt-get install` in a stage's RUN instructions."""
    packages = []
    for line in instructions:
        if not line.startswith("RUN "):
            continue
        for command in line[4:].split("&&"):
            words = shlex.split(command)
            if words[:2] == ["apt-get", "install"]:
                packages += [w for w in words[2:] if not w.startswith("-")]
    return packages


class Manifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rendered = {k: render(k) for k in KUSTOMIZATIONS}

    def test_renders_the_expected_objects(self):
        for kustomization, objects in self.rendered.items():
            with self.subTest(kustomization=kustomization or "base"):
                kinds = sorted(o["kind"] for o in objects)
                self.assertEqual(kinds, sorted(
                    ["Namespace", "ServiceAccount", "ServiceAccount", "ConfigMap", "Deployment",
                     "Deployment", "Service", "Service", "PodDisruptionBudget", "Role", "Role",
                     "RoleBinding", "RoleBinding"]))
                for o in objects:
                    if o["kind"] != "Namespace":
                        self.assertTrue(o["metadata"].get("namespace"), o["metadata"]["name"])
                # Every binding is for the daemon's account in its own namespace, wherever the
                # binding is (an overlay's namespace must not move the subject).
                for b in of_kind(objects, "RoleBinding"):
                    self.assertEqual(b["subjects"], [{"kind": "ServiceAccount", "name": "intermission",
                                                      "namespace": "intermission"}])
                    self.assertEqual(b["roleRef"]["kind"], "Role")
                    named(objects, "Role", b["roleRef"]["name"], b["metadata"]["namespace"])

    def test_every_field_is_in_the_kubernetes_schema(self):
        for kustomization, objects in self.rendered.items():
            with self.subTest(kustomization=kustomization or "base"):
                for o in objects:
                    self.assertEqual(o["apiVersion"].split("/")[-1], "v1")
                    where = f"{o['kind']}/{o['metadata']['name']}"
                    self.assertEqual(schema_errors(o, "V1" + o["kind"], where), [])

    def test_pods_meet_the_restricted_pod_security_standard(self):
        uid = self.image_uid()
        for kustomization, objects in self.rendered.items():
            with self.subTest(kustomization=kustomization or "base"):
                for d in of_kind(objects, "Deployment"):
                    spec = d["spec"]["template"]["spec"]
                    pod = spec.get("securityContext", {})
                    where = d["metadata"]["name"]
                    self.assertIs(pod.get("runAsNonRoot"), True, where)
                    self.assertEqual(pod.get("runAsUser"), uid, where)
                    self.assertEqual(pod.get("runAsGroup"), uid, where)
                    self.assertEqual(pod.get("seccompProfile"), {"type": "RuntimeDefault"}, where)
                    for key in ["hostNetwork", "hostPID", "hostIPC"]:
                        self.assertFalse(spec.get(key, False), where)
                    for v in spec.get("volumes", []):
                        self.assertTrue(set(v) - {"name"} <= RESTRICTED_VOLUMES, v)
                    for c in spec["containers"] + spec.get("initContainers", []):
                        sc = c.get("securityContext", {})
                        self.assertIs(sc.get("allowPrivilegeEscalation"), False, where)
                        self.assertIs(sc.get("readOnlyRootFilesystem"), True, where)
                        self.assertEqual(sc.get("capabilities"), {"drop": ["ALL"]}, where)
                        self.assertNotIn("privileged", sc)
                        for key in ["runAsUser", "runAsNonRoot", "seccompProfile"]:
                            self.assertNotIn(key, sc, "set once, for the pod")
                        for kind in ["requests", "limits"]:
                            self.assertEqual(set(c.get("resources", {}).get(kind, {})), {"cpu", "memory"},
                                             f"{where}: {kind}")

    def test_probes_ask_the_health_path_on_a_named_port(self):
        for kustomization, objects in self.rendered.items():
            with self.subTest(kustomization=kustomization or "base"):
                for d in of_kind(objects, "Deployment"):
                    for c in d["spec"]["template"]["spec"]["containers"]:
                        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
                        for probe in ["livenessProbe", "readinessProbe"]:
                            get = c[probe]["httpGet"]
                            self.assertEqual(get["path"], "/healthz")
                            self.assertIn(get["port"], ports)
                        # Readiness gives up first; a restart comes only after a longer failure.
                        patience = {p: c[p]["periodSeconds"] * c[p]["failureThreshold"]
                                    for p in ["livenessProbe", "readinessProbe"]}
                        self.assertGreater(patience["livenessProbe"], patience["readinessProbe"])

    def test_services_select_their_pods_on_named_ports(self):
        for kustomization, objects in self.rendered.items():
            with self.subTest(kustomization=kustomization or "base"):
                for s in of_kind(objects, "Service"):
                    ns = s["metadata"]["namespace"]
                    pods = [d for d in of_kind(objects, "Deployment") if d["metadata"]["namespace"] == ns
                            and selects(s["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
                    self.assertEqual(len(pods), 1, s["metadata"]["name"])
                    self.assertTrue(selects(pods[0]["spec"]["selector"]["matchLabels"],
                                            pods[0]["spec"]["template"]["metadata"]["labels"]))
                    names = {p["name"] for c in pods[0]["spec"]["template"]["spec"]["containers"]
                             for p in c["ports"]}
                    for port in s["spec"]["ports"]:
                        self.assertIn("name", port)
                        self.assertIn(port["targetPort"], names, "a named target port")

    def test_the_page_has_a_disruption_budget_and_no_token(self):
        for kustomization, objects in self.rendered.items():
            with self.subTest(kustomization=kustomization or "base"):
                pdbs = of_kind(objects, "PodDisruptionBudget")
                self.assertEqual(len(pdbs), 1)
                page = named(objects, "Deployment", "intermission-page")
                self.assertEqual(pdbs[0]["metadata"]["namespace"], page["metadata"]["namespace"])
                self.assertTrue(selects(pdbs[0]["spec"]["selector"]["matchLabels"],
                                        page["spec"]["template"]["metadata"]["labels"]))
                self.assertLess(pdbs[0]["spec"]["minAvailable"], page["spec"]["replicas"])
                spec = page["spec"]["template"]["spec"]
                self.assertIs(spec["automountServiceAccountToken"], False)
                self.assertEqual(spec["containers"][0]["args"][0], "page")

    def test_the_daemon_reads_its_config_and_secrets_from_mounted_files(self):
        for kustomization, objects in self.rendered.items():
            with self.subTest(kustomization=kustomization or "base"):
                daemon = named(objects, "Deployment", "intermission")
                spec = daemon["spec"]["template"]["spec"]
                self.assertEqual(spec["serviceAccountName"], "intermission")
                container = spec["containers"][0]
                args = container["args"]
                self.assertEqual(args[-1], "serve")
                config_path = args[args.index("--config") + 1]
                mounts = {m["name"]: m for m in container["volumeMounts"]}
                volumes = {v["name"]: v for v in spec["volumes"]}
                for m in mounts.values():
                    self.assertIs(m.get("readOnly"), True, m)
                config_mount = mounts["config"]["mountPath"]
                self.assertEqual(os.path.dirname(config_path), config_mount)
                cm = named(objects, "ConfigMap", volumes["config"]["configMap"]["name"],
                           daemon["metadata"]["namespace"])
                config = yaml.safe_load(cm["data"][os.path.basename(config_path)])
                secret = volumes["secrets"]["secret"]
                self.assertEqual(secret["defaultMode"], 0o440, "readable by fsGroup only")
                self.assertEqual(spec["securityContext"]["fsGroup"], spec["securityContext"]["runAsGroup"])
                for key in ["operator_token_file", "webhook_secret_file"]:
                    self.assertEqual(os.path.dirname(config["serve"][key]), mounts["secrets"]["mountPath"])
                # The store's namespace is the daemon's, where its Role is.
                self.assertEqual(config["store"], {"type": "kubernetes",
                                                   "namespace": daemon["metadata"]["namespace"]})
                # Listeners reachable from other pods, on the ports the container declares.
                ports = {p["name"]: p["containerPort"] for p in container["ports"]}
                self.assertEqual(config["serve"]["listen"], f"0.0.0.0:{ports['http']}")
                self.assertEqual(config["serve"]["admin_listen"], f"0.0.0.0:{ports['admin']}")

    def test_readme_prints_the_store_object_names(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        snippet = re.search(r"python3 -c '(import re,sys;.*?)' prod\n", readme, re.S).group(1)
        snippet = snippet.replace("\n   ", "\n")  # the list item's indent, as Markdown renders it
        for kustomization, objects in self.rendered.items():
            with self.subTest(kustomization=kustomization or "base"):
                config = yaml.safe_load(named(objects, "ConfigMap", "intermission-config")["data"]["config.yaml"])
                store = named(objects, "Role", "intermission-store")
                named_rules = {n for r in store["rules"] for n in r.get("resourceNames") or []}
                printed = {subprocess.run(["python3", "-c", snippet, env], capture_output=True, text=True,
                                          check=True).stdout.strip() for env in config["environments"]}
                self.assertEqual(named_rules, printed)

    def test_the_config_passes_check_config(self):
        for kustomization, objects in self.rendered.items():
            with self.subTest(kustomization=kustomization or "base"):
                cm = named(objects, "ConfigMap", "intermission-config")
                with tempfile.TemporaryDirectory(prefix="intermission-kube-") as tmp:
                    path = os.path.join(tmp, "config.yaml")
                    with open(path, "w") as f:
                        f.write(cm["data"]["config.yaml"])
                    out = subprocess.run([BIN, "--config", path, "check-config"], capture_output=True,
                                         text=True, timeout=30)
                    self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
                    self.assertIn("valid", out.stdout)

    def image_uid(self):
        user = [line for _, stage in containerfile_stages()[-1:] for line in stage
                if line.startswith("USER ")]
        self.assertEqual(len(user), 1)
        uid, gid = user[0].split()[1].split(":")
        self.assertEqual(uid, gid)
        return int(uid)


def schema_errors(value, type_name, where):
    """Where `value` breaks the schema of `type_name` as the official Python client
    (python3-kubernetes) models it: unknown fields (a misspelt key that a real API server would
    drop or refuse), wrong scalar types, and required fields left out. kubectl validates against
    the fake's OpenAPI document, which does not describe nested fields (a misspelt
    `readOnlyRootFileSystem` passes it), so this stands in for a real server's schema."""
    import kubernetes.client as models
    if value is None:
        return []
    if type_name.startswith("list["):
        if not isinstance(value, list):
            return [f"{where}: not a list"]
        return [e for i, v in enumerate(value) for e in schema_errors(v, type_name[5:-1], f"{where}[{i}]")]
    if type_name.startswith("dict("):
        inner = type_name[5:-1].split(", ", 1)[1]
        if not isinstance(value, dict):
            return [f"{where}: not a mapping"]
        return [e for k, v in value.items() for e in schema_errors(v, inner, f"{where}.{k}")]
    scalars = {"str": str, "int": int, "bool": bool, "float": (int, float), "datetime": str}
    if type_name in scalars:
        ok = isinstance(value, scalars[type_name]) and not (type_name == "int" and isinstance(value, bool))
        return [] if ok else [f"{where}: {value!r} is not {type_name}"]
    if type_name == "object":  # IntOrString, raw JSON
        return []
    model = getattr(models, type_name)
    if not isinstance(value, dict):
        return [f"{where}: not a {type_name}"]
    fields = {json_key: model.openapi_types[attr] for attr, json_key in model.attribute_map.items()}
    errors = [f"{where}.{k}: unknown field of {type_name}" for k in value if k not in fields]
    for k, v in value.items():
        if k in fields:
            errors += schema_errors(v, fields[k], f"{where}.{k}")
    # The model's constructor refuses a required field left out.
    try:
        model(**{attr: value.get(json_key, None) if json_key in value else None
                 for attr, json_key in model.attribute_map.items()})
    except ValueError as e:
        errors.append(f"{where}: {e}")
    return errors


# System calls that write to the file system (or would need a writable one).
WRITES = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TMPFILE|^\S+ (creat|mkdir|mkdirat|unlink|unlinkat|"
                    r"rename|renameat|renameat2|link|linkat|symlink|symlinkat)\(")


TRACED = ("trace=open,openat,openat2,creat,mkdir,mkdirat,unlink,unlinkat,rename,renameat,"
          "renameat2,link,linkat,symlink,symlinkat")


def traced_writes(trace_file):
    """The traced calls that write to the file system, leaving out the standard streams."""
    with open(trace_file) as f:
        return [line.strip() for line in f if WRITES.search(line) and "/dev/null" not in line]


# The daemon's ServiceAccount as the fake API server knows it (a token file entry).
SA_TOKEN = "intermission-sa-token-0123456789"
SA_USER = "system:serviceaccount:intermission:intermission"
SA_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:intermission", "system:authenticated"]


class OnTheFakeApiServer(unittest.TestCase):
    """The example overlay applied with kubectl to the fake API server (testing/fake_k8s/), as
    README's steps do it: the application's namespace exists, the daemon's is applied first,
    the Secret is made by hand, then everything is dry-run and applied."""

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeK8s(tokens={SA_TOKEN: (SA_USER, SA_GROUPS)})
        cls.admin = cls.fake.kubeconfig()
        cls.tmp = tempfile.TemporaryDirectory(prefix="intermission-kube-")
        cls.objects = render("overlays/example")
        cls.manifest = os.path.join(cls.tmp.name, "example.yaml")
        with open(cls.manifest, "w") as f:
            yaml.safe_dump_all(cls.objects, f)

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        cls.tmp.cleanup()

    def kubectl(self, *args, check=True):
        # Discovery is cached per server under --cache-dir: ours, not the user's ~/.kube.
        out = subprocess.run([KUBECTL, "--kubeconfig", self.admin, "--cache-dir",
                              os.path.join(self.tmp.name, "cache")] + list(args), capture_output=True,
                             text=True, timeout=60)
        if check:
            self.assertEqual(out.returncode, 0, f"kubectl {' '.join(args)}: {out.stdout}{out.stderr}")
        return out

    def versions(self):
        """Each applied object's generation (changes of spec only: controllers write the status
        of Deployments all the time) or, without one, its resourceVersion."""
        out = self.kubectl("get", "-f", self.manifest, "-o", "json")
        items = json.loads(out.stdout).get("items") or [json.loads(out.stdout)]
        return {(o["kind"], o["metadata"]["name"]):
                o["metadata"].get("generation", o["metadata"]["resourceVersion"]) for o in items}

    def get(self, path):
        status, body = self.fake.request("GET", path)
        return status, body

    def test_the_plain_files_apply_one_by_one(self):
        """Without Kustomize: each file of daemon/ and app/ as it is (namespaces intermission
        and shop)."""
        self.kubectl("create", "namespace", "shop")
        self.kubectl("apply", "-f", os.path.join(KUBE, "daemon", "namespace.yaml"))
        files = [os.path.join(KUBE, part, f) for part in ["daemon", "app"]
                 for f in sorted(os.listdir(os.path.join(KUBE, part)))
                 if f.endswith(".yaml") and f != "kustomization.yaml"]
        self.assertEqual(len(files), 8)
        for path in files:
            out = self.kubectl("apply", "--dry-run=server", "-f", path)
            self.assertIn("(server dry run)", out.stdout)

    def test_applies_with_kubectl(self):
        app_ns = named(self.objects, "Deployment", "intermission-page")["metadata"]["namespace"]
        self.kubectl("create", "namespace", app_ns)  # the application's, made before us
        self.kubectl("apply", "-f", os.path.join(KUBE, "daemon", "namespace.yaml"))
        self.kubectl("-n", "intermission", "create", "secret", "generic", "intermission-secrets",
                     "--from-literal=operator-token=" + "o" * 64, "--from-literal=webhook-secret=" + "w" * 64)
        # kubectl validates the objects against the fake's OpenAPI document first.
        dry = self.kubectl("apply", "--dry-run=server", "-f", self.manifest)
        self.assertIn("(server dry run)", dry.stdout)
        # A dry run stores nothing.
        self.assertEqual(self.get(f"/apis/apps/v1/namespaces/{app_ns}/deployments")[1]["items"], [])

        out = self.kubectl("apply", "-f", self.manifest)
        for o in self.objects:
            self.assertIn(f"/{o['metadata']['name']} ", out.stdout.replace(" created", " ").replace(
                " unchanged", " ") + " ")
        # Applying again changes nothing (kubectl may still send a patch: a PodDisruptionBudget's
        # selector has patch strategy "replace", so it is always in the patch).
        before = self.versions()
        again = self.kubectl("apply", "-f", self.manifest)
        self.assertNotIn("created", again.stdout)
        self.assertEqual(self.versions(), before)
        # The fake's controllers run the page pods; its Service gets ready endpoints on port http.
        deadline = time.monotonic() + 20
        while True:
            _, slices = self.get(f"/apis/discovery.k8s.io/v1/namespaces/{app_ns}/endpointslices"
                                 "?labelSelector=kubernetes.io%2Fservice-name%3Dintermission-page")
            ready = [e for s in slices["items"] for e in s.get("endpoints") or []
                     if (e.get("conditions") or {}).get("ready")]
            if len(ready) == 2:
                break
            self.assertLess(time.monotonic(), deadline, slices)
            time.sleep(0.2)
        self.assertEqual({(p["name"], p["port"]) for s in slices["items"] for p in s["ports"]},
                         {("http", 8080)})


# Verbs Kubernetes can limit to named objects (the name is in the request's path).
NAMEABLE_VERBS = {"get", "update", "patch", "delete"}
API_PATH = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)(?:/namespaces/(?P<ns>[^/]+))?"
                      r"/(?P<resource>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$")


def api_call(method, raw_path):
    """(namespace, group, resource, verb, name) of one API request, as RBAC sees it; None for
    discovery and other non-resource paths."""
    path, _, query = raw_path.partition("?")
    m = API_PATH.match(path)
    if not m or path in ("/api/v1", "/apis"):
        return None
    name, resource = m.group("name"), m.group("resource")
    if m.group("sub"):
        resource += "/" + m.group("sub")
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method)
    if method == "GET":
        verb = "watch" if re.search(r"(^|&)watch=(1|true)", query) else ("get" if name else "list")
    if method == "DELETE":
        verb = "delete" if name else "deletecollection"
    return (m.group("ns"), m.group("group") or "", resource, verb, name)


def grants(objects):
    """Every (namespace, group, resource, verb, name or None) the Roles bound to the daemon's
    ServiceAccount allow."""
    bound = {(b["metadata"]["namespace"], b["roleRef"]["name"]) for b in of_kind(objects, "RoleBinding")
             if any(s["kind"] == "ServiceAccount" and s["name"] == "intermission"
                    and s["namespace"] == "intermission" for s in b["subjects"])}
    out = set()
    for role in of_kind(objects, "Role"):
        ns = role["metadata"]["namespace"]
        if (ns, role["metadata"]["name"]) not in bound:
            continue
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        for name in rule.get("resourceNames") or [None]:
                            out.add((ns, group, resource, verb, name))
    return out


def rbac_mismatches(granted, calls):
    """What is wrong between the rules and the calls made: a call not granted, a rule no call
    used, a rule that could name its objects and does not."""
    problems = []
    for c in sorted(calls, key=str):
        if not any(g[:4] == c[:4] and g[4] in (None, c[4]) for g in granted):
            problems.append(f"missing: {c[3]} {c[2]} ({c[1] or 'core'}) {c[4] or ''} in {c[0]}")
    for g in sorted(granted, key=str):
        if not any(g[:4] == c[:4] and g[4] in (None, c[4]) for c in calls):
            problems.append(f"unused: {g[3]} {g[2]} ({g[1] or 'core'}) {g[4] or ''} in {g[0]}")
        elif g[4] is None and g[3] in NAMEABLE_VERBS:
            names = sorted({c[4] for c in calls if c[:4] == g[:4]})
            problems.append(f"unnamed: {g[3]} {g[2]} could name {names} in {g[0]}")
    return problems


class RbacMatchesTheCalls(unittest.TestCase):
    """The Roles of the example overlay, applied to the fake API server, against the calls the
    daemon's ServiceAccount makes there when the CLI (the same store and backend code as the
    daemon) switches the environment on and off and ticks: every call allowed, every rule
    used, every rule that Kubernetes lets name its objects naming them."""

    def test_pure_comparison(self):
        granted = {("a", "", "configmaps", "create", None), ("a", "", "configmaps", "get", "x")}
        self.assertEqual(rbac_mismatches(granted, {("a", "", "configmaps", "create", None),
                                                   ("a", "", "configmaps", "get", "x")}), [])
        self.assertEqual(rbac_mismatches(granted, {("a", "", "configmaps", "get", "x")}),
                         ["unused: create configmaps (core)  in a"])
        self.assertEqual(len(rbac_mismatches(granted, {("a", "", "configmaps", "create", None),
                                                       ("a", "", "configmaps", "get", "x"),
                                                       ("a", "", "configmaps", "get", "y")})), 1)
        self.assertEqual(rbac_mismatches({("a", "", "services", "get", None)},
                                         {("a", "", "services", "get", "web")}),
                         ["unnamed: get services could name ['web'] in a"])
        self.assertEqual(api_call("PUT", "/api/v1/namespaces/a/configmaps/x"),
                         ("a", "", "configmaps", "update", "x"))
        self.assertEqual(api_call("GET", "/apis/discovery.k8s.io/v1/namespaces/a/endpointslices?"
                                         "labelSelector=x"), ("a", "discovery.k8s.io", "endpointslices",
                                                              "list", None))
        self.assertIsNone(api_call("GET", "/apis"))

    def test_the_roles_allow_exactly_the_calls_made(self):
        objects = render("overlays/example")
        cm = named(objects, "ConfigMap", "intermission-config")
        config = yaml.safe_load(cm["data"]["config.yaml"])
        app_ns = named(objects, "Deployment", "intermission-page")["metadata"]["namespace"]
        fake = FakeK8s(tokens={SA_TOKEN: (SA_USER, SA_GROUPS)})
        try:
            with tempfile.TemporaryDirectory(prefix="intermission-rbac-") as tmp:
                manifest = os.path.join(tmp, "example.yaml")
                with open(manifest, "w") as f:
                    yaml.safe_dump_all(objects + self.application(app_ns), f)
                admin = fake.kubeconfig()
                for args in (["create", "namespace", app_ns], ["apply", "-f", manifest]):
                    out = subprocess.run([KUBECTL, "--kubeconfig", admin, "--cache-dir",
                                          os.path.join(tmp, "cache")] + args, capture_output=True,
                                         text=True, timeout=60)
                    self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
                env = dict(os.environ, KUBECONFIG=fake.kubeconfig(token=SA_TOKEN, name="sa"))
                env.pop("KUBERNETES_SERVICE_HOST", None)
                fake.control("DELETE", "requests")
                for environment in config["environments"]:
                    self.deploy_through_the_webhook(config, environment, env, tmp)
                requests = [r for r in fake.requests() if r["user"] == SA_USER]
        finally:
            fake.stop()
        refused = [r for r in requests if r["status"] in (401, 403)]
        self.assertEqual(refused, [])
        calls = {c for c in (api_call(r["method"], r["path"]) for r in requests) if c}
        self.assertTrue(calls)
        self.assertEqual(rbac_mismatches(grants(objects), calls), [])

    def deploy_through_the_webhook(self, config, environment, env, tmp):
        """Runs the daemon as the ServiceAccount (under strace: it must write no file, its root
        being read-only), sends the webhook of a deployment that starts and succeeds, waits for
        the switch on and back, and asks `status` with the CLI as an operator would in the pod.
        The config is the ConfigMap's, with loopback ports and the secrets' files moved here."""
        token, secret = "t" * 64, "s" * 64
        public, admin = free_ports(2)
        config = dict(config, serve=dict(config["serve"], listen=f"127.0.0.1:{public}",
                                         admin_listen=f"127.0.0.1:{admin}"))
        for key, value in (("operator_token_file", token), ("webhook_secret_file", secret)):
            path = os.path.join(tmp, key)
            with open(path, "w") as f:
                f.write(value)
            config["serve"][key] = path
        config_path = os.path.join(tmp, "config.yaml")
        with open(config_path, "w") as f:
            yaml.safe_dump(config, f)
        trace = os.path.join(tmp, "serve.trace")
        with open(os.path.join(tmp, "serve.log"), "w") as log:
            daemon = subprocess.Popen(
                ["strace", "-f", "-qq", "-o", trace, "-e", TRACED, BIN, "--config", config_path, "serve"],
                env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            def state():
                req = urllib.request.Request(f"http://127.0.0.1:{admin}/api/environments/{environment}",
                                             headers={"Authorization": "Bearer " + token})
                with urllib.request.urlopen(req, timeout=10) as r:
                    return json.loads(r.read())["environments"][0]

            def wait_applied(on):
                deadline = time.monotonic() + 60
                while True:
                    try:
                        s = state()
                        if s["applied"]["on"] is on and s["switching"] is None:
                            return s
                    except OSError:
                        pass
                    if daemon.poll() is not None or time.monotonic() > deadline:
                        with open(os.path.join(tmp, "serve.log")) as f:
                            self.fail(f"not switched {'on' if on else 'off'}: {f.read()[-3000:]}")
                    time.sleep(0.2)

            wait_applied(False)
            for status, on in (("started", True), ("succeeded", False)):
                body = json.dumps({"environment": environment, "deployment_id": "rbac-1",
                                   "status": status}).encode()
                ts = str(int(time.time()))
                sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
                req = urllib.request.Request(f"http://127.0.0.1:{public}/webhook", data=body, headers={
                    "X-Intermission-Timestamp": ts, "X-Intermission-Signature": "sha256=" + sig,
                    "Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=10) as r:
                    self.assertLess(r.status, 300)
                wait_applied(on)
            out = subprocess.run([BIN, "--config", config_path, "status", environment], env=env,
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        finally:
            with open(f"/proc/{daemon.pid}/task/{daemon.pid}/children") as f:
                for child in f.read().split():
                    os.kill(int(child), signal.SIGTERM)
            daemon.wait(timeout=60)
        self.assertEqual(traced_writes(trace), [])

    @staticmethod
    def application(namespace):
        """The application the example config switches: a Service on the named port http."""
        labels = {"app": "web"}
        return [
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "web", "namespace": namespace},
             "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                      "template": {"metadata": {"labels": labels},
                                   "spec": {"containers": [{"name": "web", "image": "web:1",
                                                            "ports": [{"name": "http",
                                                                       "containerPort": 3000}]}]}}}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": namespace},
             "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        ]


class ReadOnlyRoot(unittest.TestCase):
    """The pods mount the root file system read-only and give the page no volume at all: the
    page server must open nothing for writing while it serves and stops."""

    def test_the_page_server_writes_no_file(self):
        (port,) = free_ports(1)
        with tempfile.TemporaryDirectory(prefix="intermission-ro-") as tmp:
            trace = os.path.join(tmp, "trace")
            args = next(d for d in render("")
                        if d["kind"] == "Deployment" and d["metadata"]["name"] == "intermission-page"
                        )["spec"]["template"]["spec"]["containers"][0]["args"]
            args = [a.replace("0.0.0.0:8080", f"127.0.0.1:{port}") for a in args]
            proc = subprocess.Popen(
                ["strace", "-f", "-qq", "-o", trace, "-e", TRACED, BIN] + args,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                answers = []
                deadline = time.monotonic() + 20
                for path in ["/healthz", "/", "/some/page?x=1"]:
                    while True:
                        try:
                            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                                answers.append(r.status)
                        except urllib.error.HTTPError as e:
                            answers.append(e.code)
                        except OSError:
                            self.assertLess(time.monotonic(), deadline, "the page server did not start")
                            time.sleep(0.1)
                            continue
                        break
                self.assertEqual(answers, [200, 503, 503])
            finally:
                # The page server itself, strace's child: strace would only detach from it.
                with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                    for child in f.read().split():
                        os.kill(int(child), signal.SIGTERM)
                proc.wait(timeout=20)
            self.assertEqual(traced_writes(trace), [])


class Containerfile(unittest.TestCase):
    def test_two_stages_from_debian_12(self):
        stages = containerfile_stages()
        self.assertEqual([s[0] for s in stages],
                         ["FROM docker.io/library/debian:bookworm AS build",
                          "FROM docker.io/library/debian:bookworm-slim"])
        useradd = " ".join(line for line in stages[1][1] if "useradd" in line)
        self.assertIn("--uid 10001", useradd)
        self.assertIn("USER 10001:10001", stages[1][1])

    def test_runtime_packages_are_those_of_the_binary_libraries(self):
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                            subprocess.run(["readelf", "-d", BIN], capture_output=True, text=True,
                                           check=True).stdout)
        self.assertTrue(needed)
        # Where the loader finds each one: a name alone can belong to several packages
        # (libc.so.6 to libc6 and, for 32-bit programs, libc6-i386).
        resolved = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(
            ["ldd", BIN], capture_output=True, text=True, check=True).stdout, re.M))
        owners = set()
        for lib in needed:
            self.assertIn(lib, resolved)
            multiarch = os.path.basename(os.path.dirname(resolved[lib]))
            out = subprocess.run(["dpkg", "-S", f"*/{multiarch}/{lib}"], capture_output=True,
                                 text=True, check=True).stdout
            packages = {line.split(":")[0] for line in out.splitlines()}
            self.assertEqual(len(packages), 1, out)
            owners |= packages
        runtime = apt_packages(containerfile_stages()[1][1])
        self.assertEqual(len(runtime), len(set(runtime)), "listed once")
        self.assertEqual(set(runtime) - {"ca-certificates"}, owners)

    def test_build_packages_are_the_projects_own(self):
        with open(os.path.join(ROOT, "scripts", "install-deps.sh")) as f:
            text = f.read()
        project = set(re.search(r"packages=\((.*?)\n\)", text, re.S).group(1).split())
        build = apt_packages(containerfile_stages()[0][1])
        self.assertTrue(build)
        self.assertEqual(set(build) - project, set())

    def test_the_copied_files_are_enough_for_cmake(self):
        copies = [line.split()[1:] for line in containerfile_stages()[0][1]
                  if line.startswith("COPY ")]
        run = " ".join(line for line in containerfile_stages()[0][1] if "cmake -S" in line)
        flags = [w for w in shlex.split(run) if w.startswith("-D")]
        with tempfile.TemporaryDirectory(prefix="intermission-image-") as tmp:
            src = os.path.join(tmp, "src")
            os.makedirs(src)
            for source, dest in copies:
                target = os.path.join(src, dest)
                if os.path.isdir(os.path.join(ROOT, source)):
                    shutil.copytree(os.path.join(ROOT, source), target)
                else:
                    shutil.copy(os.path.join(ROOT, source), target)
            out = subprocess.run(["cmake", "-S", src, "-B", os.path.join(tmp, "build")] + flags,
                                 capture_output=True, text=True, timeout=120)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            targets = subprocess.run(["cmake", "--build", os.path.join(tmp, "build"), "--target",
                                      "help"], capture_output=True, text=True, timeout=60).stdout
            self.assertIn("intermission", targets.split())


if __name__ == "__main__":
    unittest.main()
