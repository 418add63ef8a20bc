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
        self.assertEqual(f["Timeout"], 300)
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


# What cfn-lint would check, by hand (Debian has no cfn-lint): the properties each resource
# type takes, per the CloudFormation resource specification (E3002 unknown property, E3003
# required property, E3012 type of a literal value), and the attributes Fn::GetAtt may read
# (E1010). Only the types the template uses; "!" marks a required property. Types: s string,
# i integer, b boolean, l list, m map (object), j JSON (object or string), * anything.
SPEC = {
    "AWS::SNS::Topic": ({
        "ArchivePolicy": "j", "ContentBasedDeduplication": "b", "DataProtectionPolicy": "j",
        "DeliveryStatusLogging": "l", "DisplayName": "s", "FifoThroughputScope": "s",
        "FifoTopic": "b", "KmsMasterKeyId": "s", "SignatureVersion": "s", "Subscription": "l",
        "Tags": "l", "TopicName": "s", "TracingConfig": "s"}, {"TopicArn", "TopicName"}),
    "AWS::DynamoDB::Table": ({
        "AttributeDefinitions": "l", "BillingMode": "s", "ContributorInsightsSpecification": "m",
        "DeletionProtectionEnabled": "b", "GlobalSecondaryIndexes": "l",
        "ImportSourceSpecification": "m", "!KeySchema": "l", "KinesisStreamSpecification": "m",
        "LocalSecondaryIndexes": "l", "OnDemandThroughput": "m",
        "PointInTimeRecoverySpecification": "m", "ProvisionedThroughput": "m",
        "ResourcePolicy": "m", "SSESpecification": "m", "StreamSpecification": "m",
        "TableClass": "s", "TableName": "s", "Tags": "l", "TimeToLiveSpecification": "m",
        "WarmThroughput": "m"}, {"Arn", "StreamArn"}),
    "AWS::Logs::LogGroup": ({
        "DataProtectionPolicy": "j", "FieldIndexPolicies": "l", "KmsKeyId": "s",
        "LogGroupClass": "s", "LogGroupName": "s", "RetentionInDays": "i", "Tags": "l"},
        {"Arn"}),
    "AWS::SQS::Queue": ({
        "ContentBasedDeduplication": "b", "DeduplicationScope": "s", "DelaySeconds": "i",
        "FifoQueue": "b", "FifoThroughputLimit": "s", "KmsDataKeyReusePeriodSeconds": "i",
        "KmsMasterKeyId": "s", "MaximumMessageSize": "i", "MessageRetentionPeriod": "i",
        "QueueName": "s", "ReceiveMessageWaitTimeSeconds": "i", "RedriveAllowPolicy": "j",
        "RedrivePolicy": "j", "SqsManagedSseEnabled": "b", "Tags": "l",
        "VisibilityTimeout": "i"}, {"Arn", "QueueName", "QueueUrl"}),
    "AWS::IAM::Role": ({
        "!AssumeRolePolicyDocument": "j", "Description": "s", "ManagedPolicyArns": "l",
        "MaxSessionDuration": "i", "Path": "s", "PermissionsBoundary": "s", "Policies": "l",
        "RoleName": "s", "Tags": "l"}, {"Arn", "RoleId"}),
    "AWS::Lambda::Function": ({
        "Architectures": "l", "!Code": "m", "CodeSigningConfigArn": "s", "DeadLetterConfig": "m",
        "Description": "s", "Environment": "m", "EphemeralStorage": "m", "FileSystemConfigs": "l",
        "FunctionName": "s", "Handler": "s", "ImageConfig": "m", "KmsKeyArn": "s", "Layers": "l",
        "LoggingConfig": "m", "MemorySize": "i", "PackageType": "s", "RecursiveLoop": "s",
        "ReservedConcurrentExecutions": "i", "!Role": "s", "Runtime": "s",
        "RuntimeManagementConfig": "m", "SnapStartConfig": "m", "Tags": "l", "Timeout": "i",
        "TracingConfig": "m", "VpcConfig": "m"}, {"Arn", "SnapStartResponse"}),
    "AWS::Lambda::EventInvokeConfig": ({
        "DestinationConfig": "m", "!FunctionName": "s", "MaximumEventAgeInSeconds": "i",
        "MaximumRetryAttempts": "i", "!Qualifier": "s"}, set()),
    "AWS::SNS::Subscription": ({
        "DeliveryPolicy": "j", "Endpoint": "s", "FilterPolicy": "j", "FilterPolicyScope": "s",
        "!Protocol": "s", "RawMessageDelivery": "b", "RedrivePolicy": "j", "Region": "s",
        "ReplayPolicy": "j", "SubscriptionRoleArn": "s", "!TopicArn": "s"}, {"Arn"}),
    "AWS::Lambda::Permission": ({
        "!Action": "s", "EventSourceToken": "s", "!FunctionName": "s",
        "FunctionUrlAuthType": "s", "!Principal": "s", "PrincipalOrgID": "s",
        "SourceAccount": "s", "SourceArn": "s"}, set()),
    "AWS::Events::Rule": ({
        "Description": "s", "EventBusName": "s", "EventPattern": "j", "Name": "s",
        "RoleArn": "s", "ScheduleExpression": "s", "State": "s", "Targets": "l"}, {"Arn"}),
}
# Resources whose deletion loses data: the ledger, and events that failed every retry.
STATEFUL = {"AWS::DynamoDB::Table", "AWS::SQS::Queue"}
RESOURCE_KEYS = {"Type", "Properties", "Condition", "DependsOn", "DeletionPolicy",
                 "UpdateReplacePolicy", "Metadata", "CreationPolicy", "UpdatePolicy"}


def literal_type_ok(kind, value):
    if isinstance(value, Tag) or kind in ("*", "j"):
        return True
    if kind == "s":
        return isinstance(value, (str, int, float)) and not isinstance(value, bool)
    if kind == "i":
        return isinstance(value, int) and not isinstance(value, bool) or (
            isinstance(value, str) and value.isdigit())
    if kind == "b":
        return isinstance(value, bool) or value in ("true", "false")
    if kind == "l":
        return isinstance(value, list)
    return isinstance(value, dict)


def sub_text(node):
    return node.value if isinstance(node.value, str) else node.value[0]


def strings(node):
    """Every string in the template, Fn::Sub texts included."""
    for n in walk(node):
        if isinstance(n, str):
            yield n
        elif isinstance(n, Tag) and isinstance(n.value, str):
            yield n.value


class Lint(unittest.TestCase):
    """The checks cfn-lint makes on a template like ours, by hand."""

    @classmethod
    def setUpClass(cls):
        with open(TEMPLATE) as f:
            cls.t = yaml.load(f, Loader=CfnLoader)
        cls.resources = cls.t["Resources"]
        cls.parameters = cls.t.get("Parameters", {})
        cls.conditions = cls.t.get("Conditions", {})

    def test_properties_follow_the_resource_spec(self):
        for name, r in self.resources.items():
            self.assertIn(r["Type"], SPEC, f"{name}: add {r['Type']} to SPEC")
            self.assertLessEqual(set(r), RESOURCE_KEYS, f"{name}: unknown resource attribute")
            spec, _ = SPEC[r["Type"]]
            kinds = {k.lstrip("!"): v for k, v in spec.items()}
            props = r.get("Properties", {})
            for prop, value in props.items():
                self.assertIn(prop, kinds, f"{name} ({r['Type']}): no property {prop} (E3002)")
                self.assertTrue(literal_type_ok(kinds[prop], value),
                                f"{name}.{prop}: {value!r} is not of type {kinds[prop]} (E3012)")
            for k in spec:
                if k.startswith("!"):
                    self.assertIn(k[1:], props, f"{name}: required property {k[1:]} (E3003)")

    def test_getatt_reads_attributes_that_exist(self):
        for node in walk(self.t):
            refs = []
            if isinstance(node, Tag) and node.name == "GetAtt":
                v = node.value
                refs.append(v.split(".", 1) if isinstance(v, str) else v)
            elif isinstance(node, Tag) and node.name == "Sub":
                refs += [r.split(".", 1) for r in re.findall(r"\$\{([^}!]+)\}", sub_text(node))
                         if "." in r and not r.startswith("AWS::")]
            for resource, attribute in refs:
                self.assertIn(resource, self.resources)
                _, attributes = SPEC[self.resources[resource]["Type"]]
                self.assertIn(attribute, attributes, f"{resource}.{attribute} (E1010)")

    def test_data_survives_deleting_or_replacing_the_stack(self):
        # aws-behaviour.md §17: without Retain, deleting the stack deletes the ledger.
        retained = set()
        for name, r in self.resources.items():
            if "DeletionPolicy" in r or "UpdateReplacePolicy" in r:
                # cfn-lint W3011: one without the other still loses the data one way.
                self.assertEqual(r.get("DeletionPolicy"), r.get("UpdateReplacePolicy"), name)
            if r["Type"] in STATEFUL:
                self.assertEqual(r.get("DeletionPolicy"), "Retain", f"{name} (I3011)")
                self.assertEqual(r.get("UpdateReplacePolicy"), "Retain", f"{name} (W3011)")
                retained.add(name)
        self.assertEqual(retained, {"Table", "FailedEvents"})

    def test_no_hard_coded_partition(self):
        # arn:aws: breaks in China and GovCloud; ${AWS::Partition} works everywhere (I3042).
        for text in strings(self.t):
            self.assertNotRegex(text, r"arn:aws(-[a-z]+)?:", f"hard-coded partition in {text!r}")

    def test_sub_references_are_valid(self):
        names = set(self.resources) | set(self.parameters) | PSEUDO
        for node in walk(self.t):
            if not (isinstance(node, Tag) and node.name == "Sub"):
                continue
            text = sub_text(node)
            local = set(node.value[1]) if isinstance(node.value, list) else set()
            refs = re.findall(r"\$\{([^}!]+)\}", text)
            self.assertTrue(refs, f"!Sub {text!r} has no variable (W1020)")
            for ref in refs:
                self.assertIn(ref.split(".")[0], names | local, f"!Sub ${{{ref}}} (E1019)")
                if ref.split(".")[0] in self.parameters:
                    self.assertNotEqual(self.parameters[ref]["Type"], "CommaDelimitedList",
                                        f"!Sub ${{{ref}}}: a list in a string (E1019)")

    def test_parameters_and_conditions(self):
        used = {n.value for n in walk(self.t) if isinstance(n, Tag) and n.name in ("Condition",)}
        used |= {n.value[0] for n in walk(self.t) if isinstance(n, Tag) and n.name == "If"}
        used |= {r["Condition"] for r in self.resources.values() if "Condition" in r}
        used |= {o["Condition"] for o in self.t.get("Outputs", {}).values() if "Condition" in o}
        for c in self.conditions:
            self.assertIn(c, used, f"condition {c} is never used (W8001)")
        for name, p in self.parameters.items():
            self.assertIn(p["Type"], {"String", "Number", "CommaDelimitedList", "List<Number>"},
                          name)
            if "AllowedValues" in p and "Default" in p:
                self.assertIn(str(p["Default"]), [str(v) for v in p["AllowedValues"]],
                              f"{name}: the default is not allowed (E2015)")
            if p["Type"] == "Number" and "Default" in p:
                float(p["Default"])
                if "MinValue" in p:
                    self.assertGreaterEqual(float(p["Default"]), float(p["MinValue"]), name)
            self.assertIn("Description", p, f"{name}: say what it is for")

    def test_outputs_are_valid(self):
        outputs = self.t.get("Outputs", {})
        self.assertTrue(outputs)
        for name, o in outputs.items():
            self.assertLessEqual(set(o), {"Value", "Description", "Export", "Condition"}, name)
            self.assertIn("Value", o, name)
            self.assertNotIsInstance(o["Value"], (list, dict), f"{name}: an output is a string")
            # A conditional resource may be read only where its condition holds (E6101).
            guarded = {o.get("Condition")}
            for node in walk(o["Value"]):
                if isinstance(node, Tag) and node.name == "If":
                    guarded.add(node.value[0])
            for node in walk(o["Value"]):
                if isinstance(node, Tag) and node.name in ("Ref", "GetAtt"):
                    target = node.value.split(".")[0] if isinstance(node.value, str) else node.value[0]
                    condition = self.resources.get(target, {}).get("Condition")
                    if condition is not None:
                        self.assertIn(condition, guarded, f"output {name} reads {target}")

    def test_reserved_concurrency_is_optional_and_off_by_default(self):
        # aws-behaviour.md §15: reserving concurrency fails the stack on accounts at the minimum
        # unreserved concurrency (new accounts), so it is a choice, not the default.
        p = self.parameters["ReservedConcurrency"]
        self.assertEqual(p["Type"], "Number")
        self.assertEqual(str(p["Default"]), "0")
        self.assertEqual(str(p["MinValue"]), "0")
        f = self.resources["Function"]["Properties"]
        value = f["ReservedConcurrentExecutions"]
        self.assertIsInstance(value, Tag)
        self.assertEqual(value.name, "If")
        condition, when, otherwise = value.value
        self.assertEqual(when.value, "ReservedConcurrency")
        self.assertEqual(otherwise.value, "AWS::NoValue")
        self.assertEqual(self.conditions[condition].name, "Not")
        equals = self.conditions[condition].value[0]
        self.assertEqual(equals.name, "Equals")
        self.assertEqual([getattr(v, "value", v) for v in equals.value],
                         ["ReservedConcurrency", "0"], "0 must leave the setting out, not throttle")


if __name__ == "__main__":
    unittest.main()
