"""The default maintenance page as a browser shows it: headless Chromium (Debian) takes
screenshots at desktop and phone widths, kept in the build tree for people to look at, and the
pixels are checked: a card on a background, text inside it, and on a phone the card fills the
width without overflowing. Then what other clients get: the DOM Chromium builds shows the
reason and the expected end, curl gets the JSON variant, and Retry-After names that end."""

import datetime
import email.utils
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import CHROMIUM, SCREENSHOTS as OUT, read_png  # noqa: E402
from stack import BIN, free_port, wait_for_port  # noqa: E402


class PageScreenshots(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.server = subprocess.Popen(
            [BIN, "page", "--listen", f"127.0.0.1:{cls.port}", "--reason",
             "We are upgrading the database to make checkout faster.",
             "--until", "2099-01-01T18:30:00Z"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(cls.port)
        os.makedirs(OUT, exist_ok=True)

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        cls.server.wait(timeout=10)

    def shoot(self, name, width, height):
        path = os.path.join(OUT, f"page-{name}.png")
        if os.path.exists(path):
            os.remove(path)
        with tempfile.TemporaryDirectory(prefix="intermission-chromium-") as profile:
            p = subprocess.run(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                 f"--user-data-dir={profile}", f"--window-size={width},{height}",
                 f"--screenshot={path}", f"http://127.0.0.1:{self.port}/"],
                capture_output=True, text=True, timeout=120)
        self.assertTrue(os.path.exists(path), p.stderr[-2000:])
        return read_png(path)

    def check_layout(self, width, height, rows, phone):
        bg = rows[2][2]
        self.assertGreater(sum(bg) / 3, 200, f"light background expected, got {bg}")
        # The card: white pixels across the middle row, with background on both sides.
        mid = rows[height // 2]
        white = [x for x, px in enumerate(mid) if min(px) >= 250]
        self.assertTrue(white, "no card in the middle row")
        left, right = white[0], white[-1]
        self.assertNotEqual(mid[0], (255, 255, 255), "background at the left edge")
        self.assertNotEqual(mid[-1], (255, 255, 255), "background at the right edge")
        card = right - left
        if phone:
            self.assertGreater(card, width * 0.8, "on a phone the card uses the width")
            self.assertLessEqual(right, width - 10, "and does not overflow")
        else:
            self.assertLess(card, 620, "on a desktop the card keeps a readable width")
            self.assertLess(abs((left + right) / 2 - width / 2), 10, "and is centred")
        # Text: dark pixels inside the card.
        dark = sum(1 for row in rows for px in row[left:right] if max(px) < 90)
        self.assertGreater(dark, 500, "the page shows text")
        # The accent mark (orange) is drawn.
        orange = sum(1 for row in rows for px in row if px[0] > 180 and 90 < px[1] < 170 and px[2] < 90)
        self.assertGreater(orange, 20, "the accent mark is visible")

    def test_desktop(self):
        w, h, rows = self.shoot("desktop", 1280, 800)
        self.assertEqual((w, h), (1280, 800))
        self.check_layout(w, h, rows, phone=False)

    def test_phone(self):
        w, h, rows = self.shoot("phone", 390, 844)
        self.assertEqual((w, h), (390, 844))
        self.check_layout(w, h, rows, phone=True)


class PageForClients(unittest.TestCase):
    REASON = "Moving to a bigger database <today>"

    @classmethod
    def setUpClass(cls):
        cls.until = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2)) \
            .replace(second=0, microsecond=0)
        cls.port = free_port()
        cls.server = subprocess.Popen(
            [BIN, "page", "--listen", f"127.0.0.1:{cls.port}", "--reason", cls.REASON,
             "--until", cls.until.strftime("%Y-%m-%dT%H:%M:%SZ")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(cls.port)

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        cls.server.wait(timeout=10)

    def curl(self, *args):
        p = subprocess.run(["curl", "-sS", "-i", *args, f"http://127.0.0.1:{self.port}/orders/42"],
                           capture_output=True, timeout=30)  # bytes: keep the CRLFs
        self.assertEqual(p.returncode, 0, p.stderr)
        head, _, body = p.stdout.decode().partition("\r\n\r\n")
        lines = head.split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        return int(lines[0].split()[1]), headers, body

    def test_browser_dom_shows_the_reason_and_the_expected_end(self):
        with tempfile.TemporaryDirectory(prefix="intermission-chromium-") as profile:
            p = subprocess.run(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 f"--user-data-dir={profile}", "--dump-dom", f"http://127.0.0.1:{self.port}/"],
                capture_output=True, text=True, timeout=120)
        dom = p.stdout
        self.assertIn("Moving to a bigger database &lt;today&gt;", dom, p.stderr[-2000:])
        self.assertIn(f"We expect to be back by {self.until.strftime('%H:%M')} UTC.", dom)

    def test_json_variant_with_curl_and_retry_after_matching_the_end(self):
        status, headers, body = self.curl("-H", "Accept: application/json")
        self.assertEqual(status, 503)
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(headers["cache-control"], "no-store")
        doc = json.loads(body)
        self.assertEqual(doc["status"], "maintenance")
        self.assertEqual(doc["message"], self.REASON)
        self.assertEqual(doc["until"], self.until.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
        left = (self.until - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        self.assertLessEqual(abs(doc["retry_after"] - left), 5)
        self.assertEqual(email.utils.parsedate_to_datetime(headers["retry-after"]), self.until,
                         "Retry-After is the expected end")
        status, html_headers, html = self.curl()
        self.assertEqual(status, 503)
        self.assertTrue(html_headers["content-type"].startswith("text/html"))
        self.assertEqual(html_headers["retry-after"], headers["retry-after"])
        self.assertIn("<!doctype html>", html)
        status, head_headers, head_body = self.curl("--head")
        self.assertEqual(status, 503)
        self.assertEqual(head_body, "", "HEAD has no body")
        self.assertEqual(head_headers["content-length"], html_headers["content-length"])


if __name__ == "__main__":
    unittest.main()
