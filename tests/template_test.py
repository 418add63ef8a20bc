"""The CloudFormation template (deploy/intermission.yaml), checked offline: every Ref, GetAtt,
Sub and Condition points at something that exists; the function is what Lambda needs; the
table is the one the code expects; and the IAM role grants exactly the actions the code calls
(found in the sources), no wildcard actions, scoped to named resources where AWS allows it."""

import json
import os
import re
import subprocess
import sys
import unittest

import yaml  # Debian python3-yaml

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TEMPLATE = os.path.join(ROOT, "deploy", "intermission.yaml")
PSEUDO = {"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName", "AWS::NoValue",
          "AWS::URLSuffix", "AWS::StackId"}


class Tag:
    def __init__(self, name, value):
        self.name, self.value = name, value


def construct(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return Tag(suffix, value)


class CfnLoader(yaml.SafeLoader):
    pass


CfnLoader.add_multi_constructor("!", construct)


def walk(node):
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)
    elif isinstance(node, Tag):
        yield from walk(node.value)


def code_calls():
    """The AWS actions the C++ sources call, as IAM action names."""
    src = os.path.join(ROOT, "src", "adapters")
    found = set()
    patterns = {
        ("aws/elb_backend.cpp", r'elb_\.query\(\s*"(\w+)"'): "elasticloadbalancing",
        ("aws/elb_backend.cpp", r'autoscaling_\.query\(\s*"(\w+)"'): "autoscaling",
        ("aws/elb_backend.cpp", r'ec2_\.query\(\s*"(\w+)"'): "ec2",
        ("aws/alb_backend.cpp", r'elbv2_\.query\(\s*"(\w+)"'): "elasticloadbalancing",
        ("aws/codedeploy_lookup.cpp", r'client_\.json\(\s*"(\w+)"'): "codedeploy",
        ("store/dynamodb_store.cpp", r'client_\.json\(\s*"(\w+)"'): "dynamodb",
    }
    for (path, pattern), prefix in patterns.items():
        with open(os.path.join(src, path)) as f:
            for action in re.findall(pattern, f.read()):
                found.add(f"{prefix}:{action}")
    return found


class Template(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(TEMPLATE) as f:
            cls.t = yaml.load(f, Loader=CfnLoader)
        cls.resources = cls.t["Resources"]
        cls.parameters = cls.t.get("Parameters", {})
        cls.conditions = cls.t.get("Conditions", {})

    def test_every_reference_exists(self):
        names = set(self.resources) | set(self.parameters) | PSEUDO
        for node in walk(self.t):
            if not isinstance(node, Tag):
                continue
            if node.name == "Ref":
                self.assertIn(node.value, names, f"!Ref {node.value}")
            elif node.name == "GetAtt":
                target = node.value.split(".")[0] if isinstance(node.value, str) else node.value[0]
                self.assertIn(target, self.resources, f"!GetAtt {node.value}")
            elif node.name == "Sub":
                text = node.value if isinstance(node.value, str) else node.value[0]
                for ref in re.findall(r"\$\{([^}!]+)\}", text):
                    self.assertIn(ref.split(".")[0], names, f"!Sub ${{{ref}}}")
            elif node.name in ("If",):
                self.assertIn(node.value[0], self.conditions, f"!If {node.value[0]}")
            elif node.name == "Condition":
                self.assertIn(node.value, self.conditions)
        for name, r in self.resources.items():
            if "Condition" in r:
                self.assertIn(r["Condition"], self.conditions, name)
            for dep in ([r["DependsOn"]] if isinstance(r.get("DependsOn"), str) else r.get("DependsOn", [])):
                self.assertIn(dep, self.resources, f"{name} DependsOn {dep}")
        used = set()
        for node in walk(self.t):
            if isinstance(node, Tag) and node.name == "Ref":
                used.add(node.value)
            if isinstance(node, Tag) and node.name == "Sub":
                text = node.value if isinstance(node.value, str) else node.value[0]
                used |= {r.split(".")[0] for r in re.findall(r"\$\{([^}!]+)\}", text)}
        for p in self.parameters:
            self.assertIn(p, used, f"parameter {p} is never used")

    def test_function_is_what_lambda_needs(self):
        f = self.resources["Function"]["Properties"]
        self.assertEqual(f["Runtime"], "provided.al2023")
        self.assertEqual(f["Architectures"], ["x86_64"])
        self.assertEqual(f["ReservedConcurrentExecutions"], 1, "one event at a time")
        self.assertIn("INTERMISSION_CONFIG_YAML", f["Environment"]["Variables"])
        on_failure = self.resources["FunctionEventInvokeConfig"]["Properties"]["DestinationConfig"]
        self.assertEqual(on_failure["OnFailure"]["Destination"].value, "FailedEvents.Arn")
        types = {r["Type"] for r in self.resources.values()}
        for needed in ["AWS::SNS::Subscription", "AWS::Lambda::Permission", "AWS::Events::Rule",
                       "AWS::Logs::LogGroup", "AWS::DynamoDB::Table", "AWS::IAM::Role"]:
            self.assertIn(needed, types)
        log_group = self.resources["LogGroup"]["Properties"]
        self.assertEqual(log_group["LogGroupName"].value, "/aws/lambda/${AWS::StackName}-intermission")
        self.assertEqual(f["FunctionName"].value, "${AWS::StackName}-intermission")

    def test_table_is_the_one_the_code_expects(self):
        expected = json.loads(subprocess.run([BIN, "dynamodb-table", "x"], capture_output=True,
                                             text=True, check=True).stdout)
        table = self.resources["Table"]["Properties"]
        for key in ["AttributeDefinitions", "KeySchema", "BillingMode"]:
            self.assertEqual(table[key], expected[key], key)
        self.assertEqual(table["TimeToLiveSpecification"],
                         {"AttributeName": "expires_at", "Enabled": True})

    def test_iam_grants_exactly_what_the_code_calls(self):
        statements = self.resources["Role"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        granted = {}
        for s in statements:
            if isinstance(s, Tag):  # !If [Condition, statement, AWS::NoValue]
                self.assertEqual(s.name, "If")
                self.assertIn(s.value[0], self.conditions)
                s = s.value[1]
            self.assertEqual(s["Effect"], "Allow")
            for action in s["Action"]:
                self.assertNotIn("*", action, f"wildcard action {action}")
                granted[action] = s["Resource"]
        calls = code_calls()
        self.assertGreaterEqual(len(calls), 12, calls)
        # AddTags is not called, but ELB authorizes tags given to CreateRule through it.
        aws_granted = {a for a in granted if not a.startswith(("logs:", "sqs:"))
                       and a != "elasticloadbalancing:AddTags"}
        self.assertIn("elasticloadbalancing:AddTags", granted)
        self.assertEqual(aws_granted, calls,
                         "IAM actions must match the calls in src/adapters exactly")
        # Resource scoping: only the Describe calls, which take no resource, get "*".
        for action, resource in granted.items():
            if resource == "*":
                self.assertIn(":Describe", action, f"{action} should be scoped to a resource")


if __name__ == "__main__":
    unittest.main()
