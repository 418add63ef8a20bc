"""`intermission page --page-dir` on loopback: the page and the JSON message in the language
the client's Accept-Language asks for (the default on no match or no header), with
Content-Language and Vary; a bad file name is refused at start naming the file; SIGHUP reads
the folder again."""

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
from stack import BIN, free_port, read_to_eof, wait_for_port  # noqa: E402


def get(port, headers=""):
    """One request; returns (status, {header: value}, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"GET /shop HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n".encode())
    data = read_to_eof(s)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ")[1]), fields, body.decode()


class PageLanguages(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="intermission-lang-")
        self.write("maintenance.html", "<html lang=en><p>{{reason}}</p></html>")
        self.write("maintenance.de.html", "<html lang=de><p>{{reason}}</p></html>")
        self.write("maintenance.pt-BR.html", "<html lang=pt-BR><p>{{reason}}</p></html>")
        self.write("message.de.txt", "Wir sind gleich zurück.\n")
        self.proc = None

    def tearDown(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir)

    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w", encoding="utf-8") as f:
            f.write(text)

    def start(self):
        self.port = free_port()
        self.proc = subprocess.Popen([BIN, "--log-level", "error", "page", "--listen", f"127.0.0.1:{self.port}",
                                      "--page-dir", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def test_german_and_default_pages_by_header(self):
        self.start()
        status, h, body = get(self.port, "Accept-Language: de-CH, de;q=0.9, en;q=0.5\r\n")
        self.assertEqual(status, 503)
        self.assertEqual(body, "<html lang=de><p>Wir sind gleich zurück.</p></html>")
        self.assertEqual(h["content-language"], "de")
        self.assertEqual(h["vary"], "Accept, Accept-Language")
        status, h, body = get(self.port)
        self.assertEqual(status, 503)
        self.assertIn("<html lang=en><p>We are updating the site", body)
        self.assertEqual(h["content-language"], "en")
        self.assertEqual(h["vary"], "Accept, Accept-Language")
        for header in ["fr", "de;q=0, fr", "*", "PT"]:
            _, h, body = get(self.port, f"Accept-Language: {header}\r\n")
            self.assertEqual(h["content-language"], "en", header)
        _, h, body = get(self.port, "Accept-Language: fr;q=0.9, PT-br;q=0.8\r\n")
        self.assertEqual(h["content-language"], "pt-BR")
        self.assertIn("lang=pt-BR", body)
        _, h, body = get(self.port, "Accept: application/json\r\nAccept-Language: de\r\n")
        self.assertEqual(h["content-type"], "application/json")
        self.assertEqual(h["content-language"], "de")
        self.assertIn('"message":"Wir sind gleich zurück."', body)

    def test_sighup_reads_the_folder_again(self):
        self.start()
        self.write("maintenance.fr.html", "<html lang=fr></html>")
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            _, h, _ = get(self.port, "Accept-Language: fr\r\n")
            if h["content-language"] == "fr":
                break
            time.sleep(0.05)
        self.assertEqual(h["content-language"], "fr")
        # A bad name is refused on reload: the languages served before stay.
        self.write("maintenance.fr_FR.html", "x")
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        _, h, _ = get(self.port, "Accept-Language: de\r\n")
        self.assertEqual(h["content-language"], "de")

    def test_a_bad_file_name_is_refused_at_start(self):
        self.write("maintenance.de_DE.html", "x")
        r = subprocess.run([BIN, "page", "--listen", "127.0.0.1:0", "--page-dir", self.dir],
                           capture_output=True, text=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("maintenance.de_DE.html", r.stderr)
        self.assertIn("not a language tag", r.stderr)

    def test_page_and_page_dir_exclude_each_other(self):
        r = subprocess.run([BIN, "page", "--page", os.path.join(self.dir, "maintenance.html"),
                            "--page-dir", self.dir], capture_output=True, text=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("exclude each other", r.stderr)


if __name__ == "__main__":
    unittest.main()
