#!/usr/bin/python3
"""selftest.py - proves the S3 test harness with independent clients only
(boto3, botocore's signer, http.client, raw sockets), so that a failure of
a Sluice test run against it can be blamed on Sluice.

  1. the verifier of sigproxy.py accepts AWS's published SigV4 examples and
     refuses them once anything is changed;
  2. over HTTP, then over HTTPS (boto3 trusting only the test CA), through
     the proxy: PUT/GET/HEAD/DELETE, ListObjects v1 and v2 paginated over
     2,500 keys, DeleteObjects, a 64 MiB multipart upload and a 64 MiB single
     PUT, all read back byte for byte; keep-alive; a wrong secret gets 403
     SignatureDoesNotMatch;
  3. over HTTP: tampered body, header, path and query, missing and unsigned
     headers, a skewed clock and a wrong access key are refused and never
     reach s3rver; UNSIGNED-PAYLOAD and virtual-hosted requests pass; s3rver
     alone would have accepted the bad signature;
  4. over HTTPS: certificates for the wrong name or from an unknown CA are
     refused; the fault server in front of the proxy passes requests on,
     and boto3 retries its 503s;
  5. every action of the fault server, checked on the wire.

Prints "ok NAME" / "FAIL NAME: why" (tests/integration/report.py) and exits
non-zero if anything failed.  Run: /usr/bin/python3 tests/s3/selftest.py
"""

import calendar
import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

import report  # noqa: E402
import sigproxy  # noqa: E402
from env import S3Env, connect, send, sign  # noqa: E402
from faultserver import BAD_CHUNKS, GARBAGE_HEADERS, FaultControl, FaultServer  # noqa: E402

MiB = 1 << 20
BIG = os.urandom(64 * MiB)
NKEYS = 2500


def code_of(body):
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


def client_error(fn, *args, **kw):
    """(HTTP status, S3 code) of a boto3 call expected to fail."""
    from botocore.exceptions import ClientError
    try:
        fn(*args, **kw)
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]
    return None


# ---------------------------------------------------------------- 1. verifier

AWS_AK = "AKIAIOSFODNN7EXAMPLE"
AWS_SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EMPTY = hashlib.sha256(b"").hexdigest()


def aws_examples():
    """The four examples of AWS's "Signature Calculations for the
    Authorization Header" page (S3 API reference): method, target, headers,
    body, signed headers, signature."""
    put = b"Welcome to Amazon S3."
    base = [("Host", "examplebucket.s3.amazonaws.com"), ("x-amz-date", "20130524T000000Z")]
    return [
        ("GET", "/test.txt", base + [("Range", "bytes=0-9"), ("x-amz-content-sha256", EMPTY)], b"",
         "host;range;x-amz-content-sha256;x-amz-date",
         "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
        ("PUT", "/test%24file.text",
         base + [("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                 ("x-amz-content-sha256", hashlib.sha256(put).hexdigest())], put,
         "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
         "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
        ("GET", "/?lifecycle", base + [("x-amz-content-sha256", EMPTY)], b"",
         "host;x-amz-content-sha256;x-amz-date",
         "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        ("GET", "/?max-keys=2&prefix=J", base + [("x-amz-content-sha256", EMPTY)], b"",
         "host;x-amz-content-sha256;x-amz-date",
         "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
    ]


def verify_example(method, target, headers, body, signed, sig, **over):
    auth = ("AWS4-HMAC-SHA256 Credential=%s/20130524/us-east-1/s3/aws4_request,SignedHeaders=%s,"
            "Signature=%s" % (AWS_AK, signed, sig))
    now = calendar.timegm((2013, 5, 24, 0, 5, 0))
    kw = dict(access_key=AWS_AK, secret_key=AWS_SK, region="us-east-1", now=now)
    kw.update(over)
    sigproxy.verify(method, target, headers + [("Authorization", auth)],
                    hashlib.sha256(body).hexdigest(), **kw)


def case_aws_examples_accepted():
    for ex in aws_examples():
        try:
            verify_example(*ex)
        except sigproxy.Rejection as r:
            return "%s %s refused: %s %s" % (ex[0], ex[1], r.code, r.message)
    return None


def case_aws_examples_altered_refused():
    ex = aws_examples()
    alterations = [
        ("other secret", lambda: verify_example(*ex[0], secret_key=AWS_SK[:-1] + "X")),
        ("other region", lambda: verify_example(*ex[0], region="eu-west-1")),
        ("other range", lambda: verify_example(ex[0][0], ex[0][1], [
            (k, "bytes=0-10" if k == "Range" else v) for k, v in ex[0][2]], *ex[0][3:])),
        ("other method", lambda: verify_example("HEAD", *ex[0][1:])),
        ("other key", lambda: verify_example(ex[1][0], "/test%24file.txt", *ex[1][2:])),
        ("other body", lambda: verify_example(*ex[1][:3], b"Welcome to Amazon S4.", *ex[1][4:])),
        ("other query", lambda: verify_example(ex[3][0], "/?max-keys=2&prefix=K", *ex[3][2:])),
        ("clock 20 min off", lambda: verify_example(*ex[0], now=calendar.timegm((2013, 5, 24, 0, 20, 1)))),
        ("unsigned x-amz header", lambda: verify_example(
            ex[2][0], ex[2][1], ex[2][2] + [("x-amz-meta-x", "1")], *ex[2][3:])),
    ]
    for what, fn in alterations:
        try:
            fn()
            return "accepted with %s" % what
        except sigproxy.Rejection:
            pass
    return ("", "%d alterations refused" % len(alterations))


# ---------------------------------------------------------------- 2. through the proxy

def case_put_get_head_delete(e):
    c = e.boto3()
    key = "dir/obj ü+=&;,$@:.txt"
    body = os.urandom(100_000)
    c.put_object(Bucket=e.bucket, Key=key, Body=body, ContentType="application/x-test",
                 Metadata={"who": "selftest"})
    got = c.get_object(Bucket=e.bucket, Key=key)
    if got["Body"].read() != body:
        return "GET returned other bytes"
    h = c.head_object(Bucket=e.bucket, Key=key)
    if h["ContentLength"] != len(body) or h["ETag"].strip('"') != hashlib.md5(body).hexdigest():
        return "HEAD: length %s etag %s" % (h["ContentLength"], h["ETag"])
    if h.get("Metadata", {}).get("who") != "selftest":
        return "HEAD lost the metadata: %s" % h.get("Metadata")
    c.delete_object(Bucket=e.bucket, Key=key)
    err = client_error(c.head_object, Bucket=e.bucket, Key=key)
    if not err or err[0] != 404:
        return "HEAD after DELETE: %s" % (err,)
    return None


def case_list_paginated(e):
    c = e.boto3()
    keys = ["many/%05d" % i for i in range(NKEYS)]

    def put(k):
        c.put_object(Bucket=e.bucket, Key=k, Body=k.encode())
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(put, keys))
    c.put_object(Bucket=e.bucket, Key="other/x", Body=b"x")
    for api in ("list_objects_v2", "list_objects"):
        pages = list(c.get_paginator(api).paginate(Bucket=e.bucket, Prefix="many/",
                                                   PaginationConfig={"PageSize": 1000}))
        got = [o["Key"] for p in pages for o in p.get("Contents", [])]
        if len(pages) != 3 or got != keys:
            return "%s: %d pages, %d keys, in order: %s" % (api, len(pages), len(got), got == sorted(got))
    top = c.list_objects_v2(Bucket=e.bucket, Delimiter="/")
    prefixes = [p["Prefix"] for p in top.get("CommonPrefixes", [])]
    if prefixes != ["many/", "other/"]:
        return "common prefixes %s" % prefixes
    return ("", "%d keys, 3 pages each of v1 and v2" % NKEYS)


def case_delete_objects(e):
    c = e.boto3()
    keys = ["many/%05d" % i for i in range(NKEYS)] + ["other/x"]
    deleted = 0
    for i in range(0, len(keys), 1000):
        r = c.delete_objects(Bucket=e.bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]]})
        deleted += len(r.get("Deleted", []))
        if r.get("Errors"):
            return "errors: %s" % r["Errors"][:3]
    left = c.list_objects_v2(Bucket=e.bucket).get("KeyCount")
    if deleted != len(keys) or left != 0:
        return "deleted %d of %d, %s left" % (deleted, len(keys), left)
    return None


def case_multipart(e):
    c = e.boto3()
    key = "big/multipart"
    up = c.create_multipart_upload(Bucket=e.bucket, Key=key)["UploadId"]
    parts = []
    size = 16 * MiB
    for n, off in enumerate(range(0, len(BIG), size), 1):
        r = c.upload_part(Bucket=e.bucket, Key=key, UploadId=up, PartNumber=n, Body=BIG[off:off + size])
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    c.complete_multipart_upload(Bucket=e.bucket, Key=key, UploadId=up, MultipartUpload={"Parts": parts})
    data = c.get_object(Bucket=e.bucket, Key=key)["Body"].read()
    if data != BIG:
        return "read back %d bytes, %s" % (len(data), "differ" if len(data) == len(BIG) else "")
    part = c.get_object(Bucket=e.bucket, Key=key, Range="bytes=%d-%d" % (size - 5, size + 4))["Body"].read()
    if part != BIG[size - 5:size + 5]:
        return "ranged GET across a part boundary differs"
    c.delete_object(Bucket=e.bucket, Key=key)
    return ("", "64 MiB in %d parts" % len(parts))


def case_single_put_64mib(e):
    c = e.boto3()
    c.put_object(Bucket=e.bucket, Key="big/single", Body=BIG)
    data = c.get_object(Bucket=e.bucket, Key="big/single")["Body"].read()
    c.delete_object(Bucket=e.bucket, Key="big/single")
    return None if data == BIG else "read back %d bytes that differ" % len(data)


def case_keepalive(e):
    conn = connect(e.endpoint, e.ca_file)
    try:
        sock = None
        for i in range(6):
            url = "%s/%s/ka-%d" % (e.endpoint, e.bucket, i % 3)
            method, body = ("PUT", b"v%d" % i) if i < 3 else ("GET", b"")
            status, _, data = send(url, method, e.sign(method, url, body=body), body, conn=conn)
            if status != 200 or (method == "GET" and data != b"v%d" % (i - 3)):
                return "%s %s: %d %r" % (method, url, status, data[:80])
            if sock is None:
                sock = conn.sock
            elif conn.sock is not sock:
                return "the connection was reopened before request %d" % i
    finally:
        conn.close()
    return None


def case_wrong_secret(e):
    c = e.boto3(secret_key="not-the-secret")
    err = client_error(c.put_object, Bucket=e.bucket, Key="wrong-secret", Body=b"x")
    if err != (403, "SignatureDoesNotMatch"):
        return "PUT with a wrong secret: %s" % (err,)
    err = client_error(e.boto3().head_object, Bucket=e.bucket, Key="wrong-secret")
    return None if err and err[0] == 404 else "the object exists after all: %s" % (err,)


# ---------------------------------------------------------------- 3. refusals (HTTP)

def expect_refused(e, method, url, headers, body=b"", code="SignatureDoesNotMatch", status=403,
                   key=None):
    st, _, data = send(url, method, headers, body)
    if st != status or code_of(data) != code:
        return "%s %s: %d %s (%s)" % (method, url, st, code_of(data), data[:200])
    if key:
        st, _, _ = send(e.backend_url + "/%s/%s" % (e.bucket, key), "HEAD")
        if st != 404:
            return "%s reached s3rver (HEAD there: %d)" % (key, st)
    return None


def case_tampered_body(e):
    url = "%s/%s/tampered" % (e.endpoint, e.bucket)
    h = e.sign("PUT", url, body=b"the body that was signed")
    return expect_refused(e, "PUT", url, h, b"the body that was SIGNED", "XAmzContentSHA256Mismatch",
                          key="tampered")


def case_tampered_header(e):
    url = "%s/%s/tampered-h" % (e.endpoint, e.bucket)
    h = e.sign("PUT", url, {"x-amz-meta-a": "1", "Content-Type": "text/plain"}, b"x")
    h["Content-Type"] = "text/html"
    why = expect_refused(e, "PUT", url, h, b"x", key="tampered-h")
    if why:
        return why
    _, _, data = send(url, "PUT", h, b"x")
    return None if b"<CanonicalRequest>" in data else "no CanonicalRequest in the error body"


def case_tampered_path(e):
    url = "%s/%s/signed-key" % (e.endpoint, e.bucket)
    h = e.sign("PUT", url, body=b"x")
    return expect_refused(e, "PUT", url.replace("signed-key", "other-key"), h, b"x", key="other-key")


def case_tampered_query(e):
    url = "%s/%s?list-type=2&prefix=a" % (e.endpoint, e.bucket)
    h = e.sign("GET", url)
    return expect_refused(e, "GET", url.replace("prefix=a", "prefix=b"), h)


def case_unsigned_header(e):
    url = "%s/%s/unsigned-h" % (e.endpoint, e.bucket)
    h = e.sign("PUT", url, body=b"x")
    h["x-amz-meta-added"] = "later"
    return expect_refused(e, "PUT", url, h, b"x", key="unsigned-h")


def case_missing_auth(e):
    url = "%s/%s/no-auth" % (e.endpoint, e.bucket)
    h = e.sign("PUT", url, body=b"x")
    del h["Authorization"]
    return expect_refused(e, "PUT", url, h, b"x", key="no-auth")


def case_wrong_access_key(e):
    url = "%s/%s/other-ak" % (e.endpoint, e.bucket)
    h = sign("PUT", url, body=b"x", access_key="SOMEONEELSE", secret_key=e.secret_key, region=e.region)
    return expect_refused(e, "PUT", url, h, b"x", "InvalidAccessKeyId", key="other-ak")


def case_skewed_clock(e):
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    url = "%s/%s/skewed" % (e.endpoint, e.bucket)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 20 * 60))
    host = url.split("/")[2]
    hdrs = {"Host": host, "x-amz-date": stamp, "x-amz-content-sha256": hashlib.sha256(b"x").hexdigest()}
    a = S3SigV4Auth(Credentials(e.access_key, e.secret_key), "s3", e.region)
    req = AWSRequest(method="PUT", url=url, headers=hdrs, data=b"x")
    req.context["timestamp"] = stamp
    sig = a.signature(a.string_to_sign(req, a.canonical_request(req)), req)
    hdrs["Authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s/%s/s3/aws4_request, SignedHeaders="
                             "host;x-amz-content-sha256;x-amz-date, Signature=%s"
                             % (e.access_key, stamp[:8], e.region, sig))
    return expect_refused(e, "PUT", url, hdrs, b"x", "RequestTimeTooSkewed", key="skewed")


def case_chunked_refused(e):
    url = "%s/%s/chunked" % (e.endpoint, e.bucket)
    h = e.sign("PUT", url, payload="UNSIGNED-PAYLOAD")
    conn = connect(url)
    try:
        conn.putrequest("PUT", "/%s/chunked" % e.bucket, skip_host=True)
        for k, v in h.items():
            conn.putheader(k, v)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders(b"1\r\nx\r\n0\r\n\r\n")
        r = conn.getresponse()
        body = r.read()
    finally:
        conn.close()
    return None if (r.status, code_of(body)) == (501, "NotImplemented") else "%d %r" % (r.status, body)


def case_unsigned_payload(e):
    url = "%s/%s/unsigned-payload" % (e.endpoint, e.bucket)
    body = b"not hashed by the client"
    st, _, data = send(url, "PUT", e.sign("PUT", url, body=body, payload="UNSIGNED-PAYLOAD"), body)
    if st != 200:
        return "PUT: %d %r" % (st, data[:200])
    st, _, data = send(url, "GET", e.sign("GET", url))
    return None if (st, data) == (200, body) else "GET: %d %r" % (st, data[:80])


def case_vhost_style(e):
    port = int(e.endpoint.rsplit(":", 1)[1])
    vhost = "%s.localhost:%d" % (e.bucket, port)
    body = b"virtual-hosted"
    h = e.sign("PUT", "http://%s/v/key" % vhost, {"Host": vhost}, body)
    st, _, data = send(e.endpoint + "/v/key", "PUT", h, body)
    if st != 200:
        return "virtual-hosted PUT: %d %r" % (st, data[:200])
    h = e.sign("GET", "http://%s/?list-type=2&prefix=v%%2F" % vhost, {"Host": vhost})
    st, _, data = send(e.endpoint + "/?list-type=2&prefix=v%2F", "GET", h)
    if st != 200 or b"<Key>v/key</Key>" not in data:
        return "virtual-hosted list: %d %r" % (st, data[:200])
    url = "%s/%s/v/key" % (e.endpoint, e.bucket)
    st, _, data = send(url, "GET", e.sign("GET", url))
    return None if (st, data) == (200, body) else "path-style GET: %d %r" % (st, data[:80])


def case_s3rver_alone_accepts(e):
    """The reason for the proxy: s3rver takes a wrong signature."""
    url = "%s/%s/s3rver-alone" % (e.backend_url, e.bucket)
    h = sign("PUT", url, body=b"x", access_key="S3RVER", secret_key="wrong", region=e.region)
    st, _, _ = send(url, "PUT", h, b"x")
    return None if st == 200 else "s3rver answered %d (it checks signatures now?)" % st


def case_rejections_logged(e):
    with open(e.logs["sigproxy"]) as f:
        n = sum(1 for line in f if line[13:].startswith("REJECT "))
    return None if n >= 9 else "%d REJECT lines in %s" % (n, e.logs["sigproxy"])


# ---------------------------------------------------------------- 4. TLS

def tls_error(url, ca_file):
    u = url.split("//", 1)[1]
    host, port = u.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=ca_file)
    try:
        with socket.create_connection((host, int(port)), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname=host):
                return None
    except ssl.SSLCertVerificationError as err:
        return err.verify_message or str(err)


def case_tls_wrong_name(e):
    why = tls_error(e.wrong_name_url, e.ca_file)
    if not why or "mismatch" not in why:
        return "connected, or refused for another reason: %s" % why
    from botocore.exceptions import SSLError
    try:
        e.boto3(endpoint=e.wrong_name_url).head_bucket(Bucket=e.bucket)
        return "boto3 accepted it"
    except SSLError:
        return ("", why)


def case_tls_unknown_ca(e):
    why = tls_error(e.untrusted_url, e.ca_file)
    if not why or "issuer" not in why:
        return "connected, or refused for another reason: %s" % why
    return ("", why)


def case_tls_names(e):
    for url in (e.endpoint, e.endpoint.replace("127.0.0.1", "localhost")):
        why = tls_error(url, e.ca_file)
        if why:
            return "%s refused with the test CA: %s" % (url, why)
    why = tls_error(e.endpoint, None)
    return None if why else "accepted without the test CA"


# ---------------------------------------------------------------- fault server in the environment

def case_fault_pass_retry(e):
    f = e.fault()
    f.reset()
    f.push("slowdown*2")
    c = e.boto3(endpoint=e.fault_url, attempts=3)
    c.put_object(Bucket=e.bucket, Key="through-fault", Body=b"retried")
    acts = [(r["method"], r["action"]) for r in f.requests()]
    if acts != [("PUT", "slowdown"), ("PUT", "slowdown"), ("PUT", "pass")]:
        return "fault server saw %s" % acts
    data = e.boto3().get_object(Bucket=e.bucket, Key="through-fault")["Body"].read()
    return None if data == b"retried" else "stored %r" % data


def case_fault_gives_up(e):
    f = e.fault()
    f.reset()
    f.set_default("internal")
    try:
        c = e.boto3(endpoint=e.fault_url, attempts=2)
        t0 = time.monotonic()
        err = client_error(c.get_object, Bucket=e.bucket, Key="through-fault")
        took = time.monotonic() - t0
    finally:
        f.set_default("pass")
    n = len(f.requests())
    if err != (500, "InternalError") or n != 2 or took > 10:
        return "error %s after %d requests, %.1f s" % (err, n, took)
    return None


def case_fault_ctl_cli(e):
    py = [sys.executable, os.path.join(HERE, "faultserver.py"), "ctl", e.fault_url]
    env = dict(os.environ, S3_CA_FILE=e.ca_file)
    subprocess.run(py + ["reset"], check=True, capture_output=True, env=env)
    subprocess.run(py + ["push", "nosuchkey", "error:403:AccessDenied"], check=True,
                   capture_output=True, env=env)
    url = "%s/%s/whatever" % (e.fault_url, e.bucket)
    got = [e.send(url, "GET", e.sign("GET", url))[2] for _ in range(2)]
    if [code_of(b) for b in got] != ["NoSuchKey", "AccessDenied"]:
        return "answers %s" % got
    out = subprocess.run(py + ["requests"], check=True, capture_output=True, text=True, env=env).stdout
    recs = json.loads(out)
    return None if [r["action"] for r in recs] == ["nosuchkey", "error"] else "records %s" % out[:300]


# ---------------------------------------------------------------- 5. fault actions on the wire

def raw(fs, method="GET", path="/k", headers=(), body=b"", wait=5.0):
    """Send one request on a new socket; return (bytes received, how the
    read ended: "eof", "timeout" or "reset", seconds until then)."""
    s = socket.create_connection(("127.0.0.1", fs.port), timeout=wait)
    t0 = time.monotonic()
    head = "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % (method, path, len(body))
    head += "".join("%s: %s\r\n" % kv for kv in headers)
    s.sendall(head.encode() + b"\r\n" + body)
    data, how = b"", "eof"
    try:
        while True:
            d = s.recv(1 << 16)
            if not d:
                break
            data += d
    except socket.timeout:
        how = "timeout"
    except ConnectionResetError:
        how = "reset"
    finally:
        s.close()
    return data, how, time.monotonic() - t0


def split(data):
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body


def fault_case(fs, action, check):
    def run():
        fs.reset()
        fs.push(action)
        return check()
    return run


def fault_cases(fs):
    def http_get(path="/k", conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", fs.port, timeout=5)
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read(), r

    def errors():
        for act, st, code in (("slowdown", 503, "SlowDown"), ("internal", 500, "InternalError"),
                              ("nosuchkey", 404, "NoSuchKey"), ("error:409:Conflict", 409, "Conflict")):
            fs.push(act)
            status, body, r = http_get()
            if (status, code_of(body)) != (st, code) or r.getheader("Content-Type") != "application/xml":
                return "%s: %d %r" % (act, status, body[:100])
        return None

    def keepalive_order():
        fs.push("ok:one", "slowdown", "ok:three")
        conn = http.client.HTTPConnection("127.0.0.1", fs.port, timeout=5)
        got, socks = [], set()
        for _ in range(3):
            status, body, _ = http_get(conn=conn)
            got.append((status, body if status == 200 else code_of(body)))
            socks.add(id(conn.sock))
        conn.close()
        want = [(200, b"one"), (503, "SlowDown"), (200, b"three")]
        return None if got == want and len(socks) == 1 else "got %s over %d connections" % (got, len(socks))

    def stall():
        fs.push({"do": "stall", "seconds": 1.5, "bytes": 100, "body_size": 1000})
        s = socket.create_connection(("127.0.0.1", fs.port), timeout=5)
        s.sendall(b"GET /k HTTP/1.1\r\nHost: x\r\n\r\n")
        t0 = time.monotonic()
        data = b""
        while b"\r\n\r\n" not in data or len(split(data)[1]) < 100:
            data += s.recv(4096)
        first = time.monotonic() - t0
        s.settimeout(0.7)
        try:
            more = s.recv(4096)
            return "more bytes during the stall: %r" % more[:40]
        except socket.timeout:
            pass
        s.settimeout(5)
        end = s.recv(4096)
        total = time.monotonic() - t0
        s.close()
        lines, body = split(data)
        if end != b"" or b"Content-Length: 1000" not in lines or len(body) != 100:
            return "headers %s, %d body bytes, then %r" % (lines, len(body), end[:40])
        if first > 0.5 or not 1.3 < total < 3:
            return "first bytes after %.2f s, closed after %.2f s" % (first, total)
        return ("", "100 of 1000 bytes, then %.1f s of silence, then close" % total)

    def hang():
        fs.push("hang:1")
        data, how, took = raw(fs)
        return None if (data, how) == (b"", "eof") and 0.9 < took < 3 else "%r %s %.2f s" % (data, how, took)

    def close():
        fs.push("close")
        data, how, took = raw(fs)
        return None if (data, how) == (b"", "eof") and took < 1 else "%r %s" % (data[:80], how)

    def close_after_headers():
        fs.push("close-after-headers")
        data, how, _ = raw(fs)
        lines, body = split(data)
        ok = lines[0] == b"HTTP/1.1 200 OK" and b"Content-Length: 1024" in lines and body == b""
        return None if ok and how == "eof" else "%r %s" % (data[:200], how)

    def close_mid_body():
        fs.push("close-mid-body:300")
        data, how, _ = raw(fs)
        lines, body = split(data)
        return None if len(body) == 300 and how == "eof" else "%d body bytes, %s" % (len(body), how)

    def reset():
        fs.push("reset")
        data, how, _ = raw(fs)
        return None if how == "reset" else "%r %s (no RST)" % (data[:80], how)

    def garbage_status():
        fs.push("garbage-status")
        data, how, _ = raw(fs)
        if not data.startswith(b"HTTP/1.1 2x0 Banana\r\n"):
            return "text: %r" % data[:80]
        fs.push("garbage-status:binary")
        try:
            http_get()
            return "http.client accepted binary garbage"
        except http.client.BadStatusLine:
            return None

    def garbage_headers():
        for kind, bad in GARBAGE_HEADERS.items():
            fs.push("garbage-headers:" + kind)
            data, how, _ = raw(fs)
            if data != b"HTTP/1.1 200 OK\r\n" + bad + b"\r\nok" or how != "eof":
                return "%s: %r" % (kind, data[:120])
        return ("", "%d kinds" % len(GARBAGE_HEADERS))

    def huge_header():
        fs.push("huge-header")
        data, how, _ = raw(fs)
        lines, _ = split(data)
        if not any(len(x) > MiB for x in lines):
            return "no 1 MiB header line (%d bytes)" % len(data)
        fs.push("huge-header")
        try:
            http_get()
            return "http.client took a 1 MiB header"
        except http.client.LineTooLong:
            return None

    def many_headers():
        fs.push("many-headers:5000")
        try:
            http_get()
            return "http.client took 5000 headers"
        except http.client.HTTPException as err:
            return None if "headers" in str(err) else "other error: %s" % err

    def chunked():
        fs.push({"do": "chunked", "body": "a body in chunks, with an extension and a trailer"})
        status, body, _ = http_get()
        ok = (status, body) == (200, b"a body in chunks, with an extension and a trailer")
        return None if ok else "%d %r" % (status, body)

    def bad_chunked():
        for kind, bad in BAD_CHUNKS.items():
            fs.push("bad-chunked:" + kind)
            data, how, _ = raw(fs)
            if data != b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + bad:
                return "%s: %r" % (kind, data[:120])
        for kind in ("hex", "short", "no-end"):
            fs.push("bad-chunked:" + kind)
            try:
                http_get()
                return "http.client read bad-chunked:%s" % kind
            except (http.client.HTTPException, ValueError):
                pass
        return ("", "%d kinds" % len(BAD_CHUNKS))

    def slow():
        fs.push({"do": "slow", "seconds": 0.2, "bytes": 100, "body_size": 500})
        t0 = time.monotonic()
        status, body, _ = http_get()
        took = time.monotonic() - t0
        return None if status == 200 and len(body) == 500 and took > 0.7 else "%d, %d bytes, %.2f s" % (
            status, len(body), took)

    def records():
        conn = http.client.HTTPConnection("127.0.0.1", fs.port, timeout=5)
        conn.request("PUT", "/b/k?x=1", body=b"payload", headers={"X-Test": "yes"})
        conn.getresponse().read()
        conn.request("POST", "/b/c", body=iter([b"chunk", b"ed"]), encode_chunked=True)
        conn.getresponse().read()
        conn.close()
        recs = fs.requests()
        if len(recs) != 2:
            return "%d records" % len(recs)
        a, b = recs
        ok = (a["method"], a["target"], a["path"], a["body_len"]) == ("PUT", "/b/k?x=1", "/b/k", 7)
        ok = ok and ["X-Test", "yes"] in a["headers"]
        ok = ok and a["body_sha256"] == hashlib.sha256(b"payload").hexdigest()
        ok = ok and (b["method"], b["body_len"]) == ("POST", 7)
        return None if ok else "records %s" % recs

    def matching():
        fs.push({"do": "slowdown", "method": "PUT", "path": "/b/"}, "internal*2")
        got = []
        for method, path in (("GET", "/b/x"), ("PUT", "/a"), ("PUT", "/b/y"), ("PUT", "/b/z")):
            conn = http.client.HTTPConnection("127.0.0.1", fs.port, timeout=5)
            conn.request(method, path, body=b"" if method == "PUT" else None)
            got.append(conn.getresponse().status)
            conn.close()
        # GET /b/x: internal (1st of 2); PUT /a: internal (2nd); PUT /b/y:
        # slowdown (matched); PUT /b/z: default ok
        return None if got == [500, 500, 503, 200] else "statuses %s" % got

    def control_http():
        ctl = FaultControl(fs.url)
        ctl.push("nosuchkey", {"do": "ok", "body": "b"})
        if [a["do"] for a in ctl.pending()] != ["nosuchkey", "ok"]:
            return "pending %s" % ctl.pending()
        status, _, _ = http_get()
        if status != 404 or len(ctl.requests()) != 1:
            return "first answer %d, %d records" % (status, len(ctl.requests()))
        try:
            ctl.push("no-such-action")
            return "an unknown action was accepted"
        except RuntimeError:
            pass
        ctl.set_default("slowdown")
        ctl.reset()
        statuses = [http_get()[0] for _ in range(2)]
        fs.set_default("ok")
        return None if statuses == [503, 503] and ctl.requests() != [] else "after reset: %s" % statuses

    return [("errors", errors), ("keepalive_order", keepalive_order), ("stall", stall),
            ("hang", hang), ("close_before_bytes", close), ("close_after_headers", close_after_headers),
            ("close_mid_body", close_mid_body), ("reset", reset), ("garbage_status", garbage_status),
            ("garbage_headers", garbage_headers), ("huge_header", huge_header),
            ("many_headers", many_headers), ("chunked", chunked), ("bad_chunked", bad_chunked),
            ("slow", slow), ("records", records), ("matching", matching), ("control_http", control_http)]


def case_fault_tls(e):
    with FaultServer(["ok:over tls"], cert=os.path.join(e.certs_dir, "server.pem"),
                     key=os.path.join(e.certs_dir, "server.key")) as fs:
        st, _, body = send(fs.url + "/x", "GET", ca_file=e.ca_file)
        if (st, body) != (200, b"over tls"):
            return "%d %r" % (st, body)
        fs.push("stall:1:10")
        ctx = ssl.create_default_context(cafile=e.ca_file)
        with socket.create_connection(("127.0.0.1", fs.port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                t.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
                data = b""
                t.settimeout(0.5)
                try:
                    while True:
                        d = t.recv(4096)
                        if not d:
                            return "closed before the stall"
                        data += d
                except socket.timeout:
                    pass
        return None if data.endswith(b"\r\n\r\n" + b"0123456789") else "before the stall: %r" % data
    return None


# ---------------------------------------------------------------- main

def main():
    report.watchdog("s3_selftest", 240)
    t0 = time.monotonic()
    report.case("verifier_aws_examples", case_aws_examples_accepted)
    report.case("verifier_aws_examples_altered", case_aws_examples_altered_refused)

    for https in (False, True):
        t = "https" if https else "http"
        try:
            env = S3Env("selftest-" + t, https=https, bad_certs=https,
                        fault="" if https else None).start()
        except Exception as err:  # noqa: BLE001
            report.fail(t + "_env_start", str(err))
            continue
        with env as e:
            report.note("%s: %s -> %s" % (t, e.endpoint, e.backend_url))
            for name, fn in (("put_get_head_delete", case_put_get_head_delete),
                             ("list_2500_paginated", case_list_paginated),
                             ("delete_objects", case_delete_objects),
                             ("multipart_64mib", case_multipart),
                             ("single_put_64mib", case_single_put_64mib),
                             ("keepalive", case_keepalive),
                             ("wrong_secret_403", case_wrong_secret)):
                report.case("%s_%s" % (t, name), fn, e)
            if not https:
                for name, fn in (("tampered_body", case_tampered_body),
                                 ("tampered_header", case_tampered_header),
                                 ("tampered_path", case_tampered_path),
                                 ("tampered_query", case_tampered_query),
                                 ("unsigned_x_amz_header", case_unsigned_header),
                                 ("missing_authorization", case_missing_auth),
                                 ("wrong_access_key", case_wrong_access_key),
                                 ("skewed_clock", case_skewed_clock),
                                 ("chunked_upload_refused", case_chunked_refused),
                                 ("unsigned_payload", case_unsigned_payload),
                                 ("virtual_hosted", case_vhost_style),
                                 ("s3rver_alone_accepts_bad_signature", case_s3rver_alone_accepts),
                                 ("rejections_logged", case_rejections_logged)):
                    report.case("%s_%s" % (t, name), fn, e)
            else:
                for name, fn in (("tls_wrong_name_refused", case_tls_wrong_name),
                                 ("tls_unknown_ca_refused", case_tls_unknown_ca),
                                 ("tls_names_and_ca", case_tls_names),
                                 ("fault_pass_after_503s", case_fault_pass_retry),
                                 ("fault_client_gives_up", case_fault_gives_up),
                                 ("fault_ctl_cli", case_fault_ctl_cli),
                                 ("fault_over_tls", case_fault_tls)):
                    report.case(name, fn, e)
        report.note("%s done at %.1f s" % (t, time.monotonic() - t0))

    with FaultServer() as fs:
        for name, fn in fault_cases(fs):
            fs.reset()
            fs.set_default("ok")
            report.case("fault_" + name, fn)
    report.note("all done in %.1f s" % (time.monotonic() - t0))
    return report.status()


if __name__ == "__main__":
    sys.exit(main())
