"""Starts and drives testing/fake_aws/fake_aws.py for a test."""

import json
import os
import subprocess
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "testing", "fake_aws", "fake_aws.py")
KEY, SECRET, TOKEN = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "FAKE-SESSION-TOKEN/+=="


class FakeAws:
    def __init__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-fake-aws-")
        port_file = os.path.join(self._tmp.name, "port")
        self.proc = subprocess.Popen(["/usr/bin/python3", FAKE, "--port-file", port_file],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while not os.path.exists(port_file):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("fake AWS did not start: " + self.proc.stderr.read().decode())
            time.sleep(0.05)
        with open(port_file) as f:
            self.port = int(f.read())
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._tmp.cleanup()

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def setup(self, **world):
        return self._call("POST", "/__fake/setup", world)

    def fail(self, action, *faults):
        return self._call("POST", "/__fake/fail", {"action": action, "faults": list(faults)})

    def instance(self, iid, healthy=None, booting=None):
        """healthy=False: the instance fails its health checks; booting=True: its application
        is still starting, so its registration stays in progress until booting=False."""
        body = {"id": iid}
        if healthy is not None:
            body["healthy"] = healthy
        if booting is not None:
            body["booting"] = booting
        return self._call("POST", "/__fake/instance", body)

    def timeline(self):
        return self._call("GET", "/__fake/timeline")

    def zone_timeline(self):
        return self._call("GET", "/__fake/zone-timeline")

    def drained(self, lb, iid):
        """The instance's in-flight requests ended: its draining ends now."""
        return self._call("POST", "/__fake/drained", {"lb": lb, "id": iid})

    def group(self, name, instances, zone="eu-west-1a"):
        """Scales an Auto Scaling group in or out to exactly `instances`."""
        return self._call("POST", "/__fake/group", {"name": name, "instances": instances, "zone": zone})

    def advance(self, seconds):
        """Moves the fake's clock on: timed behaviour is checked without racing real time."""
        return self._call("POST", "/__fake/clock", {"advance": seconds})

    def calls(self):
        return self._call("GET", "/__fake/calls")

    def state(self):
        return self._call("GET", "/__fake/state")

    def env(self, **overrides):
        """The environment an AWS client needs to talk to this fake."""
        e = dict(os.environ, AWS_ENDPOINT_URL=self.url, AWS_ACCESS_KEY_ID=KEY,
                 AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN=TOKEN, AWS_REGION="eu-west-1",
                 AWS_DEFAULT_REGION="eu-west-1", AWS_EC2_METADATA_DISABLED="true", AWS_PAGER="",
                 AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        e.update(overrides)
        return e
