"""The kubernetes backend end to end: `intermission serve` against the fake API server
(testing/fake_k8s), a deployment started and ended through the signed webhook, each mode
switched on and off. Asserted from the fake's own record: the application's Service never had
zero ready endpoints (service mode), even when the application's pods were replaced during
maintenance and not yet Ready when the deployment ended; the page Service had ready endpoints
at the moment the HTTPRoute or Ingress was pointed at it and the application's Services had
them at the moment it was pointed back; the object after off equals the object before on but
for what the server owns; and a storm of 409s during a switch converges."""

import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import fake_k8s  # noqa: E402
from stack import BIN, free_ports, wait_for_port  # noqa: E402

SECRET = "webhook-secret-abcdef0123456789abcd"  # at least 32 characters
NS = "web"
SVC = f"/api/v1/namespaces/{NS}/services"
ROUTE = f"/apis/gateway.networking.k8s.io/v1/namespaces/{NS}/httproutes/shop"
INGRESS = f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses/shop"
ANNOTATION = "intermission.dev/original"


def wait_until(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def user_part(obj):
    """The object but for what the API server owns."""
    obj = json.loads(json.dumps(obj))
    for key in ("resourceVersion", "generation", "managedFields", "uid", "creationTimestamp"):
        obj.get("metadata", {}).pop(key, None)
    obj.pop("status", None)
    return obj


def held_by(holder, process):
    """Whether a lease holder id ("host/pid.start/random") names `process`."""
    return holder.split("/")[-2].split(".")[0] == str(process.pid)


class KubeBase(unittest.TestCase):
    def setUp(self):
        self.fake = fake_k8s.FakeK8s(endpoints=0.2, podReady=0.8, termination=0.5)
        self.addCleanup(self.fake.stop)
        self.tmp = tempfile.TemporaryDirectory(prefix="intermission-kube-e2e-")
        self.addCleanup(self.tmp.cleanup)
        self.req(SVC.replace(f"namespaces/{NS}/services", "namespaces"), "POST",
                 {"metadata": {"name": NS}})
        for i in range(2):
            self.fake.add_pod(NS, f"shop-{i}", {"app": "shop"}, ready=True,
                              ports=[{"name": "http", "containerPort": 3000}])
        self.create(SVC, {"metadata": {"name": "app", "labels": {"team": "shop"}},
                          "spec": {"selector": {"app": "shop"},
                                   "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        self.create(SVC, {"metadata": {"name": "page"},
                          "spec": {"selector": {"app": "intermission-page"},
                                   "ports": [{"name": "http", "port": 8080, "targetPort": "http"}]}})
        self.serve = None

    def tearDown(self):
        if self.serve is not None and self.serve.poll() is None:
            self.serve.terminate()
            self.serve.wait(timeout=20)

    # -- the fake -------------------------------------------------------------------------
    def req(self, path, method="GET", body=None):
        status, out = self.fake.request(method, path, body)
        self.assertLess(status, 300, f"{method} {path}: {status} {out}")
        return out

    def create(self, collection, obj):
        return self.req(collection, "POST", obj)

    def page_pods(self, n=2, ready=None):
        """Page pods the fake kubelet makes Ready after its delay (ready=None), or held Ready or
        not until set_ready."""
        for i in range(n):
            self.fake.add_pod(NS, f"page-{i}", {"app": "intermission-page"}, ready=ready,
                              ports=[{"name": "http", "containerPort": 8080}])

    def writes(self, path):
        """When each accepted PUT of `path` ended (time.time()), from the fake's request log."""
        return [r["time"] for r in self.fake.requests()
                if r["method"] == "PUT" and r["path"] == path and r["status"] == 200]

    def annotated(self, path):
        obj = self.req(path)
        return obj if ANNOTATION in obj["metadata"].get("annotations", {}) else None

    def app_pods_not_ready(self, services):
        """The application is being redeployed: its pods are not Ready, and the fake's
        endpoints say so for each of `services`."""
        self.fake.set_ready(NS, selector="app=shop", ready=False)
        for svc in services:
            wait_until(lambda: self.fake.endpoint_record(NS, svc)[-1]["ready"] == 0, what=f"{svc} unready")

    def assert_switched_with_ready_endpoints(self, path, app_services):
        """From the fake's records: `path` was written exactly twice (on, then off); the page
        Service had ready endpoints when it was pointed at, and kept them until the switch
        back; each of `app_services` had ready endpoints when it was pointed back at."""
        puts = self.writes(path)
        self.assertEqual(len(puts), 2, f"one write on, one off: {self.fake.requests()}")
        on, off = puts
        self.assertGreaterEqual(self.fake.min_ready(NS, "page", since=on, until=off), 1,
                                f"the page Service without a ready endpoint while users were sent to it: "
                                f"{self.fake.endpoint_record(NS, 'page')}")
        for svc in app_services:
            self.assertGreaterEqual(self.fake.min_ready(NS, svc, since=off, until=off), 1,
                                    f"users sent back to Service {svc} with no ready endpoint: "
                                    f"{self.fake.endpoint_record(NS, svc)}")

    # -- intermission ---------------------------------------------------------------------
    def start(self, backend):
        public, admin = free_ports(2)
        self.admin = admin
        config = self.config = os.path.join(self.tmp.name, "intermission.yaml")
        lines = "\n".join(f"      {k}: {json.dumps(v)}" for k, v in backend.items())
        with open(config, "w") as f:
            f.write(f"""store:
  path: state.db
environments:
  prod:
    backend:
      type: kubernetes
      namespace: {NS}
      page_service: page
      kubeconfig: {self.fake.kubeconfig()}
      poll_interval: 100ms
      health_timeout: 20s
{lines}
serve:
  listen: 127.0.0.1:{public}
  admin_listen: 127.0.0.1:{admin}
  tick_interval: 1s
""")
        self.public = public
        self.stderr = open(os.path.join(self.tmp.name, "serve.log"), "w+")
        self.addCleanup(self.stderr.close)
        env = dict(os.environ, INTERMISSION_WEBHOOK_SECRET=SECRET)
        self.serve = subprocess.Popen([BIN, "--config", config, "serve"], cwd=self.tmp.name, env=env,
                                      stdout=subprocess.DEVNULL, stderr=self.stderr, text=True)
        wait_for_port(public)
        wait_for_port(admin)

    def log(self):
        self.stderr.seek(0)
        return self.stderr.read()

    def webhook(self, deployment, status):
        ts = str(int(time.time()))
        raw = json.dumps({"environment": "prod", "deployment_id": deployment, "status": status})
        sig = "sha256=" + hmac.new(SECRET.encode(), f"{ts}.{raw}".encode(), hashlib.sha256).hexdigest()
        req = urllib.request.Request(f"http://127.0.0.1:{self.public}/webhook", data=raw.encode(),
                                     method="POST",
                                     headers={"X-Intermission-Timestamp": ts,
                                              "X-Intermission-Signature": sig})
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual(r.status, 200)


class KubeE2E(KubeBase):
    def test_service_mode_never_leaves_the_service_without_a_ready_endpoint(self):
        self.page_pods()
        wait_until(lambda: self.fake.endpoint_record(NS, "app")[-1]["ready"] == 2, what="app endpoints")
        before = user_part(self.req(SVC + "/app"))
        self.start({"mode": "service", "service": "app", "min_ready": 2})
        self.webhook("build-1", "started")
        on = wait_until(lambda: (lambda s: s if ANNOTATION in s["metadata"].get("annotations", {})
                                 else None)(self.req(SVC + "/app")), what="the switch on\n" + self.log())
        self.assertEqual(on["spec"]["selector"], {"app": "intermission-page"})
        self.assertEqual(json.loads(on["metadata"]["annotations"][ANNOTATION]),
                         {"selector": {"app": "shop"}})
        status = subprocess.run([BIN, "--config", self.config, "status", "prod"], cwd=self.tmp.name,
                                capture_output=True, text=True, timeout=30)
        self.assertIn("Service web/app points at the page (original kept in an annotation); page "
                      "Service web/page: 2 ready endpoint(s); application: 2 ready application pods "
                      "(app=shop)", status.stdout + status.stderr)

        # A deployment tool (Argo CD self-heal) re-applies the Service during maintenance: the
        # next tick sees it and points it at the page again.
        reapplied = self.req(SVC + "/app")
        reapplied["spec"]["selector"] = {"app": "shop"}
        self.req(SVC + "/app", "PUT", reapplied)
        wait_until(lambda: self.req(SVC + "/app")["spec"]["selector"] == {"app": "intermission-page"},
                   what="the re-applied Service switched again\n" + self.log())

        self.webhook("build-1", "succeeded")
        after = wait_until(lambda: (lambda s: s if ANNOTATION not in s["metadata"].get("annotations", {})
                                    else None)(self.req(SVC + "/app")), what="the switch off\n" + self.log())
        self.assertEqual(user_part(after), before)
        wait_until(lambda: self.fake.endpoint_record(NS, "app")[-1]["ready"] == 2, what="app endpoints back")
        record = self.fake.endpoint_record(NS, "app")
        first = next(i for i, r in enumerate(record) if r["ready"] > 0)
        self.assertTrue(all(r["ready"] > 0 for r in record[first:]),
                        f"a moment with no ready endpoint: {record}")

    def test_service_mode_waits_for_the_page_pods_and_a_conflict_storm_converges(self):
        before = user_part(self.req(SVC + "/app"))
        self.start({"mode": "service", "service": "app", "min_ready": 2})
        self.fake.inject_conflicts(SVC + "/app", count=6)
        self.webhook("build-2", "started")
        time.sleep(1.0)
        svc = self.req(SVC + "/app")
        self.assertEqual(svc["spec"]["selector"], {"app": "shop"}, "no page pod is ready yet")
        self.page_pods()
        wait_until(lambda: self.req(SVC + "/app")["spec"]["selector"] == {"app": "intermission-page"},
                   what="the switch on\n" + self.log())
        self.assertIn("lost a write race", self.log())
        self.webhook("build-2", "succeeded")
        after = wait_until(lambda: (lambda s: s if s["spec"]["selector"] == {"app": "shop"} else None)(
            self.req(SVC + "/app")), what="the switch off\n" + self.log())
        # The foreign writes of the storm are kept (an annotation the fake bumps); the rest is
        # as before.
        after["metadata"].get("annotations", {}).pop("fake-k8s.intermission/foreign-writes", None)
        if not after["metadata"].get("annotations"):
            after["metadata"].pop("annotations", None)
        self.assertEqual(user_part(after), before)
        record = self.fake.endpoint_record(NS, "app")
        first = next(i for i, r in enumerate(record) if r["ready"] > 0)
        self.assertTrue(all(r["ready"] > 0 for r in record[first:]), record)

    def test_service_mode_switch_back_waits_for_the_replaced_application_pods(self):
        self.page_pods()
        wait_until(lambda: self.fake.endpoint_record(NS, "app")[-1]["ready"] == 2, what="app endpoints")
        before = user_part(self.req(SVC + "/app"))
        self.start({"mode": "service", "service": "app", "min_ready": 2})
        self.webhook("build-5", "started")
        wait_until(lambda: self.annotated(SVC + "/app"), what="the switch on\n" + self.log())
        # The deployment replaces the application's pods; the new ones are not Ready when it
        # ends, and then one at a time.
        for i in range(2):
            self.req(f"/api/v1/namespaces/{NS}/pods/shop-{i}", "DELETE")
            self.fake.add_pod(NS, f"shop-new-{i}", {"app": "shop"}, ready=False,
                              ports=[{"name": "http", "containerPort": 3000}])
        wait_until(lambda: self.req(f"/api/v1/namespaces/{NS}/pods?labelSelector=app%3Dshop")["items"]
                   and all(p["metadata"]["name"].startswith("shop-new-") for p in self.req(
                       f"/api/v1/namespaces/{NS}/pods?labelSelector=app%3Dshop")["items"]),
                   what="the old application pods gone")
        self.webhook("build-5", "succeeded")
        time.sleep(1.0)
        self.assertIsNotNone(self.annotated(SVC + "/app"), "switched back to pods that are not Ready")
        self.fake.set_ready(NS, "shop-new-0")
        time.sleep(1.0)
        self.assertIsNotNone(self.annotated(SVC + "/app"), "switched back with 1 ready pod, min_ready 2")
        ready = time.time()
        self.fake.set_ready(NS, "shop-new-1")
        after = wait_until(lambda: not self.annotated(SVC + "/app") and self.req(SVC + "/app"),
                           what="the switch off\n" + self.log())
        self.assertEqual(user_part(after), before)
        on, off = self.writes(SVC + "/app")
        self.assertGreater(off, ready)
        new_ips = sorted(p["status"]["podIP"] for p in self.req(
            f"/api/v1/namespaces/{NS}/pods?labelSelector=app%3Dshop")["items"])
        wait_until(lambda: self.fake.endpoint_record(NS, "app")[-1]["addresses"] == new_ips,
                   what="the Service's endpoints on the new pods")
        record = self.fake.endpoint_record(NS, "app")
        first = next(i for i, r in enumerate(record) if r["ready"] > 0)
        self.assertTrue(all(r["ready"] >= 2 for r in record[first:]),
                        f"fewer ready endpoints than min_ready: {record}")

    def test_httproute_mode_switches_backend_refs_with_a_bypass_and_restores_exactly(self):
        self.page_pods(1, ready=False)
        self.create(SVC, {"metadata": {"name": "api"},
                          "spec": {"selector": {"app": "shop"}, "ports": [{"port": 80, "targetPort": 3000}]}})
        route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                 "metadata": {"name": "shop", "annotations": {"owner": "team-shop"}},
                 "spec": {"parentRefs": [{"name": "gw", "sectionName": "https"}],
                          "hostnames": ["shop.example"],
                          "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                                     "backendRefs": [{"name": "api", "port": 80, "weight": 3}]},
                                    {"backendRefs": [{"name": "app", "port": 80}]}]}}
        self.create(ROUTE.rsplit("/", 1)[0], route)
        before = user_part(self.req(ROUTE))
        self.start({"mode": "httproute", "route": "shop", "bypass_secret": "let-me-in"})
        self.webhook("build-3", "started")
        time.sleep(1.0)
        self.assertEqual(self.writes(ROUTE), [], "no page pod is ready yet")
        self.fake.set_ready(NS, selector="app=intermission-page")
        on = wait_until(lambda: self.annotated(ROUTE), what="the switch on\n" + self.log())
        self.assertEqual(on["spec"]["parentRefs"], before["spec"]["parentRefs"])
        self.assertEqual(on["spec"]["hostnames"], before["spec"]["hostnames"])
        rules = on["spec"]["rules"]
        self.assertEqual(len(rules), 4, rules)
        self.assertEqual(rules[0]["backendRefs"], before["spec"]["rules"][0]["backendRefs"])
        self.assertIn({"type": "Exact", "name": "X-Intermission-Bypass", "value": "let-me-in"},
                      rules[0]["matches"][0]["headers"])
        for r in rules[2:]:
            self.assertEqual([b["name"] for b in r["backendRefs"]], ["page"])
        # The deployment ends while the new application pods are not Ready yet: the route
        # stays on the page until both Services it took users from have ready endpoints.
        self.app_pods_not_ready(["app", "api"])
        self.webhook("build-3", "succeeded")
        time.sleep(1.0)
        self.assertIsNotNone(self.annotated(ROUTE), "switched back to Services with no ready endpoint")
        self.fake.set_ready(NS, selector="app=shop")
        after = wait_until(lambda: not self.annotated(ROUTE) and self.req(ROUTE), what="the switch off\n" + self.log())
        self.assertEqual(user_part(after), before)
        self.assert_switched_with_ready_endpoints(ROUTE, ["app", "api"])

    def test_ingress_mode_switches_the_named_paths_and_restores_exactly(self):
        self.page_pods(1, ready=False)
        ingress = {"metadata": {"name": "shop"},
                   "spec": {"ingressClassName": "nginx",
                            "rules": [{"host": "shop.example", "http": {"paths": [
                                {"path": "/", "pathType": "Prefix",
                                 "backend": {"service": {"name": "app", "port": {"name": "http"}}}},
                                {"path": "/static", "pathType": "Prefix",
                                 "backend": {"service": {"name": "cdn", "port": {"number": 80}}}}]}}]}}
        self.create(INGRESS.rsplit("/", 1)[0], ingress)
        before = user_part(self.req(INGRESS))
        self.start({"mode": "ingress", "ingress": "shop", "paths": ["/"]})
        self.webhook("build-4", "started")
        time.sleep(1.0)
        self.assertEqual(self.writes(INGRESS), [], "no page pod is ready yet")
        self.fake.set_ready(NS, selector="app=intermission-page")
        on = wait_until(lambda: self.annotated(INGRESS), what="the switch on\n" + self.log())
        paths = on["spec"]["rules"][0]["http"]["paths"]
        self.assertEqual(paths[0]["backend"], {"service": {"name": "page", "port": {"number": 8080}}})
        self.assertEqual(paths[1], before["spec"]["rules"][0]["http"]["paths"][1])
        self.app_pods_not_ready(["app"])
        self.webhook("build-4", "succeeded")
        time.sleep(1.0)
        self.assertIsNotNone(self.annotated(INGRESS), "switched back to a Service with no ready endpoint")
        self.fake.set_ready(NS, selector="app=shop")
        after = wait_until(lambda: not self.annotated(INGRESS) and self.req(INGRESS),
                           what="the switch off\n" + self.log())
        self.assertEqual(user_part(after), before)
        # Only the switched path's Service counts: "cdn" (kept on /static) does not even exist.
        self.assert_switched_with_ready_endpoints(INGRESS, ["app"])


class KubeReplicas(KubeBase):
    """Two daemons sharing the Kubernetes store (a ConfigMap and a Lease) and no database: the
    one holding the lease is killed while it waits for the page pods; the other takes over once
    the Lease has run out and finishes the switch, then switches back."""

    # The holder must still be waiting when the test kills it: its wait (health_timeout, 5 s;
    # it must fit in the lease) leaves the test ample time to see who holds the lease.
    LEASE_SECONDS = 6

    def start_replica(self, name):
        public, admin = free_ports(2)
        config = os.path.join(self.tmp.name, f"{name}.yaml")
        with open(config, "w") as f:
            f.write(f"""store:
  type: kubernetes
  namespace: ops
  kubeconfig: {self.fake.kubeconfig()}
  lease: {self.LEASE_SECONDS}s
environments:
  prod:
    backend:
      type: kubernetes
      namespace: {NS}
      mode: service
      service: app
      page_service: page
      kubeconfig: {self.fake.kubeconfig()}
      poll_interval: 100ms
      health_timeout: 5s
serve:
  listen: 127.0.0.1:{public}
  admin_listen: 127.0.0.1:{admin}
  tick_interval: 1s
""")
        log = open(os.path.join(self.tmp.name, f"{name}.log"), "w+")
        self.addCleanup(log.close)
        env = dict(os.environ, INTERMISSION_WEBHOOK_SECRET=SECRET)
        proc = subprocess.Popen([BIN, "--config", config, "serve"], cwd=self.tmp.name, env=env,
                                stdout=subprocess.DEVNULL, stderr=log, text=True)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait(timeout=20)))
        wait_for_port(public)
        wait_for_port(admin)
        return proc, public, log

    def lease_holder(self):
        leases = self.req("/apis/coordination.k8s.io/v1/namespaces/ops/leases")["items"]
        return leases[0]["spec"].get("holderIdentity") or "" if leases else ""

    def test_a_killed_holder_is_taken_over_by_the_other_replica(self):
        self.req(SVC.replace(f"namespaces/{NS}/services", "namespaces"), "POST",
                 {"metadata": {"name": "ops"}})
        for i in range(2):  # page pods that do not become Ready until the test says so
            self.fake.add_pod(NS, f"page-{i}", {"app": "intermission-page"}, ready=False,
                              ports=[{"name": "http", "containerPort": 8080}])
        before = user_part(self.req(SVC + "/app"))
        a, a_port, a_log = self.start_replica("a")
        b, b_port, b_log = self.start_replica("b")
        self.public = a_port
        self.webhook("build-9", "started")
        # A (or B, on its tick) holds the lease and waits for the page pods; kill the holder.
        holder = wait_until(self.lease_holder, what="a lease holder")
        victim, survivor = (a, b) if held_by(holder, a) else (b, a)
        self.assertTrue(held_by(holder, victim), f"the holder is neither replica: {holder}")
        victim.kill()
        killed = time.monotonic()
        victim.wait(timeout=20)
        self.fake.set_ready(NS, selector="app=intermission-page", ready=True)
        on = wait_until(lambda: (lambda s: s if s["spec"]["selector"] == {"app": "intermission-page"}
                                 else None)(self.req(SVC + "/app")), timeout=30,
                        what="the survivor switching on")
        # The survivor waited for the dead holder's Lease to run out: it never overwrote it.
        self.assertGreaterEqual(time.monotonic() - killed, self.LEASE_SECONDS - 1.5)
        self.assertIn(ANNOTATION, on["metadata"]["annotations"])
        holder = self.lease_holder()
        self.assertTrue(holder is None or held_by(holder, survivor), holder)
        self.public = b_port if survivor is b else a_port
        self.webhook("build-9", "succeeded")
        after = wait_until(lambda: (lambda s: s if ANNOTATION not in s["metadata"].get("annotations", {})
                                    else None)(self.req(SVC + "/app")), timeout=30, what="the switch off")
        self.assertEqual(user_part(after), before)
        self.assertEqual(survivor.poll(), None, "the survivor is still running")


if __name__ == "__main__":
    unittest.main()
