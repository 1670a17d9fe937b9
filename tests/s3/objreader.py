#!/usr/bin/python3
"""objreader.py - an independent reader of Sluice data objects, written from
docs/FORMAT.md ("Data objects") alone, to check that the format is documented
well enough for another program to read a bucket, and that what the C writer
(storage/object.c) makes matches the document.

Standard library only.  zstd blocks are decoded with the `zstandard` module
when it is importable (Debian's python3-zstandard), else with the `zstd`
command line tool.

    objreader.py [--batches] PATH...

PATH is an object file, or a directory holding a bucket's objects (every
file under it whose name ends in .obj; when the path below the directory is
an object key, data/NODE/EPOCH/SEQ-NONCE.obj, the key must agree with the
footer).  Prints each object's footer and streams (and, with --batches, every
batch), checks every checksum and every rule of "Reading an object", and
exits 1 if any object fails, naming the failure.

As a module: read_object(data) returns an Obj; parse_key(key) a Key.
"""

import os
import re
import shutil
import struct
import subprocess
import sys
from collections import namedtuple

HEADER = b"SLUICOBJ"
FOOTER_LEN = 64
FOOTER_MAGIC = 0x534C4F46
INDEX_MAX = 64 << 20
BLOCK_MAX = 128 << 20
STREAM_ENTRY = 52
BLOCK_ENTRY = 52
BATCH_HDR = 24
INT64_MAX = (1 << 63) - 1

KEY_RE = re.compile(r"^data/([0-9]{10})/([0-9]{20})/([0-9]{20})-([0-9a-f]{16})\.obj\Z")

Key = namedtuple("Key", "node epoch seq nonce")
Footer = namedtuple("Footer", "index_off index_len index_crc node version flags epoch seq nonce created")
Batch = namedtuple("Batch", "base count max_ts data")


class ObjectError(Exception):
    """The object breaks a rule of docs/FORMAT.md."""


class Block:
    def __init__(self, first, last, max_ts, pos, stored, raw, batch_count, crc, comp):
        self.first, self.last, self.max_ts = first, last, max_ts
        self.pos, self.stored, self.raw = pos, stored, raw
        self.batch_count, self.crc, self.comp = batch_count, crc, comp
        self.batches = []


class Stream:
    def __init__(self, ns, index, block_count, first, last, max_ts, batch_count):
        self.ns, self.index, self.block_count = ns, index, block_count
        self.first, self.last, self.max_ts, self.batch_count = first, last, max_ts, batch_count
        self.blocks = []

    def batches(self):
        return [b for blk in self.blocks for b in blk.batches]


class Obj:
    def __init__(self, footer, streams):
        self.footer = footer
        self.streams = streams


# ---- CRC32C (Castagnoli, reflected polynomial 0x82F63B78) ----

def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_TABLE = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    t = _TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

# The same function in C when Debian's python3-crcmod is there (some 100
# times faster: reading a bucket of gigabytes then takes seconds, not
# minutes); checked against the one above before it is trusted.
try:
    import crcmod.predefined as _crcmod
    _fast = _crcmod.mkPredefinedCrcFun("crc-32c")
    if _fast(b"123456789") == 0xE3069283 and _fast(bytes(range(256)) * 3) == crc32c(bytes(range(256)) * 3):
        crc32c = _fast  # noqa: F811
except ImportError:
    pass


# ---- zstd ----

try:
    import zstandard as _zstandard
except ImportError:
    _zstandard = None


def _one_zstd_frame(data):
    """True when data is exactly one zstd frame (RFC 8878, 3.1.1): walks
    the frame header and the blocks, then the optional checksum."""
    if len(data) < 6 or struct.unpack_from("<I", data, 0)[0] != 0xFD2FB528:
        return False
    fhd = data[4]
    fcs_flag, single, checksum, did_flag = fhd >> 6, (fhd >> 5) & 1, (fhd >> 2) & 1, fhd & 3
    if fhd & 0x08:  # reserved bit
        return False
    pos = 5 + (0 if single else 1) + (0, 1, 2, 4)[did_flag]
    pos += (1 if single else 0, 2, 4, 8)[fcs_flag]
    while True:
        if pos + 3 > len(data):
            return False
        h = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
        last, btype, size = h & 1, (h >> 1) & 3, h >> 3
        pos += 3
        if btype == 3:
            return False
        pos += 1 if btype == 1 else size
        if last:
            break
    pos += 4 if checksum else 0
    return pos == len(data)


def _frame_content_size(data):
    """The content size stated in a zstd frame header, or None."""
    fhd = data[4]
    fcs_flag, single, did_flag = fhd >> 6, (fhd >> 5) & 1, fhd & 3
    pos = 5 + (0 if single else 1) + (0, 1, 2, 4)[did_flag]
    if fcs_flag == 0:
        return data[pos] if single else None
    if fcs_flag == 1:
        return struct.unpack_from("<H", data, pos)[0] + 256
    if fcs_flag == 2:
        return struct.unpack_from("<I", data, pos)[0]
    return struct.unpack_from("<Q", data, pos)[0]


def unzstd(data, raw_len):
    if not _one_zstd_frame(data):
        raise ObjectError("zstd block is not exactly one frame")
    stated = _frame_content_size(data)
    if stated is not None and stated != raw_len:
        raise ObjectError("zstd frame states %d bytes, the index %d" % (stated, raw_len))
    if _zstandard is not None:
        try:
            out = _zstandard.ZstdDecompressor().decompress(data, max_output_size=raw_len)
        except _zstandard.ZstdError as e:
            raise ObjectError("zstd: %s" % e)
    else:
        if not shutil.which("zstd"):
            raise ObjectError("no zstd decoder: install python3-zstandard or zstd")
        p = subprocess.run(["zstd", "-d", "-q", "-c"], input=data, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise ObjectError("zstd: %s" % p.stderr.decode(errors="replace").strip())
        out = p.stdout
    if len(out) != raw_len:
        raise ObjectError("zstd block decodes to %d bytes, the index says %d" % (len(out), raw_len))
    return out


# ---- names ----

def parse_key(key):
    m = KEY_RE.match(key)
    if not m:
        raise ObjectError("not an object key: %r" % key)
    node, epoch, seq = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if node > 0x7FFFFFFF or epoch >= 1 << 64 or seq >= 1 << 64:
        raise ObjectError("key out of range: %r" % key)
    return Key(node, epoch, seq, int(m.group(4), 16))


# ---- the object ----

def check(cond, what):
    if not cond:
        raise ObjectError(what)


def read_footer(data):
    """Footer rules (Reading an object, 1)."""
    size = len(data)
    check(size >= FOOTER_LEN, "shorter than a footer (%d bytes)" % size)
    ft = data[size - FOOTER_LEN:]
    (index_off, index_len, index_crc, node, version, flags, epoch, seq, nonce, created,
     fcrc, magic) = struct.unpack(">QIIiHHQQQqII", ft)
    check(magic == FOOTER_MAGIC, "bad footer magic %#x" % magic)
    check(fcrc == crc32c(ft[:56]), "footer CRC mismatch")
    check(version == 1, "unsupported version %d" % version)
    check(flags == 0, "unsupported flags %#x" % flags)
    check(node >= 0, "negative node id")
    check(8 <= index_len <= INDEX_MAX, "index length %d out of range" % index_len)
    check(index_off >= 8, "index offset %d below 8" % index_off)
    check(index_off + index_len + FOOTER_LEN == size, "index does not end at the footer")
    return Footer(index_off, index_len, index_crc, node, version, flags, epoch, seq, nonce, created)


def read_index(data, f):
    """Index rules (Reading an object, 3)."""
    ix = data[f.index_off:f.index_off + f.index_len]
    check(crc32c(ix) == f.index_crc, "index CRC mismatch")
    nstreams, nblocks = struct.unpack_from(">II", ix, 0)
    check(len(ix) == 8 + STREAM_ENTRY * (nstreams + nblocks), "index length does not match its counts")
    streams = []
    pos = 8
    total_blocks = 0
    for i in range(nstreams):
        ns = ix[pos:pos + 16]
        index, block_count, first, last, max_ts, batch_count = struct.unpack_from(">iIqqqI", ix, pos + 16)
        pos += STREAM_ENTRY
        s = Stream(ns, index, block_count, first, last, max_ts, batch_count)
        check(index >= 0, "stream %d: negative index" % i)
        check(block_count >= 1, "stream %d: no blocks" % i)
        check(batch_count >= block_count, "stream %d: fewer batches than blocks" % i)
        check(0 <= first <= last < INT64_MAX, "stream %d: bad offsets %d..%d" % (i, first, last))
        if streams:
            check((streams[-1].ns, streams[-1].index) < (ns, index), "stream %d: ids not ascending" % i)
        total_blocks += block_count
        streams.append(s)
    check(total_blocks == nblocks, "block counts sum to %d, the index has %d" % (total_blocks, nblocks))
    blocks = []
    expect_pos = 8
    for i in range(nblocks):
        first, last, max_ts, bpos, stored, raw, batch_count, crc, comp = struct.unpack_from(
            ">qqqQIIIIB", ix, pos)
        reserved = ix[pos + 49:pos + 52]
        pos += BLOCK_ENTRY
        check(reserved == b"\0\0\0", "block %d: reserved bytes not zero" % i)
        check(comp in (0, 1), "block %d: unknown compression %d" % (i, comp))
        check(comp == 1 or stored == raw, "block %d: raw block with stored != raw" % i)
        check(1 <= stored <= BLOCK_MAX, "block %d: stored length %d" % (i, stored))
        check(raw <= BLOCK_MAX, "block %d: raw length %d" % (i, raw))
        check(batch_count >= 1, "block %d: no batches" % i)
        check(raw >= BATCH_HDR * batch_count, "block %d: raw length below its batch headers" % i)
        check(0 <= first <= last, "block %d: bad offsets" % i)
        check(last - first + 1 >= batch_count, "block %d: more batches than offsets" % i)
        check(bpos == expect_pos, "block %d: at %d, expected %d" % (i, bpos, expect_pos))
        expect_pos += stored
        blocks.append(Block(first, last, max_ts, bpos, stored, raw, batch_count, crc, comp))
    check(expect_pos == f.index_off, "blocks end at %d, the index starts at %d" % (expect_pos, f.index_off))
    k = 0
    for i, s in enumerate(streams):
        s.blocks = blocks[k:k + s.block_count]
        k += s.block_count
        check(s.blocks[0].first == s.first, "stream %d: first offset differs from its first block's" % i)
        check(s.blocks[-1].last == s.last, "stream %d: last offset differs from its last block's" % i)
        for a, b in zip(s.blocks, s.blocks[1:]):
            check(b.first > a.last, "stream %d: blocks overlap" % i)
        check(max(b.max_ts for b in s.blocks) == s.max_ts, "stream %d: max timestamp" % i)
        check(sum(b.batch_count for b in s.blocks) == s.batch_count, "stream %d: batch count" % i)
    return streams


def read_block(data, blk):
    """Block rules (Reading an object, 4): fills blk.batches."""
    stored = data[blk.pos:blk.pos + blk.stored]
    check(len(stored) == blk.stored, "block at %d runs past the data" % blk.pos)
    check(crc32c(stored) == blk.crc, "block at %d: CRC mismatch" % blk.pos)
    raw = unzstd(stored, blk.raw) if blk.comp == 1 else stored
    check(len(raw) == blk.raw, "block at %d: raw length" % blk.pos)
    pos, prev_last, mx, batches = 0, None, None, []
    while pos < len(raw):
        check(pos + BATCH_HDR <= len(raw), "block at %d: truncated batch header" % blk.pos)
        base, count, max_ts, n = struct.unpack_from(">qIqI", raw, pos)
        pos += BATCH_HDR
        check(pos + n <= len(raw), "block at %d: batch runs past the block" % blk.pos)
        check(count >= 1 and base >= 0, "block at %d: bad batch numbers" % blk.pos)
        if prev_last is None:
            check(base == blk.first, "block at %d: first base differs from the index" % blk.pos)
        else:
            check(base > prev_last, "block at %d: batches out of order" % blk.pos)
        prev_last = base + count - 1
        mx = max_ts if mx is None else max(mx, max_ts)
        batches.append(Batch(base, count, max_ts, raw[pos:pos + n]))
        pos += n
    check(len(batches) == blk.batch_count, "block at %d: %d batches, the index says %d"
          % (blk.pos, len(batches), blk.batch_count))
    check(prev_last == blk.last, "block at %d: last offset differs from the index" % blk.pos)
    check(mx == blk.max_ts, "block at %d: max timestamp differs from the index" % blk.pos)
    blk.batches = batches


def read_object(data):
    """Check and decode a whole object; raises ObjectError."""
    f = read_footer(data)
    check(data[:8] == HEADER, "bad header")
    streams = read_index(data, f)
    for s in streams:
        for blk in s.blocks:
            read_block(data, blk)
    return Obj(f, streams)


def key_of(path, top):
    """The object key a file stands for when top is a bucket directory, else None."""
    if top is None:
        return None
    rel = os.path.relpath(path, top).replace(os.sep, "/")
    return rel if rel.startswith("data/") else None


def check_key(key, f):
    k = parse_key(key)
    check((k.node, k.epoch, k.seq, k.nonce) == (f.node, f.epoch, f.seq, f.nonce),
          "key %s does not match the footer" % key)


def describe(obj, name, batches, out):
    f = obj.footer
    out.write("object %s node %d epoch %d seq %d nonce %016x created %d streams %d blocks %d\n"
              % (name, f.node, f.epoch, f.seq, f.nonce, f.created, len(obj.streams),
                 sum(len(s.blocks) for s in obj.streams)))
    for s in obj.streams:
        out.write("  stream %s %d offsets %d..%d batches %d blocks %d max_ts %d\n"
                  % (s.ns.hex(), s.index, s.first, s.last, s.batch_count, len(s.blocks), s.max_ts))
        if batches:
            for blk in s.blocks:
                out.write("    block at %d stored %d raw %d %s\n"
                          % (blk.pos, blk.stored, blk.raw, "zstd" if blk.comp else "none"))
                for b in blk.batches:
                    out.write("      batch %d count %d max_ts %d bytes %d crc %08x\n"
                              % (b.base, b.count, b.max_ts, len(b.data), crc32c(b.data)))


def main(argv):
    batches = False
    paths = []
    for a in argv[1:]:
        if a == "--batches":
            batches = True
        else:
            paths.append(a)
    if not paths:
        sys.stderr.write(__doc__)
        return 2
    files = []
    for p in paths:
        if os.path.isdir(p):
            for d, _, names in sorted(os.walk(p)):
                files.extend((os.path.join(d, n), p) for n in sorted(names) if n.endswith(".obj"))
        else:
            files.append((p, None))
    bad = 0
    for path, top in files:
        key = key_of(path, top)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            obj = read_object(data)
            if key is not None:
                check_key(key, obj.footer)
            describe(obj, key or path, batches, sys.stdout)
        except (ObjectError, struct.error) as e:
            bad += 1
            print("BAD %s: %s" % (key or path, e))
    print("%d objects, %d bad" % (len(files), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
