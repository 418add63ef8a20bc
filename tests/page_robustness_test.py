"""`intermission page` against bad clients, on loopback: slow-header (slowloris) and
never-reading clients are cut off by the idle and write timeouts, the connection limit holds,
and through all of it a well-behaved client keeps getting fast answers."""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import wait_until  # noqa: E402
from stack import BIN, free_port, read_to_eof, wait_for_port  # noqa: E402


def ask(port, timeout=10.0):
    """One well-behaved request; returns (status, seconds)."""
    start = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = read_to_eof(s)
    return int(data.split(b" ", 2)[1]), time.monotonic() - start


def server_end(server_port, client):
    """The server's end of `client`'s connection from /proc/net/tcp: (state, bytes it has sent
    that `client` has not taken, bytes `client` sent that it has not read); None when not
    listed. States: "01" established, "03" SYN_RECV (TCP_DEFER_ACCEPT holds a connection there
    until its first bytes arrive; its queues read 0)."""
    client_port = client.getsockname()[1]
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
                tx, rx = (int(q, 16) for q in fields[4].split(":"))
                return fields[3], tx, rx
    return None


def unread_by_server(server_port, client):
    """Bytes `client` sent that the server has not read yet; None while the connection is not
    established (or not listed)."""
    end = server_end(server_port, client)
    return end[2] if end and end[0] == "01" else None


def wait_read_by_server(server_port, clients, timeout=20.0):
    """Waits until the server has accepted each of `clients` and read what it sent."""
    deadline = time.monotonic() + timeout
    for c in clients:
        while unread_by_server(server_port, c) != 0:
            if time.monotonic() > deadline:
                raise AssertionError("the server did not read what a client sent")
            time.sleep(0.01)


def wait_refused(port, timeout=20.0):
    """Waits until connecting to `port` is refused (the server has closed its listener)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return
        time.sleep(0.01)
    raise AssertionError("the listener is still open")


class PageRobustness(unittest.TestCase):
    def setUp(self):
        self.port = free_port()
        self.proc = subprocess.Popen([BIN, "--log-level", "error", "page", "--listen", f"127.0.0.1:{self.port}",
                                      "--idle-timeout", "4s", "--write-timeout", "5s",
                                      "--max-connections", "50"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def tearDown(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def test_slowloris_is_cut_off_and_others_are_served(self):
        slow = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", self.port))
            s.sendall(b"GET / HTTP/1.1\r\n")
            slow.append(s)
        deadline = time.monotonic() + 6
        status, seconds = ask(self.port)
        self.assertEqual(status, 503)
        self.assertLess(seconds, 3, "a normal client is not held up until the idle timeout (4 s)")
        # Headers a byte at a time, slower than the idle timeout allows for the whole request.
        closed = 0
        for s in slow:
            s.settimeout(0.05)
            try:
                for ch in b"X-Slow: 1\r\n":
                    s.send(bytes([ch]))
                    time.sleep(0.02)
            except OSError:
                pass
        for s in slow:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                if s.recv(1) == b"":
                    closed += 1
            except ConnectionResetError:
                closed += 1  # closed with bytes of ours unread: the kernel resets instead
            except socket.timeout:
                pass
            s.close()
        self.assertEqual(closed, 20, "every slow client was closed by the idle timeout")

    def test_never_reading_client_is_cut_off_by_the_write_timeout(self):
        s = socket.create_connection(("127.0.0.1", self.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # Many pipelined requests whose answers it never reads: the server's sends block.
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2000)
        self.assertTrue(wait_until(lambda: (server_end(self.port, s) or ("", 0, 0))[1] > 0),
                        "the server's answers wait in its send queue")
        # While its sends to that client are stuck, others are served.
        status, seconds = ask(self.port)
        self.assertEqual(status, 503)
        self.assertLess(seconds, 4, "not held up until the write timeout (5 s)")
        # The write timeout ends the stuck connection (only then is it read: reading would
        # unblock the server's sends).
        self.assertTrue(wait_until(lambda: (server_end(self.port, s) or ("",))[0] != "01"),
                        "the server gave the connection up")
        s.settimeout(5)
        total = 0
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                total += len(chunk)
        except ConnectionResetError:
            pass
        s.close()
        self.assertLess(total, 2000 * 2000, "the server gave up before answering everything")

    def test_connection_limit(self):
        held = [socket.create_connection(("127.0.0.1", self.port)) for _ in range(50)]
        # Each starts a request: the listener defers accept (TCP_DEFER_ACCEPT) until a
        # connection has sent something, so silent ones are not the server's yet.
        for s in held:
            s.sendall(b"G")
        wait_read_by_server(self.port, held)
        extra = socket.create_connection(("127.0.0.1", self.port))
        extra.settimeout(2)
        extra.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            self.assertEqual(extra.recv(100), b"", "over the limit: closed without an answer")
        except ConnectionResetError:
            pass
        extra.close()
        for s in held:
            s.close()

        def served():
            try:
                return ask(self.port)[0] == 503
            except (OSError, ValueError, IndexError):  # closed unanswered: not free yet
                return False
        self.assertTrue(wait_until(served), "served again once connections are free")


class PageSignals(unittest.TestCase):
    """SIGHUP re-reads the page without dropping connections; SIGTERM lets a request in
    progress finish, then exits 0."""
    THREADS = 1

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="intermission-page-signals-")
        self.page = os.path.join(self.dir, "page.html")
        with open(self.page, "w") as f:
            f.write("<p>first version</p>")
        self.port = free_port()
        self.proc = subprocess.Popen([BIN, "--log-level", "error", "page", "--listen", f"127.0.0.1:{self.port}",
                                      "--page", self.page, "--threads", str(self.THREADS)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def tearDown(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_sighup_reloads_the_page_on_open_connections(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.request("GET", "/")
        self.assertIn(b"first version", conn.getresponse().read())
        with open(self.page, "w") as f:
            f.write("<p>second version</p>")
        self.proc.send_signal(signal.SIGHUP)
        answers = []

        def reloaded():  # asked again and again on the same keep-alive connection
            conn.request("GET", "/")
            answers.append(conn.getresponse().read())
            return b"second version" in answers[-1]
        self.assertTrue(wait_until(reloaded), answers[-3:])
        self.assertTrue(all(b"first version" in a for a in answers[:-1]), "nothing else meanwhile")
        conn.close()

    def test_sigterm_finishes_a_request_in_progress(self):
        s = socket.create_connection(("127.0.0.1", self.port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # half a request
        wait_read_by_server(self.port, [s])  # in progress: accepted and partly read
        self.proc.send_signal(signal.SIGTERM)
        wait_refused(self.port)  # SIGTERM taken: the listener is closed
        s.sendall(b"\r\n")  # the rest arrives after SIGTERM
        s.settimeout(5)
        data = read_to_eof(s)
        self.assertTrue(data.startswith(b"HTTP/1.1 503"), data[:80])
        self.assertIn(b"Connection: close", data)
        self.assertEqual(self.proc.wait(timeout=10), 0)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", self.port), timeout=1)


class PageSignalsThreads(PageSignals):
    """The same with four threads (SO_REUSEPORT listeners): every thread's connections are
    reloaded and drained, and idle keep-alive connections on any thread are closed at once."""
    THREADS = 4

    def test_sigterm_closes_idle_connections_on_every_thread(self):
        idle = []
        for _ in range(16):  # spread over the threads by the kernel
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            conn.request("GET", "/")
            conn.getresponse().read()
            idle.append(conn)
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(timeout=10), 0)
        self.assertLess(time.monotonic() - start, 5, "idle connections do not hold the drain")
        for conn in idle:
            self.assertEqual(conn.sock.recv(1), b"", "closed by the server")
            conn.close()

if __name__ == "__main__":
    unittest.main()
