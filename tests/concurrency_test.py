"""Many `intermission` processes changing the same environment at once never lose an update:
the SQLite store's compare-and-set makes each of them re-read and re-decide, and its switching
lease lets one process at a time touch the backend."""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, Workspace, codedeploy  # noqa: E402

PROCESSES = 24


class ManyProcesses(Workspace):
    # Each step takes as long as a real load balancer's, so the processes overlap while one
    # of them switches: only the holder of the environment's lease may.
    config_text = """\
store: {path: state.db}
routes:
  - deployment_group: "*-*"
    environment: "{1}"
environments:
  prod:
    backend: {type: log, path: steps.log, delay: 300ms}
"""

    def start_all(self, messages):
        procs = []
        for m in messages:
            procs.append(subprocess.Popen(
                [BIN, "--config", self.config, "--log-level", "error", "handle"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=self.dir, text=True))
        # Write every input first, then close them all, so the processes race for the store.
        for p, m in zip(procs, messages):
            p.stdin.write(json.dumps(m))
        for p in procs:
            p.stdin.close()
        for p in procs:
            p.wait(timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr.read())

    def test_concurrent_starts_are_all_recorded(self):
        self.start_all([codedeploy(f"d-{i}", "CREATED") for i in range(PROCESSES)])
        st = self.status()["prod"]
        self.assertEqual(sorted(d["id"] for d in st["active_deployments"]),
                         sorted(f"d-{i}" for i in range(PROCESSES)))
        self.assertTrue(st["on"])
        deployment_audit = self.audit_count("deployment")
        self.assertEqual(deployment_audit, PROCESSES)
        # One switching lease per environment: the backend was switched once, not by every
        # process that saw it off, and no lease is left behind.
        self.assertEqual([s["on"] for s in self.steps()], [True])
        self.assertEqual(self.sql("select count(*) from leases"), 0)
        # And concurrent ends: the page goes off only when the last one is recorded.
        self.start_all([codedeploy(f"d-{i}", "SUCCEEDED") for i in range(PROCESSES)])
        st = self.status()["prod"]
        self.assertEqual(st["active_deployments"], [])
        self.assertFalse(st["on"])
        self.assertEqual(self.audit_count("deployment"), 2 * PROCESSES)
        self.assertEqual([s["on"] for s in self.steps()], [True, False])
        self.assertEqual(self.sql("select count(*) from leases"), 0)

    def audit_count(self, kind):
        return self.sql(f"select count(*) from audit where kind = '{kind}'")

    def sql(self, query):
        out = subprocess.run(["/usr/bin/python3", "-c", f"""
import sqlite3
db = sqlite3.connect({os.path.join(self.dir, 'state.db')!r})
print(db.execute({query!r}).fetchone()[0])
"""], capture_output=True, text=True, check=True)
        return int(out.stdout)


if __name__ == "__main__":
    unittest.main()
