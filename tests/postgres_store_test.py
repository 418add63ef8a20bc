"""The PostgreSQL store against a real PostgreSQL server (tests/postgres.py): the one store
suite (src/adapters/store/store_suite_test.cpp) run against PostgreSQL and against DynamoDB
(dynalite) in the same run as SQLite, 24 processes racing, two daemons sharing one database,
a server restart in the middle of a switch, and `store migrate`. Then how the store reaches the
server, as README ("Choosing a store") promises (every libpq option, the PG* variables as for
psql): the PG* variables when `connection` is left out, TLS with `sslmode=verify-full`, a
`passfile` with SCRAM authentication, and PGCONNECT_TIMEOUT / `connect_timeout` against a port
that never answers."""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from dynalite import Dynalite  # noqa: E402
from harness import BIN, codedeploy, race_handle, wait_until  # noqa: E402
from postgres import Postgres, make_ca  # noqa: E402
from stack import free_ports, wait_for_port  # noqa: E402

SUITE = os.environ.get("INTERMISSION_ADAPTER_TESTS", "build/src/adapters/intermission_adapters_unit_tests")
PROCESSES = 24
TOKEN = "postgres-test-operator-token-0123456789"


def write_config(path, store):
    """A config with `store` (YAML flow text) and one environment, prod, on a log backend."""
    with open(path, "w") as f:
        f.write(f"""\
store: {store}
routes:
  - deployment_group: "*-*"
    environment: "{{1}}"
environments:
  prod:
    backend: {{type: log, path: steps.log}}
""")


def hermetic_env(home, **pg):
    """Our environment without any PG* variable of the machine running the tests (PGPASSWORD,
    PGSSLMODE, ... would change what is tested) and with HOME in the test's directory (no
    ~/.pgpass, no ~/.postgresql/root.crt), plus the `pg` variables given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(HOME=home, **pg)
    return env


def hold(state_text):
    """The operator hold in a row of intermission_environments: (on, reason); (False, "")
    when there is none."""
    h = json.loads(state_text).get("hold")
    return (h["on"], h["reason"]) if h else (False, "")


class PostgresStore(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = Postgres()

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-pgtest-")
        self.dir = self._tmp.name
        self.db = f"t{int(time.time() * 1000) % 10**9}{os.getpid()}"
        self.pg.psql(f"CREATE DATABASE {self.db}")
        self.conninfo = f"host=127.0.0.1 port={self.pg.port} dbname={self.db} user=postgres"
        self.config = os.path.join(self.dir, "config.yaml")
        self.write_config("{type: log, path: steps.log, delay: 300ms}")

    def tearDown(self):
        self._tmp.cleanup()

    def write_config(self, backend, extra=""):
        with open(self.config, "w") as f:
            f.write(f"""\
store: {{type: postgresql, connection: "{self.conninfo}", lease: 5s}}
{extra}routes:
  - deployment_group: "*-*"
    environment: "{{1}}"
environments:
  prod:
    backend: {backend}
""")

    def cli(self, *args, stdin=None, check=0, config=None, env=None):
        p = subprocess.run([BIN, "--config", config or self.config, *args], input=stdin,
                           capture_output=True, text=True, cwd=self.dir, timeout=120, env=env)
        if check is not None:
            self.assertEqual(p.returncode, check, f"{args}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def status(self):
        return json.loads(self.cli("status", "--json").stdout)["environments"][0]

    def steps(self):
        path = os.path.join(self.dir, "steps.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line)["on"] for line in f if line.strip()]

    def test_the_store_suite_passes_against_postgresql_and_dynamodb(self):
        dyn = Dynalite()
        try:
            env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDSUITE", AWS_SECRET_ACCESS_KEY="suite-secret",
                       AWS_REGION="eu-west-1", AWS_DEFAULT_REGION="eu-west-1", AWS_CONFIG_FILE="/dev/null",
                       AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_EC2_METADATA_DISABLED="true")
            dyn.create_table("intermission", env)
            env.update(INTERMISSION_TEST_POSTGRES=self.conninfo, INTERMISSION_TEST_DYNAMODB=dyn.url)
            p = subprocess.run([SUITE, "--gtest_filter=Stores/StoreSuite.*"], capture_output=True,
                               text=True, env=env, timeout=300)
        finally:
            dyn.stop()
        self.assertEqual(p.returncode, 0, p.stdout[-4000:] + p.stderr[-2000:])
        self.assertNotIn("SKIPPED", p.stdout, "every store must really run")
        ran = {m for m in re.findall(r"\[       OK \] Stores/StoreSuite\.\w+/(\w+)", p.stdout)}
        self.assertEqual(ran, {"sqlite", "postgresql", "dynamodb"})
        counts = [int(n) for n in re.findall(r"\[  PASSED  \] (\d+) test", p.stdout)]
        self.assertEqual(counts[0] % 3, 0)
        self.assertGreaterEqual(counts[0], 24)

    def test_the_pg_variables_name_the_server_when_connection_is_left_out(self):
        """README: `connection` left out, the PG* variables apply as for psql. The server also has
        the database `intermission`: the rows must land in PGDATABASE's, not there."""
        write_config(self.config, "{type: postgresql}")
        env = hermetic_env(self.dir, PGHOST="127.0.0.1", PGPORT=str(self.pg.port),
                           PGDATABASE=self.db, PGUSER="postgres")
        self.cli("on", "prod", "--reason", "from the PG variables", env=env)
        st = json.loads(self.cli("status", "--json", env=env).stdout)["environments"][0]
        self.assertTrue(st["on"])
        state = self.pg_db("SELECT state FROM intermission_environments WHERE name = 'prod'")
        self.assertEqual(hold(state), (True, "from the PG variables"))
        self.assertEqual(self.pg.psql("SELECT count(*) FROM pg_tables "
                                      "WHERE tablename LIKE 'intermission%'"), "0")
        self.cli("off", "prod", env=env)
        st = json.loads(self.cli("status", "--json", env=env).stdout)["environments"][0]
        self.assertFalse(st["on"])
        state = self.pg_db("SELECT state FROM intermission_environments WHERE name = 'prod'")
        self.assertFalse(hold(state)[0])
        self.assertEqual(self.steps(), [True, False])

    def test_a_bare_database_name_is_taken_as_psql_takes_it(self):
        """`connection: NAME` (no '=', no URI) is a database name, as libpq's dbname and psql
        read it; the server comes from the PG* variables."""
        write_config(self.config, f'{{type: postgresql, connection: "{self.db}"}}')
        env = hermetic_env(self.dir, PGHOST="127.0.0.1", PGPORT=str(self.pg.port),
                           PGUSER="postgres")
        self.cli("on", "prod", "--reason", "a bare name", env=env)
        state = self.pg_db("SELECT state FROM intermission_environments WHERE name = 'prod'")
        self.assertEqual(hold(state), (True, "a bare name"))

    def test_store_migrate_creates_the_schema_once_and_refuses_a_newer_one(self):
        self.assertEqual(self.cli("store", "migrate").stdout, "postgresql: schema at version 1\n")
        self.assertEqual(self.cli("store", "migrate").stdout, "postgresql: schema at version 1\n")
        self.assertEqual(self.pg_db("SELECT count(*) FROM intermission_schema"), "1")
        self.pg_db("UPDATE intermission_schema SET version = 99")
        p = self.cli("status", check=3)
        self.assertIn("schema is at version 99", p.stderr)

    def test_a_user_with_only_the_documented_grants_works_once_the_schema_is_there(self):
        """README: CREATE the first time, then SELECT, INSERT, UPDATE, DELETE on the tables and
        USAGE on the sequences. On
        PostgreSQL 15 `public` grants no CREATE to everyone, so a command that ran DDL on every
        start (even CREATE TABLE IF NOT EXISTS) would fail for that user; migrating, when due,
        still needs the privilege and says so."""
        self.cli("store", "migrate")
        role = f"app{self.db}"
        self.pg_db(f"CREATE ROLE {role} LOGIN")
        self.pg_db("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        self.pg_db(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        self.pg_db(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")  # as README says
        self.conninfo = self.conninfo.replace("user=postgres", f"user={role}")
        self.write_config("{type: log, path: steps.log}")
        self.cli("handle", stdin=json.dumps(codedeploy("d-1", "CREATED")))
        self.cli("handle", stdin=json.dumps(codedeploy("d-1", "SUCCEEDED")))
        self.assertEqual(self.steps(), [True, False])
        self.cli("on", "prod", "--reason", "least privilege")
        self.assertTrue(self.status()["on"])
        # A schema older than the binary needs migrating: that user cannot, and is told why.
        self.pg_db("UPDATE intermission_schema SET version = 0")
        p = self.cli("status", check=None)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("permission denied", p.stderr)
        self.assertIn("migrat", p.stderr)

    def test_a_connection_string_that_cannot_be_read_does_not_echo_its_password(self):
        self.conninfo = f"host=127.0.0.1 port={self.pg.port} password=correct horse battery"
        self.write_config("{type: log, path: steps.log}")
        p = self.cli("status", check=None)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not a libpq connection string", p.stderr)
        self.assertNotIn("horse", p.stderr + p.stdout)
        # Without a password in it, libpq's own words help.
        self.conninfo = f"host=127.0.0.1 port={self.pg.port} dbname"
        self.write_config("{type: log, path: steps.log}")
        p = self.cli("status", check=None)
        self.assertIn('missing "=" after "dbname"', p.stderr)

    def pg_db(self, sql):
        import subprocess as sp
        out = sp.run([os.path.join(self.pg.bin, "psql"), "-h", "127.0.0.1", "-p", str(self.pg.port),
                      "-U", "postgres", "-d", self.db, "-At", "-c", sql], capture_output=True,
                     text=True, timeout=60, check=True)
        return out.stdout.strip()

    def test_24_processes_racing_lose_nothing_and_switch_once(self):
        def race(status):
            race_handle(self, self.config, self.dir, status, PROCESSES, timeout=120)

        race("CREATED")
        st = self.status()
        self.assertTrue(st["on"])
        self.assertEqual(len(st["active_deployments"]), PROCESSES)
        self.assertEqual(self.steps(), [True], "one switch, by the lease holder")
        race("SUCCEEDED")
        st = self.status()
        self.assertFalse(st["on"])
        self.assertEqual(self.steps(), [True, False])
        self.assertEqual(self.pg_db("SELECT count(*) FROM intermission_audit WHERE kind = 'deployment'"),
                         str(2 * PROCESSES))
        self.assertEqual(self.pg_db("SELECT count(*) FROM intermission_leases WHERE holder <> ''"), "0")

    def held_leases(self):
        """How many switching leases are held and not yet run out, as psql prints it."""
        now_ms = int(time.time() * 1000)
        try:
            return self.pg_db(f"SELECT count(*) FROM intermission_leases WHERE holder <> '' AND until_ms > {now_ms}")
        except subprocess.CalledProcessError:
            return None  # the schema is not there yet, or the server is restarting

    def test_a_server_restart_in_the_middle_of_a_switch_is_finished_by_the_next_run(self):
        self.write_config("{type: log, path: steps.log, delay: 4s}")
        handle = subprocess.Popen([BIN, "--config", self.config, "handle"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.dir,
                                  text=True)
        handle.stdin.write(json.dumps(codedeploy("d-1", "CREATED")))
        handle.stdin.close()
        # Recorded, its lease taken, now inside the slow backend step.
        self.assertTrue(wait_until(lambda: self.held_leases() == "1"), "the switch took its lease")
        self.pg.restart()
        handle.wait(timeout=60)
        handle.stdout.close()
        handle.stderr.close()
        # Whatever that run managed, the ledger has the deployment and the next run converges.
        # Its lease runs out (5 s) if it could not give it back.
        self.assertTrue(wait_until(lambda: self.held_leases() == "0"), "the lease ran out")
        self.cli("tick")
        st = self.status()
        self.assertTrue(st["on"])
        self.assertTrue(st["observed"]["on"])
        self.assertEqual(self.steps()[-1], True)
        self.cli("handle", stdin=json.dumps(codedeploy("d-1", "SUCCEEDED")))
        self.assertFalse(self.status()["on"])

    def test_two_daemons_share_one_database_and_switch_once(self):
        ports = free_ports(4)
        daemons = []
        try:
            for i in range(2):
                config = os.path.join(self.dir, f"config-{i}.yaml")
                self.write_config("{type: log, path: steps.log, delay: 1s}",
                                  extra=f"serve: {{listen: 127.0.0.1:{ports[2*i]}, admin_listen: "
                                        f"127.0.0.1:{ports[2*i+1]}, tick_interval: 1s}}\n")
                os.rename(self.config, config)
                env = dict(os.environ, INTERMISSION_OPERATOR_TOKEN=TOKEN)
                daemons.append(subprocess.Popen([BIN, "--config", config, "serve"], cwd=self.dir,
                                                env=env, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.PIPE, text=True))
            for i in range(2):
                wait_for_port(ports[2 * i + 1], timeout=20)
            self.config = os.path.join(self.dir, "config-0.yaml")

            def operator(admin, verb):
                req = urllib.request.Request(
                    f"http://127.0.0.1:{admin}/api/environments/prod/{verb}", data=b"{}",
                    method="POST", headers={"Authorization": f"Bearer {TOKEN}",
                                            "Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status
            threads = [threading.Thread(target=operator, args=(ports[2 * i + 1], "on")) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            deadline = time.monotonic() + 20
            while self.steps() != [True] and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(2.5)  # both daemons' workers and ticks have run
            self.assertEqual(self.steps(), [True], "one switch for two daemons")
            operator(ports[3], "off")
            deadline = time.monotonic() + 20
            while self.steps() != [True, False] and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertEqual(self.steps(), [True, False])
        finally:
            for p in daemons:
                p.terminate()
                p.wait(timeout=20)
                p.stderr.close()


class PostgresConnection(unittest.TestCase):
    """TLS and password authentication, on a server with ssl=on whose pg_hba.conf lets the role
    `tls_user` in only over TLS (hostssl; plain host is rejected) and `pw_user` only with a
    SCRAM password. Each test has its own database, owned by its role."""

    TLS_USER = "tls_user"
    PW_USER = "pw_user"
    PASSWORD = "correct horse battery staple"

    @classmethod
    def setUpClass(cls):
        cls.pg = Postgres(tls=True, hba=[
            f"hostssl all {cls.TLS_USER} 127.0.0.1/32 trust",
            f"host    all {cls.TLS_USER} 127.0.0.1/32 reject",
            f"host    all {cls.PW_USER} 127.0.0.1/32 scram-sha-256",
        ])
        cls.pg.psql(f"CREATE ROLE {cls.TLS_USER} LOGIN")
        cls.pg.psql(f"SET password_encryption = 'scram-sha-256'; "
                    f"CREATE ROLE {cls.PW_USER} LOGIN PASSWORD '{cls.PASSWORD}'")
        # A CA of the same shape that did not sign the server's certificate.
        cls._other = tempfile.TemporaryDirectory(prefix="intermission-pgca-")
        cls.other_ca, _ = make_ca(cls._other.name, "other-ca")

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()
        cls._other.cleanup()

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-pgtest-")
        self.dir = self._tmp.name
        self.config = os.path.join(self.dir, "config.yaml")
        self.env = hermetic_env(self.dir)
        self.db = f"t{int(time.time() * 1000) % 10**9}{os.getpid()}"

    def tearDown(self):
        self._tmp.cleanup()

    def use(self, owner, options):
        """A fresh database owned by `owner` and a config reaching it as `owner` with `options`
        appended to the connection string."""
        self.pg.psql(f"CREATE DATABASE {self.db} OWNER {owner}")
        conninfo = f"host=127.0.0.1 port={self.pg.port} dbname={self.db} user={owner} {options}"
        write_config(self.config, f'{{type: postgresql, connection: "{conninfo}"}}')

    def cli(self, *args, check=0):
        p = subprocess.run([BIN, "--config", self.config, *args], capture_output=True, text=True,
                           cwd=self.dir, timeout=60, env=self.env)
        if check is not None:
            self.assertEqual(p.returncode, check,
                             f"{args}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def psql_as(self, conninfo, sql):
        return subprocess.run([os.path.join(self.pg.bin, "psql"), conninfo, "-At", "-c", sql],
                              capture_output=True, text=True, timeout=60, env=self.env)

    def db_sql(self, sql):
        out = subprocess.run([os.path.join(self.pg.bin, "psql"), "-h", "127.0.0.1", "-p",
                              str(self.pg.port), "-U", "postgres", "-d", self.db, "-At", "-c", sql],
                             capture_output=True, text=True, timeout=60, check=True)
        return out.stdout.strip()

    def prod_hold(self):
        return hold(self.db_sql("SELECT state FROM intermission_environments WHERE name = 'prod'"))

    def tables(self):
        return self.db_sql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'intermission%'")

    def assert_cannot_connect(self, p, *why):
        """A failed command says it is the store that failed, which server, and why."""
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("store: postgresql: cannot connect", p.stderr)
        self.assertIn(f'"127.0.0.1", port {self.pg.port}', p.stderr)
        for w in why:
            self.assertIn(w, p.stderr)

    def test_verify_full_with_the_servers_ca_connects_over_tls(self):
        self.use(self.TLS_USER, f"sslmode=verify-full sslrootcert={self.pg.ca}")
        self.cli("on", "prod", "--reason", "over tls")
        self.assertEqual(self.prod_hold(), (True, "over tls"))
        self.assertTrue(json.loads(self.cli("status", "--json").stdout)["environments"][0]["on"])
        # The certificate's name is checked for a host name as well as for an address.
        write_config(self.config, f'{{type: postgresql, connection: "host=localhost '
                                  f'port={self.pg.port} dbname={self.db} user={self.TLS_USER} '
                                  f'sslmode=verify-full sslrootcert={self.pg.ca}"}}')
        self.cli("off", "prod")
        self.assertFalse(self.prod_hold()[0])
        # Those sessions were TLS: pg_hba.conf lets this role in over TLS only (a plain session
        # is refused), and one with the same options is TLS in pg_stat_ssl.
        base = f"host=127.0.0.1 port={self.pg.port} dbname={self.db} user={self.TLS_USER}"
        plain = self.psql_as(base + " sslmode=disable", "SELECT 1")
        self.assertNotEqual(plain.returncode, 0)
        self.assertIn("no encryption", plain.stderr)
        tls = self.psql_as(base + f" sslmode=verify-full sslrootcert={self.pg.ca}",
                           "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        self.assertEqual((tls.returncode, tls.stdout.strip()), (0, "t"), tls.stderr)

    def test_verify_full_with_another_ca_fails_naming_the_server_and_writes_nothing(self):
        self.use(self.TLS_USER, f"sslmode=verify-full sslrootcert={self.other_ca}")
        p = self.cli("on", "prod", "--reason", "must not happen", check=None)
        self.assert_cannot_connect(p, "certificate verify failed")
        self.assertEqual(self.tables(), "0", "not even the schema")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "steps.log")))
        # verify-full also checks the name: the right CA, but a name the certificate lacks
        # (hostaddr: the same loopback server, no name lookup; the name is what is verified).
        write_config(self.config, f'{{type: postgresql, connection: "host=intermission.invalid '
                                  f'hostaddr=127.0.0.1 port={self.pg.port} dbname={self.db} '
                                  f'user={self.TLS_USER} sslmode=verify-full '
                                  f'sslrootcert={self.pg.ca}"}}')
        p = self.cli("on", "prod", "--reason", "must not happen", check=None)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("store: postgresql: cannot connect", p.stderr)
        self.assertIn('does not match host name "intermission.invalid"', p.stderr)
        self.assertEqual(self.tables(), "0", "not even the schema")

    def test_a_passfile_gives_the_scram_password(self):
        passfile = os.path.join(self.dir, "pgpass")
        with open(passfile, "w") as f:
            f.write(f"127.0.0.1:{self.pg.port}:*:{self.PW_USER}:{self.PASSWORD}\n")
        os.chmod(passfile, 0o600)  # libpq ignores a passfile others can read
        self.use(self.PW_USER, f"passfile={passfile}")
        self.cli("on", "prod", "--reason", "with a password")
        self.assertEqual(self.prod_hold(), (True, "with a password"))
        self.assertTrue(self.pg.psql(f"SELECT rolpassword FROM pg_authid WHERE rolname = "
                                     f"'{self.PW_USER}'").startswith("SCRAM-SHA-256$"))
        # The password was needed: without the passfile the server asks for one.
        write_config(self.config, f'{{type: postgresql, connection: "host=127.0.0.1 '
                                  f'port={self.pg.port} dbname={self.db} user={self.PW_USER}"}}')
        self.assert_cannot_connect(self.cli("status", check=None), "no password supplied")

    def test_a_wrong_password_is_refused_clearly_and_changes_nothing(self):
        self.use(self.PW_USER, f"password='{self.PASSWORD}'")
        self.cli("on", "prod", "--reason", "before")
        audit = self.db_sql("SELECT count(*) FROM intermission_audit")
        passfile = os.path.join(self.dir, "pgpass")
        with open(passfile, "w") as f:
            f.write(f"*:*:*:{self.PW_USER}:not the password\n")
        os.chmod(passfile, 0o600)
        write_config(self.config, f'{{type: postgresql, connection: "host=127.0.0.1 '
                                  f'port={self.pg.port} dbname={self.db} user={self.PW_USER} '
                                  f'passfile={passfile}"}}')
        p = self.cli("off", "prod", check=None)
        self.assert_cannot_connect(p, f'password authentication failed for user "{self.PW_USER}"',
                                   f'password retrieved from file "{passfile}"')
        self.assertNotIn("not the password", p.stderr)
        self.assertEqual(self.prod_hold(), (True, "before"))
        self.assertEqual(self.db_sql("SELECT count(*) FROM intermission_audit"), audit)


class PostgresConnectTimeout(unittest.TestCase):
    """The PG* variables apply as for psql (README), PGCONNECT_TIMEOUT among them, and the store
    adds connect_timeout=10 only when neither the connection string nor PGCONNECT_TIMEOUT sets
    one (PostgresStore::open). The server is a loopback port
    that never answers: its listen backlog is full, so the kernel drops the next SYN and the
    client waits, as for a server behind a firewall that drops packets."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-pgtest-")
        self.dir = self._tmp.name
        self.config = os.path.join(self.dir, "config.yaml")
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers = []
        for _ in range(8):  # fill the accept queue (backlog 0 takes one) until a connect hangs
            s = socket.socket()
            s.settimeout(0.3)
            self.fillers.append(s)
            try:
                s.connect(("127.0.0.1", self.port))
            except socket.timeout:
                break
        else:
            self.fail("the listen backlog never filled: the port answers")

    def tearDown(self):
        for s in self.fillers:
            s.close()
        self.listener.close()
        self._tmp.cleanup()

    def status(self, options, limit=20, **env):
        """`status` against the silent port: (seconds taken, process)."""
        write_config(self.config, f'{{type: postgresql, connection: "host=127.0.0.1 '
                                  f'port={self.port} dbname=intermission user=x {options}"}}')
        started = time.monotonic()
        p = subprocess.run([BIN, "--config", self.config, "status"], capture_output=True,
                           text=True, cwd=self.dir, timeout=limit,
                           env=hermetic_env(self.dir, **env))
        return time.monotonic() - started, p

    def assert_gave_up_after_two_seconds(self, took, p):
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("store: postgresql: cannot connect", p.stderr)
        self.assertIn(f'"127.0.0.1", port {self.port} failed: timeout expired', p.stderr)
        self.assertGreaterEqual(took, 1.5)  # it did wait for the server...
        self.assertLess(took, 6, "...for PGCONNECT_TIMEOUT's 2 s, not the store's 10")

    def test_pgconnect_timeout_sets_how_long_a_silent_server_is_waited_for(self):
        self.assert_gave_up_after_two_seconds(*self.status("", PGCONNECT_TIMEOUT="2"))

    def test_connect_timeout_in_the_connection_string_wins_over_pgconnect_timeout(self):
        self.assert_gave_up_after_two_seconds(
            *self.status("connect_timeout=2", PGCONNECT_TIMEOUT="30"))

    # libpq fills an option from a pg_service.conf service only when nothing set it, so the
    # store's own connect_timeout=10 must not be passed when a service is named (by `service=`
    # or PGSERVICE): it would override the service's, as it once did. psql honours it.
    def test_connect_timeout_of_a_pg_service_file_is_honoured(self):
        services = os.path.join(self.dir, "pg_service.conf")
        with open(services, "w") as f:
            f.write("[silent]\nconnect_timeout=2\n")
        try:  # cut short at 6 s: ours (10 s) once overrode the service's
            self.assert_gave_up_after_two_seconds(
                *self.status("service=silent", limit=6, PGSERVICEFILE=services))
        except subprocess.TimeoutExpired:
            self.fail("still waiting after 6 s: the service's connect_timeout=2 was not used")


if __name__ == "__main__":
    unittest.main()
