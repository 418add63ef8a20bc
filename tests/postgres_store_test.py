"""The PostgreSQL store against a real PostgreSQL server (tests/postgres.py): the one store
suite (src/adapters/store/store_suite_test.cpp) run against PostgreSQL and against DynamoDB
(dynalite) in the same run as SQLite, 24 processes racing, two daemons sharing one database,
a server restart in the middle of a switch, and `store migrate`."""

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from dynalite import Dynalite  # noqa: E402
from harness import BIN, codedeploy, race_handle  # noqa: E402
from postgres import Postgres  # noqa: E402
from stack import free_ports, wait_for_port  # noqa: E402

SUITE = os.environ.get("INTERMISSION_ADAPTER_TESTS", "build/src/adapters/intermission_adapters_unit_tests")
PROCESSES = 24
TOKEN = "postgres-test-operator-token-0123456789"


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

    def cli(self, *args, stdin=None, check=0, config=None):
        p = subprocess.run([BIN, "--config", config or self.config, *args], input=stdin,
                           capture_output=True, text=True, cwd=self.dir, timeout=120)
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
        self.pg_db(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC")
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

    def test_a_server_restart_in_the_middle_of_a_switch_is_finished_by_the_next_run(self):
        self.write_config("{type: log, path: steps.log, delay: 2s}")
        handle = subprocess.Popen([BIN, "--config", self.config, "handle"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.dir,
                                  text=True)
        handle.stdin.write(json.dumps(codedeploy("d-1", "CREATED")))
        handle.stdin.close()
        time.sleep(1.0)  # recorded, now inside the slow backend step
        self.pg.restart()
        handle.wait(timeout=60)
        handle.stdout.close()
        handle.stderr.close()
        # Whatever that run managed, the ledger has the deployment and the next run converges.
        time.sleep(5.5)  # its lease runs out if it could not give it back
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


if __name__ == "__main__":
    unittest.main()
