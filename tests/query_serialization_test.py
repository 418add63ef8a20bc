"""Every Query-protocol request the binary sends (Classic ELB, Auto Scaling, ELBv2) is
byte-identical to what botocore's own serializer makes of the same parameters: the parameters
in the order of the operation's input shape (as the AWS CLI builds them), Action and Version
first, encoded as Python's urlencode does (space as '+', A-Za-z0-9-_.~ kept). AWS accepts any
correct encoding, but emulators re-encode the form to check the signature and reject anything
else (aws-behaviour.md §10). The values hold spaces, '+', '/', '~', '*' and non-ASCII text.

The bodies come from the fake AWS's call log; every `.query("...")` and `form_body("...")` in
src/adapters/aws must show up in it, so a new call cannot slip past this check. STS's
AssumeRole carries a profile's optional external_id and duration_seconds in its shape's order."""

import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
import urllib.request

import botocore.session
from botocore.awsrequest import AWSRequest
from botocore.serialize import create_serializer

sys.path.insert(0, os.path.dirname(__file__))
from fake_aws import KEY, SECRET, TOKEN, FakeAws  # noqa: E402
from harness import BIN, codedeploy  # noqa: E402

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "adapters", "aws")
ODD = "+/~* é 日本 🎉"  # what every name and text below carries

LB = f"web lb{ODD}"
ASG = f"web asg{ODD}"
PAGE_ID = f"i-page {ODD}"
ACCOUNT = "arn:aws:elasticloadbalancing:eu-west-1:111122223333"
LISTENER = f"{ACCOUNT}:listener/app/web {ODD}/50dc6c495c0c9188/f2f7dc8efc522ab2"
TG_APP = f"{ACCOUNT}:targetgroup/app/73e2d6bc24d8a067"
TG_PAGE = f"{ACCOUNT}:targetgroup/page {ODD}/5dd4ab31d04a2d29"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6b3BzOmludGVybWlzc2lvbiJ9.c2ln"
PAGE = "<p>Back soon + more: a/b ~ c * d é 日本 🎉 &amp; 100% 'quoted' \"too\"</p>\n"

# (signing name, API version) -> botocore's service name.
SERVICES = {("ec2", "2016-11-15"): "ec2",  # EC2's own dialect: its serializer is botocore's "ec2"
            ("elasticloadbalancing", "2012-06-01"): "elb",
            ("elasticloadbalancing", "2015-12-01"): "elbv2",
            ("autoscaling", "2011-01-01"): "autoscaling",
            ("sts", "2011-06-15"): "sts"}

CONFIG = f"""\
store: {{path: state.db}}
aws: {{region: eu-west-1, max_attempts: 2, codedeploy_lookup: false}}
routes:
  - deployment_group: "elb-*"
    environment: classic
  - deployment_group: "alb-*"
    environment: fixed
  - deployment_group: "tg-*"
    environment: target
environments:
  classic:
    backend:
      type: elb-classic
      load_balancer: {json.dumps(LB, ensure_ascii=False)}
      auto_scaling_group: {json.dumps(ASG, ensure_ascii=False)}
      page_instances: [{json.dumps(PAGE_ID, ensure_ascii=False)}]
      min_healthy: 1
      health_timeout: 5s
      poll_interval: 50ms
  fixed:
    backend:
      type: alb
      listeners: [{json.dumps(LISTENER, ensure_ascii=False)}]
      hosts: ["shop é.example.com", "日本.example.com"]
      bypass_cidrs: [203.0.113.0/28]
      bypass_secret: {json.dumps("s3cret+/~é日本🎉", ensure_ascii=False)}
      page_file: page.html
  target:
    backend:
      type: alb
      mode: target-group
      listeners: [{json.dumps(LISTENER, ensure_ascii=False)}]
      hosts: ["tg é.example.com"]
      target_group: {json.dumps(TG_PAGE, ensure_ascii=False)}
      health_timeout: 2s
      poll_interval: 100ms
"""


def calls_in_source():
    """The Query actions our AWS code calls: every `.query("Action"` and `form_body("Action"`
    in src/adapters/aws."""
    found = set()
    for path in glob.glob(os.path.join(SRC, "*.cpp")):
        if path.endswith("_test.cpp"):
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
            found.update(re.findall(r'\.query\(\s*"([A-Za-z]+)"', text))
            found.update(re.findall(r'\bform_body\(\s*"([A-Za-z]+)"', text))
    return found


def parse_form(body):
    """The (name, value) pairs of a form body, in order, decoded."""
    from urllib.parse import unquote_plus
    pairs = []
    for part in body.split("&"):
        k, _, v = part.partition("=")
        pairs.append((unquote_plus(k, errors="strict"), unquote_plus(v, errors="strict")))
    return pairs


class Unflattener:
    """Rebuilds botocore's input parameters from flat Query pairs, in the shape's member order
    (how the AWS CLI builds them). A name that is no member of the shape is an error."""

    def __init__(self, flat, ec2=False):
        self.flat = flat
        self.ec2 = ec2  # EC2: members by queryName/locationName, list items as Name.N
        self.used = set()

    def member_key(self, name, member):
        if self.ec2:
            s = member.serialization
            if "queryName" in s:
                return s["queryName"]
            if "name" in s:
                return s["name"][0].upper() + s["name"][1:]
            return name
        return member.serialization.get("name", name)

    def has(self, prefix):
        return any(k == prefix or k.startswith(prefix + ".") for k in self.flat)

    def build(self, shape, prefix):
        t = shape.type_name
        if t == "structure":
            out = {}
            for name, member in shape.members.items():
                key = self.member_key(name, member)
                p = f"{prefix}.{key}" if prefix else key
                if self.has(p):
                    out[name] = self.build(member, p)
            return out
        if t == "list":
            assert not shape.serialization.get("flattened"), "flattened lists are not used"
            if self.flat.get(prefix) == "":
                self.used.add(prefix)
                return []
            item = shape.member.serialization.get("name", "member")
            at = (lambda i: f"{prefix}.{i}") if self.ec2 else (lambda i: f"{prefix}.{item}.{i}")
            out, i = [], 1
            while self.has(at(i)):
                out.append(self.build(shape.member, at(i)))
                i += 1
            return out
        if t == "map":
            raise AssertionError("maps are not used by our calls")
        self.used.add(prefix)
        value = self.flat[prefix]
        if t in ("integer", "long"):
            return int(value)
        if t == "boolean":
            return value == "true"
        return value


def botocore_body(service_model, action, pairs):
    """What botocore sends for these parameters: its Query serializer, then its request
    preparation (urlencode), exactly as boto3 and the AWS CLI do before signing."""
    op = service_model.operation_model(action)
    flat = dict(pairs)
    ec2 = service_model.protocol == "ec2"
    u = Unflattener(flat, ec2)
    params = u.build(op.input_shape, "") if op.input_shape is not None else {}
    unknown = set(flat) - u.used
    if unknown:
        raise AssertionError(f"{action}: {sorted(unknown)} are not members of its input shape")
    serialized = create_serializer("ec2" if ec2 else "query").serialize_to_request(params, op)
    prepared = AWSRequest(method="POST", url="https://aws.example/", data=serialized["body"],
                          headers=serialized["headers"]).prepare()
    body = prepared.body
    return body.encode("ascii") if isinstance(body, str) else body


class QuerySerialization(unittest.TestCase):
    def setUp(self):
        self.fake = FakeAws()
        self.fake.setup(
            instances={PAGE_ID: "eu-west-1a"},
            load_balancers=[{"name": LB, "interval": 0.1, "healthy_threshold": 2}],
            groups=[{"name": ASG, "instances": ["i-app1", "i-app2"], "load_balancers": [LB]}],
            target_groups={TG_APP: {"i-app1": True}, TG_PAGE: {"i-page1": True}},
            listeners=[{"arn": LISTENER, "target_group": TG_APP}],
            require_token=TOKEN)
        self._tmp = tempfile.TemporaryDirectory(prefix="intermission-query-")
        self.dir = self._tmp.name
        self.config = os.path.join(self.dir, "config.yaml")
        with open(self.config, "w", encoding="utf-8") as f:
            f.write(CONFIG)
        with open(os.path.join(self.dir, "page.html"), "w", encoding="utf-8") as f:
            f.write(PAGE)
        session = botocore.session.get_session()
        self.models = {k: session.get_service_model(v) for k, v in SERVICES.items()}

    def tearDown(self):
        self.fake.stop()
        self._tmp.cleanup()

    def cli(self, *args, stdin=None):
        p = subprocess.run([BIN, "--config", self.config, *args], input=stdin, capture_output=True,
                           text=True, cwd=self.dir, env=self.fake.env(), timeout=120)
        self.assertEqual(p.returncode, 0, f"{args}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def handle(self, deployment, status, group):
        self.cli("handle", stdin=json.dumps(codedeploy(deployment, status, group=group)))

    def assume_roles(self):
        """STS: AssumeRole from a profile with every optional setting we pass on, and
        AssumeRoleWithWebIdentity, each then signing a status call."""
        role = "arn:aws:iam::111122223333:role/deploy/intermission+role=x,y.z@w-1"
        sts = urllib.request.Request(
            self.fake.url + "/__fake/sts", method="POST",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"assumable_roles": {role: [KEY]}, "web_identity_token": JWT,
                             "web_identity_roles": [role]}).encode())
        urllib.request.urlopen(sts, timeout=10).close()
        files = {"aws-config": f"[profile deployer]\nrole_arn = {role}\nsource_profile = base\n"
                               "role_session_name = deploy+session=1,2.3@4-5\n"
                               "external_id = ext+id=/a@b:c,d.e-f\nduration_seconds = 1800\n",
                 "aws-credentials": f"[base]\naws_access_key_id = {KEY}\n"
                                    f"aws_secret_access_key = {SECRET}\n",
                 "token": JWT}
        for name, text in files.items():
            with open(os.path.join(self.dir, name), "w", encoding="utf-8") as f:
                f.write(text)
        no_keys = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
                   "AWS_CONFIG_FILE": os.path.join(self.dir, "aws-config"),
                   "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.dir, "aws-credentials")}
        for extra in ({"AWS_PROFILE": "deployer"},
                      {"AWS_ROLE_ARN": role, "AWS_ROLE_SESSION_NAME": "irsa+session",
                       "AWS_WEB_IDENTITY_TOKEN_FILE": os.path.join(self.dir, "token")}):
            p = subprocess.run([BIN, "--config", self.config, "status", "--json"],
                               capture_output=True, text=True, cwd=self.dir, timeout=120,
                               env=self.fake.env(**no_keys, **extra))
            self.assertEqual(p.returncode, 0, p.stderr)

    def test_every_query_call_is_byte_identical_to_botocore(self):
        # Each backend on and off: every call of each is made at least once.
        for group in ("elb-web", "alb-web", "tg-web"):
            self.handle(f"d-{group}", "CREATED", group)
            self.handle(f"d-{group}", "SUCCEEDED", group)
        self.cli("status", "--json")
        self.assume_roles()
        seen = set()
        checked = 0
        wrong, seen_wrong = [], set()
        for call in self.fake.calls():
            body = call.get("body", "").encode("latin-1")
            if not body.startswith(b"Action="):
                continue  # a JSON-protocol call
            pairs = parse_form(body.decode("ascii"))
            fields = dict(pairs)
            models = [m for (_, version), m in self.models.items() if version == fields["Version"]]
            self.assertEqual(len(models), 1, f"unknown API version in {body!r}")
            model = models[0]
            action = fields["Action"]
            self.assertEqual([k for k, _ in pairs[:2]], ["Action", "Version"], body)
            expected = botocore_body(model, action, pairs[2:])
            if body != expected and action not in seen_wrong:
                seen_wrong.add(action)
                wrong.append(f"{action}:\n  ours     {body.decode()}\n  botocore {expected.decode()}")
            seen.add(action)
            checked += 1
        self.assertGreater(checked, 0)
        self.assertFalse(wrong, "not byte-identical to botocore:\n" + "\n".join(wrong))
        # Values with odd characters really went through (not only plain names).
        bodies = " ".join(c.get("body", "") for c in self.fake.calls())
        for needle in ("web+lb%2B%2F~%2A+%C3%A9+%E6%97%A5%E6%9C%AC+%F0%9F%8E%89",
                       "Back+soon+%2B+more", "shop+%C3%A9.example.com", "i-page+%2B%2F~%2A"):
            self.assertIn(needle, bodies)
        missing = calls_in_source() - seen
        self.assertFalse(missing, f"Query calls in src/adapters/aws this test does not exercise: "
                                  f"{sorted(missing)}; add a scenario that makes them")


if __name__ == "__main__":
    unittest.main()
