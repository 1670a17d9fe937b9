"""shared_env.py - what the shared-storage tests (test_shared_storage.py,
test_shared_faults.py) have in common: brokers of their own on $PORT in
front of the S3 of tests/s3/env.py, numbered records whose values are
derived from the record number and SEED, producing and reading them back
with confluent-kafka, and checking a bucket's records with the independent
reader tests/s3/bucket.py.  Not a test itself: tests/run.sh runs only the
test_* files of this directory.

Both tests are "# harness: self" tests (tests/integration/with-broker.sh):
PORT, SLUICE_BIN, SLUICE_DATA, SLUICE_PROPS and SLUICE_LOG come from the
environment, every broker started here appends its output to SLUICE_LOG,
and kill_all() kills every one of them on the way out.

A test imports this module with tests/integration and tests/s3 on sys.path
(see the top of either test), builds its cases on Broker, Load, ReadBack and
bucket_records, and ends with `return shared_env.main(...)`, which reports
through report.py ("ok NAME" / "FAIL NAME: why" lines).
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

import report
from report import case, fail, note

PORT = os.environ.get("PORT")
BIN = os.environ.get("SLUICE_BIN")
DATA = os.environ.get("SLUICE_DATA")
PROPS = os.environ.get("SLUICE_PROPS")
LOG = os.environ.get("SLUICE_LOG")
TEST = os.path.splitext(os.path.basename(sys.argv[0] or "shared"))[0]

MIB = 1 << 20
SEED = int(os.environ.get("SEED", str(time.time_ns() % (1 << 31))))
WAL_BYTES = 64 * MIB
NODE = 0
READY_S = 20          # a (re)started broker with S3 at hand accepts connections
READ_IDLE_S = 30      # a read-back with no progress for this long has stalled
RUN_ID = "%d-%d" % (os.getpid(), int(time.time()))

BROKERS = []   # every broker process started here
FIGURES = []   # lines for the summary
T_START = time.monotonic()


class BrokerError(Exception):
    pass


def kill_all():
    report.kill_all(BROKERS)


def figure(line):
    """A "# figures ..." line now and a line of the summary at the end."""
    note("figures " + line)
    FIGURES.append(line)


# ---------------------------------------------------------------- the broker log

def log_line(text):
    with open(LOG, "a") as f:
        f.write("---- %s: %s\n" % (TEST, text))


def log_size():
    try:
        return os.path.getsize(LOG)
    except OSError:
        return 0


def log_since(mark):
    """The brokers' log lines written since log_size() returned mark (the
    test's own "----" lines left out)."""
    try:
        with open(LOG, "rb") as f:
            f.seek(mark)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [ln for ln in text.splitlines() if not ln.startswith("---- %s" % TEST)]


def log_tail(n=15):
    return log_since(max(0, log_size() - 64 * 1024))[-n:]


def bootstrap():
    return "127.0.0.1:%s" % PORT


def port_open():
    """Whether something accepts connections on PORT."""
    try:
        socket.create_connection(("127.0.0.1", int(PORT)), timeout=0.5).close()
        return True
    except OSError:
        return False


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

def objects_url(s3, prefix="", endpoint=None):
    """sluice.objects.url for s3's bucket (under prefix, if any), through
    its fault server unless endpoint names another."""
    q = urllib.parse.urlencode({"region": s3.region, "endpoint": endpoint or s3.fault_url,
                                "path_style": "true"})
    return "s3://%s%s?%s" % (s3.bucket, "/" + prefix if prefix else "", q)


class Broker:
    """One broker at a time on PORT, with a WAL file, the objects at url
    (objects_url(s3) by default) and settings {key: value} of its own."""

    def __init__(self, s3, settings, url=None):
        self.s3 = s3
        self.url = url or objects_url(s3)
        self.settings = settings
        self.proc = None
        self.starts = 0
        self.wal = None

    def args(self, cmd):
        a = [BIN, cmd, "--config", PROPS,
             "--set", "node.id=%d" % NODE,
             "--set", "sluice.wal.device=" + self.wal,
             "--set", "sluice.wal.capacity.bytes=%d" % WAL_BYTES]
        if cmd == "serve":
            a += ["--set", "listeners=PLAINTEXT://127.0.0.1:%s" % PORT,
                  "--set", "num.partitions=1",
                  "--set", "sluice.objects.url=" + self.url,
                  "--set", "sluice.s3.access.key=" + self.s3.access_key,
                  "--set", "sluice.s3.secret.key=" + self.s3.secret_key]
            for k, v in self.settings.items():
                a += ["--set", "%s=%s" % (k, v)]
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

    def spawn(self, why):
        """Start the broker; do not wait for it."""
        self.starts += 1
        log_line("start %d (%s) on %s" % (self.starts, why, os.path.basename(self.wal)))
        with open(LOG, "ab") as out:
            self.proc = subprocess.Popen(self.args("serve"), stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        BROKERS.append(self.proc)

    def start(self, why):
        """Start the broker and wait until it accepts connections; the seconds that took."""
        t0 = time.monotonic()
        self.spawn(why)
        self.wait_ready(READY_S)
        return time.monotonic() - t0

    def wait_ready(self, seconds):
        deadline = time.monotonic() + seconds
        while not port_open():
            self.check_alive()
            if time.monotonic() > deadline:
                raise BrokerError("broker (start %d) did not accept connections within %d s"
                                  % (self.starts, seconds))
            time.sleep(0.05)

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

    def stop(self, seconds=20):
        """SIGTERM; the exit status, or None if it did not exit in seconds."""
        self.check_alive()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return None


def store_of(s3, prefix=""):
    import bucket
    return bucket.S3Store(s3.boto3(attempts=3), s3.bucket, prefix + "/" if prefix else "")


def load_bucket(s3, prefix=""):
    import bucket
    return bucket.load(store_of(s3, prefix))


def data_keys(s3, prefix=""):
    return dict(store_of(s3, prefix).list("data/"))


def wait_uploaded(s3, broker, topics, why, seconds, prefix=""):
    """Wait up to seconds until the manifest's end of every partition of
    topics ({name: {p: high watermark}}) reaches the high watermark.
    Returns the State."""
    import bucket
    deadline = time.monotonic() + seconds
    last = "no manifest version yet"
    while True:
        broker.check_alive()
        try:
            st = load_bucket(s3, prefix)
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
            raise BrokerError("%s: the manifest did not catch up within %d s (%s)" % (why, seconds, last))
        time.sleep(0.5)


def bucket_records(s3, st, topic, nparts, acked, first, last, prefix=""):
    """The bucket's view of topic: every batch of every partition through
    bucket.py, each record checked like ReadBack.check.  Returns (None or
    why, records)."""
    import bucket
    store = store_of(s3, prefix)
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


# ---------------------------------------------------------------- Kafka

def admin():
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap(), "socket.timeout.ms": 10000})


def create_topic(name, partitions, config=None):
    from confluent_kafka.admin import NewTopic
    a = admin()     # kept until the result is in: a freed client fails its futures
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
    """{partition: (low, high)}."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": "shared-unused-" + RUN_ID,
                  "enable.auto.commit": False})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=15, cached=False)
                for p in range(nparts)}
    finally:
        c.close()


class Load:
    """Records n = first, first+1, ... to partition n % nparts of topic,
    acks=all, never retried by the client: any broker error reaches the
    delivery callback, and no record is ever written twice."""

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

    def send(self, nbytes=None, count=None, broker=None):
        """Queue nbytes more of values, or count more records (polling
        while the client's queue is full)."""
        last_check = time.monotonic()
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

    def flush(self, broker=None, seconds=150):
        """Wait until every record queued is acknowledged or failed."""
        deadline = time.monotonic() + seconds
        while self.p.flush(1.0):
            if broker:
                broker.check_alive()
            if time.monotonic() > deadline:
                raise BrokerError("%d records still unacknowledged %d s after the last produce"
                                  % (len(self.p), seconds))

    def produce(self, nbytes=None, count=None, broker=None):
        """Produce nbytes more of values, or count more records, then flush.
        Returns seconds taken."""
        t0 = time.monotonic()
        self.send(nbytes, count, broker)
        self.flush(broker)
        return time.monotonic() - t0

    def hws(self):
        """{p: the highest acknowledged offset + 1}."""
        out = {p: 0 for p in range(self.nparts)}
        for n, o in self.acked.items():
            p = n % self.nparts
            out[p] = max(out[p], o + 1)
        return out


class ReadBack:
    """Reads partitions from offset 0 to their high watermarks and checks
    every record against what was acknowledged: offsets dense, no record
    twice, each acknowledged one where it was acknowledged, values byte for
    byte."""

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
        """The problems found, or ("", a summary) when there were none."""
        if self.problems:
            return "; ".join(self.problems)
        mbs = self.bytes / MIB / self.seconds if self.seconds else 0
        return ("", "%d records, %.1f MiB in %.1f s (%.1f MiB/s)"
                % (self.records, self.bytes / MIB, self.seconds, mbs))


def read_back(topic, nparts, load, broker):
    """Read the whole topic from offset 0 to its high watermarks and check
    it against load: every acknowledged record exactly once, offsets dense,
    nothing else below the high watermarks.  Returns (why or None, the
    ReadBack, the high watermarks)."""
    hws = {p: hi for p, (lo, hi) in watermarks(topic, nparts).items()}
    rb = ReadBack(topic, nparts, hws, load.acked, broker, load.first, load.n)
    rb.run()
    v = rb.verdict()
    if not isinstance(v, tuple):
        return v, rb, hws
    if rb.records != sum(hws.values()) or rb.records < len(load.acked):
        return ("%d records read, high watermarks %s, %d acknowledged" % (rb.records, hws, len(load.acked)),
                rb, hws)
    return None, rb, hws


# ---------------------------------------------------------------- running the cases

def main(name, headline, make_steps, watchdog_s, chained=None, summary="summary of the figures:"):
    """Run a test's cases against a fresh S3Env (with a fault server) and
    report them.  make_steps(s3) gives [(case name, fn)]; each fn returns as
    report.case() wants, or raises BrokerError.  chained: None when the
    cases stand alone (each starts its own broker, and whatever a case
    leaves running is killed after it); else chained(i) says whether the
    cases after a failed case i can still run (when not, each is reported
    failed, not run).  Returns the exit status."""
    if not (PORT and BIN and DATA and PROPS and LOG):
        print("PORT, SLUICE_BIN, SLUICE_DATA, SLUICE_PROPS and SLUICE_LOG must be set; "
              "run through tests/integration/with-broker.sh", file=sys.stderr)
        return 2
    report.stop_on_signals(kill_all)
    report.watchdog(name, watchdog_s, kill_all)
    note(headline)
    from env import S3Env
    s3 = S3Env(TEST, fault="")
    try:
        s3.start()
        steps = make_steps(s3)
        for i, (case_name, fn) in enumerate(steps):
            t0 = time.monotonic()
            try:
                passed = case(case_name, fn)
            except BrokerError as e:     # case() reports other exceptions itself
                fail(case_name, str(e))
                passed = False
            if chained is None:
                note("%s: %.1f s" % (case_name, time.monotonic() - t0))
                kill_all()
            elif not passed and (i == 0 or not chained(i)):
                for later, _ in steps[i + 1:]:
                    fail(later, "not run: %s did not leave a running broker" % case_name)
                break
    except Exception as e:  # noqa: BLE001 - any error fails the run
        traceback.print_exc(file=sys.stderr)
        fail(name + "_error", "%s: %s" % (type(e).__name__, e))
    finally:
        kill_all()
        s3.stop()
    if FIGURES:
        note(summary)
        for line in FIGURES:
            note("  " + line)
    note("%.1f s in all, %d broker starts" % (time.monotonic() - T_START, len(BROKERS)))
    return report.status()


def exit_with(status):
    """End the program without the interpreter's teardown: confluent-kafka
    1.7.0 (Debian's) mishandles freed Messages with a null key or value."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
