"""A local stack on loopback for the end-to-end tests and `make demo`: HAProxy in front of
two small app servers and the intermission page server, plus a bounded traffic generator
that classifies every response as app, page, other or error.

Only the Python standard library (Debian's /usr/bin/python3) and the Debian haproxy package
are used. Everything binds to 127.0.0.1."""

import http.client
import http.server
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

BIN = os.environ.get("INTERMISSION_BIN", "build/src/app/intermission")
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
APP_MARKER = "intermission-demo-app"
PAGE_MARKER = 'data-intermission="maintenance"'
BYPASS_SECRET = "letmein-0123456789"


# Ports for test servers come from below the kernel's ephemeral range (32768-60999 by
# default): a port picked there by bind(0) and then released can be taken by any outgoing
# connection (the traffic generators make thousands) before the server binds it.
_PORTS = range(20000, 32000)
_rng = random.Random(os.getpid() ^ int(time.time() * 1000))


def free_ports(n, host="127.0.0.1"):
    """n distinct ports nothing is bound to now, outside the ephemeral range."""
    chosen = []
    for _ in range(1000):
        if len(chosen) == n:
            break
        port = _rng.choice(_PORTS)
        if port in chosen:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        chosen.append(port)
    if len(chosen) < n:
        raise RuntimeError(f"no {n} free ports in {_PORTS}")
    return chosen


def free_port(host="127.0.0.1"):
    return free_ports(1, host)[0]


def read_to_eof(sock):
    """Everything the peer sends until it closes; then closes our side too."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    return data


def wait_for_port(port, timeout=10.0, host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")


def nginx_intermission_config(state_file, port, page_settings):
    """The intermission.yaml of an nginx set-up (nginx_e2e, the nginx switch bench): a SQLite
    store and environment prod with backend nginx, its decision in `state_file`, its probe
    through nginx on `port`; `page_settings`: further backend lines, indented six spaces."""
    return f"""\
store: {{path: state.db}}
environments:
  prod:
    backend:
      type: nginx
      state_file: {state_file}
      probe: http://127.0.0.1:{port}/.intermission/prod/state
{page_settings}"""


def nginx_conf(workdir, port, app_ports, http_part="", server_part="", workers=1,
               connections=1024, more_http=""):
    """The text of an nginx.conf that keeps its pid, log and temporary files in `workdir` and
    proxies 127.0.0.1:`port` to `app_ports` (upstream "app"), with the lines `intermission
    nginx-config` prints for the http block and for the server block (nginx_e2e, the nginx
    switch bench). `more_http`: further lines in the http block."""
    temp = os.path.join(workdir, "tmp")
    os.makedirs(temp, exist_ok=True)
    servers = "".join(f"        server 127.0.0.1:{p};\n" for p in app_ports)
    return f"""\
worker_processes {workers};
pid {workdir}/nginx.pid;
error_log {workdir}/nginx.err;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    upstream app {{
{servers}        keepalive 16;
    }}
{more_http}{http_part}
    server {{
        listen 127.0.0.1:{port};
{server_part}
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


class AppHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    name = "app"

    def _reply(self, body=True):
        payload = f"{APP_MARKER} {self.server.app_name}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def do_GET(self):
        self._reply()

    def do_HEAD(self):
        self._reply(body=False)

    def log_message(self, *args):
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client (HAProxy) closing a keep-alive connection is normal


class AppServer:
    """A tiny application server answering 200 with a marker and its name."""

    def __init__(self, name):
        self.port = free_port()
        self.httpd = QuietServer(("127.0.0.1", self.port), AppHandler)
        self.httpd.daemon_threads = True
        self.httpd.app_name = name
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Traffic:
    """Bounded load: `clients` threads send GET / over keep-alive connections until stopped,
    or until `max_requests` in all or `max_seconds` have passed. Each response is recorded as
    (start, end, kind, client) with kind in app, page, other, error.

    Like browsers and curl (RFC 9112 §9.3.1), a client retries a GET once on a new
    connection when the server closed a reused keep-alive connection before answering;
    `stale_retries` counts those. Any other failure is an error."""

    def __init__(self, port, clients=4, max_requests=200_000, max_seconds=120.0, pause=0.002,
                 source=None, headers=None):
        self.port, self.clients, self.pause = port, clients, pause
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self.source, self.headers = source, headers or {}
        self.records = []
        self.errors = []
        self.stale_retries = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []

    def _connect(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5,
                                       source_address=(self.source, 0) if self.source else None)
        c.connect()
        return c

    def _run(self, client):
        conn = None
        started = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - started > self.max_seconds:
                break
            with self._lock:
                if len(self.records) >= self.max_requests:
                    break
            t0 = time.monotonic()
            try:
                reused = conn is not None
                if conn is None:
                    conn = self._connect()
                try:
                    conn.request("GET", "/", headers=self.headers)
                    r = conn.getresponse()
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    if not reused:
                        raise
                    with self._lock:
                        self.stale_retries += 1
                    conn.close()
                    conn = self._connect()
                    conn.request("GET", "/", headers=self.headers)
                    r = conn.getresponse()
                body = r.read().decode(errors="replace")
                if r.status == 200 and APP_MARKER in body:
                    kind = "app"
                elif r.status == 503 and PAGE_MARKER in body and r.getheader("Retry-After"):
                    kind = "page"
                else:
                    kind = "other"
                    with self._lock:
                        self.errors.append(f"{r.status} {body[:80]!r}")
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                kind = "error"
                with self._lock:
                    self.errors.append(repr(e))
                if conn is not None:
                    conn.close()
                conn = None
            with self._lock:
                self.records.append((t0, time.monotonic(), kind, client))
            if self.pause:
                time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def start(self):
        for i in range(self.clients):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    def snapshot(self):
        with self._lock:
            return list(self.records)

    def kinds(self, since=None, until=None):
        """Counts of each kind among requests started in [since, until)."""
        counts = {"app": 0, "page": 0, "other": 0, "error": 0}
        for t0, _, kind, _ in self.snapshot():
            if (since is None or t0 >= since) and (until is None or t0 < until):
                counts[kind] += 1
        return counts


class Stack:
    """HAProxy (frontend on `port`) → two app servers, or the page server while the map
    says so. The HAProxy config is the one `intermission haproxy-config` prints."""

    def __init__(self, port=None, bypass_cidr="127.0.0.2/32", workdir=None):
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="intermission-stack-")
            workdir = self._tmp.name
        self.dir = workdir
        ports = free_ports(2)
        self.port = port or ports[0]
        self.page_port = ports[1] if ports[1] != self.port else ports[0]
        self.socket = os.path.join(self.dir, "haproxy.sock")
        self.admin_socket = os.path.join(self.dir, "admin.sock")
        self.map = os.path.join(self.dir, "maintenance.map")
        self.config = os.path.join(self.dir, "intermission.yaml")
        self.haproxy_cfg = os.path.join(self.dir, "haproxy.cfg")
        self.bypass_cidr = bypass_cidr
        self.apps = [AppServer("blue"), AppServer("green")]
        self.page = None
        self.haproxy = None
        self.old_haproxy = []

    # -- intermission ---------------------------------------------------------------------
    def write_intermission_config(self, extra_env=""):
        with open(self.config, "w") as f:
            f.write(f"""\
store:
  path: state.db
defaults:
  failure_grace: 3s
routes:
  - deployment_group: "*-*"
    environment: "{{1}}"
environments:
  prod:
    backend:
      type: haproxy
      socket: {self.socket}
      map: {self.map}
{extra_env}""")

    def cli(self, *args, stdin=None, check=True):
        p = subprocess.run([BIN, "--config", self.config, "--log-level", "warn", *args],
                           input=stdin, capture_output=True, text=True, timeout=60, cwd=self.dir)
        if check and p.returncode != 0:
            raise RuntimeError(f"intermission {' '.join(args)} failed ({p.returncode}):\n"
                               f"{p.stdout}\n{p.stderr}")
        return p

    def handle(self, message):
        return self.cli("handle", stdin=json.dumps(message))

    # -- haproxy --------------------------------------------------------------------------
    def write_haproxy_config(self):
        snippet = self.cli("haproxy-config", "prod", "--page-server", f"127.0.0.1:{self.page_port}",
                           "--bypass-cidr", self.bypass_cidr,
                           "--bypass-secret", BYPASS_SECRET).stdout
        # Our own frontend lines go right after the snippet's `frontend www`.
        snippet = snippet.replace(
            "frontend www\n",
            f"frontend www\n    bind 127.0.0.1:{self.port}\n    default_backend app\n", 1)
        servers = "".join(f"    server {a.httpd.app_name} 127.0.0.1:{a.port} check inter 1s\n"
                          for a in self.apps)
        with open(self.haproxy_cfg, "w") as f:
            f.write(f"""\
global
    pidfile {self.dir}/haproxy.pid
    # The operator's own socket, for seamless reloads; intermission uses the snippet's.
    stats socket {self.admin_socket} mode 600 level admin expose-fd listeners
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s
    option http-keep-alive
{snippet}
backend app
    balance roundrobin
{servers}""")
        if not os.path.exists(self.map):
            open(self.map, "w").close()
        check = subprocess.run([HAPROXY, "-c", "-q", "-f", self.haproxy_cfg],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy -c rejected the config:\n{check.stderr}\n"
                               f"{open(self.haproxy_cfg).read()}")

    def start_haproxy(self):
        self.haproxy = subprocess.Popen([HAPROXY, "-db", "-f", self.haproxy_cfg],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket) and time.monotonic() < deadline:
            time.sleep(0.05)

    def reload_haproxy(self):
        """A seamless reload: the new process takes the listeners over the socket (-x) and
        the old one (-sf) finishes its connections."""
        old = self.haproxy
        self.haproxy = subprocess.Popen(
            [HAPROXY, "-db", "-f", self.haproxy_cfg, "-x", self.admin_socket, "-sf", str(old.pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.old_haproxy.append(old)
        old.wait(timeout=30)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self):
        for a in self.apps:
            a.start()
        self.write_intermission_config()
        self.page = subprocess.Popen(
            [BIN, "--config", self.config, "--log-level", "warn", "page",
             "--listen", f"127.0.0.1:{self.page_port}", "--environment", "prod"],
            cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.page_port)
        self.write_haproxy_config()
        self.start_haproxy()
        return self

    def stop(self):
        for p in [self.haproxy, self.page, *self.old_haproxy]:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for a in self.apps:
            a.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
