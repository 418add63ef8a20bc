"""`intermission page` on a socket against the request shapes of tests/http_probe.py (RFC
9112/9110 Host, Transfer-Encoding, version and target rules, Accept negotiation): each gets
the statuses expected, the connection is closed exactly when it should be, and nothing hangs.
bench/conformance.py sends the same requests to nginx and HAProxy."""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from http_probe import CASES, TYPES, probe, timed_probe  # noqa: E402
from stack import BIN, free_port, wait_for_port  # noqa: E402


class PageConformance(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.proc = subprocess.Popen([BIN, "--log-level", "error", "page", "--listen", f"127.0.0.1:{cls.port}",
                                     "--idle-timeout", "30s"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(cls.port)

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(timeout=10)

    def test_every_case(self):
        for case in CASES:
            with self.subTest(case.name):
                # A second of quiet means "left open" (a loaded machine may pause between an
                # answer and its close); the idle timeout, 30 s, is far from both.
                p, seconds = timed_probe(self.port, case.raw, quiet_after=1.0)
                self.assertFalse(p.hang, "a hang")
                self.assertEqual(p.statuses, case.statuses)
                self.assertEqual(p.closed, case.closes, "closed" if p.closed else "left open")
                if case.closes:
                    self.assertLess(seconds, 5, "closed at once, not by the idle timeout")
                if case.name in TYPES:
                    self.assertEqual(p.content_type, TYPES[case.name])

    def test_http09_is_answered_at_once(self):
        p, seconds = timed_probe(self.port, b"GET /\r\n", hang_after=10)
        self.assertEqual(p.statuses, [400])
        self.assertTrue(p.closed)
        self.assertLess(seconds, 5, "not left to the idle timeout (30 s)")

    def test_smuggled_request_after_a_bad_transfer_encoding_is_never_answered(self):
        raw = (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n"
               b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(probe(self.port, raw).statuses, [400])

    def test_the_server_still_serves_after_all_of_them(self):
        self.assertEqual(probe(self.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").statuses, [503])


if __name__ == "__main__":
    unittest.main()
