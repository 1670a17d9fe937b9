#!/usr/bin/python3
# harness: self
"""test_bucket_reader.py - a bucket written by the C engines
(storage/manifest.c, storage/object.c, the file object store), read by the
independent reader tests/s3/bucket.py, which was written from docs/FORMAT.md
alone.  The two must agree on everything, and refuse the same damage.

It needs no broker ("harness: self").  The writer is tests/s3/mfwrite.c
(`mfwrite write DIR` prints the engine's view of what it wrote as JSON;
`mfwrite load DIR` loads any store with the engine).  SLUICE_BIN only says
which build to use: build/sluice -> build/obj/tests/mfwrite, build/san/sluice
-> build/san/tests/mfwrite when it exists; MFWRITE overrides.

Cases:
  - the newest state (checkpoint and deltas over a second checkpoint) is the
    same for both readers, field by field;
  - so is the state at every version 1..N (the store cut after each one);
  - the history: prev_crc chain, epochs, each checkpoint reachable from the
    version before it; checkpoints where the engine's manifest_peek says;
  - every live partition's batches read through the ranges' objects are
    exactly the batches the writer put there, and the listing has no object
    missing and no stray key;
  - the FORMAT.md example decodes to what the text says, in both readers;
  - damage: a flipped byte in each version's header, body and CRC, a
    truncation, a missing version between a checkpoint and the newest, a
    version under the wrong key: both refuse, bucket.py with a clear reason;
  - hand-made versions put on top (deltas, and a checkpoint encoded from
    bucket.py's state): each accepted or refused alike by both readers, and
    as the document says where it says;
  - damaged data: a flipped byte in a block, an object gone: reading the
    partition fails naming the object; so do valid versions whose ranges do
    not match their objects (offsets the object lacks, a byte span that
    misses the blocks);
  - the same bucket copied into s3rver under a prefix and read through S3
    (ranged GETs of footer, index and blocks, the listing) gives the same
    state and batches;
  - the command line prints a summary and exits 0, or 1 with BAD.
"""

import json
import os
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "s3"))

import report  # noqa: E402
import bucket  # noqa: E402
from bucket import ManifestError  # noqa: E402
from objreader import crc32c  # noqa: E402

DATA = os.environ.get("SLUICE_DATA") or os.path.join(TOP, "build", "test-data", "test_bucket_reader")
BUCKET = os.path.join(DATA, "bucket")
CASES = os.path.join(DATA, "cases")


def writer_path():
    if os.environ.get("MFWRITE"):
        return os.environ["MFWRITE"]
    sbin = os.environ.get("SLUICE_BIN") or os.path.join(TOP, "build", "sluice")
    d = os.path.dirname(os.path.abspath(sbin))
    for cand in (os.path.join(d, "tests", "mfwrite"), os.path.join(d, "obj", "tests", "mfwrite")):
        if os.path.exists(cand):
            return cand
    return os.path.join(TOP, "build", "obj", "tests", "mfwrite")


TOOL = writer_path()
state = {}


def canon(js):
    """A state's JSON with every list in one order, for comparing."""
    js = json.loads(json.dumps(js))
    js["topics"].sort(key=lambda t: t["id"])
    js["objects"].sort(key=lambda o: o["id"])
    js["retired"].sort()
    js["offsets"].sort(key=lambda o: (o["group"], o["topic"], o["partition"]))
    return js


def c_load(path):
    """The C engine's view of the store at path: (state JSON, None) or (None, error)."""
    p = subprocess.run([TOOL, "load", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    out = p.stdout.decode(errors="replace").strip()
    try:
        js = json.loads(out)
    except ValueError:
        raise RuntimeError("mfwrite load %s exited %d printing %r, stderr %r"
                           % (path, p.returncode, out[:300], p.stderr.decode(errors="replace")[-300:]))
    if p.returncode == 0 and "state" in js:
        return js["state"], None
    if p.returncode == 1 and "error" in js:
        return None, js["error"]
    raise RuntimeError("mfwrite load %s: exit %d, %r" % (path, p.returncode, out[:300]))


def py_load(path):
    """bucket.py's view: (state JSON, None) or (None, the reason it refused)."""
    try:
        return bucket.load(bucket.open_store(path)).to_json(), None
    except ManifestError as e:
        return None, str(e)


# ---------------------------------------------------------------- the bucket

def case_write():
    report.note("writer: %s" % TOOL)
    if os.path.exists(BUCKET):
        shutil.rmtree(BUCKET)
    p = subprocess.run([TOOL, "write", BUCKET], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if p.returncode != 0:
        return "mfwrite write exited %d: %s" % (p.returncode, p.stderr.decode(errors="replace")[-500:])
    js = json.loads(p.stdout)
    state.update(js)
    cps, n = js["checkpoints"], js["versions"]
    if len(cps) < 2 or cps[0] != 1:
        return "checkpoints %r: want version 1 and at least one more" % cps
    if cps[-1] == n:
        return "the newest version %d is a checkpoint: the load would apply no delta" % n
    return ("", "%d versions, checkpoints %s, %d objects" % (n, cps, len(js["state"]["objects"])))


def case_newest_state():
    got, why = py_load(BUCKET)
    if why:
        return "bucket.py refused the engine's bucket: %s" % why
    want = canon(state["state"])
    got = canon(got)
    if got != want:
        return "bucket.py and the engine differ: %s" % bucket.json_diff(want, got)
    names = {t["name"] for t in got["topics"]}
    if names != {"alpha", "beta"}:
        return "topics %s, want alpha and beta (gamma deleted)" % sorted(names)
    return ("", "%d topics, %d objects, %d retired, %d offsets"
            % (len(got["topics"]), len(got["objects"]), len(got["retired"]), len(got["offsets"])))


def cut_store(n, name, extra=None):
    """A copy of the bucket's manifest with versions 1..n only (no data),
    plus extra {key: bytes}; returns its path."""
    d = os.path.join(CASES, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(os.path.join(d, "manifest"))
    for k in range(1, n + 1):
        src = os.path.join(BUCKET, "manifest", "%020d" % k)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(d, "manifest", "%020d" % k))
    for key, data in (extra or {}).items():
        path = os.path.join(d, *key.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return d


def case_every_version():
    kinds = []
    for n in range(1, state["versions"] + 1):
        d = cut_store(n, "cut-%d" % n)
        want, cwhy = c_load(d)
        got, pwhy = py_load(d)
        if cwhy or pwhy:
            return "version %d: engine %s, bucket.py %s" % (n, cwhy or "ok", pwhy or "ok")
        if canon(want) != canon(got):
            return "version %d: %s" % (n, bucket.json_diff(canon(want), canon(got)))
        kinds.append("c" if n in state["checkpoints"] else "d")
        shutil.rmtree(d)
    return ("", "versions 1..%d: %s" % (state["versions"], "".join(kinds)))


def case_history():
    st, h = bucket.check_history(bucket.open_store(BUCKET))
    if h["checkpoints"] != state["checkpoints"]:
        return "bucket.py finds checkpoints %s, the engine %s" % (h["checkpoints"], state["checkpoints"])
    if st.version != state["versions"] or h["skipped"] != 0:
        return "history ends at %d (skipped %d), want %d" % (st.version, h["skipped"], state["versions"])
    epochs = sorted({bucket.read_version(bucket.open_store(BUCKET), n).epoch for n in range(1, st.version + 1)})
    if epochs != [1, 2]:
        return "epochs %s, want [1, 2] (the writer restarted once)" % epochs
    return ("", "%d versions, epochs %s" % (h["versions"], epochs))


def case_batches():
    store = bucket.open_store(BUCKET)
    st = bucket.load(store)
    rd = bucket.Reader(store, st)
    want = state["batches"]
    seen = {}
    for tid, t in st.topics.items():
        for p in range(len(t.parts)):
            name = "%s/%d" % (t.name, p)
            got = [[b.base, b.count, b.max_ts, len(b.data), crc32c(b.data)]
                   for b in bucket.batches(store, st, tid, p, reader=rd)]
            seen[name] = got
            if got != want.get(name):
                return "%s: read %s, written %s" % (name, got[:4], (want.get(name) or [])[:4])
    if set(seen) != set(want):
        return "partitions read %s, written %s" % (sorted(seen), sorted(want))
    lst = bucket.check_objects(store, st)
    if lst["missing"] or lst["wrong_size"] or lst["unnamed"]:
        return "listing: %r" % lst
    if state["deleted"][0] in st.retired:
        return "the collected key %s is still retired (FORGET lost)" % state["deleted"][0]
    if len(lst["retired_present"]) != len(st.retired):
        return "retired keys %s, present %s" % (sorted(st.retired), lst["retired_present"])
    n = sum(len(v) for v in seen.values())
    if n < 10:
        return "only %d batches" % n
    return ("", "%d batches in %d partitions, %d retired keys still present"
            % (n, len(seen), len(lst["retired_present"])))


# ---------------------------------------------------------------- the FORMAT.md example

def doc_example():
    import re
    with open(os.path.join(TOP, "docs", "FORMAT.md")) as f:
        text = f.read()
    sec = text[text.index("# The manifest"):]
    ex = sec[sec.index("## Example"):]
    dump = ex[ex.index("```") + 3:]
    dump = dump[:dump.index("```")]
    files, cur = {}, None
    for line in dump.splitlines():
        m = re.match(r"^(manifest/\d{20}) \((\d+) bytes\)", line)
        if m:
            cur = m.group(1)
            files[cur] = [bytearray(), int(m.group(2))]
            continue
        hexpart = line[:50].strip()
        if hexpart:
            files[cur][0] += bytes(int(x, 16) for x in hexpart.split())
    return files


def case_doc_example():
    files = doc_example()
    extra = {}
    for key, (data, size) in files.items():
        if len(data) != size:
            return "%s: the dump has %d bytes, the text says %d" % (key, len(data), size)
        extra[key] = bytes(data)
    if len(extra) != 2:
        return "found %d versions in the example" % len(extra)
    d = cut_store(0, "doc-example", extra)
    got, why = py_load(d)
    if why:
        return "bucket.py: %s" % why
    want, cwhy = c_load(d)
    if cwhy:
        return "the engine refuses the example: %s" % cwhy
    if canon(want) != canon(got):
        return "the readers differ: %s" % bucket.json_diff(canon(want), canon(got))
    st = bucket.load(bucket.open_store(d))
    t = st.topic("t")
    if st.cluster != "c1" or t is None or t.id != bytes(15) + b"\1" or len(t.parts) != 1:
        return "cluster/topic: %r %r" % (st.cluster, got["topics"])
    o = st.objects.get(0)
    if o is None or (o.key, o.size, o.created) != ("data/a", 100, 1700000000500):
        return "object: %r" % got["objects"]
    p = t.parts[0]
    if (p.log_start, p.end, [tuple(r) for r in p.ranges]) != (0, 10, [(0, 0, 9, 1700000000123, 0, 0)]):
        return "partition: %r" % got["topics"][0]["partitions"]
    if (st.version, st.checkpoint, st.epoch, st.node, st.time) != (2, 1, 1, 0, 1700000001000):
        return "header: %r" % ((st.version, st.checkpoint, st.epoch, st.node, st.time),)
    return None


# ---------------------------------------------------------------- damage

def version_bytes(n):
    with open(os.path.join(BUCKET, "manifest", "%020d" % n), "rb") as f:
        return f.read()


def both_refuse(d, what, want_in=None):
    """None if both readers refuse the store at d (and bucket.py's reason
    contains want_in), else why not."""
    _, cwhy = c_load(d)
    _, pwhy = py_load(d)
    if not cwhy:
        return "%s: the engine accepted it" % what
    if not pwhy:
        return "%s: bucket.py accepted it" % what
    if want_in and want_in not in pwhy:
        return "%s: bucket.py refused with %r, want a reason mentioning %r" % (what, pwhy, want_in)
    return None


def case_damage():
    n = state["versions"]
    cp = state["checkpoints"][-1]
    reasons = []
    tries = 0
    for v in (cp, n):
        data = version_bytes(v)
        body_len = struct.unpack_from(">I", data, 56)[0]
        for what, at, want in (("a byte of the header (magic)", 2, "magic"),
                               ("a byte of the header (time)", 45, "CRC"),
                               ("a byte of the body", 64 + body_len // 2, "CRC"),
                               ("a byte of the CRC", len(data) - 1, "CRC")):
            bad = bytearray(data)
            bad[at] ^= 0x20
            d = cut_store(n, "damage", {"manifest/%020d" % v: bytes(bad)})
            why = both_refuse(d, "version %d, %s" % (v, what), want)
            if why:
                return why
            tries += 1
        for cut in (0, 10, 63, 64 + body_len // 2, len(data) - 1):
            d = cut_store(n, "damage", {"manifest/%020d" % v: data[:cut]})
            why = both_refuse(d, "version %d cut to %d bytes" % (v, cut))
            if why:
                return why
            tries += 1
    # a version missing between the checkpoint and the newest
    d = cut_store(n, "damage")
    os.unlink(os.path.join(d, "manifest", "%020d" % (n - 1 if n - 1 > cp else n)))
    if n - 1 > cp:
        why = both_refuse(d, "version %d missing" % (n - 1), "missing")
        if why:
            return why
        tries += 1
    # the newest version's bytes under the next key
    d = cut_store(n, "damage", {"manifest/%020d" % (n + 1): version_bytes(n)})
    why = both_refuse(d, "version %d's bytes as version %d" % (n, n + 1), "header says version")
    if why:
        return why
    tries += 1
    _, reason = py_load(d)
    reasons.append(reason)
    shutil.rmtree(d)
    return ("", "%d damaged stores refused by both; e.g. %s" % (tries, reasons[0]))


# ---------------------------------------------------------------- hand-made versions

def s16(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def ns32(s):
    if s is None:
        return struct.pack(">i", -1)
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def rng(obj, first, last, max_ts=-1, pos=0, length=0):
    return struct.pack(">QqqqQQ", obj, first, last, max_ts, pos, length)


def op(t, body):
    return (t, body)


def encode(n, kind, ops, prev_crc, epoch, checkpoint=None, node=1, tm=1800000000000, nops=None,
           fix_crc=True):
    body = b"".join(struct.pack(">BI", t, len(b)) + b for t, b in ops)
    hdr = struct.pack(">8sHBBiQQQqIIII", b"SLUICEMF", 1, kind, 0, node, n,
                      n if kind == 1 else checkpoint, epoch, tm, prev_crc,
                      len(ops) if nops is None else nops, len(body), 0)
    data = hdr + body
    return data + struct.pack(">I", crc32c(data) if fix_crc else 0)


def encode_checkpoint(st, n, prev_crc, epoch, order=None):
    """State st as checkpoint n, written from FORMAT.md's list of what a
    checkpoint holds (order: a function reordering the operations after
    CLUSTER)."""
    ops = [op(bucket.CLUSTER, s16(st.cluster) + struct.pack(">Q", st.next_object_id))]
    rest = []
    for oid, o in sorted(st.objects.items()):
        rest.append(op(bucket.OBJECT, struct.pack(">Q", oid) + s16(o.key) + struct.pack(">Qq", o.size, o.created)))
    for tid, t in sorted(st.topics.items()):
        cfg = b"".join(s16(k) + ns32(v) for k, v in sorted(t.configs.items()))
        rest.append(op(bucket.TOPIC, tid + s16(t.name) + struct.pack(">iI", len(t.parts), len(t.configs)) + cfg))
        for i, p in enumerate(t.parts):
            if p.state:
                rest.append(op(bucket.STATE, tid + struct.pack(">iI", i, len(p.state)) + p.state))
            if p.empty():
                continue
            rest.append(op(bucket.PARTITION, tid + struct.pack(">iqqI", i, p.log_start, p.end, len(p.ranges))
                           + b"".join(rng(*r) for r in p.ranges)))
    for k in sorted(st.retired):
        rest.append(op(bucket.RETIRED, s16(k) + struct.pack(">q", st.retired[k])))
    for (g, t, p), o in sorted(st.offsets.items()):
        rest.append(op(bucket.OFFSET, s16(g) + s16(t) + struct.pack(">iqi", p, o.offset, o.leader_epoch)
                       + ns32(o.metadata) + struct.pack(">qq", o.commit_time, o.expire_time)))
    if st.producers != (0, b""):
        rest.append(op(bucket.PRODUCERS, struct.pack(">HI", st.producers[0], len(st.producers[1])) + st.producers[1]))
    if order:
        rest = order(rest)
    return encode(n, 1, ops + rest, prev_crc, epoch)


def case_hand_made():
    store = bucket.open_store(BUCKET)
    st = bucket.load(store)
    n, crc, ep, cp = st.version, st.crc, st.epoch, st.checkpoint
    alpha, beta = st.topic("alpha"), st.topic("beta")
    a0 = alpha.parts[0]
    nxt = st.next_object_id
    key = "data/0000000001/%020d/%020d-%016x.obj" % (ep, 99, 0xabc)
    used_obj = a0.ranges[0].obj
    unused_key = "data/unused/object-1"

    def delta(*ops, **kw):
        kw.setdefault("checkpoint", cp)
        epoch = kw.pop("epoch", ep)
        prev = kw.pop("prev_crc", crc)
        return encode(n + 1, 2, list(ops), prev, epoch, **kw)

    O = op
    cp_ops = decode_ops(encode_checkpoint(st, n + 1, crc, ep))
    cases = [
        # (name, version bytes, expected verdict: True accept, False refuse, None: the document leaves it open)
        ("an OFFSET", delta(O(12, s16("g9") + s16("alpha") + struct.pack(">iqi", 0, 42, -1) + ns32("m")
                                + struct.pack(">qq", 5, -1))), True),
        ("an OFFSET of group \"\"", delta(O(12, s16("") + s16("beta") + struct.pack(">iqi", 1, 3, 2) + ns32(None)
                                            + struct.pack(">qq", 5, 99))), True),
        ("OFFSET_DELETE of nothing", delta(O(13, s16("nobody") + s16("alpha") + struct.pack(">i", -1))), True),
        ("GROUP_DELETE of nothing", delta(O(14, s16("nobody"))), True),
        ("LOG_START beyond the end", delta(O(8, beta.id + struct.pack(">iq", 1, 1000))), True),
        ("LOG_START at a range's last offset", delta(O(8, alpha.id + struct.pack(">iq", 0, a0.ranges[0].last))),
         True),
        ("LOG_START at a range's first offset", delta(O(8, alpha.id + struct.pack(">iq", 0, a0.ranges[1].first))),
         True),
        ("LOG_START at the end", delta(O(8, alpha.id + struct.pack(">iq", 0, a0.end))), True),
        ("LOG_START unchanged", delta(O(8, alpha.id + struct.pack(">iq", 0, a0.log_start))), True),
        ("a new object appended", delta(O(5, struct.pack(">Q", nxt) + s16(key) + struct.pack(">Qq", 1000, 7)),
                                        O(6, alpha.id + struct.pack(">i", 1) + rng(nxt, alpha.parts[1].end,
                                                                                    alpha.parts[1].end + 4))), True),
        ("an object id skipping ahead", delta(O(5, struct.pack(">Q", nxt + 5) + s16(key) + struct.pack(">Qq", 1, 7)),
                                              O(6, alpha.id + struct.pack(">i", 1) + rng(nxt + 5, alpha.parts[1].end,
                                                                                          alpha.parts[1].end))), True),
        ("TOPIC update: more partitions, new configs", delta(O(2, beta.id + s16("beta") + struct.pack(">iI", 5, 1)
                                                               + s16("retention.ms") + ns32("1"))), True),
        ("a new topic", delta(O(2, b"\x55" * 16 + s16("delta") + struct.pack(">iI", 2, 0))), True),
        ("PRODUCERS", delta(O(15, struct.pack(">HI", 9, 3) + b"abc")), True),
        ("an empty delta", delta(), True),
        ("APPEND leaving a gap", delta(O(6, alpha.id + struct.pack(">i", 0) + rng(used_obj, a0.end + 1, a0.end + 2))),
         False),
        ("APPEND overlapping", delta(O(6, alpha.id + struct.pack(">i", 0) + rng(used_obj, a0.end - 1, a0.end + 2))),
         False),
        ("APPEND naming an unknown object", delta(O(6, alpha.id + struct.pack(">i", 0) + rng(nxt + 7, a0.end, a0.end))),
         False),
        ("APPEND to a partition beyond the count", delta(O(6, alpha.id + struct.pack(">i", 4)
                                                           + rng(used_obj, 0, 0))), False),
        ("APPEND with first > last", delta(O(6, alpha.id + struct.pack(">i", 0) + rng(used_obj, a0.end, a0.end - 1))),
         False),
        ("APPEND with max timestamp -2", delta(O(6, alpha.id + struct.pack(">i", 0)
                                                 + rng(used_obj, a0.end, a0.end, -2))), False),
        ("an object no range names", delta(O(5, struct.pack(">Q", nxt) + s16(unused_key) + struct.pack(">Qq", 1, 7))),
         False),
        ("an object id below the next", delta(O(5, struct.pack(">Q", nxt - 1) + s16(key) + struct.pack(">Qq", 1, 7)),
                                              O(6, alpha.id + struct.pack(">i", 1) + rng(nxt - 1, alpha.parts[1].end,
                                                                                          alpha.parts[1].end))), False),
        ("an object key already used", delta(O(5, struct.pack(">Q", nxt) + s16(st.objects[used_obj].key)
                                               + struct.pack(">Qq", 1, 7)),
                                             O(6, alpha.id + struct.pack(">i", 1) + rng(nxt, alpha.parts[1].end,
                                                                                         alpha.parts[1].end))), False),
        ("an object key with a '.' segment", delta(O(5, struct.pack(">Q", nxt) + s16("data/.x/y")
                                                     + struct.pack(">Qq", 1, 7)),
                                                   O(6, alpha.id + struct.pack(">i", 1)
                                                     + rng(nxt, alpha.parts[1].end, alpha.parts[1].end))), False),
        ("RETIRE of a named object", delta(O(9, struct.pack(">Qq", used_obj, 5))), False),
        ("RETIRE of an unknown object", delta(O(9, struct.pack(">Qq", nxt + 3, 5))), False),
        ("REPLACE not on range bounds", delta(O(7, alpha.id + struct.pack(">i", 0)
                                                + rng(used_obj, a0.ranges[0].first + 1, a0.ranges[0].last))), False),
        ("TOPIC renaming", delta(O(2, alpha.id + s16("alpha2") + struct.pack(">iI", 4, 0))), False),
        ("TOPIC with fewer partitions", delta(O(2, alpha.id + s16("alpha") + struct.pack(">iI", 2, 0))), False),
        ("TOPIC with a taken name", delta(O(2, b"\x66" * 16 + s16("beta") + struct.pack(">iI", 1, 0))), False),
        ("TOPIC with 0 partitions", delta(O(2, b"\x66" * 16 + s16("zero") + struct.pack(">iI", 0, 0))), False),
        ("TOPIC with a config twice", delta(O(2, b"\x66" * 16 + s16("twice") + struct.pack(">iI", 1, 2)
                                              + s16("a") + ns32("1") + s16("a") + ns32("2"))), False),
        ("a topic name with a NUL", delta(O(2, b"\x66" * 16 + s16("nu\0l") + struct.pack(">iI", 1, 0))), False),
        ("OFFSET with partition -1", delta(O(12, s16("g") + s16("alpha") + struct.pack(">iqi", -1, 1, -1)
                                             + ns32(None) + struct.pack(">qq", 5, -1))), False),
        ("CLUSTER in a delta", delta(O(1, s16("c") + struct.pack(">Q", nxt))), False),
        ("PARTITION in a delta", delta(O(4, beta.id + struct.pack(">iqqI", 0, 30, 30, 0))), False),
        ("RETIRED in a delta", delta(O(10, s16("data/zz") + struct.pack(">q", 1))), False),
        ("an unknown operation type", delta(O(16, b"")), False),
        ("an operation with a byte left over", delta(O(14, s16("g") + b"\0")), False),
        ("an operation cut short", delta(O(14, b"\0\5ab")), False),
        ("more operations than the body holds", delta(O(14, s16("g")), nops=2), False),
        ("a bad CRC", delta(O(14, s16("g")), fix_crc=False), False),
        ("a wrong previous CRC", delta(O(14, s16("g")), prev_crc=crc ^ 1), False),
        ("an epoch going down", delta(O(14, s16("g")), epoch=ep - 1), False),
        ("a higher epoch (a new writer's claim)", delta(O(14, s16("g")), epoch=ep + 1), True),
        ("naming an older checkpoint", delta(O(14, s16("g")), checkpoint=1), False),
        ("naming itself as checkpoint", delta(O(14, s16("g")), checkpoint=n + 1), False),
        ("OFFSET_DELETE with partition -2", delta(O(13, s16("g1") + s16("alpha") + struct.pack(">i", -2))), None),
        ("LOG_START going down", delta(O(8, alpha.id + struct.pack(">iq", 0, a0.log_start - 1))), None),
        ("TOPIC_DELETE of an unknown topic", delta(O(3, b"\x77" * 16)), None),
        ("FORGET of an unknown key", delta(O(11, s16("data/never/was"))), None),
        ("a checkpoint of the state", encode_checkpoint(st, n + 1, crc, ep), True),
        ("a checkpoint in another order that keeps the rules",
         encode_checkpoint(st, n + 1, crc, ep,
                           order=lambda r: sorted(r, key=lambda o: {15: 0, 12: 1, 10: 2, 5: 3}.get(o[0], 4))),
         True),
        ("a checkpoint without CLUSTER first", encode(n + 1, 1, [cp_ops[1], cp_ops[0]] + cp_ops[2:], crc, ep),
         False),
        ("a checkpoint with a PARTITION twice",
         encode(n + 1, 1, cp_ops + [o for o in cp_ops if o[0] == bucket.PARTITION][:1], crc, ep), False),
        ("a checkpoint without an object a range names",
         encode(n + 1, 1, [o for o in cp_ops
                           if not (o[0] == bucket.OBJECT and struct.unpack_from(">Q", o[1])[0] == used_obj)],
                crc, ep), False),
        ("a checkpoint with OBJECT ids descending",
         encode(n + 1, 1, [cp_ops[0]] + [o for o in cp_ops if o[0] == bucket.OBJECT][::-1]
                + [o for o in cp_ops[1:] if o[0] != bucket.OBJECT], crc, ep), False),
        ("a checkpoint with a PARTITION before its TOPIC",
         encode(n + 1, 1, [cp_ops[0]] + [o for o in cp_ops if o[0] == bucket.PARTITION]
                + [o for o in cp_ops[1:] if o[0] != bucket.PARTITION], crc, ep), False),
        ("a checkpoint with a wrong previous CRC", encode_checkpoint(st, n + 1, crc ^ 1, ep), None),
    ]
    agree, open_verdicts = 0, []
    for name, data, want in cases:
        d = cut_store(n, "hand", {"manifest/%020d" % (n + 1): data})
        cjs, cwhy = c_load(d)
        pjs, pwhy = py_load(d)
        if (cwhy is None) != (pwhy is None):
            return "%s: the engine %s, bucket.py %s" % (name, "accepts" if cwhy is None else "refuses (%s)" % cwhy,
                                                       "accepts" if pwhy is None else "refuses (%s)" % pwhy)
        if cwhy is None and canon(cjs) != canon(pjs):
            return "%s: accepted by both, states differ: %s" % (name, bucket.json_diff(canon(cjs), canon(pjs)))
        if want is not None and want != (cwhy is None):
            return "%s: both %s it, the document says it must be %s" % (
                name, "accept" if cwhy is None else "refuse", "accepted" if want else "refused")
        if want is None:
            open_verdicts.append("%s: %s" % (name, "accepted" if cwhy is None else "refused"))
        agree += 1
    shutil.rmtree(os.path.join(CASES, "hand"))
    for v in open_verdicts:
        report.note("not settled by the document, both readers: " + v)
    return ("", "%d hand-made versions, both readers agree on each" % agree)


def decode_ops(data):
    """The operations of an encoded version, as [(type, body)]."""
    body_len = struct.unpack_from(">I", data, 56)[0]
    out, p = [], 64
    while p < 64 + body_len:
        t, ln = struct.unpack_from(">BI", data, p)
        out.append((t, data[p + 5:p + 5 + ln]))
        p += 5 + ln
    return out


# ---------------------------------------------------------------- damaged data

def copy_bucket(name):
    d = os.path.join(CASES, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    shutil.copytree(BUCKET, d)
    return d


def read_all(store, st):
    rd = bucket.Reader(store, st)
    n = 0
    for tid, t in st.topics.items():
        for p in range(len(t.parts)):
            for _ in bucket.batches(store, st, tid, p, reader=rd):
                n += 1
    return n


def case_damaged_data():
    st = bucket.load(bucket.open_store(BUCKET))
    # the object with the most ranges
    refs = sorted(st.objects.values(), key=lambda o: -o.refs)
    victim = refs[0]
    import objreader
    with open(os.path.join(BUCKET, *victim.key.split("/")), "rb") as f:
        data = f.read()
    obj = objreader.read_object(data)
    blk = obj.streams[-1].blocks[-1]
    msgs = []
    for what, at in (("a block", blk.pos + blk.stored // 2), ("the index", obj.footer.index_off + 20),
                     ("the footer", len(data) - 10)):
        d = copy_bucket("data-damage")
        bad = bytearray(data)
        bad[at] ^= 0x01
        with open(os.path.join(d, *victim.key.split("/")), "wb") as f:
            f.write(bad)
        store = bucket.open_store(d)
        try:
            read_all(store, bucket.load(store))
        except ManifestError as e:
            if victim.key not in str(e):
                return "%s damaged: the error does not name the object: %s" % (what, e)
            msgs.append(str(e))
            continue
        return "a flipped byte in %s of %s went unnoticed" % (what, victim.key)
    d = copy_bucket("data-damage")
    os.unlink(os.path.join(d, *victim.key.split("/")))
    store = bucket.open_store(d)
    st2 = bucket.load(store)
    lst = bucket.check_objects(store, st2)
    if lst["missing"] != [victim.key]:
        return "check_objects missing %r, want [%s]" % (lst["missing"], victim.key)
    try:
        read_all(store, st2)
        return "reading with %s gone succeeded" % victim.key
    except ManifestError as e:
        if "not in the store" not in str(e):
            return "object gone: %s" % e
    shutil.rmtree(d)
    return ("", msgs[0])


def case_lying_ranges():
    """Versions the manifest rules accept but whose ranges do not match the
    objects: reading the partition must fail."""
    st = bucket.load(bucket.open_store(BUCKET))
    alpha = st.topic("alpha")
    a0, a2 = alpha.parts[0], alpha.parts[2]
    other = next(r.obj for r in a2.ranges if r.obj != a2.ranges[-1].obj)
    lies = [
        ("alpha/2's last range naming an object without those offsets", 2,
         rng(other, a2.ranges[-1].first, a2.ranges[-1].last)),
        ("alpha/0's first two ranges as one, in the first one's object", 0,
         rng(a0.ranges[0].obj, a0.ranges[0].first, a0.ranges[1].last)),
        ("alpha/0's first range with a recorded byte span that misses its blocks", 0,
         a0.ranges[0]._replace(pos=8, length=1)),
    ]
    msgs = []
    for what, p, r in lies:
        body = rng(*r) if isinstance(r, tuple) else r
        data = encode(st.version + 1, 2, [op(bucket.REPLACE, alpha.id + struct.pack(">i", p) + body)],
                      st.crc, st.epoch, checkpoint=st.checkpoint)
        d = copy_bucket("lies")
        with open(os.path.join(d, "manifest", "%020d" % (st.version + 1)), "wb") as f:
            f.write(data)
        store = bucket.open_store(d)
        st2 = bucket.load(store)       # the manifest itself is valid
        try:
            list(bucket.batches(store, st2, alpha.id, p))
        except ManifestError as e:
            msgs.append(str(e))
            continue
        return "%s: read without complaint" % what
    shutil.rmtree(os.path.join(CASES, "lies"))
    return ("", "; ".join(m.split(": ", 1)[-1] for m in msgs))


# ---------------------------------------------------------------- through S3

def case_s3():
    from env import S3Env
    with S3Env("test_bucket_reader") as s3:
        c = s3.boto3(attempts=3)
        nkeys = 0
        for top, _, names in os.walk(BUCKET):
            for name in names:
                path = os.path.join(top, name)
                key = os.path.relpath(path, BUCKET).replace(os.sep, "/")
                with open(path, "rb") as f:
                    c.put_object(Bucket=s3.bucket, Key="pre/fix/" + key, Body=f.read())
                nkeys += 1
        c.put_object(Bucket=s3.bucket, Key="pre/fix/manifest/not-a-version", Body=b"x")
        c.put_object(Bucket=s3.bucket, Key="pre/other/manifest/%020d" % 999, Body=b"x")
        saved = {k: os.environ.get(k) for k in s3.environ()}
        os.environ.update(s3.environ())
        # A tail shorter than the objects: footer, index and blocks each by an explicit range.
        tail0, bucket.ObjectIndex.TAIL = bucket.ObjectIndex.TAIL, 100
        try:
            url = s3.environ()["S3_OBJECTS_URL"].replace("s3://%s?" % s3.bucket, "s3://%s/pre/fix?" % s3.bucket)
            store = bucket.open_store(url)
            st = bucket.load(store)
            if canon(st.to_json()) != canon(state["state"]):
                return "through S3: %s" % bucket.json_diff(canon(state["state"]), canon(st.to_json()))
            rd = bucket.Reader(store, st)
            for tid, t in st.topics.items():
                for p in range(len(t.parts)):
                    name = "%s/%d" % (t.name, p)
                    got = [[b.base, b.count, b.max_ts, len(b.data), crc32c(b.data)]
                           for b in bucket.batches(store, st, tid, p, reader=rd)]
                    if got != state["batches"][name]:
                        return "through S3, %s: read %s" % (name, got[:3])
            lst = bucket.check_objects(store, st)
            if lst["missing"] or lst["wrong_size"] or lst["unnamed"]:
                return "through S3, listing: %r" % lst
            _, h = bucket.check_history(store)
            p = subprocess.run([sys.executable, os.path.join(TOP, "tests", "s3", "bucket.py"), "--verify", url],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            out = p.stdout.decode(errors="replace")
            if p.returncode != 0 or "verified:" not in out:
                return "bucket.py %s exited %d: %s" % (url, p.returncode, out[-500:])
        finally:
            bucket.ObjectIndex.TAIL = tail0
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return ("", "%d keys under a prefix, %d versions" % (nkeys, h["versions"]))


def case_cli():
    cli = os.path.join(TOP, "tests", "s3", "bucket.py")
    p = subprocess.run([sys.executable, cli, "--history", "--verify", BUCKET],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    out = p.stdout.decode(errors="replace")
    if p.returncode != 0:
        return "exit %d: %s" % (p.returncode, out[-1000:])
    for want in ("history: %d versions" % state["versions"], "topic alpha", "verified:"):
        if want not in out:
            return "no %r in: %s" % (want, out[-500:])
    d = cut_store(state["versions"], "cli-bad")
    path = os.path.join(d, "manifest", "%020d" % state["versions"])
    with open(path, "r+b") as f:
        f.seek(70)
        b = f.read(1)
        f.seek(70)
        f.write(bytes([b[0] ^ 1]))
    p = subprocess.run([sys.executable, cli, d], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out2 = p.stdout.decode(errors="replace")
    if p.returncode != 1 or "BAD" not in out2 or "CRC" not in out2:
        return "on a damaged version: exit %d: %s" % (p.returncode, out2[-300:])
    shutil.rmtree(d)
    return ("", out.strip().splitlines()[-1])


def main():
    os.makedirs(DATA, exist_ok=True)
    report.watchdog("bucket_reader", 280)
    if not report.case("bucket_reader engine writes a bucket", case_write):
        return report.status()
    report.case("bucket_reader newest state as the engine's", case_newest_state)
    report.case("bucket_reader every version as the engine's", case_every_version)
    report.case("bucket_reader history", case_history)
    report.case("bucket_reader batches of every partition", case_batches)
    report.case("bucket_reader FORMAT.md example", case_doc_example)
    report.case("bucket_reader refuses damaged versions", case_damage)
    report.case("bucket_reader hand-made versions", case_hand_made)
    report.case("bucket_reader refuses damaged data", case_damaged_data)
    report.case("bucket_reader ranges that lie about their objects", case_lying_ranges)
    report.case("bucket_reader through S3", case_s3)
    report.case("bucket_reader command line", case_cli)
    if report.status() == 0:
        shutil.rmtree(CASES, ignore_errors=True)
    return report.status()


if __name__ == "__main__":
    sys.exit(main())
