"""Raw HTTP/1.x requests that test a server's framing and header rules (RFC 9112/9110), and a
probe that sends one on a fresh connection and reports what came back: the statuses of the
responses, the type of the first, whether the server closed the connection, and whether it
left the client hanging. Used by tests/page_conformance_test.py (our page server) and
bench/conformance.py (the same requests to nginx and HAProxy)."""

import collections
import socket
import time

# name, the bytes, what our page server answers: statuses, and whether it closes after them.
# The health path is /healthz, everything else gets the 503 page.
Case = collections.namedtuple("Case", "name raw statuses closes rule")

CASES = [
    Case("GET, origin form", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", [503], False, ""),
    Case("health path, origin form", b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", [200], False, ""),
    Case("health path, absolute form", b"GET http://a/healthz HTTP/1.1\r\nHost: a\r\n\r\n", [200], False,
         "RFC 9112 §3.2.2: a server MUST accept the absolute form"),
    Case("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\n\r\n", [400], True, "RFC 9112 §3.2: MUST 400"),
    Case("two Host lines", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", [400], True,
         "RFC 9112 §3.2: MUST 400"),
    Case("Host with a space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", [400], True, "RFC 9112 §3.2: MUST 400"),
    Case("Host with a path", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", [400], True, "RFC 9112 §3.2: MUST 400"),
    Case("Host with a bad port", b"GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", [400], True, "RFC 9112 §3.2: MUST 400"),
    Case("Host empty", b"GET / HTTP/1.1\r\nHost:\r\n\r\n", [503], False,
         "RFC 9110 §7.2: empty is valid (no authority)"),
    Case("HTTP/1.0 without Host", b"GET / HTTP/1.0\r\n\r\n", [503], True, "Host is optional in 1.0"),
    Case("space before the colon", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", [400], True,
         "RFC 9112 §5.1: MUST 400"),
    Case("bare LF line ends", b"GET / HTTP/1.1\nHost: a\n\n", [400], True,
         "RFC 9112 §2.2: MAY accept; refused"),
    Case("a folded field line (obs-fold)",
         b"GET / HTTP/1.1\r\nHost: a\r\nAccept-Language: de,\r\n en\r\n\r\n", [400], True,
         "RFC 9112 §5.2: 400, or unfold into spaces"),
    Case("Transfer-Encoding: gzip (+ a request in the body)",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
         [400], True, "RFC 9112 §6.3: MUST 400 and close"),
    Case("Transfer-Encoding: chunked, gzip",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", [400], True,
         "RFC 9112 §6.3: MUST 400 and close"),
    Case("Transfer-Encoding: gzip, chunked",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", [503], False,
         "chunked is final: the length is known"),
    Case("Transfer-Encoding and Content-Length",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         [400], True, "RFC 9112 §6.1: MAY reject; MUST close after"),
    Case("two different Content-Length",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", [400], True,
         "RFC 9112 §6.3: unrecoverable error"),
    Case("HTTP/1.0 with Transfer-Encoding, keep-alive, 2 requests",
         b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
         b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", [400], True,
         "RFC 9112 §6.1: faulty framing, close after"),
    Case("HTTP/0.9 request line", b"GET /\r\n", [400], True, "one answer or a close, never a hang"),
    Case("HTTP/2.0 request line", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", [505], True,
         "RFC 9110 §15.6.6: 505 may refuse a major version"),
    Case("HTTP/1.2 request line", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", [503], False,
         "RFC 9112 §2.3: SHOULD process as 1.1"),
    Case("an empty line before the request line", b"\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", [200], False,
         "RFC 9112 §2.2: SHOULD ignore at least one"),
    Case("lower-case method", b"get /healthz HTTP/1.1\r\nHost: a\r\n\r\n", [400], True,
         "RFC 9110 §9.1: methods are case-sensitive"),
    Case("request-target in none of the four forms", b"GET healthz HTTP/1.1\r\nHost: a\r\n\r\n", [400], True,
         "RFC 9112 §3.2: origin, absolute, authority or asterisk form"),
    Case("Accept: application/json;q=1, text/html;q=0.5",
         b"GET / HTTP/1.1\r\nHost: a\r\nAccept: application/json;q=1, text/html;q=0.5\r\n\r\n", [503], False,
         "RFC 9110 §12.5.1: JSON preferred"),
    Case("Accept: text/html;q=0.5, application/json",
         b"GET / HTTP/1.1\r\nHost: a\r\nAccept: text/html;q=0.5, application/json\r\n\r\n", [503], False,
         "RFC 9110 §12.5.1: quality, not order"),
    Case("Accept: application/json;q=0, */*",
         b"GET / HTTP/1.1\r\nHost: a\r\nAccept: application/json;q=0, */*\r\n\r\n", [503], False,
         "RFC 9110 §12.4.2: q=0 is 'not acceptable'"),
    Case("Accept: application/json, text/html",
         b"GET / HTTP/1.1\r\nHost: a\r\nAccept: application/json, text/html\r\n\r\n", [503], False,
         "a tie: HTML"),
    Case("two pipelined requests",
         b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", [503, 200], False, ""),
    Case("Expect: 100-continue, no body sent",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n", [503], True,
         "final answer at once"),
]

# The type of the first answer our page server gives, where the case is about negotiation.
TYPES = {
    "Accept: application/json;q=1, text/html;q=0.5": "application/json",
    "Accept: text/html;q=0.5, application/json": "application/json",
    "Accept: application/json;q=0, */*": "text/html",
    "Accept: application/json, text/html": "text/html",
}

Probe = collections.namedtuple("Probe", "statuses content_type closed hang raw")


def _responses(data):
    """Splits what came back into responses: [(status, headers)], and the bytes left over
    (an HTTP/0.9-style answer without a status line, or a partial response)."""
    out = []
    while data.startswith(b"HTTP/"):
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        lines = data[:end].decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            break
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        rest = data[end + 4:]
        if status == 100:
            data = rest
            continue
        if "chunked" in headers.get("transfer-encoding", ""):
            while True:
                eol = rest.find(b"\r\n")
                if eol < 0:
                    return out + [(status, headers)], b""
                size = int(rest[:eol].split(b";")[0] or b"0", 16)
                rest = rest[eol + 2 + size + 2:]
                if size == 0:
                    break
        else:
            rest = rest[int(headers.get("content-length", "0") or 0):]
        out.append((status, headers))
        data = rest
    return out, data


def probe(port, raw, host="127.0.0.1", hang_after=2.0, quiet_after=0.4):
    """Sends `raw` on a new connection. Reads until the server closes, or until nothing more
    comes for `quiet_after` seconds once something came (the connection is left open), or for
    `hang_after` seconds when nothing comes at all (a hang)."""
    s = socket.create_connection((host, port), timeout=hang_after)
    data = b""
    closed = False
    try:
        s.sendall(raw)
        while True:
            s.settimeout(quiet_after if data else hang_after)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
    finally:
        s.close()
    responses, left = _responses(data)
    content_type = responses[0][1].get("content-type", "").split(";")[0] if responses else ""
    return Probe([status for status, _ in responses], content_type, closed,
                 hang=not data and not closed, raw=left[:40])


def describe(p):
    """One table cell: "400, closed", "503 application/json, open", "hang", "no HTTP answer"."""
    if p.hang:
        return "no answer, left open (hang)"
    if not p.statuses:
        what = f"HTTP/0.9-style bytes {p.raw[:20]!r}" if p.raw else "no answer"
        return f"{what}, {'closed' if p.closed else 'open'}"
    statuses = " + ".join(str(s) for s in p.statuses)
    return f"{statuses}, {'closed' if p.closed else 'open'}"


def timed_probe(port, raw, **kwargs):
    start = time.monotonic()
    p = probe(port, raw, **kwargs)
    return p, time.monotonic() - start
