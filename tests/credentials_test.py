"""Credentials as the AWS CLI finds them (aws-behaviour.md §13), each source end to end: the real
binary switches a Classic ELB on the fake AWS with no keys in its environment, only the source
under test — web identity (STS AssumeRoleWithWebIdentity, EKS IRSA), a profile with static
keys, role_arn + source_profile (STS AssumeRole signed with the source profile's keys),
credential_process, container credentials with the EKS Pod Identity token file — and the cache:
credentials still valid survive a failed refresh, expired ones are never sent."""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from fake_aws import KEY, SECRET, FakeAws  # noqa: E402
from harness import BIN, codedeploy  # noqa: E402

ROLE = "arn:aws:iam::111122223333:role/intermission-irsa"
DEPLOYER = "arn:aws:iam::111122223333:role/intermission-deployer"
JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImZha2UifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDppbnRlcm1pc3Npb24ifQ.c2lnbmF0dXJl"
JWT_ROTATED = JWT.replace("c2lnbmF0dXJl", "cm90YXRlZA")

CONFIG = """\
store: {path: state.db}
aws:
  max_attempts: 2
routes:
  - deployment_group: "*-*"
    environment: "{1}"
environments:
  prod:
    backend:
      type: elb-classic
      load_balancer: web-lb
      auto_scaling_group: web-asg
      page_instances: [i-page1]
      min_healthy: 2
      health_timeout: %s
      poll_interval: 50ms
"""

# No credentials anywhere but the source a test adds.
NO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
                  "AWS_PROFILE": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ROLE_ARN": "",
                  "AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
                  "AWS_EC2_METADATA_DISABLED": "true"}


def sns(message, message_id):
    return {"Records": [{"EventSource": "aws:sns", "Sns": {
        "Type": "Notification", "MessageId": message_id,
        "TopicArn": "arn:aws:sns:eu-west-1:111122223333:deployments",
        "Message": json.dumps(message)}}]}


class Base(unittest.TestCase):
    """A fake AWS, an ELB to switch, and helpers; no tests."""

    health_timeout = "3s"

    def setUp(self):
        self.fake = FakeAws()
        self.fake.setup(
            instances={"i-page1": "eu-west-1a"},
            load_balancers=[{"name": "web-lb", "interval": 0.1, "healthy_threshold": 2}],
            groups=[{"name": "web-asg", "instances": ["i-app1", "i-app2"], "load_balancers": ["web-lb"]}],
            deployments={"d-1": {"creator": "user", "status": "InProgress"}})
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-creds-")
        self.dir = self._tmp.name
        self.config = self.path("config.yaml", CONFIG % self.health_timeout)
        # The AWS files a test writes; empty ones until then.
        self.aws_config = self.path("aws-config", "")
        self.aws_credentials = self.path("aws-credentials", "")

    def tearDown(self):
        self.fake.stop()
        self._tmp.cleanup()

    def path(self, name, text):
        p = os.path.join(self.dir, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def sts(self, **settings):
        req = urllib.request.Request(self.fake.url + "/__fake/sts", data=json.dumps(settings).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def switch_on(self, check=0, **env):
        """`intermission handle` of a deployment's start, with only `env`'s credentials."""
        full = self.fake.env(**NO_CREDENTIALS)
        full.update(AWS_CONFIG_FILE=self.aws_config, AWS_SHARED_CREDENTIALS_FILE=self.aws_credentials)
        full.update(env)
        p = subprocess.run([BIN, "--config", self.config, "handle"], capture_output=True, text=True,
                           cwd=self.dir, env=full, timeout=120,
                           input=json.dumps(sns(codedeploy("d-1", "CREATED"), "m-1")))
        if check is not None:
            self.assertEqual(p.returncode, check, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def in_maintenance(self):
        s = self.fake.state()
        return s["groups"]["web-asg"] == {"web-lb": "Removed"} and \
            s["lbs"]["web-lb"] == {"i-page1": "InService"}

    def calls(self, action=None, code=None):
        return [c for c in self.fake.calls()
                if (action is None or c["action"] == action) and (code is None or c["code"] == code)]


class Credentials(Base):
    def test_web_identity_from_the_environment_rereads_the_token_file(self):
        """EKS IRSA: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN -> AssumeRoleWithWebIdentity; the
        temporary credentials then sign every call. The token file is read at each refresh (the
        kubelet rotates it): short-lived credentials are refreshed during the run, and the
        rotated token is what STS sees next."""
        token_file = self.path("token", JWT)
        self.sts(web_identity_token=[JWT, JWT_ROTATED], web_identity_roles=[ROLE], expires_in=200)
        # The switch cannot end before the rotated token has been used: the page instance fails
        # its health checks until the test has seen STS take the rotated token (no race with
        # how fast the switch is).
        self.config = self.path("config.yaml", CONFIG % "60s")
        self.fake.instance("i-page1", healthy=False)

        def issued_with(token):
            return any(i["token"] == token for i in self.sts()["issued"])

        def rotate():  # once the first credentials are out, rotate the token
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not issued_with(JWT):
                time.sleep(0.01)
            os.replace(self.path("token.new", JWT_ROTATED), token_file)  # atomic, as the kubelet's swap
            while time.monotonic() < deadline and not issued_with(JWT_ROTATED):
                time.sleep(0.01)
            self.fake.instance("i-page1", healthy=True)
        rotator = threading.Thread(target=rotate)
        rotator.start()
        self.switch_on(AWS_WEB_IDENTITY_TOKEN_FILE=token_file, AWS_ROLE_ARN=ROLE,
                       AWS_ROLE_SESSION_NAME="intermission-test")
        rotator.join()
        self.assertTrue(self.in_maintenance())
        issued = self.sts()["issued"]
        self.assertEqual({i["action"] for i in issued}, {"AssumeRoleWithWebIdentity"})
        self.assertEqual({i["session"] for i in issued}, {"intermission-test"})
        self.assertEqual(issued[0]["token"], JWT)
        self.assertEqual(issued[-1]["token"], JWT_ROTATED, "the token file is re-read at refresh")
        self.assertFalse(self.calls(code="ExpiredToken"))

    def test_web_identity_with_a_wrong_token_is_refused(self):
        self.sts(web_identity_token=JWT, web_identity_roles=[ROLE])
        p = self.switch_on(check=1, AWS_WEB_IDENTITY_TOKEN_FILE=self.path("token", "not-the-token"),
                           AWS_ROLE_ARN=ROLE)
        self.assertIn("InvalidIdentityToken", p.stderr)
        self.assertFalse(self.in_maintenance())

    def test_profile_with_static_keys_and_its_region(self):
        """AWS_PROFILE names a profile: keys from the credentials file, the region from the
        config file's [profile x] (no aws.region, no AWS_REGION)."""
        self.path("aws-credentials", f"[ops]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n")
        self.path("aws-config", "[profile ops]\nregion = eu-west-1\noutput = json\n")
        self.switch_on(AWS_PROFILE="ops", AWS_REGION="", AWS_DEFAULT_REGION="")
        self.assertTrue(self.in_maintenance())

    def test_default_profile_when_none_is_named(self):
        self.path("aws-credentials", f"[default]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n")
        self.switch_on()
        self.assertTrue(self.in_maintenance())

    def test_role_arn_with_source_profile(self):
        """[profile deployer] role_arn + source_profile = base: STS AssumeRole signed with base's
        keys; the role's credentials switch the ELB."""
        self.path("aws-credentials", f"[base]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n")
        self.path("aws-config", f"[profile deployer]\nrole_arn = {DEPLOYER}\nsource_profile = base\n"
                                "role_session_name = deployer-session\n")
        self.sts(assumable_roles={DEPLOYER: [KEY]})
        self.switch_on(AWS_PROFILE="deployer")
        self.assertTrue(self.in_maintenance())
        issued = self.sts()["issued"]
        self.assertEqual([(i["action"], i["role"], i["session"]) for i in issued],
                         [("AssumeRole", DEPLOYER, "deployer-session")])
        self.assertTrue(self.calls("AssumeRole"), "AssumeRole went through the signature check")

    def test_role_arn_with_credential_source_ecs_container(self):
        """[profile deployer] role_arn + credential_source = EcsContainer: the container's
        credentials (as EKS Pod Identity hands them out) sign STS AssumeRole for the role."""
        self.path("aws-config", f"[profile deployer]\nrole_arn = {DEPLOYER}\n"
                                "credential_source = EcsContainer\n")
        self.sts(assumable_roles={DEPLOYER: ["ASIAFAKETEMPORARY"]})
        self.switch_on(AWS_PROFILE="deployer",
                       AWS_CONTAINER_CREDENTIALS_FULL_URI=self.fake.url + "/container-credentials",
                       AWS_CONTAINER_AUTHORIZATION_TOKEN="container-auth-token")
        self.assertTrue(self.in_maintenance())
        self.assertEqual([(i["action"], i["role"]) for i in self.sts()["issued"]],
                         [("AssumeRole", DEPLOYER)])

    def test_credential_source_mistakes_name_the_setting(self):
        self.path("aws-config", f"[profile both]\nrole_arn = {DEPLOYER}\nsource_profile = base\n"
                                "credential_source = Environment\n"
                                f"[profile odd]\nrole_arn = {DEPLOYER}\ncredential_source = Laptop\n")
        p = self.switch_on(check=3, AWS_PROFILE="both")  # a configuration error
        self.assertIn(f"{self.aws_config}:4: profile both has both source_profile and "
                      "credential_source", p.stderr)
        p = self.switch_on(check=3, AWS_PROFILE="odd")
        self.assertIn(f"{self.aws_config}:7: credential_source 'Laptop' is not Environment, "
                      "EcsContainer or Ec2InstanceMetadata", p.stderr)
        self.assertFalse(self.in_maintenance())

    def test_role_arn_the_role_does_not_trust_names_the_setting(self):
        self.path("aws-credentials", f"[base]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n")
        self.path("aws-config", f"[profile deployer]\nrole_arn = {DEPLOYER}\nsource_profile = base\n")
        p = self.switch_on(check=1, AWS_PROFILE="deployer")
        self.assertIn("AccessDenied", p.stderr)
        self.assertIn(self.aws_config + ":2", p.stderr, "the error names the file and line")

    def test_role_arn_with_web_identity_token_file_in_a_profile(self):
        self.sts(web_identity_token=JWT, web_identity_roles=[ROLE])
        self.path("aws-config", f"[profile irsa]\nrole_arn = {ROLE}\n"
                                f"web_identity_token_file = {self.path('token', JWT)}\n")
        self.switch_on(AWS_PROFILE="irsa")
        self.assertTrue(self.in_maintenance())
        self.assertEqual([i["action"] for i in self.sts()["issued"]], ["AssumeRoleWithWebIdentity"])

    def test_credential_process(self):
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        script = self.path("get-creds.py", "import json\nprint(json.dumps({'Version': 1, "
                           f"'AccessKeyId': {KEY!r}, 'SecretAccessKey': {SECRET!r}, 'Expiration': {expires!r}}}))\n")
        self.path("aws-config", f"[default]\ncredential_process = /usr/bin/python3 {script}\n")
        self.switch_on()
        self.assertTrue(self.in_maintenance())

    def test_credential_process_that_fails_names_the_setting(self):
        self.path("aws-config", "[profile broken]\nregion = eu-west-1\ncredential_process = /bin/false\n")
        p = self.switch_on(check=1, AWS_PROFILE="broken")
        self.assertIn(f"credential_process at {self.aws_config}:3", p.stderr)
        self.assertFalse(self.in_maintenance())

    def test_container_credentials_with_the_token_file(self):
        """EKS Pod Identity: AWS_CONTAINER_CREDENTIALS_FULL_URI with the token in
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, which wins over AWS_CONTAINER_AUTHORIZATION_TOKEN."""
        self.switch_on(AWS_CONTAINER_CREDENTIALS_FULL_URI=self.fake.url + "/container-credentials",
                       AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=self.path("pod-token", "container-auth-token\n"),
                       AWS_CONTAINER_AUTHORIZATION_TOKEN="stale-token")
        self.assertTrue(self.in_maintenance())

    # ------------------------------------------------------------------ the cache
    def test_valid_cached_credentials_survive_a_failed_refresh(self):
        """Credentials valid for 200 s are inside the 5-minute refresh margin: every call tries
        to refresh. STS fails after the first issue; the run still succeeds on the cached
        credentials, and says so."""
        self.sts(web_identity_token=JWT, web_identity_roles=[ROLE], expires_in=200)
        self.fake.fail("AssumeRoleWithWebIdentity", "pass", *["503"] * 50)
        p = self.switch_on(AWS_WEB_IDENTITY_TOKEN_FILE=self.path("token", JWT), AWS_ROLE_ARN=ROLE)
        self.assertTrue(self.in_maintenance())
        self.assertTrue(self.calls("AssumeRoleWithWebIdentity", "ServiceUnavailable"),
                        "a refresh was attempted and failed")
        self.assertIn("refresh failed", p.stderr)
        self.assertEqual(len(self.sts()["issued"]), 1)


class ExpiredCredentials(Base):
    """Credentials that expire during the run while STS keeps failing are not sent: the call
    fails with a clear error instead of an ExpiredToken from AWS."""

    # Valid for 10 s, of which the last 2 are not used: several seconds of calls with them
    # (however slow the machine) and then a wait past their expiry.
    health_timeout = "20s"

    def test_expired_credentials_are_not_used(self):
        self.sts(web_identity_token=JWT, web_identity_roles=[ROLE], expires_in=10)
        self.fake.fail("AssumeRoleWithWebIdentity", "pass", *["503"] * 400)
        self.fake.instance("i-page1", healthy=False)  # the switch waits, polling, past expiry
        p = self.switch_on(check=None, AWS_WEB_IDENTITY_TOKEN_FILE=self.path("token", JWT),
                           AWS_ROLE_ARN=ROLE)
        self.assertNotEqual(p.returncode, 0, p.stderr)
        self.assertIn("expired at", p.stderr)
        self.assertIn("could not be refreshed", p.stderr)
        self.assertFalse(self.calls(code="ExpiredToken"), "no request was signed with them")
        self.assertTrue(self.calls("DescribeInstanceHealth"), "they were used while valid")


if __name__ == "__main__":
    unittest.main()
