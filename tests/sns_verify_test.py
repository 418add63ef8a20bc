"""`intermission sns-verify` (and `handle --verify`) on genuine AWS-signed SNS messages and
their certificate files (testing/fixtures/sns, copied from the AWS SDKs' own test suites: see
the .source.txt beside each), and on messages we sign ourselves with a test CA for what a
genuine vector cannot show (a current or future Timestamp, CodeDeploy events, certificates
with the wrong name or key usage, China). No test builds a chain from a certificate file:
certificates in --certs DIR are the operator's, trusted as such (docs/sns.md)."""

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, Workspace, codedeploy  # noqa: E402

from sns_signing import (CHINA, EXPIRED, GOOD, NO_SIGNING, REGION, ROGUE, TOPIC,  # noqa: E402
                         WRONG_SUBJECT, Signer, now_iso)

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing", "fixtures", "sns")
VECTOR_CERTS = os.path.join(VECTORS, "certs")
NOTIFICATION_V1 = "java-v2-notification-with-subject.json"
NOTIFICATION_V2 = "java-v2-notification-signature-v2.json"
SUBSCRIPTION = "java-v2-subscription-confirmation.json"
UNSUBSCRIBE = "java-v2-unsubscribe-confirmation.json"
NOTIFICATION_2015 = "java-v1-notification-attributes.json"
SIGNED_KEYS = ["Message", "MessageId", "Subject", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]


def vector(name):
    with open(os.path.join(VECTORS, name)) as f:
        return json.load(f)


def sns_verify(body, *args):
    p = subprocess.run([BIN, "sns-verify", "-", *args], input=body, capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout.strip()


def lambda_event(*messages):
    records = []
    for m in messages:
        sns = dict(m)
        for http, lam in [("SigningCertURL", "SigningCertUrl"), ("UnsubscribeURL", "UnsubscribeUrl")]:
            if http in sns:
                sns[lam] = sns.pop(http)
        records.append({"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": sns})
    return {"Records": records}


class GenuineVectors(unittest.TestCase):
    """Messages AWS signed, with AWS's certificate files. The certificates have expired since:
    offline, validity is judged at each message's Timestamp, as when it was delivered."""

    def verify(self, message, *extra):
        body = message if isinstance(message, str) else json.dumps(message)
        return sns_verify(body, "--offline", "--certs", VECTOR_CERTS, *extra)

    def assert_valid(self, message, *extra):
        self.assertEqual(self.verify(message, *extra), (0, "valid"))

    def assert_invalid(self, message, because="", *extra):
        code, out = self.verify(message, *extra)
        self.assertEqual(code, 1, out)
        self.assertTrue(out.startswith("invalid: "), out)
        self.assertIn(because, out)

    def test_every_genuine_vector_verifies(self):
        for name in [NOTIFICATION_V1, NOTIFICATION_V2, SUBSCRIPTION, UNSUBSCRIBE, NOTIFICATION_2015]:
            with self.subTest(vector=name):
                self.assert_valid(vector(name))
                self.assert_valid(lambda_event(vector(name)))
        both = lambda_event(vector(NOTIFICATION_V1), vector(NOTIFICATION_V2))
        self.assert_valid(both)
        self.assert_valid(vector(NOTIFICATION_V1), "--topics", vector(NOTIFICATION_V1)["TopicArn"])

    def test_every_one_byte_change_to_a_signed_field_fails(self):
        cases = []
        for name in [NOTIFICATION_V1, NOTIFICATION_V2, SUBSCRIPTION, NOTIFICATION_2015]:
            m = vector(name)
            for key in SIGNED_KEYS:
                if key not in m:
                    continue
                for i in range(len(m[key])):
                    changed = m[key][:i] + chr(ord(m[key][i]) ^ 1) + m[key][i + 1:]
                    cases.append((name, key, i, json.dumps(dict(m, **{key: changed}))))
            if "Subject" in m:
                without = dict(m)
                del without["Subject"]
                cases.append((name, "Subject", "removed", json.dumps(without)))
            elif m["Type"] == "Notification":
                cases.append((name, "Subject", "added", json.dumps(dict(m, Subject="x"))))
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda c: (c[:3], self.verify(c[3])), cases))
        accepted = [case for case, (code, _) in results if code != 1]
        self.assertEqual(accepted, [], "one-byte changes that still verify")
        self.assertGreater(len(results), 1000)

    def test_signature_and_version_changes_fail(self):
        m = vector(NOTIFICATION_V1)
        sig = m["Signature"]
        self.assert_invalid(dict(m, Signature=sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]),
                            "signature does not match")
        self.assert_invalid(dict(m, SignatureVersion="2"), "signature does not match")
        self.assert_invalid(dict(vector(NOTIFICATION_V2), SignatureVersion="1"), "signature does not match")
        self.assert_invalid(dict(m, SignatureVersion="3"), "SignatureVersion '3'")

    def test_url_attacks_fail_before_any_certificate_is_read(self):
        m = vector(NOTIFICATION_V1)
        name = m["SigningCertURL"].rsplit("/", 1)[1]
        for bad in [f"http://sns.{REGION}.amazonaws.com/{name}",
                    f"https://sns.s3-{REGION}.amazonaws.com/{name}",
                    f"https://sns.us-east-1.amazonaws.com/{name}",
                    f"https://s3.amazonaws.com/attacker-bucket/{name}",
                    f"https://sns.{REGION}.amazonaws.com.evil.example/{name}",
                    f"https://sns.{REGION}.amazonaws.com:443/{name}",
                    f"https://attacker@sns.{REGION}.amazonaws.com/{name}",
                    f"https://sns.{REGION}.amazonaws.com/{name}?x=1",
                    f"https://sns.{REGION}.amazonaws.com/certs/{name}",
                    f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-../{name}",
                    "https://169.254.169.254/latest/meta-data/"]:
            with self.subTest(url=bad):
                self.assert_invalid(dict(m, SigningCertURL=bad), "SigningCertURL")

    def test_the_topic_allow_list_holds(self):
        self.assert_invalid(vector(NOTIFICATION_V1), "not in the allow-list", "--topics", TOPIC)

    def test_judged_now_they_are_replays(self):
        # Not offline, the Timestamp must be recent: these messages are months old.
        code, out = sns_verify(json.dumps(vector(NOTIFICATION_V1)), "--certs", VECTOR_CERTS)
        self.assertEqual(code, 1)
        self.assertIn("too old", out)
        code, out = self.verify(vector(NOTIFICATION_V1), "--at", "2026-12-01T00:00:00Z")
        self.assertIn("too old", out)
        # Within its hour, the certificate and signature are what decide.
        self.assert_valid(vector(NOTIFICATION_V1), "--at", "2026-03-06T20:20:00Z")

    def test_a_forged_record_beside_a_genuine_one_fails(self):
        genuine = vector(NOTIFICATION_V1)
        forged = dict(genuine, MessageId="00000000-0000-0000-0000-000000000000",
                      Message=json.dumps(codedeploy("d-evil", "CREATED")))
        code, out = self.verify(lambda_event(genuine, forged))
        self.assertEqual(code, 1)
        self.assertIn("Records[1]", out)
        unsigned = {"Records": [lambda_event(genuine)["Records"][0],
                                {"EventSource": "aws:sns", "Sns": {"Type": "Notification", "MessageId": "x",
                                                                  "TopicArn": genuine["TopicArn"],
                                                                  "Message": "{}"}}]}
        self.assertEqual(self.verify(unsigned)[0], 1)
        not_sns = {"Records": [lambda_event(genuine)["Records"][0], {"operator": {"environment": "prod"}}]}
        self.assertEqual(self.verify(not_sns)[0], 1)


class SignedByTestCa(unittest.TestCase):
    """What a genuine vector cannot show, with certificates from a test CA (never trusted for
    a chain: the files are in --certs DIR, which is the operator's)."""

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="intermission-sns-")
        cls.signer = Signer(cls._tmp.name)
        cls.certs = cls.signer.certs

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def notification(self, version="1", cert=GOOD, timestamp=None, **changes):
        return self.signer.notification({"deploymentId": "d-1", "status": "CREATED"}, version, cert,
                                        timestamp or now_iso(), **changes)

    def verify(self, message, *extra, offline=False):
        body = message if isinstance(message, str) else json.dumps(message)
        return sns_verify(body, "--certs", self.certs, *(["--offline"] if offline else []), *extra)

    def assert_valid(self, message, *extra, offline=False):
        self.assertEqual(self.verify(message, *extra, offline=offline), (0, "valid"))

    def assert_invalid(self, message, because, *extra, offline=False):
        code, out = self.verify(message, *extra, offline=offline)
        self.assertEqual(code, 1, out)
        self.assertIn(because, out)

    def test_current_messages_are_valid(self):
        self.assert_valid(self.notification("1"))
        self.assert_valid(self.notification("2"))
        self.assert_valid(self.signer.confirmation(timestamp=now_iso()))
        request_body = json.dumps(self.notification())
        request = ("POST / HTTP/1.1\r\nx-amz-sns-message-type: Notification\r\n"
                   f"Content-Length: {len(request_body)}\r\n\r\n{request_body}")
        self.assert_valid(request)

    def test_future_and_old_timestamps(self):
        self.assert_invalid(self.notification(timestamp=now_iso(3600)), "in the future")
        self.assert_invalid(self.notification(timestamp=now_iso(-2 * 3600)), "too old")
        self.assert_valid(self.notification(timestamp=now_iso(-50 * 60)))
        self.assert_valid(self.notification(timestamp=now_iso(60)))
        self.assert_invalid(self.notification(timestamp="yesterday"), "not a time")

    def test_certificate_checks(self):
        self.assert_invalid(self.notification(cert=WRONG_SUBJECT), "not issued to sns.amazonaws.com")
        self.assert_invalid(self.notification(cert=ROGUE), "not issued to")
        self.assert_invalid(self.notification(cert=NO_SIGNING), "key usage")
        self.assert_invalid(self.notification(cert=EXPIRED), "expired")
        # Offline, a saved message is judged when it was sent: in 2020 that cert was good.
        self.assert_valid(self.notification(cert=EXPIRED, timestamp="2020-06-01T00:00:00.000Z"), offline=True)
        self.assert_invalid(self.notification(cert="SimpleNotificationService-aaaa.pem"), "cannot read",
                            offline=True)

    def test_a_certificate_file_with_more_than_one_certificate_is_refused(self):
        d = tempfile.mkdtemp(dir=self._tmp.name)
        with open(os.path.join(self.certs, GOOD)) as f:
            good = f.read()
        with open(self.signer.ca) as f:
            ca = f.read()
        with open(os.path.join(d, GOOD), "w") as f:
            f.write(good + ca)
        code, out = sns_verify(json.dumps(self.notification()), "--certs", d)
        self.assertIn("not one PEM certificate", out)
        with open(os.path.join(d, GOOD), "w") as f:
            f.write("<xml>" + good + "</xml>")
        code, out = sns_verify(json.dumps(self.notification()), "--certs", d)
        self.assertIn("not one PEM certificate", out)

    def test_regions(self):
        china = "arn:aws-cn:sns:cn-north-1:123456789012:deployments"
        self.assert_valid(self.notification(cert=CHINA, topic=china))
        self.assert_valid(self.signer.confirmation(topic=china, cert=CHINA, timestamp=now_iso()))
        self.assert_invalid(self.notification(cert=GOOD, topic=china), "not issued to")
        # "s3" is no region: sns.s3.amazonaws.com is an S3 bucket anyone could create.
        for fake in ["s3", "s3-us-west-2", "amazonaws", "us-west-2.evil"]:
            with self.subTest(region=fake):
                topic = f"arn:aws:sns:{fake}:123456789012:deployments"
                m = self.notification(topic=topic,
                                      SigningCertURL=f"https://sns.{fake}.amazonaws.com/{GOOD}")
                self.assert_invalid(m, "not an SNS topic ARN")

    def test_topic_allow_list_and_types(self):
        self.assert_invalid(self.notification(), "not in the allow-list",
                            "--topics", f"arn:aws:sns:{REGION}:123456789012:someone-else")
        self.assert_valid(self.notification(), "--topics", f"arn:aws:sns:{REGION}:1:other,{TOPIC}")
        self.assert_invalid(self.notification(Type="Weird"), "unknown SNS message type")
        self.assert_invalid("not json", "not a JSON object")


class HandleVerify(Workspace):
    """`handle --verify` acts only on the verified messages' own events."""

    @classmethod
    def setUpClass(cls):
        cls._pki = tempfile.TemporaryDirectory(prefix="intermission-sns-")
        cls.signer = Signer(cls._pki.name)

    @classmethod
    def tearDownClass(cls):
        cls._pki.cleanup()

    def verify_args(self):
        return ("--verify", "--certs", self.signer.certs, "--topics", TOPIC)

    def signed(self, message, **kw):
        return self.signer.notification(message, timestamp=kw.pop("timestamp", now_iso()), **kw)

    def test_a_genuine_message_is_acted_on(self):
        # Dry run: the verified start is planned (page on, because of d-1) and nothing is done.
        p = self.handle(lambda_event(self.signed(codedeploy("d-1", "CREATED"))), *self.verify_args(),
                        "--dry-run", "--json", check=0)
        [outcome] = json.loads(p.stdout)
        self.assertEqual({k: outcome[k] for k in ("environment", "ignored", "on", "planned", "applied")},
                         {"environment": "prod", "ignored": False, "on": True,
                          "planned": ["switch maintenance on"], "applied": []}, p.stdout)
        self.assertIn("d-1", " ".join(outcome["why"]))
        self.assertFalse(self.status()["prod"]["on"])
        self.assertEqual(self.steps(), [])

    def test_wrapped_forged_records_are_refused(self):
        genuine = self.signed({"deploymentId": "d-1", "status": "SUCCEEDED", "applicationName": "shop",
                               "deploymentGroupName": "prod-web"}, message_id="m-1")
        forged = self.signer.notification(codedeploy("d-evil", "CREATED"), message_id="m-2",
                                          timestamp=now_iso())
        forged["Message"] = json.dumps(codedeploy("d-evil2", "CREATED"))
        self.handle(lambda_event(genuine, forged), *self.verify_args(), check=4)
        self.assertEqual(self.steps(), [])
        self.assertFalse(self.status()["prod"]["on"])

    def test_operator_commands_and_ticks_through_a_signed_message_are_ignored(self):
        for inner in [{"operator": {"environment": "prod", "action": "on", "for": "8760h"}},
                      {"detail-type": "Scheduled Event", "source": "aws.events"},
                      [{"operator": {"environment": "prod", "action": "on"}}],
                      {"intermission": "tick"}]:
            with self.subTest(inner=inner):
                m = self.signed(inner)
                self.handle(m, *self.verify_args(), check=0)
                self.handle(lambda_event(m), check=0)  # unverified Lambda input: same rule
                self.assertFalse(self.status()["prod"]["on"])
        self.assertEqual(self.steps(), [])

    def test_replayed_old_and_future_messages_are_refused(self):
        old = self.signed(codedeploy("d-1", "CREATED"), timestamp=now_iso(-3 * 3600))
        self.handle(old, *self.verify_args(), check=4)
        future = self.signed(codedeploy("d-2", "CREATED"), timestamp=now_iso(2 * 3600))
        self.handle(future, *self.verify_args(), check=4)
        wrong_name = self.signed(codedeploy("d-3", "CREATED"), cert=WRONG_SUBJECT)
        self.handle(wrong_name, *self.verify_args(), check=4)
        self.assertFalse(self.status()["prod"]["on"])

    def test_only_trusted_topics_and_only_messages_judged_now_are_acted_on(self):
        # AWS signs messages on anyone's topic: a genuine signature says nothing about whose.
        m = self.signed(codedeploy("d-1", "CREATED"))
        p = self.handle(m, "--verify", "--certs", self.signer.certs, check=2)
        self.assertIn("serve.sns.topics", p.stderr)
        with open(self.config, "a") as f:
            f.write("serve:\n  sns:\n    topics: [arn:aws:sns:us-west-2:999999999999:theirs]\n")
        p = self.handle(m, "--verify", "--certs", self.signer.certs, check=4)
        self.assertIn("not in the allow-list", p.stderr)
        # Judged in the past (--offline, --at), a message is only shown, never acted on.
        old = self.signed(codedeploy("d-2", "CREATED"), timestamp=now_iso(-3 * 3600))
        for flags in (["--offline"], ["--at", now_iso(-3 * 3600)]):
            with self.subTest(flags=flags):
                p = self.handle(old, *self.verify_args(), *flags, check=2)
                self.assertIn("--dry-run", p.stderr)
                self.handle(old, *self.verify_args(), *flags, "--dry-run", check=0)
        self.assertEqual(self.steps(), [])
        self.assertFalse(self.status()["prod"]["on"])


if __name__ == "__main__":
    unittest.main()
