#!/usr/bin/python3
# harness: self
"""test_s3_client.py - Sluice's S3 client (storage/s3.h, through the
s3tool command, tests/s3/s3tool.c) against s3rver behind the signature
proxy (tests/s3/env.py), checked with boto3 as the independent client.

It needs no broker ("harness: self"); SLUICE_BIN only says which build to
use: build/sluice -> build/obj/tests/s3tool (musl), build/san/sluice ->
build/san/tests/s3tool (ASan/UBSan, whose leak checker fails the tool on
exit if memory leaked; the tool itself fails when a descriptor is left
open).  S3TOOL overrides.

Over HTTP with a session token, then over HTTPS with the test CA:
  - objects of 0 B, 1 B, 5 MiB + 1 and 64 MiB (multipart) written by s3tool
    and read by boto3 byte for byte; an object boto3 wrote read by s3tool;
    5 MiB + 1 as two parts (5 MiB and 1 B);
  - range reads against slices of the file;
  - 2,500 keys listed in pages of 1,000; deleted with DeleteObjects in
    batches; nothing left (HTTPS only, to keep the run short);
  - the proxy rejected no request (every signature was right).
Over HTTPS only:
  - virtual-hosted addressing (sluice-test.localhost, names resolved to
    127.0.0.1 by the tool);
  - a certificate for the wrong name, and one from an unknown CA, refused
    with a clear error and no retry;
  - through the fault server: 503 SlowDown then success; 500 every time
    (gives up after the attempts allowed, in bounded time); a stall mid-body
    (the attempt times out, the retry succeeds); an early close; garbage
    headers and an oversized header (clear errors, no retry); each while a
    10 ms loop timer ticks (loopcheck), which never waits more than 200 ms;
    and a 64 MiB multipart upload under loopcheck.
"""

import hashlib
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "s3"))

import report  # noqa: E402
from env import S3Env  # noqa: E402

MIB = 1 << 20
MAX_GAP_MS = 200
TOKEN = "sluice-session-token/EXAMPLE+1="


def tool_path():
    if os.environ.get("S3TOOL"):
        return os.environ["S3TOOL"]
    sbin = os.environ.get("SLUICE_BIN") or os.path.join(TOP, "build", "sluice")
    d = os.path.dirname(os.path.abspath(sbin))
    for cand in (os.path.join(d, "tests", "s3tool"), os.path.join(d, "obj", "tests", "s3tool")):
        if os.path.exists(cand):
            return cand
    return os.path.join(d, "obj", "tests", "s3tool")


TOOL = tool_path()
DATA = os.environ.get("SLUICE_DATA") or os.path.join(TOP, "build", "test-data", "test_s3_client")


class Run:
    def __init__(self, p, secs):
        self.rc = p.returncode
        self.out = p.stdout
        self.err = p.stderr.decode(errors="replace")
        self.secs = secs

    def attempts(self):
        m = re.findall(r"attempts=(\d+)", self.err)
        return int(m[-1]) if m else -1

    def max_gap(self):
        m = re.search(r"loopcheck max_gap_ms=(\d+)", self.err)
        return int(m.group(1)) if m else None

    def why(self):
        lines = [ln for ln in self.err.splitlines() if "s3tool:" in ln or "ERROR" in ln or "WARN" in ln]
        return "exit %d: %s" % (self.rc, " | ".join(lines[-4:]) or self.err[-400:])


def tool(env, *args, stdin=None, timeout=120):
    t0 = time.monotonic()
    p = subprocess.run([TOOL] + [str(a) for a in args], env=env, input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    r = Run(p, time.monotonic() - t0)
    if "ERROR: AddressSanitizer" in r.err or "runtime error:" in r.err or \
            "LeakSanitizer" in r.err:
        raise AssertionError("sanitizer report: %s" % r.err[-2000:])
    return r


def write_file(name, data):
    path = os.path.join(DATA, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def sizes_files():
    out = {}
    for n in (0, 1, 5 * MIB + 1, 64 * MIB):
        out[n] = os.urandom(n)
    return out


FILES = {}


def roundtrip(s3, env, c, label, n):
    data = FILES[n]
    path = write_file("obj-%d" % n, data)
    key = "%s/obj-%d" % (label, n)
    t0 = time.monotonic()
    r = tool(env, "put", key, path)
    if r.rc != 0:
        return "put: " + r.why()
    if n == 64 * MIB and "parts=8" not in r.err:
        return "64 MiB did not go as 8 parts: " + r.err[-300:]
    got = c.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    if got != data:
        return "boto3 read %d bytes that differ (sha256 %s vs %s)" % (
            len(got), hashlib.sha256(got).hexdigest()[:12], hashlib.sha256(data).hexdigest()[:12])
    r = tool(env, "get", key)
    if r.rc != 0 or r.out != data:
        return "s3tool get: %s, %d bytes" % (r.why(), len(r.out))
    r = tool(env, "head", key)
    if r.rc != 0 or ("size=%d " % n) not in r.out.decode():
        return "head: " + r.why() + " " + r.out.decode()
    return ("", "%.1f s" % (time.monotonic() - t0)) if n == 64 * MIB else None


def boto_wrote(s3, env, c, label):
    data = os.urandom(3 * MIB + 17)
    key = "%s/from-boto3" % label
    c.put_object(Bucket=s3.bucket, Key=key, Body=data)
    r = tool(env, "get", key)
    if r.rc != 0 or r.out != data:
        return "s3tool get: %s, %d bytes" % (r.why(), len(r.out))
    return None


def two_parts(s3, env, c, label):
    data = FILES[5 * MIB + 1]
    path = write_file("obj-5m1", data)
    key = "%s/two-parts" % label
    r = tool(env, "--part-size", 5 * MIB, "--threshold", 5 * MIB, "put", key, path)
    if r.rc != 0 or "parts=2" not in r.err:
        return "put: " + r.why()
    got = c.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    return None if got == data else "boto3 read back something else (%d bytes)" % len(got)


def ranges(s3, env, c, label):
    data = FILES[5 * MIB + 1]
    key = "%s/obj-%d" % (label, len(data))
    n = len(data)
    for first, last in ((0, 0), (0, 99), (MIB - 3, 2 * MIB + 5), (n - 10, n - 1), (n - 5, n + 1000)):
        r = tool(env, "get", key, first, last)
        want = data[first:last + 1]
        if r.rc != 0 or r.out != want:
            return "range %d-%d: %s, %d bytes, want %d" % (first, last, r.why(), len(r.out), len(want))
    r = tool(env, "get", key, n + 10, n + 20)
    if r.rc == 0 or "HTTP 416" not in r.err:
        return "a range past the end: " + r.why()
    return None


def listing_and_batch_delete(s3, env, c, label):
    prefix = "%s/many/" % label
    t0 = time.monotonic()
    r = tool(env, "put-many", prefix, 2500, timeout=300)
    if r.rc != 0:
        return "put-many: " + r.why()
    t_put = time.monotonic() - t0
    r = tool(env, "--page-keys", 1000, "list", prefix)
    if r.rc != 0:
        return "list: " + r.why()
    lines = r.out.decode().splitlines()
    keys = [ln.split(" ")[0] for ln in lines if not ln.startswith("#")]
    want = ["%s%05d" % (prefix, i) for i in range(2500)]
    if keys != want:
        return "listed %d keys, want 2500 in order (first %s)" % (len(keys), keys[:2])
    if "# objects=2500 pages=3" not in lines:
        return "not 3 pages: %s" % lines[-1:]
    # boto3 sees the same keys.
    seen = []
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket, Prefix=prefix):
        seen += [o["Key"] for o in page.get("Contents", [])]
    if seen != want:
        return "boto3 listed %d keys" % len(seen)
    kf = write_file("keys-%s" % label, ("\n".join(want) + "\n").encode())
    r = tool(env, "delete-many", "@" + kf)
    if r.rc != 0 or "deleted=2500 errors=0" not in r.err:
        return "delete-many: " + r.why()
    left = c.list_objects_v2(Bucket=s3.bucket, Prefix=prefix).get("KeyCount")
    if left != 0:
        return "%s keys left after the batch delete" % left
    return ("", "2,500 puts in %.1f s" % t_put)


def single_delete(s3, env, c, label):
    key = "%s/obj-1" % label
    r = tool(env, "delete", key)
    if r.rc != 0:
        return "delete: " + r.why()
    r = tool(env, "head", key)
    if r.rc == 0 or "HTTP 404" not in r.err:
        return "head after delete: " + r.why()
    r = tool(env, "get", key)
    if r.rc == 0 or "NoSuchKey" not in r.err:
        return "get after delete: " + r.why()
    return None


def no_rejects(s3):
    with open(s3.logs["sigproxy"], errors="replace") as f:
        bad = [ln for ln in f if ln.startswith("REJECT")]
    return "the proxy rejected %d requests: %s" % (len(bad), bad[0].strip()) if bad else None


def common(s3, label, big):
    env = dict(os.environ, **s3.environ())
    c = s3.boto3()
    sizes = (0, 1, 5 * MIB + 1, 64 * MIB) if big else (0, 1, 5 * MIB + 1)
    for n in sizes:
        report.case("%s_roundtrip_%d_bytes" % (label, n), roundtrip, s3, env, c, label, n)
    report.case("%s_read_what_boto3_wrote" % label, boto_wrote, s3, env, c, label)
    report.case("%s_5mib_plus_1_in_two_parts" % label, two_parts, s3, env, c, label)
    report.case("%s_range_reads" % label, ranges, s3, env, c, label)
    report.case("%s_single_delete" % label, single_delete, s3, env, c, label)
    return env, c


# ---------------------------------------------------------------- HTTPS only

def vhost(s3, env, c):
    port = s3.endpoint.rsplit(":", 1)[1]
    url = "s3://%s?region=%s&endpoint=https%%3A%%2F%%2Flocalhost%%3A%s&path_style=false" % (
        s3.bucket, s3.region, port)
    data = os.urandom(12345)
    path = write_file("vhost", data)
    r = tool(env, "--url", url, "--connect-to", "127.0.0.1", "put", "vhost/k", path)
    if r.rc != 0:
        return "put: " + r.why()
    r = tool(env, "--url", url, "--connect-to", "127.0.0.1", "get", "vhost/k")
    if r.rc != 0 or r.out != data:
        return "get: " + r.why()
    got = c.get_object(Bucket=s3.bucket, Key="vhost/k")["Body"].read()
    return None if got == data else "boto3 read something else"


def bad_cert(s3, env, url, want):
    r = tool(env, "--endpoint", url, "head", "https/obj-1")
    if r.rc == 0:
        return "the request succeeded"
    if "TLS failure" not in r.err or want not in r.err:
        return "no clear error naming %s: %s" % (want, r.why())
    if r.attempts() != 1:
        return "retried a certificate failure (%d attempts)" % r.attempts()
    return None


def fault_case(s3, env, f, actions, args, expect_ok, want_err=None, want_attempts=None,
               max_secs=None, default=None):
    f.reset()
    if default:
        f.set_default(default)
    if actions:
        f.push(*actions)
    # Options first, then "loopcheck" and the command.
    cmd = next(i for i, a in enumerate(args) if a in ("put", "get", "head", "delete", "list"))
    try:
        r = tool(env, "--endpoint", s3.fault_url, *args[:cmd], "loopcheck", *args[cmd:])
    finally:
        if default:
            f.set_default("pass")
    gap = r.max_gap()
    detail = "%d attempts, %.1f s, loop gap %s ms" % (r.attempts(), r.secs, gap)
    if expect_ok and r.rc != 0:
        return "failed: " + r.why()
    if not expect_ok and r.rc != 1:
        return "expected a failure (exit 1), got: " + r.why()
    if want_err and want_err not in r.err:
        return "no '%s' in: %s" % (want_err, r.why())
    if want_attempts is not None and r.attempts() != want_attempts:
        return "%d attempts, want %d: %s" % (r.attempts(), want_attempts, r.why())
    if max_secs is not None and r.secs > max_secs:
        return "took %.1f s, bound %d s" % (r.secs, max_secs)
    if gap is None or gap > MAX_GAP_MS:
        return "the loop stalled %s ms (bound %d)" % (gap, MAX_GAP_MS)
    if "FAILED leak check" in r.err:
        return r.why()
    return ("", detail)


def faults(s3, env, c):
    f = s3.fault()
    data = os.urandom(4096)
    path = write_file("fault-obj", data)
    c.put_object(Bucket=s3.bucket, Key="f/k", Body=data)
    quick = ["--backoff-ms", 50, "--backoff-cap-ms", 400]

    def case(name, *a, **kw):
        report.case("https_fault_" + name, lambda: fault_case(s3, env, f, *a, **kw))

    case("503_slowdown_then_success", ["slowdown*2"], quick + ["put", "f/k", path], True,
         want_attempts=3, max_secs=20)
    case("500_every_time_gives_up", None, quick + ["--attempts", 4, "--total-ms", 8000, "get", "f/k"],
         False, want_err="HTTP 500 InternalError", want_attempts=4, max_secs=15, default="internal")
    case("500_every_time_total_time_bound", None,
         ["--backoff-ms", 200, "--backoff-cap-ms", 1000, "--attempts", 100, "--total-ms", 2500,
          "get", "f/k"], False, want_err="HTTP 500", max_secs=8, default="internal")
    case("stall_mid_body_times_out_then_retry", ["stall:5"],
         quick + ["--timeout-ms", 1000, "get", "f/k"], True, want_attempts=2, max_secs=5)
    case("early_close_mid_body_retried", ["close-mid-body"], quick + ["get", "f/k"], True,
         want_attempts=2, max_secs=10)
    case("close_before_answer_retried", ["close"], quick + ["head", "f/k"], True,
         max_secs=10)
    case("reset_retried", ["reset"], quick + ["get", "f/k"], True, max_secs=10)
    case("garbage_headers_clear_error", ["garbage-headers:nocolon"], quick + ["get", "f/k"], False,
         want_err="protocol violation", want_attempts=1, max_secs=10)
    case("conflicting_lengths_clear_error", ["garbage-headers:conflict"], quick + ["get", "f/k"],
         False, want_err="protocol violation", want_attempts=1, max_secs=10)
    case("oversized_header_clear_error", ["huge-header"], quick + ["get", "f/k"], False,
         want_err="exceeds its cap", want_attempts=1, max_secs=10)
    case("hang_then_timeout_gives_up", None,
         quick + ["--timeout-ms", 800, "--total-ms", 2000, "get", "f/k"], False,
         want_err="timed out", max_secs=6, default="hang:5")
    case("slow_body_succeeds", ["slow:0.05:512"], quick + ["get", "f/k"], True, max_secs=20)


def big_under_loopcheck(s3, env, c):
    data = FILES[64 * MIB]
    path = os.path.join(DATA, "obj-%d" % len(data))
    r = tool(env, "loopcheck", "put", "https/loop-64m", path, timeout=180)
    if r.rc != 0:
        return "put: " + r.why()
    gap = r.max_gap()
    if gap is None or gap > MAX_GAP_MS:
        return "the loop stalled %s ms during a 64 MiB upload" % gap
    r = tool(env, "loopcheck", "get", "https/loop-64m", timeout=180)
    if r.rc != 0 or r.out != data:
        return "get: " + r.why()
    gap2 = r.max_gap()
    if gap2 is None or gap2 > MAX_GAP_MS:
        return "the loop stalled %s ms during a 64 MiB download" % gap2
    return ("", "loop gaps %d and %d ms" % (gap, gap2))


def main():
    report.watchdog("test_s3_client", 280)
    os.makedirs(DATA, exist_ok=True)
    if not os.path.exists(TOOL):
        report.fail("s3tool_exists", "%s is missing (make %s)" % (TOOL, os.path.relpath(TOOL, TOP)))
        return report.status()
    report.note("using %s" % TOOL)
    FILES.update(sizes_files())
    t0 = time.monotonic()

    with S3Env("s3client-http", token=TOKEN) as s3:
        common(s3, "http", big=False)
        report.case("http_no_rejected_signature", no_rejects, s3)
    report.note("HTTP part: %.1f s" % (time.monotonic() - t0))

    t1 = time.monotonic()
    with S3Env("s3client-https", https=True, bad_certs=True, fault="") as s3:
        env, c = common(s3, "https", big=True)
        report.case("https_list_2500_in_pages_and_batch_delete", listing_and_batch_delete,
                    s3, env, c, "https")
        report.case("https_virtual_hosted", vhost, s3, env, c)
        report.case("https_wrong_name_refused", bad_cert, s3, env, s3.wrong_name_url,
                    "BR_ERR_X509_BAD_SERVER_NAME")
        report.case("https_unknown_ca_refused", bad_cert, s3, env, s3.untrusted_url,
                    "BR_ERR_X509_NOT_TRUSTED")
        faults(s3, env, c)
        report.case("https_64mib_under_loopcheck", big_under_loopcheck, s3, env, c)
        report.case("https_no_rejected_signature", no_rejects, s3)
    report.note("HTTPS part: %.1f s; total %.1f s" % (time.monotonic() - t1, time.monotonic() - t0))
    return report.status()


if __name__ == "__main__":
    sys.exit(main())
