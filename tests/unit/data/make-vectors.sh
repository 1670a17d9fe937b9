#!/bin/sh
# tests/unit/data/make-vectors.sh - regenerate the compression test vectors
# of test_decompress.c and test_batch.c with independent, real compressors.  Not run
# by `make test`; the files it writes are kept in the tree.
#
#   sh tests/unit/data/make-vectors.sh
#
# Needs: /usr/bin/python3 with python3-snappy and python3-confluent-kafka,
# the gzip, lz4 and zstd command-line programs (`make deps` installs them all).
#
# Plain inputs (the expected outputs): text.txt (JSON lines), short.txt (a
# line: zlib gives it fixed Huffman codes), random.bin, repeat.bin (runs and
# a repeated phrase, > 64 KiB so lz4 needs several blocks), empty.bin.  For
# each, compressed by:
#   NAME.gz        python's gzip, level 9            NAME.1.gz  level 1
#   NAME.0.gz      level 0: stored blocks (not repeat)           NAME.cli.gz  gzip(1) with a file name
#   NAME.snappy    python-snappy, a raw block        NAME.xsnappy  xerial framing, 32 KiB blocks
#   NAME.lz4       lz4(1) defaults: 4 MiB blocks, content checksum
#   NAME.B4D.lz4   lz4(1) 64 KiB linked blocks, block checksums, content size
#   NAME.zst       zstd(1) from a file: content size in the header
#   NAME.stream.zst  zstd(1) from a pipe: no content size
# Special cases: text.hdr.gz (every optional gzip header field), text.2.gz,
# text.2.zst, text.2.lz4 (two members or frames; the lz4 one with a
# skippable frame between), and bombs: zeros-1m.{gz,lz4,zst},
# zeros-256k.snappy (snappy cannot pack 1 MiB of zeros into a few KB), and
# zeros-64m.zst, 64 MiB + 1 zeros without a content size, for the batch cap.
#
# Kafka record batches:
#   records.bin    the records section of a v2 batch: 20 records, timestamp
#                  deltas 10*i, keys on two of three, one header each;
#                  records.{gz,xsnappy,lz4,zst} compressed as the Java
#                  client frames them (xerial snappy, lz4 64 KiB independent
#                  blocks, zstd without content size)
#   rdkafka-CODEC.batch  whole batches as librdkafka (confluent-kafka)
#                  produced them: 50 records with timestamps 1700000000000 +
#                  10*i, captured by a minimal in-process broker
set -eu
cd "$(dirname "$0")"
PY=/usr/bin/python3

# ---- plain inputs, python compressions, Kafka records ----
$PY - <<'EOF'
import gzip, json, random, struct, zlib
import snappy

rnd = random.Random(20240601)
lines = []
for i in range(40):
    lines.append(json.dumps({"id": i, "user": "user-%d" % rnd.randrange(50),
                             "event": rnd.choice(["click", "view", "buy", "scroll"]),
                             "path": "/shop/item/%d" % rnd.randrange(500),
                             "ms": rnd.randrange(10000)}))
plain = {
    "text.txt": ("\n".join(lines) + "\n").encode(),
    "random.bin": bytes(rnd.randrange(256) for _ in range(2048)),
    "repeat.bin": b"\0" * 30000 + b"sluice says hello " * 2000 + b"ab" * 2000,
    "empty.bin": b"",
    "short.txt": b"hello hello hello, sluice\n",
}
for name, data in plain.items():
    open(name, "wb").write(data)

def gz(data, level):
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()

def raw_deflate(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()

def xerial(data, block=32768):
    out = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
    for i in range(0, len(data), block):
        b = snappy.compress(data[i:i + block])
        out += struct.pack(">i", len(b)) + b
    return out

for name, data in plain.items():
    stem = name.rsplit(".", 1)[0]
    open(stem + ".gz", "wb").write(gzip.compress(data, 9, mtime=0))
    open(stem + ".1.gz", "wb").write(gz(data, 1))
    if name != "repeat.bin":  # stored, it would be 70 KB
        open(stem + ".0.gz", "wb").write(gz(data, 0))
    open(stem + ".snappy", "wb").write(snappy.compress(data))
    open(stem + ".xsnappy", "wb").write(xerial(data))

text = plain["text.txt"]
# Every optional header field: FHCRC | FEXTRA | FNAME | FCOMMENT.
hdr = b"\x1f\x8b\x08\x1e" + struct.pack("<I", 0) + b"\x02\x03"
hdr += struct.pack("<H", 6) + b"AB\x02\x00xy" + b"text.txt\0" + b"a comment\0"
hdr += struct.pack("<H", zlib.crc32(hdr) & 0xffff)
open("text.hdr.gz", "wb").write(hdr + raw_deflate(text) +
                                struct.pack("<II", zlib.crc32(text), len(text)))
half = len(text) // 2
open("text.2.gz", "wb").write(gzip.compress(text[:half], mtime=0) + gzip.compress(text[half:], mtime=0))
open("text.1", "wb").write(text[:half])
open("text.2", "wb").write(text[half:])
open("zeros-256k.snappy", "wb").write(snappy.compress(b"\0" * 262144))
open("zeros-1m.gz", "wb").write(gzip.compress(b"\0" * 1048576, 9, mtime=0))
open("zeros-1m", "wb").write(b"\0" * 1048576)

# The records section of a v2 batch, as test_batch.c's make_batch builds it.
def varint(v):
    v = (v << 1) ^ (v >> 63)
    out = b""
    while True:
        b = v & 0x7f
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

recs = b""
for i in range(20):
    body = b"\0" + varint(10 * i) + varint(i)
    body += varint(-1) if i % 3 == 0 else varint(3) + b"key"
    value = json.dumps({"n": i, "msg": "record number %d of twenty" % i}).encode()
    body += varint(len(value)) + value
    body += varint(1) + varint(1) + b"h" + varint(-1)
    recs += varint(len(body)) + body
open("records.bin", "wb").write(recs)
open("records.gz", "wb").write(gzip.compress(recs, 6, mtime=0))
open("records.xsnappy", "wb").write(xerial(recs))
EOF

# ---- command-line compressors ----
for f in text.txt short.txt random.bin repeat.bin empty.bin; do
	stem=${f%.*}
	gzip -9 -c "$f" >"$stem.cli.gz"
	lz4 -q -f -c "$f" >"$stem.lz4"
	lz4 -q -f -c -B4 -BD -BX --content-size "$f" >"$stem.B4D.lz4"
	zstd -q -f -c "$f" >"$stem.zst"
	cat "$f" | zstd -q -c >"$stem.stream.zst"
done
zstd -q -c text.1 >text.2.zst
zstd -q -c text.2 >>text.2.zst
lz4 -q -c text.1 >text.2.lz4
printf '\121\052\115\030\003\000\000\000abc' >>text.2.lz4	# skippable frame, 3 bytes
lz4 -q -c text.2 >>text.2.lz4
lz4 -q -c zeros-1m >zeros-1m.lz4
zstd -q -c zeros-1m >zeros-1m.zst
cat records.bin | lz4 -q -c -B4 >records.lz4
cat records.bin | zstd -q -c >records.zst
head -c 67108865 /dev/zero | zstd -q -c >zeros-64m.zst
rm -f text.1 text.2 zeros-1m

# ---- librdkafka's batches, through a minimal broker ----
$PY - <<'EOF'
import socket, struct, threading
from confluent_kafka import Producer

# Just enough of the protocol for one producer: ApiVersions (v3 answer),
# Metadata v4 and Produce v7.  Produce requests are kept, answered with
# success; nothing is stored.
captured = {}
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(8)
port = srv.getsockname()[1]

def recvn(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b

def string(s):
    return struct.pack(">h", len(s)) + s

class Rd:
    def __init__(self, b):
        self.b, self.o = b, 0
    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.o)
        self.o += struct.calcsize(fmt)
        return v[0]
    def str(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.b[self.o:self.o + n]
        self.o += n
        return s
    def bytes(self):
        n = self.take(">i")
        s = self.b[self.o:self.o + n]
        self.o += n
        return s

def serve(c):
    try:
        while True:
            n = struct.unpack(">i", recvn(c, 4))[0]
            r = Rd(recvn(c, n))
            key, ver, corr = r.take(">h"), r.take(">h"), r.take(">i")
            r.str()  # client id
            if key == 18:  # ApiVersions: answered as v3 whatever was asked
                # Fetch and FindCoordinator are never called, but
                # librdkafka enables zstd and lz4 only if they are listed.
                apis = [(0, 0, 7), (1, 0, 11), (3, 0, 4), (10, 0, 0), (18, 0, 3)]
                body = struct.pack(">h", 0) + bytes([len(apis) + 1])
                for k, lo, hi in apis:
                    body += struct.pack(">hhh", k, lo, hi) + b"\0"
                body += struct.pack(">i", 0) + b"\0"
            elif key == 3:  # Metadata v4
                nt = r.take(">i")
                topics = [r.str() for _ in range(max(nt, 0))]
                body = struct.pack(">ii", 0, 1) + struct.pack(">i", 0) + string(b"127.0.0.1")
                body += struct.pack(">ih", port, -1) + struct.pack(">h", -1) + struct.pack(">i", 0)
                body += struct.pack(">i", len(topics))
                for t in topics:
                    body += struct.pack(">h", 0) + string(t) + b"\0" + struct.pack(">i", 1)
                    body += struct.pack(">hiiiiii", 0, 0, 0, 1, 0, 1, 0)
            elif key == 0:  # Produce v3..7
                r.str()
                r.take(">h"), r.take(">i")
                resp = b""
                nt = r.take(">i")
                for _ in range(nt):
                    t = r.str()
                    np = r.take(">i")
                    resp += string(t) + struct.pack(">i", np)
                    for _ in range(np):
                        idx = r.take(">i")
                        captured.setdefault(t, []).append(r.bytes())
                        resp += struct.pack(">ihq", idx, 0, 0) + struct.pack(">q", -1)
                        if ver >= 5:
                            resp += struct.pack(">q", 0)
                body = struct.pack(">i", nt) + resp + struct.pack(">i", 0)
            else:
                raise RuntimeError("unexpected api %d" % key)
            out = struct.pack(">i", corr) + body
            c.sendall(struct.pack(">i", len(out)) + out)
    except EOFError:
        pass
    finally:
        c.close()

def accept():
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()

threading.Thread(target=accept, daemon=True).start()

T0 = 1700000000000
for codec in ["gzip", "snappy", "lz4", "zstd"]:
    topic = "vectors-" + codec
    p = Producer({"bootstrap.servers": "127.0.0.1:%d" % port, "compression.type": codec,
                  "linger.ms": 500, "batch.num.messages": 1000, "enable.idempotence": False,
                  "acks": 1, "api.version.request": True})
    p.list_topics(topic, timeout=10)  # the leader is known before the first record
    for i in range(50):
        p.produce(topic, key=("k%d" % i).encode() if i % 2 else None,
                  value=('{"seq": %d, "payload": "the same words again and again %d"}' % (i, i % 5)).encode(),
                  partition=0, timestamp=T0 + 10 * i, headers=[("h", b"v")] if i % 7 == 0 else None)
    if p.flush(20) != 0:
        raise SystemExit("librdkafka did not deliver the %s records" % codec)
    sets = captured.get(topic.encode(), [])
    if len(sets) != 1:
        raise SystemExit("%s: expected one record set, got %d" % (codec, len(sets)))
    b = sets[0]
    attr = struct.unpack_from(">h", b, 21)[0]
    if attr & 7 != ["gzip", "snappy", "lz4", "zstd"].index(codec) + 1:
        raise SystemExit("%s: librdkafka sent codec %d" % (codec, attr & 7))
    if 12 + struct.unpack_from(">i", b, 8)[0] != len(b):
        raise SystemExit("%s: more than one batch in the record set" % codec)
    open("rdkafka-%s.batch" % codec, "wb").write(b)
EOF
# ---- seeds of tests/fuzz/fuzz_decompress: the codec byte, then a vector ----
seeds=../../fuzz/corpus/fuzz_decompress
mkdir -p "$seeds"
for f in *.gz *.snappy *.xsnappy *.lz4 *.zst rdkafka-*.batch; do
	case $f in
	zeros-64m.zst) continue ;;	# 64 MiB: far past the fuzzer's cap
	*.gz | rdkafka-gzip.*) c='\001' ;;
	*snappy | rdkafka-snappy.*) c='\002' ;;
	*.lz4 | rdkafka-lz4.*) c='\003' ;;
	*.zst | rdkafka-zstd.*) c='\004' ;;
	esac
	case $f in
	*.batch) { printf "$c"; tail -c +62 "$f"; } >"$seeds/${f%.batch}.payload" ;;
	*) { printf "$c"; cat "$f"; } >"$seeds/$f" ;;
	esac
done
echo "vectors written to $(pwd), fuzz seeds to $seeds"
