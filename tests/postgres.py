"""Starts a real PostgreSQL server (Debian's postgresql package) in a temporary directory on
loopback for a test. The server refuses to run as root: as root, it runs as the unprivileged
user `intermission-test` that scripts/install-deps.sh creates. With `tls=True` it also speaks
TLS with a certificate for 127.0.0.1 and localhost from a test CA (`make_ca`); `hba` lines go
before the default trust rules, so a test can require TLS or a password for its own role."""

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
from stack import free_port  # noqa: E402

USER = "intermission-test"


def make_ca(directory, name):
    """A throwaway certificate authority: writes <name>.crt and <name>.key into `directory`
    and returns their paths. EC P-256 keys, so it takes milliseconds."""
    crt, key = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", f"/CN=intermission test {name}",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def make_server_cert(directory, ca_crt, ca_key):
    """server.crt and server.key for 127.0.0.1 and localhost, signed by the CA; their paths."""
    crt, key = os.path.join(directory, "server.crt"), os.path.join(directory, "server.key")
    csr, ext = os.path.join(directory, "server.csr"), os.path.join(directory, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr,
                    "-subj", "/CN=localhost"], check=True, capture_output=True, timeout=60)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
                    "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", crt],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise RuntimeError("no PostgreSQL server: apt-get install postgresql")
    return os.path.dirname(found[-1])


class Postgres:
    def __init__(self, tls=False, hba=()):
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-pg-")
        self.dir = self._tmp.name
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.bin = bindir()
        self.as_user = None  # as root: become the unprivileged user in the child, before exec
        pw = None  # as root: that user, who must own the server's files
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
        self.options = []
        self.ca = None  # the CA's certificate, with tls=True
        if tls:
            self._set_up_tls(pw)
        if hba:
            path = os.path.join(self.data, "pg_hba.conf")
            with open(path) as f:
                rules = f.read()
            with open(path, "w") as f:  # first match wins: ours before initdb's trust rules
                f.write("".join(line + "\n" for line in hba) + rules)
        self.proc = None
        self.start()
        subprocess.run([os.path.join(self.bin, "createdb"), "-h", "127.0.0.1", "-p",
                        str(self.port), "-U", "postgres", "intermission"],
                       check=True, capture_output=True, timeout=60)
        self.conninfo = f"host=127.0.0.1 port={self.port} dbname=intermission user=postgres"

    def _set_up_tls(self, pw):
        tls = os.path.join(self.dir, "tls")
        os.mkdir(tls)
        self.ca, ca_key = make_ca(tls, "ca")
        crt, key = make_server_cert(tls, self.ca, ca_key)
        # The server reads its key only if the key is its own and private (0600).
        for path in (crt, key):
            shutil.copy(path, self.data)
        self.options = ["-c", "ssl=on", "-c", "ssl_cert_file=server.crt",
                        "-c", "ssl_key_file=server.key"]
        for name in ("server.crt", "server.key"):
            path = os.path.join(self.data, name)
            os.chmod(path, 0o600)
            if pw is not None:
                os.chown(path, pw.pw_uid, pw.pw_gid)

    def start(self):
        self.proc = subprocess.Popen(
            [os.path.join(self.bin, "postgres"), "-D", self.data, "-h", "127.0.0.1", "-p",
             str(self.port), "-k", self.dir, "-c", "fsync=off", "-c", "max_connections=200",
             *self.options],
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
