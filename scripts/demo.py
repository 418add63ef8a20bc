#!/usr/bin/python3
"""make demo: a deployment, seen by users, on this machine.

Starts HAProxy on 127.0.0.1:8080 in front of two app servers and the intermission page
server, plays a CodeDeploy deployment from its own SNS-shaped events (a start, a failure with
its automatic rollback, then a successful deployment), and prints what users see every 100 ms.
Everything it starts is stopped at the end or on Ctrl-C."""

import argparse
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--bin", default="build/src/app/intermission", help="the intermission binary")
parser.add_argument("--port", type=int, default=8080, help="where HAProxy listens (127.0.0.1)")
parser.add_argument("--speed", type=float, default=1.0, help="scenario speed factor")
args = parser.parse_args()
os.environ["INTERMISSION_BIN"] = os.path.abspath(args.bin)

import stack as st  # noqa: E402  (after INTERMISSION_BIN is set)

BOLD, DIM, GREEN, ORANGE, RED, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[33m", "\033[31m",
                                        "\033[0m") if sys.stdout.isatty() else ("",) * 6


def message(deployment_id, status, **extra):
    m = {"region": "eu-west-1", "accountId": "111122223333", "eventTriggerName": "deploys",
         "applicationName": "shop", "deploymentId": deployment_id,
         "deploymentGroupName": "prod-web", "createTime": None, "completeTime": None,
         "status": status}
    m.update(extra)
    return {"Records": [{"EventSource": "aws:sns", "Sns": {
        "Type": "Notification", "MessageId": f"{deployment_id}-{status}",
        "TopicArn": "arn:aws:sns:eu-west-1:111122223333:deploys",
        "Subject": f"{status}: AWS CodeDeploy {deployment_id} in eu-west-1 to shop",
        "Message": json.dumps(m)}}]}


ROLLBACK = json.dumps({"RollbackMessage": "Deployment d-DEMO2 is triggered to roll back "
                       "deployment d-DEMO1.", "RollbackTriggeringDeploymentId": "d-DEMO1"})
SCENARIO = [
    (2.0, "CodeDeploy: d-DEMO1 CREATED (a user deploys)", message("d-DEMO1", "CREATED")),
    (4.0, "CodeDeploy: d-DEMO1 IN_PROGRESS", message("d-DEMO1", "IN_PROGRESS")),
    (4.1, "SNS delivers d-DEMO1 IN_PROGRESS again (duplicate)", message("d-DEMO1", "IN_PROGRESS")),
    (7.0, "CodeDeploy: d-DEMO1 FAILED", message("d-DEMO1", "FAILED")),
    (7.6, "CodeDeploy: d-DEMO2 CREATED (automatic rollback of d-DEMO1)",
     message("d-DEMO2", "CREATED", rollbackInformation=ROLLBACK)),
    (10.0, "CodeDeploy: d-DEMO2 SUCCEEDED (rollback done)",
     message("d-DEMO2", "SUCCEEDED", rollbackInformation=ROLLBACK)),
    (13.0, "CodeDeploy: d-DEMO3 CREATED (the fixed version)", message("d-DEMO3", "CREATED")),
    (17.0, "CodeDeploy: d-DEMO3 SUCCEEDED", message("d-DEMO3", "SUCCEEDED")),
]
END = 20.0


def main():
    stack = st.Stack(port=args.port)
    try:
        st.wait_for_port(args.port, timeout=0.2)
        sys.exit(f"127.0.0.1:{args.port} is already in use; try: make demo DEMO_PORT=8090")
    except RuntimeError:
        pass
    traffic = None
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        print(f"{BOLD}intermission demo{RESET}: starting HAProxy, two app servers and the page "
              f"server...")
        stack.start()
        print(f"""
  Open {BOLD}http://127.0.0.1:{args.port}/{RESET} in a browser while this runs: you will see the
  app, then the maintenance page during the deployment, then the app again.
  To see the app during maintenance (as testers do), send the bypass cookie:
    curl -b intermission_bypass={st.BYPASS_SECRET} http://127.0.0.1:{args.port}/
  The page server alone: http://127.0.0.1:{stack.page_port}/  (health: /healthz)

  Each line is 100 ms of traffic from 4 clients: {GREEN}app{RESET} / {ORANGE}page{RESET} (503 maintenance) / {RED}errors{RESET}
""")
        traffic = st.Traffic(args.port, clients=4, max_seconds=END / args.speed + 30)
        traffic.start()
        start = time.monotonic()
        events = list(SCENARIO)
        tick = 0
        last_kind = None
        switches = []
        while not stopping:
            tick += 1
            slot_end = start + tick * 0.1
            while time.monotonic() < slot_end:
                time.sleep(0.005)
            elapsed = (slot_end - start) * args.speed
            notes = []
            while events and events[0][0] <= elapsed:
                _, what, event = events.pop(0)
                t0 = time.monotonic()
                out = stack.handle(event).stdout.strip().splitlines()
                notes.append(f"{what} -> {out[0] if out else ''} "
                             f"({(time.monotonic() - t0) * 1000:.0f} ms)")
            c = traffic.kinds(slot_end - 0.1, slot_end)
            kind = "page" if c["page"] > c["app"] else "app"
            if last_kind is not None and kind != last_kind:
                switches.append((elapsed, kind))
            last_kind = kind
            bar = f"{GREEN}{'#' * min(c['app'], 40)}{RESET}{ORANGE}{'=' * min(c['page'], 40)}{RESET}"
            errors = f"{RED}{c['error'] + c['other']}{RESET}" if c["error"] + c["other"] else "0"
            print(f"{elapsed:5.1f}s  app {c['app']:3d}  page {c['page']:3d}  errors {errors:>3}  "
                  f"{bar}")
            for n in notes:
                print(f"       {BOLD}>> {n}{RESET}")
            if elapsed >= END:
                break
        traffic.stop()
        total = traffic.kinds()
        print(f"\n{BOLD}Summary{RESET}: {sum(total.values())} requests: {total['app']} app, "
              f"{total['page']} maintenance page, {total['error']} errors, "
              f"{total['other']} unexpected answers.")
        print("Page switches seen by users: " +
              (", ".join(f"{k} at {t:.1f}s" for t, k in switches) or "none"))
        print("The failed deployment and its rollback kept the page up once, without flapping;")
        print("the duplicate delivery changed nothing. Ledger now:\n")
        print(stack.cli("status").stdout)
        return 0 if total["error"] + total["other"] == 0 else 1
    finally:
        # Stop first: printing may fail if the terminal or pipe is gone.
        if traffic is not None:
            traffic.stop()
        stack.stop()
        try:
            print("stopped everything the demo started.")
        except OSError:
            pass


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(1)
