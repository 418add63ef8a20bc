#!/usr/bin/python3
"""The page server against what a user would otherwise put there: nginx (`return 503` +
`error_page`) and HAProxy (`http-request return`), serving the same page with the same
headers, side by side in one run, and against the floor (bench/floor_server.c: the least work
an HTTP keep-alive server can do on Linux, compiled here with the system's cc).

Servers are pinned to CPU 0 and wrk to CPU 1 (2-core machine). Scenarios: keep-alive with 50
and 500 connections, `Connection: close` with 50 and 500, each for a bounded time, repeated
with the servers alternating; then idle keep-alive connections per server for memory. Every
server's answer (status, headers, body) is checked before it is measured.

Prints one table (median over repetitions): requests/s, p50/p99 latency, server CPU
microseconds per request, each also as a ratio to nginx, to HAProxy and to the floor; the
size of each server's answer headers; resident memory at start and with the idle connections.
Then `intermission page --threads 1` against `--threads 2` (SO_REUSEPORT) under the same load.
Needs root (raises the open-files limit) and the Debian packages nginx-light, haproxy, wrk."""

import argparse
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from stack import free_port, read_to_eof, wait_for_port  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def raise_nofile(n=65536):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, max(n, hard)))
    except (ValueError, OSError):  # not root: as far as the hard limit allows
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pids_of(root_pid):
    """The process and its children (nginx's master + workers)."""
    out = [root_pid]
    try:
        children = subprocess.run(["pgrep", "-P", str(root_pid)], capture_output=True, text=True).stdout.split()
        out += [int(c) for c in children]
    except OSError:
        pass
    return out


def stat_ticks(path):
    """User + system CPU ticks from a /proc .../stat file; 0 when it is gone."""
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return 0


def cpu_ticks(pids):
    return sum(stat_ticks(f"/proc/{pid}/stat") for pid in pids)


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Server:
    def __init__(self, name, argv, port, workdir, cpus="0"):
        self.name, self.argv, self.port, self.dir, self.cpus = name, argv, port, workdir, cpus
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.dir, f"{self.name}.log"), "ab")
        pin = ["taskset", "-c", self.cpus] if self.cpus else []
        self.proc = subprocess.Popen([*pin, *self.argv], cwd=self.dir,
                                     stdout=self.log, stderr=self.log, preexec_fn=raise_nofile)
        try:
            wait_for_port(self.port)
        except RuntimeError:
            self.log.close()
            with open(os.path.join(self.dir, f"{self.name}.log")) as f:
                raise SystemExit(f"{self.name} did not start:\n{f.read()[-2000:]}")
        time.sleep(0.3)

    def pids(self):
        return pids_of(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def fetch(port, method="GET", path="/"):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
    data = read_to_eof(s)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
    return int(lines[0].split()[1]), headers, body


def answer_head(port):
    """The header block (status line to blank line) of the answer to a keep-alive GET /, as a
    browser sends it."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"


def build_floor(work):
    """Compiles bench/floor_server.c with the system's C compiler into `work`."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "floor_server.c")
    out = os.path.join(work, "floor_server")
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-o", out, src], check=True)
    return out


def check(server, page):
    status, headers, body = fetch(server.port)
    problems = []
    if status != 503:
        problems.append(f"status {status}")
    if headers.get("retry-after") != "120":
        problems.append(f"Retry-After {headers.get('retry-after')}")
    if headers.get("cache-control") != "no-store":
        problems.append(f"Cache-Control {headers.get('cache-control')}")
    if not headers.get("content-type", "").startswith("text/html"):
        problems.append(f"Content-Type {headers.get('content-type')}")
    if body != page:
        problems.append(f"body differs ({len(body)} vs {len(page)} bytes)")
    if problems:
        raise SystemExit(f"{server.name} answers wrongly: {', '.join(problems)}")


# A browser's Accept-Language, sent by wrk to every server with --languages.
ACCEPT_LANGUAGE = "en-US,en;q=0.9,de;q=0.8"


def wrk(port, connections, seconds, close, languages=False):
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
           f"http://127.0.0.1:{port}/"]
    if close:
        cmd[6:6] = ["-H", "Connection: close"]
    if languages:
        cmd[6:6] = ["-H", f"Accept-Language: {ACCEPT_LANGUAGE}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, preexec_fn=raise_nofile).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "requests": requests, "p50": pct(50), "p99": pct(99),
            "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
            "answered": int(non2xx.group(1)) if non2xx else 0}


def thread_ticks(pid):
    """CPU ticks of each thread of a process."""
    return [stat_ticks(f"/proc/{pid}/task/{tid}/stat") for tid in sorted(os.listdir(f"/proc/{pid}/task"))]


def scaling(args, work):
    """`intermission page --threads 1` and `--threads 2` under the same load, nothing pinned
    (two cores shared by server and wrk): requests/s, CPU per request, and how evenly the
    kernel spread the connections over the SO_REUSEPORT listeners (share of the busiest
    thread in the server's CPU)."""
    rows = {1: [], 2: []}
    for rep in range(args.repetitions):
        for threads in ([1, 2] if rep % 2 == 0 else [2, 1]):
            port = free_port()
            server = Server(f"intermission x{threads}",
                            [os.path.abspath(args.bin), "--log-level", "error", "page", "--listen",
                             f"127.0.0.1:{port}", "--threads", str(threads)], port, work, cpus=None)
            server.start()
            before = thread_ticks(server.proc.pid)
            cmd = ["wrk", "-t2", "-c200", f"-d{args.seconds}s", f"http://127.0.0.1:{port}/"]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 60).stdout
            after = thread_ticks(server.proc.pid)
            server.stop()
            requests = int(re.search(r"(\d+) requests in", out).group(1))
            used = [a - b for a, b in zip(after, before)] if len(after) == len(before) else after
            total = max(sum(used), 1)
            rows[threads].append({"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
                                  "cpu_us": total * 1e6 / HZ / max(requests, 1),
                                  "busiest": max(used) / total})
    print("\n| scaling (2 cores shared by server and wrk -t2 -c200) | req/s | vs 1 thread | CPU µs/req | busiest thread's share of server CPU |")
    print("|---|---|---|---|---|")
    base = statistics.median(r["rps"] for r in rows[1])
    for threads in (1, 2):
        rps = statistics.median(r["rps"] for r in rows[threads])
        print(f"| --threads {threads} | {rps:,.0f} | {rps / base:.2f} | "
              f"{statistics.median(r['cpu_us'] for r in rows[threads]):.1f} | "
              f"{statistics.median(r['busiest'] for r in rows[threads]):.0%} |")


def idle_connections(port, n):
    """Opens n keep-alive connections, each with one answered request, and leaves them idle."""
    socks = []
    request = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
    for _ in range(n):
        s = socket.socket()
        s.setblocking(True)
        s.connect(("127.0.0.1", port))
        s.sendall(request)
        socks.append(s)
    for s in socks:
        s.settimeout(10)
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(65536)
    return socks


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/src/app/intermission")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--idle", type=int, default=9000)
    ap.add_argument("--threads", type=int, default=1, help="intermission page --threads")
    ap.add_argument("--no-scaling", action="store_true", help="skip the --threads 1 vs 2 part")
    ap.add_argument("--before", metavar="BIN",
                    help="another intermission binary, measured beside --bin as 'before' (to measure a change)")
    ap.add_argument("--floor-defer", action="store_true",
                    help="also the floor with TCP_DEFER_ACCEPT on its listener, as 'floor-defer'")
    ap.add_argument("--only", metavar="NAMES",
                    help="comma-separated servers to measure (nginx,haproxy,intermission,floor,before); "
                         "ratios need nginx, haproxy and floor")
    ap.add_argument("--scenarios", metavar="INDEXES",
                    help="comma-separated scenario numbers (0 keep-alive 50, 1 keep-alive 500, 2 close 50, 3 close 500)")
    ap.add_argument("--languages", action="store_true",
                    help="intermission with --page-dir (the same page as default, 4 translations) and "
                         f"every request with Accept-Language: {ACCEPT_LANGUAGE}")
    args = ap.parse_args()
    raise_nofile()
    work = tempfile.mkdtemp(prefix="intermission-bench-")
    os.chmod(work, 0o755)  # nginx's workers run as another user
    try:
        # The page: what intermission serves, so all three send the same bytes.
        port = free_port()
        p = subprocess.Popen([args.bin, "page", "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        wait_for_port(port)
        _, _, page = fetch(port)
        p.terminate()
        p.wait()
        with open(os.path.join(work, "page.html"), "wb") as f:
            f.write(page)
        page_args = []
        if args.languages:
            pages = os.path.join(work, "pages")
            os.mkdir(pages)
            for name in ["maintenance.html"] + [f"maintenance.{t}.html" for t in ["de", "fr", "pt-BR", "es"]]:
                with open(os.path.join(pages, name), "wb") as f:
                    f.write(page)
            page_args = ["--page-dir", pages]

        ports = {n: free_port() for n in ["nginx", "haproxy", "intermission", "floor", "before", "floor-defer",
                                          "one-page"]}
        # The floor's answer: the page with the headers every server here is checked for.
        with open(os.path.join(work, "floor-answer"), "wb") as f:
            f.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html; charset=utf-8\r\n"
                    b"Content-Length: %d\r\nRetry-After: 120\r\nCache-Control: no-store\r\n\r\n" % len(page) + page)
        floor_bin = build_floor(work)
        with open(os.path.join(work, "nginx.conf"), "w") as f:
            f.write(f"""worker_processes 1;
worker_rlimit_nofile 20000;
pid {work}/nginx.pid;
error_log {work}/nginx.err;
daemon off;
events {{ worker_connections 12000; }}
http {{
  access_log off;
  server_tokens off;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{ports['nginx']} backlog=4096;
    root {work};
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
        with open(os.path.join(work, "haproxy.cfg"), "w") as f:
            f.write(f"""global
  nbthread 1
  maxconn 9990
  ulimit-n 20000
defaults
  mode http
  timeout client 60s
  timeout http-keep-alive 60s
  maxconn 9990
frontend fe
  bind 127.0.0.1:{ports['haproxy']}
  http-request return status 503 content-type "text/html; charset=utf-8" file {work}/page.html hdr Retry-After 120 hdr Cache-Control no-store
""")
        servers = [
            Server("nginx", ["nginx", "-c", os.path.join(work, "nginx.conf")], ports["nginx"], work),
            Server("haproxy", [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f",
                               os.path.join(work, "haproxy.cfg")], ports["haproxy"], work),
            Server("intermission", [os.path.abspath(args.bin), "--log-level", "error", "page", "--listen",
                                    f"127.0.0.1:{ports['intermission']}", "--retry-after", "2m"] + page_args
                   + (["--threads", str(args.threads)] if args.threads > 1 else []),
                   ports["intermission"], work),
            Server("floor", [floor_bin, str(ports["floor"]), os.path.join(work, "floor-answer")], ports["floor"], work),
        ]
        if args.before:
            servers.append(Server("before", [os.path.abspath(args.before), "--log-level", "error", "page", "--listen",
                                             f"127.0.0.1:{ports['before']}", "--retry-after", "2m"] + page_args
                                  + (["--threads", str(args.threads)] if args.threads > 1 else []),
                                  ports["before"], work))
        if args.languages:
            # The same binary with its one default page, in the same run: what the languages
            # cost is the ratio between the two, not a comparison across runs.
            servers.append(Server("one-page", [os.path.abspath(args.bin), "--log-level", "error", "page",
                                               "--listen", f"127.0.0.1:{ports['one-page']}",
                                               "--retry-after", "2m"], ports["one-page"], work))
        if args.floor_defer:
            servers.append(Server("floor-defer", [floor_bin, str(ports["floor-defer"]), os.path.join(work, "floor-answer"),
                                                  "defer"], ports["floor-defer"], work))
        if args.only:
            wanted = args.only.split(",")
            servers = [srv for srv in servers if srv.name in wanted]
        names = [srv.name for srv in servers]
        scenarios = [("keep-alive, 50 conns", 50, False), ("keep-alive, 500 conns", 500, False),
                     ("Connection: close, 50 conns", 50, True), ("Connection: close, 500 conns", 500, True)]
        if args.scenarios:
            scenarios = [scenarios[int(i)] for i in args.scenarios.split(",")]
        results = {(s[0], srv.name): [] for s in scenarios for srv in servers}
        heads = {}
        for server in servers:
            server.start()
            try:
                check(server, page)
                heads[server.name] = answer_head(server.port)
            except OSError as e:
                raise SystemExit(f"{server.name}: {e}")
            server.stop()
        for rep in range(args.repetitions):
            k = rep % len(servers)
            order = servers[k:] + servers[:k]  # alternate who goes first
            for server in order:
                server.start()
                for name, conns, close in scenarios:
                    before = cpu_ticks(server.pids())
                    r = wrk(server.port, conns, args.seconds, close, args.languages)
                    after = cpu_ticks(server.pids())
                    r["cpu_us"] = (after - before) * 1e6 / HZ / max(r["requests"], 1)
                    results[(name, server.name)].append(r)
                server.stop()
        memory = {}
        for server in servers:
            server.start()
            base = rss_kb(server.pids())  # at start: started, listening, 0.3 s later
            socks = idle_connections(server.port, args.idle)
            time.sleep(1)
            memory[server.name] = (base, rss_kb(server.pids()))
            for s in socks:
                s.close()
            server.stop()

        def med(name, srv, key):
            return statistics.median(r[key] for r in results[(name, srv)])

        print(f"\n{os.cpu_count()} CPUs ({open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}), "
              f"{args.repetitions} repetitions x {args.seconds}s, servers on CPU 0, wrk on CPU 1; "
              f"page {len(page)} bytes; intermission threads: {args.threads}"
              + (f"; intermission with --page-dir (5 languages), Accept-Language: {ACCEPT_LANGUAGE}" if args.languages else "")
              + "\n")
        def ratio(value, name, against, key):
            return f"{value / med(name, against, key):.2f}" if against in names else "–"

        print("| scenario | server | req/s | p50 ms | p99 ms | CPU µs/req | req/s vs nginx | vs HAProxy | vs floor "
              "| CPU/req vs nginx | vs HAProxy | vs floor | errors |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name, _, _ in scenarios:
            for srv in names:
                rps, cpu = med(name, srv, "rps"), med(name, srv, "cpu_us")
                errs = sum(r["socket_errors"] for r in results[(name, srv)])
                print(f"| {name} | {srv} | {rps:,.0f} | {med(name, srv, 'p50'):.2f} | {med(name, srv, 'p99'):.2f} | "
                      f"{cpu:.1f} | {ratio(rps, name, 'nginx', 'rps')} | {ratio(rps, name, 'haproxy', 'rps')} | "
                      f"{ratio(rps, name, 'floor', 'rps')} | {ratio(cpu, name, 'nginx', 'cpu_us')} | "
                      f"{ratio(cpu, name, 'haproxy', 'cpu_us')} | {ratio(cpu, name, 'floor', 'cpu_us')} | {errs} |")
        if "one-page" in names and "intermission" in names:
            print("\nPages in 5 languages against one page, same binary, same run (intermission / one-page):\n")
            print("| scenario | req/s | CPU µs/req |")
            print("|---|---|---|")
            for name, _, _ in scenarios:
                print(f"| {name} | {med(name, 'intermission', 'rps') / med(name, 'one-page', 'rps'):.2f} | "
                      f"{med(name, 'intermission', 'cpu_us') / med(name, 'one-page', 'cpu_us'):.2f} |")
        print(f"\n| server | answer headers, bytes | RSS at start MiB | with {args.idle} idle keep-alive connections MiB "
              "| start vs floor | with them vs nginx | vs HAProxy |")
        print("|---|---|---|---|---|---|---|")
        for srv in names:
            base, peak = memory[srv]
            vs = lambda other, i: f"{memory[srv][i] / memory[other][i]:.2f}" if other in memory else "–"
            print(f"| {srv} | {len(heads[srv])} | {base / 1024:.1f} | {peak / 1024:.1f} | {vs('floor', 0)} | "
                  f"{vs('nginx', 1)} | {vs('haproxy', 1)} |")
        for srv in names:
            print(f"\n{srv}'s answer headers:\n```\n{heads[srv].decode().strip()}\n```")
        if not args.no_scaling:
            scaling(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
