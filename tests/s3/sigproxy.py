#!/usr/bin/python3
"""sigproxy.py - a test-only reverse proxy that checks SigV4 signatures.

s3rver accepts any well-formed SigV4 Authorization header without checking the
signature (its authentication middleware says "Signature version 4
calculation is unimplemented").  This proxy sits in front of it and does what
S3 would do: for every request it recomputes the signature with botocore from
the request exactly as received, with the credentials it was started with,
and refuses the request on any difference.  Only requests that pass reach
s3rver.

    client ──HTTP or HTTPS──▶ sigproxy ──HTTP, keep-alive──▶ s3rver

What is checked, in order (the first failure answers; see reject()):
  1. one Authorization header "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/s3/
     aws4_request, SignedHeaders=a;b;c, Signature=HEX"; the access key is the
     configured one (else 403 InvalidAccessKeyId), the scope's date is
     X-Amz-Date's, the region and service are the configured ones;
  2. X-Amz-Date is YYYYMMDDTHHMMSSZ within --max-skew seconds of this
     machine's clock (else 403 RequestTimeTooSkewed);
  3. X-Amz-Content-SHA256 is present and is UNSIGNED-PAYLOAD or 64 hex digits
     (STREAMING-* aws-chunked payloads are not supported: 501 NotImplemented);
  4. SignedHeaders is lowercase, sorted, without duplicates, names host and
     every x-amz-* header of the request, and every header it names was sent;
     with --token, X-Amz-Security-Token is the token and is signed;
  5. the signature botocore computes (S3SigV4Auth: canonical request with the
     path URI-encoded once and not normalised, the query decoded and
     re-encoded, sorted; the signed headers' values trimmed and joined with
     ',') equals the one sent, compared in constant time;
  6. when X-Amz-Content-SHA256 is a hash, it is the SHA-256 of the body
     received (else 403 XAmzContentSHA256Mismatch; real S3 says 400 here).
Anything else in 1-5 answers 403 SignatureDoesNotMatch.  The error body is
S3's XML (<Error><Code>..</Code><Message>why</Message>..</Error>) and, for a
signature that differs, carries the CanonicalRequest and StringToSign the
proxy computed, as S3 does.  Each rejection is logged as one line starting
"REJECT" followed by the canonical request, so a test can grep the log.

Requests with Transfer-Encoding (no Content-Length) answer 501 NotImplemented
and close the connection, as S3 does for chunked uploads without aws-chunked.
The body is read fully before it is checked (64 MiB is fine) and sent on with
a Content-Length; the answer is streamed back as it arrives.

A DELETE or DeleteObjects that s3rver answers with 500 is sent again (up to
3 more times): s3rver's clean-up of emptied key directories races with
itself when deletes run concurrently, and deleting is idempotent.

Forwarded requests lose their Authorization header (s3rver would otherwise
look the access key up in its own account list) and hop-by-hop headers, and
get Host: the backend's address.  A virtual-hosted request, Host:
BUCKET.<vhost-suffix>[:port], is rewritten to path style (/BUCKET/key) since
s3rver would take the whole host name as the bucket.  Client connections are
kept alive; each client connection has its own keep-alive connection to
s3rver, reopened once if s3rver closed it while idle.

Usage: sigproxy.py --upstream http://127.0.0.1:PORT [--port 0] [--cert PEM
--key PEM] [--access-key AK --secret-key SK --region R] [--ready-file F]
Writes {"port": N, "url": "..."} to the ready file once listening; logs to
stderr; stops on SIGTERM or SIGINT.
"""

import argparse
import calendar
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from email.utils import parsedate_to_datetime
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

# The credentials and region a test environment uses unless told otherwise.
ACCESS_KEY = "SLUICETESTACCESSKEY1"
SECRET_KEY = "sluice/test+secret/0123456789abcdefghij"
REGION = "us-east-1"

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "proxy-connection", "te", "trailer", "trailers", "transfer-encoding", "upgrade",
}
MAX_BODY = 6 << 30          # S3's single PUT limit is 5 GiB
CHUNK = 1 << 20
_log_lock = threading.Lock()


def log(text):
    stamp = time.strftime("%H:%M:%S", time.gmtime()) + ".%03d" % (time.time() % 1 * 1000)
    with _log_lock:
        sys.stderr.write("%s %s\n" % (stamp, text))
        sys.stderr.flush()


# ---------------------------------------------------------------- verifier

class Rejection(Exception):
    """Why a request is refused: HTTP status, S3 error code, message, and
    extra XML elements (name, value) for the error body."""

    def __init__(self, status, code, message, extra=()):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = list(extra)


class _ExactSigner(S3SigV4Auth):
    """botocore's S3 SigV4 signer, signing exactly the headers the client
    listed in SignedHeaders (botocore's own choice would drop, for example,
    user-agent and expect)."""

    def __init__(self, credentials, region, signed):
        super().__init__(credentials, "s3", region)
        self._signed = signed          # [(lowercase name, [values])]

    def headers_to_sign(self, request):
        hm = HTTPHeaders()
        for name, values in self._signed:
            for v in values:
                hm[name] = v
        return hm


def _parse_authorization(value):
    if not value.startswith("AWS4-HMAC-SHA256 "):
        raise Rejection(403, "SignatureDoesNotMatch",
                        "Authorization is not AWS4-HMAC-SHA256: %r" % value[:40])
    fields = {}
    for part in value[len("AWS4-HMAC-SHA256 "):].split(","):
        name, eq, v = part.strip().partition("=")
        if not eq or name in fields:
            raise Rejection(403, "SignatureDoesNotMatch",
                            "malformed Authorization component %r" % part.strip())
        fields[name] = v
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise Rejection(403, "SignatureDoesNotMatch",
                        "Authorization must have exactly Credential, SignedHeaders "
                        "and Signature, has %s" % ",".join(sorted(fields)))
    scope = fields["Credential"].split("/")
    if len(scope) != 5:
        raise Rejection(403, "SignatureDoesNotMatch",
                        "Credential is not AK/DATE/REGION/SERVICE/aws4_request: %r"
                        % fields["Credential"])
    if not re.fullmatch(r"[0-9a-f]{64}", fields["Signature"]):
        raise Rejection(403, "SignatureDoesNotMatch",
                        "Signature is not 64 lowercase hex digits: %r" % fields["Signature"])
    return scope, fields["SignedHeaders"], fields["Signature"]


def canonical_path(raw_path):
    """S3's canonical URI: the path decoded, then each byte other than
    unreserved characters and '/' percent-encoded (no normalisation)."""
    return urllib.parse.quote(urllib.parse.unquote_to_bytes(raw_path), safe="/~")


def query_params(raw_query):
    """The query as decoded (name, value) pairs; '+' stays '+' (SigV4
    clients encode a space as %20)."""
    pairs = []
    for piece in raw_query.split("&"):
        if not piece:
            continue
        k, _, v = piece.partition("=")
        try:
            pairs.append((urllib.parse.unquote_to_bytes(k).decode("utf-8"),
                          urllib.parse.unquote_to_bytes(v).decode("utf-8")))
        except UnicodeDecodeError:
            raise Rejection(400, "InvalidArgument",
                            "query parameter %r is not UTF-8 once decoded" % piece)
    return pairs


def verify(method, target, headers, body_sha256, access_key=ACCESS_KEY,
           secret_key=SECRET_KEY, region=REGION, token=None, now=None,
           max_skew=900):
    """Check one request's SigV4 signature.  headers: [(name, value)] as
    received; body_sha256: hex SHA-256 of the body received.  Returns None
    if the request is authentic, raises Rejection otherwise."""
    lower = {}
    for name, value in headers:
        lower.setdefault(name.lower(), []).append(value)
    raw_path, _, raw_query = target.partition("?")

    auths = lower.get("authorization", [])
    if not auths:
        if "X-Amz-Algorithm" in raw_query or "Signature=" in raw_query:
            raise Rejection(403, "SignatureDoesNotMatch",
                            "query-string (presigned) authentication is not supported here")
        raise Rejection(403, "SignatureDoesNotMatch", "no Authorization header")
    if len(auths) > 1:
        raise Rejection(403, "SignatureDoesNotMatch", "more than one Authorization header")
    scope, signed_list, sent_sig = _parse_authorization(auths[0])
    ak, day, scope_region, service, term = scope
    if ak != access_key:
        raise Rejection(403, "InvalidAccessKeyId",
                        "The AWS Access Key Id you provided does not exist in our records.",
                        [("AWSAccessKeyId", ak)])

    dates = lower.get("x-amz-date", [])
    if len(dates) == 1:
        stamp = dates[0].strip()
        if not re.fullmatch(r"\d{8}T\d{6}Z", stamp):
            raise Rejection(403, "SignatureDoesNotMatch",
                            "X-Amz-Date is not YYYYMMDDTHHMMSSZ: %r" % stamp)
        when = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    elif not dates and len(lower.get("date", [])) == 1:
        try:
            when = int(parsedate_to_datetime(lower["date"][0]).timestamp())
        except (TypeError, ValueError):
            raise Rejection(403, "SignatureDoesNotMatch", "Date is unparseable")
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))
    else:
        raise Rejection(403, "SignatureDoesNotMatch",
                        "need exactly one X-Amz-Date (or one Date) header")
    now = time.time() if now is None else now
    if abs(now - when) > max_skew:
        raise Rejection(403, "RequestTimeTooSkewed",
                        "The difference between the request time and the current "
                        "time is too large.",
                        [("RequestTime", stamp),
                         ("ServerTime", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))),
                         ("MaxAllowedSkewMilliseconds", str(max_skew * 1000))])
    if day != stamp[:8]:
        raise Rejection(403, "SignatureDoesNotMatch",
                        "credential scope date %s is not X-Amz-Date's %s" % (day, stamp[:8]))
    if scope_region != region:
        raise Rejection(403, "SignatureDoesNotMatch",
                        "credential scope region %r, expected %r" % (scope_region, region))
    if service != "s3" or term != "aws4_request":
        raise Rejection(403, "SignatureDoesNotMatch",
                        "credential scope must end s3/aws4_request, is %s/%s" % (service, term))

    sha = lower.get("x-amz-content-sha256", [])
    if len(sha) != 1:
        raise Rejection(403, "SignatureDoesNotMatch",
                        "need exactly one X-Amz-Content-SHA256 header")
    payload = sha[0].strip()
    if payload.startswith("STREAMING-"):
        raise Rejection(501, "NotImplemented",
                        "streaming (aws-chunked) payloads are not supported by the test verifier")
    if payload != "UNSIGNED-PAYLOAD" and not re.fullmatch(r"[0-9a-f]{64}", payload):
        raise Rejection(403, "SignatureDoesNotMatch",
                        "X-Amz-Content-SHA256 must be UNSIGNED-PAYLOAD or 64 lowercase "
                        "hex digits: %r" % payload)

    names = signed_list.split(";")
    if names != sorted(set(names)) or any(n != n.lower() or not n for n in names):
        raise Rejection(403, "SignatureDoesNotMatch",
                        "SignedHeaders must be lowercase, sorted and unique: %r" % signed_list)
    if "host" not in names:
        raise Rejection(403, "SignatureDoesNotMatch", "SignedHeaders must include host")
    missing = [n for n in names if n not in lower]
    if missing:
        raise Rejection(403, "SignatureDoesNotMatch",
                        "signed headers not in the request: %s" % ",".join(missing))
    unsigned = sorted(n for n in lower if n.startswith("x-amz-") and n not in names)
    if unsigned:
        raise Rejection(403, "SignatureDoesNotMatch",
                        "x-amz-* headers present but not signed: %s" % ",".join(unsigned))
    if token is not None:
        if lower.get("x-amz-security-token") != [token]:
            raise Rejection(403, "InvalidToken", "X-Amz-Security-Token is missing or wrong")

    creds = Credentials(access_key, secret_key, token)
    signer = _ExactSigner(creds, region, [(n, lower[n]) for n in names])
    req = AWSRequest(method=method, url="http://verify" + canonical_path(raw_path),
                     params=query_params(raw_query),
                     headers={"X-Amz-Content-SHA256": payload})
    req.context["timestamp"] = stamp
    creq = signer.canonical_request(req)
    sts = signer.string_to_sign(req, creq)
    want = signer.signature(sts, req)
    if not hmac.compare_digest(want, sent_sig):
        raise Rejection(403, "SignatureDoesNotMatch",
                        "The request signature we calculated does not match the signature "
                        "you provided. Check your key and signing method.",
                        [("AWSAccessKeyId", ak), ("StringToSign", sts),
                         ("SignatureProvided", sent_sig), ("CanonicalRequest", creq)])
    if payload != "UNSIGNED-PAYLOAD" and payload != body_sha256:
        raise Rejection(403, "XAmzContentSHA256Mismatch",
                        "The provided 'x-amz-content-sha256' header does not match what "
                        "was computed.",
                        [("ClientComputedContentSHA256", payload),
                         ("S3ComputedContentSHA256", body_sha256)])
    return None


def error_xml(code, message, request_id, extra=()):
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<Error>',
             "<Code>%s</Code>" % escape(code), "<Message>%s</Message>" % escape(message)]
    for name, value in extra:
        parts.append("<%s>%s</%s>" % (name, escape(value), name))
    parts.append("<RequestId>%s</RequestId><HostId>sigproxy</HostId></Error>" % escape(request_id))
    return "".join(parts).encode()


# ---------------------------------------------------------------- upstream

class Upstream:
    """One keep-alive connection to the backend, reopened when needed."""

    def __init__(self, url, ca_file=None, timeout=300):
        u = urllib.parse.urlsplit(url)
        self.https = u.scheme == "https"
        self.host = u.hostname
        self.port = u.port or (443 if self.https else 80)
        self.netloc = u.netloc
        self.timeout = timeout
        self.ctx = ssl.create_default_context(cafile=ca_file) if self.https else None
        self.conn = None

    def _connect(self):
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=self.ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def request(self, method, target, headers, body):
        """Send a request (headers: [(name, value)], sent as given, Host
        included) and return the http.client response."""
        for attempt in (0, 1):
            fresh = self.conn is None
            if fresh:
                self.conn = self._connect()
            try:
                self.conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    self.conn.putheader(k, v)
                self.conn.endheaders(body if body else None)
                return self.conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if fresh or attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def relay(resp, method, send_status, send_header, end_headers, write):
    """Copy an http.client response to a client: status, end-to-end headers,
    then the body as it arrives (re-chunked when it has no length).
    Returns the number of body bytes sent."""
    send_status(resp.status, resp.reason)
    length = resp.getheader("Content-Length")
    no_body = method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
    for k, v in resp.getheaders():
        if k.lower() not in HOP_BY_HOP:
            send_header(k, v)
    chunked = not no_body and length is None
    if chunked:
        send_header("Transfer-Encoding", "chunked")
    end_headers()
    sent = 0
    if no_body:
        resp.read()
        return 0
    while True:
        data = resp.read1(CHUNK) if hasattr(resp, "read1") else resp.read(CHUNK)
        if not data:
            break
        sent += len(data)
        if chunked:
            write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            write(data)
    resp.read()     # marks the response done even when it was empty (Content-Length: 0)
    if chunked:
        write(b"0\r\n\r\n")
    return sent


# ---------------------------------------------------------------- proxy

def _as_sent(value):
    """http.server decodes header bytes as Latin-1; botocore encodes the
    canonical request as UTF-8.  Give UTF-8 bytes back their characters so
    the signature covers the bytes the client sent."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sigproxy"
    sys_version = ""
    timeout = 300

    def log_message(self, fmt, *args):   # our own log lines only
        pass

    def handle(self):
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except (ssl.SSLError, OSError) as e:
                log("TLS handshake with %s:%d failed: %s" % (self.client_address + (e,)))
                return
        self.upstream = Upstream(self.server.cfg.upstream)
        try:
            super().handle()
        except (ConnectionError, socket.timeout, ssl.SSLError) as e:
            log("connection from %s:%d ended: %s" % (self.client_address + (e,)))
        finally:
            self.upstream.close()

    def _read_body(self):
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        n = int(length)
        if n < 0 or n > MAX_BODY:
            raise ValueError("Content-Length %d out of range" % n)
        parts, left = [], n
        while left:
            data = self.rfile.read(min(left, CHUNK))
            if not data:
                raise ConnectionError("client closed with %d body bytes unread" % left)
            parts.append(data)
            left -= len(data)
        return b"".join(parts)

    def _reject(self, rej, rid):
        body = error_xml(rej.code, rej.message, rid, rej.extra)
        self.send_response_only(rej.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("x-amz-request-id", rid)
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _any(self):
        cfg = self.server.cfg
        t0 = time.monotonic()
        rid = "sigproxy-%d" % next(cfg.ids)
        what = "%s %s (from %s:%d)" % ((self.command, self.path) + self.client_address)
        if "Transfer-Encoding" in self.headers:
            self.close_connection = True
            rej = Rejection(501, "NotImplemented",
                            "A header you provided implies functionality that is not "
                            "implemented (Transfer-Encoding)",
                            [("Header", "Transfer-Encoding")])
            log("REJECT %s %s: %d %s: %s" % (rid, what, rej.status, rej.code, rej.message))
            self._reject(rej, rid)
            return
        try:
            body = self._read_body()
        except ValueError as e:
            self.close_connection = True
            rej = Rejection(400, "InvalidArgument", str(e))
            log("REJECT %s %s: %s" % (rid, what, e))
            self._reject(rej, rid)
            return
        digest = hashlib.sha256(body).hexdigest()
        headers = list(self.headers.items())
        try:
            verify(self.command, self.path, [(k, _as_sent(v)) for k, v in headers], digest, cfg.access_key, cfg.secret_key,
                   cfg.region, cfg.token, max_skew=cfg.max_skew)
        except Rejection as rej:
            detail = "".join("\n    %s: %s" % (k, v.replace("\n", "\n      ")) for k, v in rej.extra)
            log("REJECT %s %s: %d %s: %s%s" % (rid, what, rej.status, rej.code, rej.message, detail))
            self._reject(rej, rid)
            return

        target = self.path
        host = self.headers.get("Host", "")
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        suffix = "." + cfg.vhost_suffix
        if cfg.vhost_suffix and hostname.lower().endswith(suffix) and len(hostname) > len(suffix):
            bucket = hostname[:-len(suffix)]
            path, q, query = target.partition("?")
            target = "/" + bucket + (path if path != "/" else "") + q + query
        fwd = [(k, v) for k, v in headers
               if k.lower() not in HOP_BY_HOP and k.lower() not in ("host", "authorization",
                                                                    "expect", "content-length")]
        fwd.insert(0, ("Host", self.upstream.netloc))
        if body or "Content-Length" in self.headers:
            fwd.append(("Content-Length", str(len(body))))
        deleting = self.command == "DELETE" or (
            self.command == "POST" and "delete" in [p.split("=")[0] for p in
                                                    target.partition("?")[2].split("&")])
        try:
            for attempt in range(4):
                resp = self.upstream.request(self.command, target, fwd, body)
                if resp.status != 500 or not deleting or attempt == 3:
                    break
                # s3rver removes a key's emptied parent directories without
                # expecting another delete to do the same at once: of two
                # concurrent deletes (DeleteObjects runs its keys
                # concurrently), one may fail with ENOENT.  Deleting is
                # idempotent, so try again rather than show s3rver's bug.
                resp.read()
                if resp.will_close:
                    self.upstream.close()
                log("retry %s %s: s3rver answered 500 to a delete (its directory "
                    "clean-up race); attempt %d" % (rid, what, attempt + 2))
                time.sleep(0.05 * (attempt + 1))
        except OSError as e:
            log("ERROR %s %s: backend: %s" % (rid, what, e))
            self.close_connection = True
            self._reject(Rejection(502, "InternalError", "backend failed: %s" % e), rid)
            return
        sent = relay(resp, self.command, self.send_response_only, self.send_header,
                     self.end_headers, self.wfile.write)
        if resp.will_close:
            self.upstream.close()
        log("ok %s %s%s: %d, %d body bytes in, %d out, %.0f ms"
            % (rid, what, " as " + target if target != self.path else "",
               resp.status, len(body), sent, (time.monotonic() - t0) * 1000))

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


class Config:
    def __init__(self, a):
        self.upstream = a.upstream
        self.access_key = a.access_key
        self.secret_key = a.secret_key
        self.region = a.region
        self.token = a.token
        self.max_skew = a.max_skew
        self.vhost_suffix = a.vhost_suffix
        self.ids = _Counter()


class _Counter:
    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()

    def __next__(self):
        with self.lock:
            self.n += 1
            return self.n


def write_ready(path, info):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.rename(tmp, path)


def main(argv=None):
    p = argparse.ArgumentParser(description="SigV4-checking reverse proxy for s3rver (tests only)")
    p.add_argument("--upstream", required=True, help="backend URL, e.g. http://127.0.0.1:4568")
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--cert", help="PEM certificate (chain) to serve HTTPS with")
    p.add_argument("--key", help="PEM private key of --cert")
    p.add_argument("--access-key", default=ACCESS_KEY)
    p.add_argument("--secret-key", default=SECRET_KEY)
    p.add_argument("--region", default=REGION)
    p.add_argument("--token", help="session token the requests must carry")
    p.add_argument("--max-skew", type=int, default=900, help="seconds (S3: 900)")
    p.add_argument("--vhost-suffix", default="localhost",
                   help="Host BUCKET.SUFFIX is a virtual-hosted request ('' disables)")
    p.add_argument("--ready-file", help="where to write {port, url} once listening")
    a = p.parse_args(argv)

    srv = Server((a.listen, a.port), Handler)
    srv.cfg = Config(a)
    scheme = "http"
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
        scheme = "https"
    port = srv.server_address[1]
    host = a.listen if ":" not in a.listen else "[%s]" % a.listen
    url = "%s://%s:%d" % (scheme, host, port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log("sigproxy listening on %s, forwarding to %s, access key %s, region %s"
        % (url, a.upstream, a.access_key, a.region))
    if a.ready_file:
        write_ready(a.ready_file, {"port": port, "url": url})
    try:
        srv.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    log("sigproxy stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
