#!/usr/bin/python3
"""Lambda zip size and cold start: the time from starting `bootstrap` (unpacked at /var/task in
an otherwise empty chroot, as the packaging test does) to its first /runtime/invocation/next
request, with a config that names the Classic ELB backend and the CodeDeploy lookup (no AWS
call happens before the first invocation). Median of N runs. Needs root or user namespaces."""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from fake_lambda_runtime import FakeLambdaRuntime  # noqa: E402

CONFIG = """\
store: {path: /tmp/state.db}
aws: {region: eu-west-1}
routes: [{deployment_group: "*-*", environment: "{1}"}]
environments:
  prod:
    backend: {type: elb-classic, load_balancer: web-lb, auto_scaling_group: web-asg,
              page_instances: [i-0123456789abcdef0]}
"""

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--zip", default="build/intermission-lambda.zip")
p.add_argument("--runs", type=int, default=15)
args = p.parse_args()

samples = []
with tempfile.TemporaryDirectory(prefix="intermission-cold-") as root:
    with zipfile.ZipFile(args.zip) as z:
        z.extractall(os.path.join(root, "var", "task"))
        unpacked = sum(i.file_size for i in z.infolist())
    for dirpath, _, files in os.walk(os.path.join(root, "var", "task")):
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o755)
    os.makedirs(os.path.join(root, "tmp"))
    chroot = [shutil.which("chroot") or "/usr/sbin/chroot", root, "/var/task/bootstrap"]
    if os.geteuid() != 0:
        chroot = ["unshare", "--user", "--map-root-user"] + chroot
    for _ in range(args.runs):
        runtime = FakeLambdaRuntime()
        env = {"AWS_LAMBDA_RUNTIME_API": runtime.address, "INTERMISSION_CONFIG_YAML": CONFIG,
               "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x",
               "AWS_REGION": "eu-west-1", "LAMBDA_TASK_ROOT": "/var/task"}
        started = time.monotonic()
        proc = subprocess.Popen(chroot, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        samples.append(runtime.wait_for_next(1)[0] - started)
        proc.kill()
        proc.wait()
        runtime.stop()

size = os.path.getsize(args.zip)
print(f"zip: {size / 1e6:.1f} MB compressed, {unpacked / 1e6:.1f} MB unpacked")
print(f"cold start (process start -> first next), {args.runs} runs: "
      f"median {statistics.median(samples) * 1000:.1f} ms, "
      f"min {min(samples) * 1000:.1f} ms, max {max(samples) * 1000:.1f} ms")
