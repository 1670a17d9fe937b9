# harness: self
"""tests/integration/test_crash.py - acknowledged data survives SIGKILL.

with-broker.sh starts no broker for this test (the first line): it runs its
own, on $PORT, with a WAL formatted in $SLUICE_DATA, and appends their output
to $SLUICE_LOG.

The promise under test: a Produce with acks=all is answered only once its
batches are durable in the WAL, so after a crash and a restart every
acknowledged record is served again at the offset it was acknowledged with.

crash_*: a confluent-kafka producer (acks=all, no idempotence, retries
across restarts) writes numbered records at a steady rate to a 4-partition
topic while the broker is killed with SIGKILL KILLS times, each a random
0.3-1.5 s after the restarted broker acknowledged its first write, and
restarted each time on the same WAL.  Then a consumer reads every partition
from offset 0 to its high watermark and checks that the offsets are dense
(each of 0..hw-1 exactly once), that every acknowledged record is at its
acknowledged offset with key, value and headers byte for byte as produced,
and that every record read is one the producer sent.  Records written more
than once (a batch retried after a kill that had already reached the WAL)
are allowed, since idempotence is off, and counted.

crash_create_topics_survives_kill: SIGKILL right after CreateTopics answered;
after the restart the topic is listed with its 3 partitions (confluent-kafka
1.7 does not expose topic ids, so the id is not compared), and the first
topic's watermarks are unchanged by that restart.  Last, the broker must stop
with status 0 on SIGTERM, as with-broker.sh requires of other tests' brokers.

Prints "ok NAME" or "FAIL NAME: reason" per case; exits 1 on any failure.
A lost record is reported with its partition, offset, number and what was
found there, and the brokers' log around the kill that lost it.  Every wait
is bounded, a watchdog ends the run after WATCHDOG_S, and every broker
started here is killed on the way out.  The kill delays come from
CRASH_SEED (printed at the start; set it to repeat them).

confluent-kafka 1.7.0 (Debian's) drops a reference to None each time a
Message with a null key or value is freed; enough of them and CPython
aborts ("none_dealloc").  So every Message is kept alive in KEEP, and the
program ends with os._exit() instead of running the interpreter's teardown.
"""

import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
import traceback

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
import report
from report import case, fail, note, ok, rdkafka_logger

PORT = os.environ.get("PORT")
BIN = os.environ.get("SLUICE_BIN")
DATA = os.environ.get("SLUICE_DATA")
PROPS = os.environ.get("SLUICE_PROPS")
LOG = os.environ.get("SLUICE_LOG")

WATCHDOG_S = 90
KILLS = 5
PARTITIONS = 4
RATE = int(os.environ.get("CRASH_RATE", "6000"))  # records per second
WAL_CAPACITY = 268435456
READY_S = 10          # for a (re)started broker to accept connections
FIRST_ACK_S = 20      # for a restarted broker to acknowledge a write
FLUSH_S = 40
RUN_ID = "%d-%d" % (os.getpid(), int(time.time()))
SEED = int(os.environ.get("CRASH_SEED", str(time.time_ns() % (1 << 32))))

KEEP = []      # every Message object, never freed (see above)
BROKERS = []   # every broker process started here


def kill_all():
    report.kill_all(BROKERS)


def log_line(text):
    """A marker line in the brokers' log, to find the kills in it."""
    with open(LOG, "a") as f:
        f.write("---- test_crash: %s\n" % text)


def log_size():
    try:
        return os.path.getsize(LOG)
    except OSError:
        return 0


def log_text(start=0):
    with open(LOG, "rb") as f:
        f.seek(start)
        return f.read().decode("utf-8", "replace")


def log_around(marker, before=6, after=6):
    """Lines of the log around the first line containing marker."""
    lines = log_text().splitlines()
    for i, line in enumerate(lines):
        if marker in line:
            return lines[max(0, i - before):i + after + 1]
    return []


class BrokerError(Exception):
    pass


class Broker:
    """One broker at a time on PORT, on the WAL in DATA."""

    def __init__(self):
        self.wal = os.path.join(DATA, "wal")
        self.proc = None
        self.starts = 0      # broker processes started
        self.kills = 0       # SIGKILLs sent
        self.recovery = []   # (start number, log text of that start) for restarts

    def args(self, cmd):
        a = [BIN, cmd, "--config", PROPS,
             "--set", "sluice.wal.device=" + self.wal,
             "--set", "sluice.wal.capacity.bytes=%d" % WAL_CAPACITY]
        if cmd == "serve":
            a += ["--set", "listeners=PLAINTEXT://127.0.0.1:%s" % PORT,
                  "--set", "num.partitions=%d" % PARTITIONS]
        return a

    def format(self):
        with open(LOG, "ab") as out:
            rc = subprocess.call(self.args("format"), stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=out, timeout=30)
        if rc != 0:
            raise BrokerError("sluice format exited with status %d" % rc)

    def start(self, idle=None):
        """Start the broker and wait until it accepts connections, calling
        idle() (the producer's pump) while waiting."""
        self.starts += 1
        log_line("start %d" % self.starts)
        mark = log_size()
        with open(LOG, "ab") as out:
            self.proc = subprocess.Popen(self.args("serve"), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=out)
        BROKERS.append(self.proc)
        deadline = time.monotonic() + READY_S
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
            if idle:
                idle(0.02)
            else:
                time.sleep(0.02)
        if self.starts > 1:
            self.recovery.append((self.starts, log_text(mark)))

    def check_alive(self):
        """None while the broker runs; BrokerError once it has exited."""
        rc = self.proc.poll()
        if rc is not None:
            how = ("died of signal %d (%s)" % (-rc, signal.Signals(-rc).name) if rc < 0
                   else "exited with status %d" % rc)
            raise BrokerError("broker (start %d, pid %d) %s by itself"
                              % (self.starts, self.proc.pid, how))

    def kill(self, why):
        self.check_alive()
        self.kills += 1
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        log_line("SIGKILL pid %d (kill %d, start %d): %s"
                 % (self.proc.pid, self.kills, self.starts, why))

    def stop(self):
        """SIGTERM; returns the exit status, or None if it did not exit in 10 s."""
        self.check_alive()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            return None


# ---- the records ----

PATTERN = random.Random(20240531).randbytes(8192)


def key_of(n):
    return b"k%d" % n


def value_of(n):
    """Deterministic, of varying length (0..~1.2 KB), some empty, some null."""
    if n % 17 == 0:
        return None
    if n % 11 == 0:
        return b""
    start = (n * 131) % 4096
    return b"%d|" % n + PATTERN[start:start + (n * 7919) % 1200]


def headers_of(n):
    return [("n", str(n).encode()), ("h2", None)]


def number_of(m):
    """The record number a consumed Message claims to be (from its key), or None."""
    k = m.key()
    if k is None or not k.startswith(b"k"):
        return None
    try:
        return int(k[1:])
    except ValueError:
        return None


def intact(m, n):
    """None if Message m is exactly record n, else how it differs."""
    have = (m.key(), m.value(), list(m.headers() or []))
    want = (key_of(n), value_of(n), headers_of(n))
    if have == want:
        return None
    parts = []
    for what, h, w in zip(("key", "value", "headers"), have, want):
        if h == w:
            continue
        if what == "value" and h is not None and w is not None:
            parts.append("value of %d bytes starting %r, want %d bytes starting %r"
                         % (len(h), h[:24], len(w), w[:24]))
        else:
            parts.append("%s %r, want %r" % (what, h, w))
    return "; ".join(parts)


def bootstrap():
    return "127.0.0.1:%s" % PORT


def admin():
    logger, _ = rdkafka_logger("rdkafka-admin-%d" % time.monotonic_ns(), logging.INFO)
    return AdminClient({"bootstrap.servers": bootstrap(), "socket.timeout.ms": 10000,
                        "logger": logger})


def create_topic(name, partitions):
    a = admin()  # alive until the answer: a freed client fails its futures
    futures = a.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)],
        operation_timeout=10, request_timeout=15)
    futures[name].result(timeout=30)


def partitions_of(name):
    """Partition ids of topic name in a Metadata for all topics (asking for
    one by name could auto-create it), or a reason string."""
    md = admin().list_topics(timeout=10)
    t = md.topics.get(name)
    if t is None:
        return "topic %s is not listed" % name
    if t.error is not None:
        return "topic %s has error %s" % (name, t.error)
    return sorted(t.partitions)


class Load:
    """Produces numbered records at RATE per second, from this thread only."""

    def __init__(self, topic, idempotent=False):
        self.topic = topic
        self.logger, self.log = rdkafka_logger("rdkafka-producer", logging.INFO)
        self.p = Producer({
            "bootstrap.servers": bootstrap(),
            "acks": "all",
            "enable.idempotence": idempotent,
            "linger.ms": 2,
            "message.timeout.ms": 60000,
            "retries": 1000000,
            "retry.backoff.ms": 50,
            "reconnect.backoff.ms": 20,
            "reconnect.backoff.max.ms": 200,
            "socket.timeout.ms": 10000,
            "logger": self.logger,
        })
        self.n = 0                # records handed to produce()
        self.acked = []           # (partition, offset, n, start number of the live broker)
        self.errors = []          # (n, error text)
        self.full = 0             # BufferError: local queue full
        self.t0 = time.monotonic()
        self.gen = 1              # start number of the broker now running

    def delivered(self, err, msg, n):
        KEEP.append(msg)
        if err is not None:
            self.errors.append((n, str(err)))
        else:
            self.acked.append((msg.partition(), msg.offset(), n, self.gen))

    def pump(self, seconds, until=None):
        """Produce for `seconds` (or until until() is true), serving callbacks."""
        end = time.monotonic() + seconds
        while True:
            now = time.monotonic()
            due = min(int((now - self.t0) * RATE) - self.n, 200)
            for _ in range(max(due, 0)):
                n = self.n
                try:
                    self.p.produce(self.topic, key=key_of(n), value=value_of(n),
                                   headers=headers_of(n),
                                   on_delivery=lambda err, msg, n=n: self.delivered(err, msg, n))
                except BufferError:
                    self.full += 1
                    break
                self.n += 1
            self.p.poll(0)
            if until is not None and until():
                return True
            if now >= end:
                return until is None
            time.sleep(0.002)


# ---- crash_*: produce through KILLS kills ----

def produce_through_kills(broker, load, rng):
    """Returns None or a reason the run could not go on."""
    for k in range(KILLS):
        base = len(load.acked)
        if not load.pump(FIRST_ACK_S, until=lambda: broker.check_alive() or len(load.acked) > base):
            return ("no write acknowledged within %d s of start %d"
                    % (FIRST_ACK_S, broker.starts))
        delay = rng.uniform(0.3, 1.5)
        load.pump(delay)
        broker.kill("%.2f s after its first ack, %d acks, %d records produced so far"
                    % (delay, len(load.acked), load.n))
        note("kill %d: %.2f s after the first ack of start %d; %d acked, %d produced"
             % (k + 1, delay, broker.starts, len(load.acked), load.n))
        broker.start(idle=load.pump)
        load.p.poll(0)
        load.gen = broker.starts
    base = len(load.acked)
    if not load.pump(FIRST_ACK_S, until=lambda: broker.check_alive() or len(load.acked) > base):
        return "no write acknowledged within %d s of the last restart" % FIRST_ACK_S
    load.pump(1.0)
    broker.check_alive()
    return None


def read_back(topic):
    """Read every partition from 0 to its high watermark.  Returns
    (watermarks {p: (lo, hi)}, {p: {offset: Message}}, repeated offsets, errors)."""
    c = Consumer({"bootstrap.servers": bootstrap(),
                  "group.id": "sluice-test-unused-" + RUN_ID,
                  "enable.auto.commit": False, "enable.auto.offset.store": False,
                  "auto.offset.reset": "error", "enable.partition.eof": False,
                  "fetch.wait.max.ms": 100, "check.crcs": True,
                  "socket.timeout.ms": 10000})
    marks, got, repeats, errors = {}, {}, [], []
    try:
        for p in range(PARTITIONS):
            marks[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10,
                                               cached=False)
            got[p] = {}
        c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS) if marks[p][1] > 0])
        top = {p: -1 for p in range(PARTITIONS)}

        def done():
            return all(top[p] >= marks[p][1] - 1 for p in range(PARTITIONS))

        deadline = time.monotonic() + 30
        idle_until = time.monotonic() + 5
        while not done() and time.monotonic() < min(deadline, idle_until):
            msgs = c.consume(1000, 0.5)
            if msgs:
                idle_until = time.monotonic() + 5
            for m in msgs:
                KEEP.append(m)
                if m.error():
                    errors.append(str(m.error()))
                    continue
                p, o = m.partition(), m.offset()
                if o in got[p]:
                    repeats.append((p, o))
                got[p][o] = m
                top[p] = max(top[p], o)
    finally:
        c.close()
    return marks, got, repeats, errors


class Verdict:
    """The read-back compared with what the producer was told."""

    def __init__(self, load, marks, got, repeats, errors):
        self.load, self.marks, self.got = load, marks, got
        self.repeats, self.errors = repeats, errors

    def places(self):
        """{record number: [(partition, offset), ...]} of everything read."""
        where = {}
        for p in range(PARTITIONS):
            for o, m in self.got[p].items():
                where.setdefault(number_of(m), []).append((p, o))
        return where

    def survive(self):
        lost, conflicts, seen = [], [], {}
        where = self.places()
        for p, o, n, gen in self.load.acked:
            if (p, o) in seen:
                conflicts.append("records %d and %d both acknowledged at partition %d offset %d"
                                 % (seen[(p, o)], n, p, o))
            seen[(p, o)] = n
            m = self.got.get(p, {}).get(o)
            if m is None:
                hi = self.marks.get(p, (0, 0))[1]
                found = ("nothing: offset is at or past the high watermark %d" % hi
                         if o >= hi else "nothing at that offset")
            elif number_of(m) != n:
                found = "record %s" % number_of(m)
            else:
                found = intact(m, n)
                if found:
                    found = "record %d altered: %s" % (n, found)
            if found:
                elsewhere = [x for x in where.get(n, []) if x != (p, o)]
                if elsewhere:
                    found += "; record %d is at (partition, offset) %s" % (n, elsewhere[:3])
                lost.append((p, o, n, gen, found))
        if not lost and not conflicts:
            return ("", "%d acked over %d kills" % (len(self.load.acked), KILLS))
        for p, o, n, gen, found in lost[:25]:
            note("LOST partition %d offset %d record %d (acknowledged while start %d was up): "
                 "found %s" % (p, o, n, gen, found))
        for c in conflicts[:5]:
            note("CONFLICT " + c)
        for gen in sorted({gen for _, _, _, gen, _ in lost})[:3]:
            note("broker log around the kill of start %d:" % gen)
            for line in log_around("(kill %d, start %d)" % (gen, gen)):
                note("  " + line)
        why = []
        if lost:
            why.append("%d of %d acknowledged records lost (first: partition %d offset %d "
                       "record %d: found %s)" % (len(lost), len(self.load.acked), lost[0][0],
                                                 lost[0][1], lost[0][2], lost[0][4]))
        if conflicts:
            why.append("%d offsets acknowledged twice (first: %s)" % (len(conflicts), conflicts[0]))
        return "; ".join(why)

    def dense(self):
        if self.errors:
            return "%d consume errors, first: %s" % (len(self.errors), self.errors[0])
        problems = []
        for p in range(PARTITIONS):
            lo, hi = self.marks[p]
            offsets = set(self.got[p])
            if lo != 0:
                problems.append("partition %d: low watermark %d, want 0" % (p, lo))
            missing = sorted(set(range(hi)) - offsets)
            extra = sorted(o for o in offsets if o >= hi)
            if missing:
                problems.append("partition %d: %d of offsets 0..%d not returned, first %s"
                                % (p, len(missing), hi - 1, missing[:10]))
            if extra:
                problems.append("partition %d: offsets past the high watermark %d: %s"
                                % (p, hi, extra[:10]))
        if self.repeats:
            problems.append("%d offsets returned more than once, first %s"
                            % (len(self.repeats), self.repeats[:5]))
        if problems:
            return "; ".join(problems)
        return ("", "%d records at offsets 0..hw-1 of %d partitions"
                % (sum(len(g) for g in self.got.values()), PARTITIONS))

    def records_intact(self):
        """Every record read is one the producer sent, byte for byte."""
        bad = []
        for p in range(PARTITIONS):
            for o, m in sorted(self.got[p].items()):
                n = number_of(m)
                diff = "key %r is not one the producer wrote" % (m.key(),) \
                    if n is None or n >= self.load.n else intact(m, n)
                if diff:
                    bad.append("partition %d offset %d: %s" % (p, o, diff))
        if bad:
            for b in bad[:10]:
                note("GARBLED " + b)
            return "%d records read are not as produced, first: %s" % (len(bad), bad[0])
        return None

    def counts(self):
        where = self.places()
        dups = sum(1 for places in where.values() if len(places) > 1)
        extra = sum(len(places) - 1 for places in where.values() if len(places) > 1)
        acked_n = {n for _, _, n, _ in self.load.acked}
        unacked_present = sum(1 for n in where if n not in acked_n)
        note("produced %d, acknowledged %d, delivery errors %d, read %d, "
             "records written more than once %d (%d extra copies), "
             "unacknowledged records present %d, local queue full %d times"
             % (self.load.n, len(self.load.acked), len(self.load.errors),
                sum(len(g) for g in self.got.values()), dups, extra, unacked_present,
                self.load.full))


def recovery_logged(broker):
    missing = [s for s, text in broker.recovery if "recovered" not in text.lower()]
    if len(broker.recovery) < KILLS:
        return "only %d restarts recorded, want %d" % (len(broker.recovery), KILLS)
    if missing:
        return "no line with 'recovered' in the log of restart(s) %s" % missing
    for s, text in broker.recovery:
        for line in text.splitlines():
            if "recovered" in line.lower():
                note("start %d: %s" % (s, line.strip()))
                break
    return None


def all_delivered(load, left):
    if left:
        return "%d records still undelivered %d s into flush" % (left, FLUSH_S)
    if load.errors:
        kinds = {}
        for _, e in load.errors:
            kinds[e] = kinds.get(e, 0) + 1
        return "%d delivery errors: %s" % (len(load.errors), kinds)
    return None


def crash_produce(broker, rng):
    topic = "crash-%s" % RUN_ID
    create_topic(topic, PARTITIONS)
    parts = partitions_of(topic)
    if parts != list(range(PARTITIONS)):
        fail("crash_setup", "topic %s: %s" % (topic, parts))
        return topic, None
    load = Load(topic)
    why = produce_through_kills(broker, load, rng)
    if why:
        fail("crash_produce_through_kills", why)
        for line in load.log.lines[-10:]:
            note("librdkafka: " + line)
        return topic, None
    deadline = time.monotonic() + FLUSH_S
    while True:
        left = load.p.flush(1.0)
        if not left or time.monotonic() > deadline:
            break
        broker.check_alive()
    if not case("crash_all_delivered", all_delivered, load, left):
        for line in load.log.lines[-10:]:
            note("librdkafka: " + line)
    return topic, load


def create_then_kill(broker, topic1):
    topic = "crash-ct-%s" % RUN_ID
    create_topic(topic, 3)
    broker.kill("right after CreateTopics %s answered" % topic)
    broker.start()
    parts = partitions_of(topic)
    if parts != [0, 1, 2]:
        return "after the restart: %s" % (parts if isinstance(parts, str)
                                          else "partitions %s, want [0, 1, 2]" % parts)
    if topic1:
        parts = partitions_of(topic1)
        if parts != list(range(PARTITIONS)):
            return "after the restart, the first topic: %s" % (parts,)
    return None


def watermarks_stable(topic, marks):
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": "sluice-test-unused-" + RUN_ID,
                  "enable.auto.commit": False})
    try:
        now = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
               for p in range(PARTITIONS)}
    finally:
        c.close()
    if now != marks:
        return "watermarks %s before the last restart, %s after" % (marks, now)
    return None


def main():
    if not (PORT and BIN and DATA and PROPS and LOG):
        print("PORT, SLUICE_BIN, SLUICE_DATA, SLUICE_PROPS and SLUICE_LOG must be set; "
              "run through tests/integration/with-broker.sh", file=sys.stderr)
        return 2
    report.stop_on_signals(kill_all)
    report.watchdog("crash", WATCHDOG_S, kill_all)
    started = time.monotonic()
    note("seed %d (CRASH_SEED=%d reproduces the schedule), %d records/s" % (SEED, SEED, RATE))
    rng = random.Random(SEED)
    broker = Broker()
    try:
        broker.format()
        broker.start()
        topic, load = crash_produce(broker, rng)
        marks = None
        if load is not None:
            marks, got, repeats, errors = read_back(topic)
            v = Verdict(load, marks, got, repeats, errors)
            case("crash_acknowledged_records_survive", v.survive)
            case("crash_offsets_dense", v.dense)
            case("crash_records_intact", v.records_intact)
            v.counts()
            case("crash_recovery_logged", recovery_logged, broker)
        case("crash_create_topics_survives_kill", create_then_kill, broker,
             topic if load is not None else None)
        if marks is not None:
            case("crash_watermarks_stable_after_restart", watermarks_stable, topic, marks)
        rc = broker.stop()
        if rc is None:
            fail("crash_clean_stop", "broker did not exit within 10 s of SIGTERM")
        elif rc != 0:
            fail("crash_clean_stop", "broker exit status %d after SIGTERM, want 0" % rc)
        else:
            ok("crash_clean_stop")
    except BrokerError as e:
        fail("crash_broker", str(e))
    except Exception as e:  # noqa: BLE001 - any error fails the run
        traceback.print_exc(file=sys.stderr)
        fail("crash_error", "%s: %s" % (type(e).__name__, e))
    finally:
        kill_all()
    note("%.1f s, %d broker starts, %d kills" % (time.monotonic() - started, broker.starts,
                                                 broker.kills))
    return report.status()


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
