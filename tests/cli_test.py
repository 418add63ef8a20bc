"""The CLI end to end with the log backend: every fixture, the whole event path, operator
commands, status, dry-run, check-config and exit codes."""

import glob
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, FIXTURES, Workspace, codedeploy  # noqa: E402


class Fixtures(Workspace):
    def test_every_event_fixture_is_handled_without_error(self):
        files = sorted(glob.glob(os.path.join(FIXTURES, "*.json")) +
                       glob.glob(os.path.join(FIXTURES, "*.http")))
        self.assertGreater(len(files), 10)
        for path in files:
            with self.subTest(fixture=os.path.basename(path)):
                self.run_cli("handle", path, check=0)

    def test_lifecycle_capture_replayed_turns_on_once_and_off_once(self):
        with open(os.path.join(FIXTURES, "lambda-sns-codedeploy-lifecycle-2022.json")) as f:
            capture = json.load(f)
        # Route the captured application to prod; keep the real message bodies but make their
        # times recent (a 2022 "CREATED" would otherwise be expired on arrival, by design).
        self.write_config_route("temporary-status", "prod")
        seen = []
        for record in capture["failedDeployment"]:
            sns = record["Records"][0]["Sns"]
            message = json.loads(sns["Message"])
            message["createTime"] = None
            if message.get("completeTime"):
                message["completeTime"] = None
            sns["Message"] = json.dumps(message)
            del sns["Timestamp"]
            self.handle(record)
            seen.append(self.status()["prod"]["on"])
        self.assertEqual(seen, [True, True, True, True, False])
        switches = [s["on"] for s in self.steps() if s["environment"] == "prod"]
        self.assertEqual(switches, [True, False], "one switch on, one switch off")

    def write_config_route(self, application, environment):
        with open(self.config) as f:
            text = f.read()
        text = text.replace("routes:\n", f"routes:\n  - application: {application}\n"
                                         f"    environment: {environment}\n")
        with open(self.config, "w") as f:
            f.write(text)


class EventPath(Workspace):
    def test_created_then_succeeded(self):
        p = self.handle(codedeploy("d-1", "CREATED"))
        self.assertIn("prod: maintenance on", p.stdout)
        st = self.status()
        self.assertTrue(st["prod"]["on"])
        self.assertFalse(st["staging"]["on"])
        self.assertEqual([d["id"] for d in st["prod"]["active_deployments"]], ["d-1"])
        self.assertIsNotNone(st["prod"]["since"])
        self.assertTrue(st["prod"]["observed"]["on"])
        self.assertIn("detail", st["prod"]["observed"])
        self.handle(codedeploy("d-1", "SUCCEEDED"))
        st = self.status()
        self.assertFalse(st["prod"]["on"])
        self.assertEqual(st["prod"]["active_deployments"], [])
        self.assertEqual([s["on"] for s in self.steps()], [True, False])

    def test_duplicate_and_late_events_change_nothing(self):
        msg = {"Records": [{"EventSource": "aws:sns", "Sns": {
            "Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:eu-west-1:1:t",
            "Message": json.dumps(codedeploy("d-1", "CREATED"))}}]}
        self.handle(msg)
        version = self.status()["prod"]["version"]
        p = self.handle(msg)
        self.assertIn("duplicate delivery", p.stdout)
        self.assertEqual(self.status()["prod"]["version"], version)
        self.handle(codedeploy("d-1", "SUCCEEDED"))
        self.handle(codedeploy("d-1", "CREATED"))  # late
        self.assertFalse(self.status()["prod"]["on"])
        self.assertEqual([s["on"] for s in self.steps()], [True, False])

    def test_dry_run_plans_and_changes_nothing(self):
        p = self.handle(codedeploy("d-1", "CREATED"), "--dry-run")
        self.assertIn("would switch maintenance on", p.stdout)
        self.assertEqual(self.steps(), [])
        self.assertFalse(self.status()["prod"]["on"])
        self.assertEqual(self.status()["prod"]["version"], 0)

    def test_json_output_of_handle(self):
        p = self.handle([codedeploy("d-1", "CREATED"), {"hello": "world"}], "--json")
        out = json.loads(p.stdout)
        self.assertEqual(len(out), 2)
        self.assertTrue(out[0]["on"])
        self.assertEqual(out[0]["applied"], ["switch maintenance on"])
        self.assertTrue(out[1]["ignored"])

    def test_malformed_json_is_exit_4_and_records_nothing(self):
        p = self.run_cli("handle", stdin='{"Records": [', check=4)
        self.assertIn("malformed JSON", p.stderr)
        self.assertEqual(self.steps(), [])

    def test_unreadable_file_is_exit_4(self):
        p = self.run_cli("handle", "/nonexistent.json", check=4)
        self.assertIn("/nonexistent.json", p.stderr)


class Operator(Workspace):
    def test_on_off_with_reason_who_and_expiry(self):
        p = self.run_cli("on", "staging", "--reason", "database upgrade", "--for", "30m", check=0)
        self.assertIn("staging: maintenance on", p.stdout)
        st = self.status()["staging"]
        self.assertTrue(st["on"])
        self.assertEqual(st["hold"]["who"], "tester")
        self.assertEqual(st["hold"]["reason"], "database upgrade")
        self.assertIsNotNone(st["hold"]["until"])
        self.assertEqual(st["expected_end"], st["hold"]["until"])
        self.assertEqual(self.steps()[-1]["reason"], "database upgrade")
        self.run_cli("off", "staging", check=0)
        self.assertFalse(self.status()["staging"]["on"])
        kinds = [a["kind"] for a in self.status()["staging"]["recent"]]
        self.assertIn("hold", kinds)
        self.assertIn("lifted", kinds)

    def test_the_database_the_cli_creates_is_not_world_readable(self):
        # Whatever the shell's umask: the ledger holds reasons, names and deployment ids.
        old = os.umask(0o022)
        try:
            self.run_cli("on", "staging", "--reason", "secret project", check=0)
        finally:
            os.umask(old)
        db = os.path.join(self.dir, "state.db")
        for path in [db, db + "-wal", db + "-shm"]:
            if os.path.exists(path):
                self.assertEqual(os.stat(path).st_mode & 0o077, 0, f"{path}: {oct(os.stat(path).st_mode)}")
        self.assertTrue(os.path.exists(db))

    def test_operator_off_wins_over_a_running_deployment(self):
        self.handle(codedeploy("d-1", "IN_PROGRESS"))
        self.assertTrue(self.status()["prod"]["on"])
        self.run_cli("off", "prod", "--who", "alice", check=0)
        self.assertFalse(self.status()["prod"]["on"])
        self.handle(codedeploy("d-2", "CREATED"))
        self.assertTrue(self.status()["prod"]["on"], "a new deployment raises the page again")

    def test_usage_errors(self):
        self.assertIn("not a duration", self.run_cli("on", "prod", "--for", "soon", check=2).stderr)
        self.assertIn("in the past",
                      self.run_cli("on", "prod", "--until", "2001-01-01T00:00:00Z", check=2).stderr)
        self.assertIn("no environment 'qa'", self.run_cli("on", "qa", check=2).stderr)
        self.run_cli("on", check=2)
        self.run_cli("bogus", check=2)
        self.run_cli("status", "--colour", check=2)

    def test_far_future_holds_are_refused_and_never_wedge_the_environment(self):
        p = self.run_cli("on", "prod", "--for", "9999999d", check=2)
        self.assertIn("longer than 36500d", p.stderr)
        self.assertIn("longer than", self.run_cli("on", "prod", "--for", "1099511627776d",
                                                     check=2).stderr)
        self.assertIn("longer than 0s", self.run_cli("on", "prod", "--for", "0s", check=2).stderr)
        self.assertIn("years up to 9999",
                      self.run_cli("on", "prod", "--until", "10000-01-01T00:00:00Z",
                                   check=2).stderr)
        # The longest hold accepted, and an operator event with an `until` of 10^12 seconds:
        # both stay readable, and `off` still works afterwards.
        self.run_cli("on", "prod", "--for", "36500d", check=0)
        self.assertTrue(self.status()["prod"]["on"])
        p = self.handle({"operator": {"environment": "prod", "action": "on",
                                      "until": "1000000000000"}}, check=2)
        self.assertIn("refused", p.stderr)
        self.run_cli("on", "prod", "--until", "9999-12-31T23:59:59Z", check=0)
        self.assertTrue(self.status()["prod"]["on"])
        self.run_cli("off", "prod", check=0)
        self.assertFalse(self.status()["prod"]["on"])

    # Text that is not UTF-8 (a Latin-1 terminal's "café") used to be written, then the state
    # could not be read back and the environment was stuck. It is refused where it comes in,
    # naming the field, before anything is written.
    def test_text_that_is_not_utf8_is_refused_before_anything_is_written(self):
        latin1 = "caf\udce9 closed"  # the bytes "caf\xe9 closed" on the command line
        for args, field in [
            (["on", "prod", "--reason", latin1], "--reason"),
            (["off", "prod", "--who", "j\udcf6rg"], "--who"),
            (["schedule", "prod", "--at", "+1h", "--for", "1h", "--reason", "\udcff"], "--reason"),
            (["lease", "break", "prod", "--reason", latin1], "--reason"),
        ]:
            with self.subTest(args=args):
                p = self.run_cli(*args, check=2)
                self.assertIn(f"{field} is not valid UTF-8", p.stderr)
        env = dict(os.environ, USER="j\udcf6rg")
        env.pop("SUDO_USER", None)
        p = subprocess.run([BIN, "--config", self.config, "on", "prod"], capture_output=True,
                           text=True, cwd=self.dir, env=env, timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("$USER", p.stderr)
        self.assertIn("--who", p.stderr)
        st = self.status()["prod"]
        self.assertFalse(st["on"])
        self.assertEqual(st["version"], 0, "nothing was written")
        self.run_cli("on", "prod", "--reason", "caf\u00e9 closed", check=0)
        self.assertEqual(self.status()["prod"]["hold"]["reason"], "caf\u00e9 closed")

    def test_a_state_stored_with_latin1_text_by_an_older_version_loads_again(self):
        self.status()  # creates the database
        state = (b'{"format":1,"deployments":[],"hold":{"on":true,"reason":"caf\xe9 closed",'
                 b'"who":"j\xf6rg","since":"2026-01-01T00:00:00.000Z","until":null},'
                 b'"applied":{"on":false,"since":null,"reason":""},"recent_message_ids":[],'
                 b'"windows":[],"last_window_id":0}')
        with sqlite3.connect(os.path.join(self.dir, "state.db")) as db:
            db.execute("INSERT OR REPLACE INTO environments(name, version, state) "
                       "VALUES('prod', 1, CAST(? AS TEXT))", (state,))
        for args in [["status"], ["status", "prod"], ["tick"], ["schedule", "prod", "--list"],
                     ["off", "prod"]]:
            with self.subTest(args=args):
                p = subprocess.run([BIN, "--config", self.config, *args], capture_output=True,
                                   cwd=self.dir, env=dict(os.environ, USER="tester"), timeout=60)
                self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIsNone(self.status()["prod"]["hold"])

    def put_state(self, environment, text):
        self.status()  # creates the database
        with sqlite3.connect(os.path.join(self.dir, "state.db")) as db:
            db.execute("INSERT OR REPLACE INTO environments(name, version, state) VALUES(?, 1, ?)",
                       (environment, text))

    def test_status_reports_an_unreadable_environment_and_carries_on(self):
        self.put_state("prod", "not a state")
        p = self.run_cli("status", check=1)
        self.assertIn("prod: unreadable:", p.stdout)
        self.assertIn("staging: maintenance off", p.stdout)
        p = self.run_cli("status", "--json", check=1)
        envs = {e["environment"]: e for e in json.loads(p.stdout)["environments"]}
        self.assertIn("not JSON", envs["prod"]["error"])
        self.assertFalse(envs["staging"]["on"])
        self.run_cli("status", "staging", check=0)
        self.run_cli("status", "prod", check=1)

    def test_only_the_window_rules_refuse_other_errors_are_errors(self):
        self.put_state("prod", "not a state")
        p = self.run_cli("schedule", "prod", "--at", "+1h", "--for", "1h", check=1)
        self.assertNotIn("refused", p.stderr)
        self.assertIn("not JSON", p.stderr)
        p = self.run_cli("schedule", "staging", "--at", "2001-01-01T00:00:00Z", "--for", "1h",
                         check=2)
        self.assertIn("refused", p.stderr)

    def test_operator_commands_through_handle_are_checked_as_the_cli_checks_them(self):
        for command, why in [
            ({"until": "2001-01-01T00:00:00Z"}, "in the past"),
            ({"for": "30m", "until": "2999-01-01T00:00:00Z"}, "not both"),
            ({"until": 900000000000}, "years 0000-9999"),
            ({"for": "soon"}, "not a duration"),
            ({"reason": "x", "who": ""}, None),
        ]:
            with self.subTest(command=command):
                op = dict({"environment": "prod", "action": "on"}, **command)
                if why is None:
                    self.handle({"operator": op}, check=0)
                    continue
                p = self.handle([{"operator": {"environment": "staging", "action": "on"}},
                                 {"operator": op}], check=2)
                self.assertIn(why, p.stderr)
                self.assertFalse(self.status()["staging"]["on"], "nothing of the input is done")

    def put_lease(self, holder):
        self.status()  # creates the database
        with sqlite3.connect(os.path.join(self.dir, "state.db")) as db:
            db.execute("INSERT OR REPLACE INTO leases(environment, holder, until_ms) "
                       "VALUES('prod', ?, ?)", (holder, int(time.time() * 1000) + 600_000))

    def test_lease_break_ends_a_dead_holders_lease_and_audits_it(self):
        self.put_lease(f"{socket.gethostname()}/999999999/0badc0de")  # no such pid
        self.assertEqual(self.status()["prod"]["switching"]["holder"],
                         f"{socket.gethostname()}/999999999/0badc0de")
        p = self.run_cli("lease", "break", "prod", "--reason", "crashed mid-switch", check=0)
        self.assertIn("broken by tester", p.stdout)
        self.assertIsNone(self.status()["prod"]["switching"])
        recent = self.status()["prod"]["recent"]
        broken = [a for a in recent if a["kind"] == "lease-broken"]
        self.assertEqual(len(broken), 1, recent)
        self.assertIn("crashed mid-switch", broken[0]["message"])
        self.assertIn("no switching lease", self.run_cli("lease", "break", "prod", check=0).stdout)

    def test_lease_break_is_refused_while_the_holder_is_alive_here(self):
        holder = f"{socket.gethostname()}/{os.getpid()}/12345678"
        self.put_lease(holder)
        p = self.run_cli("lease", "break", "prod", check=1)
        self.assertIn("refused", p.stderr)
        self.assertIn("alive on this host", p.stderr)
        self.assertEqual(self.status()["prod"]["switching"]["holder"], holder)
        self.assertNotIn("lease-broken", [a["kind"] for a in self.status()["prod"]["recent"]])
        # The pid and when that process started: still this test, refused; the same pid with
        # another start is a dead holder whose pid was reused (a daemon restarted in its
        # container is pid 1 again), and the lease can be broken.
        with open(f"/proc/{os.getpid()}/stat") as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19])
        self.put_lease(f"{socket.gethostname()}/{os.getpid()}.{start}/12345678")
        self.assertIn("alive on this host", self.run_cli("lease", "break", "prod", check=1).stderr)
        self.put_lease(f"{socket.gethostname()}/{os.getpid()}.{start + 1}/12345678")
        self.run_cli("lease", "break", "prod", check=0)
        # A holder on another host cannot be checked from here: the operator's word counts.
        self.put_lease("elsewhere.example/1/12345678")
        self.run_cli("lease", "break", "prod", check=0)
        self.run_cli("lease", "mend", "prod", check=2)

    def test_help_everywhere(self):
        for cmd in ["on", "off", "status", "handle", "tick", "check-config"]:
            with self.subTest(cmd=cmd):
                p = self.run_cli(cmd, "--help", check=0)
                self.assertIn(f"Usage: intermission {cmd}", p.stdout)
        self.assertIn("Exit codes", self.run_cli("--help", check=0).stdout)

    def test_status_text(self):
        self.handle(codedeploy("d-7", "CREATED"))
        p = self.run_cli("status", "prod", check=0)
        self.assertIn("prod: maintenance ON since", p.stdout)
        self.assertIn("deployment d-7 Created (shop/prod-web", p.stdout)


class CheckConfig(Workspace):
    config_text = """\
store:
  path: state.db
environments:
  prod:
    backend: {type: log}
    max_duration: forever
"""

    def test_reports_file_line_and_field(self):
        p = self.run_cli("check-config", check=3)
        self.assertIn(f"{self.config}:6:19: environments.prod.max_duration: 'forever' is not a "
                      "duration", p.stderr)
        self.assertIn("environments.prod.backend.path: missing", p.stderr)
        self.assertIn("2 mistakes", p.stderr)
        # Every command refuses to run on a bad config.
        self.run_cli("status", check=3)

    def test_a_repeated_key_is_named_with_its_line(self):
        with open(self.config, "w") as f:
            f.write("store:\n  path: state.db\nenvironments:\n  prod:\n    backend: {type: log}\n"
                    "  prod:\n    backend: {type: log, path: x.log}\n")
        p = self.run_cli("check-config", check=3)
        self.assertIn("config.yaml:6:3: environments.prod: repeated key (first at line 4, column 3)",
                      p.stderr + p.stdout)

    def test_valid(self):
        with open(self.config, "w") as f:
            f.write("environments:\n  prod:\n    backend: {type: log, path: s.log}\n")
        self.assertIn("valid (1 environment, 0 routes)", self.run_cli("check-config", check=0).stdout)


class Tick(Workspace):
    config_text = """\
store:
  path: state.db
routes:
  - deployment_group: "*-*"
    environment: "{1}"
environments:
  prod:
    backend: {type: log, path: steps.log}
    max_duration: 1s
"""

    def test_tick_expires_a_stuck_deployment_loudly(self):
        import time
        self.handle(codedeploy("d-stuck", "CREATED"))
        self.assertTrue(self.status()["prod"]["on"])
        time.sleep(1.2)
        p = self.run_cli("tick", check=0)
        self.assertIn('"level":"error"', p.stderr)
        self.assertIn("max_duration", p.stderr)
        self.assertFalse(self.status()["prod"]["on"])
        self.assertEqual([s["on"] for s in self.steps()], [True, False])


class Schedule(Workspace):
    def test_schedule_list_change_cancel(self):
        p = self.run_cli("schedule", "prod", "--at", "+1h", "--for", "30m", "--reason",
                         "database upgrade", check=0)
        self.assertIn("prod: window w1 scheduled", p.stdout)
        self.assertIn("maintenance off", p.stdout)
        listing = self.run_cli("schedule", "prod", "--list", check=0).stdout
        self.assertRegex(listing, r"w1  \S+Z  \S+Z  upcoming  by tester: database upgrade")
        [w] = json.loads(self.run_cli("schedule", "prod", "--list", "--json", check=0).stdout)[
            "windows"]
        self.assertEqual((w["id"], w["active"], w["who"]), ("w1", False, "tester"))
        st = self.status()["prod"]
        self.assertFalse(st["on"])
        self.assertEqual([x["id"] for x in st["windows"]], ["w1"])
        self.assertIn("window w1 ", self.run_cli("status", "prod", "--no-observe").stdout)

        self.run_cli("schedule", "prod", "--change", "w1", "--until", "2099-01-01T00:00:00Z",
                     check=0)
        [w] = json.loads(self.run_cli("schedule", "prod", "--list", "--json").stdout)["windows"]
        self.assertEqual(w["end"], "2099-01-01T00:00:00.000Z")
        self.run_cli("schedule", "prod", "--cancel", "w1", check=0)
        self.assertIn("no windows", self.run_cli("schedule", "prod", "--list").stdout)
        p = self.run_cli("schedule", "prod", "--cancel", "w1", check=2)
        self.assertIn("no upcoming or active window 'w1'", p.stderr)
        kinds = [a["kind"] for a in self.status()["prod"]["recent"]]
        windows = [k for k in kinds if k.startswith("window-")]
        self.assertEqual(windows, ["window-scheduled", "window-changed", "window-cancelled"])

    def test_bad_windows_are_refused_clearly(self):
        cases = [
            (["--at", "2001-01-01T00:00:00Z", "--for", "1h"], "in the past"),
            (["--at", "+1h", "--until", "2001-01-01T00:00:00Z"], "after its start"),
            (["--at", "+40000d", "--for", "1h"], "longer than"),
            (["--at", "9000-01-01T00:00:00Z", "--for", "1h"], "too far ahead"),
            (["--at", "99999-01-01T00:00:00Z", "--for", "1h"], "years up to 9999"),
            (["--at", "+1h"], "--for or --until is required"),
            (["--for", "1h"], "--at is required"),
            (["--at", "+1h", "--for", "1h", "--until", "2999-01-01T00:00:00Z"], "not both"),
        ]
        for args, why in cases:
            with self.subTest(args=args):
                p = self.run_cli("schedule", "prod", *args, check=2)
                self.assertIn(why, p.stderr)
        self.assertEqual(self.status()["prod"]["windows"], [])

    def test_operator_times_need_a_zone_and_offsets_are_converted(self):
        p = self.run_cli("schedule", "prod", "--at", "2099-01-31T18:00:00", "--for", "1h", check=2)
        self.assertIn("has no zone", p.stderr)
        p = self.run_cli("on", "prod", "--until", "2099-01-31T18:00:00", check=2)
        self.assertIn("has no zone", p.stderr)
        p = self.run_cli("schedule", "prod", "--at", "2099-01-31T12:00:60Z", "--for", "1h", check=2)
        self.assertIn("23:59:60", p.stderr)
        self.run_cli("schedule", "prod", "--at", "2099-01-31T19:00:00+01:00",
                     "--until", "2099-01-31T23:59:60Z", check=0)
        w = self.status()["prod"]["windows"][0]
        self.assertEqual(w["start"], "2099-01-31T18:00:00.000Z")
        self.assertEqual(w["end"], "2099-02-01T00:00:00.000Z")
        self.run_cli("on", "staging", "--until", "2099-01-31T12:30:00-05:30", check=0)
        self.assertEqual(self.status()["staging"]["hold"]["until"], "2099-01-31T18:00:00.000Z")

    def test_a_window_now_raises_the_page_and_tick_lowers_it_after(self):
        # Five seconds: `status` runs inside the window however slow the machine is.
        self.run_cli("schedule", "prod", "--at", "+0s", "--for", "5s", "--reason", "now",
                     check=0)
        st = self.status()["prod"]
        self.assertTrue(st["on"])
        self.assertEqual(self.steps()[-1]["on"], True)
        time.sleep(5.1)
        self.run_cli("tick", check=0)
        st = self.status()["prod"]
        self.assertFalse(st["on"])
        self.assertEqual(st["windows"], [])
        self.assertEqual([s["on"] for s in self.steps() if s["environment"] == "prod"],
                         [True, False])
        kinds = [a["kind"] for a in st["recent"]]
        self.assertIn("window-started", kinds)
        self.assertIn("window-ended", kinds)


if __name__ == "__main__":
    unittest.main()
