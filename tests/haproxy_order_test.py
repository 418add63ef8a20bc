"""The HAProxy backend's order of writes against a reload: a fake runtime API (a Unix socket
that speaks the commands intermission sends) reloads the way HAProxy does, reading the map
file when the reload begins and taking over later. The switch must survive a reload that
begins right after the runtime change: the map file has to be written before it."""

import os
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Workspace  # noqa: E402


class FakeRuntime:
    """HAProxy's runtime API for one map, one command per connection (as intermission uses
    it). After the first `add map`/`del map`, a reload begins: the new process reads the map
    file at that moment and replaces the old one when take_over() is called."""

    def __init__(self, path, map_path):
        self.map_path = map_path
        self.live = {}
        self.pending_reload = None
        self.reload_armed = True
        self.commands = []
        self.level = "admin"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def read_file(self):
        entries = {}
        if os.path.exists(self.map_path):
            with open(self.map_path) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 2 and not parts[0].startswith("#"):
                        entries[parts[0]] = parts[1]
        return entries

    def answer(self, line):
        words = line.split()
        self.commands.append(line)
        if line == "show cli level":
            return self.level + "\n"
        if words[:2] == ["show", "map"]:
            return "".join(f"0x{i:x} {k} {v}\n" for i, (k, v) in enumerate(self.live.items()))
        if words[:2] == ["add", "map"]:
            self.live[words[3]] = words[4]
        elif words[:2] == ["del", "map"]:
            self.live.pop(words[3], None)
        else:
            return "Unknown command.\n"
        if self.reload_armed:
            self.reload_armed = False
            self.pending_reload = self.read_file()
        return "\n"

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(self.answer(data.decode().strip()).encode() + b"\n")

    def take_over(self):
        if self.pending_reload is not None:
            self.live = self.pending_reload
            self.pending_reload = None

    def close(self):
        self.sock.close()


class MapFileBeforeRuntime(Workspace):
    def setUp(self):
        self.config_text = ""
        super().setUp()
        self.socket_path = os.path.join(self.dir, "admin.sock")
        self.map_path = os.path.join(self.dir, "maintenance.map")
        with open(self.config, "w") as f:
            f.write(f"""\
store:
  path: state.db
routes:
  - deployment_group: "*-*"
    environment: "{{1}}"
environments:
  prod:
    backend: {{type: haproxy, socket: {self.socket_path}, map: {self.map_path}}}
""")
        self.runtime = FakeRuntime(self.socket_path, self.map_path)

    def tearDown(self):
        self.runtime.close()
        super().tearDown()

    def test_a_reload_right_after_switching_on_keeps_maintenance_on(self):
        self.run_cli("on", "prod", check=0)
        self.assertIn("prod", self.runtime.live)
        self.runtime.take_over()
        self.assertIn("prod", self.runtime.live,
                      "the reload read a map file without the entry and reverted the switch")

    def test_a_reload_right_after_switching_off_keeps_maintenance_off(self):
        self.run_cli("on", "prod", check=0)
        self.runtime.take_over()
        self.runtime.reload_armed = True
        self.run_cli("off", "prod", check=0)
        self.assertNotIn("prod", self.runtime.live)
        self.runtime.take_over()
        self.assertNotIn("prod", self.runtime.live,
                         "the reload read a map file with the entry and put maintenance back")


class SocketLevel(MapFileBeforeRuntime):
    test_a_reload_right_after_switching_on_keeps_maintenance_on = None
    test_a_reload_right_after_switching_off_keeps_maintenance_off = None

    def status_detail(self):
        import json
        p = self.run_cli("status", "--json", check=0)
        return json.loads(p.stdout)["environments"][0]["observed"]["detail"]

    def test_a_socket_at_level_admin_is_pointed_out(self):
        """Switching needs `level operator`; a socket at `admin` works but gives whoever
        reaches it the whole runtime API (docs/packaging.md): status says so."""
        self.assertIn("level admin", self.status_detail())
        self.runtime.level = "operator"
        self.assertNotIn("level admin", self.status_detail())
        self.runtime.level = "user"
        p = self.run_cli("status", "--json", check=None)
        self.assertIn("level operator", p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
