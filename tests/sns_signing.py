"""A test CA and SNS-like signing certificates, and messages signed as SNS signs them
(SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA), with the openssl command line."""

import base64
import json
import os
import subprocess

REGION = "us-west-2"
TOPIC = f"arn:aws:sns:{REGION}:123456789012:deployments"
GOOD = "SimpleNotificationService-0123456789abcdef.pem"
EXPIRED = "SimpleNotificationService-00000000deadbeef.pem"
ROGUE = "SimpleNotificationService-badbadbadbad.pem"
WRONG_SUBJECT = "SimpleNotificationService-0000000000000bad.pem"
NO_SIGNING = "SimpleNotificationService-00000000000000e1.pem"
CHINA = "SimpleNotificationService-00000000000000c1.pem"
SIGNING_NAME = "sns.amazonaws.com"


def url(name, region=REGION):
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://sns.{region}.{suffix}/{name}"


def now_iso(offset_seconds=0):
    """An SNS Timestamp `offset_seconds` from now."""
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + offset_seconds))


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class Signer:
    """Creates, in `directory`, a root CA valid from 2000 (ca.pem), certificates signed by it
    for one key (GOOD: CN sns.amazonaws.com, 2020-2099; EXPIRED: 2020-2021; WRONG_SUBJECT: CN
    sns.<region>.amazonaws.com; NO_SIGNING: key usage keyEncipherment only; CHINA: CN
    sns-cn-north-1.amazonaws.com.cn) and a self-issued ROGUE one, all in certs/. Genuine
    AWS-signed vectors are in testing/fixtures/sns; this CA is for what they cannot show."""

    def __init__(self, directory):
        d = self.dir = directory
        self.certs = os.path.join(d, "certs")
        os.makedirs(os.path.join(d, "db"))
        os.makedirs(self.certs)
        open(os.path.join(d, "db", "index.txt"), "w").close()
        with open(os.path.join(d, "db", "serial"), "w") as f:
            f.write("01\n")
        with open(os.path.join(d, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca=CA_default\n[CA_default]\ndir=.\ndatabase=db/index.txt\n"
                    "serial=db/serial\nnew_certs_dir=db\ndefault_md=sha256\npolicy=any\n"
                    "unique_subject=no\n[any]\ncommonName=supplied\n"
                    "[ku_enc]\nkeyUsage=critical,keyEncipherment\n"
                    "[v3_ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                    "subjectKeyIdentifier=hash\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.csr",
                 "-subj", "/CN=Test SNS Root", cwd=d)
        _openssl("ca", "-batch", "-selfsign", "-config", "ca.cnf", "-keyfile", "ca.key", "-in",
                 "ca.csr", "-out", "ca.pem", "-startdate", "20000101000000Z", "-enddate",
                 "20991231000000Z", "-extensions", "v3_ca", "-notext", cwd=d)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "signer.key", "-out",
                 "signer.csr", "-subj", f"/CN={SIGNING_NAME}", cwd=d)
        for name, start, end, subject, ext in [
                (GOOD, "20200101000000Z", "20990101000000Z", None, None),
                (EXPIRED, "20200101000000Z", "20210101000000Z", None, None),
                (WRONG_SUBJECT, "20200101000000Z", "20990101000000Z", f"/CN=sns.{REGION}.amazonaws.com", None),
                (NO_SIGNING, "20200101000000Z", "20990101000000Z", None, "ku_enc"),
                (CHINA, "20200101000000Z", "20990101000000Z", "/CN=sns-cn-north-1.amazonaws.com.cn", None)]:
            extra = (["-subj", subject] if subject else []) + (["-extensions", ext] if ext else [])
            _openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
                     "-in", "signer.csr", "-out", os.path.join("certs", name), "-startdate", start,
                     "-enddate", end, "-notext", *extra, cwd=d)
        _openssl("req", "-x509", "-key", "signer.key", "-out", os.path.join("certs", ROGUE),
                 "-subj", f"/CN=sns.{REGION}.amazonaws.com", "-days", "36500", cwd=d)
        self.ca = os.path.join(d, "ca.pem")

    def sign(self, fields, digest="sha1"):
        if fields["Type"] == "Notification":
            keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        else:
            keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        text = "".join(f"{k}\n{fields[k]}\n" for k in keys if k in fields)
        p = subprocess.run(["openssl", "dgst", f"-{digest}", "-sign", os.path.join(self.dir, "signer.key")],
                           input=text.encode(), capture_output=True, check=True)
        return base64.b64encode(p.stdout).decode()

    def notification(self, message, version="1", cert=GOOD, timestamp="2026-11-27T10:00:00.000Z",
                     message_id="22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324", topic=TOPIC, **changes):
        m = {"Type": "Notification", "MessageId": message_id, "TopicArn": topic,
             "Subject": "AWS CodeDeploy notification",
             "Message": message if isinstance(message, str) else json.dumps(message),
             "Timestamp": timestamp, "SignatureVersion": version, "SigningCertURL": url(cert, topic.split(":")[3]),
             "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic}:1"}
        m["Signature"] = self.sign(m, "sha256" if version == "2" else "sha1")
        m.update(changes)
        return m

    def confirmation(self, topic=TOPIC, token="2336412f37fb", timestamp="2026-11-27T10:00:00.000Z",
                     cert=GOOD, message_id="165545c9"):
        region = topic.split(":")[3]
        host = url("", region)[:-1]
        c = {"Type": "SubscriptionConfirmation", "MessageId": message_id, "Token": token,
             "TopicArn": topic, "Message": "You have chosen to subscribe to the topic.",
             "SubscribeURL": f"{host}/?Action=ConfirmSubscription&TopicArn={topic}&Token={token}",
             "Timestamp": timestamp, "SignatureVersion": "1",
             "SigningCertURL": url(cert, region)}
        c["Signature"] = self.sign(c)
        return c
