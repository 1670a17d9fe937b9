#!/usr/bin/python3
"""faultserver.py - a test-only HTTP/1.1 server that misbehaves on cue.

Each request it receives takes the next action of a script (a queue), or the
default action when no queued action applies.  An action is either a string
"NAME[:ARG[:ARG2]][*TIMES]" or a JSON object {"do": NAME, ...}; a script is
a list of them (or the strings joined with ","):

  ok[:BODY]                 200 with BODY (JSON: "body", "body_size" N for N
                            pattern bytes, "status", "headers": {..})
  slowdown                  503 SlowDown, S3's XML error body
  internal                  500 InternalError
  nosuchkey                 404 NoSuchKey
  error:STATUS:CODE         STATUS with S3 error CODE (JSON: "message")
  stall[:SECONDS[:BYTES]]   headers with Content-Length of the whole body
                            (body_size, default 1024), BYTES of it (default
                            half), then silence for SECONDS (default 10),
                            then close
  close-mid-body[:BYTES]    the same with no wait: headers, BYTES, close
  slow[:SECONDS[:BYTES]]    the whole body, BYTES (default 16) at a time with
                            SECONDS (default 0.5) between pieces
  hang[:SECONDS]            nothing at all for SECONDS (default 10), close
  close                     close before sending any byte
  close-after-headers       headers saying Content-Length 1024, then close
  reset                     close with a TCP RST (SO_LINGER 0)
  garbage-status[:KIND]     a status line that is not HTTP, then close: KIND
                            "text" ("HTTP/1.1 2x0 Banana") or "binary"
                            (256 random bytes)
  garbage-headers[:KIND]    valid status line, then bad headers: KIND
                            "nocolon", "binary", "conflict" (two different
                            Content-Lengths), "negative" (Content-Length: -1),
                            "huge-length" (Content-Length: 2^70), "space"
                            (a space before the colon), "obs-fold" (a folded
                            continuation line)
  huge-header[:BYTES]       200 with one header of BYTES (default 1 MiB)
  many-headers[:N]          200 with N headers (default 10000)
  chunked[:BODY]            200, a valid chunked body (small chunks, a chunk
                            extension, a trailer)
  bad-chunked[:KIND]        200 chunked with a bad chunk: KIND "hex" (size
                            "zz"), "overflow" (a size of 2^96), "short" (size
                            100, 10 bytes, close), "no-crlf" (data not followed
                            by CRLF), "no-end" (no last chunk, close)
  pass                      forward the request to --upstream unchanged
                            (Host and Authorization included) and relay the
                            answer

JSON actions may also carry "times" (use it N times), "method" and "path"
(a path prefix): a queued action applies only to matching requests, and a
request takes the first queued action that matches.  Every action except
close/reset/hang/stall/... answers with keep-alive unless the request said
Connection: close; actions that close leave the connection closed.

Every request (method, target, headers, body length and SHA-256, action
taken) is recorded; `requests()` returns the records and --record FILE
appends each as a JSON line.

Control, the same on every instance:
  * in process: FaultServer(script, default, upstream).push(...),
    .set_default(a), .requests(), .pending(), .reset(), .close()
  * over HTTP, on the server's own port (never recorded, never scripted):
      POST /__fault/script    body: JSON list or "a,b,c": appended to the queue
      PUT  /__fault/default   body: one action
      POST /__fault/reset     empties the queue and the records
      GET  /__fault/requests  the records, JSON
      GET  /__fault/pending   the queue, JSON
    and FaultControl(url) wraps these with the same method names;
  * from a shell: faultserver.py ctl URL push ACTION... | default ACTION |
    reset | requests | pending

Usage as a program: faultserver.py [--port 0] [--script 'slowdown*2,pass']
[--default ok] [--upstream URL [--upstream-ca PEM]] [--cert PEM --key PEM]
[--ready-file F] [--record F]; logs one line per request to stderr.
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CONTROL = "/__fault/"
MAX_LINE = 1 << 16
MAX_HEADERS = 200
MAX_BODY = 6 << 30

ERRORS = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "internal": (500, "InternalError", "We encountered an internal error. Please try again."),
    "nosuchkey": (404, "NoSuchKey", "The specified key does not exist."),
}
NAMES = set(ERRORS) | {
    "ok", "error", "stall", "close-mid-body", "slow", "hang", "close", "close-after-headers",
    "reset", "garbage-status", "garbage-headers", "huge-header", "many-headers", "chunked",
    "bad-chunked", "pass",
}
GARBAGE_HEADERS = {
    "nocolon": b"this line has no colon\r\nContent-Length: 2\r\n",
    "binary": b"X-\x00\x01\x02: \xff\xfe\r\nContent-Length: 2\r\n",
    "conflict": b"Content-Length: 2\r\nContent-Length: 5\r\n",
    "negative": b"Content-Length: -1\r\n",
    "huge-length": b"Content-Length: 1180591620717411303424\r\n",
    "space": b"Content-Length : 2\r\n",
    "obs-fold": b"X-Folded: one\r\n  two\r\nContent-Length: 2\r\n",
}
BAD_CHUNKS = {
    "hex": b"5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n",
    "overflow": b"1000000000000000000000000\r\nx\r\n0\r\n\r\n",
    "short": b"64\r\n0123456789",
    "no-crlf": b"5\r\nhelloXX5\r\nworld\r\n0\r\n\r\n",
    "no-end": b"5\r\nhello\r\n",
}
KINDS = {"garbage-status": ("text", "binary"), "garbage-headers": tuple(GARBAGE_HEADERS),
         "bad-chunked": tuple(BAD_CHUNKS)}
_log_lock = threading.Lock()


def log(text):
    with _log_lock:
        sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S", time.gmtime()), text))
        sys.stderr.flush()


# ---------------------------------------------------------------- actions

def parse_action(a):
    """An action as a dict {"do": NAME, ...}; raises ValueError."""
    if isinstance(a, dict):
        act = dict(a)
        if act.get("do") not in NAMES:
            raise ValueError("unknown action %r" % act.get("do"))
        return _checked(act)
    if not isinstance(a, str):
        raise ValueError("an action is a string or an object: %r" % (a,))
    text, times = a.strip(), 1
    if "*" in text:
        text, _, n = text.rpartition("*")
        times = int(n)
    name, _, rest = text.partition(":")
    if name not in NAMES:
        raise ValueError("unknown action %r" % name)
    args = rest.split(":") if rest else []
    act = {"do": name, "times": times}
    num = lambda s: float(s) if "." in s else int(s)  # noqa: E731
    if name in ("ok", "chunked") and rest:
        act["body"] = rest
    elif name == "error":
        act["status"] = int(args[0]) if args else 500
        act["code"] = args[1] if len(args) > 1 else "InternalError"
    elif name in ("stall", "slow"):
        if args:
            act["seconds"] = num(args[0])
        if len(args) > 1:
            act["bytes"] = int(args[1])
    elif name == "close-mid-body" and args:
        act["bytes"] = int(args[0])
    elif name == "hang" and args:
        act["seconds"] = num(args[0])
    elif name in ("garbage-status", "garbage-headers", "bad-chunked") and args:
        act["kind"] = args[0]
    elif name == "huge-header" and args:
        act["bytes"] = int(args[0])
    elif name == "many-headers" and args:
        act["count"] = int(args[0])
    return _checked(act)


def _checked(act):
    do = act["do"]
    if do in KINDS and act.setdefault("kind", KINDS[do][0]) not in KINDS[do]:
        raise ValueError("%s: kind must be one of %s" % (do, ", ".join(KINDS[do])))
    return act


def parse_script(script):
    """A list of actions from a list, a JSON text or "a,b,c"."""
    if isinstance(script, (bytes, bytearray)):
        script = script.decode()
    if isinstance(script, str):
        s = script.strip()
        if s.startswith("[") or s.startswith("{"):
            script = json.loads(s)
            if isinstance(script, dict):
                script = [script]
        else:
            script = [x for x in s.split(",") if x.strip()]
    return [parse_action(a) for a in script]


def _matches(act, method, path):
    if "method" in act and act["method"].upper() != method.upper():
        return False
    if "path" in act and not path.startswith(act["path"]):
        return False
    return True


def body_of(act):
    if "body" in act:
        b = act["body"]
        return b.encode() if isinstance(b, str) else bytes(b)
    n = act.get("body_size", 1024)
    pattern = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
    return (pattern * (n // len(pattern) + 1))[:n]


def error_body(code, message, rid):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
            "<RequestId>%s</RequestId><HostId>faultserver</HostId></Error>"
            % (escape(code), escape(message), escape(rid))).encode()


# ---------------------------------------------------------------- state

class State:
    """The queue, the default action and the records; shared by all
    connections of one server."""

    def __init__(self, script=(), default="ok", record_file=None):
        self.lock = threading.Lock()
        self.queue = parse_script(list(script) if not isinstance(script, str) else script)
        self.default = parse_action(default)
        self.records = []
        self.record_file = record_file
        self.n = 0

    def push(self, actions):
        acts = parse_script(actions)
        with self.lock:
            self.queue.extend(acts)
        return len(acts)

    def set_default(self, action):
        act = parse_action(action)
        with self.lock:
            self.default = act

    def reset(self):
        with self.lock:
            self.queue = []
            self.records = []

    def take(self, method, path):
        with self.lock:
            self.n += 1
            for i, act in enumerate(self.queue):
                if _matches(act, method, path):
                    left = act.get("times", 1) - 1
                    if left > 0:
                        self.queue[i] = dict(act, times=left)
                    else:
                        del self.queue[i]
                    return self.n, dict(act, times=1)
            return self.n, dict(self.default)

    def record(self, rec):
        with self.lock:
            self.records.append(rec)
            if self.record_file:
                with open(self.record_file, "a") as f:
                    f.write(json.dumps(rec) + "\n")

    def snapshot(self):
        with self.lock:
            return [dict(r) for r in self.records], [dict(a) for a in self.queue]


# ---------------------------------------------------------------- HTTP bits

class BadRequest(Exception):
    pass


def read_request(rfile, wfile=None):
    """(method, target, version, [(name, value)], body) or None at EOF.
    With wfile, a request carrying Expect: 100-continue gets its
    "100 Continue" before the body is read."""
    line = rfile.readline(MAX_LINE + 1)
    while line in (b"\r\n", b"\n"):     # tolerate stray CRLF between requests
        line = rfile.readline(MAX_LINE + 1)
    if not line:
        return None
    if len(line) > MAX_LINE or not line.endswith(b"\n"):
        raise BadRequest("request line too long or cut")
    parts = line.decode("latin-1").strip().split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("bad request line %r" % line[:80])
    method, target, version = parts
    headers = []
    while True:
        h = rfile.readline(MAX_LINE + 1)
        if not h:
            raise BadRequest("EOF in headers")
        if len(h) > MAX_LINE:
            raise BadRequest("header line too long")
        if h in (b"\r\n", b"\n"):
            break
        if len(headers) >= MAX_HEADERS:
            raise BadRequest("too many headers")
        name, colon, value = h.decode("latin-1").partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest("bad header line %r" % h[:80])
        headers.append((name, value.strip()))
    lower = {}
    for k, v in headers:
        lower.setdefault(k.lower(), []).append(v)
    if wfile is not None and "100-continue" in ",".join(lower.get("expect", [])).lower():
        wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        wfile.flush()
    if "chunked" in ",".join(lower.get("transfer-encoding", [])).lower():
        body = _read_chunked(rfile)
    elif "content-length" in lower:
        if len(set(lower["content-length"])) != 1:
            raise BadRequest("conflicting Content-Length")
        n = int(lower["content-length"][0])
        if n < 0 or n > MAX_BODY:
            raise BadRequest("bad Content-Length")
        body = _read_exact(rfile, n)
    else:
        body = b""
    return method, target, version, headers, body


def _read_exact(rfile, n):
    parts, left = [], n
    while left:
        data = rfile.read(min(left, 1 << 20))
        if not data:
            raise BadRequest("EOF in body, %d bytes missing" % left)
        parts.append(data)
        left -= len(data)
    return b"".join(parts)


def _read_chunked(rfile):
    parts, total = [], 0
    while True:
        line = rfile.readline(MAX_LINE)
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            while rfile.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        total += size
        if total > MAX_BODY:
            raise BadRequest("chunked body too large")
        parts.append(_read_exact(rfile, size))
        rfile.readline(MAX_LINE)


def head_bytes(status, reason, headers):
    lines = ["HTTP/1.1 %d %s" % (status, reason)] + ["%s: %s" % kv for kv in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# ---------------------------------------------------------------- server

class Handler(socketserver.StreamRequestHandler):
    timeout = 300

    def handle(self):
        srv = self.server
        sock = self.connection
        if isinstance(sock, ssl.SSLSocket):
            try:
                sock.do_handshake()
            except (ssl.SSLError, OSError) as e:
                log("TLS handshake with %s:%d failed: %s" % (self.client_address + (e,)))
                return
        self.upstream = None
        try:
            while not srv.stopping.is_set():
                try:
                    req = read_request(self.rfile, self.wfile)
                except (BadRequest, ValueError) as e:
                    log("bad request from %s:%d: %s" % (self.client_address + (e,)))
                    self._send(head_bytes(400, "Bad Request", [("Content-Length", "0"),
                                                                ("Connection", "close")]))
                    return
                if req is None:
                    return
                if not self._serve(*req):
                    return
        except (ConnectionError, socket.timeout, ssl.SSLError) as e:
            log("connection from %s:%d ended: %s" % (self.client_address + (e,)))
        finally:
            if self.upstream is not None:
                self.upstream.close()

    def _send(self, data):
        self.wfile.write(data)
        self.wfile.flush()

    def _serve(self, method, target, version, headers, body):
        """Answer one request; False when the connection must close."""
        st = self.server.state
        path = target.split("?", 1)[0]
        if path.startswith(CONTROL):
            return self._control(method, path[len(CONTROL):], body)
        n, act = st.take(method, path)
        rid = "fault-%d" % n
        keep = not any(k.lower() == "connection" and "close" in v.lower() for k, v in headers)
        if version == "HTTP/1.0":
            keep = False
        st.record({"n": n, "time": time.time(), "method": method, "target": target,
                   "path": path, "headers": [[k, v] for k, v in headers],
                   "body_len": len(body), "body_sha256": hashlib.sha256(body).hexdigest(),
                   "action": act["do"]})
        log("%s %s %s -> %s" % (rid, method, target, json.dumps(act)))
        return self._act(act, method, target, headers, body, rid, keep)

    def _respond(self, status, reason, headers, body, method, keep):
        headers = list(headers)
        if not any(k.lower() == "content-length" for k, _ in headers):
            headers.append(("Content-Length", str(0 if method == "HEAD" and status >= 300
                                                  else len(body))))
        if not keep:
            headers.append(("Connection", "close"))
        self._send(head_bytes(status, reason, headers) + (b"" if method == "HEAD" else body))
        return keep

    def _wait(self, seconds):
        self.server.stopping.wait(seconds)

    def _act(self, act, method, target, headers, body, rid, keep):
        do = act["do"]
        extra = list((act.get("headers") or {}).items())
        if do in ERRORS or do == "error":
            status, code, message = ERRORS.get(do) or (act["status"], act["code"],
                                                       act.get("message", act["code"]))
            reason = http.client.responses.get(status, "Error")
            hdrs = [("Content-Type", "application/xml"), ("x-amz-request-id", rid)] + extra
            return self._respond(status, reason, hdrs, error_body(code, message, rid), method, keep)
        if do == "ok":
            status = act.get("status", 200)
            return self._respond(status, http.client.responses.get(status, "OK"),
                                 [("x-amz-request-id", rid)] + extra, body_of(act), method, keep)
        if do in ("stall", "close-mid-body", "close-after-headers"):
            data = body_of(act)
            if do == "close-after-headers":
                part, seconds = 0, 0
            else:
                part = act.get("bytes", len(data) // 2)
                seconds = act.get("seconds", 10) if do == "stall" else 0
            self._send(head_bytes(200, "OK", [("Content-Length", str(len(data))),
                                              ("x-amz-request-id", rid)] + extra) + data[:part])
            self._wait(seconds)
            return False
        if do == "slow":
            data = body_of(act)
            piece, seconds = act.get("bytes", 16), act.get("seconds", 0.5)
            self._send(head_bytes(200, "OK", [("Content-Length", str(len(data))),
                                              ("x-amz-request-id", rid)] + extra))
            for i in range(0, len(data), piece):
                if i:
                    self._wait(seconds)
                if self.server.stopping.is_set():
                    return False
                self._send(data[i:i + piece])
            return keep
        if do == "hang":
            self._wait(act.get("seconds", 10))
            return False
        if do == "close":
            return False
        if do == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()     # now, before socketserver's shutdown() sends a FIN
            return False
        if do == "garbage-status":
            if act["kind"] == "binary":
                self._send(bytes(random.Random(7).getrandbits(8) for _ in range(256)))
            else:
                self._send(b"HTTP/1.1 2x0 Banana\r\nContent-Length: 0\r\n\r\n")
            return False
        if do == "garbage-headers":
            self._send(b"HTTP/1.1 200 OK\r\n" + GARBAGE_HEADERS[act["kind"]] + b"\r\nok")
            return False
        if do == "huge-header":
            size = act.get("bytes", 1 << 20)
            self._send(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"a" * size
                       + b"\r\nContent-Length: 0\r\n\r\n")
            return False
        if do == "many-headers":
            count = act.get("count", 10000)
            lines = b"".join(b"X-Many-%d: %d\r\n" % (i, i) for i in range(count))
            self._send(b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: 0\r\n\r\n")
            return False
        if do == "chunked":
            data = act.get("body", "chunked body, delivered in small pieces").encode()
            out = [head_bytes(200, "OK", [("Transfer-Encoding", "chunked"),
                                          ("Trailer", "X-Trailer"),
                                          ("x-amz-request-id", rid)] + extra)]
            for i in range(0, len(data), 7):
                piece = data[i:i + 7]
                ext = b";name=value" if i == 7 else b""
                out.append(b"%x%s\r\n%s\r\n" % (len(piece), ext, piece))
            out.append(b"0\r\nX-Trailer: done\r\n\r\n")
            self._send(b"".join(out))
            return keep
        if do == "bad-chunked":
            self._send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + BAD_CHUNKS[act["kind"]])
            return False
        if do == "pass":
            return self._pass(method, target, headers, body, keep)
        raise ValueError("unhandled action %r" % do)

    def _pass(self, method, target, headers, body, keep):
        from sigproxy import HOP_BY_HOP, Upstream, relay
        cfg = self.server
        if not cfg.upstream_url:
            return self._respond(502, "Bad Gateway", [], b"no upstream configured\n", method, keep)
        if self.upstream is None:
            self.upstream = Upstream(cfg.upstream_url, cfg.upstream_ca)
        fwd = [(k, v) for k, v in headers
               if k.lower() not in HOP_BY_HOP and k.lower() not in ("content-length", "expect")]
        if body or any(k.lower() == "content-length" for k, _ in headers):
            fwd.append(("Content-Length", str(len(body))))
        try:
            resp = self.upstream.request(method, target, fwd, body)
        except OSError as e:
            log("pass: upstream failed: %s" % e)
            return self._respond(502, "Bad Gateway", [], b"upstream failed\n", method, False)
        out = []

        def status(code, reason):
            out.append(("HTTP/1.1 %d %s\r\n" % (code, reason)).encode("latin-1"))

        def header(k, v):
            out.append(("%s: %s\r\n" % (k, v)).encode("latin-1"))

        def end():
            if not keep:
                out.append(b"Connection: close\r\n")
            out.append(b"\r\n")
            self._send(b"".join(out))

        relay(resp, method, status, header, end, self.wfile.write)
        self.wfile.flush()
        if resp.will_close:
            self.upstream.close()
        return keep

    def _control(self, method, what, body):
        st = self.server.state
        try:
            if what == "script" and method in ("POST", "PUT"):
                out = {"queued": st.push(body)}
            elif what == "default" and method in ("POST", "PUT"):
                st.set_default(json.loads(body) if body.strip()[:1] in (b"{", b'"') else body.decode())
                out = {"default": st.default}
            elif what == "reset" and method == "POST":
                st.reset()
                out = {"reset": True}
            elif what == "requests" and method == "GET":
                out = st.snapshot()[0]
            elif what == "pending" and method == "GET":
                out = st.snapshot()[1]
            else:
                return self._respond(404, "Not Found", [], b"unknown control request\n", method, True)
        except (ValueError, KeyError) as e:
            return self._respond(400, "Bad Request", [], ("%s\n" % e).encode(), method, True)
        data = json.dumps(out).encode()
        return self._respond(200, "OK", [("Content-Type", "application/json")], data, method, True)


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class FaultServer:
    """A fault server in this process, on a thread of its own."""

    def __init__(self, script=(), default="ok", upstream=None, upstream_ca=None,
                 host="127.0.0.1", port=0, cert=None, key=None, record_file=None):
        self.state = State(script, default, record_file)
        self.srv = _TCPServer((host, port), Handler)
        self.srv.state = self.state
        self.srv.stopping = threading.Event()
        self.srv.upstream_url = upstream
        self.srv.upstream_ca = upstream_ca
        scheme = "http"
        if cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True,
                                              do_handshake_on_connect=False)
            scheme = "https"
        self.host = host
        self.port = self.srv.server_address[1]
        self.url = "%s://%s:%d" % (scheme, host, self.port)
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def push(self, *actions):
        return sum(self.state.push([a] if isinstance(a, dict) else a) for a in actions)

    def set_default(self, action):
        self.state.set_default(action)

    def reset(self):
        self.state.reset()

    def requests(self):
        return self.state.snapshot()[0]

    def pending(self):
        return self.state.snapshot()[1]

    def close(self):
        self.srv.stopping.set()
        self.srv.shutdown()
        self.srv.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FaultControl:
    """The control endpoint of a fault server in another process."""

    def __init__(self, url, ca_file=None):
        u = urllib.parse.urlsplit(url)
        self.https = u.scheme == "https"
        self.host, self.port = u.hostname, u.port
        self.ca_file = ca_file
        self.url = url

    def _call(self, method, what, body=b""):
        if self.https:
            ctx = ssl.create_default_context(cafile=self.ca_file)
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=30, context=ctx)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, CONTROL + what, body=body)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                raise RuntimeError("fault control %s: %d %s" % (what, resp.status, data.decode()))
            return json.loads(data)
        finally:
            conn.close()

    def push(self, *actions):
        flat = []
        for a in actions:
            flat.extend(a if isinstance(a, list) else [a])
        return self._call("POST", "script", json.dumps(flat).encode())["queued"]

    def set_default(self, action):
        return self._call("PUT", "default", json.dumps(action).encode())

    def reset(self):
        return self._call("POST", "reset")

    def requests(self):
        return self._call("GET", "requests")

    def pending(self):
        return self._call("GET", "pending")


def _ctl(argv):
    if len(argv) < 2:
        print("usage: faultserver.py ctl URL push ACTION...|default ACTION|reset|requests|pending",
              file=sys.stderr)
        return 2
    c = FaultControl(argv[0], os.environ.get("S3_CA_FILE"))
    cmd, args = argv[1], argv[2:]
    if cmd == "push":
        out = c.push(*args)
    elif cmd == "default" and len(args) == 1:
        out = c.set_default(args[0])
    elif cmd in ("reset", "requests", "pending") and not args:
        out = getattr(c, cmd)()
    else:
        print("faultserver.py ctl: unknown command %r" % cmd, file=sys.stderr)
        return 2
    print(json.dumps(out, indent=1))
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "ctl":
        return _ctl(argv[1:])
    p = argparse.ArgumentParser(description="scripted misbehaving HTTP server (tests only)")
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--script", default="", help='actions, e.g. "slowdown*2,pass"')
    p.add_argument("--default", default=None, help="action when none is queued "
                   "(pass with --upstream, else ok)")
    p.add_argument("--upstream", help="where pass sends requests")
    p.add_argument("--upstream-ca", help="CA file for an https upstream")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ready-file")
    p.add_argument("--record", help="append each request as a JSON line to this file")
    a = p.parse_args(argv)
    default = a.default or ("pass" if a.upstream else "ok")
    fs = FaultServer(a.script, default, a.upstream, a.upstream_ca, a.listen, a.port,
                     a.cert, a.key, a.record)
    log("faultserver listening on %s, default %s%s" % (fs.url, default,
                                                      a.upstream and ", upstream " + a.upstream or ""))
    if a.ready_file:
        tmp = a.ready_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"port": fs.port, "url": fs.url}, f)
        os.rename(tmp, a.ready_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1):
        pass
    fs.close()
    log("faultserver stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
