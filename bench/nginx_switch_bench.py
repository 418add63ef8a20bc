#!/usr/bin/python3
"""How to switch nginx into maintenance, measured: the state file intermission uses (nginx
tests `if (-f FILE)` per request; the switch is `intermission on|off`) against a graceful
reload (write an include, `nginx -t`, `nginx -s reload`), the same nginx config otherwise
(the lines `intermission nginx-config` prints in file mode), under the same wrk load.

For each approach, N switches (on, off, on, ...) spaced `--gap` seconds apart, while
- wrk (keep-alive, `--connections`, pinned to CPU 1; nginx on CPU 0) loads nginx;
- 2 classifying keep-alive clients (tests/stack.py Traffic) count failed requests and
  connections closed under them (a GET is retried once on a new connection, as browsers do);
- `--idle` idle keep-alive connections, opened before each switch and used once after it,
  count how many nginx closed meanwhile (a browser's next request on such a connection fails
  if it is not idempotent);
- a poller measures the switch latency: from the start of the switch command until a new
  connection gets the new state (and a kept connection too);
- /proc is sampled every 10 ms: nginx's processes and their PSS (forked workers share
  pages, so RSS would count them twice), and nginx's CPU (master, its reaped children,
  live workers), plus the CPU of the switch commands themselves.

Loopback only; bounded (N switches, wrk for a fixed time). Needs nginx (nginx-light) and wrk
from Debian, and a built intermission. Prints a Markdown table for bench/RESULTS.md."""

import argparse
import http.client
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from stack import (APP_MARKER, Traffic, free_ports, nginx_conf, nginx_intermission_config,  # noqa: E402
                   wait_for_port)

HZ = os.sysconf("SC_CLK_TCK")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def proc_stat(pid):
    """(utime+stime, cutime+cstime) in ticks; zeros when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])
    except OSError:
        return 0, 0


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sampler(threading.Thread):
    """nginx's processes, PSS and CPU every 10 ms (until stopped)."""

    def __init__(self, master):
        super().__init__(daemon=True)
        self.master = master
        self.samples = []  # (t, processes, pss_kb, cpu_ticks)
        self.stop_event = threading.Event()

    def cpu(self):
        own, reaped = proc_stat(self.master)
        return own + reaped + sum(proc_stat(c)[0] for c in children_of(self.master))

    def run(self):
        while not self.stop_event.is_set():
            kids = children_of(self.master)
            pss = pss_kb(self.master) + sum(pss_kb(c) for c in kids)
            self.samples.append((time.monotonic(), 1 + len(kids), pss, self.cpu()))
            time.sleep(0.01)


def get_state(port, conn=None):
    """'on' (503), 'off' (200) or an error string; with `conn`, on that kept connection."""
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", "/", headers={} if not own else {"Connection": "close"})
        r = c.getresponse()
        body = r.read()
        return {503: "on", 200: "off"}.get(r.status, f"status {r.status} {body[:40]!r}")
    finally:
        if own:
            c.close()


class Bench:
    def __init__(self, args, workdir):
        self.args, self.dir = args, workdir
        self.port, self.app_port = free_ports(2)
        self.state_file = os.path.join(workdir, "state", "prod.on")
        self.page_dir = os.path.join(workdir, "page")
        self.switch_file = os.path.join(workdir, "switch.conf")
        for d in ("state", "page", "tmp"):
            os.makedirs(os.path.join(workdir, d), mode=0o755, exist_ok=True)
        os.chmod(workdir, 0o755)
        self.config = os.path.join(workdir, "intermission.yaml")
        with open(self.config, "w") as f:
            f.write(nginx_intermission_config(self.state_file, self.port,
                                              f"      page_dir: {self.page_dir}\n"))

    def cli(self, *args):
        p = subprocess.run([self.args.bin, "--config", self.config, *args], cwd=self.dir,
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise SystemExit(f"intermission {' '.join(args)} failed:\n{p.stderr}")
        return p.stdout

    def write_conf(self, mode):
        http_part = self.cli("nginx-config", "prod", "--no-secret", "--part", "http")
        server_part = self.cli("nginx-config", "prod", "--no-secret", "--part", "server")
        if mode == "reload":
            # The same lines, but the decision comes from an include a reload reads.
            decision = re.compile(r"    if \(-f [^)]*\) \{\n        set (\$\w+) 1;\n    \}\n")
            m = decision.search(server_part)
            assert m, server_part
            server_part = decision.sub(f"    include {self.switch_file};\n", server_part, count=1)
            self.switch_var = m.group(1)
            self.write_switch(False)
        conf = os.path.join(self.dir, "nginx.conf")
        # The application: a second server block, so the load is nginx's alone.
        app = f"""\
    server {{
        listen 127.0.0.1:{self.app_port};
        location / {{ default_type text/plain; return 200 "{APP_MARKER} app\\n"; }}
    }}
"""
        with open(conf, "w") as f:
            f.write(nginx_conf(self.dir, self.port, [self.app_port], http_part, server_part,
                               workers=self.args.workers, connections=4096, more_http=app))
        self.conf = conf

    def write_switch(self, on):
        tmp = self.switch_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"set {self.switch_var} {1 if on else 0};\n")
        os.rename(tmp, self.switch_file)

    def switch(self, mode, on):
        """Runs one switch; returns the CPU seconds of the commands it ran."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        if mode == "state-file":
            self.cli("on" if on else "off", "prod", *(["--reason", "bench"] if on else []))
        elif mode == "rename":  # the mechanism alone, as the backend does it
            if on:
                with open(self.state_file + ".tmp", "w") as f:
                    f.write("{}\n")
                    f.flush()
                    os.fsync(f.fileno())
                os.rename(self.state_file + ".tmp", self.state_file)
            else:
                os.unlink(self.state_file)
        else:
            self.write_switch(on)
            t = subprocess.run([NGINX, "-t", "-q", "-c", self.conf], capture_output=True, text=True)
            if t.returncode != 0:
                raise SystemExit(f"nginx -t failed: {t.stderr}")
            subprocess.run([NGINX, "-s", "reload", "-c", self.conf], check=True,
                           capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    def run(self, mode):
        a = self.args
        if os.path.exists(self.state_file):
            os.unlink(self.state_file)
        self.write_conf(mode)
        t = subprocess.run([NGINX, "-t", "-q", "-c", self.conf], capture_output=True, text=True)
        if t.returncode != 0:
            raise SystemExit(t.stderr)
        nginx = subprocess.Popen(["taskset", "-c", "0", NGINX, "-c", self.conf, "-g", "daemon off;"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port)
        self.cli("on", "prod", "--reason", "warm-up")  # writes the page files (both modes)
        self.cli("off", "prod")
        assert get_state(self.port) == "off"
        sampler = Sampler(nginx.pid)
        sampler.start()
        time.sleep(0.5)
        base = sampler.samples[-1]
        seconds = int(a.switches * a.gap + 3)
        wrk = subprocess.Popen(["taskset", "-c", "1", "wrk", "-t1", f"-c{a.connections}",
                                f"-d{seconds}s", "--latency", f"http://127.0.0.1:{self.port}/"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        traffic = Traffic(self.port, clients=2, pause=0.005)
        traffic.start()
        kept = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        kept_reconnects = 0
        time.sleep(1.0)
        result = {"new": [], "kept": [], "command": [], "cmd_cpu": [], "idle_closed": 0,
                  "idle_total": 0}
        on = False
        for _ in range(a.switches):
            on = not on
            want = "on" if on else "off"
            idle = []
            for _ in range(a.idle):
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                get_state(self.port, c)  # a browser's connection, now idle
                idle.append(c)
            t0 = time.monotonic()
            result["cmd_cpu"].append(self.switch(mode, on))
            result["command"].append(time.monotonic() - t0)
            # A new connection: when does nginx answer the new state?
            while get_state(self.port) != want:
                if time.monotonic() - t0 > 10:
                    raise SystemExit(f"{mode}: nginx did not switch {want} in 10 s")
            result["new"].append(time.monotonic() - t0)
            # A kept connection (a browser's): when does it see the new state?
            while True:
                try:
                    state = get_state(self.port, kept)
                except (OSError, http.client.HTTPException):
                    kept.close()
                    kept = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                    kept_reconnects += 1
                    continue
                if state == want:
                    break
            result["kept"].append(time.monotonic() - t0)
            # The idle connections: how many did nginx close meanwhile?
            for c in idle:
                result["idle_total"] += 1
                try:
                    get_state(self.port, c)
                except (OSError, http.client.HTTPException):
                    result["idle_closed"] += 1
                c.close()
            time.sleep(max(0.0, a.gap - (time.monotonic() - t0)))
        traffic.stop()
        out, _ = wrk.communicate(timeout=seconds + 30)
        time.sleep(0.3)
        sampler.stop_event.set()
        sampler.join()
        nginx.terminate()
        nginx.wait(timeout=15)
        kinds = traffic.kinds()
        if not re.search(r"Requests/sec", out):
            print(f"wrk said:\n{out}", file=sys.stderr)
        errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        reqs = re.search(r"Requests/sec:\s+([\d.]+)", out)
        total = re.search(r"(\d+) requests in", out)
        run = [s for s in sampler.samples if s[0] >= base[0]]
        result.update({
            "wrk_errors": sum(int(x) for x in errors.groups()) if errors else 0,
            "wrk_error_detail": errors.group(0) if errors else "none",
            "wrk_rps": float(reqs.group(1)) if reqs else 0.0,
            "wrk_requests": int(total.group(1)) if total else 0,
            "traffic_failed": kinds["error"] + kinds["other"],
            "traffic_requests": sum(kinds.values()),
            "stale_retries": traffic.stale_retries,
            "kept_reconnects": kept_reconnects,
            "base_procs": base[1], "peak_procs": max(s[1] for s in run),
            "base_pss": base[2], "peak_pss": max(s[2] for s in run),
            "nginx_cpu": (run[-1][3] - base[3]) / HZ,
            "wall": run[-1][0] - base[0],
        })
        return result


def ms(values):
    return f"{statistics.median(values) * 1000:.2f} (max {max(values) * 1000:.2f})"


def table(results, args):
    rows = [
        ("switch command, wall ms: median (max)", lambda r: ms(r["command"])),
        ("until a new connection gets the new state, ms", lambda r: ms(r["new"])),
        ("until a kept keep-alive connection gets it, ms", lambda r: ms(r["kept"])),
        ("kept connection closed by nginx (reconnects)", lambda r: str(r["kept_reconnects"])),
        ("failed requests (2 classifying clients)", lambda r: f"{r['traffic_failed']} of {r['traffic_requests']}"),
        ("connections closed under an active client (GET retried)", lambda r: str(r["stale_retries"])),
        ("idle keep-alive connections closed by the switch", lambda r: f"{r['idle_closed']} of {r['idle_total']}"),
        ("wrk socket errors", lambda r: r["wrk_error_detail"].replace("Socket errors: ", "")),
        ("wrk requests/s (whole run)", lambda r: f"{r['wrk_rps']:,.0f}"),
        ("switch commands' CPU per switch, ms", lambda r: f"{statistics.mean(r['cmd_cpu']) * 1000:.1f}"),
        ("nginx CPU over the run, s", lambda r: f"{r['nginx_cpu']:.2f} in {r['wall']:.1f} s"),
        ("nginx CPU per request (wrk's), µs",
         lambda r: f"{r['nginx_cpu'] / max(1, r['wrk_requests']) * 1e6:.1f}"),
        ("nginx processes: idle / peak", lambda r: f"{r['base_procs']} / {r['peak_procs']}"),
        ("nginx PSS MiB: before / peak", lambda r: f"{r['base_pss'] / 1024:.1f} / {r['peak_pss'] / 1024:.1f}"),
    ]
    out = [f"{args.switches} switches, {args.gap:.1f} s apart; wrk -t1 -c{args.connections} "
           f"(CPU 1), nginx {args.workers} workers (CPU 0), {args.idle} idle keep-alive "
           f"connections per switch", "",
           "| | state file: `intermission on/off` | state file: rename/unlink only | reload: "
           "`nginx -t` + `nginx -s reload` |",
           "|---|---|---|---|"]
    for name, f in rows:
        out.append(f"| {name} | {f(results['state-file'])} | {f(results['rename'])} | "
                   f"{f(results['reload'])} |")
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default="build/src/app/intermission")
    p.add_argument("--switches", type=int, default=20)
    p.add_argument("--gap", type=float, default=1.0, help="seconds between switches")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--idle", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", help="also write the raw results here")
    args = p.parse_args()
    args.bin = os.path.abspath(args.bin)
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (apt-get install wrk util-linux)")
    results = {}
    with tempfile.TemporaryDirectory(prefix="intermission-nginx-bench-") as d:
        os.chmod(d, 0o755)  # nginx's workers run as another user when we are root
        for mode in ("state-file", "rename", "reload"):
            workdir = os.path.join(d, mode)
            os.makedirs(workdir)
            results[mode] = Bench(args, workdir).run(mode)
    print(table(results, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
