#!/usr/bin/python3
"""The page server beside nginx and HAProxy on the same raw requests (tests/http_probe.py:
RFC 9112/9110 Host, Transfer-Encoding, version and target rules, Accept negotiation).

Each server is started the way `make bench` starts it (bench/page_bench.py's Server, the
same maintenance-page configuration, plus a /healthz that answers 200 as a user would add it),
gets every request on a fresh connection, and the answers (statuses, whether the connection
was closed, or a hang: neither answered nor closed within 2 s) are written as a Markdown
table, rows where the three differ marked, with the reason beside them.

Needs the Debian packages nginx-light and haproxy (`make conformance` installs them)."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from http_probe import CASES, describe, probe  # noqa: E402
from page_bench import Server, fetch  # noqa: E402
from stack import free_ports, wait_for_port  # noqa: E402

# Why a row differs, for the rows where it does (checked against the servers' sources and
# documentation; RFC text quoted in tests/http_probe.py).
NOTES = {
    "HTTP/1.1 without Host":
        "RFC 9112 §3.2 requires 400; HAProxy 2.6 serves the request anyway.",
    "Host with a space":
        "RFC 9112 §3.2 requires 400 for an invalid Host; HAProxy 2.6 does not check the value "
        "(it did refuse the two Host lines of the row above).",
    "Host with a path":
        "As above: HAProxy does not check the value.",
    "Host with a bad port":
        "The port is digits only (RFC 3986 §3.2.3); nginx and HAProxy do not check it.",
    "Host empty":
        "RFC 9110 §7.2 allows an empty Host (a target with no authority); nginx refuses it.",
    "bare LF line ends":
        "RFC 9112 §2.2 lets a recipient accept a bare LF as a line end (nginx and HAProxy do); "
        "intermission's parser (Beast) refuses it.",
    "a folded field line (obs-fold)":
        "RFC 9112 §5.2 lets a server either refuse obs-fold with 400 or replace each fold with "
        "spaces; nginx and intermission refuse, HAProxy unfolds.",
    "Transfer-Encoding: gzip (+ a request in the body)":
        "All three refuse and close, as RFC 9112 §6.3 requires; nginx says 501 (RFC 9112 §6.1: "
        "a coding it does not understand).",
    "Transfer-Encoding: chunked, gzip":
        "As above: chunked must be the final coding.",
    "Transfer-Encoding: gzip, chunked":
        "The body's length is known from the chunked framing, and intermission discards bodies "
        "unread, so it answers; nginx (501) and HAProxy (422) accept no coding but chunked. "
        "RFC 9112 §6.1 says a server SHOULD answer 501 to a coding it does not understand; "
        "intermission needs to understand none, being the last hop.",
    "Transfer-Encoding and Content-Length":
        "RFC 9112 §6.1 lets a server reject this (nginx, intermission) or process it by "
        "Transfer-Encoding and then close (HAProxy).",
    "HTTP/1.0 with Transfer-Encoding, keep-alive, 2 requests":
        "RFC 9112 §6.1: the framing is faulty and the connection must close after the message. "
        "nginx (since 1.21.2) and intermission refuse the request with 400; HAProxy answers it "
        "and closes. All three answer once.",
    "HTTP/0.9 request line":
        "nginx still speaks HTTP/0.9: it sends the page body with no status line or headers, "
        "then closes. HAProxy and intermission refuse it with 400 at once.",
    "HTTP/2.0 request line":
        "HTTP/2 cannot come in HTTP/1 syntax; nginx and intermission say 505 (RFC 9110 "
        "§15.6.6); HAProxy 2.6 answers it (503) and keeps the connection open.",
    "lower-case method":
        "RFC 9110 §9.1: methods are case-sensitive, so `get` is not GET. nginx refuses a method "
        "that is not upper-case letters, '-' and '_' with 400, and so does intermission; HAProxy "
        "takes any token as a method, and its health rule here looks at the path only.",
    "Accept: application/json;q=1, text/html;q=0.5":
        "Only intermission negotiates (JSON for API clients); nginx and HAProxy, configured as "
        "in `make bench`, send the HTML page whatever the Accept.",
    "Accept: text/html;q=0.5, application/json":
        "As above.",
    "Expect: 100-continue, no body sent":
        "All three answer at once; intermission and HAProxy then close (the body is never "
        "needed), nginx keeps the connection open.",
}



def configs(work, ports):
    nginx = os.path.join(work, "nginx.conf")
    with open(nginx, "w") as f:
        f.write(f"""worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx.err;
daemon off;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  server_tokens off;
  server {{
    listen 127.0.0.1:{ports['nginx']};
    root {work};
    location = /healthz {{ default_type text/plain; return 200 "ok\\n"; }}
    location / {{ return 503; }}
    error_page 503 /page.html;
    location = /page.html {{
      internal;
      default_type "text/html; charset=utf-8";
      add_header Retry-After 120 always;
      add_header Cache-Control no-store always;
    }}
  }}
}}
""")
    haproxy = os.path.join(work, "haproxy.cfg")
    with open(haproxy, "w") as f:
        f.write(f"""global
  nbthread 1
defaults
  mode http
  timeout client 10s
  timeout http-request 10s
  timeout http-keep-alive 10s
frontend fe
  bind 127.0.0.1:{ports['haproxy']}
  http-request return status 200 content-type "text/plain" string "ok" if {{ path /healthz }}
  http-request return status 503 content-type "text/html; charset=utf-8" file {work}/page.html hdr Retry-After 120 hdr Cache-Control no-store
""")
    return nginx, haproxy


def versions(bin_path):
    out = {}
    try:
        out["nginx"] = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1]
    except OSError:
        out["nginx"] = "?"
    try:
        first = subprocess.run([shutil.which("haproxy") or "/usr/sbin/haproxy", "-v"], capture_output=True,
                               text=True).stdout.splitlines()[0]
        out["haproxy"] = first.split()[2]
    except (OSError, IndexError):
        out["haproxy"] = "?"
    commit = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    out["intermission"] = commit or "?"
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/src/app/intermission")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "docs", "conformance.md"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="intermission-conformance-")
    os.chmod(work, 0o755)  # nginx's workers run as another user
    names = ["intermission", "nginx", "haproxy"]
    results = {}
    try:
        ports = dict(zip(names + ["page"], free_ports(4)))
        # The page: what intermission serves, so all three send the same bytes.
        p = subprocess.Popen([args.bin, "page", "--listen", f"127.0.0.1:{ports['page']}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(ports["page"])
        _, _, page = fetch(ports["page"])
        p.terminate()
        p.wait()
        with open(os.path.join(work, "page.html"), "wb") as f:
            f.write(page)
        nginx_conf, haproxy_cfg = configs(work, ports)
        servers = [
            Server("intermission", [os.path.abspath(args.bin), "--log-level", "error", "page", "--listen",
                                    f"127.0.0.1:{ports['intermission']}", "--retry-after", "2m"],
                   ports["intermission"], work, cpus=None),
            Server("nginx", ["nginx", "-c", nginx_conf], ports["nginx"], work, cpus=None),
            Server("haproxy", [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f", haproxy_cfg],
                   ports["haproxy"], work, cpus=None),
        ]
        for server in servers:
            server.start()
            try:
                for case in CASES:
                    results[(case.name, server.name)] = probe(server.port, case.raw)
            finally:
                server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    v = versions(args.bin)
    lines = [
        "# The page server beside nginx and HAProxy",
        "",
        "Generated by `bench/conformance.py` (`make conformance`; not part of `make test`): the "
        "same raw requests (`tests/http_probe.py`), each on a fresh connection, to "
        f"`intermission page` ({v['intermission']}), nginx {v['nginx']} and HAProxy {v['haproxy']} "
        "(Debian 12), configured as `make bench` configures them, with a `/healthz` answering "
        "200 added. A cell says the statuses of the answers and whether the server then closed "
        "the connection (`open`: still open 0.4 s after the last byte); `hang` is neither an "
        "answer nor a close within 2 s. Rows where the three differ are marked ≠ and explained "
        "below the table. `tests/page_conformance_test.py` holds intermission to its column.",
        "",
        "| request | intermission | nginx | HAProxy | | rule |",
        "|---|---|---|---|---|---|",
    ]
    differing = []
    for case in CASES:
        cells = [results[(case.name, n)] for n in names]
        accept = "Accept" in case.name  # the answer's type is what the row is about
        keys = [(c.statuses, c.closed, c.hang, c.content_type if accept else "") for c in cells]
        differs = len(set(map(repr, keys))) > 1
        if differs:
            differing.append(case.name)
        shown = [describe(c) + (f" ({c.content_type})" if accept and c.content_type else "")
                 for c in cells]
        lines.append(f"| {case.name} | " + " | ".join(shown) + f" | {'≠' if differs else ''} | {case.rule} |")
    lines += ["", "## Where they differ, and why", ""]
    for name in differing:
        lines.append(f"- **{name}**: {NOTES.get(name, 'not explained yet: see the row above.')}")
    lines.append("")
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
