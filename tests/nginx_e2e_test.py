"""End to end with a real nginx (Debian nginx-light) on loopback: maintenance switched by the
nginx backend's state file, with the lines `intermission nginx-config` prints, while a bounded
traffic generator runs — zero failed requests across on and off, bypass by cookie, header and
source address, the health path and exempt paths passed to the app, JSON for API clients, the
state kept across an nginx restart, a fallback page when the page server is down, and an nginx
without the lines reported with nothing changed. And the same in file mode (`page_dir`), where
nginx serves the page, its JSON and assets from files the backend writes at every switch on:
the bodies and headers, and a new page without a reload."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from stack import (APP_MARKER, BIN, BYPASS_SECRET, PAGE_MARKER, AppServer, Traffic,  # noqa: E402
                   free_ports, nginx_conf, nginx_intermission_config, wait_for_port)

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class NginxStack(unittest.TestCase):
    """nginx in front of two apps, with intermission's lines; no tests of its own. In file
    mode (`files`) the backend writes the page into a directory and no page server runs."""
    files = False

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-nginx-")
        self.dir = self._tmp.name
        os.chmod(self.dir, 0o755)  # nginx's workers run as another user when we are root
        self.state_dir = os.path.join(self.dir, "state")
        os.mkdir(self.state_dir, 0o755)
        self.state_file = os.path.join(self.state_dir, "prod.on")
        self.port, self.page_port = free_ports(2)
        self.apps = [AppServer("blue"), AppServer("green")]
        for a in self.apps:
            a.start()
        self.config = os.path.join(self.dir, "intermission.yaml")
        page_settings = ""
        if self.files:
            self.page_dir = os.path.join(self.dir, "page")
            os.mkdir(self.page_dir, 0o755)
            os.makedirs(os.path.join(self.dir, "assets", "img"))
            with open(os.path.join(self.dir, "assets", "site.css"), "w") as f:
                f.write("body{color:#123}\n")
            with open(os.path.join(self.dir, "assets", "img", "logo.svg"), "w") as f:
                f.write("<svg xmlns='http://www.w3.org/2000/svg'/>\n")
            with open(os.path.join(self.dir, "page.html"), "w") as f:
                f.write('<!doctype html><html data-intermission="maintenance"><link rel=stylesheet '
                        'href="/_intermission/site.css"><p class=reason>{{reason}}</p>'
                        '<p>{{until}}</p></html>\n')
            page_settings = f"""\
      page_dir: {self.page_dir}
      page_file: page.html
      assets: assets
      retry_after: 90s
"""
        with open(self.config, "w") as f:
            f.write(nginx_intermission_config(self.state_file, self.port, page_settings))
        self.nginx = None
        self.traffic = None
        self.page = None
        if self.files:
            return
        self.page = subprocess.Popen(
            [BIN, "--config", self.config, "--log-level", "warn", "page", "--listen",
             f"127.0.0.1:{self.page_port}", "--environment", "prod"],
            cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.page_port)

    def tearDown(self):
        if self.traffic:
            self.traffic.stop()
        self.stop_nginx()
        if self.page is not None:
            self.page.terminate()
            self.page.wait(timeout=10)
        for a in self.apps:
            a.stop()
        self._tmp.cleanup()

    def cli(self, *args, check=0):
        p = subprocess.run([BIN, "--config", self.config, *args], capture_output=True, text=True,
                           cwd=self.dir, timeout=60)
        if check is not None:
            self.assertEqual(p.returncode, check, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def write_nginx_conf(self, with_intermission=True):
        http_part = server_part = ""
        if with_intermission:
            common = ["nginx-config", "prod", "--bypass-cidr", "127.0.0.2/32",
                      "--bypass-secret", BYPASS_SECRET,
                      "--exempt", "/webhooks/,/.well-known/acme-challenge/"]
            if not self.files:
                common += ["--page-server", f"127.0.0.1:{self.page_port}"]
            http_part = self.cli(*common, "--part", "http").stdout
            server_part = self.cli(*common, "--part", "server").stdout
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(nginx_conf(self.dir, self.port, [a.port for a in self.apps], http_part,
                               server_part))

    def start_nginx(self):
        conf = os.path.join(self.dir, "nginx.conf")
        check = subprocess.run([NGINX, "-t", "-q", "-c", conf], capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stderr)
        self.nginx = subprocess.Popen([NGINX, "-c", conf, "-g", "daemon off;"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port)

    def stop_nginx(self):
        if self.nginx is not None:
            self.nginx.send_signal(signal.SIGQUIT)  # graceful
            self.nginx.wait(timeout=15)
            self.nginx = None

    def workers(self):
        """The pids of nginx's workers (a reload replaces them)."""
        with open(f"/proc/{self.nginx.pid}/task/{self.nginx.pid}/children") as f:
            return sorted(int(p) for p in f.read().split())

    def get(self, path="/", headers=None, source=None, method="GET"):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5,
                                       source_address=(source, 0) if source else None)
        c.request(method, path, body=b"x=1" if method == "POST" else None, headers=headers or {})
        r = c.getresponse()
        body = r.read().decode(errors="replace")
        out = (r.status, dict((k.lower(), v) for k, v in r.getheaders()), body)
        c.close()
        return out

    def assert_only(self, kind, since, until):
        counts = self.traffic.kinds(since, until)
        self.assertGreater(counts[kind], 20, counts)
        others = {k: v for k, v in counts.items() if k != kind and v}
        self.assertEqual(others, {}, f"expected only {kind}: {counts}")


class NginxEndToEnd(NginxStack):
    def test_switching_under_traffic_fails_no_request(self):
        self.write_nginx_conf()
        self.start_nginx()
        self.traffic = Traffic(self.port, clients=4)
        self.traffic.start()
        time.sleep(0.5)
        before = time.monotonic()
        self.assert_only("app", None, before)
        self.cli("on", "prod", "--reason", "database upgrade")
        on = time.monotonic()
        time.sleep(1.0)
        self.assert_only("page", on, time.monotonic())
        self.cli("off", "prod")
        off = time.monotonic()
        time.sleep(1.0)
        self.assert_only("app", off, time.monotonic())
        self.traffic.stop()
        total = self.traffic.kinds()
        self.assertEqual((total["error"], total["other"]), (0, 0), self.traffic.errors[:5])
        self.assertEqual(self.traffic.stale_retries, 0, "no switch ever closes a connection")
        status = json.loads(self.cli("status", "--json").stdout)["environments"][0]
        self.assertFalse(status["observed"]["on"])
        self.assertIn("nginx agrees", status["observed"]["detail"])

    def test_bypass_health_exempt_paths_and_json_while_on(self):
        self.write_nginx_conf()
        self.start_nginx()
        self.cli("on", "prod", "--reason", "database upgrade", "--for", "10m")
        status, headers, body = self.get("/")
        self.assertEqual(status, 503)
        self.assertIn(PAGE_MARKER, body)
        deadline = time.monotonic() + 5  # the page server reads the ledger every second
        while "database upgrade" not in body and time.monotonic() < deadline:
            time.sleep(0.2)
            status, headers, body = self.get("/")
        self.assertIn("database upgrade", body)
        self.assertIn("retry-after", headers)
        self.assertEqual(headers.get("cache-control"), "no-store")
        status, headers, body = self.get("/api/orders", {"Accept": "application/json"})
        self.assertEqual(status, 503)
        self.assertTrue(headers["content-type"].startswith("application/json"), headers)
        self.assertIn("database upgrade", body)
        for path, headers, source in [("/", {"Cookie": f"intermission_bypass={BYPASS_SECRET}"}, None),
                                      ("/", {"X-Intermission-Bypass": BYPASS_SECRET}, None),
                                      ("/", {}, "127.0.0.2"),
                                      ("/healthz", {}, None),
                                      ("/webhooks/github", {}, None),
                                      ("/.well-known/acme-challenge/t0k3n", {}, None)]:
            status, _, body = self.get(path, headers, source)
            self.assertEqual(status, 200, (path, headers, source, body))
            self.assertIn(APP_MARKER, body)
        status, _, body = self.get("/", {"Cookie": "intermission_bypass=wrong"})
        self.assertEqual(status, 503, "a wrong secret does not bypass")
        status, _, body = self.get("/webhooksX")
        self.assertEqual(status, 503, "exempt paths are prefixes, matched literally")

    def test_an_nginx_restart_keeps_the_state(self):
        self.write_nginx_conf()
        self.start_nginx()
        self.cli("on", "prod")
        self.stop_nginx()
        self.start_nginx()
        self.assertEqual(self.get("/")[0], 503)
        self.cli("off", "prod")
        self.assertEqual(self.get("/")[0], 200)

    def test_a_page_server_that_is_down_still_gets_users_a_page(self):
        self.write_nginx_conf()
        self.start_nginx()
        self.page.terminate()
        self.page.wait(timeout=10)
        self.cli("on", "prod")
        status, headers, body = self.get("/")
        self.assertEqual(status, 503)
        self.assertIn("right back", body)
        self.assertEqual(headers.get("retry-after"), "120")

    def test_an_nginx_without_the_lines_is_reported_and_nothing_changes(self):
        self.write_nginx_conf(with_intermission=False)
        self.start_nginx()
        p = self.cli("on", "prod", check=1)
        self.assertIn("nginx-config prod", p.stderr)
        self.assertFalse(os.path.exists(self.state_file), "the switch was undone")
        self.assertEqual(self.get("/")[0], 200)
        status = json.loads(self.cli("status", "--json").stdout)["environments"][0]
        self.assertIn("nginx-config prod", status["observed"]["error"])


class NginxFilePageEndToEnd(NginxStack):
    files = True

    def test_switching_under_traffic_fails_no_request_and_a_new_page_needs_no_reload(self):
        self.write_nginx_conf()
        self.start_nginx()
        workers = self.workers()
        self.traffic = Traffic(self.port, clients=4)
        self.traffic.start()
        time.sleep(0.5)
        self.assert_only("app", None, time.monotonic())
        for reason in ["database upgrade", "schema change"]:
            self.cli("on", "prod", "--reason", reason)
            on = time.monotonic()
            self.assertIn(reason, self.get("/")[2], "the page written at this switch on")
            time.sleep(0.7)
            self.assert_only("page", on, time.monotonic())
            self.cli("off", "prod")
            off = time.monotonic()
            time.sleep(0.7)
            self.assert_only("app", off, time.monotonic())
        self.traffic.stop()
        total = self.traffic.kinds()
        self.assertEqual((total["error"], total["other"]), (0, 0), self.traffic.errors[:5])
        self.assertEqual(self.traffic.stale_retries, 0, "no switch ever closes a connection")
        self.assertEqual(self.workers(), workers, "no reload: the same workers throughout")

    def test_page_json_assets_and_headers_come_from_the_files(self):
        self.write_nginx_conf()
        self.start_nginx()
        self.cli("on", "prod", "--reason", "database <upgrade>", "--for", "10m")
        status, headers, body = self.get("/")
        self.assertEqual(status, 503)
        with open(os.path.join(self.page_dir, "page.html")) as f:
            self.assertEqual(body, f.read())
        self.assertIn('<p class=reason>database &lt;upgrade&gt;</p>', body)
        self.assertIn("We expect to be back by", body)
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        self.assertEqual(headers["retry-after"], "90")
        self.assertEqual(headers["cache-control"], "no-store")
        self.assertEqual(headers["vary"], "Accept")
        self.assertEqual(headers["x-content-type-options"], "nosniff")
        self.assertNotIn("etag", headers)
        for method in ["POST", "PUT", "DELETE", "HEAD"]:
            status, headers, body = self.get("/checkout", method=method)
            self.assertEqual((status, headers["retry-after"]), (503, "90"), method)
            self.assertEqual(PAGE_MARKER in body, method != "HEAD", method)
        for accept in ["application/json", "application/json, text/plain, */*"]:
            status, headers, body = self.get("/api/orders", {"Accept": accept})
            self.assertEqual(status, 503)
            self.assertEqual(headers["content-type"], "application/json", accept)
            self.assertEqual(headers["retry-after"], "90")
            j = json.loads(body)
            self.assertEqual((j["status"], j["message"], j["retry_after"]),
                             ("maintenance", "database <upgrade>", 90))
            self.assertTrue(j["until"].endswith("Z"), j)
        browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        self.assertIn(PAGE_MARKER, self.get("/", {"Accept": browser})[2])
        status, headers, body = self.get("/_intermission/site.css")
        self.assertEqual((status, body), (200, "body{color:#123}\n"))
        self.assertEqual(headers["content-type"], "text/css; charset=utf-8")
        self.assertEqual(headers["cache-control"], "public, max-age=300")
        status, headers, _ = self.get("/_intermission/img/logo.svg")
        self.assertEqual((status, headers["content-type"]), (200, "image/svg+xml"))
        self.assertEqual(self.get("/_intermission/missing.css")[0], 404)
        # The page's own URIs are internal: asked for directly, nginx's fallback (404 -> 503).
        status, _, body = self.get("/.intermission/prod/page.html")
        self.assertEqual(status, 503)
        self.assertNotIn("upgrade", body)
        for path, headers, source in [("/", {"Cookie": f"intermission_bypass={BYPASS_SECRET}"}, None),
                                      ("/", {}, "127.0.0.2"),
                                      ("/healthz", {}, None),
                                      ("/webhooks/github", {}, None)]:
            status, _, body = self.get(path, headers, source)
            self.assertEqual(status, 200, (path, headers, source, body))
            self.assertIn(APP_MARKER, body)
        # Page files gone (a hand-made mistake): nginx's own short page, still a 503.
        os.unlink(os.path.join(self.page_dir, "page.html"))
        status, headers, body = self.get("/")
        self.assertEqual((status, headers.get("retry-after")), (503, "90"))
        self.assertIn("right back", body)
        self.cli("off", "prod")
        self.assertEqual(self.get("/")[0], 200)


if __name__ == "__main__":
    unittest.main()
