"""`intermission sns-verify` with messages we sign ourselves: a test CA, SNS-like signing
certificates (one valid, one expired, one from a CA nobody trusts), SignatureVersion 1
(SHA1withRSA) and 2 (SHA256withRSA), and every kind of tampering we could think of. Offline
mode: certificates come from a folder, validity is judged at the message's Timestamp."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN  # noqa: E402

from sns_signing import EXPIRED, GOOD, REGION, ROGUE, TOPIC, Signer, url  # noqa: E402


class SnsVerify(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="intermission-sns-")
        cls.signer = Signer(cls._tmp.name)
        cls.certs, cls.ca = cls.signer.certs, cls.signer.ca

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def sign(self, fields, digest="sha1"):
        return self.signer.sign(fields, digest)

    def notification(self, version="1", cert=GOOD, timestamp="2026-11-27T10:00:00.000Z", **changes):
        return self.signer.notification({"deploymentId": "d-1", "status": "CREATED"}, version,
                                        cert, timestamp, **changes)

    def verify(self, message, *extra, raw=None):
        body = raw if raw is not None else json.dumps(message)
        p = subprocess.run([BIN, "sns-verify", "-", "--offline", "--certs", self.certs, "--ca", self.ca,
                            *extra], input=body, capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout.strip()

    def assert_valid(self, message, *extra, raw=None):
        code, out = self.verify(message, *extra, raw=raw)
        self.assertEqual((code, out), (0, "valid"))

    def assert_invalid(self, message, because, *extra, raw=None):
        code, out = self.verify(message, *extra, raw=raw)
        self.assertEqual(code, 1, out)
        self.assertTrue(out.startswith("invalid: "), out)
        self.assertIn(because, out)

    def test_genuine_messages_are_valid(self):
        self.assert_valid(self.notification("1"))
        self.assert_valid(self.notification("2"))
        self.assert_valid(self.notification(), "--topics", f"arn:aws:sns:{REGION}:1:other,{TOPIC}")
        no_subject = self.notification()
        del no_subject["Subject"]
        no_subject["Signature"] = self.sign(no_subject)
        self.assert_valid(no_subject)

    def test_lambda_spelling_and_a_saved_http_request(self):
        m = self.notification()
        sns = dict(m, SigningCertUrl=m.pop("SigningCertURL"), UnsubscribeUrl=m.pop("UnsubscribeURL"))
        self.assert_valid(None, raw=json.dumps({"Records": [{"EventSource": "aws:sns", "Sns": sns}]}))
        body = json.dumps(self.notification())
        request = ("POST / HTTP/1.1\r\nx-amz-sns-message-type: Notification\r\n"
                   f"Content-Length: {len(body)}\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{body}")
        self.assert_valid(None, raw=request)

    def test_tampered_fields(self):
        m = self.notification()
        for field, value in [("Message", '{"deploymentId":"d-1","status":"SUCCEEDED"}'),
                             ("MessageId", "0000"), ("Subject", "SUCCEEDED"),
                             ("Timestamp", "2026-11-27T10:00:01.000Z"),
                             ("TopicArn", f"arn:aws:sns:{REGION}:123456789012:other")]:
            with self.subTest(field=field):
                self.assert_invalid(dict(m, **{field: value}), "signature does not match")
        without_subject = dict(m)
        del without_subject["Subject"]
        self.assert_invalid(without_subject, "signature does not match")

    def test_signature_versions(self):
        sha1_claimed_as_v2 = self.notification("1", SignatureVersion="2")
        self.assert_invalid(sha1_claimed_as_v2, "signature does not match")
        sha256_claimed_as_v1 = self.notification("2", SignatureVersion="1")
        self.assert_invalid(sha256_claimed_as_v1, "signature does not match")
        self.assert_invalid(self.notification(SignatureVersion="3"), "SignatureVersion '3'")
        self.assert_invalid(self.notification(SignatureVersion=""), "SignatureVersion ''")
        self.assert_invalid(self.notification(Signature="not base64!"), "not base64")
        self.assert_invalid(self.notification(Signature=""), "not base64")

    def test_certificate_urls_are_pinned_before_anything_is_fetched(self):
        for bad in [f"http://sns.{REGION}.amazonaws.com/{GOOD}",
                    f"https://sns.s3-{REGION}.amazonaws.com/{GOOD}",
                    f"https://sns.us-east-1.amazonaws.com/{GOOD}",
                    f"https://s3.amazonaws.com/attacker-bucket/{GOOD}",
                    f"https://sns.{REGION}.amazonaws.com.evil.example/{GOOD}",
                    f"https://sns.{REGION}.amazonaws.com/{GOOD}?x=1",
                    f"https://sns.{REGION}.amazonaws.com/certs/{GOOD}",
                    "https://169.254.169.254/latest/meta-data/"]:
            with self.subTest(url=bad):
                self.assert_invalid(self.notification(SigningCertURL=bad), "SigningCertURL")

    def test_untrusted_and_expired_certificates(self):
        self.assert_invalid(self.notification(cert=ROGUE), "not trusted")
        self.assert_invalid(self.notification(cert=EXPIRED), "expired")
        # Offline, validity is judged at the message's Timestamp: in 2020 that cert was good.
        self.assert_valid(self.notification(cert=EXPIRED, timestamp="2020-06-01T00:00:00.000Z"))
        self.assert_invalid(self.notification(timestamp="yesterday"), "not a time")
        self.assert_invalid(self.notification(cert="SimpleNotificationService-aaaa.pem"), "cannot read")

    def test_topic_allow_list_and_types(self):
        self.assert_invalid(self.notification(), "not in the allow-list",
                            "--topics", f"arn:aws:sns:{REGION}:123456789012:someone-else")
        self.assert_invalid(self.notification(Type="Weird"), "unknown SNS message type")
        self.assert_invalid(self.notification(Type="SubscriptionConfirmation"), "signature does not match")
        self.assert_invalid(None, "not a JSON object", raw="not json")

    def test_subscription_confirmation(self):
        c = {"Type": "SubscriptionConfirmation", "MessageId": "165545c9", "Token": "2336412f37fb",
             "TopicArn": TOPIC, "Message": "You have chosen to subscribe to the topic.",
             "SubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37fb",
             "Timestamp": "2026-11-27T10:00:00.000Z", "SignatureVersion": "1",
             "SigningCertURL": url(GOOD)}
        c["Signature"] = self.sign(c)
        self.assert_valid(c)
        self.assert_invalid(dict(c, SubscribeURL="https://attacker.example/confirm"), "signature does not match")
        self.assert_invalid(dict(c, Token="ffff"), "signature does not match")


if __name__ == "__main__":
    unittest.main()
