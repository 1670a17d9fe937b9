# broker-args: --set log.retention.check.interval.ms=200
"""tests/integration/test_delete_records.py - DeleteRecords and retention
against the broker at $BOOTSTRAP; run by with-broker.sh with
/usr/bin/python3.

DeleteRecords requests are built here by hand (Kafka's classic and flexible
encodings), so every version is sent and every answer is seen as the broker
wrote it; records go in and come out with real clients (confluent-kafka,
kafka-python).  The expected answers are Kafka's (3.x ReplicaManager and
UnifiedLog):

  delete_records_api_versions     ApiVersions advertises DeleteRecords 0-2
  delete_records_versions         v0, v1, v2 move partition 0's log start up
                                  and answer the new start as low_watermark;
                                  an offset at or below the start answers the
                                  start; -1 means the high watermark
  delete_records_errors           past the high watermark or below -1:
                                  OFFSET_OUT_OF_RANGE (1); unknown partition
                                  or topic: UNKNOWN_TOPIC_OR_PARTITION (3);
                                  a compacted topic: POLICY_VIOLATION (44);
                                  a failed partition answers low_watermark -1
  delete_records_consumers        a confluent-kafka consumer from earliest
                                  begins at the new start, one told to begin
                                  below it is reset there (OFFSET_OUT_OF_RANGE
                                  then earliest), and kafka-python's
                                  beginning_offsets and librdkafka's watermarks
                                  report it
  retention_time                  a topic with retention.ms=60000: records
                                  stamped an hour ago go at the next check
                                  (log.retention.check.interval.ms=200 here),
                                  fresh ones stay; consumers from earliest
                                  begin at the first fresh one; the broker logs
                                  "retention: topic T partition 0 log start
                                  A -> 3 (time)"
  retention_size                  a topic with retention.bytes=3500 and ten
                                  batches of about 1070 bytes keeps the last
                                  four (Kafka: drop the oldest while the rest
                                  still holds retention.bytes)

After every case a fresh connection must get an ApiVersions answer, so a
crash shows up at the case that caused it.

Prints "ok NAME" or "FAIL NAME: reason" per case; exits 1 on any failure.
Every wait is bounded, and a watchdog ends the run after WATCHDOG_S.

confluent-kafka 1.7.0 (Debian's) mishandles references to None when some
Message objects are freed, so every Message is kept alive in KEEP and the
program ends with os._exit().
"""

import os
import re
import socket
import struct
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
import report
from report import case, note

BOOTSTRAP = os.environ.get("BOOTSTRAP", "")
SLUICE_LOG = os.environ.get("SLUICE_LOG", "")
RUN_ID = "%d-%d" % (os.getpid(), int(time.time()))
WATCHDOG_S = 150
RECV_S = 15
KEEP = []

PRODUCE, LIST_OFFSETS, API_VERSIONS, CREATE_TOPICS, DELETE_RECORDS = 0, 2, 18, 19, 21
FLEX_FROM = {API_VERSIONS: 3, CREATE_TOPICS: 5, DELETE_RECORDS: 2, LIST_OFFSETS: 6}

NONE, OFFSET_OUT_OF_RANGE, UNKNOWN_TOPIC_OR_PARTITION, POLICY_VIOLATION = 0, 1, 3, 44


class Check(Exception):
    """A failed expectation inside a case; its message is the case's reason."""


def expect(what, got, want):
    if got != want:
        raise Check("%s: %r, want %r" % (what, got, want))


# ---- the wire ----

class Enc:
    def __init__(self, flex):
        self.flex = flex
        self.b = bytearray()

    def i8(self, v):
        self.b += struct.pack(">b", v)

    def i16(self, v):
        self.b += struct.pack(">h", v)

    def i32(self, v):
        self.b += struct.pack(">i", v)

    def i64(self, v):
        self.b += struct.pack(">q", v)

    def uvarint(self, v):
        while v >= 0x80:
            self.b.append((v & 0x7F) | 0x80)
            v >>= 7
        self.b.append(v)

    def string(self, s):
        d = s.encode()
        if self.flex:
            self.uvarint(len(d) + 1)
        else:
            self.i16(len(d))
        self.b += d

    def array(self, items, fn):
        items = list(items)
        if self.flex:
            self.uvarint(len(items) + 1)
        else:
            self.i32(len(items))
        for it in items:
            fn(it)

    def tags(self):
        if self.flex:
            self.uvarint(0)


class Dec:
    def __init__(self, data, flex):
        self.d = data
        self.p = 0
        self.flex = flex

    def take(self, n):
        if self.p + n > len(self.d):
            raise Check("response truncated: need %d bytes at %d of %d" % (n, self.p, len(self.d)))
        v = self.d[self.p:self.p + n]
        self.p += n
        return v

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def uvarint(self):
        v = shift = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7
            if shift > 28:
                raise Check("response has a varint longer than 5 bytes")

    def string(self):
        n = self.uvarint() - 1 if self.flex else self.i16()
        if n < 0:
            return None
        return self.take(n).decode("utf-8", "replace")

    def array(self, fn):
        n = self.uvarint() - 1 if self.flex else self.i32()
        if n < 0:
            return None
        if n > 100000:
            raise Check("response array of %d entries" % n)
        return [fn() for _ in range(n)]

    def tags(self):
        if not self.flex:
            return
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())

    def end(self):
        if self.p != len(self.d):
            raise Check("%d bytes left over in the response" % (len(self.d) - self.p))


def flexible(api, ver):
    first = FLEX_FROM.get(api)
    return first is not None and ver >= first


class Conn:
    def __init__(self):
        host, port = BOOTSTRAP.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=RECV_S)
        self.corr = 100

    def close(self):
        self.s.close()

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise Check("connection closed by the broker")
            buf += chunk
        return buf

    def call(self, api, ver, body):
        """body(e) fills the request body; returns a Dec at the response body."""
        self.corr += 1
        flex = flexible(api, ver)
        e = Enc(flex)
        body(e)
        h = struct.pack(">hhi", api, ver, self.corr) + struct.pack(">h", 11) + b"sluice-test"
        if flex:
            h += b"\x00"
        data = h + bytes(e.b)
        self.s.sendall(struct.pack(">i", len(data)) + data)
        try:
            size = struct.unpack(">i", self.recv_exact(4))[0]
            if size < 4 or size > 64 << 20:
                raise Check("response size %d" % size)
            resp = self.recv_exact(size)
        except socket.timeout:
            raise Check("no response to api %d v%d within %d s" % (api, ver, RECV_S))
        got = struct.unpack(">i", resp[:4])[0]
        if got != self.corr:
            raise Check("response correlation id %d, want %d" % (got, self.corr))
        d = Dec(resp, flex and api != API_VERSIONS)
        d.p = 4
        d.tags()
        return d


def alive():
    """None if a fresh connection gets an ApiVersions v0 answer."""
    try:
        c = Conn()
        try:
            err = c.call(API_VERSIONS, 0, lambda e: None).i16()
        finally:
            c.close()
    except (OSError, Check) as e:
        return "broker no longer answers ApiVersions on a new connection: %s" % e
    if err != 0:
        return "ApiVersions on a new connection: error %d" % err
    return None


def api_versions(c):
    d = c.call(API_VERSIONS, 0, lambda e: None)
    err = d.i16()
    return err, {k: (lo, hi) for k, lo, hi in d.array(lambda: (d.i16(), d.i16(), d.i16()))}


def create_topic(c, name, partitions, configs=()):
    """CreateTopics v0 with config overrides [(key, value)]."""
    def body(e):
        def topic(_):
            e.string(name)
            e.i32(partitions)
            e.i16(1)
            e.array([], None)

            def cfg(kv):
                e.string(kv[0])
                e.string(kv[1])
            e.array(configs, cfg)
        e.array([0], topic)
        e.i32(10000)
    d = c.call(CREATE_TOPICS, 0, body)
    res = d.array(lambda: (d.string(), d.i16()))
    expect("CreateTopics %s" % name, res, [(name, 0)])


def delete_records(c, ver, topics, timeout_ms=30000):
    """DeleteRecords at ver for {topic: [(partition, offset)]}:
    [(topic, [(partition, low_watermark, error_code)])] in the answer's order."""
    def body(e):
        def topic(item):
            e.string(item[0])

            def part(po):
                e.i32(po[0])
                e.i64(po[1])
                e.tags()
            e.array(item[1], part)
            e.tags()
        e.array(topics.items(), topic)
        e.i32(timeout_ms)
        e.tags()
    d = c.call(DELETE_RECORDS, ver, body)
    expect("DeleteRecords v%d throttle_time_ms" % ver, d.i32(), 0)

    def part_r():
        r = (d.i32(), d.i64(), d.i16())
        d.tags()
        return r

    def topic_r():
        name = d.string()
        parts = d.array(part_r)
        d.tags()
        return name, parts
    res = d.array(topic_r)
    d.tags()
    d.end()
    return res


def delete_one(c, ver, topic, partition, offset):
    """(low_watermark, error_code) for one partition."""
    res = delete_records(c, ver, {topic: [(partition, offset)]})
    expect("answered partitions", [(t, [p[0] for p in ps]) for t, ps in res], [(topic, [partition])])
    return res[0][1][0][1], res[0][1][0][2]


def list_offset(c, topic, partition, ts):
    """ListOffsets v1: the offset for ts (-2 earliest, -1 latest)."""
    def body(e):
        e.i32(-1)

        def t(_):
            e.string(topic)

            def p(_):
                e.i32(partition)
                e.i64(ts)
            e.array([0], p)
        e.array([0], t)
    d = c.call(LIST_OFFSETS, 1, body)

    def part():
        return d.i32(), d.i16(), d.i64(), d.i64()
    res = d.array(lambda: (d.string(), d.array(part)))
    _, err, _, off = res[0][1][0]
    expect("ListOffsets error", err, NONE)
    return off


# ---- clients ----

def conf():
    return {"bootstrap.servers": BOOTSTRAP, "socket.timeout.ms": 10000}


def produce(topic, partition, values, ts=None):
    """Each value as its own batch (a flush after each); returns their offsets."""
    p = Producer(dict(conf(), **{"acks": "all", "message.timeout.ms": 30000, "linger.ms": 0,
                                 "enable.idempotence": False}))
    offsets = []
    errors = []

    def delivered(err, msg):
        KEEP.append(msg)
        if err is not None:
            errors.append(str(err))
        else:
            offsets.append(msg.offset())

    for v in values:
        kw = {"timestamp": ts} if ts is not None else {}
        p.produce(topic, value=v, partition=partition, on_delivery=delivered, **kw)
        if p.flush(30):
            raise Check("a record was not delivered within 30 s")
    if errors:
        raise Check("delivery failed: %s" % errors[0])
    return offsets


def first_offset(topic, partition, start=None, timeout_s=20):
    """The offset of the first record a confluent-kafka consumer reads,
    from earliest (start None) or told to begin at start."""
    c = Consumer(dict(conf(), **{"group.id": "sluice-test-dr-" + RUN_ID,
                                 "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                 "enable.partition.eof": False, "fetch.wait.max.ms": 100}))
    try:
        if start is None:
            c.assign([TopicPartition(topic, partition)])
        else:
            c.assign([TopicPartition(topic, partition, start)])
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            KEEP.append(m)
            if m.error():
                raise Check("consumer error: %s" % m.error())
            return m.offset()
        raise Check("no record within %d s" % timeout_s)
    finally:
        c.close()


def watermarks(topic, partition):
    c = Consumer(dict(conf(), **{"group.id": "sluice-test-dr-" + RUN_ID, "enable.auto.commit": False}))
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
    finally:
        c.close()


def kafka_python_beginning(topic, partition):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, request_timeout_ms=15000,
                      api_version_auto_timeout_ms=10000)
    try:
        tp = KTP(topic, partition)
        return c.beginning_offsets([tp])[tp]
    finally:
        c.close()


def wait_earliest(c, topic, partition, want, timeout_s=20):
    deadline = time.time() + timeout_s
    got = None
    while time.time() < deadline:
        got = list_offset(c, topic, partition, -2)
        if got == want:
            return got
        time.sleep(0.1)
    return got


def log_has(pattern):
    """Whether a line of the broker's log matches pattern (None: no log to read)."""
    if not SLUICE_LOG:
        return None
    with open(SLUICE_LOG, errors="replace") as f:
        return re.search(pattern, f.read(), re.M) is not None


# ---- cases ----

TOPIC = "dr-" + RUN_ID
COMPACT = "dr-compact-" + RUN_ID
TIMED = "dr-time-" + RUN_ID
SIZED = "dr-size-" + RUN_ID


def c_api_versions(c):
    err, apis = api_versions(c)
    expect("ApiVersions error", err, NONE)
    expect("DeleteRecords range", apis.get(DELETE_RECORDS), (0, 2))


def c_versions(c):
    create_topic(c, TOPIC, 2)
    offs = produce(TOPIC, 0, [b"record-%d" % i for i in range(10)])
    expect("produced offsets", offs, list(range(10)))
    expect("v0 to 3", delete_one(c, 0, TOPIC, 0, 3), (3, NONE))
    expect("earliest after v0", list_offset(c, TOPIC, 0, -2), 3)
    expect("v1 to 5", delete_one(c, 1, TOPIC, 0, 5), (5, NONE))
    expect("v2 below the start", delete_one(c, 2, TOPIC, 0, 4), (5, NONE))
    expect("v2 at the start", delete_one(c, 2, TOPIC, 0, 5), (5, NONE))
    expect("v2 to 6", delete_one(c, 2, TOPIC, 0, 6), (6, NONE))
    # An empty partition: -1 is its high watermark, 0, which is its start.
    expect("v2 -1 on an empty partition", delete_one(c, 2, TOPIC, 1, -1), (0, NONE))
    expect("latest unchanged", list_offset(c, TOPIC, 0, -1), 10)


def c_errors(c):
    expect("past the high watermark", delete_one(c, 1, TOPIC, 0, 11), (-1, OFFSET_OUT_OF_RANGE))
    expect("below -1", delete_one(c, 2, TOPIC, 0, -2), (-1, OFFSET_OUT_OF_RANGE))
    expect("unknown partition", delete_one(c, 0, TOPIC, 2, 0), (-1, UNKNOWN_TOPIC_OR_PARTITION))
    expect("unknown topic", delete_one(c, 2, "no-such-" + RUN_ID, 0, 0),
           (-1, UNKNOWN_TOPIC_OR_PARTITION))
    create_topic(c, COMPACT, 1, [("cleanup.policy", "compact")])
    produce(COMPACT, 0, [b"k"])
    expect("compacted topic", delete_one(c, 1, COMPACT, 0, 1), (-1, POLICY_VIOLATION))
    # Mixed in one request: each partition its own answer, in the request's order.
    res = delete_records(c, 2, {TOPIC: [(0, 99), (1, 0), (7, 0)]})
    expect("mixed request", res, [(TOPIC, [(0, -1, OFFSET_OUT_OF_RANGE), (1, 0, NONE),
                                          (7, -1, UNKNOWN_TOPIC_OR_PARTITION)])])
    expect("earliest unchanged by the errors", list_offset(c, TOPIC, 0, -2), 6)


def c_consumers(c):
    expect("confluent-kafka from earliest", first_offset(TOPIC, 0), 6)
    expect("confluent-kafka told to begin below the start", first_offset(TOPIC, 0, start=2), 6)
    expect("librdkafka watermarks", watermarks(TOPIC, 0), (6, 10))
    expect("kafka-python beginning_offsets", kafka_python_beginning(TOPIC, 0), 6)
    expect("v2 -1: everything", delete_one(c, 2, TOPIC, 0, -1), (10, NONE))
    produce(TOPIC, 0, [b"after"])
    expect("confluent-kafka after deleting everything", first_offset(TOPIC, 0), 10)


def c_retention_time(c):
    create_topic(c, TIMED, 1, [("retention.ms", "60000")])
    hour_ago = int(time.time() * 1000) - 3600 * 1000
    expect("old records", produce(TIMED, 0, [b"old-%d" % i for i in range(3)], ts=hour_ago), [0, 1, 2])
    expect("fresh records", produce(TIMED, 0, [b"new-0", b"new-1"]), [3, 4])
    expect("earliest once retention ran", wait_earliest(c, TIMED, 0, 3), 3)
    expect("latest", list_offset(c, TIMED, 0, -1), 5)
    expect("confluent-kafka from earliest", first_offset(TIMED, 0), 3)
    expect("kafka-python beginning_offsets", kafka_python_beginning(TIMED, 0), 3)
    # A check may have run between two of the old records: the last move ends at 3.
    line = r"retention: topic %s partition 0 log start [0-2] -> 3 \(time\)$" % re.escape(TIMED)
    if log_has(line) is False:
        raise Check("the broker log has no line matching %r" % line)


def c_retention_size(c):
    create_topic(c, SIZED, 1, [("retention.bytes", "3500")])
    offs = produce(SIZED, 0, [b"%04d" % i + b"x" * 996 for i in range(10)])
    expect("offsets", offs, list(range(10)))
    expect("earliest once retention ran", wait_earliest(c, SIZED, 0, 6), 6)
    expect("confluent-kafka from earliest", first_offset(SIZED, 0), 6)
    # Nothing more goes: four batches are just above the limit, three would be below.
    time.sleep(1)
    expect("earliest a second later", list_offset(c, SIZED, 0, -2), 6)
    # Checks run while the batches arrive: the start may have moved in steps.
    line = r"retention: topic %s partition 0 log start [0-5] -> 6 \(size\)$" % re.escape(SIZED)
    if log_has(line) is False:
        raise Check("the broker log has no line matching %r" % line)


def run(name, fn):
    def body():
        c = Conn()
        try:
            fn(c)
        finally:
            c.close()
        return alive()
    return case(name, body)


def main():
    if not BOOTSTRAP:
        print("BOOTSTRAP is not set; run through tests/integration/with-broker.sh", file=sys.stderr)
        return 2
    report.watchdog("delete_records", WATCHDOG_S)
    run("delete_records_api_versions", c_api_versions)
    if run("delete_records_versions", c_versions):
        run("delete_records_errors", c_errors)
        run("delete_records_consumers", c_consumers)
    else:
        note("skip delete_records_errors, delete_records_consumers: they need the topic "
             "the failed case fills")
    run("retention_time", c_retention_time)
    run("retention_size", c_retention_size)
    return report.status()


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
