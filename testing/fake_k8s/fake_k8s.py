#!/usr/bin/python3
"""A fake Kubernetes API server for tests, on loopback HTTPS, as unkind as the real one.

Serves the resources intermission uses (kube_model.RESOURCES) with the API server's semantics:
one global resourceVersion, 409 on a stale write, JSON merge / JSON / (approximated) strategic
merge patches, Status errors worded as the API server words them, bearer-token and client-
certificate authentication, RBAC evaluated from the Roles and bindings stored in it, discovery
as kubectl and the Python client read it, watch. Controllers with delays stand in for the
cluster: an EndpointSlice controller (readiness reaches the slices a delay after a pod's),
a Deployment controller, a kubelet that makes pods Ready after a delay, graceful pod deletion.
Every Service's ready-endpoint count is recorded at each change.

Control API under /__fake/ (users in group system:masters only): see README.md.
Run: fake_k8s.py --cert C --key K [--client-ca CA [--tls-accept-ca CA2]] --token-file F
--port-file P [--port N]."""

import argparse
import base64
import copy
import csv
import hashlib
import heapq
import json
import math
import os
import random
import re
import select
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kube_model as km  # noqa: E402
from kube_model import ApiError  # noqa: E402

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
HOLD_READY_ANNOTATION = "fake-k8s.intermission/hold-ready"  # "true": the fake kubelet never readies it
MAX_BODY = 3 * 1024 * 1024  # k/k staging/src/k8s.io/apiserver/pkg/server/config.go MaxRequestBodyBytes
DEFAULT_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"]


def now_rfc3339(t=None):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t if t is not None else time.time()))


def random_suffix(n=5):
    # k/k staging/src/k8s.io/apimachinery/pkg/util/rand/rand.go: consonants and digits only.
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


def pod_ready(pod):
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


class World:
    """Everything the fake holds, behind one lock. Controllers run on one scheduler thread."""

    def __init__(self, delays):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.rv = 100
        self.objects = {r.plural: {} for r in km.RESOURCES}  # plural -> {(ns, name): obj}
        self.delays = dict(delays)  # endpoints, podReady, deployment, termination (seconds)
        self.auto_ready = True
        self.events = []  # (rv, plural, type, obj) for watch, the last 2000
        self.requests = []
        self.faults = []  # {"method", "path" (regex), "status", "count", "retryAfter", "seconds"}
        self.conflicts = {}  # (plural, ns, name) -> writes left that a foreign writer precedes
        self.endpoint_record = {}  # "ns/name" -> [{"time", "ready", "addresses"}]
        self.held = set()  # uids of pods whose readiness a test set: the fake kubelet leaves them
        self.next_ip = 1
        self.next_cluster_ip = 10
        self.timers = []  # heap of (when, seq, fn)
        self.timer_seq = 0
        self.timer_wake = threading.Condition(self.lock)
        with self.lock:
            for ns in DEFAULT_NAMESPACES:
                self._store_new(km.BY_PATH[("", "v1", "namespaces")], "", {
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns},
                    "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
            # The bootstrap superuser role and its binding to system:masters (k/k plugin/pkg/auth/
            # authorizer/rbac/bootstrappolicy/policy.go), for bindings that reference it.
            self._store_new(km.BY_PATH[("rbac.authorization.k8s.io", "v1", "clusterroles")], "", {
                "metadata": {"name": "cluster-admin", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
                "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                          {"nonResourceURLs": ["*"], "verbs": ["*"]}]})
            self._store_new(km.BY_PATH[("rbac.authorization.k8s.io", "v1", "clusterrolebindings")], "", {
                "metadata": {"name": "cluster-admin", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]})
        threading.Thread(target=self._timer_loop, daemon=True).start()

    # --- scheduler ---------------------------------------------------------------------------

    def after(self, seconds, fn):
        with self.lock:
            self.timer_seq += 1
            heapq.heappush(self.timers, (time.monotonic() + seconds, self.timer_seq, fn))
            self.timer_wake.notify_all()

    def _timer_loop(self):
        while True:
            with self.lock:
                while not self.timers or self.timers[0][0] > time.monotonic():
                    timeout = (self.timers[0][0] - time.monotonic()) if self.timers else None
                    self.timer_wake.wait(timeout)
                _, _, fn = heapq.heappop(self.timers)
                try:
                    fn()
                except Exception as e:  # a controller bug must not stop the fake
                    print(f"fake_k8s: controller error: {e!r}", file=sys.stderr)

    # --- storage primitives (lock held) ------------------------------------------------------

    def _bump(self):
        self.rv += 1
        return str(self.rv)

    def _event(self, res, kind, obj):
        self.events.append((int(obj["metadata"]["resourceVersion"]), res.plural, kind, copy.deepcopy(obj)))
        del self.events[:-2000]
        self.changed.notify_all()

    def _store_new(self, res, ns, obj):
        meta = obj.setdefault("metadata", {})
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if res.namespaced:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if res.generation:
            meta["generation"] = 1
        meta["resourceVersion"] = self._bump()
        obj["apiVersion"], obj["kind"] = res.group_version, res.kind
        self.objects[res.plural][(ns, meta["name"])] = obj
        self._event(res, "ADDED", obj)
        self._after_change(res, ns, None, obj)
        return obj

    def _store_update(self, res, ns, old, obj):
        obj["metadata"]["resourceVersion"] = self._bump()
        self.objects[res.plural][(ns, obj["metadata"]["name"])] = obj
        self._event(res, "MODIFIED", obj)
        self._after_change(res, ns, old, obj)
        return obj

    def _store_delete(self, res, ns, name):
        obj = self.objects[res.plural].pop((ns, name), None)
        if obj is None:
            return None
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = self._bump()
        self._event(res, "DELETED", obj)
        self._after_change(res, ns, obj, None)
        return obj

    def get(self, res, ns, name):
        return self.objects[res.plural].get((ns, name))

    # --- the API verbs (lock held by the caller through api()) --------------------------------

    def _check_namespace(self, res, ns, name):
        # NamespaceLifecycle admission (k/k staging/src/k8s.io/apiserver/pkg/admission/plugin/
        # namespace/lifecycle/admission.go): no creates in a missing or terminating namespace.
        if not res.namespaced:
            return
        nsres = km.BY_PATH[("", "v1", "namespaces")]
        nsobj = self.get(nsres, "", ns)
        if nsobj is None:
            raise km.not_found(nsres, ns)
        if (nsobj.get("status") or {}).get("phase") == "Terminating":
            raise ApiError(403, "Forbidden",
                           f'{res.qualified} "{name}" is forbidden: unable to create new '
                           f'content in namespace {ns} because it is being terminated',
                           {"name": name, "kind": res.plural})

    def create(self, res, ns, body, dry_run):
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {}) or {}
        obj["metadata"] = meta
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + random_suffix()
        if res.namespaced and meta.get("namespace") not in (None, "", ns):
            raise km.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        for key in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation"):
            meta.pop(key, None)
        km.validate(res, obj, ns)
        self._fold_string_data(res, obj)
        self._check_namespace(res, ns, meta["name"])
        if res.plural == "pods":
            self._admit_pod(ns, obj)
        if self.get(res, ns, meta["name"]) is not None:
            raise km.already_exists(res, meta["name"])
        self._defaults_on_create(res, ns, obj)
        if dry_run:
            out = copy.deepcopy(obj)
            out["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339())
            out["apiVersion"], out["kind"] = res.group_version, res.kind
            if res.namespaced:
                out["metadata"]["namespace"] = ns
            return out
        return copy.deepcopy(self._store_new(res, ns, obj))

    def update(self, res, ns, name, body, subresource, dry_run, foreign=True):
        """PUT semantics (k/k staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go
        Update): a missing object is 404 (AllowCreateOnUpdate is false for our kinds), a
        metadata.resourceVersion that is not the stored one is 409 Conflict, none at all is an
        unconditional update (AllowUnconditionalUpdate is true for our kinds)."""
        old = self.get(res, ns, name)
        if old is None:
            raise km.not_found(res, name)
        if foreign:
            self._foreign_write(res, ns, name)
        old = self.get(res, ns, name)
        obj = copy.deepcopy(body)
        if not isinstance(obj, dict):
            raise km.bad_request("the body of the request was in an unknown format")
        meta = obj.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise km.bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
        if res.namespaced and meta.get("namespace") not in (None, "", ns):
            raise km.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["name"] = name
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise km.conflict(res, name)
        # The server owns these: uid, creationTimestamp, generation, deletionTimestamp.
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if key in old["metadata"]:
                meta[key] = old["metadata"][key]
            else:
                meta.pop(key, None)
        if subresource == "status":
            new = copy.deepcopy(old)
            new["status"] = obj.get("status")
            obj = new
        elif res.status:
            # Writes to the main resource leave status alone (each kind's PrepareForUpdate).
            if "status" in old:
                obj["status"] = copy.deepcopy(old["status"])
            else:
                obj.pop("status", None)
        obj["apiVersion"], obj["kind"] = res.group_version, res.kind
        if res.namespaced:
            meta["namespace"] = ns
        km.validate(res, obj, ns)
        self._fold_string_data(res, obj)
        self._check_immutable(res, old, obj)
        if res.generation:
            gen = old["metadata"].get("generation", 1)
            if {k: v for k, v in obj.items() if k not in ("metadata", "status")} != \
                    {k: v for k, v in old.items() if k not in ("metadata", "status")}:
                gen += 1
            meta["generation"] = gen
        if dry_run:
            out = copy.deepcopy(obj)
            out["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return out
        def without_rv(o):
            return {**o, "metadata": {k: v for k, v in o["metadata"].items() if k != "resourceVersion"}}
        if without_rv(obj) == without_rv(old):
            # A no-op write does not bump the resourceVersion (store.go GuaranteedUpdate).
            return copy.deepcopy(old)
        return copy.deepcopy(self._store_update(res, ns, old, obj))

    def delete(self, res, ns, name, dry_run, grace=None, precondition_rv=None):
        obj = self.get(res, ns, name)
        if obj is None:
            raise km.not_found(res, name)
        if precondition_rv and precondition_rv != obj["metadata"]["resourceVersion"]:
            # store.go Delete with Preconditions.ResourceVersion.
            raise km.conflict(res, name)
        if dry_run:
            return copy.deepcopy(obj), True
        if res.plural == "pods" and (grace is None or grace > 0):
            # Graceful deletion (k/k pkg/registry/core/pod/strategy.go CheckGracefulDelete): the pod
            # stays, with deletionTimestamp, until the kubelet has stopped it.
            if obj["metadata"].get("deletionTimestamp"):
                return copy.deepcopy(obj), True
            new = copy.deepcopy(obj)
            secs = self.delays["termination"]
            new["metadata"]["deletionTimestamp"] = now_rfc3339(time.time() + secs)
            new["metadata"]["deletionGracePeriodSeconds"] = int(grace if grace is not None else 30)
            self._store_update(res, ns, obj, new)
            self.after(secs, lambda: self._store_delete(res, ns, name))
            return copy.deepcopy(new), True
        if res.plural == "namespaces":
            # Namespace deletion: phase Terminating, the content goes, then the namespace
            # (k/k pkg/controller/namespace/deletion/namespaced_resources_deleter.go).
            new = copy.deepcopy(obj)
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["status"] = {"phase": "Terminating"}
            self._store_update(res, ns, obj, new)

            def finish():
                for r in km.RESOURCES:
                    if r.namespaced:
                        for (ons, oname) in list(self.objects[r.plural]):
                            if ons == name:
                                self._store_delete(r, ons, oname)
                self._store_delete(res, "", name)
            self.after(self.delays["termination"], finish)
            return copy.deepcopy(new), True
        self._store_delete(res, ns, name)
        return obj, False

    def _admit_pod(self, ns, pod):
        """The ServiceAccount admission plugin (k/k plugin/pkg/admission/serviceaccount/
        admission.go): a pod's service account (default "default") must exist."""
        sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        pod.setdefault("spec", {})["serviceAccountName"] = sa
        if self.get(km.BY_PATH[("", "v1", "serviceaccounts")], ns, sa) is None:
            name = (pod.get("metadata") or {}).get("name", "")
            raise ApiError(403, "Forbidden", f'pods "{name}" is forbidden: error looking up service account '
                                             f'{ns}/{sa}: serviceaccount "{sa}" not found',
                           {"name": name, "kind": "pods"})

    def _foreign_write(self, res, ns, name):
        """An injected conflict: another writer changes the object just before this write."""
        key = (res.plural, ns, name)
        if self.conflicts.get(key, 0) > 0 and self.get(res, ns, name) is not None:
            self.conflicts[key] -= 1
            old = self.get(res, ns, name)
            new = copy.deepcopy(old)
            ann = new["metadata"].setdefault("annotations", {})
            ann["fake-k8s.intermission/foreign-writes"] = str(int(ann.get("fake-k8s.intermission/foreign-writes", "0")) + 1)
            self._store_update(res, ns, old, new)

    @staticmethod
    def _fold_string_data(res, obj):
        """A Secret's stringData is write-only: merged into data, base64-encoded, never stored
        (k/k pkg/apis/core/v1/conversion.go Convert_v1_Secret_To_core_Secret)."""
        if res.plural == "secrets" and obj.get("stringData"):
            data = obj.setdefault("data", {}) or {}
            for k, v in obj.pop("stringData").items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            obj["data"] = data
        elif res.plural == "secrets":
            obj.pop("stringData", None)

    def _check_immutable(self, res, old, new):
        if res.plural == "services":
            o, n = old.get("spec") or {}, new.setdefault("spec", {})
            # Allocated values are carried over when left out (k/k pkg/registry/core/service/
            # storage/storage.go patchAllocatedValues); a changed clusterIP is refused.
            for key in ("clusterIP", "clusterIPs"):
                if key in o and not n.get(key):
                    n[key] = copy.deepcopy(o[key])
            self._default_service(n)  # defaulting runs on every decode, not only on create
            if n.get("clusterIP") != o.get("clusterIP"):
                raise km.invalid(res, new["metadata"]["name"], [km.FieldError(
                    "FieldValueInvalid", "spec.clusterIPs[0]", n.get("clusterIP"),
                    "may not change once set")])
        if res.plural == "deployments":
            if (old.get("spec") or {}).get("selector") != (new.get("spec") or {}).get("selector"):
                raise km.invalid(res, new["metadata"]["name"], [km.FieldError(
                    "FieldValueInvalid", "spec.selector", str((new.get("spec") or {}).get("selector")),
                    "field is immutable")])

    @staticmethod
    def _default_service(spec):
        """Service defaults (k/k pkg/apis/core/v1/defaults.go SetDefaults_Service)."""
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))

    def _defaults_on_create(self, res, ns, obj):
        if res.plural == "secrets":
            obj.setdefault("type", "Opaque")
        if res.plural == "services":
            spec = obj.setdefault("spec", {})
            if spec.get("clusterIP") != "None":
                ip = f"10.96.{self.next_cluster_ip // 250}.{self.next_cluster_ip % 250 + 1}"
                self.next_cluster_ip += 1
                spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
            self._default_service(spec)
            obj["status"] = {"loadBalancer": {}}
        elif res.plural == "pods":
            self._new_pod_status(obj)
        elif res.plural == "deployments":
            spec = obj.setdefault("spec", {})
            spec.setdefault("replicas", 1)
            spec.setdefault("strategy", {"type": "RollingUpdate",
                                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            obj["status"] = {}
        elif res.plural == "namespaces":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        elif res.status:
            obj.pop("status", None)
        elif res.plural == "selfsubjectaccessreviews":
            pass

    def _new_pod_status(self, pod):
        ip = f"10.{(self.next_ip >> 16) & 255 or 1}.{(self.next_ip >> 8) & 255}.{self.next_ip & 255 or 1}"
        self.next_ip += 1
        pod.setdefault("spec", {}).setdefault("nodeName", "fake-node-1")
        now = now_rfc3339()
        pod["status"] = {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.168.0.10",
            "startTime": now,
            "conditions": [{"type": t, "status": "True" if t == "PodScheduled" else "False",
                            "lastProbeTime": None, "lastTransitionTime": now}
                           for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]}

    # --- controllers (lock held) -------------------------------------------------------------

    def _after_change(self, res, ns, old, new):
        if res.plural == "namespaces" and old is None:
            # The ServiceAccount controller gives every namespace a "default" account (k/k
            # pkg/controller/serviceaccount/serviceaccounts_controller.go).
            self._store_new(km.BY_PATH[("", "v1", "serviceaccounts")], new["metadata"]["name"],
                            {"metadata": {"name": "default"}})
        if res.plural == "serviceaccounts" and old is None:
            for (dns, dname) in list(self.objects["deployments"]):
                if dns == ns:  # a ReplicaSet that failed to create pods tries again
                    self.after(self.delays["deployment"], lambda n=dname: self.sync_deployment(ns, n))
        if res.plural == "services":
            name = (new or old)["metadata"]["name"]
            if old is None:
                self._record_endpoints(ns, name)  # a new Service has no ready endpoint yet
            self._schedule_slices(ns, name)
        elif res.plural == "pods":
            labels = [((o or {}).get("metadata") or {}).get("labels") or {} for o in (old, new)]
            for (sns, sname), svc in list(self.objects["services"].items()):
                sel = (svc.get("spec") or {}).get("selector")
                if sns == ns and sel and any(all(l.get(k) == v for k, v in sel.items()) for l in labels):
                    self._schedule_slices(ns, sname)
            for o in (old, new):
                for ref in ((o or {}).get("metadata") or {}).get("ownerReferences") or []:
                    if ref.get("kind") == "Deployment":
                        self.after(min(0.05, self.delays["deployment"]),
                                   lambda n=ref["name"]: self.sync_deployment(ns, n))
            if old is None and new is not None:
                self._schedule_ready(ns, new)
        elif res.plural == "deployments":
            name = (new or old)["metadata"]["name"]
            if new is None or old is None or old.get("spec") != new.get("spec"):
                self.after(self.delays["deployment"], lambda: self.sync_deployment(ns, name))
        elif res.plural == "endpointslices":
            svc = (((new or old).get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
            if svc:
                self._record_endpoints(ns, svc)
        elif res.plural == "httproutes" and new is not None and (old is None or old.get("spec") != new.get("spec")):
            name = new["metadata"]["name"]
            self.after(self.delays["endpoints"], lambda: self.sync_route(ns, name))
        if res.plural in ("services", "gateways") and (old is None or new is None):
            # A backend or a parent appearing or going changes the routes' conditions.
            for (rns, rname) in list(self.objects["httproutes"]):
                self.after(self.delays["endpoints"], lambda n=rname, m=rns: self.sync_route(m, n))

    def sync_route(self, ns, name):
        """A Gateway controller's status for an HTTPRoute (Gateway API apis/v1/httproute_types.go,
        shared_types.go RouteParentStatus): for each parentRef to a Gateway the fake holds, an
        entry with controllerName and the conditions Accepted (True) and ResolvedRefs (False with
        reason BackendNotFound while a backendRef names a Service that does not exist), each
        with the route's observedGeneration. Parents that do not exist get no entry: no
        controller owns them. Written `endpoints` seconds after the change."""
        rres = km.BY_PATH[("gateway.networking.k8s.io", "v1", "httproutes")]
        route = self.get(rres, ns, name)
        if route is None:
            return
        spec = route.get("spec") or {}
        gen = route["metadata"].get("generation", 1)
        missing = [b.get("name") for rule in spec.get("rules") or [] for b in rule.get("backendRefs") or []
                   if b.get("kind", "Service") == "Service" and b.get("group", "") == ""
                   and self.get(km.BY_PATH[("", "v1", "services")], b.get("namespace", ns), b.get("name")) is None]
        now = now_rfc3339()
        parents = []
        for ref in spec.get("parentRefs") or []:
            if ref.get("kind", "Gateway") != "Gateway" or self.get(
                    km.BY_PATH[("gateway.networking.k8s.io", "v1", "gateways")], ref.get("namespace", ns),
                    ref.get("name")) is None:
                continue
            resolved = {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs",
                        "message": "Resolved all the Object references for the Route",
                        "observedGeneration": gen, "lastTransitionTime": now}
            if missing:
                resolved.update(status="False", reason="BackendNotFound",
                                message=f'Service "{missing[0]}" not found')
            parents.append({"parentRef": ref, "controllerName": "fake-k8s.intermission/gateway-controller",
                            "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                                            "message": "Route is accepted", "observedGeneration": gen,
                                            "lastTransitionTime": now}, resolved]})
        status = {"parents": parents}
        old_parents = (route.get("status") or {}).get("parents")
        strip = lambda ps: [{**p, "conditions": [{k: v for k, v in c.items() if k != "lastTransitionTime"}  # noqa: E731
                                                 for c in p["conditions"]]} for p in ps or []]
        if strip(old_parents) != strip(parents):
            new = copy.deepcopy(route)
            new["status"] = status
            self._store_update(rres, ns, route, new)

    def _schedule_ready(self, ns, pod):
        ann = pod["metadata"].get("annotations") or {}
        if not self.auto_ready or ann.get(HOLD_READY_ANNOTATION) == "true":
            return
        uid = pod["metadata"]["uid"]
        name = pod["metadata"]["name"]

        def ready():
            cur = self.get(km.BY_PATH[("", "v1", "pods")], ns, name)
            if cur is not None and cur["metadata"]["uid"] == uid and uid not in self.held:
                self.set_pod_ready(ns, name, True)
        self.after(self.delays["podReady"], ready)

    def set_pod_ready(self, ns, name, ready):
        """The kubelet's readiness probe result: Ready and ContainersReady conditions."""
        res = km.BY_PATH[("", "v1", "pods")]
        old = self.get(res, ns, name)
        if old is None:
            raise km.not_found(res, name)
        if pod_ready(old) == ready:
            return old
        new = copy.deepcopy(old)
        for c in new["status"]["conditions"]:
            if c["type"] in ("Ready", "ContainersReady"):
                c["status"] = "True" if ready else "False"
                c["lastTransitionTime"] = now_rfc3339()
        return self._store_update(res, ns, old, new)

    def _record_endpoints(self, ns, svc):
        addresses = []
        for (sns, _), sl in self.objects["endpointslices"].items():
            if sns == ns and (sl["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == svc:
                for ep in sl.get("endpoints") or []:
                    # A nil ready condition means ready (k/k staging/src/k8s.io/api/discovery/v1/types.go).
                    if (ep.get("conditions") or {}).get("ready", True) is not False:
                        addresses.extend(ep.get("addresses") or [])
        record = self.endpoint_record.setdefault(f"{ns}/{svc}", [])
        addresses.sort()
        if not record or record[-1]["addresses"] != addresses:
            record.append({"time": time.time(), "ready": len(addresses), "addresses": addresses})

    def _schedule_slices(self, ns, svc_name):
        """The controller sees the world `endpoints` seconds late: what the Service and its
        namespace's pods are now is written to the slices that much later, in order, so no
        change reaches them sooner (a pending sync does not pick up a newer state early)."""
        svc = self.get(km.BY_PATH[("", "v1", "services")], ns, svc_name)
        pods = [copy.deepcopy(p) for (pns, _), p in sorted(self.objects["pods"].items()) if pns == ns]
        snapshot = (copy.deepcopy(svc), pods)
        self.after(self.delays["endpoints"], lambda: self.sync_slices(ns, svc_name, snapshot))

    def sync_slices(self, ns, svc_name, snapshot):
        """The EndpointSlice controller (k/k staging/src/k8s.io/endpointslice/reconciler.go,
        utils.go): the slices of a Service with a selector list its selected pods that have an
        IP, ready = pod Ready and not terminating, serving = pod Ready, terminating = being
        deleted; ports resolved per pod (a named targetPort from the pod's container ports);
        pods whose ports resolve differently go into different slices. A Service with no pods
        keeps one placeholder slice with no ports and no endpoints, which the API serves as
        "endpoints": null (kubernetes/kubernetes#135968, kubernetes-client/python#2423)."""
        sres = km.BY_PATH[("discovery.k8s.io", "v1", "endpointslices")]
        svc, pods = snapshot
        existing = sorted([sl for (sns, _), sl in self.objects["endpointslices"].items()
                           if sns == ns and (sl["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == svc_name
                           and (sl["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY],
                          key=lambda s: s["metadata"]["name"])
        if svc is None or not (svc.get("spec") or {}).get("selector"):
            if svc is None:
                for sl in existing:
                    self._store_delete(sres, ns, sl["metadata"]["name"])
            return
        selector = svc["spec"]["selector"]
        groups = {}
        for pod in pods:
            if not all((pod["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items()):
                continue
            ip = (pod.get("status") or {}).get("podIP")
            if not ip or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            ports = []
            for sp in svc["spec"].get("ports") or []:
                target = sp.get("targetPort", sp.get("port"))
                if isinstance(target, str) and not target.isdigit():
                    found = [cp.get("containerPort") for c in (pod.get("spec") or {}).get("containers") or []
                             for cp in c.get("ports") or [] if cp.get("name") == target]
                    if not found:
                        continue  # utils.go: a port the pod does not have is left out
                    target = found[0]
                ports.append((sp.get("name", ""), int(target), sp.get("protocol", "TCP")))
            terminating = bool(pod["metadata"].get("deletionTimestamp"))
            serving = pod_ready(pod)
            # utils.go: ready is never true for a terminating pod unless publishNotReadyAddresses.
            ready = bool(svc["spec"].get("publishNotReadyAddresses")) or (serving and not terminating)
            groups.setdefault(tuple(ports), []).append({
                "addresses": [ip],
                "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
                "nodeName": (pod.get("spec") or {}).get("nodeName"),
                "targetRef": {"kind": "Pod", "namespace": ns, "name": pod["metadata"]["name"],
                              "uid": pod["metadata"]["uid"]}})
        desired = [(list(k), v) for k, v in groups.items()] or [(None, None)]
        labels = dict(svc["metadata"].get("labels") or {})
        labels.update({SERVICE_NAME_LABEL: svc_name, MANAGED_BY_LABEL: MANAGED_BY})
        for i, (ports, endpoints) in enumerate(desired):
            body = {"addressType": "IPv4",
                    "endpoints": endpoints,
                    "ports": None if ports is None else [{"name": n, "port": p, "protocol": pr} for n, p, pr in ports]}
            if i < len(existing):
                old = existing[i]
                new = copy.deepcopy(old)
                new.update(body)
                new["metadata"]["labels"] = labels
                if new != old:
                    self._store_update(sres, ns, old, new)
            else:
                obj = {"metadata": {"name": svc_name + "-" + random_suffix(), "generateName": svc_name + "-",
                                    "labels": labels,
                                    "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": svc_name,
                                                         "uid": svc["metadata"]["uid"], "controller": True,
                                                         "blockOwnerDeletion": True}]}}
                obj.update(body)
                self._store_new(sres, ns, obj)
        for sl in existing[len(desired):]:
            self._store_delete(sres, ns, sl["metadata"]["name"])
        self._record_endpoints(ns, svc_name)

    def sync_deployment(self, ns, name):
        """The Deployment controller (k/k pkg/controller/deployment/), without ReplicaSets: pods
        of the current template carry its pod-template-hash. RollingUpdate (rolling.go): new pods
        are created while all pods <= replicas + maxSurge; old pods are deleted while the ready
        pods stay >= replicas - maxUnavailable, unready old pods first (maxSurge rounded up,
        maxUnavailable down, both 0 -> 1: util/deployment_util.go ResolveFenceposts). Recreate:
        every old pod goes, then the new ones come. Ready counts as available (no minReadySeconds)."""
        dres, pres = km.BY_PATH[("apps", "v1", "deployments")], km.BY_PATH[("", "v1", "pods")]
        dep = self.get(dres, ns, name)
        owned = [p for (pns, _), p in sorted(self.objects["pods"].items()) if pns == ns and any(
            r.get("uid") == (dep or {}).get("metadata", {}).get("uid") for r in p["metadata"].get("ownerReferences") or [])]
        if dep is None:
            return
        spec = dep.get("spec") or {}
        template = spec.get("template") or {}
        h = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        h = "".join("bcdfghjklmnpqrstvwxz2456789"[int(c, 16)] for c in h)
        live = [p for p in owned if not p["metadata"].get("deletionTimestamp")]
        new = [p for p in live if (p["metadata"].get("labels") or {}).get("pod-template-hash") == h]
        old = [p for p in live if p not in new]
        replicas = spec.get("replicas", 1)
        surge, unavailable = self._fenceposts(spec, replicas)
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate"

        def remove(pods):
            for p in pods:
                self.delete(pres, ns, p["metadata"]["name"], False)

        if recreate:
            remove(old)
            old = []
            room = 0 if len(owned) > len(new) else replicas - len(new)  # old ones still terminating
        else:
            room = max(0, min(replicas - len(new), replicas + surge - len(old) - len(new)))
        failure = None
        for _ in range(room):
            pod = copy.deepcopy(template)
            meta = pod.setdefault("metadata", {})
            meta["name"] = f"{name}-{h}-{random_suffix()}"
            meta.setdefault("labels", {})["pod-template-hash"] = h
            meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                                        "uid": dep["metadata"]["uid"], "controller": True,
                                        "blockOwnerDeletion": True}]
            try:
                self._admit_pod(ns, pod)
            except ApiError as e:
                failure = e.message  # the ReplicaSet's FailedCreate; retried on the next change
                break
            self._new_pod_status(pod)
            new.append(self._store_new(pres, ns, pod))
        remove(new[replicas:])
        new = new[:replicas]
        if old:
            min_available = replicas - unavailable
            new_unavailable = sum(1 for p in new if not pod_ready(p))
            max_down = len(old) + len(new) - min_available - new_unavailable
            if max_down > 0:
                unhealthy = [p for p in old if not pod_ready(p)][:max_down]
                remove(unhealthy)
                old = [p for p in old if p not in unhealthy]
                available = sum(1 for p in old + new if pod_ready(p))
                if available > min_available:
                    down = old[:available - min_available]
                    remove(down)
                    old = old[len(down):]
        ready = sum(1 for p in new + old if pod_ready(p))
        status = {"observedGeneration": dep["metadata"].get("generation", 1), "replicas": len(new) + len(old),
                  "updatedReplicas": len(new), "readyReplicas": ready, "availableReplicas": ready,
                  "conditions": [{"type": "Available", "status": "True" if ready >= replicas else "False",
                                  "reason": "MinimumReplicasAvailable" if ready >= replicas else "MinimumReplicasUnavailable"}]}
        if ready < replicas:
            status["unavailableReplicas"] = replicas - ready
        if failure:
            status["conditions"].append({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                         "message": failure})
        if not ready:
            del status["readyReplicas"], status["availableReplicas"]  # omitempty, as the real one
        if dep.get("status") != status:
            newdep = copy.deepcopy(dep)
            newdep["status"] = status
            self._store_update(dres, ns, dep, newdep)

    @staticmethod
    def _fenceposts(spec, replicas):
        ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}

        def resolve(value, round_up):
            value = "25%" if value is None else value
            if isinstance(value, str) and value.endswith("%"):
                x = int(value[:-1]) * replicas / 100
                return math.ceil(x) if round_up else math.floor(x)
            return int(value)
        surge, unavailable = resolve(ru.get("maxSurge"), True), resolve(ru.get("maxUnavailable"), False)
        return surge, (1 if surge == 0 and unavailable == 0 else unavailable)

    # --- authorisation -----------------------------------------------------------------------

    def authorize(self, user, groups, verb, group, resource, subresource, ns, name):
        """RBAC (k/k plugin/pkg/auth/authorizer/rbac/rbac.go, staging/src/k8s.io/component-helpers/
        auth/rbac/validation/policy_comparator.go / rule.go): system:masters may do anything
        (the apiserver's privileged group); else a ClusterRoleBinding's rules apply everywhere,
        a RoleBinding's (to a Role or a ClusterRole) in its namespace only. A rule matches by
        verbs, apiGroups, resources ("res/sub" for a subresource, "*", "*/sub") and
        resourceNames; a rule with resourceNames never matches a request without a name (create,
        list, watch, deletecollection)."""
        if "system:masters" in groups:
            return True
        if group == "authorization.k8s.io" and resource in ("selfsubjectaccessreviews", "selfsubjectrulesreviews") \
                and verb == "create" and "system:authenticated" in groups:
            return True  # bootstrap ClusterRole system:basic-user, bound to system:authenticated
        full = resource + ("/" + subresource if subresource else "")

        def rule_ok(rule):
            if not any(v in ("*", verb) for v in rule.get("verbs") or []):
                return False
            if not any(g in ("*", group) for g in rule.get("apiGroups") or []):
                return False
            if not any(r in ("*", full) or (subresource and r == "*/" + subresource)
                       for r in rule.get("resources") or []):
                return False
            names = rule.get("resourceNames") or []
            return not names or (name and name in names)

        for _, rules in self._applicable_rules(user, groups, ns):
            if any(rule_ok(r) for r in rules):
                return True
        return False

    def authorize_path(self, groups, path):
        """Non-resource URLs: discovery and version are open to every authenticated user
        (bootstrap ClusterRoles system:discovery and system:public-info-viewer, k/k plugin/pkg/
        auth/authorizer/rbac/bootstrappolicy/policy.go)."""
        return "system:masters" in groups or "system:authenticated" in groups

    def _applicable_rules(self, user, groups, ns):
        def subject_ok(s):
            kind = s.get("kind")
            if kind == "User":
                return s.get("name") == user
            if kind == "Group":
                return s.get("name") in groups
            if kind == "ServiceAccount":
                return user == f"system:serviceaccount:{s.get('namespace')}:{s.get('name')}"
            return False

        def role_rules(ref, bns):
            if ref.get("kind") == "ClusterRole":
                r = self.objects["clusterroles"].get(("", ref.get("name")))
            else:
                r = self.objects["roles"].get((bns, ref.get("name")))
            return (r or {}).get("rules") or []

        for (_, _), b in self.objects["clusterrolebindings"].items():
            if any(subject_ok(s) for s in b.get("subjects") or []):
                yield b, role_rules(b.get("roleRef") or {}, "")
        if ns:
            for (bns, _), b in self.objects["rolebindings"].items():
                if bns == ns and any(subject_ok(s) for s in b.get("subjects") or []):
                    yield b, role_rules(b.get("roleRef") or {}, bns)


class Auth:
    """Static token file in kube-apiserver's --token-auth-file format (CSV: token,user,uid,
    "group1,group2"; k/k staging/src/k8s.io/apiserver/pkg/authentication/token/tokenfile/
    tokenfile.go), re-read when it changes, and client certificates (CN = user, O = groups,
    k/k staging/src/k8s.io/apiserver/pkg/authentication/request/x509/x509.go CommonNameUserConversion)."""

    def __init__(self, token_file, client_ca=None, verify_client_certs=False):
        self.token_file, self.mtime, self.tokens = token_file, None, {}
        # verify_client_certs: the TLS handshake let through certificates of CAs other than
        # client_ca (--tls-accept-ca), so each one is checked here, as kube-apiserver does.
        self.client_ca, self.verify_client_certs = client_ca, verify_client_certs
        self._verified, self._lock = {}, threading.Lock()

    def client_cert_trusted(self, der):
        """Whether the DER certificate is a client certificate signed by --client-ca: what k/k
        staging/src/k8s.io/apiserver/pkg/authentication/request/x509/x509.go checks (chain to a
        client CA, key usage clientAuth); a certificate that fails it gets 401, not a dropped
        connection. Checked by `openssl verify`, once per certificate."""
        if not self.verify_client_certs:
            return True  # the handshake verified it against --client-ca alone
        key = hashlib.sha256(der).hexdigest()
        with self._lock:
            if key not in self._verified:
                pem = ssl.DER_cert_to_PEM_cert(der).encode()
                r = subprocess.run(["openssl", "verify", "-CAfile", self.client_ca, "-purpose", "sslclient"],
                                   input=pem, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
                self._verified[key] = r.returncode == 0
            return self._verified[key]

    def _reload(self):
        if not self.token_file:
            return
        try:
            m = os.stat(self.token_file).st_mtime_ns
        except OSError:
            self.tokens = {}
            return
        if m != self.mtime:
            tokens = {}
            with open(self.token_file, newline="") as f:
                for row in csv.reader(f):
                    if len(row) >= 3 and not row[0].startswith("#"):
                        groups = [g for g in (row[3].split(",") if len(row) > 3 else []) if g]
                        tokens[row[0]] = (row[1], groups)
            self.tokens, self.mtime = tokens, m

    def user(self, headers, peercert):
        """(user, groups) or None (anonymous or a bad credential: 401, anonymous auth off)."""
        auth = headers.get("Authorization", "")
        parts = auth.split(" ")
        if len(parts) >= 2 and parts[0].lower() == "bearer":
            # The scheme is case-insensitive (k/k staging/src/k8s.io/apiserver/pkg/authentication/
            # request/bearertoken/bearertoken.go); the Python client's in-cluster loader sends "bearer".
            self._reload()
            found = self.tokens.get(parts[1].strip())
            if not found:
                return None
            user, groups = found
            if user.startswith("system:serviceaccount:"):
                # Service-account users' groups (k/k staging/src/k8s.io/apiserver/pkg/
                # authentication/serviceaccount/util.go MakeGroupNames).
                ns = user.split(":")[2]
                groups = groups + ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]
            return user, groups + ["system:authenticated"]
        if peercert:
            subject = dict(x[0] for x in peercert.get("subject", ()))
            orgs = [x[0][1] for x in peercert.get("subject", ()) if x[0][0] == "organizationName"]
            if subject.get("commonName"):
                return subject["commonName"], orgs + ["system:authenticated"]
        return None


def parse_resource_path(path):
    """(group, version, namespace, plural, name, subresource) for a resource path, or None."""
    parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return None
    if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in km.BY_PATH:
        ns, rest = rest[1], rest[2:]
    else:
        ns = None
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if len(rest) > 3:
        return None
    if plural == "namespaces" and name and ns is None:
        ns = name  # the namespace object's own requests carry its namespace (RequestInfo)
    return group, version, ns, plural, name, sub


VERB_BY_METHOD = {"POST": "create", "PUT": "update", "PATCH": "patch"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    world: World = None
    auth: Auth = None
    server_address_text = ""

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def do_PUT(self):
        self._serve()

    def do_PATCH(self):
        self._serve()

    def do_DELETE(self):
        self._serve()

    # --- plumbing ----------------------------------------------------------------------------

    def _send(self, status, body, headers=None, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        for warning in getattr(self, "_warnings", []):
            self.send_header("Warning", warning)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self._status = status

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self.rfile.read(n)
            raise ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_BODY}", None)
        raw = self.rfile.read(n) if n else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = self._read_chunked()
        return raw

    def _read_chunked(self):
        out = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    def _json_body(self, raw):
        try:
            return json.loads(raw or b"null")
        except ValueError as e:
            # The decoder's complaint, as a 400 (k/k staging/src/k8s.io/apiserver/pkg/endpoints/
            # handlers/rest.go transformDecodeError).
            raise km.bad_request(f"the body of the request was in an unknown format: {e}")

    def _serve(self):
        self._status, self._user, self._warnings = 0, "", []
        url = urllib.parse.urlsplit(self.path)
        query = self._query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        try:
            try:
                peer = self.connection.getpeercert()
                if peer and not self.auth.client_cert_trusted(self.connection.getpeercert(binary_form=True)):
                    peer = None  # a certificate, but not one of the client CA's: no identity
            except (AttributeError, ValueError):
                peer = None
            who = self.auth.user(self.headers, peer)
            if who is None:
                raw = self._body()
                raise km.unauthorized()
            self._user, groups = who
            if self.headers.get("Impersonate-User"):
                self._user, groups = self._impersonate(self._user, groups)
            if url.path.startswith("/__fake/"):
                raw = self._body()
                if "system:masters" not in groups:
                    raise km.forbidden_path(self._user, self.command.lower(), url.path)
                self._control(url.path, query, raw)
                return
            if self._injected_fault(url.path):
                return
            self._dispatch(url.path, query, groups)
        except ApiError as e:
            self._send(e.code, e.status(), e.headers)
        except (BrokenPipeError, ConnectionResetError):
            self._status = -1
        except Exception as e:  # a bug in the fake, or a control request it cannot read
            err = km.internal_error(f"fake_k8s: {e!r}")
            try:
                self._send(err.code, err.status())
            except OSError:
                self._status = -1
        finally:
            with self.world.lock:
                self.world.requests.append({"time": time.time(), "method": self.command, "path": self.path,
                                            "user": self._user, "status": self._status})

    def _impersonate(self, user, groups):
        """Impersonate-User / Impersonate-Group (k/k staging/src/k8s.io/apiserver/pkg/endpoints/
        filters/impersonation.go): the requester needs the impersonate verb on users (or
        serviceaccounts, for system:serviceaccount:NS:NAME) and on each group; the request then
        runs as that user, in system:authenticated, and a service account's groups when no group
        is given."""
        target = self.headers["Impersonate-User"]
        wanted = self.headers.get_all("Impersonate-Group") or []
        checks = []
        if target.startswith("system:serviceaccount:") and target.count(":") == 3:
            _, _, sa_ns, sa_name = target.split(":")
            checks.append(("serviceaccounts", sa_ns, sa_name))
        else:
            checks.append(("users", "", target))
        checks += [("groups", "", g) for g in wanted]
        with self.world.lock:
            for resource, ns, name in checks:
                if not self.world.authorize(user, groups, "impersonate", "", resource, "", ns, name):
                    self._body()
                    raise km.forbidden(user, "impersonate", resource, "", "", ns or None, name)
        new_groups = list(wanted)
        if not wanted and target.startswith("system:serviceaccount:"):
            new_groups = ["system:serviceaccounts", f"system:serviceaccounts:{target.split(':')[2]}"]
        return target, new_groups + ["system:authenticated"]

    def _injected_fault(self, path):
        with self.world.lock:
            for f in self.world.faults:
                if f["count"] > 0 and (not f.get("method") or f["method"] == self.command) \
                        and re.search(f["path"], path):
                    f["count"] -= 1
                    fault = dict(f)
                    break
            else:
                return False
        self._body()
        status = fault["status"]
        if status == "timeout":
            time.sleep(float(fault.get("seconds", 5)))
            e = km.timeout_error()
        elif status == "drop":
            self.close_connection = True
            self._status = -1
            self.connection.close()
            return True
        elif int(status) == 429:
            e = km.too_many_requests(int(fault.get("retryAfter", 1)))
        elif int(status) == 500:
            e = km.internal_error(fault.get("message", "injected by the fake"))
        else:
            e = ApiError(int(status), "ServiceUnavailable", fault.get("message", "the server is currently unable to handle the request"), {})
        self._send(e.code, e.status(), e.headers)
        return True

    # --- discovery and resources -------------------------------------------------------------

    def _dispatch(self, path, query, groups):
        w = self.world
        path = path.rstrip("/") or "/"
        if path in ("/version", "/api", "/apis", "/openapi/v2", "/openapi/v3", "/healthz", "/livez", "/readyz") \
                or re.match(r"^/apis?(/[^/]+){1,2}$", path) and parse_resource_path(path) is None:
            self._body()
            if not w.authorize_path(groups, path):
                raise km.forbidden_path(self._user, "get", path)
            return self._discovery(path)
        parsed = parse_resource_path(path)
        if parsed is None:
            self._body()
            raise km.not_found_path()
        group, version, ns, plural, name, sub = parsed
        res = km.BY_PATH.get((group, version, plural))
        if res is None or (sub and sub != "status") or (sub == "status" and not res.status):
            self._body()
            raise km.not_found_path()
        if not res.namespaced and plural != "namespaces":
            ns = None
        if res.namespaced and ns is None and (name or self.command != "GET"):
            self._body()
            raise km.not_found_path()
        method = self.command
        if method == "GET":
            # The query parameter is a Go bool (strconv.ParseBool): the Python client sends "True".
            verb = "watch" if query.get("watch") in ("1", "t", "T", "true", "TRUE", "True") else ("get" if name else "list")
        elif method == "DELETE":
            verb = "delete" if name else "deletecollection"
        else:
            verb = VERB_BY_METHOD[method]
        if verb not in res.verbs and not sub:
            self._body()
            raise km.method_not_allowed(method)
        raw = self._body()
        dry_run = query.get("dryRun") == "All"
        auth_ns = ns if plural != "namespaces" or name else None
        if plural == "namespaces" and name:
            auth_ns = name
        with w.lock:
            if not w.authorize(self._user, groups, verb, group, plural, sub, auth_ns or "", name):
                raise km.forbidden(self._user, verb, plural, group, sub, auth_ns, name)
        if verb == "watch":
            return self._watch(res, ns, query)
        if plural == "selfsubjectaccessreviews":
            return self._access_review(raw, groups)
        if plural == "selfsubjectrulesreviews":
            return self._rules_review(raw, groups)
        ns_key = ns if res.namespaced else ""
        with w.lock:
            if verb == "get":
                obj = w.get(res, ns_key, name)
                if obj is None:
                    raise km.not_found(res, name)
                return self._send(200, obj)
            if verb in ("list", "deletecollection"):
                items = self._select(res, ns, query)
                if verb == "deletecollection":
                    for o in items:
                        w.delete(res, o["metadata"].get("namespace", ""), o["metadata"]["name"], dry_run)
                return self._send(200, self._list(res, items))
            if verb == "create":
                body = self._json_body(raw)
                if not isinstance(body, dict):
                    raise km.bad_request("the body of the request was in an unknown format")
                self._check_kind(res, body)
                self._unknown_fields(res, body, query)
                return self._send(201, w.create(res, ns_key, body, dry_run))
            if verb == "update":
                body = self._json_body(raw)
                self._check_kind(res, body)
                self._unknown_fields(res, body, query)
                return self._send(200, w.update(res, ns_key, name, body, sub, dry_run))
            if verb == "patch":
                return self._patch(res, ns_key, name, sub, raw, dry_run)
            if verb == "delete":
                opts = self._json_body(raw) if raw else {}
                grace = (opts or {}).get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
                pre = ((opts or {}).get("preconditions") or {}).get("resourceVersion")
                obj, kept = w.delete(res, ns_key, name, dry_run, None if grace is None else int(grace), pre)
                if kept or res.plural in ("pods", "namespaces"):
                    return self._send(200, obj)
                # The generic store answers a finished delete with a Success Status (k/k staging/
                # src/k8s.io/apiserver/pkg/registry/generic/registry/store.go Delete).
                details = {"name": name, "kind": plural, "uid": obj["metadata"]["uid"]}
                if group:
                    details["group"] = group
                return self._send(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                        "status": "Success", "details": details})
        raise km.method_not_allowed(method)

    def _unknown_fields(self, res, body, query):
        km.decode_micro_times(res, body)
        km.decode_base64_fields(res, body)
        self._prune(res, body, query)

    def _prune(self, res, body, query):
        """Unknown fields are dropped; fieldValidation=Strict refuses them, Warn (the default
        since 1.27) answers each with a Warning header, Ignore says nothing (k/k staging/src/
        k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager and KEP-2885)."""
        unknown = km.prune_unknown(res, body)
        mode = query.get("fieldValidation", "Warn")
        if unknown and mode == "Strict":
            raise km.strict_decoding_error(res, unknown)
        if unknown and mode != "Ignore":
            self._warnings += [f'299 - "unknown field \\"{f}\\""' for f in unknown]

    def _check_kind(self, res, body):
        if not isinstance(body, dict):
            raise km.bad_request("the body of the request was in an unknown format")
        kind, api = body.get("kind"), body.get("apiVersion")
        if (kind and kind != res.kind) or (api and api != res.group_version):
            # The decoder refuses an object of another kind (k/k staging/src/k8s.io/apiserver/pkg/
            # endpoints/handlers/create.go).
            raise km.bad_request(f"the API version in the data ({api}) does not match the expected API version ({res.group_version})"
                                 if api and api != res.group_version else
                                 f"{kind} in version \"{res.version}\" cannot be handled as a {res.kind}")

    def _select(self, res, ns, query):
        lsel = km.parse_label_selector(query.get("labelSelector", ""))
        fsel = km.parse_field_selector(query.get("fieldSelector", ""), res)
        out = []
        for (ons, _), obj in sorted(self.world.objects[res.plural].items()):
            if ns is not None and res.namespaced and ons != ns:
                continue
            if lsel(obj["metadata"].get("labels")) and fsel(obj):
                out.append(obj)
        return out

    def _list(self, res, items):
        # Lists of built-in kinds carry no kind/apiVersion per item; a CRD's do.
        if not res.custom:
            items = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in items]
        return {"kind": res.kind + "List", "apiVersion": res.group_version,
                "metadata": {"resourceVersion": str(self.world.rv)}, "items": items}

    def _patch(self, res, ns, name, sub, raw, dry_run):
        """PATCH (k/k staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go): the patch is
        applied to the stored object, then written as an update; a metadata.resourceVersion the
        patch result carries is checked like a PUT's (a patch that does not carry one is never
        a conflict)."""
        w = self.world
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype not in ("application/merge-patch+json", "application/json-patch+json",
                         "application/strategic-merge-patch+json"):
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format - accepted media types include: "
                           "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                           + (", application/strategic-merge-patch+json" if not res.custom else ""), None)
        if ctype == "application/strategic-merge-patch+json" and res.custom:
            # Custom resources have no Go struct to take merge keys from (k/k staging/src/k8s.io/
            # apiextensions-apiserver/pkg/apiserver/customresource_handler.go).
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format - accepted media types include: "
                           "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml", None)
        patch = self._json_body(raw)
        w._foreign_write(res, ns, name)
        cur = w.get(res, ns, name)
        if cur is None:
            raise km.not_found(res, name)
        try:
            if ctype == "application/merge-patch+json":
                new = km.merge_patch(cur, patch)
            elif ctype == "application/json-patch+json":
                new = km.json_patch(cur, patch)
            else:
                new = km.strategic_merge_patch(cur, patch)
        except km.PatchError:
            # patch.go: a JSON patch that does not apply is NewGenericServerResponse(422, ...),
            # whose Status drops the patch library's words (apimachinery/pkg/api/errors/errors.go).
            raise ApiError(422, "Invalid", "the server rejected our request due to an error in our request", {})
        if not isinstance(new, dict):
            raise km.bad_request("the body of the request was in an unknown format")
        if sub == "status":
            new = {**cur, "status": new.get("status")}
        self._unknown_fields(res, new, self._query)
        # The foreign write (if any) came before the patch was applied: a patch that carries no
        # resourceVersion lands on the newer object, as the server retries it internally.
        return self._send(200, w.update(res, ns, name, new, sub, dry_run, foreign=False))

    def _rules_review(self, raw, groups):
        """SelfSubjectRulesReview (`kubectl auth can-i --list`; k/k pkg/registry/authorization/
        selfsubjectrulesreview/rest.go): the caller's rules in a namespace, from the RBAC
        bindings (system:masters: everything)."""
        body = self._json_body(raw) or {}
        ns = (body.get("spec") or {}).get("namespace", "")
        resource_rules, non_resource = [], [{"verbs": ["get"], "nonResourceURLs": [
            "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz",
            "/version", "/version/"]}]
        resource_rules.append({"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
                               "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]})
        with self.world.lock:
            if "system:masters" in groups:
                resource_rules.append({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})
            for _, rules in self.world._applicable_rules(self._user, groups, ns):
                for r in rules:
                    if r.get("nonResourceURLs"):
                        non_resource.append({"verbs": r.get("verbs", []), "nonResourceURLs": r["nonResourceURLs"]})
                    else:
                        resource_rules.append({k: v for k, v in r.items() if k in (
                            "verbs", "apiGroups", "resources", "resourceNames")})
        body.update(apiVersion="authorization.k8s.io/v1", kind="SelfSubjectRulesReview")
        body.setdefault("metadata", {})["creationTimestamp"] = None
        body["status"] = {"resourceRules": resource_rules, "nonResourceRules": non_resource, "incomplete": False}
        self._send(201, body)

    def _access_review(self, raw, groups):
        """SelfSubjectAccessReview (k/k pkg/registry/authorization/selfsubjectaccessreview/rest.go):
        the RBAC answer for the caller, not stored."""
        body = self._json_body(raw) or {}
        attrs = (body.get("spec") or {}).get("resourceAttributes")
        with self.world.lock:
            if attrs:
                allowed = self.world.authorize(self._user, groups, attrs.get("verb", ""), attrs.get("group", ""),
                                               attrs.get("resource", ""), attrs.get("subresource", ""),
                                               attrs.get("namespace", ""), attrs.get("name", ""))
            else:
                allowed = self.world.authorize_path(groups, ((body.get("spec") or {}).get("nonResourceAttributes") or {}).get("path", ""))
        body.setdefault("metadata", {})["creationTimestamp"] = None
        body.update(apiVersion="authorization.k8s.io/v1", kind="SelfSubjectAccessReview")
        body["status"] = {"allowed": bool(allowed)}
        if allowed:
            body["status"]["reason"] = "RBAC: allowed by the fake's bindings"
        self._send(201, body)

    def _discovery(self, path):
        if path == "/version":
            # A 1.30 server (whose messages the fake uses).
            return self._send(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0-fake",
                                    "gitCommit": "0000000000000000000000000000000000000000",
                                    "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                                    "goVersion": "go1.22.0", "compiler": "gc", "platform": "linux/amd64"})
        if path in ("/healthz", "/livez", "/readyz"):
            return self._send(200, b"ok", content_type="text/plain; charset=utf-8")
        if path == "/api":
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"],
                                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                    "serverAddress": self.server_address_text}]})
        if path == "/apis":
            groups = []
            for g, versions in km.group_versions().items():
                gv = [{"groupVersion": f"{g}/{v}", "version": v} for v in versions]
                groups.append({"name": g, "versions": gv, "preferredVersion": gv[0]})
            return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        if path == "/openapi/v2":
            return self._send(200, km.openapi_v2_protobuf("v1.30.0"),
                              content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        if path.startswith("/openapi/"):
            # No OpenAPI v3: kubectl 1.24+ falls back to v2 (README.md).
            raise km.not_found_path()
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            body = km.api_resource_list("", parts[1])
        elif parts[0] == "apis" and len(parts) == 2:
            versions = km.group_versions().get(parts[1])
            if not versions:
                raise km.not_found_path()
            gv = [{"groupVersion": f"{parts[1]}/{v}", "version": v} for v in versions]
            body = {"kind": "APIGroup", "apiVersion": "v1", "name": parts[1], "versions": gv, "preferredVersion": gv[0]}
        elif parts[0] == "apis" and len(parts) == 3:
            body = km.api_resource_list(parts[1], parts[2])
        else:
            body = None
        if body is None:
            raise km.not_found_path()
        return self._send(200, body)

    def _watch(self, res, ns, query):
        """A watch (k/k staging/src/k8s.io/apiserver/pkg/endpoints/handlers/watch.go): chunked
        JSON events. resourceVersion "" or "0" starts with ADDED for every current object; a
        number replays the events after it, or 410 Gone ("too old resource version") when the
        fake's history no longer reaches back that far."""
        w = self.world
        lsel = km.parse_label_selector(query.get("labelSelector", ""))
        fsel = km.parse_field_selector(query.get("fieldSelector", ""), res)
        timeout = min(float(query.get("timeoutSeconds") or 60), 300)
        deadline = time.monotonic() + timeout

        def wanted(obj):
            m = obj["metadata"]
            return (ns is None or not res.namespaced or m.get("namespace") == ns) and lsel(m.get("labels")) and fsel(obj)

        with w.lock:
            rv = query.get("resourceVersion", "")
            if rv in ("", "0"):
                pending = [("ADDED", o) for o in self._select(res, ns, query)]
                since = w.rv
            else:
                since = int(rv)
                if w.events and since < w.events[0][0] - 1 and since < w.rv:
                    raise ApiError(410, "Expired", f"too old resource version: {since} ({w.events[0][0]})", {})
                pending = []
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._status = 200
        self.close_connection = True

        def chunk(data):
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        try:
            while True:
                for kind, obj in pending:
                    chunk(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
                pending = []
                with w.lock:
                    while True:
                        new = [(r, k, o) for r, p, k, o in w.events if r > since and p == res.plural]
                        if new or time.monotonic() >= deadline or self._peer_gone():
                            break
                        w.changed.wait(max(0.0, min(0.2, deadline - time.monotonic())))
                    for r, k, o in new:
                        since = max(since, r)
                        if wanted(o):
                            pending.append((k, o))
                if not pending and (time.monotonic() >= deadline or self._peer_gone()):
                    break
            chunk(b"")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self._status = -1

    def _peer_gone(self):
        """A watching client sends nothing more on its connection: readable means closed."""
        try:
            return bool(select.select([self.connection], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    # --- control API -------------------------------------------------------------------------

    def _control(self, path, query, raw):
        w = self.world
        body = self._json_body(raw) if raw else {}
        pres = km.BY_PATH[("", "v1", "pods")]
        with w.lock:
            if path == "/__fake/requests":
                if self.command == "DELETE":
                    w.requests.clear()
                return self._send(200, {"requests": list(w.requests)})
            if path == "/__fake/endpoints":
                rec = w.endpoint_record
                if query.get("service"):
                    key = f"{query.get('namespace', 'default')}/{query['service']}"
                    return self._send(200, {"records": rec.get(key, [])})
                return self._send(200, {"services": rec})
            if path == "/__fake/config":
                if self.command == "POST":
                    for key in ("endpoints", "podReady", "deployment", "termination"):
                        if key in body:
                            w.delays[key] = float(body[key])
                    if "autoReady" in body:
                        w.auto_ready = bool(body["autoReady"])
                return self._send(200, {**w.delays, "autoReady": w.auto_ready})
            if path == "/__fake/pods" and self.command == "POST":
                ns = body.get("namespace", "default")
                pod = {"metadata": {"name": body["name"], "labels": body.get("labels", {}),
                                    "annotations": {}},
                       "spec": {"containers": [{"name": "app", "image": "fake",
                                                "ports": body.get("ports", [])}]}}
                if body.get("ready") is not None:
                    pod["metadata"]["annotations"][HOLD_READY_ANNOTATION] = "true"
                created = w.create(pres, ns, pod, False)
                if body.get("ready"):
                    created = w.set_pod_ready(ns, body["name"], True)
                return self._send(201, created)
            if path == "/__fake/pod-ready" and self.command == "POST":
                ns = body.get("namespace", "default")
                names = [body["name"]] if body.get("name") else [
                    p["metadata"]["name"] for (pns, _), p in sorted(w.objects["pods"].items())
                    if pns == ns and km.parse_label_selector(body.get("selector", ""))(p["metadata"].get("labels"))]
                out = []
                for n in names:
                    pod = w.get(pres, ns, n)
                    if pod is not None:
                        w.held.add(pod["metadata"]["uid"])
                    out.append(w.set_pod_ready(ns, n, bool(body.get("ready", True)))["metadata"]["name"])
                return self._send(200, {"pods": out})
            if path == "/__fake/conflicts" and self.command == "POST":
                parsed = parse_resource_path(urllib.parse.urlsplit(body["path"]).path)
                if not parsed or (parsed[0], parsed[1], parsed[3]) not in km.BY_PATH:
                    raise km.bad_request(f"not an object path: {body.get('path')}")
                g, v, ns, plural, name, _ = parsed
                res = km.BY_PATH[(g, v, plural)]
                key = (plural, ns if res.namespaced else "", name)
                w.conflicts[key] = int(body.get("count", 1))
                return self._send(200, {"path": body["path"], "count": w.conflicts[key]})
            if path == "/__fake/faults":
                if self.command == "POST":
                    re.compile(body["path"])
                    w.faults.append({"method": body.get("method"), "path": body["path"],
                                     "status": body.get("status", 500), "count": int(body.get("count", 1)),
                                     "retryAfter": body.get("retryAfter", 1), "seconds": body.get("seconds", 5),
                                     "message": body.get("message")})
                elif self.command == "DELETE":
                    w.faults.clear()
                return self._send(200, {"faults": w.faults})
            if path == "/__fake/objects":
                out = {p: [o for _, o in sorted(objs.items())] for p, objs in w.objects.items() if objs}
                return self._send(200, {"resourceVersion": str(w.rv), "objects": out})
        raise km.not_found_path()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, addr, handler, context):
        super().__init__(addr, handler)
        self.context = context

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.settimeout(30)
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request, client_address):
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            request.close()
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-ca", help="CA whose client certificates authenticate (CN = user, O = groups)")
    p.add_argument("--tls-accept-ca", action="append", default=[],
                   help="CA whose client certificates pass the TLS handshake but authenticate no "
                        "one (401), as any certificate does on kube-apiserver (repeatable)")
    p.add_argument("--token-file", help="kube-apiserver --token-auth-file CSV: token,user,uid,\"g1,g2\"")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--endpoints-delay", type=float, default=1.0)
    p.add_argument("--pod-ready-delay", type=float, default=1.0)
    p.add_argument("--deployment-delay", type=float, default=0.5)
    p.add_argument("--termination-delay", type=float, default=1.0)
    a = p.parse_args(argv)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(["http/1.1"])
    if a.client_ca:
        # X509 client certificates (https://kubernetes.io/docs/reference/access-authn-authz/
        # authentication/#x509-client-certificates): kube-apiserver --client-ca-file names the CAs
        # whose certificates authenticate a request, the subject's CN as the user name and its O
        # fields as groups. Its TLS layer only asks for a certificate (Go's tls.RequestClientCert,
        # k/k staging/src/k8s.io/apiserver/pkg/server/secure_serving.go) and the x509
        # authenticator checks it, so a request with no certificate (and no token) or with a
        # certificate of another CA is answered 401 Unauthorized. Python's ssl can only ask for a
        # certificate by verifying it in the handshake (a failure drops the connection), so CAs
        # a test wants answered with 401 are given with --tls-accept-ca: trusted by the
        # handshake, then refused by Auth.client_cert_trusted.
        for ca in [a.client_ca, *a.tls_accept_ca]:
            ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    Handler.world = World({"endpoints": a.endpoints_delay, "podReady": a.pod_ready_delay,
                           "deployment": a.deployment_delay, "termination": a.termination_delay})
    Handler.auth = Auth(a.token_file, a.client_ca, verify_client_certs=bool(a.tls_accept_ca))
    server = Server(("127.0.0.1", a.port), Handler, ctx)
    Handler.server_address_text = f"127.0.0.1:{server.server_address[1]}"
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(server.server_address[1]))
        os.replace(tmp, a.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
