"""Starts a real PostgreSQL server (Debian's postgresql package) in a temporary directory on
loopback for a test. The server refuses to run as root: as root, it runs as the unprivileged
user `intermission-test` that scripts/install-deps.sh creates."""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from stack import free_port, wait_for_port  # noqa: E402

USER = "intermission-test"


def bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise RuntimeError("no PostgreSQL server: apt-get install postgresql")
    return os.path.dirname(found[-1])


class Postgres:
    def __init__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-pg-")
        self.dir = self._tmp.name
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.bin = bindir()
        self.as_user = None  # as root: become the unprivileged user in the child, before exec
        if os.geteuid() == 0:
            pw = pwd.getpwnam(USER)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)

            def as_user():
                os.setgroups([])
                os.setgid(pw.pw_gid)
                os.setuid(pw.pw_uid)
            self.as_user = as_user
        subprocess.run([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres", "-A",
                        "trust", "--no-sync", "-E", "UTF8"], preexec_fn=self.as_user,
                       check=True, capture_output=True, timeout=120, cwd=self.dir)
        self.proc = None
        self.start()
        subprocess.run([os.path.join(self.bin, "createdb"), "-h", "127.0.0.1", "-p",
                        str(self.port), "-U", "postgres", "intermission"],
                       check=True, capture_output=True, timeout=60)
        self.conninfo = f"host=127.0.0.1 port={self.port} dbname=intermission user=postgres"

    def start(self):
        self.proc = subprocess.Popen(
            [os.path.join(self.bin, "postgres"), "-D", self.data, "-h", "127.0.0.1", "-p",
             str(self.port), "-k", self.dir, "-c", "fsync=off", "-c", "max_connections=200"],
            preexec_fn=self.as_user, cwd=self.dir, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = subprocess.run([os.path.join(self.bin, "pg_isready"), "-h", "127.0.0.1", "-p",
                                    str(self.port)], capture_output=True)
            if ready.returncode == 0:
                return
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited: " + self.proc.stderr.read().decode()[-2000:])
            time.sleep(0.1)
        raise RuntimeError("postgres did not get ready")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown: ends sessions, then exits
            self.proc.wait(timeout=60)
        if self.proc is not None:
            self.proc.stderr.close()
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def psql(self, sql):
        out = subprocess.run([os.path.join(self.bin, "psql"), "-h", "127.0.0.1", "-p",
                              str(self.port), "-U", "postgres", "-d", "intermission", "-At", "-c",
                              sql], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        return out.stdout.strip()

    def close(self):
        self.stop()
        self._tmp.cleanup()
