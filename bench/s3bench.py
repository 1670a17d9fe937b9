#!/usr/bin/python3
"""s3bench.py - the object-store side of the shared-storage benchmark
(bench/run.sh, section "shared storage"): reads a bucket the broker wrote to
s3rver, replays the broker's cold reads as raw ranged GETs (the baseline), and
counts what uploading cost.

    s3bench.py [STORE] wait --topic T --records N [--timeout S]
    s3bench.py [STORE] rawread --topic T --parallel K [--readahead B] [--want B] [--tail B]
    s3bench.py [STORE] cost --log S3RVER_LOG [--to-line L] --bytes B
    s3bench.py [STORE] requests --log S3RVER_LOG [--from-line L] [--to-line L]
    STORE: --endpoint URL --bucket NAME --prefix P  (credentials S3RVER/S3RVER,
           s3rver's own; AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY override)

Each command prints one line of key=value fields on stdout ("wait ...",
"rawread ...", "cost ...", "requests ...") and exits 0, or prints why on
stderr and exits 1.

wait: polls the manifest (docs/FORMAT.md, "The manifest") every 200 ms until
its partitions of topic T end, together, at N offsets: every record produced
(one offset each: no transactions, no compaction) is in a data object named
by a committed version.  Only what these commands need is decoded (TOPIC,
PARTITION, OBJECT, APPEND, LOG_START, TOPIC_DELETE); every other operation
is skipped by its length.  The manifest is Sluice's own output, not a peer's,
but a malformed one still ends the run with a message, never a traceback
that hides the cause.

rawread: the baseline for cold reads.  It issues the GETs the broker's block
cache (storage/rcache.h) issues for a consumer reading every partition of T
from offset 0, with no cache, no decoding and no Kafka in between:
  - per data object, once (coalesced between workers, as the cache does): a
    GET of its last --tail bytes (64 KiB, the cache's tail_guess), which
    holds footer and index unless the index is larger; then a GET of the
    index;
  - per partition and object: the partition's blocks in runs, each run the
    first block not yet read and the following ones while the run's stored
    bytes stay within max(--want, --readahead) (obj_range in
    storage/object.c; want is librdkafka's max.partition.fetch.bytes, 1 MiB,
    the readahead the cache's 4 MiB default).
Partitions are dealt round robin to K threads; each reads its partitions'
objects in offset order, one GET at a time.  K = the number of partitions is
the broker's own concurrency for one consumer (one load per partition per
Fetch); K = 1 is the same GETs strictly one after another.  The clock runs
from the first GET to the last byte; the manifest is read before.  Bytes are
the stored bytes of the blocks (index GETs excluded).

cost: lists the prefix: data objects (their count and sizes), manifest
versions; and counts the write requests s3rver logged for the prefix up to
--to-line: PUT (a whole object, a manifest version, or an UploadPart: the
query names partNumber) and POST (CreateMultipartUpload "?uploads",
CompleteMultipartUpload "?uploadId="), all billed as PUT-class requests by S3.
The log is s3rver's, run with FORCE_COLOR=1 so that its request lines keep
their method and path (without colour s3rver cuts them off).

requests: the GETs and write requests s3rver logged for the prefix between two
line numbers (1-based, from inclusive, to exclusive; 0 = the end).
"""

import argparse
import os
import re
import struct
import sys
import threading
import time

MIB = 1 << 20
GIB = 1 << 30


class BenchError(Exception):
    pass


def client(a, parallel=1):
    import boto3
    from botocore.config import Config

    cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                 max_pool_connections=max(10, parallel), connect_timeout=10, read_timeout=60)
    return boto3.client("s3", endpoint_url=a.endpoint, region_name="us-east-1",
                        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "S3RVER"),
                        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "S3RVER"),
                        config=cfg)


def full_key(a, key):
    return "%s/%s" % (a.prefix, key) if a.prefix else key


def list_keys(s3, a, under):
    """[(key relative to the prefix, size)] of every object below under."""
    out = []
    base = full_key(a, "")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=a.bucket,
                                                              Prefix=full_key(a, under)):
        for o in page.get("Contents", []):
            out.append((o["Key"][len(base):], o["Size"]))
    return out


def get(s3, a, key, first=None, last=None):
    kw = {"Bucket": a.bucket, "Key": full_key(a, key)}
    if first is not None:
        kw["Range"] = "bytes=%d-%d" % (first, last)
    return s3.get_object(**kw)["Body"].read()


# ---------------------------------------------------------------- the manifest

class Rd:
    """A bounds-checked reader over one manifest version's bytes."""

    def __init__(self, data, what):
        self.d, self.p, self.what = data, 0, what

    def take(self, n):
        if n < 0 or self.p + n > len(self.d):
            raise BenchError("%s: truncated at byte %d" % (self.what, self.p))
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def u(self, fmt):
        return struct.unpack(">" + fmt, self.take(struct.calcsize(">" + fmt)))[0]

    def s(self):
        return self.take(self.u("H")).decode("utf-8", "replace")

    def rng(self):
        obj, first, last, _ts, pos, length = struct.unpack(">QqqqQQ", self.take(48))
        return {"object": obj, "first": first, "last": last, "pos": pos, "len": length}


class Manifest:
    """The parts of the state these benchmarks need."""

    def __init__(self):
        self.topics = {}        # id -> name
        self.parts = {}         # (id, partition) -> {"start", "end", "ranges"}
        self.objects = {}       # object id -> (key, size)
        self.version = 0

    def apply(self, data, what):
        r = Rd(data, what)
        if r.take(8) != b"SLUICEMF":
            raise BenchError("%s: not a manifest version (magic)" % what)
        r.take(2)
        kind = r.u("B")
        r.take(1 + 4)
        self.version = r.u("Q")
        checkpoint = r.u("Q")
        r.take(8 + 8 + 4)
        nops = r.u("I")
        blen = r.u("I")
        r.take(4)
        body = Rd(r.take(blen), what)
        for _ in range(nops):
            typ = body.u("B")
            op = Rd(body.take(body.u("I")), what)
            self.op(typ, op)
        return kind, checkpoint

    def op(self, typ, r):
        if typ == 2:                                    # TOPIC
            tid = r.take(16)
            self.topics[tid] = r.s()
        elif typ == 3:                                  # TOPIC_DELETE
            tid = r.take(16)
            self.topics.pop(tid, None)
            for k in [k for k in self.parts if k[0] == tid]:
                del self.parts[k]
        elif typ == 4:                                  # PARTITION
            tid = r.take(16)
            p = r.u("i")
            start, end = r.u("q"), r.u("q")
            ranges = [r.rng() for _ in range(r.u("I"))]
            self.parts[(tid, p)] = {"start": start, "end": end, "ranges": ranges}
        elif typ == 5:                                  # OBJECT
            oid = r.u("Q")
            key = r.s()
            self.objects[oid] = (key, r.u("Q"))
        elif typ == 6:                                  # APPEND
            tid = r.take(16)
            p = r.u("i")
            rg = r.rng()
            st = self.parts.setdefault((tid, p), {"start": 0, "end": 0, "ranges": []})
            st["ranges"].append(rg)
            st["end"] = rg["last"] + 1
            st["ranges"] = [x for x in st["ranges"] if x["last"] >= st["start"]]
        elif typ == 8:                                  # LOG_START
            tid = r.take(16)
            p = r.u("i")
            st = self.parts.get((tid, p))
            if st is not None:
                st["start"] = max(st["start"], r.u("q"))
                st["ranges"] = [x for x in st["ranges"] if x["last"] >= st["start"]]

    def topic_parts(self, name):
        """({partition: state}, topic id), or (None, None) without such a topic."""
        ids = [tid for tid, n in self.topics.items() if n == name]
        if not ids:
            return None, None
        return {p: st for (tid, p), st in self.parts.items() if tid == ids[0]}, ids[0]


VERSION_RE = re.compile(r"^manifest/([0-9]{20})\Z")


def load_manifest(s3, a):
    """The newest state, or None when the prefix holds no version yet."""
    versions = sorted(int(m.group(1)) for k, _ in list_keys(s3, a, "manifest/")
                      for m in [VERSION_RE.match(k)] if m)
    if not versions:
        return None
    top = versions[-1]
    newest = Manifest()
    kind, checkpoint = newest.apply(get(s3, a, "manifest/%020d" % top), "version %d" % top)
    if kind == 1:
        return newest
    m = Manifest()
    for v in range(checkpoint, top + 1):
        m.apply(get(s3, a, "manifest/%020d" % v), "version %d" % v)
    return m


def topic_or_none(m, name):
    return (None, None) if m is None else m.topic_parts(name)


# ---------------------------------------------------------------- commands

def cmd_wait(a):
    s3 = client(a)
    deadline = time.monotonic() + a.timeout
    t0 = time.monotonic()
    have = 0
    while True:
        m = load_manifest(s3, a)
        parts, _ = topic_or_none(m, a.topic)
        if parts is not None:
            have = sum(st["end"] for st in parts.values())
            if have >= a.records:
                print("wait records=%d version=%d objects=%d seconds=%.1f"
                      % (have, m.version, len(m.objects), time.monotonic() - t0))
                return 0
        if time.monotonic() > deadline:
            raise BenchError("after %d s the manifest holds %d of %d records of %s"
                             % (a.timeout, have, a.records, a.topic))
        time.sleep(0.2)


def parse_index(tail, size, what):
    """(index offset, index length, index bytes or None when tail lacks it)."""
    if len(tail) < 64 or struct.unpack(">I", tail[-4:])[0] != 0x534C4F46:
        raise BenchError("%s: no object footer" % what)
    ioff, ilen = struct.unpack(">QI", tail[-64:-52])
    start = size - len(tail)
    if ioff >= start:
        return ioff, ilen, tail[ioff - start:ioff - start + ilen]
    return ioff, ilen, None


def index_streams(ix, what):
    """{(namespace, partition): [(first, last, pos, stored), ...]}, blocks in order."""
    r = Rd(ix, what)
    ns, nb = r.u("I"), r.u("I")
    streams = []
    for _ in range(ns):
        e = r.take(52)
        streams.append((e[:16], struct.unpack(">i", e[16:20])[0], struct.unpack(">I", e[20:24])[0]))
    blocks = []
    for _ in range(nb):
        first, last, _ts, pos, stored = struct.unpack(">qqqQI", r.take(52)[:36])
        blocks.append((first, last, pos, stored))
    out, b = {}, 0
    for sid, p, n in streams:
        out[(sid, p)] = blocks[b:b + n]
        b += n
    return out


class Reader:
    """The GETs of one cold read of a topic, shared by the worker threads."""

    def __init__(self, s3, a, m, tid):
        self.s3, self.a, self.m, self.tid = s3, a, m, tid
        self.lock = threading.Lock()
        self.index = {}          # object id -> (lock, [streams or None])
        self.gets = 0
        self.bytes = 0
        self.error = None

    def get(self, key, first, last):
        data = get(self.s3, self.a, key, first, last)
        if len(data) != last - first + 1:
            raise BenchError("%s: asked for %d bytes, got %d" % (key, last - first + 1, len(data)))
        with self.lock:
            self.gets += 1
        return data

    def streams(self, oid):
        with self.lock:
            slot = self.index.setdefault(oid, (threading.Lock(), [None]))
        with slot[0]:            # a second reader waits for the first one's GET
            if slot[1][0] is None:
                key, size = self.m.objects[oid]
                n = min(self.a.tail, size)
                tail = self.get(key, size - n, size - 1)
                ioff, ilen, ix = parse_index(tail, size, key)
                if ix is None:
                    ix = self.get(key, ioff, ioff + ilen - 1)
                slot[1][0] = index_streams(ix, key)
            return slot[1][0]

    def partition(self, p, ranges):
        budget = max(self.a.want, self.a.readahead)
        for rg in ranges:
            key = self.m.objects[rg["object"]][0]
            blocks = [b for b in self.streams(rg["object"]).get((self.tid, p), [])
                      if b[1] >= rg["first"]]
            i = 0
            while i < len(blocks):
                pos, total, j = blocks[i][2], blocks[i][3], i + 1
                while j < len(blocks) and total + blocks[j][3] <= budget:
                    total += blocks[j][3]
                    j += 1
                self.get(key, pos, pos + total - 1)
                with self.lock:
                    self.bytes += total
                i = j

    def worker(self, jobs):
        try:
            for p, ranges in jobs:
                self.partition(p, ranges)
        except Exception as e:   # noqa: BLE001 - reported by the main thread
            self.error = e


def cmd_rawread(a):
    s3 = client(a, a.parallel)
    m = load_manifest(s3, a)
    parts, tid = topic_or_none(m, a.topic)
    if not parts:
        raise BenchError("the manifest has no partitions of topic %s" % a.topic)
    rd = Reader(s3, a, m, tid)
    jobs = [[] for _ in range(a.parallel)]
    for i, p in enumerate(sorted(parts)):
        jobs[i % a.parallel].append((p, parts[p]["ranges"]))
    threads = [threading.Thread(target=rd.worker, args=(j,)) for j in jobs if j]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    if rd.error is not None:
        raise BenchError("rawread: %s" % rd.error)
    print("rawread parallel=%d partitions=%d objects=%d gets=%d bytes=%d seconds=%.3f mb_per_s=%.2f"
          % (a.parallel, len(parts), len(rd.index), rd.gets, rd.bytes, secs,
             rd.bytes / MIB / secs if secs > 0 else 0.0))
    return 0


ANSI = re.compile(r"\x1b\[[0-9;]*m")
REQ = re.compile(r"^\S+:\s+(GET|PUT|POST|HEAD|DELETE)\s+(\S+)\s+(\d{3})\s")


def log_requests(a, path, first_line=1, last_line=0):
    """[(method, path below the prefix, status)] of s3rver's request lines for the prefix."""
    base = "/%s/%s" % (a.bucket, full_key(a, ""))
    out = []
    with open(path, errors="replace") as f:
        for n, line in enumerate(f, 1):
            if n < first_line or (last_line and n >= last_line):
                continue
            mt = REQ.match(ANSI.sub("", line))
            if mt and mt.group(2).startswith(base):
                out.append((mt.group(1), mt.group(2)[len(base):], int(mt.group(3))))
    return out


def classify(reqs):
    c = {"object_puts": 0, "part_puts": 0, "mpu_creates": 0, "mpu_completes": 0,
         "manifest_puts": 0, "other_writes": 0, "data_gets": 0, "manifest_gets": 0, "failed": 0}
    for method, path, status in reqs:
        if status >= 400 and not (method == "PUT" and status == 412):
            c["failed"] += 1
        if method == "GET":
            c["data_gets" if path.startswith("data/") else "manifest_gets"] += 1
        elif method == "PUT" and path.startswith("manifest/"):
            c["manifest_puts"] += 1
        elif method == "PUT" and "partNumber=" in path:
            c["part_puts"] += 1
        elif method == "PUT" and path.startswith("data/"):
            c["object_puts"] += 1
        elif method == "POST" and (path.endswith("?uploads=") or path.endswith("?uploads")):
            c["mpu_creates"] += 1
        elif method == "POST" and "uploadId=" in path:
            c["mpu_completes"] += 1
        elif method in ("PUT", "POST", "DELETE"):
            c["other_writes"] += 1
    c["writes"] = (c["object_puts"] + c["part_puts"] + c["mpu_creates"] + c["mpu_completes"] +
                   c["manifest_puts"] + c["other_writes"])
    return c


def cmd_cost(a):
    s3 = client(a)
    data = [size for key, size in list_keys(s3, a, "data/") if key.endswith(".obj")]
    versions = [k for k, _ in list_keys(s3, a, "manifest/") if VERSION_RE.match(k)]
    c = classify(log_requests(a, a.log, 1, a.to_line))
    gib = a.bytes / GIB
    print("cost produced_bytes=%d objects=%d object_bytes=%d avg_object_mib=%.2f manifest_versions=%d "
          "writes=%d writes_per_gib=%.0f object_puts=%d part_puts=%d mpu_creates=%d mpu_completes=%d "
          "manifest_puts=%d other_writes=%d failed=%d"
          % (a.bytes, len(data), sum(data), sum(data) / len(data) / MIB if data else 0.0, len(versions),
             c["writes"], c["writes"] / gib if gib > 0 else 0.0, c["object_puts"], c["part_puts"],
             c["mpu_creates"], c["mpu_completes"], c["manifest_puts"], c["other_writes"], c["failed"]))
    return 0


def cmd_requests(a):
    c = classify(log_requests(a, a.log, a.from_line, a.to_line))
    print("requests " + " ".join("%s=%d" % kv for kv in sorted(c.items())))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="the object-store side of make bench's shared-storage section")
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--prefix", default="")
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wait")
    w.add_argument("--topic", required=True)
    w.add_argument("--records", type=int, required=True)
    w.add_argument("--timeout", type=int, default=300)
    r = sub.add_parser("rawread")
    r.add_argument("--topic", required=True)
    r.add_argument("--parallel", type=int, default=1)
    r.add_argument("--readahead", type=int, default=4 * MIB)
    r.add_argument("--want", type=int, default=MIB)
    r.add_argument("--tail", type=int, default=64 << 10)
    c = sub.add_parser("cost")
    c.add_argument("--log", required=True)
    c.add_argument("--to-line", type=int, default=0)
    c.add_argument("--bytes", type=int, required=True)
    q = sub.add_parser("requests")
    q.add_argument("--log", required=True)
    q.add_argument("--from-line", type=int, default=1)
    q.add_argument("--to-line", type=int, default=0)
    a = ap.parse_args(argv)
    a.prefix = a.prefix.strip("/")
    if a.cmd == "rawread" and a.parallel < 1:
        ap.error("--parallel wants 1 or more")
    try:
        return {"wait": cmd_wait, "rawread": cmd_rawread, "cost": cmd_cost,
                "requests": cmd_requests}[a.cmd](a)
    except BenchError as e:
        print("s3bench: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
