"""STS for the fake AWS (Query protocol, version 2011-06-15): the two calls the credential chain
makes (aws-behaviour.md §13: web identity for EKS IRSA, role_arn + source_profile in a profile).

- AssumeRoleWithWebIdentity is unsigned, as in AWS: the web identity token is the proof. The
  fake holds the tokens it accepts and the role ARNs it may be used for; anything else is
  InvalidIdentityToken / AccessDenied, as STS answers.
- AssumeRole must be SigV4-signed (checked with botocore, like every other call) by a key the
  fake knows, for a role that trusts it.
- Both hand out temporary credentials (AccessKeyId ASIA..., SessionToken, Expiration) that the
  other fake services then accept: signature-checked like any key, the session token required,
  and refused with ExpiredToken once expired. The lifetime is DurationSeconds, or what the test
  sets (`expires_in`), so tests can make credentials expire while a process runs.

Control: POST /__fake/sts {"web_identity_token": token or [tokens], "web_identity_roles": [...],
"assumable_roles": {role arn: [access key ids allowed]}, "expires_in": seconds}.
Faults are injected per action like the other calls (POST /__fake/fail {"action":
"AssumeRoleWithWebIdentity", ...})."""

import base64
import datetime
import os
import re
import threading
import time
import urllib.parse
import uuid
from xml.sax.saxutils import escape

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
VERSION = "2011-06-15"
ACTIONS = ("AssumeRole", "AssumeRoleWithWebIdentity")
SESSION_NAME_RE = re.compile(r"[\w+=,.@-]{2,64}")


class Sts:
    """What the fake STS knows. All access under `lock`."""

    def __init__(self):
        self.lock = threading.RLock()
        self.web_identity_tokens = set()
        self.web_identity_roles = set()
        self.assumable_roles = {}  # role arn -> set of access key ids that may assume it
        self.expires_in = None     # seconds; None = DurationSeconds (default 3600)
        self.sessions = {}         # access key id -> {"secret", "token", "expires", "role"}
        self.issued = []           # [{"action", "role", "session", "key"}], for tests

    def control(self, req):
        with self.lock:
            if "web_identity_token" in req:
                t = req["web_identity_token"]
                self.web_identity_tokens = set(t if isinstance(t, list) else [t])
            self.web_identity_roles.update(req.get("web_identity_roles", []))
            for role, keys in req.get("assumable_roles", {}).items():
                self.assumable_roles.setdefault(role, set()).update(keys)
            if "expires_in" in req:
                self.expires_in = req["expires_in"]
            return {"issued": self.issued}

    def is_session(self, key):
        with self.lock:
            return key in self.sessions

    def secret(self, key, token, fault):
        """The secret of temporary key `key`, if the request carries its session token and it
        has not expired; `fault(status, code, message)` builds the error to raise."""
        with self.lock:
            s = self.sessions.get(key)
        if s is None:
            return None
        if token != s["token"]:
            raise fault(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        if time.time() >= s["expires"]:
            raise fault(400, "ExpiredToken", "The security token included in the request is expired")
        return s["secret"]

    def issue(self, action, role, session, duration, web_identity_token=None):
        key = "ASIA" + uuid.uuid4().hex[:16].upper()
        secret = base64.b64encode(os.urandom(30)).decode()
        # Real session tokens are long base64 with '/', '+' and '='; so is this one.
        token = "FwoGZXIvYXdzE" + base64.b64encode(os.urandom(96)).decode()
        lifetime = self.expires_in if self.expires_in is not None else duration
        expires = time.time() + lifetime
        with self.lock:
            self.sessions[key] = {"secret": secret, "token": token, "expires": expires, "role": role}
            self.issued.append({"action": action, "role": role, "session": session, "key": key,
                                "token": web_identity_token})
        stamp = datetime.datetime.fromtimestamp(expires, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (f"<Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{escape(secret)}</SecretAccessKey>"
                f"<SessionToken>{escape(token)}</SessionToken><Expiration>{stamp}</Expiration></Credentials>")


STS = Sts()


def _common(params, fault):
    role = params.get("RoleArn", "")
    session = params.get("RoleSessionName", "")
    if not role:
        raise fault(400, "ValidationError", "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
    if not SESSION_NAME_RE.fullmatch(session):
        raise fault(400, "ValidationError", f"1 validation error detected: Value '{session}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*")
    duration = int(params.get("DurationSeconds") or 3600)
    if not 900 <= duration <= 43200:
        raise fault(400, "ValidationError", f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200")
    return role, session, duration


def _assumed_role_user(role, session):
    name = role.rsplit("/", 1)[-1]
    account = role.split(":")[4] if role.count(":") >= 5 else "111122223333"
    return (f"<AssumedRoleUser><AssumedRoleId>AROA{uuid.uuid4().hex[:17].upper()}:{escape(session)}</AssumedRoleId>"
            f"<Arn>arn:aws:sts::{account}:assumed-role/{escape(name)}/{escape(session)}</Arn></AssumedRoleUser>")


def assume_role_with_web_identity(params, fault):
    role, session, duration = _common(params, fault)
    token = params.get("WebIdentityToken", "")
    with STS.lock:
        expected, roles = set(STS.web_identity_tokens), set(STS.web_identity_roles)
    if not token:
        raise fault(400, "ValidationError", "1 validation error detected: Value null at 'webIdentityToken' failed to satisfy constraint: Member must not be null")
    if token not in expected:
        raise fault(400, "InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements")
    if role not in roles:
        raise fault(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
    creds = STS.issue("AssumeRoleWithWebIdentity", role, session, duration, token)
    return (f"<SubjectFromWebIdentityToken>system:serviceaccount:default:intermission</SubjectFromWebIdentityToken>"
            f"<Audience>sts.amazonaws.com</Audience>{_assumed_role_user(role, session)}{creds}"
            f"<Provider>arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE</Provider>")


def assume_role(params, key, fault):
    role, session, duration = _common(params, fault)
    with STS.lock:
        allowed = STS.assumable_roles.get(role)
        caller = STS.sessions.get(key, {}).get("role")
    if allowed is None or (key not in allowed and caller not in allowed):
        raise fault(403, "AccessDenied", f"User: arn:aws:iam::111122223333:user/{key} is not authorized to perform: sts:AssumeRole on resource: {role}")
    creds = STS.issue("AssumeRole", role, session, duration)
    return f"{_assumed_role_user(role, session)}{creds}<PackedPolicySize>6</PackedPolicySize>"


def action(body):
    """The STS action `body` asks for, or None when it is not an STS request."""
    params = dict(urllib.parse.parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
    name = params.get("Action", "")
    return name if params.get("Version") == VERSION and name in ACTIONS else None


def handle(handler, body, fault):
    """Answers the STS request in `body` on `handler` (fake_aws.Handler). Errors are raised as
    `fault` (fake_aws.AwsFault); the handler answers them in the Query protocol's XML."""
    params = dict(urllib.parse.parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
    name = params["Action"]
    if name == "AssumeRoleWithWebIdentity":
        # No signature: STS does not ask for one on this call; the token is the proof.
        handler.inject(name)
        result = assume_role_with_web_identity(params, fault)
    else:
        service, _ = handler.verify(body)
        if service != "sts":
            raise fault(400, "InvalidAction", f"The action {name} is not valid for this web service.")
        handler.inject(name)
        key = re.search(r"Credential=([^/]+)/", handler.headers.get("Authorization", "")).group(1)
        result = assume_role(params, key, fault)
    rid = str(uuid.uuid4())
    handler.record(name, 200)
    xml = (f'<{name}Response xmlns="{STS_NS}"><{name}Result>{result}</{name}Result>'
           f"<ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata></{name}Response>")
    handler.reply(200, xml, "text/xml", {"x-amzn-RequestId": rid})
