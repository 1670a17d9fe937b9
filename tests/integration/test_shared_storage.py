#!/usr/bin/python3
# harness: self
"""test_shared_storage.py - the broker with shared storage: a small WAL in
front of an S3 bucket (s3rver behind the signature proxy and the fault
server, tests/s3/env.py), checked from the outside with confluent-kafka and
with the independent bucket reader tests/s3/bucket.py.

The contract (storage/tier.h, docs/FORMAT.md): data leaves the WAL in data
objects data/<node 10 digits>/<epoch 20>/<seq 20>-<nonce 16 hex>.obj named by
manifest versions manifest/<20 digits>; the WAL is trimmed only after a
committed version names the data; a broker restarted with a blank WAL and
the same bucket serves every uploaded topic, offset and committed group
offset; one restarted on its old WAL also recovers what was acknowledged but
not yet uploaded.

with-broker.sh starts no broker ("harness: self"): this test starts its own
on $PORT, appending their output to $SLUICE_LOG, with
  sluice.wal.capacity.bytes=64 MiB, sluice.objects.url=s3://sluice-test?...
  (through the fault server), the test credentials, sluice.upload.interval.ms
  =500, sluice.upload.bytes=8 MiB, sluice.cache.bytes=64 MiB,
  sluice.tail.bytes=16 MiB (so reading from offset 0 goes to the objects),
  sluice.objects.gc.grace.ms=60000, sluice.objects.gc.interval.ms=2000,
  log.retention.check.interval.ms=1000.

Cases, in one run (each later one uses the bucket the earlier ones left):
  shared_big_produce       SLUICE_BIG MiB (default 256) of records to a
                           12-partition topic, acks=all, no retries: every
                           record acknowledged, no produce error (the 64 MiB
                           WAL never overflowed: uploads trimmed it).
  shared_big_read_back     every partition from offset 0 to its high
                           watermark: offsets dense, each record where it was
                           acknowledged, key and value byte for byte (values
                           are derived from the record number and SEED, so
                           nothing is stored to compare against).
  shared_big_in_bucket     bucket.py, once the manifest covers every
                           partition's high watermark: the history checks,
                           every manifest-named object exists with its size,
                           keys have the data/NODE/EPOCH/SEQ-NONCE.obj form,
                           and the batches of every partition hold exactly the
                           acknowledged records (parsed from the Kafka batches).
  shared_blank_wal_restart a group offset committed (then one record to a
                           marker topic, so a commit carries it to the
                           manifest) and seen in the bucket; SIGTERM; a newly
                           formatted, blank WAL; the same bucket: the topics
                           with their partition counts, the same watermarks,
                           every record read back again, the marker record,
                           the committed offset; the new broker claims the
                           manifest with a higher epoch.
  shared_s3_slowdown       S3 (the fault server) answers 503 SlowDown to every
                           request for SLUICE_OUTAGE_S seconds (60) while
                           records keep coming to a new topic: produce fails
                           only with timeouts (a full WAL), works again once
                           S3 returns, and every acknowledged record is read
                           back exactly once and found in the bucket;
  shared_kill_mid_upload   on that broker's WAL: the fault server holds a data
                           object PUT, the broker is SIGKILLed while it waits;
                           restarted on the same WAL, more records; the fault
                           server holds a manifest version PUT (the object is
                           already up), SIGKILL again; restarted on the same
                           WAL: every acknowledged record of both phases is
                           read exactly once at its offset, offsets dense, no
                           record twice; the bucket (once it caught up) says
                           the same, and the object of the uncommitted version
                           is named by no version.
  shared_clean_stop        SIGTERM stops the last broker with status 0.

Each broker run's figures are printed as "# figures ..." lines (produce
throughput, objects uploaded, their average size, read-back throughput),
and a summary at the end.

The full-size run of the issue (2 GiB):
    SLUICE_BIG=2048 TEST_TIMEOUT=3600 sh tests/integration/with-broker.sh \\
        tests/integration/test_shared_storage.py
(SEED=N repeats a run's records.)  Every wait is bounded and a watchdog ends
the run TEST_TIMEOUT - 15 s in, so a broker that does not do its part fails
the case that waited for it, with the broker's last log lines.

confluent-kafka 1.7.0 (Debian's) mishandles freed Messages with a null key
or value; no record here has either, and the program ends with os._exit().
"""

import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "s3"))

import report  # noqa: E402
from report import case, fail, note  # noqa: E402

PORT = os.environ.get("PORT")
BIN = os.environ.get("SLUICE_BIN")
DATA = os.environ.get("SLUICE_DATA")
PROPS = os.environ.get("SLUICE_PROPS")
LOG = os.environ.get("SLUICE_LOG")

MIB = 1 << 20
BIG_MIB = int(os.environ.get("SLUICE_BIG", "256"))
SEED = int(os.environ.get("SEED", str(time.time_ns() % (1 << 31))))
TIMEOUT = int(os.environ.get("TEST_TIMEOUT", "420"))
OUTAGE_S = float(os.environ.get("SLUICE_OUTAGE_S", "60"))   # shared_s3_slowdown
WATCHDOG_S = max(60, TIMEOUT - 15)
PARTITIONS = 12
WAL_BYTES = 64 * MIB
NODE = 0
READY_S = 20          # a (re)started broker accepts connections
SERVED_S = 30         # a restarted broker serves the topics of the bucket
UPLOAD_WAIT_S = 60 + BIG_MIB // 4   # the manifest catches up with the high watermarks
READ_IDLE_S = 30      # a read-back with no progress for this long has stalled
CRASH_RECORDS = 3000  # per phase of shared_kill_mid_upload
RUN_ID = "%d-%d" % (os.getpid(), int(time.time()))
BIG_TOPIC = "shared-big-" + RUN_ID
MARKER_TOPIC = "shared-marker-" + RUN_ID
CRASH_TOPIC = "shared-crash-" + RUN_ID
OUTAGE_TOPIC = "shared-outage-" + RUN_ID
GROUP = "shared-group-" + RUN_ID
TOPIC_CONFIG = {"retention.ms": "999999999"}

BROKERS = []   # every broker process started here
FIGURES = []   # lines for the summary
T_START = time.monotonic()


class BrokerError(Exception):
    pass


def kill_all():
    for proc in BROKERS:
        if proc.poll() is None:
            try:
                proc.kill()
                proc.wait(5)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass


def on_term(signum, frame):
    print("# stopped by signal %d" % signum, flush=True)
    kill_all()
    os._exit(1)


def log_line(text):
    with open(LOG, "a") as f:
        f.write("---- test_shared_storage: %s\n" % text)


def log_tail(n=15):
    try:
        with open(LOG, "rb") as f:
            f.seek(max(0, os.path.getsize(LOG) - 64 * 1024))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    return [ln for ln in lines if not ln.startswith("---- test_shared_storage")][-n:]


def bootstrap():
    return "127.0.0.1:%s" % PORT


# ---------------------------------------------------------------- records

# 16 MiB, so that the slices in one 1 MiB data block hardly ever repeat
# (a smaller pattern lets zstd shrink the "random" part to nothing).
PATTERN = random.Random(SEED).randbytes(16 << 20)


def key_of(n):
    return b"%d" % n


def value_of(n):
    """Record n's value: ~7 KiB, part pseudo-random (a slice of PATTERN,
    from SEED), part a run of one byte (so zstd has something to shrink:
    objects come out at about 60% of the records' size)."""
    rnd = 2048 + (n * 7919) % 4096
    fill = 2048 + (n * 31) % 2048
    start = (n * 104729) % (len(PATTERN) - rnd)
    return b"%d:%d|" % (n, SEED) + PATTERN[start:start + rnd] + bytes([n % 251]) * fill


def uvarint(d, p):
    shift = result = 0
    while True:
        b = d[p]
        p += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, p
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def varint(d, p):
    v, p = uvarint(d, p)
    return (v >> 1) ^ -(v & 1), p


def kafka_records(batch):
    """(offset, key, value) of each record of an uncompressed Kafka record
    batch (magic 2)."""
    base, = struct.unpack_from(">q", batch, 0)
    attrs, = struct.unpack_from(">h", batch, 21)
    if attrs & 7:
        raise ValueError("compressed batch (attributes %#x): the test produces none" % attrs)
    count, = struct.unpack_from(">i", batch, 57)
    p, out = 61, []
    for _ in range(count):
        length, p = varint(batch, p)
        end = p + length
        p += 1                                  # attributes
        _, p = varint(batch, p)                 # timestamp delta
        od, p = varint(batch, p)
        kl, p = varint(batch, p)
        key = None if kl < 0 else bytes(batch[p:p + kl])
        p += max(kl, 0)
        vl, p = varint(batch, p)
        val = None if vl < 0 else bytes(batch[p:p + vl])
        p = end
        out.append((base + od, key, val))
    if p != len(batch):
        raise ValueError("records end at %d of %d bytes" % (p, len(batch)))
    return out


# ---------------------------------------------------------------- S3 and the broker

class Broker:
    """One broker at a time on PORT, with the bucket of s3 and a WAL file."""

    def __init__(self, s3):
        self.s3 = s3
        self.proc = None
        self.starts = 0
        self.wal = None

    def objects_url(self):
        q = urllib.parse.urlencode({"region": self.s3.region, "endpoint": self.s3.fault_url,
                                    "path_style": "true"})
        return "s3://%s?%s" % (self.s3.bucket, q)

    def args(self, cmd):
        a = [BIN, cmd, "--config", PROPS,
             "--set", "node.id=%d" % NODE,
             "--set", "sluice.wal.device=" + self.wal,
             "--set", "sluice.wal.capacity.bytes=%d" % WAL_BYTES]
        if cmd == "serve":
            a += ["--set", "listeners=PLAINTEXT://127.0.0.1:%s" % PORT,
                  "--set", "num.partitions=1",
                  "--set", "sluice.objects.url=" + self.objects_url(),
                  "--set", "sluice.s3.access.key=" + self.s3.access_key,
                  "--set", "sluice.s3.secret.key=" + self.s3.secret_key,
                  "--set", "sluice.upload.interval.ms=500",
                  "--set", "sluice.upload.bytes=%d" % (8 * MIB),
                  "--set", "sluice.cache.bytes=%d" % (64 * MIB),
                  "--set", "sluice.tail.bytes=%d" % (16 * MIB),
                  "--set", "sluice.objects.gc.grace.ms=60000",
                  "--set", "sluice.objects.gc.interval.ms=2000",
                  "--set", "log.retention.check.interval.ms=1000"]
        return a

    def format(self, name):
        """A new, blank WAL file DATA/name."""
        self.wal = os.path.join(DATA, name)
        if os.path.exists(self.wal):
            os.unlink(self.wal)
        with open(LOG, "ab") as out:
            rc = subprocess.call(self.args("format"), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 timeout=60)
        if rc != 0:
            raise BrokerError("sluice format exited with status %d" % rc)

    def start(self, why):
        self.starts += 1
        log_line("start %d (%s) on %s" % (self.starts, why, os.path.basename(self.wal)))
        t0 = time.monotonic()
        with open(LOG, "ab") as out:
            self.proc = subprocess.Popen(self.args("serve"), stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        BROKERS.append(self.proc)
        deadline = t0 + READY_S
        while True:
            self.check_alive()
            try:
                socket.create_connection(("127.0.0.1", int(PORT)), timeout=0.5).close()
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BrokerError("broker (start %d) did not accept connections within %d s"
                                  % (self.starts, READY_S))
            time.sleep(0.05)
        return time.monotonic() - t0

    def check_alive(self):
        rc = self.proc.poll()
        if rc is not None:
            how = ("died of signal %d (%s)" % (-rc, signal.Signals(-rc).name) if rc < 0
                   else "exited with status %d" % rc)
            tail = log_tail(40)
            last = [ln for ln in tail if " ERROR " in ln] or tail[-1:] or ["(empty log)"]
            raise BrokerError("broker (start %d, pid %d) %s; its log says: %s"
                              % (self.starts, self.proc.pid, how, last[-1].strip()))

    def kill(self, why):
        self.check_alive()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        log_line("SIGKILL pid %d (start %d): %s" % (self.proc.pid, self.starts, why))

    def stop(self):
        """SIGTERM; the exit status, or None if it did not exit in 20 s."""
        self.check_alive()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            return None


def store_of(s3):
    import bucket
    return bucket.S3Store(s3.boto3(attempts=3), s3.bucket)


def load_bucket(s3):
    import bucket
    return bucket.load(store_of(s3))


def data_keys(s3):
    return dict(store_of(s3).list("data/"))


def wait_uploaded(s3, broker, topics, why):
    """Wait until the manifest's end of every partition of topics ({name:
    {p: high watermark}}) reaches the high watermark.  Returns the State."""
    import bucket
    deadline = time.monotonic() + UPLOAD_WAIT_S
    last = "no manifest version yet"
    while True:
        broker.check_alive()
        try:
            st = load_bucket(s3)
            behind = []
            for name, hws in topics.items():
                t = st.topic(name)
                if t is None:
                    behind.append("%s not in the manifest" % name)
                    continue
                for p, hw in hws.items():
                    if p >= len(t.parts):
                        behind.append("%s has %d partitions in the manifest" % (name, len(t.parts)))
                    elif t.parts[p].end < hw:
                        behind.append("%s/%d end %d < %d" % (name, p, t.parts[p].end, hw))
            if not behind:
                return st
            last = "version %d: %s" % (st.version, "; ".join(behind[:4]))
        except bucket.ManifestError as e:
            raise BrokerError("the bucket breaks the format: %s" % e)
        if time.monotonic() > deadline:
            raise BrokerError("%s: the manifest did not catch up within %d s (%s)" % (why, UPLOAD_WAIT_S, last))
        time.sleep(1)


# ---------------------------------------------------------------- Kafka

def admin():
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap(), "socket.timeout.ms": 10000})


def create_topic(name, partitions, config=None):
    from confluent_kafka.admin import NewTopic
    a = admin()
    fs = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
                         operation_timeout=10, request_timeout=15)
    fs[name].result(timeout=30)


def partitions_of(name):
    md = admin().list_topics(timeout=10)
    t = md.topics.get(name)
    if t is None or t.error is not None:
        return None
    return sorted(t.partitions)


def watermarks(topic, nparts):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": "shared-unused-" + RUN_ID,
                  "enable.auto.commit": False})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=15, cached=False)
                for p in range(nparts)}
    finally:
        c.close()


class Load:
    """Records n = first, first+1, ... to partition n % nparts of topic."""

    def __init__(self, topic, nparts, first=0):
        from confluent_kafka import Producer
        self.topic, self.nparts, self.first = topic, nparts, first
        # librdkafka's complaints once its broker is stopped go to a list, not stderr.
        self.logger, self.log = report.rdkafka_logger("rdkafka-%s-%d" % (topic, time.monotonic_ns()))
        self.p = Producer({
            "logger": self.logger,
            "bootstrap.servers": bootstrap(),
            "acks": "all",
            "enable.idempotence": False,
            "message.send.max.retries": 0,     # any broker error reaches the callback
            "compression.type": "none",
            "linger.ms": 10,
            "batch.size": 1000000,
            "queue.buffering.max.kbytes": 131072,
            "message.timeout.ms": 120000,
            "socket.timeout.ms": 30000,
        })
        self.n = first
        self.bytes = 0
        self.acked = {}      # n -> offset (partition is n % nparts)
        self.errors = []     # (n, error)

    def delivered(self, err, msg):
        n = int(msg.key())
        if err is not None:
            self.errors.append((n, str(err)))
        else:
            self.acked[n] = msg.offset()

    def produce(self, nbytes=None, count=None, broker=None):
        """Produce nbytes more of values, or count more records, then flush.
        Returns seconds taken."""
        t0 = time.monotonic()
        last_check = t0
        stop_bytes = None if nbytes is None else self.bytes + nbytes
        stop_n = None if count is None else self.n + count
        while (stop_bytes is None or self.bytes < stop_bytes) and (stop_n is None or self.n < stop_n):
            n = self.n
            v = value_of(n)
            try:
                self.p.produce(self.topic, key=key_of(n), value=v, partition=n % self.nparts,
                               on_delivery=self.delivered)
            except BufferError:
                self.p.poll(0.05)
                continue
            self.n += 1
            self.bytes += len(v)
            self.p.poll(0)
            if broker and time.monotonic() - last_check > 1:
                broker.check_alive()
                last_check = time.monotonic()
        deadline = time.monotonic() + 150
        while self.p.flush(1.0):
            if broker:
                broker.check_alive()
            if time.monotonic() > deadline:
                raise BrokerError("%d records still unacknowledged 150 s after the last produce"
                                  % len(self.p))
        return time.monotonic() - t0


class ReadBack:
    """Reads partitions from offset 0 to their high watermarks and checks
    every record against what was acknowledged."""

    def __init__(self, topic, nparts, hws, acked, broker, first=0, last=None):
        self.topic, self.nparts, self.hws, self.acked = topic, nparts, hws, acked
        self.broker = broker
        self.first = first                # record numbers first..last-1 were produced
        self.last = last
        self.problems = []
        self.records = 0
        self.bytes = 0
        self.seconds = 0.0

    def problem(self, text):
        if len(self.problems) < 10:
            self.problems.append(text)
        elif len(self.problems) == 10:
            self.problems.append("...")

    def run(self):
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": bootstrap(), "group.id": "shared-unused-" + RUN_ID,
                      "enable.auto.commit": False, "enable.auto.offset.store": False,
                      "auto.offset.reset": "error", "enable.partition.eof": False,
                      "fetch.wait.max.ms": 100, "check.crcs": True, "socket.timeout.ms": 30000,
                      "queued.max.messages.kbytes": 65536})
        nxt = {p: 0 for p in range(self.nparts)}
        seen = bytearray(max(0, (self.last or 0) - self.first))
        t0 = time.monotonic()
        try:
            c.assign([TopicPartition(self.topic, p, 0) for p in range(self.nparts) if self.hws[p] > 0])
            idle_until = time.monotonic() + READ_IDLE_S
            while any(nxt[p] < self.hws[p] for p in nxt):
                if time.monotonic() > idle_until:
                    self.problem("no record for %d s; stopped at %s, high watermarks %s"
                                 % (READ_IDLE_S, nxt, self.hws))
                    break
                msgs = c.consume(500, 1.0)
                if msgs:
                    idle_until = time.monotonic() + READ_IDLE_S
                else:
                    self.broker.check_alive()
                for m in msgs:
                    if m.error():
                        self.problem("consumer error: %s" % m.error())
                        continue
                    self.check(m, nxt, seen)
        finally:
            c.close()
        self.seconds = time.monotonic() - t0
        if self.last is not None:
            missing = [self.first + i for i, s in enumerate(seen)
                       if not s and (self.first + i) in self.acked]
            if missing:
                self.problem("%d acknowledged records never read, first %s" % (len(missing), missing[:5]))

    def check(self, m, nxt, seen):
        p, o = m.partition(), m.offset()
        if o != nxt[p]:
            self.problem("partition %d: offset %d read where %d was next (%s)"
                         % (p, o, nxt[p], "gap" if o > nxt[p] else "repeat"))
        nxt[p] = max(nxt[p], o + 1)
        if o >= self.hws[p]:
            return
        self.records += 1
        k, v = m.key(), m.value()
        self.bytes += len(v or b"")
        try:
            n = int(k)
        except (TypeError, ValueError):
            self.problem("%d/%d: key %r is no record number" % (p, o, k))
            return
        if n % self.nparts != p or n < self.first or (self.last is not None and n >= self.last):
            self.problem("%d/%d: record %d does not belong here" % (p, o, n))
            return
        if self.last is not None:
            if seen[n - self.first]:
                self.problem("record %d read twice (again at %d/%d)" % (n, p, o))
            seen[n - self.first] = 1
        if n in self.acked and self.acked[n] != o:
            self.problem("record %d at %d/%d, acknowledged at offset %d" % (n, p, o, self.acked[n]))
        if v != value_of(n):
            self.problem("%d/%d: record %d's value differs (%d bytes, want %d)"
                         % (p, o, n, len(v or b""), len(value_of(n))))

    def verdict(self):
        if self.problems:
            return "; ".join(self.problems)
        mbs = self.bytes / MIB / self.seconds if self.seconds else 0
        return ("", "%d records, %.1f MiB in %.1f s (%.1f MiB/s)"
                % (self.records, self.bytes / MIB, self.seconds, mbs))


def bucket_records(s3, st, topic, nparts, acked, first, last):
    """The bucket's view of topic: every batch of every partition through
    bucket.py, each record checked like ReadBack.check.  Returns (None or
    why, records)."""
    import bucket
    store = store_of(s3)
    rd = bucket.Reader(store, st)
    t = st.topic(topic)
    if t is None:
        return "topic %s not in the manifest" % topic, 0
    if len(t.parts) != nparts:
        return "%s has %d partitions in the manifest, want %d" % (topic, len(t.parts), nparts), 0
    seen = bytearray(last - first)
    n_rec = 0
    for p in range(nparts):
        part = t.parts[p]
        if part.log_start != 0:
            return "%s/%d: log start %d, want 0" % (topic, p, part.log_start), n_rec
        nxt = 0
        for b in bucket.batches(store, st, t.id, p, reader=rd):
            for o, k, v in kafka_records(b.data):
                if o != nxt:
                    return "%s/%d: offset %d in the bucket where %d was next" % (topic, p, o, nxt), n_rec
                nxt += 1
                n = int(k)
                if n % nparts != p or not first <= n < last:
                    return "%s/%d/%d: record %d does not belong here" % (topic, p, o, n), n_rec
                if seen[n - first]:
                    return "record %d twice in the bucket" % n, n_rec
                seen[n - first] = 1
                if n in acked and acked[n] != o:
                    return "record %d at %s/%d offset %d in the bucket, acknowledged at %d" % (
                        n, topic, p, o, acked[n]), n_rec
                if v != value_of(n):
                    return "%s/%d/%d: record %d's value differs in the bucket" % (topic, p, o, n), n_rec
                n_rec += 1
    missing = [first + i for i, s in enumerate(seen) if not s and first + i in acked]
    if missing:
        return "%d acknowledged records not in the bucket, first %s" % (len(missing), missing[:5]), n_rec
    return None, n_rec


def figures(label, before_keys, after_keys, extra=""):
    new = {k: s for k, s in after_keys.items() if k not in before_keys}
    count = len(new)
    avg = sum(new.values()) / count if count else 0
    line = "%s: %d objects uploaded, average %.2f MiB%s" % (label, count, avg / MIB, extra)
    note("figures " + line)
    FIGURES.append(line)


# ---------------------------------------------------------------- the cases

class Run:
    def __init__(self, s3):
        self.s3 = s3
        self.broker = Broker(s3)
        self.big = None          # Load of BIG_TOPIC
        self.big_hws = None
        self.big_total = 0

    # (a)
    def big_produce(self):
        b = self.broker
        b.format("wal1")
        secs = b.start("first start, empty bucket")
        note("broker up in %.1f s" % secs)
        create_topic(BIG_TOPIC, PARTITIONS, TOPIC_CONFIG)
        if partitions_of(BIG_TOPIC) != list(range(PARTITIONS)):
            return "topic %s: partitions %s" % (BIG_TOPIC, partitions_of(BIG_TOPIC))
        self.keys0 = data_keys(self.s3)
        self.big = Load(BIG_TOPIC, PARTITIONS)
        secs = self.big.produce(nbytes=BIG_MIB * MIB, broker=b)
        self.big_total = self.big.n
        mbs = self.big.bytes / MIB / secs
        self.produce_line = "%.1f MiB in %d records in %.1f s: %.1f MiB/s" % (self.big.bytes / MIB, self.big.n,
                                                                             secs, mbs)
        note("figures run 1 produce: " + self.produce_line)
        FIGURES.append("run 1 produce (64 MiB WAL): " + self.produce_line)
        if self.big.errors:
            kinds = {}
            for _, e in self.big.errors:
                kinds[e] = kinds.get(e, 0) + 1
            return "%d of %d records failed (the WAL overflowed?): %s" % (len(self.big.errors), self.big.n, kinds)
        if len(self.big.acked) != self.big.n:
            return "%d records acknowledged of %d" % (len(self.big.acked), self.big.n)
        return ("", self.produce_line)

    def big_read_back(self):
        self.big_hws = {p: hi for p, (lo, hi) in watermarks(BIG_TOPIC, PARTITIONS).items()}
        rb = ReadBack(BIG_TOPIC, PARTITIONS, self.big_hws, self.big.acked, self.broker, 0, self.big_total)
        rb.run()
        v = rb.verdict()
        if isinstance(v, tuple):
            note("figures run 1 read-back from offset 0: " + v[1])
            FIGURES.append("run 1 read-back from offset 0: " + v[1])
        return v

    def big_in_bucket(self):
        import bucket
        import objreader
        if self.big_hws is None:
            return "no high watermarks (the read-back did not run)"
        t0 = time.monotonic()
        st = wait_uploaded(self.s3, self.broker, {BIG_TOPIC: self.big_hws}, "after the big produce")
        lag = time.monotonic() - t0
        store = store_of(self.s3)
        _, h = bucket.check_history(store)
        lst = bucket.check_objects(store, st)
        if lst["missing"] or lst["wrong_size"]:
            return "objects missing %s, sizes differ %s" % (lst["missing"][:3], lst["wrong_size"][:3])
        for o in st.objects.values():
            k = objreader.parse_key(o.key)    # raises for another form
            if k.node != NODE:
                return "object %s written by node %d, the broker is node %d" % (o.key, k.node, NODE)
        t = st.topic(BIG_TOPIC)
        if t.configs.get("retention.ms") != TOPIC_CONFIG["retention.ms"]:
            return "topic configs in the manifest: %r, want retention.ms=%s" % (t.configs, TOPIC_CONFIG["retention.ms"])
        t1 = time.monotonic()
        why, n = bucket_records(self.s3, st, BIG_TOPIC, PARTITIONS, self.big.acked, 0, self.big_total)
        if why:
            return why
        figures("run 1", self.keys0, data_keys(self.s3),
                ", %d manifest versions (newest checkpoints %s); after the read-back, %.1f s more until the "
                "manifest named everything" % (h["versions"], h["checkpoints"][-3:], lag))
        return ("", "%d records in %d objects read by bucket.py in %.1f s; %d versions"
                % (n, len(st.objects), time.monotonic() - t1, h["versions"]))

    # (b)
    def blank_wal_restart(self):
        from confluent_kafka import Consumer, TopicPartition
        if self.big_hws is None:
            return "nothing to restart with (the produce did not finish)"
        b = self.broker
        commit_at = max(1, self.big_hws[3] // 2)
        c = Consumer({"bootstrap.servers": bootstrap(), "group.id": GROUP, "enable.auto.commit": False})
        try:
            res = c.commit(offsets=[TopicPartition(BIG_TOPIC, 3, commit_at)], asynchronous=False)
            errs = [str(tp.error) for tp in res if tp.error is not None]
            if errs:
                return "commit answered %s" % errs
        finally:
            c.close()
        create_topic(MARKER_TOPIC, 1)
        marker = Load(MARKER_TOPIC, 1, first=10 ** 9)
        marker.produce(count=1, broker=b)
        if marker.errors or len(marker.acked) != 1:
            return "the marker record: %s" % (marker.errors or "not acknowledged")
        st = wait_uploaded(self.s3, b, {MARKER_TOPIC: {0: 1}, BIG_TOPIC: self.big_hws}, "before the restart")
        deadline = time.monotonic() + UPLOAD_WAIT_S
        while (GROUP, BIG_TOPIC, 3) not in st.offsets:
            if time.monotonic() > deadline:
                return "the committed offset of %s is not in the manifest %d s later (offsets there: %s)" % (
                    GROUP, UPLOAD_WAIT_S, sorted(st.offsets)[:5])
            time.sleep(1)
            st = load_bucket(self.s3)
        if st.offsets[(GROUP, BIG_TOPIC, 3)].offset != commit_at:
            return "the manifest has offset %d for %s, committed %d" % (
                st.offsets[(GROUP, BIG_TOPIC, 3)].offset, GROUP, commit_at)
        epoch1 = st.epoch
        rc = b.stop()
        if rc != 0:
            return "the first broker's exit status after SIGTERM: %s, want 0" % rc
        b.format("wal2")
        t0 = time.monotonic()
        secs = b.start("blank WAL, same bucket")
        deadline = time.monotonic() + SERVED_S
        while partitions_of(BIG_TOPIC) is None:
            b.check_alive()
            if time.monotonic() > deadline:
                return "%s not served %d s after a restart on a blank WAL" % (BIG_TOPIC, SERVED_S)
            time.sleep(0.5)
        ready = time.monotonic() - t0
        for name, n in ((BIG_TOPIC, PARTITIONS), (MARKER_TOPIC, 1)):
            if partitions_of(name) != list(range(n)):
                return "%s: partitions %s after the restart, want %d" % (name, partitions_of(name), n)
        hws = watermarks(BIG_TOPIC, PARTITIONS)
        want = {p: (0, hi) for p, hi in self.big_hws.items()}
        if hws != want:
            return "watermarks after the restart %s, before %s" % (hws, want)
        if watermarks(MARKER_TOPIC, 1) != {0: (0, 1)}:
            return "marker topic watermarks %s, want (0, 1)" % watermarks(MARKER_TOPIC, 1)
        c = Consumer({"bootstrap.servers": bootstrap(), "group.id": GROUP, "enable.auto.commit": False})
        try:
            got = c.committed([TopicPartition(BIG_TOPIC, 3)], timeout=15)
        finally:
            c.close()
        if got[0].error is not None or got[0].offset != commit_at:
            return "committed offset after the restart: %s (error %s), want %d" % (got[0].offset, got[0].error,
                                                                                  commit_at)
        rb = ReadBack(MARKER_TOPIC, 1, {0: 1}, marker.acked, b, 10 ** 9, 10 ** 9 + 1)
        rb.run()
        if rb.problems:
            return "the marker record: %s" % "; ".join(rb.problems)
        rb = ReadBack(BIG_TOPIC, PARTITIONS, self.big_hws, self.big.acked, b, 0, self.big_total)
        rb.run()
        v = rb.verdict()
        if not isinstance(v, tuple):
            return "reading back after the restart: %s" % v
        note("figures run 2 (blank WAL) read-back from the bucket: " + v[1])
        FIGURES.append("run 2 (blank WAL) up in %.1f s, topics served %.1f s after start; read-back: %s"
                       % (secs, ready, v[1]))
        deadline = time.monotonic() + SERVED_S
        while load_bucket(self.s3).epoch <= epoch1:
            b.check_alive()
            if time.monotonic() > deadline:
                return "the restarted broker wrote no manifest version with an epoch above %d in %d s" % (
                    epoch1, SERVED_S)
            time.sleep(1)
        return ("", "%d records, watermarks and the committed offset %d served from the bucket"
                % (rb.records, commit_at))

    # (c)
    # (d)
    def s3_slowdown(self):
        """S3 answers 503 SlowDown to everything for OUTAGE_S while records
        keep coming: produce goes on into the WAL, fails only with a
        retriable error once the WAL is full, and everything acknowledged is
        uploaded and read back exactly once after S3 returns."""
        b = self.broker
        f = self.s3.fault()
        create_topic(OUTAGE_TOPIC, 4)
        load = Load(OUTAGE_TOPIC, 4, first=0)
        f.reset()
        f.set_default({"do": "slowdown"})
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < OUTAGE_S:
                load.produce(count=100, broker=b)
                time.sleep(0.2)
        finally:
            f.set_default({"do": "pass"})
        slowdowns = sum(1 for r in f.requests() if r["action"] == "slowdown")
        during = len(load.acked)
        kinds = sorted({e for _, e in load.errors})
        bad = [e for e in kinds if "REQUEST_TIMED_OUT" not in e and "TIMED_OUT" not in e]
        if bad:
            return "errors other than timeouts during the outage: %s" % bad[:3]
        if slowdowns == 0:
            return "the fault server answered no request with 503 during the outage"
        # S3 is back: produce works again without errors once the WAL is trimmed.
        t1 = time.monotonic()
        errs = len(load.errors)
        load.produce(count=400, broker=b)
        if len(load.errors) != errs:
            return "after the outage: %d produce errors (%s)" % (len(load.errors) - errs,
                                                                 load.errors[errs:][:2])
        recover = time.monotonic() - t1
        hws = {p: hi for p, (lo, hi) in watermarks(OUTAGE_TOPIC, 4).items()}
        st = wait_uploaded(self.s3, b, {OUTAGE_TOPIC: hws}, "after the outage")
        rb = ReadBack(OUTAGE_TOPIC, 4, hws, load.acked, b, 0, load.n)
        rb.run()
        v = rb.verdict()
        if not isinstance(v, tuple):
            return "after the outage: %s" % v
        if rb.records != sum(hws.values()) or rb.records < len(load.acked):
            return "%d records read, high watermarks %s, %d acknowledged" % (
                rb.records, hws, len(load.acked))
        why, n = bucket_records(self.s3, st, OUTAGE_TOPIC, 4, load.acked, 0, load.n)
        if why:
            return "in the bucket: %s" % why
        line = ("%.0f s of 503 SlowDown (%d requests answered so): %d records acknowledged during it, "
                "%d refused with a timeout while the WAL was full; 400 more acknowledged %.1f s after; "
                "%d records read back once, %d found in the bucket"
                % (OUTAGE_S, slowdowns, during, len(load.errors), recover, rb.records, n))
        FIGURES.append(line)
        return ("", line)

    def kill_mid_upload(self):
        import bucket
        b = self.broker
        f = self.s3.fault()
        bkt = self.s3.bucket
        create_topic(CRASH_TOPIC, 4)
        # Nothing else waiting to go up: the next PUTs are for this case's records.
        wait_uploaded(self.s3, b, {CRASH_TOPIC: {}}, "before the crash phases")
        load = Load(CRASH_TOPIC, 4, first=0)
        keys0 = data_keys(self.s3)
        orphans = []
        for phase, path in (("data object PUT", "/%s/data/" % bkt), ("manifest version PUT", "/%s/manifest/" % bkt)):
            f.reset()
            f.push({"do": "hang", "seconds": 120, "method": "PUT", "path": path})
            before = len(load.acked)
            load.produce(count=CRASH_RECORDS, broker=b)
            if load.errors or len(load.acked) != before + CRASH_RECORDS:
                return "%s phase: %d records acknowledged of %d, failures: %s" % (
                    phase, len(load.acked) - before, CRASH_RECORDS, load.errors[:3])
            deadline = time.monotonic() + 30
            while True:
                held = [r for r in f.requests() if r["action"] == "hang"]
                if held:
                    break
                if time.monotonic() > deadline:
                    return "%s phase: no %s reached the fault server within 30 s of the last ack" % (phase, phase)
                b.check_alive()
                time.sleep(0.1)
            if phase == "manifest version PUT":
                orphans = [r["path"][len(bkt) + 2:] for r in f.requests()
                           if r["method"] == "PUT" and r["action"] == "pass"
                           and r["path"].startswith("/%s/data/" % bkt)]
            b.kill("while the fault server holds a %s (%s)" % (phase, held[0]["path"]))
            note("killed while a %s was held: %s" % (phase, held[0]["path"]))
            f.reset()
            secs = b.start("old WAL after a kill during a %s" % phase)
            note("restarted on the old WAL in %.1f s" % secs)
            acked_hws = {p: 0 for p in range(4)}
            for n, o in load.acked.items():
                acked_hws[n % 4] = max(acked_hws[n % 4], o + 1)
            # Everything acknowledged so far is up again before the next phase holds a PUT.
            wait_uploaded(self.s3, b, {CRASH_TOPIC: acked_hws}, "after the restart (%s)" % phase)
        hws = {p: hi for p, (lo, hi) in watermarks(CRASH_TOPIC, 4).items()}
        rb = ReadBack(CRASH_TOPIC, 4, hws, load.acked, b, 0, load.n)
        rb.run()
        v = rb.verdict()
        if not isinstance(v, tuple):
            return "after the kills: %s" % v
        if rb.records != len(load.acked) or sum(hws.values()) != len(load.acked):
            return "%d records read, high watermarks %s, %d records acknowledged" % (rb.records, hws, len(load.acked))
        st = wait_uploaded(self.s3, b, {CRASH_TOPIC: hws}, "after the kills")
        why, n = bucket_records(self.s3, st, CRASH_TOPIC, 4, load.acked, 0, load.n)
        if why:
            return "in the bucket: %s" % why
        named = {o.key for o in st.objects.values()}
        adopted = [k for k in orphans if k in named]
        _, h = bucket.check_history(store_of(self.s3))
        figures("runs 3-4 (kills mid-upload)", keys0, data_keys(self.s3),
                ", %d records in 2 phases, %d manifest versions in all" % (load.n, h["versions"]))
        return ("", "%d acknowledged records read exactly once, from the broker and from the bucket; "
                "%d object(s) uploaded before the killed commit, %d of them named since"
                % (n, len(orphans), len(adopted)))

    def clean_stop(self):
        rc = self.broker.stop()
        if rc is None:
            return "the broker did not exit within 20 s of SIGTERM"
        if rc != 0:
            return "exit status %d after SIGTERM, want 0" % rc
        return None


def main():
    if not (PORT and BIN and DATA and PROPS and LOG):
        print("PORT, SLUICE_BIN, SLUICE_DATA, SLUICE_PROPS and SLUICE_LOG must be set; "
              "run through tests/integration/with-broker.sh", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    report.watchdog("shared_storage", WATCHDOG_S, kill_all)
    note("SLUICE_BIG=%d MiB, SEED=%d, watchdog %d s" % (BIG_MIB, SEED, WATCHDOG_S))
    from env import S3Env
    s3 = S3Env("test_shared_storage", fault="")
    try:
        s3.start()
        run = Run(s3)
        steps = [("shared_big_produce", run.big_produce), ("shared_big_read_back", run.big_read_back),
                 ("shared_big_in_bucket", run.big_in_bucket), ("shared_blank_wal_restart", run.blank_wal_restart),
                 ("shared_s3_slowdown", run.s3_slowdown),
                 ("shared_kill_mid_upload", run.kill_mid_upload), ("shared_clean_stop", run.clean_stop)]
        for i, (name, fn) in enumerate(steps):
            try:
                passed = case(name, fn)
            except BrokerError as e:     # case() reports other exceptions itself
                fail(name, str(e))
                passed = False
            if not passed and (i == 0 or run.broker.proc is None or run.broker.proc.poll() is not None):
                for later, _ in steps[i + 1:]:
                    fail(later, "not run: %s did not leave a running broker" % name)
                break
    except Exception as e:  # noqa: BLE001 - any error fails the run
        traceback.print_exc(file=sys.stderr)
        fail("shared_error", "%s: %s" % (type(e).__name__, e))
    finally:
        kill_all()
        s3.stop()
    if FIGURES:
        note("summary of the figures (SLUICE_BIG=%d MiB):" % BIG_MIB)
        for line in FIGURES:
            note("  " + line)
    note("%.1f s in all, %d broker starts" % (time.monotonic() - T_START, len(BROKERS)))
    return report.status()


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
