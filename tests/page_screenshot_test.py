"""The default maintenance page as a browser shows it: headless Chromium (Debian) takes
screenshots at desktop and phone widths, kept in the build tree for people to look at, and the
pixels are checked: a card on a background, text inside it, and on a phone the card fills the
width without overflowing."""

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(__file__))
from stack import BIN, free_port, wait_for_port  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUT = os.environ.get("INTERMISSION_SCREENSHOTS", os.path.join(os.getcwd(), "screenshots"))


def read_png(path):
    """Decodes an 8-bit, non-interlaced RGB or RGBA PNG into (width, height, rows of RGB)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append([tuple(line[x * channels:x * channels + 3]) for x in range(width)])
        prev = line
    return width, height, rows


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


if __name__ == "__main__":
    unittest.main()
