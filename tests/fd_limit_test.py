"""Running out of file descriptors, on loopback: the page server (two threads) and the daemon
(`intermission serve`) run with a low open-files limit (set with setrlimit before exec, as
`prlimit` would) and get more connections than the limit allows. Neither may spin (its CPU
time over a second of idle stays low, read from /proc/PID/stat), each keeps its connections
below the limit with one cap across its threads, refuses the rest at once instead of leaving
them queued, and answers again once the connections close."""

import os
import resource
import select
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from stack import BIN, free_ports, read_to_eof, wait_for_port  # noqa: E402

FD_LIMIT = 256
FLOOD = 2 * FD_LIMIT
HZ = os.sysconf("SC_CLK_TCK")


def low_fd_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def cpu_seconds(pid):
    """User + system CPU time of a process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def flood(port, n):
    """n connections that send nothing (the kernel completes them whether or not the server
    accepts them)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        socks.append(s)
    return socks


def count_closed(socks):
    """How many of the connections the server has closed (readable, with nothing to read)."""
    closed = 0
    for i in range(0, len(socks), 200):  # select() takes descriptors below 1024 only
        readable, _, _ = select.select(socks[i:i + 200], [], [], 0)
        for s in readable:
            try:
                if s.recv(1, socket.MSG_PEEK) == b"":
                    closed += 1
            except OSError:
                closed += 1
    return closed


def status_of(port, path="/", timeout=3.0):
    """The status of one request on a fresh connection, or None when there is no answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
            data = read_to_eof(s)
    except OSError:
        return None
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None


class FdLimit(unittest.TestCase):
    """Shared checks; subclasses start the server under test."""

    @classmethod
    def setUpClass(cls):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < FLOOD + 256:  # this process holds the flood's client ends
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, FLOOD + 512), hard))

    def start(self, argv, ports, **kwargs):
        self.proc = subprocess.Popen(argv, preexec_fn=low_fd_limit, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, **kwargs)
        for port in ports:
            try:
                wait_for_port(port)
            except RuntimeError:
                self.proc.kill()
                raise AssertionError(f"did not start: {self.proc.communicate()[1][-2000:]}")
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc.stderr.close()

    def flood_and_check(self, port, cap_at_most):
        """Opens FLOOD connections to `port`; returns how many the server holds open."""
        self.socks = flood(port, FLOOD)
        time.sleep(1.0)  # accepted or refused by now
        before = cpu_seconds(self.proc.pid)
        time.sleep(1.0)
        spent = cpu_seconds(self.proc.pid) - before
        self.assertLess(spent, 0.2, f"{spent:.2f} s of CPU in a second of idle: accept() spins")
        held = FLOOD - count_closed(self.socks)
        self.assertGreater(held, 0)
        self.assertLessEqual(held, cap_at_most, "the connection cap holds, below the fd limit")
        return held

    def release(self):
        for s in self.socks:
            s.close()
        self.socks = []
        time.sleep(0.5)


class PageServerFdLimit(FdLimit):
    def test_more_connections_than_descriptors(self):
        (port,) = free_ports(1)
        self.start([BIN, "--log-level", "error", "page", "--listen", f"127.0.0.1:{port}",
                    "--threads", "2", "--idle-timeout", "60s"], [port])
        self.flood_and_check(port, FD_LIMIT - 16)
        self.assertIsNone(self.proc.poll())
        # Over the cap a connection is closed at once, not left in the queue without answer.
        start = time.monotonic()
        self.assertIsNone(status_of(port, timeout=5))
        self.assertLess(time.monotonic() - start, 4, "not left waiting for the 5-s timeout")
        self.release()
        for _ in range(20):  # spread over both threads' listeners by the kernel
            self.assertEqual(status_of(port), 503)

    def test_the_cap_is_shared_by_the_threads(self):
        (port,) = free_ports(1)
        self.start([BIN, "--log-level", "error", "page", "--listen", f"127.0.0.1:{port}",
                    "--threads", "2", "--max-connections", "40", "--idle-timeout", "60s"], [port])
        self.assertEqual(self.flood_and_check(port, 40), 40)
        self.release()
        self.assertEqual(status_of(port), 503)

    def test_a_cap_above_the_limit_is_lowered_to_fit(self):
        (port,) = free_ports(1)
        self.start([BIN, "--log-level", "warn", "page", "--listen", f"127.0.0.1:{port}",
                    "--threads", "2", "--max-connections", "100000", "--idle-timeout", "60s"], [port])
        self.flood_and_check(port, FD_LIMIT - 16)
        self.release()
        self.assertEqual(status_of(port), 503)
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.assertIn("--max-connections lowered to fit the open-files limit", self.proc.stderr.read())


class DaemonFdLimit(FdLimit):
    def test_more_connections_than_descriptors(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-fd-limit-")
        self.addCleanup(self._tmp.cleanup)
        public, admin = free_ports(2)
        config = os.path.join(self._tmp.name, "config.yaml")
        with open(config, "w") as f:
            f.write(f"""store: {{path: state.db}}
serve:
  listen: 127.0.0.1:{public}
  admin_listen: 127.0.0.1:{admin}
  tick_interval: 1s
environments:
  prod:
    backend: {{type: log, path: steps.log}}
""")
        self.start([BIN, "--config", config, "serve"], [public, admin], cwd=self._tmp.name)
        self.assertEqual(status_of(admin, "/healthz"), 200)
        # Each listener has its own share: a flood on the public one leaves the admin one (and
        # the store, the backend) descriptors to work with.
        self.flood_and_check(public, FD_LIMIT // 2)
        self.assertEqual(status_of(admin, "/healthz"), 200, "the admin listener still answers")
        start = time.monotonic()
        self.assertIsNone(status_of(public, timeout=5), "over the cap: closed at once")
        self.assertLess(time.monotonic() - start, 4, "not left waiting for the 5-s timeout")
        self.release()
        self.assertIsNotNone(status_of(public, "/healthz"), "the public listener answers again")
        self.assertIsNone(self.proc.poll())


if __name__ == "__main__":
    unittest.main()
