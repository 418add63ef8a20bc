"""Starts and drives testing/fake_k8s/fake_k8s.py for a test: makes a CA, a server certificate
and client certificates with the openssl command, a token file, and kubeconfigs for kubectl,
the Python client and intermission."""

import base64
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "testing", "fake_k8s", "fake_k8s.py")
ADMIN_TOKEN = "admin-token-0123456789"
ADMIN_USER = "kubernetes-admin"


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _b64_file(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


class FakeK8s:
    """One fake API server. tokens: {token: (user, [groups])} besides the admin token (user
    kubernetes-admin, group system:masters). delays: endpoints, podReady, deployment,
    termination in seconds (the fake's defaults are 1, 1, 0.5, 1). other_ca: also make a second
    CA (client_cert(..., ca="other-ca")) whose certificates the fake takes in the TLS handshake
    and answers with 401, as kube-apiserver answers any certificate not of its client CA."""

    def __init__(self, tokens=None, other_ca=False, **delays):
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-fake-k8s-")
        d = self.dir = self._tmp.name
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=fake-k8s-ca", cwd=d)
        self._cert("server", "/CN=kube-apiserver",
                   "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n"
                   "extendedKeyUsage=serverAuth\n")
        self.ca = os.path.join(d, "ca.crt")
        self.other_ca = None
        if other_ca:
            _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", "other-ca.key", "-out", "other-ca.crt", "-days", "2", "-subj", "/CN=other-ca",
                     cwd=d)
            self.other_ca = os.path.join(d, "other-ca.crt")
        self.tokens = {ADMIN_TOKEN: (ADMIN_USER, ["system:masters"])}
        self.tokens.update(tokens or {})
        self.token_file = os.path.join(d, "tokens.csv")
        self.write_tokens()
        port_file = os.path.join(d, "port")
        args = ["/usr/bin/python3", "-B", FAKE, "--cert", os.path.join(d, "server.crt"),
                "--key", os.path.join(d, "server.key"), "--client-ca", self.ca,
                "--token-file", self.token_file, "--port-file", port_file]
        if self.other_ca:
            args += ["--tls-accept-ca", self.other_ca]
        for key, flag in (("endpoints", "--endpoints-delay"), ("podReady", "--pod-ready-delay"),
                          ("deployment", "--deployment-delay"), ("termination", "--termination-delay")):
            if key in delays:
                args += [flag, str(delays[key])]
        self.stderr = open(os.path.join(d, "stderr"), "w+")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + 15
        while not os.path.exists(port_file):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stderr.seek(0)
                raise RuntimeError("fake Kubernetes did not start: " + self.stderr.read())
            time.sleep(0.05)
        with open(port_file) as f:
            self.port = int(f.read())
        self.url = f"https://127.0.0.1:{self.port}"
        self._ssl = ssl.create_default_context(cafile=self.ca)

    def _cert(self, name, subject, ext, ca="ca"):
        d = self.dir
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".csr", "-subj", subject, cwd=d)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
                 "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext", cwd=d)
        return os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")

    def client_cert(self, user, groups=(), ca="ca"):
        """A client certificate for `user` (CN) in `groups` (O) signed by `ca` ("ca", or
        "other-ca" when made): (cert path, key path)."""
        subject = "/" + "/".join([f"O={g}" for g in groups] + [f"CN={user}"])
        name = "client-" + user.replace(":", "_") + ("" if ca == "ca" else "-" + ca)
        return self._cert(name, subject, "extendedKeyUsage=clientAuth\n", ca=ca)

    def write_tokens(self):
        """Writes the token file (the fake re-reads it when it changes, as a rotated token)."""
        with open(self.token_file + ".tmp", "w") as f:
            for i, (token, (user, groups)) in enumerate(self.tokens.items()):
                f.write(f'{token},{user},uid-{i},"{",".join(groups)}"\n')
        os.replace(self.token_file + ".tmp", self.token_file)

    def kubeconfig(self, token=ADMIN_TOKEN, cert=None, name="config", user=None, embed=False):
        """Writes a kubeconfig (JSON, which is YAML) for a token, a (cert, key) pair (embed: as
        client-certificate-data/client-key-data) or a `user` entry as given."""
        if user is None and cert and embed:
            user = {"client-certificate-data": _b64_file(cert[0]), "client-key-data": _b64_file(cert[1])}
        elif user is None:
            user = {"client-certificate": cert[0], "client-key": cert[1]} if cert else {"token": token}
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "fake",
               "clusters": [{"name": "fake", "cluster": {"server": self.url, "certificate-authority": self.ca}}],
               "users": [{"name": "u", "user": user}],
               "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u", "namespace": "default"}}]}
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    def service_account_dir(self, token, namespace="default", name="serviceaccount"):
        """A directory laid out as a pod's /var/run/secrets/kubernetes.io/serviceaccount (token,
        ca.crt, namespace), for in-cluster configuration; rewrite its token file to rotate."""
        d = os.path.join(self.dir, name)
        os.makedirs(d, exist_ok=True)
        shutil.copy(self.ca, os.path.join(d, "ca.crt"))
        for fname, text in (("token", token), ("namespace", namespace)):
            with open(os.path.join(d, fname), "w") as f:
                f.write(text)
        return d

    def projected_service_account_dir(self, token, namespace="default", name="projected-serviceaccount"):
        """The same, laid out as the kubelet writes a projected volume (k/k pkg/volume/util/
        atomic_writer.go): the files live in a `..<timestamp>` directory, `..data` links to it
        and token, ca.crt, namespace are links through `..data`; rotate_token swaps `..data`."""
        d = os.path.join(self.dir, name)
        os.makedirs(d, exist_ok=True)
        self._project(d, token, namespace)
        for fname in ("token", "ca.crt", "namespace"):
            os.symlink(os.path.join("..data", fname), os.path.join(d, fname))
        return d

    def rotate_token(self, sa_dir, token):
        """A new token in a projected_service_account_dir, swapped in atomically as the kubelet
        does when it refreshes a bound token."""
        with open(os.path.join(sa_dir, "namespace")) as f:
            namespace = f.read()
        self._project(sa_dir, token, namespace)

    def _project(self, d, token, namespace):
        old = os.path.realpath(os.path.join(d, "..data")) if os.path.islink(os.path.join(d, "..data")) else None
        ts = os.path.join(d, time.strftime("..%Y_%m_%d_%H_%M_%S.") + str(time.monotonic_ns()))
        os.mkdir(ts)
        shutil.copy(self.ca, os.path.join(ts, "ca.crt"))
        for fname, text in (("token", token), ("namespace", namespace)):
            with open(os.path.join(ts, fname), "w") as f:
                f.write(text)
        os.symlink(os.path.basename(ts), os.path.join(d, "..data_tmp"))
        os.replace(os.path.join(d, "..data_tmp"), os.path.join(d, "..data"))
        if old:
            shutil.rmtree(old)

    def in_cluster_env(self):
        """KUBERNETES_SERVICE_HOST/PORT as the kubelet sets them in a pod."""
        return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.port)}

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()
        self._tmp.cleanup()

    def request(self, method, path, body=None, token=ADMIN_TOKEN, content_type="application/json"):
        """One API request: (status, parsed JSON body)."""
        data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self._ssl) as r:
                raw, status = r.read(), r.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        return status, (json.loads(raw) if raw and raw[:1] in (b"{", b"[") else raw.decode())

    def must(self, method, path, body=None):
        """An API request as the cluster admin that must succeed: its parsed body."""
        status, out = self.request(method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {out}")
        return out

    def control(self, method, path, body=None):
        status, out = self.request(method, "/__fake/" + path, body)
        if status >= 300:
            raise RuntimeError(f"/__fake/{path}: {status} {out}")
        return out

    # Conveniences over the control API (README.md describes it).
    def set_ready(self, namespace, name=None, ready=True, selector=None):
        """Sets pods' readiness now: one by `name`, or all a `selector` matches (text "app=a"
        or a dict {"app": "a"}; the fake reads the text only, and would take a dict for "app")."""
        if isinstance(selector, dict):
            selector = ",".join(f"{k}={v}" for k, v in selector.items())
        return self.control("POST", "pod-ready", {"namespace": namespace, "name": name, "selector": selector,
                                                  "ready": ready})

    def add_pod(self, namespace, name, labels, ready=None, ports=()):
        return self.control("POST", "pods", {"namespace": namespace, "name": name, "labels": labels,
                                             "ready": ready, "ports": list(ports)})

    def endpoint_record(self, namespace, service):
        return self.control("GET", f"endpoints?namespace={namespace}&service={service}")["records"]

    def min_ready(self, namespace, service, since, until=None):
        """The fewest ready endpoints the Service had between two time.time() instants (the
        count in effect at `since` included): 0 means there was a moment with nothing to serve."""
        records = self.endpoint_record(namespace, service)
        before = [r["ready"] for r in records if r["time"] <= since]
        during = [r["ready"] for r in records if since < r["time"] <= (until or float("inf"))]
        return min(before[-1:] + during) if before or during else 0

    def inject_conflicts(self, path, count=1):
        return self.control("POST", "conflicts", {"path": path, "count": count})

    def inject_fault(self, path, status, count=1, method=None, **extra):
        return self.control("POST", "faults", {"path": path, "status": status, "count": count,
                                               "method": method, **extra})

    def requests(self):
        return self.control("GET", "requests")["requests"]

    def configure(self, **values):
        return self.control("POST", "config", values)


def kubectl():
    """The kubectl on PATH (Debian's kubernetes-client or another), or None."""
    return shutil.which("kubectl")
