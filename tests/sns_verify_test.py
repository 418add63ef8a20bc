"""`intermission sns-verify` with messages we sign ourselves: a test CA, SNS-like signing
certificates (one valid, one expired, one from a CA nobody trusts), SignatureVersion 1
(SHA1withRSA) and 2 (SHA256withRSA), and every kind of tampering we could think of. Offline
mode: certificates come from a folder, validity is judged at the message's Timestamp."""

import base64
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN  # noqa: E402

REGION = "us-west-2"
TOPIC = f"arn:aws:sns:{REGION}:123456789012:deployments"
GOOD = "SimpleNotificationService-0123456789abcdef.pem"
EXPIRED = "SimpleNotificationService-00000000deadbeef.pem"
ROGUE = "SimpleNotificationService-badbadbadbad.pem"


def url(name, region=REGION):
    return f"https://sns.{region}.amazonaws.com/{name}"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class SnsVerify(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="intermission-sns-")
        d = cls.dir = cls._tmp.name
        cls.certs = os.path.join(d, "certs")
        os.makedirs(os.path.join(d, "db"))
        os.makedirs(cls.certs)
        open(os.path.join(d, "db", "index.txt"), "w").close()
        with open(os.path.join(d, "db", "serial"), "w") as f:
            f.write("01\n")
        with open(os.path.join(d, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca=CA_default\n[CA_default]\ndir=.\ndatabase=db/index.txt\n"
                    "serial=db/serial\nnew_certs_dir=db\ndefault_md=sha256\npolicy=any\n"
                    "unique_subject=no\n[any]\ncommonName=supplied\n"
                    "[v3_ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                    "subjectKeyIdentifier=hash\n")
        # The root is valid from 2000, so messages of any year we test can chain to it.
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.csr",
                "-subj", "/CN=Test SNS Root", cwd=d)
        openssl("ca", "-batch", "-selfsign", "-config", "ca.cnf", "-keyfile", "ca.key", "-in",
                "ca.csr", "-out", "ca.pem", "-startdate", "20000101000000Z", "-enddate",
                "20991231000000Z", "-extensions", "v3_ca", "-notext", cwd=d)
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "signer.key", "-out",
                "signer.csr", "-subj", f"/CN=sns.{REGION}.amazonaws.com", cwd=d)
        for name, start, end in [(GOOD, "20200101000000Z", "20990101000000Z"),
                                 (EXPIRED, "20200101000000Z", "20210101000000Z")]:
            openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
                    "-in", "signer.csr", "-out", os.path.join("certs", name), "-startdate", start,
                    "-enddate", end, "-notext", cwd=d)
        # An attacker's certificate: same key, self-issued, not from the trusted CA.
        openssl("req", "-x509", "-key", "signer.key", "-out", os.path.join("certs", ROGUE),
                "-subj", f"/CN=sns.{REGION}.amazonaws.com", "-days", "36500", cwd=d)
        cls.ca = os.path.join(d, "ca.pem")

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def sign(self, fields, digest="sha1"):
        if fields["Type"] == "Notification":
            keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        else:
            keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        text = "".join(f"{k}\n{fields[k]}\n" for k in keys if k in fields)
        p = subprocess.run(["openssl", "dgst", f"-{digest}", "-sign", os.path.join(self.dir, "signer.key")],
                           input=text.encode(), capture_output=True, check=True)
        return base64.b64encode(p.stdout).decode()

    def notification(self, version="1", cert=GOOD, timestamp="2026-11-27T10:00:00.000Z", **changes):
        m = {"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
             "TopicArn": TOPIC, "Subject": "CREATED: AWS CodeDeploy d-1",
             "Message": json.dumps({"deploymentId": "d-1", "status": "CREATED"}),
             "Timestamp": timestamp, "SignatureVersion": version,
             "SigningCertURL": url(cert),
             "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC}:1"}
        m["Signature"] = self.sign(m, "sha256" if version == "2" else "sha1")
        m.update(changes)
        return m

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
