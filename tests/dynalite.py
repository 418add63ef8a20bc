"""Starts the dynalite DynamoDB emulator (npm, tests/tools) on loopback for a test, and creates
the table the store expects (from `intermission dynamodb-table`) with the Debian awscli."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from stack import BIN, free_port, wait_for_port  # noqa: E402

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools")


class Dynalite:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["node", os.path.join(TOOLS, "node_modules", "dynalite", "cli.js"),
             "--port", str(self.port), "--createTableMs", "0", "--updateTableMs", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port, timeout=20)
        self.url = f"http://127.0.0.1:{self.port}"

    def create_table(self, name, env):
        definition = subprocess.run([BIN, "dynamodb-table", name], capture_output=True,
                                    text=True, check=True).stdout
        subprocess.run(["/usr/bin/aws", "--endpoint-url", self.url, "dynamodb", "create-table",
                        "--cli-input-json", definition], check=True, env=env,
                       capture_output=True, timeout=60)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            out = subprocess.run(["/usr/bin/aws", "--endpoint-url", self.url, "dynamodb",
                                  "describe-table", "--table-name", name, "--query",
                                  "Table.TableStatus", "--output", "text"],
                                 capture_output=True, text=True, env=env)
            if out.stdout.strip() == "ACTIVE":
                return
            time.sleep(0.1)
        raise RuntimeError("table never became ACTIVE")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
