#!/usr/bin/python3
# harness: self
"""test_object_reader.py - data objects made by the C writer
(storage/object.c), read by the independent reader tests/s3/objreader.py,
which was written from docs/FORMAT.md alone.

It needs no broker ("harness: self").  The writer runs as the unit test's
sample mode, `test_object --write DIR`, which lays out objects under DIR as
in a bucket (DIR/data/NODE/EPOCH/SEQ-NONCE.obj) and lists what each holds in
DIR/expect.txt.  SLUICE_BIN only says which build to use: build/sluice ->
build/obj/tests/test_object, build/san/sluice -> build/san/tests/test_object
when it exists; OBJWRITER overrides.

Cases:
  - every object decodes, every checksum matches, and each holds exactly the
    streams and batches the writer was given (numbers, lengths and the CRC32C
    of every batch's bytes); keys agree with footers; listed in key order, a
    node's objects come in the order it wrote them;
  - both compressions occur (zstd blocks and raw ones);
  - the example in docs/FORMAT.md decodes to what the text says it holds;
  - the reader refuses damage: a flipped bit in a block, in the index, in the
    footer, and a truncated object;
  - the command line lists the bucket and exits 0.
"""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "s3"))

import report  # noqa: E402
import objreader  # noqa: E402

DATA = os.environ.get("SLUICE_DATA") or os.path.join(TOP, "build", "test-data", "test_object_reader")
BUCKET = os.path.join(DATA, "bucket")


def writer_path():
    if os.environ.get("OBJWRITER"):
        return os.environ["OBJWRITER"]
    sbin = os.environ.get("SLUICE_BIN") or os.path.join(TOP, "build", "sluice")
    d = os.path.dirname(os.path.abspath(sbin))
    for cand in (os.path.join(d, "tests", "test_object"), os.path.join(d, "obj", "tests", "test_object")):
        if os.path.exists(cand):
            return cand
    return os.path.join(TOP, "build", "obj", "tests", "test_object")


def load_expect():
    """expect.txt: object/stream/batch lines, as test_object.c writes them."""
    objs = []
    with open(os.path.join(BUCKET, "expect.txt")) as f:
        for line in f:
            w = line.split()
            if w[0] == "object":
                objs.append({"key": w[1], "meta": (int(w[2]), int(w[3]), int(w[4]), int(w[5], 16), int(w[6])),
                             "streams": []})
            elif w[0] == "stream":
                objs[-1]["streams"].append({"id": (bytes.fromhex(w[1]), int(w[2])), "batches": []})
            elif w[0] == "batch":
                objs[-1]["streams"][-1]["batches"].append(tuple(int(x, 16) if i == 4 else int(x)
                                                                for i, x in enumerate(w[1:])))
            else:
                raise ValueError("bad expect line %r" % line)
    return objs


def read_file(key):
    with open(os.path.join(BUCKET, *key.split("/")), "rb") as f:
        return f.read()


state = {}


def case_write():
    tool = writer_path()
    report.note("writer: %s" % tool)
    p = subprocess.run([tool, "--write", BUCKET], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    if p.returncode != 0:
        return "writer exited %d: %s" % (p.returncode, p.stdout.decode(errors="replace")[-500:])
    state["expect"] = load_expect()
    if len(state["expect"]) < 3:
        return "only %d objects written" % len(state["expect"])
    return None


def case_contents():
    comps = set()
    nbatches = 0
    for e in state["expect"]:
        key = e["key"]
        obj = objreader.read_object(read_file(key))
        objreader.check_key(key, obj.footer)
        f = obj.footer
        got_meta = (f.node, f.epoch, f.seq, f.nonce, f.created)
        if got_meta != e["meta"]:
            return "%s: footer %r, written %r" % (key, got_meta, e["meta"])
        if len(obj.streams) != len(e["streams"]):
            return "%s: %d streams, written %d" % (key, len(obj.streams), len(e["streams"]))
        for s, es in zip(obj.streams, e["streams"]):
            if (s.ns, s.index) != es["id"]:
                return "%s: stream %s/%d, written %s/%d" % (key, s.ns.hex(), s.index, es["id"][0].hex(),
                                                          es["id"][1])
            got = [(b.base, b.count, b.max_ts, len(b.data), objreader.crc32c(b.data)) for b in s.batches()]
            if got != es["batches"]:
                return "%s: stream %s/%d: batches differ:\n got %r\n want %r" % (
                    key, s.ns.hex(), s.index, got[:5], es["batches"][:5])
            nbatches += len(got)
            comps.update(blk.comp for blk in s.blocks)
    if comps != {0, 1}:
        return "compressions seen: %r (want both none and zstd)" % sorted(comps)
    return ("", "%d objects, %d batches" % (len(state["expect"]), nbatches))


def case_listing_order():
    keys = []
    for d, _, names in os.walk(os.path.join(BUCKET, "data")):
        for n in names:
            keys.append(os.path.relpath(os.path.join(d, n), BUCKET).replace(os.sep, "/"))
    keys.sort()
    want = sorted((e["key"] for e in state["expect"]),
                  key=lambda k: objreader.parse_key(k)[:3])
    if keys != want:
        return "listing order %r, write order %r" % (keys, want)
    return None


def doc_example():
    """The hex dump and the claims of docs/FORMAT.md's Data objects example."""
    with open(os.path.join(TOP, "docs", "FORMAT.md")) as f:
        text = f.read()
    sec = text[text.index("# Data objects"):]
    ex = sec[sec.index("## Example"):]
    dump = ex[ex.index("```") + 3:]
    dump = dump[:dump.index("```")]
    key = re.search(r"`(data/[0-9/]+-[0-9a-f]+\.obj)`", ex).group(1)
    data = bytearray()
    for line in dump.splitlines():
        if not line or line.startswith("offset"):
            continue
        hexpart = line.split("  ")[0]
        data += bytes(int(x, 16) for x in hexpart.split())
    size = int(re.search(r"it is (\d+) bytes", ex).group(1))
    return key, bytes(data), size


def case_doc_example():
    key, data, size = doc_example()
    if len(data) != size:
        return "the dump has %d bytes, the text says %d" % (len(data), size)
    obj = objreader.read_object(data)
    objreader.check_key(key, obj.footer)
    f = obj.footer
    if (f.node, f.epoch, f.seq, f.nonce, f.created) != (7, 3, 42, 0x0123456789abcdef, 1700000000000):
        return "footer %r" % (f,)
    if len(obj.streams) != 1:
        return "%d streams" % len(obj.streams)
    s = obj.streams[0]
    if s.ns != bytes(range(0x10, 0x20)) or s.index != 2:
        return "stream %s/%d" % (s.ns.hex(), s.index)
    got = [(b.base, b.count, b.max_ts, b.data) for b in s.batches()]
    want = [(100, 2, 1700000000005, b"hello"), (102, 1, 1700000000009, b"world!")]
    if got != want:
        return "batches %r" % got
    return None


def refused(data, what):
    try:
        objreader.read_object(data)
    except objreader.ObjectError as e:
        return None, str(e)
    return "%s was accepted" % what, None


def case_damage():
    e = max(state["expect"], key=lambda x: len(x["streams"]))
    data = read_file(e["key"])
    obj = objreader.read_object(data)
    blk = obj.streams[0].blocks[0]
    f = obj.footer
    tries = [
        ("a bit flipped in a block", blk.pos + blk.stored // 2),
        ("a bit flipped in the index", f.index_off + f.index_len // 2),
        ("a bit flipped in the footer", len(data) - 30),
        ("a bit flipped in the header", 3),
    ]
    msgs = []
    for what, at in tries:
        d = bytearray(data)
        d[at] ^= 0x10
        why, msg = refused(bytes(d), what)
        if why:
            return why
        msgs.append(msg)
    for n in (0, 10, len(data) // 2, len(data) - 1):
        why, msg = refused(data[:n], "a truncation to %d bytes" % n)
        if why:
            return why
    if "CRC" not in msgs[0] or "CRC" not in msgs[1] or "CRC" not in msgs[2]:
        return "unexpected reasons: %r" % msgs
    return None


def case_cli():
    p = subprocess.run([sys.executable, os.path.join(TOP, "tests", "s3", "objreader.py"), "--batches", BUCKET],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    out = p.stdout.decode(errors="replace")
    if p.returncode != 0:
        return "exit %d: %s" % (p.returncode, out[-1000:])
    n = len(state["expect"])
    if "%d objects, 0 bad" % n not in out:
        return "summary missing: %s" % out[-300:]
    return ("", out.strip().splitlines()[-1])


def main():
    os.makedirs(DATA, exist_ok=True)
    if not report.case("object_reader write samples", case_write):
        return report.status()
    report.case("object_reader contents", case_contents)
    report.case("object_reader listing order", case_listing_order)
    report.case("object_reader FORMAT.md example", case_doc_example)
    report.case("object_reader refuses damage", case_damage)
    report.case("object_reader command line", case_cli)
    return report.status()


if __name__ == "__main__":
    sys.exit(main())
