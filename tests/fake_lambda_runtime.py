"""A fake of the AWS Lambda Runtime API (2018-06-01) on loopback, in the test's process:
hands events to a custom runtime through /runtime/invocation/next and collects what it posts
back (/response, /error, /runtime/init/error)."""

import json
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeLambdaRuntime:
    def __init__(self, timeout_ms=30000):
        self.timeout_ms = timeout_ms
        self.pending = queue.Queue()
        self.results = {}
        self.init_errors = []
        self.next_calls = []  # monotonic times of each GET next
        # Per request id, in wall-clock ms: the deadline handed out with the event, and when
        # the answer came (Lambda kills an invocation still running at its deadline).
        self.deadlines = {}
        self.answered = {}
        self.last_request_id = None
        self.cond = threading.Condition()
        runtime = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, body=b"", headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != "/2018-06-01/runtime/invocation/next":
                    return self.reply(404)
                with runtime.cond:
                    runtime.next_calls.append(time.monotonic())
                    runtime.cond.notify_all()
                request_id, event, trace = runtime.pending.get()  # blocks, like Lambda
                deadline = int(time.time() * 1000) + runtime.timeout_ms
                with runtime.cond:
                    runtime.deadlines[request_id] = deadline
                self.reply(200, event.encode(), {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline),
                    "Lambda-Runtime-Trace-Id": trace,
                    "Lambda-Runtime-Invoked-Function-Arn":
                        "arn:aws:lambda:eu-west-1:111122223333:function:intermission",
                    "Content-Type": "application/json"})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode()
                parts = self.path.split("/")
                with runtime.cond:
                    if self.path == "/2018-06-01/runtime/init/error":
                        runtime.init_errors.append(json.loads(body))
                    elif len(parts) == 6 and parts[5] in ("response", "error"):
                        runtime.answered.setdefault(parts[4], int(time.time() * 1000))
                        runtime.results[parts[4]] = (parts[5], body,
                                                     self.headers.get("Lambda-Runtime-Function-Error-Type"))
                    else:
                        return self.reply(404)
                    runtime.cond.notify_all()
                self.reply(202, b'{"status":"OK"}')

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event, timeout=60):
        """Queues one invocation and waits for the runtime's answer: (kind, body, error_type)."""
        request_id = str(uuid.uuid4())
        self.last_request_id = request_id
        body = event if isinstance(event, str) else json.dumps(event)
        self.pending.put((request_id, body, f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"))
        deadline = time.monotonic() + timeout
        with self.cond:
            while request_id not in self.results:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the runtime did not answer the invocation")
                self.cond.wait(left)
            return self.results[request_id]

    def time_left_ms(self, request_id=None):
        """How long before its deadline an invocation was answered (the last one by default):
        negative if it ran past it, where Lambda would have killed it."""
        request_id = request_id or self.last_request_id
        with self.cond:
            return self.deadlines[request_id] - self.answered[request_id]

    def wait_for_next(self, count=1, timeout=30):
        """Waits until the runtime has asked for `count` invocations; returns the times."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.next_calls) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the runtime never asked for an invocation")
                self.cond.wait(left)
            return list(self.next_calls)

    def wait_for_init_error(self, timeout=30):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.init_errors:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no init error")
                self.cond.wait(left)
            return self.init_errors[0]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
