# broker-args: --set message.max.bytes=2000
"""tests/integration/test_fetch.py - Fetch, ListOffsets and Produce checked
byte by byte against the broker at $BOOTSTRAP; run by with-broker.sh with
/usr/bin/python3.

Requests are encoded here by hand with struct and responses decoded here, in
the field order of Kafka's message schemas (clients/src/main/resources/
common/message/*.json): Fetch v4 and v11 (classic encodings) and v12
(flexible: compact strings, arrays and bytes, tagged fields, KIP-482),
ListOffsets v1 and v7 (v7 is flexible), Metadata v1 and Produce v3.  Test
data comes from confluent-kafka (librdkafka), uncompressed, except in the
Produce cases, whose record batches (magic 2, CRC-32C) are built here.

The broker runs with message.max.bytes=2000 (the broker-args line above) so
that a hand-built 5000-byte batch is refused; the topics written by
librdkafka are created with max.message.bytes=1000000 to be unaffected.

Cases:
  fetch_long_poll_timeout      Fetch at the high watermark, max_wait 1500 ms,
                               min_bytes 1, nothing produced: answered after
                               1.3-3 s, no records
  fetch_long_poll_wakeup       the same fetch, a record produced ~300 ms
                               after it was sent: answered well before
                               max_wait (< 1 s) with that record
  fetch_min_bytes_waits        min_bytes above what exists, max_wait 1000:
                               answered after the full wait, with the data
  fetch_min_bytes_met          min_bytes already available: answered at once
  fetch_first_batch_whole      one ~100 KiB batch, partition_max_bytes and
                               max_bytes 1000: the whole batch comes back
  fetch_budget_second_partition  a second partition after the first in the
                               same request gets no data once the first used
                               the max_bytes budget (and does get its data
                               when fetched alone)
  fetch_inside_batch           fetch at offset 5 of a 10-record batch: the
                               batch with base offset 0 holding 0..9 is
                               returned whole
  fetch_offset_out_of_range    offset past the high watermark and a negative
                               offset: OFFSET_OUT_OF_RANGE (1), with
                               high_watermark and log_start_offset filled
  fetch_unknown_topic, fetch_unknown_partition,
  list_offsets_unknown_topic, list_offsets_unknown_partition
                               UNKNOWN_TOPIC_OR_PARTITION (3)
  list_offsets_v1_earliest, _latest, _after_last, _by_time
                               -2 -> 0, -1 -> high watermark, a time after
                               the last record -> -1, a time inside -> the
                               first record at or after it
  list_offsets_v7_max_timestamp  -3 -> the record with the largest timestamp
                               (non-monotonic explicit timestamps)
  fetch_versions_identical     Fetch v4, v11 and v12 return the same record
                               bytes and high watermark
  fetch_session_id_not_found   session_id != 0: top-level error 70
  fetch_session_id_zero        a normal v11 / v12 fetch: session_id 0
  produce_v3_valid_batch       a hand-built batch is accepted and fetched
                               back byte for byte (checks the CRC-32C here)
  produce_corrupt_crc          wrong CRC: CORRUPT_MESSAGE (2), nothing appended
  produce_invalid_acks         acks=2: INVALID_REQUIRED_ACKS (21), nothing
                               appended
  produce_message_too_large    a 5000-byte batch over message.max.bytes=2000:
                               MESSAGE_TOO_LARGE (10), nothing appended

Prints "ok NAME" or "FAIL NAME: reason" per case; exits 1 on any failure.
Every wait is bounded, and a watchdog ends the run after WATCHDOG_S.

confluent-kafka 1.7.0 (Debian's) drops a reference to None each time a
Message with a null key or value is freed; enough of them and CPython
aborts.  So every Message is kept alive in KEEP, and the program ends with
os._exit() instead of running the interpreter's teardown.
"""

import os
import socket
import struct
import sys
import threading
import time
import traceback

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
import report
from report import case, fail, note

BOOTSTRAP = os.environ.get("BOOTSTRAP", "")
WATCHDOG_S = 55
IO_TIMEOUT_S = 10
RUN_ID = "%d-%d" % (os.getpid(), int(time.time()))
KEEP = []  # every Message object, never freed (see above)

FETCH, LIST_OFFSETS, METADATA, PRODUCE = 1, 2, 3, 0
NONE, OFFSET_OUT_OF_RANGE, CORRUPT_MESSAGE, UNKNOWN_TOPIC_OR_PARTITION = 0, 1, 2, 3
MESSAGE_TOO_LARGE, INVALID_REQUIRED_ACKS, FETCH_SESSION_ID_NOT_FOUND = 10, 21, 70


# ---------------------------------------------------------------- CRC-32C

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), reflected, table-driven."""
    c = 0xFFFFFFFF
    t = CRC32C_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


# ---------------------------------------------------------------- encoding

def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(n):
    """Zig-zag signed varint (varlong too: Python ints are unbounded)."""
    return uvarint((n << 1) ^ (n >> 63))


def string(s):
    b = s.encode()
    return i16(len(b)) + b


def cstring(s):
    b = s.encode()
    return uvarint(len(b) + 1) + b


def array(items):
    return i32(len(items)) + b"".join(items)


def carray(items):
    return uvarint(len(items) + 1) + b"".join(items)


NO_TAGS = b"\x00"


class Reader:
    """Bounds-checked big-endian reader for one response body."""

    def __init__(self, data):
        self.d = data
        self.o = 0

    def take(self, n):
        if n < 0 or self.o + n > len(self.d):
            raise ValueError("response truncated: want %d bytes at %d of %d"
                             % (n, self.o, len(self.d)))
        b = self.d[self.o:self.o + n]
        self.o += n
        return b

    def un(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def i8(self):
        return self.un(">b")

    def i16(self):
        return self.un(">h")

    def i32(self):
        return self.un(">i")

    def i64(self):
        return self.un(">q")

    def uvarint(self):
        n = shift = 0
        for _ in range(10):
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7
        raise ValueError("varint longer than 10 bytes at %d" % self.o)

    def varint(self):
        n = self.uvarint()
        return (n >> 1) ^ -(n & 1)

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def cstring(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode()

    def nbytes(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def cbytes(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1)

    def alen(self):
        return self.i32()

    def calen(self):
        return self.uvarint() - 1

    def tags(self):
        """Skip a tagged-field section; returns {tag: raw bytes}."""
        out = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            out[tag] = self.take(self.uvarint())
        return out

    def end(self):
        if self.o != len(self.d):
            raise ValueError("%d bytes left over after the response"
                             % (len(self.d) - self.o))


# ---------------------------------------------------------------- connection

class Conn:
    def __init__(self):
        host, port = BOOTSTRAP.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=IO_TIMEOUT_S)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.corr = 100

    def close(self):
        self.s.close()

    def send(self, key, ver, body, flexible=False):
        self.corr += 1
        h = i16(key) + i16(ver) + i32(self.corr) + string("test_fetch")
        if flexible:
            h += NO_TAGS
        msg = h + body
        self.s.sendall(i32(len(msg)) + msg)
        return self.corr

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return buf

    def recv(self, corr, flexible=False, timeout=IO_TIMEOUT_S):
        self.s.settimeout(timeout)
        (size,) = struct.unpack(">i", self._exact(4))
        if size < 4 or size > 64 << 20:
            raise ValueError("response size %d" % size)
        r = Reader(self._exact(size))
        got = r.i32()
        if got != corr:
            raise ValueError("correlation id %d, want %d" % (got, corr))
        if flexible:
            r.tags()
        return r

    def call(self, key, ver, body, flexible=False, timeout=IO_TIMEOUT_S):
        return self.recv(self.send(key, ver, body, flexible), flexible, timeout)


# ---------------------------------------------------------------- Fetch

def fetch_body(ver, topics, max_wait=0, min_bytes=1, max_bytes=50 << 20,
               session_id=0, session_epoch=-1):
    """topics: [(name, [(partition, fetch_offset, partition_max_bytes)])]."""
    flex = ver >= 12
    b = i32(-1) + i32(max_wait) + i32(min_bytes) + i32(max_bytes) + i8(0)
    if ver >= 7:
        b += i32(session_id) + i32(session_epoch)
    ts = []
    for name, parts in topics:
        ps = []
        for part, off, pmax in parts:
            p = i32(part)
            if ver >= 9:
                p += i32(-1)                      # current_leader_epoch
            p += i64(off)
            if ver >= 12:
                p += i32(-1)                      # last_fetched_epoch
            if ver >= 5:
                p += i64(-1)                      # log_start_offset
            p += i32(pmax)
            if flex:
                p += NO_TAGS
            ps.append(p)
        if flex:
            ts.append(cstring(name) + carray(ps) + NO_TAGS)
        else:
            ts.append(string(name) + array(ps))
    if flex:
        b += carray(ts) + carray([]) + cstring("") + NO_TAGS
    else:
        b += array(ts)
        if ver >= 7:
            b += array([])                        # forgotten_topics_data
        if ver >= 11:
            b += string("")                       # rack_id
    return b


def parse_fetch(r, ver):
    """A Fetch response body as a dict; partitions keyed (topic, index)."""
    flex = ver >= 12
    out = {"error": 0, "session_id": None, "parts": {}}
    if ver >= 1:
        out["throttle"] = r.i32()
    if ver >= 7:
        out["error"] = r.i16()
        out["session_id"] = r.i32()
    for _ in range(r.calen() if flex else r.alen()):
        topic = r.cstring() if flex else r.string()
        for _ in range(r.calen() if flex else r.alen()):
            p = {"index": r.i32(), "error": r.i16(), "hw": r.i64()}
            if ver >= 4:
                p["lso"] = r.i64()
            if ver >= 5:
                p["log_start"] = r.i64()
            if ver >= 4:
                n = r.calen() if flex else r.alen()
                p["aborted"] = None if n < 0 else []
                for _ in range(max(n, 0)):
                    p["aborted"].append((r.i64(), r.i64()))
                    if flex:
                        r.tags()
            if ver >= 11:
                p["preferred"] = r.i32()
            p["records"] = r.cbytes() if flex else r.nbytes()
            if flex:
                p["tags"] = r.tags()
            out["parts"][(topic, p["index"])] = p
        if flex:
            r.tags()
    if flex:
        r.tags()
    r.end()
    return out


def fetch(conn, ver, topics, **kw):
    body = fetch_body(ver, topics, **kw)
    return parse_fetch(conn.call(FETCH, ver, body, ver >= 12, timeout=IO_TIMEOUT_S), ver)


def fetch_one(conn, ver, topic, part, offset, pmax=1 << 20, **kw):
    """Fetch one partition; returns (response, partition dict)."""
    resp = fetch(conn, ver, [(topic, [(part, offset, pmax)])], **kw)
    p = resp["parts"].get((topic, part))
    if p is None:
        raise ValueError("no partition %s-%d in the response: %r"
                         % (topic, part, sorted(resp["parts"])))
    return resp, p


def parse_batches(data):
    """Record batches in a records field; a truncated last batch is marked."""
    out = []
    o = 0
    data = data or b""
    while o + 12 <= len(data):
        base, blen = struct.unpack(">qi", data[o:o + 12])
        raw = data[o:o + 12 + blen]
        b = {"base": base, "length": blen, "size": 12 + blen, "raw": raw,
             "complete": len(raw) == 12 + blen and blen >= 49}
        if b["complete"]:
            (b["epoch"], b["magic"], b["crc"], b["attributes"], b["last_delta"],
             b["base_ts"], b["max_ts"], b["producer_id"], b["producer_epoch"],
             b["base_seq"], b["count"]) = struct.unpack(">ibIhiqqqhii", raw[12:61])
            b["crc_ok"] = crc32c(raw[21:]) == b["crc"]
            b["records"] = (parse_records(raw[61:], b["count"])
                            if b["attributes"] & 7 == 0 else None)
        out.append(b)
        o += 12 + blen
    return out


def parse_records(data, count):
    """Uncompressed records: [(offset_delta, ts_delta, key, value)]."""
    r = Reader(data)
    recs = []
    for _ in range(count):
        body = Reader(r.take(r.varint()))
        body.i8()
        ts_delta = body.varint()
        off_delta = body.varint()
        k = body.varint()
        key = None if k < 0 else body.take(k)
        v = body.varint()
        value = None if v < 0 else body.take(v)
        for _ in range(body.varint()):
            body.take(body.varint())
            hv = body.varint()
            if hv > 0:
                body.take(hv)
        body.end()
        recs.append((off_delta, ts_delta, key, value))
    r.end()
    return recs


def batch_summary(batches):
    return ", ".join("[base %d, %d bytes, last delta %s%s]"
                     % (b["base"], b["size"], b.get("last_delta"),
                        "" if b["complete"] else ", truncated") for b in batches) or "none"


# ---------------------------------------------------------------- ListOffsets

def list_offsets(conn, ver, topic, queries):
    """queries: [(partition, timestamp)]; returns [partition dict] in order."""
    flex = ver >= 6
    ps = []
    for part, ts in queries:
        p = i32(part)
        if ver >= 4:
            p += i32(-1)
        p += i64(ts)
        if ver == 0:
            p += i32(1)
        if flex:
            p += NO_TAGS
        ps.append(p)
    b = i32(-1)
    if ver >= 2:
        b += i8(0)
    if flex:
        b += carray([cstring(topic) + carray(ps) + NO_TAGS]) + NO_TAGS
    else:
        b += array([string(topic) + array(ps)])
    r = conn.call(LIST_OFFSETS, ver, b, flex)
    if ver >= 2:
        r.i32()
    out = []
    for _ in range(r.calen() if flex else r.alen()):
        r.cstring() if flex else r.string()
        for _ in range(r.calen() if flex else r.alen()):
            p = {"index": r.i32(), "error": r.i16()}
            if ver >= 1:
                p["timestamp"] = r.i64()
                p["offset"] = r.i64()
            if ver >= 4:
                p["leader_epoch"] = r.i32()
            if flex:
                r.tags()
            out.append(p)
        if flex:
            r.tags()
    if flex:
        r.tags()
    r.end()
    if len(out) != len(queries):
        raise ValueError("%d partitions answered, %d asked" % (len(out), len(queries)))
    return out


def high_watermark(conn, topic, part=0):
    p = list_offsets(conn, 1, topic, [(part, -1)])[0]
    if p["error"] != 0:
        raise ValueError("ListOffsets latest on %s-%d: error %d" % (topic, part, p["error"]))
    return p["offset"]


# ---------------------------------------------------------------- Metadata v1

def metadata_v1(conn, topics):
    r = conn.call(METADATA, 1, array([string(t) for t in topics]))
    for _ in range(r.alen()):
        r.i32(), r.string(), r.i32(), r.string()
    r.i32()
    out = {}
    for _ in range(r.alen()):
        err, name = r.i16(), r.string()
        r.i8()  # is_internal
        parts = []
        for _ in range(r.alen()):
            perr, idx, leader = r.i16(), r.i32(), r.i32()
            for _ in range(r.alen()):
                r.i32()
            for _ in range(r.alen()):
                r.i32()
            parts.append((perr, idx, leader))
        out[name] = (err, parts)
    r.end()
    return out


def wait_topic(conn, topic, nparts, timeout=10):
    """Until Metadata v1 shows the topic with nparts partitions and leaders."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = metadata_v1(conn, [topic]).get(topic)
        if last and last[0] == 0 and len(last[1]) == nparts and \
                all(e == 0 and leader >= 0 for e, _, leader in last[1]):
            return None
        time.sleep(0.1)
    return "topic %s not ready in Metadata v1 within %d s: %r" % (topic, timeout, last)


# ---------------------------------------------------------------- Produce v3

def record_batch(values, base_ts, ts_deltas=None, bad_crc=False):
    """An uncompressed magic-2 batch of records with null keys."""
    recs = b""
    for i, v in enumerate(values):
        td = ts_deltas[i] if ts_deltas else 0
        body = i8(0) + varint(td) + varint(i) + varint(-1) + varint(len(v)) + v + varint(0)
        recs += varint(len(body)) + body
    max_ts = base_ts + max(ts_deltas or [0])
    tail = (i16(0) + i32(len(values) - 1) + i64(base_ts) + i64(max_ts) + i64(-1)
            + i16(-1) + i32(-1) + i32(len(values)) + recs)
    crc = crc32c(tail)
    if bad_crc:
        crc ^= 0x00000001
    return i64(0) + i32(4 + 1 + 4 + len(tail)) + i32(0) + i8(2) + struct.pack(">I", crc) + tail


def produce_v3(conn, topic, part, records, acks=-1):
    """Returns the partition's (error_code, base_offset)."""
    b = (i16(-1) + i16(acks) + i32(10000)
         + array([string(topic) + array([i32(part) + i32(len(records)) + records])]))
    r = conn.call(PRODUCE, 3, b)
    res = []
    for _ in range(r.alen()):
        r.string()
        for _ in range(r.alen()):
            res.append((r.i32(), r.i16(), r.i64(), r.i64()))
    r.i32()
    r.end()
    if len(res) != 1 or res[0][0] != part:
        raise ValueError("Produce v3 answered %r" % (res,))
    return res[0][1], res[0][2]


# ---------------------------------------------------------------- librdkafka

def make_producer(linger_ms):
    return Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": linger_ms,
                     "compression.type": "none", "acks": "all",
                     "batch.num.messages": 10000, "message.max.bytes": 1000000})


def produce(producer, topic, items):
    """items: [(partition, value, timestamp or None)]; returns offsets in order."""
    got = [None] * len(items)

    def done(i):
        def cb(err, msg):
            KEEP.append(msg)
            got[i] = err if err is not None else msg.offset()
        return cb

    for i, (part, value, ts) in enumerate(items):
        kw = {"partition": part, "on_delivery": done(i)}
        if ts is not None:
            kw["timestamp"] = ts
        producer.produce(topic, value=value, **kw)
    left = producer.flush(10)
    if left or any(g is None or not isinstance(g, int) for g in got):
        raise RuntimeError("produce to %s: %d undelivered, results %r" % (topic, left, got))
    return got


def create_topics(specs):
    """specs: {name: partitions}; created with max.message.bytes=1000000."""
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    fs = admin.create_topics([NewTopic(n, num_partitions=p, replication_factor=1,
                                       config={"max.message.bytes": "1000000"})
                              for n, p in specs.items()], operation_timeout=10)
    for n, f in fs.items():
        f.result(timeout=10)


def topic(name):
    return "fetch-%s-%s" % (name, RUN_ID)


# ---------------------------------------------------------------- the cases

def empty(records):
    return records is None or len(records) == 0


def case_long_poll_timeout(conn, t):
    t0 = time.monotonic()
    resp, p = fetch_one(conn, 11, t, 0, 1, max_wait=1500, min_bytes=1)
    el = time.monotonic() - t0
    if resp["error"] != 0 or p["error"] != 0:
        return "errors %d / %d" % (resp["error"], p["error"])
    if not 1.3 <= el <= 3.0:
        return "answered after %.3f s, want 1.3-3 s (max_wait_ms 1500)" % el
    if not empty(p["records"]):
        return "%d bytes of records at the high watermark" % len(p["records"])
    if p["hw"] != 1:
        return "high_watermark %d, want 1" % p["hw"]
    note("long poll with nothing produced answered after %.3f s" % el)
    return None


def case_long_poll_wakeup(conn, t, producer):
    box = {}

    def later():
        time.sleep(0.3)
        try:
            box["offsets"] = produce(producer, t, [(0, b"wake-up", None)])
        except Exception as e:  # noqa: BLE001
            box["error"] = e

    t0 = time.monotonic()
    corr = conn.send(FETCH, 11, fetch_body(11, [(t, [(0, 1, 1 << 20)])],
                                           max_wait=1500, min_bytes=1))
    th = threading.Thread(target=later, daemon=True)
    th.start()
    resp = parse_fetch(conn.recv(corr), 11)
    el = time.monotonic() - t0
    th.join(12)
    if "error" in box:
        return "producing the wake-up record failed: %s" % box["error"]
    if box.get("offsets") != [1]:
        return "the wake-up record got offset %r, want [1]" % box.get("offsets")
    p = resp["parts"].get((t, 0))
    if resp["error"] != 0 or p is None or p["error"] != 0:
        return "error in the response: %r" % resp
    if el >= 1.0:
        return "answered after %.3f s although a record arrived at ~0.3 s" % el
    if el < 0.2:
        return "answered after %.3f s, before the record was produced" % el
    batches = parse_batches(p["records"])
    if not batches or batches[0]["base"] != 1 or not batches[0]["complete"]:
        return "records: %s, want the batch at offset 1" % batch_summary(batches)
    if batches[0]["records"][0][3] != b"wake-up":
        return "record value %r" % (batches[0]["records"][0][3],)
    note("long poll woken by a record produced at ~0.3 s answered after %.3f s" % el)
    return None


def case_min_bytes_waits(conn, t):
    t0 = time.monotonic()
    resp, p = fetch_one(conn, 11, t, 0, 0, max_wait=1000, min_bytes=1000000)
    el = time.monotonic() - t0
    if resp["error"] != 0 or p["error"] != 0:
        return "errors %d / %d" % (resp["error"], p["error"])
    if not 0.9 <= el <= 3.0:
        return "answered after %.3f s, want the full max_wait (1 s, accepted 0.9-3)" % el
    batches = parse_batches(p["records"])
    if len(batches) != 1 or batches[0]["base"] != 0 or not batches[0]["complete"] \
            or batches[0]["count"] != 1:
        return "records after the wait: %s, want the one batch at offset 0" \
            % batch_summary(batches)
    if batches[0]["records"][0][3] != b"m" * 200:
        return "record value differs from what was produced"
    return None


def case_min_bytes_met(conn, t):
    t0 = time.monotonic()
    resp, p = fetch_one(conn, 11, t, 0, 0, max_wait=1000, min_bytes=10)
    el = time.monotonic() - t0
    if p["error"] != 0 or empty(p["records"]):
        return "error %d, %d bytes" % (p["error"], len(p["records"] or b""))
    if el > 0.5:
        return "answered after %.3f s although min_bytes was already available" % el
    return None


def case_first_batch_whole(conn, t, big):
    resp = fetch(conn, 11, [(t, [(0, 0, 1000), (1, 0, 1000)])],
                 max_wait=500, min_bytes=1, max_bytes=1000)
    p0 = resp["parts"].get((t, 0))
    if p0 is None or p0["error"] != 0:
        return "partition 0: %r" % (p0 and p0["error"],)
    batches = parse_batches(p0["records"])
    if not batches or not batches[0]["complete"]:
        return "partition 0 records (%d bytes): %s, want one whole ~100 KiB batch" \
            % (len(p0["records"] or b""), batch_summary(batches))
    b = batches[0]
    if b["base"] != 0 or b["size"] < len(big) or len(p0["records"]) < b["size"]:
        return "partition 0: batch base %d of %d bytes, records %d bytes" \
            % (b["base"], b["size"], len(p0["records"]))
    if not b["crc_ok"]:
        return "partition 0: the batch's CRC-32C does not match its bytes"
    if b["records"] is None or b["records"][0][3] != big:
        return "partition 0: the record's value differs from what was produced"
    note("first partition: %d bytes of records for partition_max_bytes/max_bytes 1000"
         % len(p0["records"]))
    return None


def case_budget_second_partition(conn, t):
    resp = fetch(conn, 11, [(t, [(0, 0, 1000), (1, 0, 1000)])],
                 max_wait=500, min_bytes=1, max_bytes=1000)
    p1 = resp["parts"].get((t, 1))
    if p1 is None or p1["error"] != 0:
        return "partition 1: %r" % (p1,)
    if p1["hw"] != 1:
        return "partition 1 high_watermark %d, want 1" % p1["hw"]
    if not empty(p1["records"]):
        return "partition 1 got %d bytes (%s) after partition 0 used the whole " \
            "max_bytes budget of 1000" % (len(p1["records"]),
                                          batch_summary(parse_batches(p1["records"])))
    # Alone, with the same limits, partition 1's small batch does come back.
    _, alone = fetch_one(conn, 11, t, 1, 0, pmax=1000, max_bytes=1000)
    batches = parse_batches(alone["records"])
    if len(batches) != 1 or not batches[0]["complete"] or batches[0]["size"] > 1000:
        return "partition 1 fetched alone: %s, want its one small batch" \
            % batch_summary(batches)
    return None


def case_inside_batch(conn, t):
    _, whole = fetch_one(conn, 11, t, 0, 0)
    wb = parse_batches(whole["records"])
    if len(wb) != 1:
        note("the producer made %d batches: %s" % (len(wb), batch_summary(wb)))
        return "setup: the 10 records are not one batch (%s)" % batch_summary(wb)
    resp, p = fetch_one(conn, 11, t, 0, 5)
    if p["error"] != 0:
        return "error %d" % p["error"]
    batches = parse_batches(p["records"])
    if not batches or not batches[0]["complete"]:
        return "records at offset 5: %s" % batch_summary(batches)
    b = batches[0]
    if b["base"] != 0 or b["last_delta"] != 9 or b["count"] != 10:
        return "first batch base %d, lastOffsetDelta %d, count %d; want 0, 9, 10" \
            % (b["base"], b["last_delta"], b["count"])
    if not b["crc_ok"]:
        return "the batch's CRC-32C does not match its bytes"
    deltas = [r[0] for r in b["records"]]
    values = [r[3] for r in b["records"]]
    if deltas != list(range(10)) or values != [b"r%d" % i for i in range(10)]:
        return "records %r / %r" % (deltas, values)
    if p["hw"] != 10:
        return "high_watermark %d, want 10" % p["hw"]
    if b["raw"] != wb[0]["raw"]:
        return "the batch differs from the one fetched at offset 0"
    return None


def case_out_of_range(conn, t):
    for off in (11, 1000, -1):
        t0 = time.monotonic()
        resp, p = fetch_one(conn, 11, t, 0, off, max_wait=1000, min_bytes=1)
        el = time.monotonic() - t0
        if p["error"] != OFFSET_OUT_OF_RANGE:
            return "fetch offset %d: error %d, want OFFSET_OUT_OF_RANGE (1)" % (off, p["error"])
        if p["hw"] != 10 or p["log_start"] != 0:
            return "fetch offset %d: high_watermark %d, log_start_offset %d; want 10, 0" \
                % (off, p["hw"], p["log_start"])
        if not empty(p["records"]):
            return "fetch offset %d: %d bytes of records with the error" % (off, len(p["records"]))
        if el > 0.8:
            return "fetch offset %d: error answered only after %.3f s" % (off, el)
    return None


def case_fetch_unknown(conn, t, part):
    for ver in (4, 11, 12):
        resp, p = fetch_one(conn, ver, t, part, 0, max_wait=1000)
        if p["error"] != UNKNOWN_TOPIC_OR_PARTITION:
            return "Fetch v%d %s-%d: error %d, want 3" % (ver, t, part, p["error"])
        if not empty(p["records"]):
            return "Fetch v%d: records with the error" % ver
    return None


def case_list_offsets_unknown(conn, t, part):
    for ver in (1, 7):
        p = list_offsets(conn, ver, t, [(part, -1)])[0]
        if p["error"] != UNKNOWN_TOPIC_OR_PARTITION:
            return "ListOffsets v%d %s-%d: error %d, want 3" % (ver, t, part, p["error"])
    return None


def case_list_offsets_v1(conn, t, ts, want_off, want_ts=None):
    p = list_offsets(conn, 1, t, [(0, ts)])[0]
    if p["error"] != 0 or p["offset"] != want_off:
        return "timestamp %d: error %d, offset %d; want 0, %d" \
            % (ts, p["error"], p["offset"], want_off)
    if want_ts is not None and p["timestamp"] != want_ts:
        return "timestamp %d: answer's timestamp %d, want %d" % (ts, p["timestamp"], want_ts)
    return None


def case_list_offsets_max(conn, t, want_off, want_ts):
    p = list_offsets(conn, 7, t, [(0, -3)])[0]
    if p["error"] != 0 or p["offset"] != want_off or p["timestamp"] != want_ts:
        return "v7 timestamp -3: error %d, offset %d, timestamp %d; want 0, %d, %d" \
            % (p["error"], p["offset"], p["timestamp"], want_off, want_ts)
    latest = list_offsets(conn, 7, t, [(0, -1)])[0]
    if latest["error"] != 0 or latest["offset"] != 5:
        return "v7 timestamp -1: error %d, offset %d; want 0, 5" \
            % (latest["error"], latest["offset"])
    return None


def case_versions_identical(conn, t):
    got = {}
    for ver in (4, 11, 12):
        resp, p = fetch_one(conn, ver, t, 0, 0)
        if resp["error"] != 0 or p["error"] != 0:
            return "Fetch v%d: errors %d / %d" % (ver, resp["error"], p["error"])
        got[ver] = (p["hw"], p["records"] or b"")
    if not got[4][1]:
        return "Fetch v4 returned no records"
    hws = {v: g[0] for v, g in got.items()}
    if set(hws.values()) != {5}:
        return "high watermarks %r, want 5 for each" % hws
    for ver in (11, 12):
        if got[ver][1] != got[4][1]:
            a, b = got[4][1], got[ver][1]
            at = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
            return "v%d records (%d bytes) differ from v4's (%d bytes) at byte %d" \
                % (ver, len(b), len(a), at)
    batches = parse_batches(got[4][1])
    if [(b["base"], b["count"]) for b in batches] != [(0, 3), (3, 2)] or \
            not all(b["crc_ok"] for b in batches):
        return "records: %s, want batches 0-2 and 3-4 with good CRCs" % batch_summary(batches)
    return None


def case_session_not_found(conn, t):
    for ver in (11, 12):
        resp = fetch(conn, ver, [(t, [(0, 0, 1 << 20)])], session_id=12345, session_epoch=1)
        if resp["error"] != FETCH_SESSION_ID_NOT_FOUND:
            return "Fetch v%d with session_id 12345: top-level error %d, want 70" \
                % (ver, resp["error"])
    return None


def case_session_zero(conn, t):
    for ver in (11, 12):
        resp, p = fetch_one(conn, ver, t, 0, 0)
        if resp["error"] != 0 or resp["session_id"] != 0 or p["error"] != 0:
            return "Fetch v%d: top-level error %d, session_id %d, partition error %d" \
                % (ver, resp["error"], resp["session_id"], p["error"])
    return None


def case_produce_valid(conn, t, batch):
    err, base = produce_v3(conn, t, 0, batch)
    if err != 0 or base != 0:
        return "error %d, base_offset %d; want 0, 0" % (err, base)
    _, p = fetch_one(conn, 11, t, 0, 0)
    if p["records"] != batch:
        return "fetched back %r, sent %r" % (p["records"], batch)
    return None


def case_produce_refused(conn, t, batch, acks, want_err, what):
    hw0 = high_watermark(conn, t)
    err, base = produce_v3(conn, t, 0, batch, acks=acks)
    if err != want_err:
        return "%s: error %d (base_offset %d), want %d" % (what, err, base, want_err)
    hw1 = high_watermark(conn, t)
    _, p = fetch_one(conn, 11, t, 0, 0)
    if hw1 != hw0 or p["hw"] != hw0:
        return "%s: high watermark %d before, %d (ListOffsets) / %d (Fetch) after" \
            % (what, hw0, hw1, p["hw"])
    batches = parse_batches(p["records"])
    if len(batches) != hw0:
        return "%s: %d batches in the log, want %d" % (what, len(batches), hw0)
    return None


def main():
    if not BOOTSTRAP:
        print("BOOTSTRAP is not set; run through tests/integration/with-broker.sh",
              file=sys.stderr)
        return 2
    report.watchdog("fetch", WATCHDOG_S)

    if crc32c(b"123456789") != 0xE3069283:
        fail("fetch_crc32c_selftest", "crc32c('123456789') = %08x" % crc32c(b"123456789"))
        return 1

    t_poll, t_min, t_big, t_inside, t_ts = (topic(n) for n in
                                            ("poll", "minbytes", "big", "inside", "ts"))
    t_prod = topic("produce")
    create_topics({t_poll: 1, t_min: 1, t_big: 2, t_inside: 1, t_ts: 1})
    conn = Conn()
    poll_conn = Conn()
    for t, n in ((t_poll, 1), (t_min, 1), (t_big, 2), (t_inside, 1), (t_ts, 1)):
        why = wait_topic(conn, t, n)
        if why:
            fail("fetch_setup", why)
            return 1

    quick = make_producer(0)
    batcher = make_producer(1000)
    # Connected, and knowing the partitions' leader, before the first
    # produce: otherwise librdkafka may send the first records one by one.
    for p in (quick, batcher):
        p.list_topics(timeout=10)

    # 1. long poll
    produce(quick, t_poll, [(0, b"warm-up", None)])
    case("fetch_long_poll_timeout", case_long_poll_timeout, poll_conn, t_poll)
    case("fetch_long_poll_wakeup", case_long_poll_wakeup, poll_conn, t_poll, quick)

    # 2. min_bytes
    produce(quick, t_min, [(0, b"m" * 200, None)])
    case("fetch_min_bytes_waits", case_min_bytes_waits, conn, t_min)
    case("fetch_min_bytes_met", case_min_bytes_met, conn, t_min)

    # 3. the first batch of the first partition with data comes back whole
    big = os.urandom(100 * 1024)
    produce(quick, t_big, [(0, big, None)])
    produce(quick, t_big, [(1, b"s" * 300, None)])
    case("fetch_first_batch_whole", case_first_batch_whole, conn, t_big, big)
    case("fetch_budget_second_partition", case_budget_second_partition, conn, t_big)

    # 4. a fetch inside a batch returns the batch from its start
    offs = produce(batcher, t_inside, [(0, b"r%d" % i, None) for i in range(10)])
    if offs != list(range(10)):
        note("setup: offsets %r" % offs)
    case("fetch_inside_batch", case_inside_batch, conn, t_inside)

    # 5. OFFSET_OUT_OF_RANGE
    case("fetch_offset_out_of_range", case_out_of_range, conn, t_inside)

    # 6. UNKNOWN_TOPIC_OR_PARTITION (the missing topic is never named in Metadata)
    missing = topic("missing")
    case("fetch_unknown_topic", case_fetch_unknown, conn, missing, 0)
    case("fetch_unknown_partition", case_fetch_unknown, conn, t_inside, 7)
    case("list_offsets_unknown_topic", case_list_offsets_unknown, conn, missing, 0)
    case("list_offsets_unknown_partition", case_list_offsets_unknown, conn, t_inside, 7)

    # 7. ListOffsets: two batches, explicit timestamps out of order
    base = int(time.time() * 1000) - 3600 * 1000
    produce(batcher, t_ts, [(0, b"a", base + 10), (0, b"b", base + 50), (0, b"c", base + 30)])
    produce(batcher, t_ts, [(0, b"d", base + 20), (0, b"e", base + 40)])
    case("list_offsets_v1_earliest", case_list_offsets_v1, conn, t_ts, -2, 0)
    case("list_offsets_v1_latest", case_list_offsets_v1, conn, t_ts, -1, 5)
    case("list_offsets_v1_after_last", case_list_offsets_v1, conn, t_ts, base + 51, -1)
    case("list_offsets_v1_by_time", case_list_offsets_v1, conn, t_ts, base + 45, 1, base + 50)
    case("list_offsets_v7_max_timestamp", case_list_offsets_max, conn, t_ts, 1, base + 50)

    # 8. the same records through Fetch v4, v11 and v12
    case("fetch_versions_identical", case_versions_identical, conn, t_ts)

    # 9. fetch sessions are declined
    case("fetch_session_id_not_found", case_session_not_found, conn, t_ts)
    case("fetch_session_id_zero", case_session_zero, conn, t_ts)

    # 10. Produce v3 by hand; the topic is auto-created through Metadata v1
    why = wait_topic(conn, t_prod, 1)
    if why:
        fail("produce_setup", why)
    else:
        now = int(time.time() * 1000)
        good = record_batch([b"hand-built"], now)
        case("produce_v3_valid_batch", case_produce_valid, conn, t_prod, good)
        case("produce_corrupt_crc", case_produce_refused, conn, t_prod,
             record_batch([b"bad crc"], now, bad_crc=True), -1, CORRUPT_MESSAGE,
             "batch with a wrong CRC")
        case("produce_invalid_acks", case_produce_refused, conn, t_prod,
             record_batch([b"acks 2"], now), 2, INVALID_REQUIRED_ACKS, "acks=2")
        big_batch = None
        for n in range(4900, 5000):
            b = record_batch([b"x" * n], now)
            if len(b) >= 5000:
                big_batch = b
                break
        note("oversized batch: %d bytes" % len(big_batch))
        case("produce_message_too_large", case_produce_refused, conn, t_prod,
             big_batch, -1, MESSAGE_TOO_LARGE, "batch of %d bytes" % len(big_batch))

    conn.close()
    poll_conn.close()
    return report.status()


if __name__ == "__main__":
    try:
        code = main()
    except Exception:  # noqa: BLE001 - report, then exit without teardown
        traceback.print_exc(file=sys.stderr)
        print("FAIL fetch_setup: %s" % traceback.format_exc().strip().splitlines()[-1],
              flush=True)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
