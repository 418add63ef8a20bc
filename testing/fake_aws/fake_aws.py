#!/usr/bin/python3
"""A fake AWS for tests, on loopback: Classic ELB, Auto Scaling and CodeDeploy, as far as
intermission uses them.

- Every request's SigV4 signature is verified with botocore's SigV4Auth (Debian
  python3-botocore), an implementation that is not ours; unknown keys get
  InvalidClientTokenId, bad signatures SignatureDoesNotMatch.
- Replies follow the services' wire formats (Query XML, JSON 1.1) closely enough for the
  Debian awscli to drive every call (tests/aws_fake_test.py checks that).
- Classic ELB and Auto Scaling are as unkind as AWS (each behaviour cites its line of
  ../shared/docs/aws-behaviour.md): a registered instance is OutOfService for HealthyThreshold
  x Interval (§3); with connection draining on, a deregistered or detached instance stays
  "InService" with "Instance deregistration currently in progress." until the draining timeout
  (§1); a group's link to an ELB goes Adding -> Added -> InService and Removing -> Removed
  (§2); instances live in Availability Zones, an ELB has enabled zones and cross-zone load
  balancing (off by default), unknown instances and instances in zones the ELB does not have
  are refused (§4). EC2 DescribeInstances gives zones.
- A sampler records, every 5 ms and at every call, how many instances each load balancer would
  send the next request to (draining ones excluded), in total and as each enabled zone's node
  sees it, so tests can prove neither ever reaches zero.
- Faults can be injected per action (throttling, 5xx, dropped connections).

Control API (JSON): POST /__fake/setup, POST /__fake/fail, POST /__fake/instance,
POST /__fake/group (scale a group in or out), POST /__fake/drained (a drain ends early), POST /__fake/deployment, GET /__fake/timeline,
GET /__fake/zone-timeline, GET /__fake/calls (each with the Classic ELB instances draining when
it arrived), GET /__fake/state; POST /__fake/instance takes "healthy" (failing health checks:
OutOfService, ReasonCode Instance) and "booting" (an application still starting: registration
in progress until released); POST /__fake/kill-after
({"pid", "calls": N}) SIGKILLs a client right after the fake answered its Nth mutating call
(any action but Describe*/GetDeployment), so crash tests stop it after an exact step.
Run: fake_aws.py --port-file FILE (port 0 = any free port)."""

import argparse
import json
import os
import re
import signal
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import fake_sts  # STS and its temporary credentials (aws-behaviour.md §13)

ELB_NS = "http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/"
ASG_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
AUTH_RE = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                     r"\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})")


class AwsFault(Exception):
    def __init__(self, status, code, message, sender=True):
        super().__init__(message)
        self.status, self.code, self.message, self.sender = status, code, message, sender


class World:
    """The simulated account. All access under `lock`."""

    def __init__(self):
        self.lock = threading.RLock()
        self.credentials = {"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
        self.require_token = None  # when set, requests must carry this x-amz-security-token
        # Classic ELB: name -> {"interval", "threshold", "draining" (s, 0 = off), "zones",
        # "cross_zone", "instances": {id: {"since": t, "draining_until": t | None}}}
        self.lbs = {}
        # Auto Scaling: name -> {"instances": [ids], "lbs": {lb: {"state", "since"}}}
        self.groups = {}
        self.ec2 = {}      # EC2 instances: id -> Availability Zone
        self.link_delay = 0.1  # seconds a group's link to an ELB stays "Adding"
        # aws-behaviour.md §5: seconds an attached ELB reports an instance failing before its
        # group (HealthCheckType ELB) replaces it; how soon AWS acts is not documented, so a
        # test may set it (None: never).
        self.replace_after = 1.0
        self.failing_since = {}  # instance id -> when an attached ELB first reported it failing
        self.replaced = []       # [{"group", "old", "new", "t"}]
        self.unhealthy = set()
        # Instances whose application is still starting (POST /__fake/instance "booting"): the
        # ELB reports "Instance registration is still in progress." (aws-behaviour.md §3) for as
        # long as a test keeps them so, however long ago they were registered; their group
        # still counts them healthy (it has not been told otherwise), so none is replaced.
        self.booting = set()
        self.deployments = {}
        self.listeners = {}      # ELBv2 listener arn -> {"default": [actions]}
        self.rules = {}          # rule arn -> {"listener", "priority", "conditions", "actions", "tags"}
        self.target_groups = {}  # arn -> v2_group(): targets, health-check timing, in use since
        self.faults = {}   # action -> [fault, ...]
        self.timeline = {}  # lb -> [[t, serving], ...] (changes only)
        self.zone_timeline = {}  # lb -> zone -> [[t, serving for that zone's traffic], ...]
        self.calls = []
        self.t0 = time.monotonic()

    def now(self):
        return time.monotonic() - self.t0

    def instance_state(self, lb, iid):
        """(State, ReasonCode, Description) as DescribeInstanceHealth reports them."""
        entry = self.lbs[lb]["instances"].get(iid)
        if entry is None:
            return "OutOfService", "Instance", "Instance is not currently registered with the LoadBalancer."
        if entry["draining_until"] is not None:
            # aws-behaviour.md §1: a deregistering instance stays "InService" while it drains.
            return "InService", "N/A", "Instance deregistration currently in progress."
        if self.ec2.get(iid) not in self.lbs[lb]["zones"]:
            # aws-behaviour.md §4: only instances in enabled zones get traffic.
            return "OutOfService", "Instance", "Instance is in an EC2 Availability Zone for which LoadBalancer is not configured to route traffic to."
        if iid in self.unhealthy:
            # aws-behaviour.md §3: failing checks -> ReasonCode Instance.
            return "OutOfService", "Instance", "Instance has failed at least the UnhealthyThreshold number of health checks consecutively."
        if iid not in self.booting and \
                self.now() >= entry["since"] + self.lbs[lb]["threshold"] * self.lbs[lb]["interval"]:
            return "InService", "N/A", "N/A"
        # aws-behaviour.md §3: OutOfService for HealthyThreshold x Interval after registering.
        return "OutOfService", "ELB", "Instance registration is still in progress."

    def serving(self, lb, iid):
        """Whether the ELB would send this instance the next request (a draining one: no)."""
        entry = self.lbs[lb]["instances"].get(iid)
        return entry is not None and entry["draining_until"] is None and \
            self.instance_state(lb, iid)[0] == "InService"

    def in_service(self, lb):
        return sum(1 for i in self.lbs[lb]["instances"] if self.serving(lb, i))

    def zone_view(self, lb):
        """What each enabled zone's load-balancer node can send the next request to
        (aws-behaviour.md §4: with cross-zone off, only its own zone's instances)."""
        b = self.lbs[lb]
        serving = [i for i in b["instances"] if self.serving(lb, i)]
        return {z: (len(serving) if b["cross_zone"] else sum(1 for i in serving if self.ec2.get(i) == z))
                for z in b["zones"]}

    def deregister(self, lb, iid):
        """aws-behaviour.md §1: with draining on, an instance that serves drains until the
        timeout, or until a test says its in-flight requests are done (POST /__fake/drained,
        which AWS does as soon as they finish), before it is gone."""
        b = self.lbs[lb]
        entry = b["instances"].get(iid)
        if entry is None or entry["draining_until"] is not None:
            return
        if b["draining"] > 0 and self.serving(lb, iid):
            entry["draining_until"] = self.now() + b["draining"]
        else:
            del b["instances"][iid]

    def register(self, lb, iid):
        """A fresh registration; one of an instance still draining starts its health checks
        over. Beyond aws-behaviour.md, and not documented either way by AWS: the Classic guide
        ("Configure connection draining", docs.aws.amazon.com/elasticloadbalancing/latest/
        classic/config-conn-drain.html; "Register or deregister EC2 instances",
        .../classic/elb-deregister-register-instances.html) says a deregistering instance is
        "InService: Instance deregistration currently in progress" and that a deregistered one
        can be registered again, but not what registering it during the drain does; the slower
        possibility (health checks from the start) is the one modelled."""
        entry = self.lbs[lb]["instances"].get(iid)
        if entry is None or entry["draining_until"] is not None:
            self.lbs[lb]["instances"][iid] = {"since": self.now(), "draining_until": None}

    def advance(self):
        """Time passing: draining ends, group links move on (aws-behaviour.md §1-2)."""
        t = self.now()
        for b in self.lbs.values():
            for iid in [i for i, e in b["instances"].items()
                        if e["draining_until"] is not None and e["draining_until"] <= t]:
                del b["instances"][iid]
        for g in self.groups.values():
            for lb, link in g["lbs"].items():
                registered = [i for i in g["instances"] if i in self.lbs[lb]["instances"]]
                if link["state"] == "Adding" and t >= link["since"] + self.link_delay:
                    link.update(state="Added", since=t)
                if link["state"] == "Added" and any(self.serving(lb, i) for i in registered):
                    link.update(state="InService", since=t)
                if link["state"] == "Removing" and not registered:
                    link.update(state="Removed", since=t)
        self.replace_failing(t)

    def replace_failing(self, t):
        """aws-behaviour.md §5: a group that uses ELB health checks replaces an instance that an
        attached ELB reports failing (terminated: deregistered, draining as any other; a new
        instance in the same zone registered in its place, health-checked from the start). A
        detached group (link Removing or Removed) replaces nothing."""
        for name, g in self.groups.items():
            attached = [lb for lb, link in g["lbs"].items() if link["state"] in ("Added", "InService")]
            for iid in list(g["instances"]):
                failing = iid in self.unhealthy and any(
                    iid in self.lbs[lb]["instances"] and self.lbs[lb]["instances"][iid]["draining_until"] is None
                    for lb in attached)
                if not failing:
                    self.failing_since.pop(iid, None)
                    continue
                since = self.failing_since.setdefault(iid, t)
                if self.replace_after is None or t < since + self.replace_after:
                    continue
                new = f"i-0{len(self.replaced) + 1:016x}"
                self.ec2[new] = self.ec2.get(iid, "eu-west-1a")
                g["instances"][g["instances"].index(iid)] = new
                for lb, link in g["lbs"].items():
                    if link["state"] in ("Adding", "Added", "InService"):
                        self.deregister(lb, iid)
                        self.register(lb, new)
                self.unhealthy.discard(iid)
                self.failing_since.pop(iid, None)
                self.replaced.append({"group": name, "old": iid, "new": new, "t": round(t, 4)})

    def sample(self):
        with self.lock:
            self.advance()
            t = self.now()
            for lb in self.lbs:
                n = self.in_service(lb)
                series = self.timeline.setdefault(lb, [])
                if not series or series[-1][1] != n:
                    series.append([round(t, 4), n])
                for z, n in self.zone_view(lb).items():
                    series = self.zone_timeline.setdefault(lb, {}).setdefault(z, [])
                    if not series or series[-1][1] != n:
                        series.append([round(t, 4), n])


WORLD = World()
KILL_AFTER = {}  # /__fake/kill-after: {"pid", "left"} while armed


def member_params(params, prefix):
    """Values of prefix.member.N (or prefix.member.N.InstanceId), in N order."""
    out = {}
    for k, v in params.items():
        m = re.fullmatch(re.escape(prefix) + r"\.member\.(\d+)(?:\.InstanceId)?", k)
        if m:
            out[int(m.group(1))] = v
    return [out[i] for i in sorted(out)]


def require(params, name):
    if not params.get(name):
        raise AwsFault(400, "ValidationError", f"1 validation error detected: {name} is required")
    return params[name]


# ---------------------------------------------------------------- Classic ELB (Query)
def elb_lb(params):
    name = require(params, "LoadBalancerName")
    if name not in WORLD.lbs:
        raise AwsFault(400, "LoadBalancerNotFound", f"There is no ACTIVE Load Balancer named '{name}'")
    return name


def instances_xml(lb):
    return "<Instances>" + "".join(f"<member><InstanceId>{escape(i)}</InstanceId></member>"
                                   for i in sorted(WORLD.lbs[lb]["instances"])) + "</Instances>"


def known_instance(iid):
    if iid not in WORLD.ec2:  # aws-behaviour.md §4: an unknown instance id is InvalidInstance
        raise AwsFault(400, "InvalidInstance", f"Could not find EC2 instance {iid}.")


def elb_register(params):
    lb = elb_lb(params)
    ids = member_params(params, "Instances")
    for iid in ids:
        known_instance(iid)
        if WORLD.ec2[iid] not in WORLD.lbs[lb]["zones"]:
            # aws-behaviour.md §4: an instance in a zone the ELB does not have is refused.
            raise AwsFault(400, "InvalidInstance", f"EC2 instance {iid} is in an EC2 Availability "
                           f"Zone for which LoadBalancer is not configured: {WORLD.ec2[iid]}.")
    for iid in ids:
        WORLD.register(lb, iid)
    return instances_xml(lb)


def elb_deregister(params):
    lb = elb_lb(params)
    ids = member_params(params, "Instances")
    for iid in ids:
        known_instance(iid)
        if iid not in WORLD.lbs[lb]["instances"]:
            raise AwsFault(400, "InvalidInstance", f"Could not find EC2 instance {iid}.")
    for iid in ids:
        WORLD.deregister(lb, iid)
    return instances_xml(lb)


def elb_health(params):
    lb = elb_lb(params)
    ids = member_params(params, "Instances")
    for iid in ids:
        known_instance(iid)
    out = "<InstanceStates>"
    for iid in ids or sorted(WORLD.lbs[lb]["instances"]):
        state, reason, desc = WORLD.instance_state(lb, iid)
        out += (f"<member><Description>{escape(desc)}</Description><InstanceId>{escape(iid)}</InstanceId>"
                f"<State>{state}</State><ReasonCode>{reason}</ReasonCode></member>")
    return out + "</InstanceStates>"


def elb_describe(params):
    names = member_params(params, "LoadBalancerNames") or sorted(WORLD.lbs)
    out = "<LoadBalancerDescriptions>"
    for name in names:
        if name not in WORLD.lbs:
            raise AwsFault(400, "LoadBalancerNotFound", f"There is no ACTIVE Load Balancer named '{name}'")
        lb = WORLD.lbs[name]
        out += (f"<member><LoadBalancerName>{escape(name)}</LoadBalancerName>"
                f"<DNSName>{escape(name)}.elb.example</DNSName>"
                f"<HealthCheck><Target>HTTP:80/healthz</Target><Interval>{max(1, int(lb['interval']))}</Interval>"
                f"<Timeout>1</Timeout><UnhealthyThreshold>2</UnhealthyThreshold>"
                f"<HealthyThreshold>{lb['threshold']}</HealthyThreshold></HealthCheck>"
                f"{instances_xml(name)}<AvailabilityZones>" +
                "".join(f"<member>{escape(z)}</member>" for z in lb["zones"]) +
                "</AvailabilityZones></member>")
    return out + "</LoadBalancerDescriptions>"


def elb_attributes(params):
    lb = WORLD.lbs[elb_lb(params)]
    draining = lb["draining"]
    return ("<LoadBalancerAttributes>"
            f"<CrossZoneLoadBalancing><Enabled>{str(lb['cross_zone']).lower()}</Enabled></CrossZoneLoadBalancing>"
            "<AccessLog><Enabled>false</Enabled></AccessLog>"
            f"<ConnectionDraining><Enabled>{str(draining > 0).lower()}</Enabled>"
            f"<Timeout>{max(1, round(draining)) if draining else 300}</Timeout></ConnectionDraining>"
            "<ConnectionSettings><IdleTimeout>60</IdleTimeout></ConnectionSettings>"
            "</LoadBalancerAttributes>")


# ---------------------------------------------------------------- Auto Scaling (Query)
def asg_group(params):
    name = require(params, "AutoScalingGroupName")
    if name not in WORLD.groups:
        raise AwsFault(400, "ValidationError", f"AutoScalingGroup name not found - {name}")
    return name


def asg_attach(params):
    group = WORLD.groups[asg_group(params)]
    lbs = member_params(params, "LoadBalancerNames")
    for lb in lbs:
        if lb not in WORLD.lbs:
            raise AwsFault(400, "ValidationError", f"Provided Load Balancers may not be valid: {lb}")
    for lb in lbs:
        link = group["lbs"].get(lb)
        if link is not None and link["state"] in ("Adding", "Added", "InService"):
            continue
        # aws-behaviour.md §2: asynchronous; the link is "Adding" first. Instances of the
        # group in zones the ELB does not have are registered and stay OutOfService.
        for iid in group["instances"]:
            WORLD.register(lb, iid)
        group["lbs"][lb] = {"state": "Adding", "since": WORLD.now()}
    return ""


def asg_detach(params):
    group = WORLD.groups[asg_group(params)]
    for lb in member_params(params, "LoadBalancerNames"):
        link = group["lbs"].get(lb)
        if link is None or link["state"] in ("Removing", "Removed"):
            continue
        # aws-behaviour.md §2: "Removing" while the group's instances drain, then "Removed".
        for iid in group["instances"]:
            WORLD.deregister(lb, iid)
        link.update(state="Removing", since=WORLD.now())
    WORLD.advance()
    return ""


def asg_describe_lbs(params):
    group = WORLD.groups[asg_group(params)]
    return "<LoadBalancers>" + "".join(
        f"<member><LoadBalancerName>{escape(lb)}</LoadBalancerName><State>{link['state']}</State></member>"
        for lb, link in sorted(group["lbs"].items())) + "</LoadBalancers>"


def asg_describe_groups(params):
    names = member_params(params, "AutoScalingGroupNames") or sorted(WORLD.groups)
    out = "<AutoScalingGroups>"
    for name in names:
        if name not in WORLD.groups:
            continue
        g = WORLD.groups[name]
        zones = sorted({WORLD.ec2[i] for i in g["instances"]}) or ["eu-west-1a"]
        attached = sorted(lb for lb, link in g["lbs"].items() if link["state"] != "Removed")
        out += (f"<member><AutoScalingGroupName>{escape(name)}</AutoScalingGroupName>"
                f"<AutoScalingGroupARN>arn:aws:autoscaling:eu-west-1:111122223333:autoScalingGroup:{uuid.uuid4()}:autoScalingGroupName/{escape(name)}</AutoScalingGroupARN>"
                f"<LaunchConfigurationName>lc</LaunchConfigurationName>"
                f"<MinSize>{len(g['instances'])}</MinSize><MaxSize>{len(g['instances']) + 2}</MaxSize>"
                f"<DesiredCapacity>{len(g['instances'])}</DesiredCapacity><DefaultCooldown>300</DefaultCooldown>"
                f"<AvailabilityZones>" + "".join(f"<member>{escape(z)}</member>" for z in zones) +
                "</AvailabilityZones><LoadBalancerNames>" +
                "".join(f"<member>{escape(lb)}</member>" for lb in attached) +
                "</LoadBalancerNames><HealthCheckType>ELB</HealthCheckType><HealthCheckGracePeriod>300</HealthCheckGracePeriod>"
                "<Instances>" + "".join(
                    f"<member><InstanceId>{escape(i)}</InstanceId><AvailabilityZone>{escape(WORLD.ec2[i])}</AvailabilityZone>"
                    f"<LifecycleState>InService</LifecycleState>"
                    f"<HealthStatus>{'Unhealthy' if i in WORLD.unhealthy else 'Healthy'}</HealthStatus>"
                    f"<ProtectedFromScaleIn>false</ProtectedFromScaleIn></member>" for i in g["instances"]) +
                "</Instances><CreatedTime>2026-01-01T00:00:00Z</CreatedTime></member>")
    return out + "</AutoScalingGroups>"


# ---------------------------------------------------------------- EC2 (its own Query dialect)
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"


def ec2_describe_instances(params):
    """Lists are InstanceId.N in EC2's dialect; answers have no <...Result> wrapper."""
    ids = [v for k, v in sorted(params.items(), key=lambda kv: kv[0])
           if re.fullmatch(r"InstanceId\.\d+", k)]
    for iid in ids:
        if iid not in WORLD.ec2:
            raise AwsFault(400, "InvalidInstanceID.NotFound", f"The instance ID '{iid}' does not exist")
    items = "".join(
        f"<item><reservationId>r-{iid[2:]}</reservationId><ownerId>111122223333</ownerId><instancesSet>"
        f"<item><instanceId>{escape(iid)}</instanceId><instanceState><code>16</code><name>running</name>"
        f"</instanceState><placement><availabilityZone>{escape(WORLD.ec2[iid])}</availabilityZone>"
        f"<tenancy>default</tenancy></placement></item></instancesSet></item>"
        for iid in (ids or sorted(WORLD.ec2)))
    return f"<reservationSet>{items}</reservationSet>"


# ---------------------------------------------------------------- ELBv2 (Query, 2015-12-01)
# Every behaviour below that a kind fake would skip cites its line of
# ../shared/docs/aws-behaviour.md (§7 target health, §8 limits and paging, §9 authentication).
ELBV2_NS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
# aws-behaviour.md §8: "at most 100 rules per listener by default"; /__fake/setup
# {"rules_per_listener": N} lowers it for tests.
V2_LIMITS = {"rules_per_listener": 100}
WILDCARD_FIELDS = ("host-header", "path-pattern", "http-header")


def v2_group(targets, settings=None):
    """A target group: its targets and its health-check timing (fast by default, for tests)."""
    s = settings or {}
    return {"targets": {tid: {"healthy": bool(h), "since": -1e6, "recovered_at": None,
                              "deregistered_at": None} for tid, h in targets.items()},
            "interval": s.get("interval", 0.2), "threshold": s.get("healthy_threshold", 2),
            "delay": s.get("deregistration_delay", 0.5), "in_use_since": None}


def forwarded_groups(actions):
    out = []
    for a in actions:
        if a.get("Type") == "forward":
            groups = a.get("ForwardConfig", {}).get("TargetGroups") or [{"TargetGroupArn": a.get("TargetGroupArn")}]
            out += [g.get("TargetGroupArn") for g in groups]
    return out


def v2_refresh_usage(already=False):
    """aws-behaviour.md §7: a target group is health-checked only while a listener default
    action or a rule forwards to it. Called after every change to listeners or rules; a group
    that starts being used starts its health checks now (or long ago, for what a test sets up
    as already in service: `already`)."""
    used = set()
    for l in WORLD.listeners.values():
        used.update(forwarded_groups(l["default"]))
    for r in WORLD.rules.values():
        used.update(forwarded_groups(r["actions"]))
    for arn, g in WORLD.target_groups.items():
        if arn in used and g["in_use_since"] is None:
            g["in_use_since"] = -1e6 if already else WORLD.now()
        elif arn not in used:
            g["in_use_since"] = None


def v2_target_state(arn, tid):
    """State, Reason, Description of one target, as DescribeTargetHealth reports them."""
    g = WORLD.target_groups[arn]
    t = g["targets"][tid]
    now = WORLD.now()
    if t["deregistered_at"] is not None:
        # aws-behaviour.md §7: a deregistered target drains for the deregistration delay.
        return "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"
    if g["in_use_since"] is None:
        # aws-behaviour.md §7: no listener or rule forwards to the group: not health-checked.
        return "unused", "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer"
    start = max(g["in_use_since"], t["since"])
    if now < start + g["interval"]:
        # aws-behaviour.md §7: initial, Elb.RegistrationInProgress, then Elb.InitialHealthChecking.
        return "initial", "Elb.RegistrationInProgress", "Target registration is in progress"
    if now < start + g["interval"] * g["threshold"]:
        return "initial", "Elb.InitialHealthChecking", "Initial health checks in progress"
    recovering = t["recovered_at"] is not None and now < t["recovered_at"] + g["interval"] * g["threshold"]
    if not t["healthy"] or recovering:
        # aws-behaviour.md §7: unhealthy, Target.FailedHealthChecks.
        return "unhealthy", "Target.FailedHealthChecks", "Health checks failed"
    return "healthy", "", ""


def v2_purge_drained():
    """Deregistered targets leave the group once their deregistration delay is over (or at
    once when the group is not in use: there is nothing to drain). Beyond aws-behaviour.md
    (§7 names the draining state only): ALB guide, "Target groups for your Application Load
    Balancers", "Deregistration delay" (docs.aws.amazon.com/elasticloadbalancing/latest/
    application/edit-target-group-attributes.html#deregistration-delay): the load balancer
    waits the delay (default 300 s) before completing the deregistration, and "If a
    deregistering target has no in-flight requests and no active connections, Elastic Load
    Balancing immediately completes the deregistration process" -- a group no listener or rule
    uses sends no requests, so it has none in flight."""
    now = WORLD.now()
    for g in WORLD.target_groups.values():
        for tid, t in list(g["targets"].items()):
            if t["deregistered_at"] is not None and (g["in_use_since"] is None or
                                                     now >= t["deregistered_at"] + g["delay"]):
                del g["targets"][tid]


def unflatten(params, prefix):
    """Query-protocol nested parameters (Prefix.member.N.Field...) as Python lists/dicts."""
    root = {}
    for key, value in params.items():
        if not key.startswith(prefix + "."):
            continue
        parts = key[len(prefix) + 1:].split(".")
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "member":
                continue
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    def fix(n):
        if isinstance(n, dict):
            if n and all(k.isdigit() for k in n):
                return [fix(n[k]) for k in sorted(n, key=int)]
            return {k: fix(v) for k, v in n.items()}
        return n
    return fix(root) if root else []


def utf16_units(text):
    return len(text.encode("utf-16-le")) // 2


def condition_values(c):
    for key in ("HostHeaderConfig", "PathPatternConfig", "SourceIpConfig", "HttpHeaderConfig"):
        if key in c:
            return c[key].get("Values", [])
    return c.get("Values", [])


def struct_xml(d):
    """A nested structure (dicts, lists of scalars) as Query-protocol XML."""
    out = ""
    for k, v in d.items():
        if isinstance(v, dict):
            out += f"<{k}>{struct_xml(v)}</{k}>"
        elif isinstance(v, list):
            out += f"<{k}>" + "".join(f"<member>{escape(str(x))}</member>" for x in v) + f"</{k}>"
        else:
            out += f"<{k}>{escape(str(v))}</{k}>"
    return out


def actions_xml(actions, tag="Actions"):
    out = f"<{tag}>"
    for a in actions:
        out += f"<member><Type>{escape(a['Type'])}</Type><Order>{a.get('Order', 1)}</Order>"
        if a["Type"] == "fixed-response":
            f = a["FixedResponseConfig"]
            out += (f"<FixedResponseConfig><StatusCode>{escape(f['StatusCode'])}</StatusCode>"
                    f"<ContentType>{escape(f.get('ContentType', ''))}</ContentType>"
                    f"<MessageBody>{escape(f.get('MessageBody', ''))}</MessageBody></FixedResponseConfig>")
        elif a["Type"] == "forward":
            groups = a.get("ForwardConfig", {}).get("TargetGroups") or [{"TargetGroupArn": a["TargetGroupArn"], "Weight": "1"}]
            if len(groups) == 1:
                out += f"<TargetGroupArn>{escape(groups[0]['TargetGroupArn'])}</TargetGroupArn>"
            sticky = a.get("ForwardConfig", {}).get("TargetGroupStickinessConfig")
            out += "<ForwardConfig><TargetGroups>" + "".join(
                f"<member><TargetGroupArn>{escape(g['TargetGroupArn'])}</TargetGroupArn><Weight>{g.get('Weight', '1')}</Weight></member>"
                for g in groups) + "</TargetGroups>"
            if sticky:
                out += f"<TargetGroupStickinessConfig>{struct_xml(sticky)}</TargetGroupStickinessConfig>"
            out += "</ForwardConfig>"
        elif a["Type"] == "redirect":
            out += f"<RedirectConfig>{struct_xml(a['RedirectConfig'])}</RedirectConfig>"
        elif a["Type"] == "authenticate-oidc":
            # A live account never reports the client secret, so a copy of the default action
            # (aws-behaviour.md §9) has to bring its own. That Describe* leaves it out is beyond
            # aws-behaviour.md: the ELBv2 API reference, AuthenticateOidcActionConfig, makes
            # ClientSecret "required if you are creating a rule" and lets a modification keep
            # the secret only through UseExistingClientSecret=true, as nothing can read it
            # back; that DescribeListeners/DescribeRules omit it is observed, not stated (the
            # Terraform AWS provider carries it over from its own state for that reason).
            cfg = {k: v for k, v in a["AuthenticateOidcConfig"].items() if k != "ClientSecret"}
            out += f"<AuthenticateOidcConfig>{struct_xml(cfg)}</AuthenticateOidcConfig>"
        elif a["Type"] == "authenticate-cognito":
            out += f"<AuthenticateCognitoConfig>{struct_xml(a['AuthenticateCognitoConfig'])}</AuthenticateCognitoConfig>"
        out += "</member>"
    return out + f"</{tag}>"


def conditions_xml(conditions):
    out = "<Conditions>"
    for c in conditions:
        out += f"<member><Field>{escape(c['Field'])}</Field>"
        values = "".join(f"<member>{escape(v)}</member>" for v in condition_values(c))
        if c["Field"] == "http-header":
            out += (f"<HttpHeaderConfig><HttpHeaderName>{escape(c['HttpHeaderConfig']['HttpHeaderName'])}"
                    f"</HttpHeaderName><Values>{values}</Values></HttpHeaderConfig>")
        else:
            cfg = {"host-header": "HostHeaderConfig", "path-pattern": "PathPatternConfig",
                   "source-ip": "SourceIpConfig"}[c["Field"]]
            out += f"<{cfg}><Values>{values}</Values></{cfg}>"
            if c["Field"] != "source-ip":
                out += f"<Values>{values}</Values>"
        out += "</member>"
    return out + "</Conditions>"


def v2_listener(arn):
    if arn not in WORLD.listeners:
        raise AwsFault(400, "ListenerNotFound", f"Listener '{arn}' not found")
    return WORLD.listeners[arn]


def v2_default_actions(spec):
    """A listener's default actions from /__fake/setup: forward to `target_group`, behind
    authenticate-oidc or authenticate-cognito when `auth` says so (aws-behaviour.md §9); with
    `sticky_seconds`, a weighted forward (`target_group` and `second_group`) with target group
    stickiness, as a blue/green listener has it; or, with `redirect`, the HTTP listener that
    sends everyone to HTTPS (RedirectActionConfig, ELBv2 API reference)."""
    if spec.get("redirect"):
        return [{"Type": "redirect", "Order": 1, "RedirectConfig": {
            "Protocol": "HTTPS", "Port": "443", "Host": "#{host}", "Path": "/#{path}",
            "Query": "#{query}", "StatusCode": "HTTP_301"}}]
    forward = {"Type": "forward", "TargetGroupArn": spec["target_group"]}
    if spec.get("sticky_seconds"):
        forward = {"Type": "forward", "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": spec["target_group"], "Weight": "90"},
                             {"TargetGroupArn": spec["second_group"], "Weight": "10"}],
            "TargetGroupStickinessConfig": {"Enabled": "true",
                                            "DurationSeconds": str(spec["sticky_seconds"])}}}
    if spec.get("auth") == "oidc":
        auth = {"Type": "authenticate-oidc", "AuthenticateOidcConfig": {
            "Issuer": "https://idp.example.com", "AuthorizationEndpoint": "https://idp.example.com/authorize",
            "TokenEndpoint": "https://idp.example.com/token", "UserInfoEndpoint": "https://idp.example.com/userinfo",
            "ClientId": "intermission-test", "ClientSecret": "idp-client-secret",
            "SessionCookieName": "AWSELBAuthSessionCookie", "Scope": "openid", "SessionTimeout": "604800",
            "OnUnauthenticatedRequest": "authenticate"}}
    elif spec.get("auth") == "cognito":
        auth = {"Type": "authenticate-cognito", "AuthenticateCognitoConfig": {
            "UserPoolArn": "arn:aws:cognito-idp:eu-west-1:111122223333:userpool/eu-west-1_abcdEFGH",
            "UserPoolClientId": "1example23456789", "UserPoolDomain": "intermission-test",
            "SessionCookieName": "AWSELBAuthSessionCookie", "Scope": "openid", "SessionTimeout": "604800",
            "OnUnauthenticatedRequest": "authenticate"}}
    else:
        return [dict(forward, Order=1)]
    return [dict(auth, Order=1), dict(forward, Order=2)]


def v2_describe_listeners(params):
    arns = member_params(params, "ListenerArns")
    out = "<Listeners>"
    for arn in arns:
        l = v2_listener(arn)
        out += (f"<member><ListenerArn>{escape(arn)}</ListenerArn><Port>443</Port><Protocol>HTTPS</Protocol>"
                f"<LoadBalancerArn>{escape(arn.replace(':listener/', ':loadbalancer/').rsplit('/', 1)[0])}</LoadBalancerArn>"
                f"{actions_xml(l['default'], 'DefaultActions')}</member>")
    return out + "</Listeners>"


def rule_xml(r):
    return (f"<member><RuleArn>{escape(r['arn'])}</RuleArn><Priority>{r['priority']}</Priority>"
            f"<IsDefault>false</IsDefault>{conditions_xml(r['conditions'])}{actions_xml(r['actions'])}</member>")


def v2_describe_rules(params):
    listener = params.get("ListenerArn")
    arns = member_params(params, "RuleArns")
    if arns:
        out = "<Rules>"
        for arn in arns:
            if arn not in WORLD.rules:
                raise AwsFault(400, "RuleNotFound", "One or more rules not found")
            out += rule_xml(WORLD.rules[arn])
        return out + "</Rules>"
    if not listener:
        raise AwsFault(400, "ValidationError", "A listener ARN or a set of rule ARNs must be specified")
    l = v2_listener(listener)
    rules = sorted((r for r in WORLD.rules.values() if r["listener"] == listener), key=lambda r: r["priority"])
    entries = [rule_xml(r) for r in rules]
    entries.append(f"<member><RuleArn>{escape(listener)}/default</RuleArn><Priority>default</Priority>"
                   f"<IsDefault>true</IsDefault><Conditions/>{actions_xml(l['default'])}</member>")
    # aws-behaviour.md §8: DescribeRules pages (PageSize 1-400, Marker/NextMarker).
    try:
        size = int(params.get("PageSize") or 400)
        start = int(params.get("Marker") or 0)
    except ValueError:
        raise AwsFault(400, "ValidationError", "Invalid PageSize or Marker")
    if not 1 <= size <= 400 or start < 0:
        raise AwsFault(400, "ValidationError", "1 validation error detected: Value at 'pageSize' "
                       "failed to satisfy constraint: Member must have value between 1 and 400")
    out = "<Rules>" + "".join(entries[start:start + size]) + "</Rules>"
    if start + size < len(entries):
        out += f"<NextMarker>{start + size}</NextMarker>"
    return out


def v2_describe_tags(params):
    arns = member_params(params, "ResourceArns")
    # aws-behaviour.md §8: DescribeTags takes at most 20 ARNs...
    if len(arns) > 20:
        raise AwsFault(400, "ValidationError", "1 validation error detected: Value at 'resourceArns' "
                       "failed to satisfy constraint: Member must have length less than or equal to 20")
    out = "<TagDescriptions>"
    for arn in arns:
        if ":listener-rule/" in arn and arn not in WORLD.rules:
            # ...and answers RuleNotFound for an unknown rule (aws-behaviour.md §8).
            raise AwsFault(400, "RuleNotFound", "One or more rules not found")
        tags = WORLD.rules.get(arn, {}).get("tags", {})
        out += f"<member><ResourceArn>{escape(arn)}</ResourceArn><Tags>" + "".join(
            f"<member><Key>{escape(k)}</Key><Value>{escape(v)}</Value></member>" for k, v in tags.items()) + "</Tags></member>"
    return out + "</TagDescriptions>"


def v2_check_rule(conditions, actions):
    """The limits CreateRule enforces (aws-behaviour.md §8)."""
    if not conditions or not actions:
        raise AwsFault(400, "ValidationError", "A rule needs conditions and actions")
    # aws-behaviour.md §8: five condition values per rule.
    if sum(len(condition_values(c)) for c in conditions) > 5:
        raise AwsFault(400, "InvalidConfigurationRequest", "A rule can only have '5' condition values")
    # Three per condition: "up to three comparison strings per condition and up to five per
    # rule" (ELB user guide, Listener rules for your Application Load Balancer).
    if any(len(condition_values(c)) > 3 for c in conditions):
        raise AwsFault(400, "InvalidConfigurationRequest", "A condition can only have '3' values")
    # aws-behaviour.md §8: five wildcards per rule.
    wildcards = sum(v.count("*") + v.count("?") for c in conditions if c.get("Field") in WILDCARD_FIELDS
                    for v in condition_values(c))
    if wildcards > 5:
        raise AwsFault(400, "InvalidConfigurationRequest", "A rule can only have '5' wildcards")
    for c in conditions:
        # aws-behaviour.md §8: an http-header value of at most 128 characters.
        if c.get("Field") == "http-header" and any(len(v) > 128 for v in condition_values(c)):
            raise AwsFault(400, "InvalidConfigurationRequest",
                           "The value of an 'http-header' condition can be at most '128' characters")
    for a in actions:
        if a["Type"] == "fixed-response":
            body = a["FixedResponseConfig"].get("MessageBody", "")
            # aws-behaviour.md §8: fixed-response MessageBody at most 1024 characters.
            if utf16_units(body) > 1024:
                raise AwsFault(400, "ValidationError", "1 validation error detected: Value at "
                               "'actions.1.member.fixedResponseConfig.messageBody' failed to satisfy "
                               "constraint: Member must have length less than or equal to 1024")
        elif a["Type"] == "forward":
            for g in forwarded_groups([a]):
                if g not in WORLD.target_groups:
                    raise AwsFault(400, "TargetGroupNotFound", f"Target group '{g}' not found")
            # TargetGroupStickinessConfig (ELBv2 API reference): DurationSeconds 1-604800,
            # required when stickiness is enabled.
            sticky = a.get("ForwardConfig", {}).get("TargetGroupStickinessConfig")
            if sticky and sticky.get("Enabled") == "true" and not (
                    sticky.get("DurationSeconds", "").isdigit() and 1 <= int(sticky["DurationSeconds"]) <= 604800):
                raise AwsFault(400, "ValidationError", "Target group stickiness needs DurationSeconds "
                               "from 1 to 604800 when it is enabled")
        elif a["Type"] == "redirect":
            # RedirectActionConfig (ELBv2 API reference): StatusCode HTTP_301 or HTTP_302 is
            # required, and at least one of protocol, host, port or path must change.
            cfg = a.get("RedirectConfig", {})
            if cfg.get("StatusCode") not in ("HTTP_301", "HTTP_302"):
                raise AwsFault(400, "ValidationError", "RedirectConfig needs StatusCode HTTP_301 or HTTP_302")
            unchanged = {"Protocol": "#{protocol}", "Host": "#{host}", "Port": "#{port}", "Path": "/#{path}"}
            if all(cfg.get(k, v) == v for k, v in unchanged.items()):
                raise AwsFault(400, "InvalidLoadBalancerAction", "The redirect would loop: change at "
                               "least one of protocol, host, port or path")
        elif a["Type"] == "authenticate-oidc":
            cfg = a.get("AuthenticateOidcConfig", {})
            missing = [k for k in ("Issuer", "AuthorizationEndpoint", "TokenEndpoint", "UserInfoEndpoint",
                                   "ClientId") if not cfg.get(k)]
            if missing:
                raise AwsFault(400, "ValidationError", f"AuthenticateOidcConfig needs {', '.join(missing)}")
            if not cfg.get("ClientSecret"):  # a new rule has no existing secret to use
                raise AwsFault(400, "InvalidLoadBalancerAction", "A client secret must be specified")
        elif a["Type"] == "authenticate-cognito":
            cfg = a.get("AuthenticateCognitoConfig", {})
            if not all(cfg.get(k) for k in ("UserPoolArn", "UserPoolClientId", "UserPoolDomain")):
                raise AwsFault(400, "ValidationError", "AuthenticateCognitoConfig needs UserPoolArn, "
                               "UserPoolClientId and UserPoolDomain")


def v2_create_rule(params):
    listener = require(params, "ListenerArn")
    v2_listener(listener)
    try:
        priority = int(require(params, "Priority"))
    except ValueError:
        raise AwsFault(400, "ValidationError", "Priority must be a number")
    if not 1 <= priority <= 50000:
        raise AwsFault(400, "ValidationError", "Priority must be between 1 and 50000")
    # aws-behaviour.md §8: PriorityInUse for a taken priority.
    if any(r["listener"] == listener and r["priority"] == priority for r in WORLD.rules.values()):
        raise AwsFault(400, "PriorityInUse", f"Priority '{priority}' is currently in use")
    conditions = unflatten(params, "Conditions")
    actions = unflatten(params, "Actions")
    v2_check_rule(conditions, actions)
    # aws-behaviour.md §8: at most 100 rules per listener (default rule not counted).
    if sum(1 for r in WORLD.rules.values() if r["listener"] == listener) >= V2_LIMITS["rules_per_listener"]:
        raise AwsFault(400, "TooManyRules", "You've reached the limit on the number of rules per listener")
    arn = f"{listener.replace(':listener/', ':listener-rule/')}/{uuid.uuid4().hex[:16]}"
    tags = {t["Key"]: t.get("Value", "") for t in unflatten(params, "Tags")}
    WORLD.rules[arn] = {"arn": arn, "listener": listener, "priority": priority,
                        "conditions": conditions, "actions": actions, "tags": tags}
    v2_refresh_usage()
    return f"<Rules>{rule_xml(WORLD.rules[arn])}</Rules>"


def v2_delete_rule(params):
    arn = require(params, "RuleArn")
    if arn.endswith("/default"):
        raise AwsFault(400, "OperationNotPermitted", "Default rules cannot be deleted")
    if arn not in WORLD.rules:
        # aws-behaviour.md §8: RuleNotFound for an unknown rule.
        raise AwsFault(400, "RuleNotFound", "One or more rules not found")
    del WORLD.rules[arn]
    v2_refresh_usage()
    return ""


def v2_group_arn(params):
    arn = require(params, "TargetGroupArn")
    if arn not in WORLD.target_groups:
        raise AwsFault(400, "TargetGroupNotFound", f"Target group '{arn}' not found")
    return arn


def v2_target_health(params):
    arn = v2_group_arn(params)
    v2_purge_drained()
    out = "<TargetHealthDescriptions>"
    for tid in WORLD.target_groups[arn]["targets"]:
        state, reason, description = v2_target_state(arn, tid)
        detail = f"<Reason>{reason}</Reason><Description>{escape(description)}</Description>" if reason else ""
        out += (f"<member><Target><Id>{escape(tid)}</Id><Port>80</Port></Target><HealthCheckPort>80</HealthCheckPort>"
                f"<TargetHealth><State>{state}</State>{detail}</TargetHealth></member>")
    return out + "</TargetHealthDescriptions>"


def v2_register_targets(params):
    """A target registered again while it drains starts over (initial, then its health
    checks). Beyond aws-behaviour.md: the ELBv2 API reference (RegisterTargets, TargetHealth)
    and the ALB guide ("Register targets", "Deregistration delay") do not say what registering
    a draining target does; the slower possibility is the one modelled, as for Classic ELB."""
    g = WORLD.target_groups[v2_group_arn(params)]
    for target in unflatten(params, "Targets"):
        t = g["targets"].get(target["Id"])
        if t is None or t["deregistered_at"] is not None:
            g["targets"][target["Id"]] = {"healthy": True, "since": WORLD.now(), "recovered_at": None,
                                          "deregistered_at": None}
    return ""


def v2_deregister_targets(params):
    arn = v2_group_arn(params)
    for target in unflatten(params, "Targets"):
        t = WORLD.target_groups[arn]["targets"].get(target["Id"])
        if t is None:
            raise AwsFault(400, "InvalidTarget", f"The target '{target['Id']}' is not registered")
        if t["deregistered_at"] is None:
            t["deregistered_at"] = WORLD.now()
    v2_purge_drained()
    return ""


def v2_set_target(group, tid, healthy):
    """/__fake/target: a target starts or stops passing its health checks (added if new)."""
    g = WORLD.target_groups.setdefault(group, v2_group({}))
    t = g["targets"].get(tid)
    if t is None:
        g["targets"][tid] = {"healthy": healthy, "since": WORLD.now(), "recovered_at": None,
                             "deregistered_at": None}
        return
    if healthy and not t["healthy"]:
        t["recovered_at"] = WORLD.now()  # healthy again only after the healthy threshold
    t["healthy"] = healthy


def v2_setup(req):
    """The ELBv2 part of /__fake/setup."""
    settings = req.get("target_group_settings", {})
    for arn, targets in req.get("target_groups", {}).items():
        WORLD.target_groups[arn] = v2_group(targets, settings.get(arn))
    for l in req.get("listeners", []):
        WORLD.listeners[l["arn"]] = {"default": v2_default_actions(l)}
    for r in req.get("rules", []):  # rules of others, already on the listener
        arn = f"{r['listener'].replace(':listener/', ':listener-rule/')}/{uuid.uuid4().hex[:16]}"
        WORLD.rules[arn] = {"arn": arn, "listener": r["listener"], "priority": r["priority"],
                            "conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": [r.get("path", "/*")]}}],
                            "actions": [{"Type": "fixed-response", "Order": 1, "FixedResponseConfig":
                                         {"StatusCode": "200", "ContentType": "text/plain", "MessageBody": r.get("body", "theirs")}}],
                            "tags": r.get("tags", {})}
    if "rules_per_listener" in req:
        V2_LIMITS["rules_per_listener"] = req["rules_per_listener"]
    v2_refresh_usage(already=True)  # what the test sets up has long been in service


def v2_answer(actions):
    """What a user gets from a rule's actions: authentication first if the actions say so,
    then a fixed response, a redirect or a forward (sticky or not). A forward to a group with no healthy target is the
    load balancer's own 503 — the error page the product exists to avoid."""
    v2_purge_drained()
    authenticated = False
    for a in sorted(actions, key=lambda a: int(a.get("Order", 1))):
        if a["Type"].startswith("authenticate-"):
            authenticated = True
        elif a["Type"] == "fixed-response":
            return {"authenticated": authenticated, "status": int(a["FixedResponseConfig"]["StatusCode"]),
                    "fixed_response": True}
        elif a["Type"] == "redirect":
            cfg = a["RedirectConfig"]
            return {"authenticated": authenticated, "status": int(cfg["StatusCode"][5:]),
                    "redirect": f"{cfg.get('Protocol', '#{protocol}')}://{cfg.get('Host', '#{host}')}:"
                                f"{cfg.get('Port', '#{port}')}{cfg.get('Path', '/#{path}')}"}
        elif a["Type"] == "forward":
            for g in forwarded_groups([a]):
                targets = WORLD.target_groups.get(g, {}).get("targets", {})
                if any(v2_target_state(g, tid)[0] == "healthy" for tid in targets):
                    sticky = a.get("ForwardConfig", {}).get("TargetGroupStickinessConfig", {})
                    return {"authenticated": authenticated, "status": 200, "target_group": g,
                            "sticky_seconds": int(sticky["DurationSeconds"]) if sticky.get("Enabled") == "true" else None}
            return {"authenticated": authenticated, "status": 503, "error": "no healthy target"}
    return {"authenticated": authenticated, "status": 500, "error": "no terminal action"}


def route(listener, host, path, ip, headers):
    """Which rule an ALB would apply to a request (the lowest priority whose conditions
    match) and what the user gets from it."""
    import fnmatch
    import ipaddress
    headers = {k.lower(): v for k, v in headers.items()}
    rules = sorted((r for r in WORLD.rules.values() if r["listener"] == listener), key=lambda r: r["priority"])
    for r in rules:
        ok = True
        for c in r["conditions"]:
            values = condition_values(c)
            if c["Field"] == "path-pattern":
                ok = ok and any(fnmatch.fnmatchcase(path, v) for v in values)
            elif c["Field"] == "host-header":
                ok = ok and any(fnmatch.fnmatchcase(host.lower(), v.lower()) for v in values)
            elif c["Field"] == "source-ip":
                ok = ok and any(ipaddress.ip_address(ip) in ipaddress.ip_network(v, strict=False) for v in values)
            elif c["Field"] == "http-header":
                # aws-behaviour.md §8: header names and values are matched case-insensitively.
                name = c["HttpHeaderConfig"]["HttpHeaderName"].lower()
                value = headers.get(name)
                ok = ok and value is not None and any(fnmatch.fnmatchcase(value.lower(), v.lower()) for v in values)
        if ok:
            return dict(v2_answer(r["actions"]), rule=r["arn"], priority=r["priority"], actions=r["actions"])
    default = WORLD.listeners[listener]["default"]
    return dict(v2_answer(default), rule="default", priority="default", actions=default)


QUERY = {
    ("elasticloadbalancing", "2012-06-01", "RegisterInstancesWithLoadBalancer"): (ELB_NS, elb_register),
    ("elasticloadbalancing", "2012-06-01", "DeregisterInstancesFromLoadBalancer"): (ELB_NS, elb_deregister),
    ("elasticloadbalancing", "2012-06-01", "DescribeInstanceHealth"): (ELB_NS, elb_health),
    ("elasticloadbalancing", "2012-06-01", "DescribeLoadBalancers"): (ELB_NS, elb_describe),
    ("elasticloadbalancing", "2012-06-01", "DescribeLoadBalancerAttributes"): (ELB_NS, elb_attributes),
    ("ec2", "2016-11-15", "DescribeInstances"): (EC2_NS, ec2_describe_instances),
    ("elasticloadbalancing", "2015-12-01", "DescribeListeners"): (ELBV2_NS, v2_describe_listeners),
    ("elasticloadbalancing", "2015-12-01", "DescribeRules"): (ELBV2_NS, v2_describe_rules),
    ("elasticloadbalancing", "2015-12-01", "DescribeTags"): (ELBV2_NS, v2_describe_tags),
    ("elasticloadbalancing", "2015-12-01", "CreateRule"): (ELBV2_NS, v2_create_rule),
    ("elasticloadbalancing", "2015-12-01", "DeleteRule"): (ELBV2_NS, v2_delete_rule),
    ("elasticloadbalancing", "2015-12-01", "DescribeTargetHealth"): (ELBV2_NS, v2_target_health),
    ("elasticloadbalancing", "2015-12-01", "RegisterTargets"): (ELBV2_NS, v2_register_targets),
    ("elasticloadbalancing", "2015-12-01", "DeregisterTargets"): (ELBV2_NS, v2_deregister_targets),
    ("autoscaling", "2011-01-01", "AttachLoadBalancers"): (ASG_NS, asg_attach),
    ("autoscaling", "2011-01-01", "DetachLoadBalancers"): (ASG_NS, asg_detach),
    ("autoscaling", "2011-01-01", "DescribeLoadBalancers"): (ASG_NS, asg_describe_lbs),
    ("autoscaling", "2011-01-01", "DescribeAutoScalingGroups"): (ASG_NS, asg_describe_groups),
}


# ---------------------------------------------------------------- CodeDeploy (JSON 1.1)
def cd_get_deployment(body):
    did = body.get("deploymentId")
    if not did:
        raise AwsFault(400, "DeploymentIdRequiredException", "At least one deployment ID must be specified.")
    d = WORLD.deployments.get(did)
    if d is None:
        raise AwsFault(400, "DeploymentDoesNotExistException", f"The deployment {did} could not be found.")
    info = {"applicationName": d.get("application", "shop"),
            "deploymentGroupName": d.get("group", "prod-web"), "deploymentId": did,
            "status": d.get("status", "InProgress"), "creator": d.get("creator", "user"),
            "createTime": 1700000000.0, "deploymentConfigName": "CodeDeployDefault.OneAtATime"}
    if d.get("rollback_of"):
        info["rollbackInfo"] = {"rollbackTriggeringDeploymentId": d["rollback_of"]}
    return {"deploymentInfo": info}


JSON_OPS = {("codedeploy", "CodeDeploy_20141006.GetDeployment"): cd_get_deployment}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeAWS/1.0"
    # A reply is written as headers, then body: with Nagle's algorithm on, the body waits for
    # the client's delayed ACK of the headers (about 40 ms on Linux), on every call of a
    # kept-alive connection.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type, extra=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # -- control API ------------------------------------------------------------------------
    def temporary_credentials(self):
        """Issues the temporary credentials the container and instance endpoints hand out."""
        with WORLD.lock:
            WORLD.credentials["ASIAFAKETEMPORARY"] = "temporary-secret"
            WORLD.require_token = "FAKE-TEMPORARY-TOKEN"
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        return json.dumps({"AccessKeyId": "ASIAFAKETEMPORARY", "SecretAccessKey": "temporary-secret",
                           "Token": "FAKE-TEMPORARY-TOKEN", "Expiration": expires})

    def do_PUT(self):
        # IMDSv2: a session token first.
        self.read_body()
        if urllib.parse.urlparse(self.path).path == "/latest/api/token" and \
                self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(200, "FAKE-IMDS-SESSION", "text/plain")
        self.reply(400, "bad request\n", "text/plain")

    def do_GET(self):
        path = urllib.parse.urlparse(self.path).path
        if path == "/container-credentials":
            if self.headers.get("Authorization") != "container-auth-token":
                return self.reply(401, "unauthorized\n", "text/plain")
            return self.reply(200, self.temporary_credentials(), "application/json")
        if path.startswith("/latest/meta-data/iam/security-credentials/"):
            if self.headers.get("X-aws-ec2-metadata-token") != "FAKE-IMDS-SESSION":
                return self.reply(401, "", "text/plain")
            if path.endswith("/"):
                return self.reply(200, "page-host-role", "text/plain")
            return self.reply(200, self.temporary_credentials(), "application/json")
        with WORLD.lock:
            WORLD.sample()
            if path == "/__fake/timeline":
                return self.reply(200, json.dumps(WORLD.timeline), "application/json")
            if path == "/__fake/zone-timeline":
                return self.reply(200, json.dumps(WORLD.zone_timeline), "application/json")
            if path == "/__fake/calls":
                return self.reply(200, json.dumps(WORLD.calls), "application/json")
            if path == "/__fake/state":
                state = {"lbs": {n: {i: "Draining" if e["draining_until"] is not None
                                     else WORLD.instance_state(n, i)[0]
                                     for i, e in lb["instances"].items()}
                                 for n, lb in WORLD.lbs.items()},
                         "groups": {n: {lb: link["state"] for lb, link in g["lbs"].items()}
                                    for n, g in WORLD.groups.items()},
                         "group_instances": {n: list(g["instances"]) for n, g in WORLD.groups.items()},
                         "replaced": WORLD.replaced,
                         "zones": {n: WORLD.zone_view(n) for n in WORLD.lbs},
                         "rules": {arn: {k: v for k, v in r.items()} for arn, r in WORLD.rules.items()},
                         "targets": {arn: {tid: v2_target_state(arn, tid)[0] for tid in g["targets"]}
                                     for arn, g in WORLD.target_groups.items()}}
                return self.reply(200, json.dumps(state), "application/json")
        self.reply(404, "not found\n", "text/plain")

    def control(self, path, body):
        req = json.loads(body or b"{}")
        with WORLD.lock:
            if path == "/__fake/setup":
                if "link_delay" in req:
                    WORLD.link_delay = req["link_delay"]
                if "replace_after" in req:
                    WORLD.replace_after = req["replace_after"]
                WORLD.ec2.update(req.get("instances", {}))  # id -> Availability Zone
                for lb in req.get("load_balancers", []):
                    # Cross-zone is off unless asked: the default for load balancers made with
                    # the API, CLI or CloudFormation (aws-behaviour.md §4).
                    WORLD.lbs[lb["name"]] = {"interval": lb.get("interval", 0.2),
                                             "threshold": lb.get("healthy_threshold", 2),
                                             "draining": lb.get("draining", 0),
                                             "zones": lb.get("zones", ["eu-west-1a"]),
                                             "cross_zone": lb.get("cross_zone", False),
                                             "instances": {}}
                for g in req.get("groups", []):
                    WORLD.groups[g["name"]] = {"instances": list(g["instances"]), "lbs": {}}
                    for iid in g["instances"]:
                        WORLD.ec2.setdefault(iid, "eu-west-1a")
                    for lb in g.get("load_balancers", []):
                        WORLD.groups[g["name"]]["lbs"][lb] = {"state": "InService", "since": -1e6}
                        for iid in g["instances"]:  # long registered: InService already
                            WORLD.lbs[lb]["instances"][iid] = {"since": -1e6, "draining_until": None}
                WORLD.deployments.update(req.get("deployments", {}))
                v2_setup(req)  # ELBv2: target groups, listeners, rules of others, limits
                if "require_token" in req:
                    WORLD.require_token = req["require_token"]
            elif path == "/__fake/sts":  # fake_sts.py
                return self.reply(200, json.dumps(fake_sts.STS.control(req)), "application/json")
            elif path == "/__fake/kill-after":
                KILL_AFTER.update(pid=req["pid"], left=req["calls"])
            elif path == "/__fake/fail":
                WORLD.faults.setdefault(req["action"], []).extend(req["faults"])
            elif path == "/__fake/group":  # scale in or out: the group's instances now
                g = WORLD.groups[req["name"]]
                for iid in req["instances"]:
                    WORLD.ec2.setdefault(iid, req.get("zone", "eu-west-1a"))
                for lb, link in g["lbs"].items():
                    if link["state"] in ("Adding", "Added", "InService"):
                        for iid in set(g["instances"]) - set(req["instances"]):
                            WORLD.deregister(lb, iid)
                        for iid in set(req["instances"]) - set(g["instances"]):
                            WORLD.register(lb, iid)
                g["instances"] = list(req["instances"])
            elif path == "/__fake/drained":  # its in-flight requests ended before the timeout
                entry = WORLD.lbs[req["lb"]]["instances"].get(req["id"])
                if entry is not None and entry["draining_until"] is not None:
                    entry["draining_until"] = WORLD.now()
                WORLD.advance()
            elif path == "/__fake/clock":  # the test moves time on, so awscli's speed cannot matter
                if not 0 <= float(req["advance"]) <= 86400:
                    return self.reply(400, "advance: 0 to 86400 seconds\n", "text/plain")
                with WORLD.lock:
                    WORLD.t0 -= float(req["advance"])
                WORLD.advance()
            elif path == "/__fake/instance":
                if "healthy" in req:
                    (WORLD.unhealthy.discard if req["healthy"] else WORLD.unhealthy.add)(req["id"])
                if "booting" in req:
                    (WORLD.booting.add if req["booting"] else WORLD.booting.discard)(req["id"])
            elif path == "/__fake/deployment":
                WORLD.deployments[req["id"]] = req
            elif path == "/__fake/target":
                v2_set_target(req["group"], req["id"], req.get("healthy", True))
            elif path == "/__fake/delete-rule":  # someone deleting a rule by hand
                WORLD.rules.pop(req["arn"], None)
                v2_refresh_usage()
            elif path == "/__fake/route":
                result = route(req["listener"], req.get("host", "example.com"), req.get("path", "/"),
                               req.get("ip", "100.64.1.1"), {k.lower(): v for k, v in req.get("headers", {}).items()})
                return self.reply(200, json.dumps(result), "application/json")
            else:
                return self.reply(404, "not found\n", "text/plain")
            WORLD.sample()
        self.reply(200, "{}", "application/json")

    # -- AWS --------------------------------------------------------------------------------
    def do_POST(self):
        body = self.raw_body = self.read_body()
        self.draining_at_call = {}  # one handler serves every request of a kept-alive connection
        path = urllib.parse.urlparse(self.path).path
        if path.startswith("/__fake/"):
            return self.control(path, body)
        json_protocol = "amz-json" in (self.headers.get("Content-Type") or "")
        action = "?"
        service = ""
        try:
            if fake_sts.action(body):  # STS, in fake_sts.py (aws-behaviour.md §13)
                action = fake_sts.action(body)
                return fake_sts.handle(self, body, AwsFault)
            service, region = self.verify(body)
            if json_protocol:
                action = self.headers.get("X-Amz-Target", "")
                op = JSON_OPS.get((service, action))
                if op is None:
                    raise AwsFault(400, "UnknownOperationException", f"unknown operation {action}")
                if self.inject(action.split(".")[-1]):
                    raise AwsFault(400, "ValidationException", "'lost' is for Query actions only")
                with WORLD.lock:
                    result = op(json.loads(body or b"{}"))
                    self.record(action.split(".")[-1], 200)
                return self.reply(200, json.dumps(result), "application/x-amz-json-1.1",
                                  {"x-amzn-RequestId": str(uuid.uuid4())})
            params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
            action = params.get("Action", "")
            entry = QUERY.get((service, params.get("Version", ""), action))
            if entry is None:
                raise AwsFault(400, "InvalidAction", f"The action {action} is not valid for this web service.")
            lost = self.inject(action)
            ns, op = entry
            with WORLD.lock:
                WORLD.sample()
                # What was draining when the call arrived, for the call log: tests prove a call
                # was made inside a draining window (aws-behaviour.md §1) from it.
                self.draining_at_call = {n: sorted(i for i, e in b["instances"].items()
                                                   if e["draining_until"] is not None)
                                         for n, b in WORLD.lbs.items()}
                result = op(params)
                WORLD.sample()
                self.record(action, 200)
            if lost:
                # Made, and the connection drops before the answer: the caller cannot know
                # whether it was, and its retry meets its own write (PriorityInUse, ...).
                raise AwsFault(0, "__drop__", "")
            rid = str(uuid.uuid4())
            if service == "ec2":  # EC2's dialect: no Result wrapper, a lower-case requestId
                xml = f'<{action}Response xmlns="{ns}"><requestId>{rid}</requestId>{result}</{action}Response>'
            else:
                xml = (f'<{action}Response xmlns="{ns}"><{action}Result>{result}</{action}Result>'
                       f"<ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata></{action}Response>")
            self.reply(200, xml, "text/xml", {"x-amzn-RequestId": rid})
            return self.maybe_kill(action)
        except AwsFault as f:
            with WORLD.lock:
                self.record(action.split(".")[-1], f.status, f.code)
            if f.code == "__drop__":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            rid = str(uuid.uuid4())
            if json_protocol:
                return self.reply(f.status, json.dumps({"__type": f.code, "message": f.message}),
                                  "application/x-amz-json-1.1", {"x-amzn-RequestId": rid})
            kind = "Sender" if f.sender else "Receiver"
            if service == "ec2":
                xml = (f"<Response><Errors><Error><Code>{escape(f.code)}</Code><Message>{escape(f.message)}"
                       f"</Message></Error></Errors><RequestID>{rid}</RequestID></Response>")
                return self.reply(f.status, xml, "text/xml")
            xml = (f"<ErrorResponse><Error><Type>{kind}</Type><Code>{escape(f.code)}</Code>"
                   f"<Message>{escape(f.message)}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>")
            return self.reply(f.status, xml, "text/xml")

    def record(self, action, status, code=""):
        WORLD.calls.append({"t": round(WORLD.now(), 4), "action": action, "status": status, "code": code,
                            "body": getattr(self, "raw_body", b"").decode("latin-1"),  # bytes as sent
                            # Classic ELB instances draining when the call arrived (Query calls)
                            "draining": getattr(self, "draining_at_call", {})})

    def maybe_kill(self, action):
        """The crash hook of /__fake/kill-after: counts answered mutating calls."""
        if action.startswith("Describe"):
            return
        with WORLD.lock:
            if KILL_AFTER.get("left") is None:
                return
            KILL_AFTER["left"] -= 1
            if KILL_AFTER["left"] > 0:
                return
            pid = KILL_AFTER.pop("pid")
            KILL_AFTER.pop("left")
        self.wfile.flush()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def inject(self, action):
        with WORLD.lock:
            queue = WORLD.faults.get(action)
            fault = queue.pop(0) if queue else None
        if fault is None or fault == "pass":  # "pass" lets one call through, to aim later faults
            return None
        if fault == "lost":  # the call is made, its answer never arrives (the caller drops it)
            return fault
        table = {"Throttling": (400, "Throttling", "Rate exceeded"),
                 "DependencyThrottle": (400, "DependencyThrottle", "Rate exceeded"),
                 "ResourceContention": (500, "ResourceContention", "You already have a pending update"),
                 "500": (500, "InternalFailure", "internal failure"),
                 "503": (503, "ServiceUnavailable", "Service Unavailable"),
                 "drop": (0, "__drop__", "")}
        status, code, message = table[fault]
        raise AwsFault(status, code, message, sender=status < 500)

    def verify(self, body):
        """Checks the SigV4 signature with botocore's own implementation."""
        m = AUTH_RE.fullmatch(self.headers.get("Authorization", ""))
        if not m:
            raise AwsFault(400, "MissingAuthenticationToken", "Request is missing Authentication Token")
        key, date, region, service, signed, signature = m.groups()
        secret = WORLD.credentials.get(key) or fake_sts.STS.secret(  # temporary, from STS
            key, self.headers.get("X-Amz-Security-Token"), AwsFault)
        if secret is None:
            raise AwsFault(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        amz_date = self.headers.get("X-Amz-Date", "")
        if not amz_date.startswith(date):
            raise AwsFault(400, "IncompleteSignature", "Date in Credential scope does not match X-Amz-Date")
        token = self.headers.get("X-Amz-Security-Token")
        if WORLD.require_token is not None and token != WORLD.require_token and \
                not fake_sts.STS.is_session(key):
            raise AwsFault(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        names = signed.split(";")
        if "host" not in names or (token is not None and "x-amz-security-token" not in names):
            raise AwsFault(400, "IncompleteSignature", "Host and the security token must be signed")
        headers = {}
        for name in names:
            value = self.headers.get(name)
            if value is None:
                raise AwsFault(400, "IncompleteSignature", f"'{name}' is named as a SignedHeader, but it does not exist")
            headers[name] = value
        request = AWSRequest(method="POST", url=f"http://{headers['host']}{self.path}", data=body,
                             headers=headers)
        request.context["timestamp"] = amz_date
        auth = SigV4Auth(Credentials(key, secret, token), service, region)
        canonical = auth.canonical_request(request)
        expected = auth.signature(auth.string_to_sign(request, canonical), request)
        if expected != signature:
            raise AwsFault(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
        return service, region


def sampler():
    while True:
        WORLD.sample()
        time.sleep(0.005)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=sampler, daemon=True).start()
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        import os
        os.rename(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
