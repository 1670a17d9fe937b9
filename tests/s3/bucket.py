#!/usr/bin/python3
"""bucket.py - an independent reader of a Sluice bucket: the manifest and the
data objects it names, written from docs/FORMAT.md ("The manifest", "Data
objects") alone, never from storage/manifest.c or storage/object.c.  Data
objects are decoded by objreader.py (also written from the document).

What it is for: checking what a broker wrote without trusting the broker's
code, and checking that the document says enough to read a bucket.

    bucket.py [--history] [--verify] [--json] WHERE

WHERE is a directory (the store of sluice.objects.url=file:///DIR), a
file:///DIR URL, or s3://BUCKET[/PREFIX][?region=R&endpoint=URL&path_style=B],
the form of sluice.objects.url.  For S3 the credentials come from
S3_ACCESS_KEY / S3_SECRET_KEY / S3_SESSION_TOKEN (tests/s3/env.py's names)
or else boto3's own chain (AWS_*), a CA bundle for HTTPS from S3_CA_FILE.

Prints the newest version's state: topics, partitions (log start, end,
ranges), objects (count, sizes), retired keys, committed offsets.  With
--history every version still in the bucket is checked, including that each
later checkpoint can follow the version before it; with --verify every
partition's batches are read from its objects and checked (see batches());
--json prints the state as JSON (state_json()) instead.  Exits 1 naming the
rule that failed when the bucket breaks one.

As a module:
    store = open_store(where)             # DirStore or S3Store
    st = load(store)                      # State of the newest version
    st.topics[id].parts[p].ranges ...     # see State
    for b in batches(store, st, topic_id, p): b.base, b.count, b.data
    check_history(store)                  # every version, see there
    check_objects(store, st)              # listing against the state
"""

import json
import os
import re
import struct
import sys
import urllib.parse
from collections import namedtuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import objreader  # noqa: E402
from objreader import ObjectError, crc32c  # noqa: E402

MAGIC = b"SLUICEMF"
HEADER_LEN = 64
VERSION_MAX = 256 << 20
INT64_MAX = (1 << 63) - 1
U64_LIMIT = 1 << 64
NSTR_MAX = 1 << 20
PRODUCERS_MAX = 64 << 20
STATE_MAX = 16 << 20
PARTITIONS_MAX = 1048576
CONFIGS_MAX = 1024
RANGE_LEN = 48

VERSION_KEY = re.compile(r"^manifest/([0-9]{20})\Z")
KEY_CHARS = re.compile(r"^[A-Za-z0-9\-_.=+]+\Z")

CLUSTER, TOPIC, TOPIC_DELETE, PARTITION, OBJECT, APPEND, REPLACE, LOG_START, RETIRE, RETIRED, FORGET, \
    OFFSET, OFFSET_DELETE, GROUP_DELETE, PRODUCERS, STATE = range(1, 17)
OP_NAMES = {CLUSTER: "CLUSTER", TOPIC: "TOPIC", TOPIC_DELETE: "TOPIC_DELETE", PARTITION: "PARTITION",
            OBJECT: "OBJECT", APPEND: "APPEND", REPLACE: "REPLACE", LOG_START: "LOG_START",
            RETIRE: "RETIRE", RETIRED: "RETIRED", FORGET: "FORGET", OFFSET: "OFFSET",
            OFFSET_DELETE: "OFFSET_DELETE", GROUP_DELETE: "GROUP_DELETE", PRODUCERS: "PRODUCERS",
            STATE: "STATE"}
# The "in" column of the operations table.
IN_CHECKPOINT = {CLUSTER, TOPIC, PARTITION, OBJECT, RETIRED, OFFSET, PRODUCERS, STATE}
IN_DELTA = {TOPIC, TOPIC_DELETE, OBJECT, APPEND, REPLACE, LOG_START, RETIRE, FORGET, OFFSET,
            OFFSET_DELETE, GROUP_DELETE, PRODUCERS, STATE}
KIND_CHECKPOINT, KIND_DELTA = 1, 2


class ManifestError(Exception):
    """The bucket breaks a rule of docs/FORMAT.md (or cannot be read)."""


class Vanished(ManifestError):
    """A version the listing showed is gone: a collector removed it; read again."""


def version_key(n):
    return "manifest/%020d" % n


def check_key_form(key):
    """The object key rule: 1-512 bytes of A-Z a-z 0-9 - _ . = + in
    /-separated segments, none empty, none starting with '.'."""
    b = key.encode("utf-8", "surrogateescape")
    if not 1 <= len(b) <= 512:
        return "key of %d bytes" % len(b)
    for seg in key.split("/"):
        if not seg:
            return "key %r has an empty segment" % key
        if seg.startswith("."):
            return "key %r has a segment starting with '.'" % key
        if not KEY_CHARS.match(seg):
            return "key %r has a character outside A-Z a-z 0-9 - _ . = +" % key
    return None


# ---------------------------------------------------------------- stores

class NotFound(Exception):
    pass


class DirStore:
    """The file:// store: key K is the file DIR/K."""

    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.name = self.root

    def _path(self, key):
        return os.path.join(self.root, *key.split("/"))

    def list(self, prefix):
        """[(key, size)] of every key starting with prefix, in key order."""
        out = []
        d = os.path.dirname(self._path(prefix + "x")) if "/" in prefix else self.root
        if not os.path.isdir(d):
            return out
        for top, _, names in os.walk(d):
            for n in names:
                p = os.path.join(top, n)
                key = os.path.relpath(p, self.root).replace(os.sep, "/")
                if key.startswith(prefix):
                    try:
                        out.append((key, os.path.getsize(p)))
                    except FileNotFoundError:
                        pass
        out.sort()
        return out

    def get(self, key, start=None, end=None):
        """The object's bytes [start, end) (all of it by default)."""
        try:
            with open(self._path(key), "rb") as f:
                if start is None:
                    return f.read()
                f.seek(start)
                return f.read((end - start) if end is not None else -1)
        except FileNotFoundError:
            raise NotFound(key)

    def tail(self, key, n, size=None):
        """(the object's size, where the bytes returned start, the last
        min(n, size) bytes); size: what the caller believes it is (unused
        here: the file says)."""
        try:
            with open(self._path(key), "rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(max(0, size - n))
                return size, max(0, size - n), f.read()
        except FileNotFoundError:
            raise NotFound(key)


class S3Store:
    """An S3 bucket (with an optional prefix) through boto3."""

    def __init__(self, client, bucket, prefix=""):
        self.c = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.name = "s3://%s/%s" % (bucket, self.prefix)

    def list(self, prefix):
        out = []
        pages = self.c.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                  Prefix=self.prefix + prefix)
        for page in pages:
            for o in page.get("Contents", []):
                out.append((o["Key"][len(self.prefix):], o["Size"]))
        out.sort()
        return out

    def _get(self, key, rng=None):
        from botocore.exceptions import ClientError
        kw = {"Bucket": self.bucket, "Key": self.prefix + key}
        if rng:
            kw["Range"] = rng
        try:
            return self.c.get_object(**kw)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFound(key)
            raise

    def get(self, key, start=None, end=None):
        if start is None:
            return self._get(key)["Body"].read()
        if end is not None and end <= start:
            return b""
        r = self._get(key, "bytes=%d-%s" % (start, "" if end is None else end - 1))
        return r["Body"].read()

    def tail(self, key, n, size=None):
        """As DirStore.tail.  With size (the manifest's), an explicit range
        size-n..size-1: s3rver answers a suffix range (bytes=-N) with bytes
        0..N instead.  Either way the answer's Content-Range says where the
        bytes are, and that is what is returned."""
        if size is not None and size > 0:
            rng = "bytes=%d-%d" % (max(0, size - n), size - 1)
        else:
            rng = "bytes=-%d" % n
        r = self._get(key, rng)
        body = r["Body"].read()
        cr = r.get("ContentRange")
        if cr:
            m = re.match(r"^bytes (\d+)-(\d+)/(\d+)$", cr.strip())
            if not m or int(m.group(2)) - int(m.group(1)) + 1 != len(body):
                raise ObjectError("%s: Content-Range %r for %d bytes" % (key, cr, len(body)))
            return int(m.group(3)), int(m.group(1)), body
        return len(body), 0, body    # the whole object came back


def s3_client(endpoint=None, region=None, path_style=True):
    import boto3
    from botocore.config import Config
    cfg = Config(signature_version="s3v4",
                 s3={"addressing_style": "path" if path_style else "auto"},
                 retries={"mode": "standard", "total_max_attempts": 3},
                 connect_timeout=10, read_timeout=120)
    kw = {}
    if os.environ.get("S3_ACCESS_KEY"):
        kw["aws_access_key_id"] = os.environ["S3_ACCESS_KEY"]
        kw["aws_secret_access_key"] = os.environ.get("S3_SECRET_KEY", "")
        if os.environ.get("S3_SESSION_TOKEN"):
            kw["aws_session_token"] = os.environ["S3_SESSION_TOKEN"]
    if endpoint and endpoint.startswith("https") and os.environ.get("S3_CA_FILE"):
        kw["verify"] = os.environ["S3_CA_FILE"]
    return boto3.session.Session().client("s3", endpoint_url=endpoint or None,
                                          region_name=region or "us-east-1", config=cfg, **kw)


def open_store(where, client=None):
    """A store for a directory, file:///DIR or s3://BUCKET[/PREFIX][?...]
    (client: a boto3 client to use instead of one built from the URL)."""
    if where.startswith("s3://"):
        u = urllib.parse.urlsplit(where)
        q = dict(urllib.parse.parse_qsl(u.query))
        if client is None:
            client = s3_client(q.get("endpoint"), q.get("region"),
                               q.get("path_style", "true").lower() != "false")
        return S3Store(client, u.netloc, u.path)
    if where.startswith("file://"):
        where = urllib.parse.unquote(urllib.parse.urlsplit(where).path)
    if not os.path.isdir(where):
        raise ManifestError("%s is not a directory" % where)
    return DirStore(where)


# ---------------------------------------------------------------- the state

Range = namedtuple("Range", "obj first last max_ts pos length")
Offset = namedtuple("Offset", "offset leader_epoch metadata commit_time expire_time")


class Partition:
    def __init__(self):
        self.log_start = 0
        self.end = 0
        self.ranges = []     # Range, in offset order
        self.set = False     # a PARTITION operation has set it (checkpoints: once)
        self.state = b""     # the broker's opaque state bytes (producer state)

    def empty(self):
        return self.log_start == 0 and self.end == 0 and not self.ranges


class Topic:
    def __init__(self, tid, name, npart, configs):
        self.id = tid
        self.name = name
        self.parts = [Partition() for _ in range(npart)]
        self.configs = configs     # {key: value or None}


class Obj:
    def __init__(self, oid, key, size, created):
        self.id, self.key, self.size, self.created = oid, key, size, created
        self.refs = 0        # ranges naming it


class State:
    """A manifest state, as "The state, and what each operation does" has it.

    cluster, next_object_id; topics {id bytes: Topic} (Topic.name, .configs,
    .parts[p] a Partition with .log_start, .end, .ranges [Range]); names
    {name: id}; objects {id: Obj (.key, .size, .created, .refs)}; retired
    {key: time}; offsets {(group, topic, partition): Offset}; producers
    (version, bytes).  The header of the last version applied: version,
    checkpoint, epoch, node, time, crc."""

    def __init__(self):
        self.cluster = None
        self.next_object_id = 0
        self.topics = {}
        self.names = {}
        self.objects = {}
        self.retired = {}
        self.offsets = {}
        self.producers = (0, b"")
        self.version = 0
        self.checkpoint = 0
        self.epoch = 0
        self.node = None
        self.time = None
        self.crc = None
        self.applied = []    # version numbers applied, in order

    def topic(self, name):
        """The Topic named name, or None."""
        tid = self.names.get(name)
        return self.topics[tid] if tid is not None else None

    def keys(self):
        return {o.key for o in self.objects.values()} | set(self.retired)

    def to_json(self):
        """The whole state as plain JSON values, in a canonical order: what
        tests compare (tests/s3/mfwrite.c prints the C engine's view in the
        same shape)."""
        topics = []
        for tid in sorted(self.topics):
            t = self.topics[tid]
            topics.append({
                "id": tid.hex(), "name": t.name,
                "configs": {k: t.configs[k] for k in sorted(t.configs)},
                "partitions": [{"log_start": p.log_start, "end": p.end,
                                "ranges": [list(r) for r in p.ranges], "state": p.state.hex()}
                               for p in t.parts],
            })
        return {
            "cluster": self.cluster,
            "next_object_id": self.next_object_id,
            "topics": topics,
            "objects": [{"id": o.id, "key": o.key, "size": o.size, "created": o.created, "refs": o.refs}
                        for _, o in sorted(self.objects.items())],
            "retired": [[k, self.retired[k]] for k in sorted(self.retired)],
            "offsets": [{"group": g, "topic": t, "partition": p, "offset": o.offset,
                         "leader_epoch": o.leader_epoch, "metadata": o.metadata,
                         "commit_time": o.commit_time, "expire_time": o.expire_time}
                        for (g, t, p), o in sorted(self.offsets.items())],
            "producers": {"version": self.producers[0], "data": self.producers[1].hex()},
        }


def state_json(st):
    return st.to_json()


# ---------------------------------------------------------------- decoding

Version = namedtuple("Version", "n kind node checkpoint epoch time prev_crc crc ops size")


class Cursor:
    """Bounds-checked reads from an operation's body."""

    def __init__(self, data, what):
        self.d = data
        self.p = 0
        self.what = what

    def need(self, n):
        if self.p + n > len(self.d):
            raise ManifestError("%s: body ends early (%d bytes, more wanted at %d)"
                                % (self.what, len(self.d), self.p))

    def take(self, fmt):
        n = struct.calcsize(fmt)
        self.need(n)
        v = struct.unpack_from(fmt, self.d, self.p)
        self.p += n
        return v[0] if len(v) == 1 else v

    def u8(self): return self.take(">B")
    def u16(self): return self.take(">H")
    def u32(self): return self.take(">I")
    def u64(self): return self.take(">Q")
    def i32(self): return self.take(">i")
    def i64(self): return self.take(">q")

    def raw(self, n):
        self.need(n)
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def id(self):
        return bytes(self.raw(16))

    def _text(self, b, field):
        if b"\0" in b:
            raise ManifestError("%s: %s holds a NUL byte" % (self.what, field))
        return b.decode("utf-8", "surrogateescape")

    def str(self, field, lo=0, hi=65535):
        n = self.u16()
        if not lo <= n <= hi:
            raise ManifestError("%s: %s of %d bytes, allowed %d-%d" % (self.what, field, n, lo, hi))
        return self._text(self.raw(n), field)

    def nstr(self, field):
        n = self.i32()
        if n == -1:
            return None
        if n < -1 or n > NSTR_MAX:
            raise ManifestError("%s: %s has length %d" % (self.what, field, n))
        return self._text(self.raw(n), field)

    def range(self):
        obj, first, last, max_ts, pos, length = self.take(">QqqqQQ")
        if not (0 <= first <= last < INT64_MAX):
            raise ManifestError("%s: range %d..%d breaks 0 <= first <= last < 2^63-1" % (self.what, first, last))
        if max_ts < -1:
            raise ManifestError("%s: range max timestamp %d below -1" % (self.what, max_ts))
        if pos + length >= U64_LIMIT:
            raise ManifestError("%s: range position + length reaches 2^64" % self.what)
        return Range(obj, first, last, max_ts, pos, length)

    def done(self):
        if self.p != len(self.d):
            raise ManifestError("%s: %d bytes of the body left unread" % (self.what, len(self.d) - self.p))


def decode_version(n, data):
    """Check a version object's header and CRC and split its body into
    operations.  n: the number in its key.  Returns a Version."""
    where = version_key(n)
    size = len(data)

    def check(cond, why):
        if not cond:
            raise ManifestError("%s: %s" % (where, why))

    check(size <= VERSION_MAX, "%d bytes, more than 256 MiB" % size)
    check(size >= HEADER_LEN + 4, "only %d bytes, shorter than a header and a CRC" % size)
    (magic, fmt, kind, flags, node, version, ckpt, epoch, tm, prev_crc, nops, body_len,
     reserved) = struct.unpack_from(">8sHBBiQQQqIIII", data, 0)
    check(magic == MAGIC, "bad magic %r" % magic)
    check(fmt == 1, "format %d, not 1" % fmt)
    check(kind in (KIND_CHECKPOINT, KIND_DELTA), "kind %d is neither checkpoint (1) nor delta (2)" % kind)
    check(flags == 0, "flags %#x, not 0" % flags)
    check(reserved == 0, "reserved field %#x, not 0" % reserved)
    check(size == HEADER_LEN + body_len + 4,
          "body length %d says %d bytes in all, the object has %d" % (body_len, HEADER_LEN + body_len + 4, size))
    crc = struct.unpack_from(">I", data, HEADER_LEN + body_len)[0]
    calc = crc32c(data[:HEADER_LEN + body_len])
    check(crc == calc, "CRC mismatch: stored %08x, computed %08x" % (crc, calc))
    check(nops <= body_len // 5, "%d operations cannot fit in %d bytes" % (nops, body_len))
    check(version >= 1, "version %d below 1" % version)
    check(version == n, "header says version %d, the key %d" % (version, n))
    if kind == KIND_CHECKPOINT:
        check(ckpt == version, "a checkpoint naming checkpoint %d, not itself" % ckpt)
    else:
        check(1 <= ckpt < version, "a delta naming checkpoint %d, not in 1..%d" % (ckpt, version - 1))
    check(version != 1 or kind == KIND_CHECKPOINT, "version 1 is not a checkpoint")
    check(version != 1 or prev_crc == 0, "version 1 with previous CRC %08x, not 0" % prev_crc)
    check(epoch >= 1, "epoch %d below 1" % epoch)
    ops = []
    p, end = HEADER_LEN, HEADER_LEN + body_len
    while p < end:
        check(p + 5 <= end, "operation %d: header runs past the body" % len(ops))
        t, ln = struct.unpack_from(">BI", data, p)
        p += 5
        check(p + ln <= end, "operation %d (type %d): %d bytes run past the body" % (len(ops), t, ln))
        ops.append((t, data[p:p + ln]))
        p += ln
    check(len(ops) == nops, "the header says %d operations, the body holds %d" % (nops, len(ops)))
    return Version(version, kind, node, ckpt, epoch, tm, prev_crc, crc, ops, size)


# ---------------------------------------------------------------- applying

class Applier:
    """Applies one version's operations to a State, rule by rule."""

    def __init__(self, st, v):
        self.st = st
        self.v = v
        self.cp = v.kind == KIND_CHECKPOINT
        self.last_cp_object = None   # id of the previous OBJECT in a checkpoint
        self.what = ""

    def fail(self, why):
        raise ManifestError("%s: %s: %s" % (version_key(self.v.n), self.what, why))

    def check(self, cond, why):
        if not cond:
            self.fail(why)

    def run(self):
        for i, (t, body) in enumerate(self.v.ops):
            name = OP_NAMES.get(t)
            self.what = "operation %d (%s)" % (i, name or "type %d" % t)
            self.check(name is not None, "unknown operation type")
            self.check(t in (IN_CHECKPOINT if self.cp else IN_DELTA),
                       "not allowed in a %s" % ("checkpoint" if self.cp else "delta"))
            if self.cp:
                self.check((i == 0) == (t == CLUSTER), "CLUSTER must be a checkpoint's first operation, once")
            c = Cursor(body, "%s: %s" % (version_key(self.v.n), self.what))
            getattr(self, "op_" + name.lower())(c)
            c.done()
        if self.cp:
            self.check(self.v.ops, "a checkpoint without operations")
        self.what = "after the version"
        self.invariants()

    # -- helpers

    def part(self, tid, p):
        t = self.st.topics.get(tid)
        self.check(t is not None, "no topic %s" % tid.hex())
        self.check(0 <= p < len(t.parts), "topic %s has no partition %d (it has %d)" % (t.name, p, len(t.parts)))
        return t, t.parts[p]

    def ref(self, r):
        o = self.st.objects.get(r.obj)
        self.check(o is not None, "range %d..%d names object %d, which is not in the state" % (r.first, r.last, r.obj))
        o.refs += 1

    def unref(self, r):
        self.st.objects[r.obj].refs -= 1

    def drop_below_start(self, part):
        keep = []
        for r in part.ranges:
            if r.last < part.log_start:
                self.unref(r)
            else:
                keep.append(r)
        part.ranges = keep

    def part_invariant(self, part, where):
        rs = part.ranges
        for a, b in zip(rs, rs[1:]):
            self.check(b.first == a.last + 1, "%s: range %d..%d does not follow %d..%d"
                       % (where, b.first, b.last, a.first, a.last))
        if rs:
            self.check(rs[-1].last == part.end - 1, "%s: last range ends at %d, end is %d"
                       % (where, rs[-1].last, part.end))
            self.check(rs[0].first <= part.log_start <= rs[0].last,
                       "%s: log start %d outside the first range %d..%d"
                       % (where, part.log_start, rs[0].first, rs[0].last))
        else:
            self.check(part.log_start >= part.end, "%s: no ranges, yet log start %d is below end %d"
                       % (where, part.log_start, part.end))

    def invariants(self):
        st = self.st
        total = sum(len(t.parts) for t in st.topics.values())
        self.check(total <= PARTITIONS_MAX, "%d partitions in all, more than %d" % (total, PARTITIONS_MAX))
        self.check(len(st.names) == len(st.topics), "topic names not unique")
        refs = {}
        for t in st.topics.values():
            for i, p in enumerate(t.parts):
                self.part_invariant(p, "%s/%d" % (t.name, i))
                for r in p.ranges:
                    self.check(r.obj in st.objects, "%s/%d: range names object %d, not in the state"
                               % (t.name, i, r.obj))
                    refs[r.obj] = refs.get(r.obj, 0) + 1
        for o in st.objects.values():
            self.check(o.refs == refs.get(o.id, 0), "object %d: reference count %d, %d ranges name it"
                       % (o.id, o.refs, refs.get(o.id, 0)))
            self.check(o.refs > 0, "object %d (%s) is named by no range and not retired" % (o.id, o.key))
        keys = [o.key for o in st.objects.values()]
        self.check(len(set(keys)) == len(keys), "two objects with one key")
        self.check(not set(keys) & set(st.retired), "a key both an object and retired")
        if st.objects:
            self.check(max(st.objects) < st.next_object_id, "object id %d not below the next object id %d"
                       % (max(st.objects), st.next_object_id))

    # -- operations

    def op_cluster(self, c):
        self.st.cluster = c.str("cluster id", 1, 64)
        self.st.next_object_id = c.u64()

    def op_topic(self, c):
        tid = c.id()
        name = c.str("name", 1, 249)
        npart = c.i32()
        self.check(npart >= 1, "topic %s: %d partitions" % (name, npart))
        ncfg = c.u32()
        self.check(ncfg <= CONFIGS_MAX, "topic %s: %d configs, more than %d" % (name, ncfg, CONFIGS_MAX))
        configs = {}
        for _ in range(ncfg):
            k = c.str("config key", 1, 255)
            v = c.nstr("config value")
            self.check(k not in configs, "topic %s: config %s twice" % (name, k))
            configs[k] = v
        st = self.st
        t = st.topics.get(tid)
        if t is None:
            self.check(name not in st.names, "topic %s: the name is taken by topic %s"
                       % (name, st.names.get(name, b"").hex()))
            self.check(npart <= PARTITIONS_MAX, "topic %s: %d partitions" % (name, npart))
            t = Topic(tid, name, npart, configs)
            st.topics[tid] = t
            st.names[name] = tid
        else:
            self.check(t.name == name, "topic %s renamed to %s" % (t.name, name))
            self.check(npart >= len(t.parts), "topic %s: partitions %d lowered to %d" % (name, len(t.parts), npart))
            self.check(npart <= PARTITIONS_MAX, "topic %s: %d partitions" % (name, npart))
            t.parts += [Partition() for _ in range(npart - len(t.parts))]
            t.configs = configs

    def op_topic_delete(self, c):
        tid = c.id()
        t = self.st.topics.get(tid)
        self.check(t is not None, "no topic %s to delete" % tid.hex())
        for p in t.parts:
            for r in p.ranges:
                self.unref(r)
        del self.st.topics[tid]
        del self.st.names[t.name]

    def op_partition(self, c):
        tid = c.id()
        p = c.i32()
        log_start = c.i64()
        end = c.i64()
        n = c.u32()
        self.check(n * RANGE_LEN <= len(c.d) - c.p, "%d ranges cannot fit in the body" % n)
        ranges = [c.range() for _ in range(n)]
        t, part = self.part(tid, p)
        self.check(not part.set, "%s/%d set twice" % (t.name, p))
        self.check(part.empty(), "%s/%d is not empty" % (t.name, p))
        self.check(log_start >= 0 and end >= 0, "%s/%d: log start %d, end %d" % (t.name, p, log_start, end))
        part.set = True
        part.log_start, part.end, part.ranges = log_start, end, ranges
        for r in ranges:
            self.ref(r)
        self.part_invariant(part, "%s/%d" % (t.name, p))

    def op_object(self, c):
        oid = c.u64()
        key = c.str("key", 1, 512)
        size = c.u64()
        created = c.i64()
        why = check_key_form(key)
        self.check(why is None, "object %d: %s" % (oid, why))
        st = self.st
        if self.cp:
            self.check(oid < st.next_object_id, "object id %d not below the next object id %d"
                       % (oid, st.next_object_id))
            self.check(self.last_cp_object is None or oid > self.last_cp_object,
                       "object id %d not above the previous OBJECT's %d" % (oid, self.last_cp_object or 0))
            self.last_cp_object = oid
        else:
            self.check(oid >= st.next_object_id, "object id %d below the next object id %d"
                       % (oid, st.next_object_id))
            st.next_object_id = oid + 1
        self.check(oid not in st.objects, "object id %d twice" % oid)
        self.check(key not in st.retired, "object key %s is a retired key" % key)
        self.check(all(o.key != key for o in st.objects.values()), "object key %s is already an object's" % key)
        st.objects[oid] = Obj(oid, key, size, created)

    def op_append(self, c):
        tid = c.id()
        p = c.i32()
        r = c.range()
        t, part = self.part(tid, p)
        self.check(r.first == part.end, "%s/%d: range %d..%d does not start at the end %d"
                   % (t.name, p, r.first, r.last, part.end))
        self.ref(r)
        part.ranges.append(r)
        part.end = r.last + 1
        self.drop_below_start(part)

    def op_replace(self, c):
        tid = c.id()
        p = c.i32()
        r = c.range()
        t, part = self.part(tid, p)
        i = next((k for k, x in enumerate(part.ranges) if x.first == r.first), None)
        j = next((k for k, x in enumerate(part.ranges) if x.last == r.last), None)
        self.check(i is not None and j is not None and i <= j,
                   "%s/%d: no run of ranges covers exactly %d..%d" % (t.name, p, r.first, r.last))
        self.ref(r)
        for x in part.ranges[i:j + 1]:
            self.unref(x)
        part.ranges[i:j + 1] = [r]

    def op_log_start(self, c):
        tid = c.id()
        p = c.i32()
        off = c.i64()
        t, part = self.part(tid, p)
        self.check(off >= part.log_start, "%s/%d: log start %d would go down to %d"
                   % (t.name, p, part.log_start, off))
        part.log_start = off
        self.drop_below_start(part)

    def op_retire(self, c):
        oid = c.u64()
        tm = c.i64()
        o = self.st.objects.get(oid)
        self.check(o is not None, "no object %d to retire" % oid)
        self.check(o.refs == 0, "object %d (%s) is still named by %d ranges" % (oid, o.key, o.refs))
        del self.st.objects[oid]
        self.st.retired[o.key] = tm

    def op_retired(self, c):
        key = c.str("key", 1, 512)
        tm = c.i64()
        why = check_key_form(key)
        self.check(why is None, "retired %s" % why)
        self.check(key not in self.st.keys(), "retired key %s is already known" % key)
        self.st.retired[key] = tm

    def op_forget(self, c):
        key = c.str("key", 1, 512)
        self.check(key in self.st.retired, "FORGET of %s, not a retired key" % key)
        del self.st.retired[key]

    def op_offset(self, c):
        g = c.str("group", 0, 32767)
        t = c.str("topic", 1, 249)
        p = c.i32()
        self.check(p >= 0, "offset of %s/%s/%d: negative partition" % (g, t, p))
        off = c.i64()
        le = c.i32()
        md = c.nstr("metadata")
        ct = c.i64()
        et = c.i64()
        self.st.offsets[(g, t, p)] = Offset(off, le, md, ct, et)

    def op_offset_delete(self, c):
        g = c.str("group")
        t = c.str("topic")
        p = c.i32()
        self.check(p >= -1, "partition %d" % p)
        for k in [k for k in self.st.offsets if k[0] == g and k[1] == t and (p == -1 or k[2] == p)]:
            del self.st.offsets[k]

    def op_group_delete(self, c):
        g = c.str("group")
        for k in [k for k in self.st.offsets if k[0] == g]:
            del self.st.offsets[k]

    def op_state(self, c):
        tid = c.id()
        p = c.i32()
        n = c.u32()
        self.check(n <= STATE_MAX, "partition state of %d bytes" % n)
        self.part(tid, p)[1].state = bytes(c.raw(n))

    def op_producers(self, c):
        ver = c.u16()
        n = c.u32()
        self.check(n <= PRODUCERS_MAX, "producer state of %d bytes" % n)
        self.st.producers = (ver, bytes(c.raw(n)))


def apply(st, v):
    """Apply Version v to State st (in place; on failure st is spoilt)."""
    if v.kind == KIND_CHECKPOINT:
        if st.applied:
            raise ManifestError("%s: a checkpoint applied to a non-empty state" % version_key(v.n))
    else:
        if not st.applied:
            raise ManifestError("%s: a delta with no state to apply it to" % version_key(v.n))
        where = version_key(v.n)
        if st.version != v.n - 1:
            raise ManifestError("%s: applied after version %d, not %d" % (where, st.version, v.n - 1))
        if v.prev_crc != st.crc:
            raise ManifestError("%s: previous CRC %08x, version %d's CRC is %08x"
                                % (where, v.prev_crc, st.version, st.crc))
        if v.checkpoint != st.checkpoint:
            raise ManifestError("%s: names checkpoint %d, version %d named %d"
                                % (where, v.checkpoint, st.version, st.checkpoint))
        if v.epoch < st.epoch:
            raise ManifestError("%s: epoch %d below version %d's epoch %d" % (where, v.epoch, st.version, st.epoch))
    Applier(st, v).run()
    st.version, st.checkpoint, st.epoch = v.n, v.checkpoint, v.epoch
    st.node, st.time, st.crc = v.node, v.time, v.crc
    st.applied.append(v.n)
    return st


# ---------------------------------------------------------------- loading

def list_versions(store):
    """{N: size} of the version objects under manifest/ (other keys ignored)."""
    out = {}
    for key, size in store.list("manifest/"):
        m = VERSION_KEY.match(key)
        if m and int(m.group(1)) >= 1:
            out[int(m.group(1))] = size
    return out


def read_version(store, n):
    try:
        data = store.get(version_key(n))
    except NotFound:
        raise Vanished("%s is gone" % version_key(n))
    return decode_version(n, data)


def load_once(store, versions=None):
    versions = list_versions(store) if versions is None else versions
    if not versions:
        return State()   # a new, empty store
    n = max(versions)
    top = read_version(store, n)
    if top.kind == KIND_CHECKPOINT:
        return apply(State(), top)
    cp = read_version(store, top.checkpoint)
    if cp.kind != KIND_CHECKPOINT:
        raise ManifestError("%s names checkpoint %d, which is a delta" % (version_key(n), top.checkpoint))
    st = apply(State(), cp)
    for k in range(top.checkpoint + 1, n):
        if k not in versions:
            raise Vanished("%s is missing between checkpoint %d and version %d" % (version_key(k), top.checkpoint, n))
        apply(st, read_version(store, k))
    return apply(st, top)


def load(store, attempts=5):
    """The State of the newest version ("Reading"), starting again when a
    version vanished under a collector."""
    last = None
    for _ in range(attempts):
        try:
            return load_once(store)
        except Vanished as e:
            last = e
    raise ManifestError("versions keep vanishing while reading: %s" % last)


def check_history(store):
    """Check every version in the bucket, not only the newest chain: from
    the lowest checkpoint present, every version follows the one before (no
    gaps, previous CRCs, epochs never down, each delta naming the newest
    checkpoint before it, applying cleanly), and each later checkpoint is a
    state the one before can reach by operations (checkpoint_follows: a
    checkpoint folds in its own version's edits, so it need not equal the
    state before it).  Returns (State of the newest, {"versions": n,
    "checkpoints": [...], "skipped": versions below the first checkpoint})."""
    versions = list_versions(store)
    if not versions:
        return State(), {"versions": 0, "checkpoints": [], "skipped": 0}
    nums = sorted(versions)
    for a, b in zip(nums, nums[1:]):
        if b != a + 1:
            raise ManifestError("versions %d and %d present, those between missing" % (a, b))
    decoded = {}
    first_cp = None
    for n in nums:
        decoded[n] = read_version(store, n)
        if first_cp is None and decoded[n].kind == KIND_CHECKPOINT:
            first_cp = n
    if first_cp is None:
        raise ManifestError("no checkpoint among versions %d..%d" % (nums[0], nums[-1]))
    for a, b in zip(nums, nums[1:]):
        va, vb = decoded[a], decoded[b]
        if vb.prev_crc != va.crc:
            raise ManifestError("%s: previous CRC %08x, version %d's CRC is %08x"
                                % (version_key(b), vb.prev_crc, a, va.crc))
        if vb.epoch < va.epoch:
            raise ManifestError("%s: epoch %d below version %d's %d" % (version_key(b), vb.epoch, a, va.epoch))
    st = None
    cps = []
    for n in nums:
        if n < first_cp:
            continue
        v = decoded[n]
        if v.kind == KIND_CHECKPOINT:
            fresh = apply(State(), v)
            if st is not None:
                why = checkpoint_follows(st, fresh)
                if why:
                    raise ManifestError("checkpoint %d cannot follow version %d: %s" % (n, st.version, why))
            st = fresh
            cps.append(n)
        else:
            apply(st, v)
    return st, {"versions": len(nums), "checkpoints": cps, "skipped": first_cp - nums[0]}


def checkpoint_follows(a, b):
    """None if state b can follow state a by operations of one version
    (what is monotonic under every operation), else why not: the same
    cluster; the next object id not lower; for each topic in both, the same
    name, no fewer partitions, log starts and ends not lower; each object in
    both the same (key, size, created); an object of a gone from b's objects
    only as a retired key or forgotten, never under a new id; a retired key
    of a not an object again; objects new in b with ids at or above a's
    next object id."""
    if a.cluster != b.cluster:
        return "cluster %r became %r" % (a.cluster, b.cluster)
    if b.next_object_id < a.next_object_id:
        return "next object id %d went down to %d" % (a.next_object_id, b.next_object_id)
    for tid, t in a.topics.items():
        u = b.topics.get(tid)
        if u is None:
            continue
        if u.name != t.name:
            return "topic %s renamed %s" % (t.name, u.name)
        if len(u.parts) < len(t.parts):
            return "topic %s: partitions %d went down to %d" % (t.name, len(t.parts), len(u.parts))
        for i, (p, q) in enumerate(zip(t.parts, u.parts)):
            if q.log_start < p.log_start or q.end < p.end:
                return "%s/%d: log start %d end %d became %d, %d" % (t.name, i, p.log_start, p.end,
                                                                    q.log_start, q.end)
    bkeys = {o.key: o for o in b.objects.values()}
    for oid, o in a.objects.items():
        q = b.objects.get(oid)
        if q is not None:
            if (q.key, q.size, q.created) != (o.key, o.size, o.created):
                return "object %d changed from %s to %s" % (oid, (o.key, o.size, o.created),
                                                            (q.key, q.size, q.created))
        elif o.key in bkeys:
            return "object %s came back under id %d" % (o.key, bkeys[o.key].id)
    for k in a.retired:
        if k in bkeys:
            return "retired key %s is an object again" % k
    for oid in b.objects:
        if oid not in a.objects and oid < a.next_object_id:
            return "new object %d below the next object id %d" % (oid, a.next_object_id)
    return None


def json_diff(a, b, path=""):
    """The first place two JSON values differ, for messages."""
    if type(a) is not type(b):
        return "%s: %r vs %r" % (path or "/", a, b)
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return "%s/%s only in %s" % (path, k, "the first" if k in a else "the second")
            if a[k] != b[k]:
                return json_diff(a[k], b[k], "%s/%s" % (path, k))
    elif isinstance(a, list):
        if len(a) != len(b):
            return "%s: %d items vs %d" % (path or "/", len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return json_diff(x, y, "%s[%d]" % (path, i))
    elif a != b:
        return "%s: %r vs %r" % (path or "/", a, b)
    return None


# ---------------------------------------------------------------- data

class Window:
    """Part of an object, addressed as if it were all of it: len() is the
    object's size and slices must fall inside the bytes fetched.  Lets
    objreader's functions work on ranged reads."""

    def __init__(self, size, base, buf):
        self.size, self.base, self.buf = size, base, buf

    def __len__(self):
        return self.size

    def __getitem__(self, s):
        if not isinstance(s, slice) or s.step not in (None, 1):
            raise TypeError("Window takes plain slices only")
        start = 0 if s.start is None else s.start
        stop = self.size if s.stop is None else min(s.stop, self.size)
        if start < 0 or stop < 0:
            raise TypeError("Window takes non-negative slices only")
        if stop <= start:
            return b""
        if start < self.base or stop > self.base + len(self.buf):
            raise ObjectError("bytes %d..%d asked, %d..%d fetched"
                              % (start, stop, self.base, self.base + len(self.buf)))
        return self.buf[start - self.base:stop - self.base]


class ObjectIndex:
    """One data object's footer and index, read with ranged gets."""
    TAIL = 256 << 10

    def __init__(self, store, key, size=None):
        self.store = store
        self.key = key
        want = size
        size, start, tail = store.tail(key, self.TAIL, size)
        self.size = size
        if want is not None and size != want:
            raise ObjectError("%d bytes, the manifest says %d" % (size, want))
        if start + len(tail) != size:
            raise ObjectError("asked for the end of the object, got bytes %d..%d of %d"
                              % (start, start + len(tail), size))
        w = Window(size, start, tail)
        self.footer = f = objreader.read_footer(w)
        if f.index_off < w.base:
            w = Window(size, f.index_off, store.get(key, f.index_off, f.index_off + f.index_len))
        self.streams = {(s.ns, s.index): s for s in objreader.read_index(w, f)}
        try:
            objreader.parse_key(key)
        except ObjectError:
            pass          # the manifest may name objects not in the data/ form
        else:
            objreader.check_key(key, f)

    def read_blocks(self, blocks):
        """Fill blk.batches for adjacent blocks (one ranged get)."""
        if not blocks:
            return
        lo, hi = blocks[0].pos, blocks[-1].pos + blocks[-1].stored
        w = Window(self.size, lo, self.store.get(self.key, lo, hi))
        for blk in blocks:
            objreader.read_block(w, blk)


class Reader:
    """Reads batches for a State, keeping objects' indexes (not their data)."""

    def __init__(self, store, st):
        self.store, self.st = store, st
        self.index = {}

    def obj(self, oid):
        o = self.st.objects[oid]
        ix = self.index.get(oid)
        if ix is None:
            try:
                ix = ObjectIndex(self.store, o.key, o.size)
            except NotFound:
                raise ManifestError("object %d (%s) is named by the manifest but not in the store" % (oid, o.key))
            except (ObjectError, struct.error) as e:
                raise ManifestError("object %d (%s): %s" % (oid, o.key, e))
            if ix.size != o.size:
                raise ManifestError("object %d (%s): %d bytes, the manifest says %d" % (oid, o.key, ix.size, o.size))
            self.index[oid] = ix
        return ix

    def range_batches(self, tid, p, r):
        """The batches of range r of partition p of topic tid: the batches
        of the object's stream within first..last (a batch straddling a
        bound is an error)."""
        ix = self.obj(r.obj)
        s = ix.streams.get((tid, p))
        where = "%s/%d range %d..%d in object %d (%s)" % (tid.hex(), p, r.first, r.last, r.obj, ix.key)
        if s is None:
            raise ManifestError("%s: the object has no stream for the partition" % where)
        blocks = [b for b in s.blocks if b.last >= r.first and b.first <= r.last]
        if r.length:
            lo, hi = r.pos, r.pos + r.length
            for b in blocks:
                if b.pos < lo or b.pos + b.stored > hi:
                    raise ManifestError("%s: block at %d..%d outside the range's bytes %d..%d"
                                        % (where, b.pos, b.pos + b.stored, lo, hi))
            if hi > ix.size:
                raise ManifestError("%s: bytes %d..%d past the object's %d" % (where, lo, hi, ix.size))
        try:
            ix.read_blocks(blocks)
        except ObjectError as e:
            raise ManifestError("%s: %s" % (where, e))
        out = []
        for b in blocks:
            for bt in b.batches:
                last = bt.base + bt.count - 1
                if last < r.first or bt.base > r.last:
                    continue
                if bt.base < r.first or last > r.last:
                    raise ManifestError("%s: batch %d..%d straddles the range's bounds" % (where, bt.base, last))
                out.append(bt)
            b.batches = []     # keep only indexes in memory
        return out


def check_kafka_batch(b, where):
    """The bytes are a Kafka record batch (magic 2) with the base offset and
    count of its entry, whose CRC (CRC-32C from the attributes on) holds."""
    d = b.data
    if len(d) < 61:
        raise ManifestError("%s: %d bytes, shorter than a record batch header" % (where, len(d)))
    base, blen, _epoch, magic, crc, _attrs, lod = struct.unpack_from(">qiibIhi", d, 0)
    if magic != 2:
        raise ManifestError("%s: magic %d, not 2" % (where, magic))
    if blen + 12 != len(d):
        raise ManifestError("%s: batchLength %d, the entry holds %d bytes" % (where, blen, len(d)))
    if base != b.base or lod + 1 != b.count:
        raise ManifestError("%s: the batch says offsets %d..%d, its entry %d..%d"
                            % (where, base, base + lod, b.base, b.base + b.count - 1))
    if crc32c(d[21:]) != crc:
        raise ManifestError("%s: record batch CRC mismatch" % where)


def batches(store, st, tid, p, dense=True, kafka=True, reader=None):
    """Every batch of partition p of topic tid (id bytes, or a name), in
    offset order, as objreader.Batch (base, count, max_ts, data): the
    batches of each range, from the first range's first offset (at or below
    the log start) to end - 1.  Checks they cover that span exactly: no
    overlap, and (dense=True, as the broker's uploads are; compaction may
    leave gaps) no gap either; each range's batches begin at its first and
    end at its last offset.  kafka=True also checks each batch is a Kafka
    record batch (check_kafka_batch).  reader: a Reader to share object
    indexes between calls."""
    if not isinstance(tid, bytes):
        t = st.topic(tid)
        if t is None:
            raise ManifestError("no topic %s" % tid)
        tid = t.id
    t = st.topics[tid]
    part = t.parts[p]
    rd = reader or Reader(store, st)
    nxt = None
    for r in part.ranges:
        got = rd.range_batches(tid, p, r)
        where = "%s/%d range %d..%d" % (t.name, p, r.first, r.last)
        if not got:
            raise ManifestError("%s: no batches" % where)
        if dense and (got[0].base != r.first or got[-1].base + got[-1].count - 1 != r.last):
            raise ManifestError("%s: batches cover %d..%d" % (where, got[0].base, got[-1].base + got[-1].count - 1))
        for b in got:
            if nxt is not None and (b.base < nxt or (dense and b.base != nxt)):
                raise ManifestError("%s: batch at %d, expected %d (%s)"
                                    % (where, b.base, nxt, "overlap" if b.base < nxt else "gap"))
            if kafka:
                check_kafka_batch(b, "%s batch %d" % (where, b.base))
            nxt = b.base + b.count
            yield b
    if part.ranges and nxt != part.end:
        raise ManifestError("%s/%d: batches end at %d, the partition at %d" % (t.name, p, nxt, part.end))


def check_objects(store, st):
    """The data/ listing against the state.  Returns {"missing": objects
    of the state not in the store (an error for the caller to report),
    "wrong_size": [(key, listed, manifest)], "unnamed": keys under data/
    that are neither objects nor retired (failed or uncommitted uploads:
    garbage, allowed), "retired_present": retired keys still there}."""
    listed = dict(store.list("data/"))
    names = {o.key: o for o in st.objects.values()}
    return {
        "missing": sorted(k for k in names if k not in listed and k.startswith("data/"))
        + sorted(k for k in names if not k.startswith("data/") and not _exists(store, k)),
        "wrong_size": sorted((k, listed[k], o.size) for k, o in names.items() if k in listed and listed[k] != o.size),
        "unnamed": sorted(k for k in listed if k not in names and k not in st.retired),
        "retired_present": sorted(k for k in st.retired if k in listed),
    }


def _exists(store, key):
    try:
        store.tail(key, 1, None)
        return True
    except NotFound:
        return False


# ---------------------------------------------------------------- command line

def summary(st, out):
    out.write("version %d (checkpoint %d) epoch %d node %s time %s\n"
              % (st.version, st.checkpoint, st.epoch, st.node, st.time))
    out.write("cluster %s, next object id %d\n" % (st.cluster, st.next_object_id))
    for tid in sorted(st.topics, key=lambda i: st.topics[i].name):
        t = st.topics[tid]
        out.write("topic %s id %s partitions %d configs %s\n"
                  % (t.name, tid.hex(), len(t.parts), json.dumps(t.configs, sort_keys=True)))
        for i, p in enumerate(t.parts):
            objs = {r.obj for r in p.ranges}
            out.write("  %d: log start %d end %d, %d ranges in %d objects\n"
                      % (i, p.log_start, p.end, len(p.ranges), len(objs)))
    sizes = [o.size for o in st.objects.values()]
    out.write("objects %d, %d bytes, average %d\n" % (len(sizes), sum(sizes), sum(sizes) // len(sizes) if sizes else 0))
    out.write("retired keys %d\n" % len(st.retired))
    for (g, t, p), o in sorted(st.offsets.items()):
        out.write("offset group %s topic %s partition %d: %d (leader epoch %d, metadata %r)\n"
                  % (g, t, p, o.offset, o.leader_epoch, o.metadata))
    if st.producers != (0, b""):
        out.write("producer state version %d, %d bytes\n" % (st.producers[0], len(st.producers[1])))


def main(argv):
    history = verify = as_json = False
    where = None
    for a in argv[1:]:
        if a == "--history":
            history = True
        elif a == "--verify":
            verify = True
        elif a == "--json":
            as_json = True
        elif where is None and not a.startswith("--"):
            where = a
        else:
            sys.stderr.write(__doc__)
            return 2
    if where is None:
        sys.stderr.write(__doc__)
        return 2
    try:
        store = open_store(where)
        if history:
            st, h = check_history(store)
            if not as_json:
                print("history: %d versions, checkpoints %s, %d below the first checkpoint not checked"
                      % (h["versions"], h["checkpoints"], h["skipped"]))
        else:
            st = load(store)
        if as_json:
            print(json.dumps(st.to_json(), indent=1, sort_keys=True))
        else:
            summary(st, sys.stdout)
        lst = check_objects(store, st)
        if lst["missing"] or lst["wrong_size"]:
            raise ManifestError("objects missing from the store: %s; sizes differ: %s"
                                % (lst["missing"][:5], lst["wrong_size"][:5]))
        if not as_json:
            print("listing: %d unnamed keys under data/, %d retired keys still present"
                  % (len(lst["unnamed"]), len(lst["retired_present"])))
        if verify:
            rd = Reader(store, st)
            nb = nrec = nbytes = 0
            for tid, t in sorted(st.topics.items()):
                for p in range(len(t.parts)):
                    for b in batches(store, st, tid, p, reader=rd):
                        nb += 1
                        nrec += b.count
                        nbytes += len(b.data)
            if not as_json:
                print("verified: %d batches, %d offsets, %d bytes" % (nb, nrec, nbytes))
    except (ManifestError, ObjectError, NotFound) as e:
        print("BAD %s: %s" % (where, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
