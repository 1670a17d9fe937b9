# harness: self
"""tests/integration/test_groups_commit_crash.py - committed offsets survive
a SIGKILL of the broker.

with-broker.sh starts no broker for this test (the first line): it runs its
own, on $PORT, with a WAL formatted in $SLUICE_DATA, and appends their output
to $SLUICE_LOG.

The promise under test: an OffsetCommit is answered only once the commit is
durable in the WAL, so after a crash and a restart OffsetFetch returns every
acknowledged commit, metadata included, and a consumer joining the group
starts exactly at the committed offsets.

Start 1: a 4-partition topic gets 40 records per partition.  Two committer
processes, each SIGKILLed afterwards together with the broker:
  - confluent-kafka, group GC, subscribed: commits {p: 1} and then
    COMMITS_GC synchronously with explicit offsets (a later commit
    overwrites), checks committed();
  - kafka-python, group GK, subscribed: commits COMMITS_GK with metadata
    strings (ASCII, empty, non-ASCII, 4096 bytes), checks committed(tp,
    metadata=True); then group GS without joining (assign(), a standalone
    commit with generation -1) commits COMMITS_GS, and the broker is killed
    as soon as that commit is acknowledged.
Start 2 (same WAL):
  commit_crash_offsets_recovered   confluent committed() for GC, GK and GS
  commit_crash_metadata_recovered  kafka-python committed(metadata=True) for
                                   GK and GS: offsets and metadata unchanged
  commit_crash_resume_confluent    after one more record per partition, a new
                                   confluent consumer in GC (auto.offset.reset
                                   =latest, so a lost commit would show) reads
                                   first, on every partition, exactly the
                                   committed offset (40 for the partition
                                   committed at its end: the new record)
  commit_crash_resume_kafka_python the same for a new kafka-python consumer in GK
Then GC's offsets are overwritten by a standalone commit and group GS is
deleted (DeleteGroups) before a second SIGKILL; start 3:
  commit_crash_overwrite_survives  GC has the new offsets
  commit_crash_delete_survives     GS has no offsets and is not listed
  commit_crash_clean_stop          SIGTERM stops the broker with status 0

Prints "ok NAME" or "FAIL NAME: reason" per case; exits 1 on any failure.
Every wait is bounded, a watchdog ends the run after WATCHDOG_S, and every
process started here is killed on the way out.  The program ends with
os._exit() (see test_confluent.py on confluent-kafka 1.7's teardown).
"""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import traceback

import report
from report import case, fail, note, ok

PORT = os.environ.get("PORT")
BIN = os.environ.get("SLUICE_BIN")
DATA = os.environ.get("SLUICE_DATA")
PROPS = os.environ.get("SLUICE_PROPS")
LOG = os.environ.get("SLUICE_LOG")

WATCHDOG_S = 120
READY_S = 10
PARTITIONS = 4
PER_PARTITION = 40
WAL_CAPACITY = 268435456
# The committer processes get the names from their parent.
RUN_ID = os.environ.get("GROUPS_CRASH_RUN_ID") or "%d-%d" % (os.getpid(), int(time.time()))
TOPIC = "grp-crash-" + RUN_ID
GC = "grp-crash-confluent-" + RUN_ID
GK = "grp-crash-kafka-python-" + RUN_ID
GS = "grp-crash-standalone-" + RUN_ID

COMMITS_GC = {0: 3, 1: 17, 2: 29, 3: PER_PARTITION}
COMMITS_GK = {0: (7, "m0-ascii"), 1: (13, ""), 2: (0, "\u00fcn\u00efc\u00f8d\u00e9 \u2713 metadata"),
              3: (PER_PARTITION, "x" * 4096)}
COMMITS_GS = {0: (5, "s0"), 1: (6, "s1"), 2: (7, "s2"), 3: (8, "s3")}
COMMITS_GC_2 = {0: 11, 1: 12, 2: 13, 3: 14}
KEEP = []


def bootstrap():
    return "127.0.0.1:%s" % PORT


# ---- committer processes (killed with the broker) ----

def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def hold():
    """Wait to be killed."""
    while True:
        time.sleep(1)


def commit_confluent():
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": GC,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
                  "fetch.wait.max.ms": 100})
    c.subscribe([TOPIC])
    seen = set()
    deadline = time.time() + 30
    while len(seen) < PARTITIONS and time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            KEEP.append(m)
            seen.add(m.partition())
    if len(seen) < PARTITIONS:
        say({"error": "read from partitions %s only in 30 s" % sorted(seen)})
        hold()
    for offsets in ({p: 1 for p in range(PARTITIONS)}, COMMITS_GC):
        res = c.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in offsets.items()],
                       asynchronous=False)
        errs = [str(tp.error) for tp in res if tp.error is not None]
        if errs:
            say({"error": "commit answered %s" % errs})
            hold()
    got = c.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=10)
    say({"committed": {tp.partition: tp.offset for tp in got}})
    hold()


def commit_kafka_python():
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    c = KafkaConsumer(bootstrap_servers=bootstrap(), group_id=GK, enable_auto_commit=False,
                      auto_offset_reset="earliest", session_timeout_ms=6000,
                      heartbeat_interval_ms=1000, request_timeout_ms=30000,
                      api_version_auto_timeout_ms=10000)
    c.subscribe([TOPIC])
    seen = set()
    deadline = time.time() + 30
    while len(seen) < PARTITIONS and time.time() < deadline:
        for tp, recs in c.poll(200).items():
            if recs:
                seen.add(tp.partition)
    if len(seen) < PARTITIONS:
        say({"error": "read from partitions %s only in 30 s" % sorted(seen)})
        hold()
    c.commit({TopicPartition(TOPIC, p): OffsetAndMetadata(o, m) for p, (o, m) in COMMITS_GK.items()})
    got = {p: tuple(c.committed(TopicPartition(TOPIC, p), metadata=True))
           for p in range(PARTITIONS)}
    s = KafkaConsumer(bootstrap_servers=bootstrap(), group_id=GS, enable_auto_commit=False,
                      request_timeout_ms=30000, api_version_auto_timeout_ms=10000)
    s.assign([TopicPartition(TOPIC, p) for p in range(PARTITIONS)])
    s.commit({TopicPartition(TOPIC, p): OffsetAndMetadata(o, m) for p, (o, m) in COMMITS_GS.items()})
    say({"committed": got})
    hold()


# ---- the test process ----

PROCS = []


def kill_all():
    report.kill_all(PROCS)


def log_line(text):
    with open(LOG, "a") as f:
        f.write("---- test_groups_commit_crash: %s\n" % text)


class BrokerError(Exception):
    pass


class Broker:
    def __init__(self):
        self.wal = os.path.join(DATA, "wal")
        self.proc = None
        self.starts = 0

    def args(self, cmd):
        a = [BIN, cmd, "--config", PROPS, "--set", "sluice.wal.device=" + self.wal,
             "--set", "sluice.wal.capacity.bytes=%d" % WAL_CAPACITY]
        if cmd == "serve":
            a += ["--set", "listeners=PLAINTEXT://127.0.0.1:%s" % PORT,
                  "--set", "num.partitions=1",
                  "--set", "group.initial.rebalance.delay.ms=0"]
        return a

    def format(self):
        with open(LOG, "ab") as out:
            rc = subprocess.call(self.args("format"), stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=out, timeout=30)
        if rc != 0:
            raise BrokerError("sluice format exited with status %d" % rc)

    def start(self):
        self.starts += 1
        log_line("start %d" % self.starts)
        with open(LOG, "ab") as out:
            self.proc = subprocess.Popen(self.args("serve"), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=out)
        PROCS.append(self.proc)
        deadline = time.monotonic() + READY_S
        while True:
            self.check_alive()
            try:
                socket.create_connection(("127.0.0.1", int(PORT)), timeout=0.5).close()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BrokerError("broker (start %d) did not accept connections within %d s"
                                  % (self.starts, READY_S))
            time.sleep(0.02)

    def check_alive(self):
        rc = self.proc.poll()
        if rc is not None:
            raise BrokerError("broker (start %d, pid %d) exited by itself with status %d"
                              % (self.starts, self.proc.pid, rc))

    def kill(self, why):
        self.check_alive()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        log_line("SIGKILL pid %d (start %d): %s" % (self.proc.pid, self.starts, why))

    def stop(self):
        self.check_alive()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            return None


def committer(mode):
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), mode],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=None,
                            env=dict(os.environ, GROUPS_CRASH_RUN_ID=RUN_ID))
    PROCS.append(proc)
    return proc


def read_result(proc, seconds):
    """The committer's JSON line, or a dict with "error"."""
    deadline = time.monotonic() + seconds
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return {"error": "no result within %d s" % seconds}
        r, _, _ = select.select([proc.stdout], [], [], left)
        if r:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                return {"error": "exited with status %s before reporting" % proc.wait(5)}
            buf += chunk
    return json.loads(buf.split(b"\n")[0])


def confluent_conf(group, **extra):
    conf = {"bootstrap.servers": bootstrap(), "group.id": group, "enable.auto.commit": False,
            "socket.timeout.ms": 10000, "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000, "fetch.wait.max.ms": 100}
    conf.update(extra)
    return conf


def produce(per_partition):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap(), "acks": "all", "linger.ms": 5,
                  "message.timeout.ms": 30000})
    errors = []
    for part in range(PARTITIONS):
        for i in range(per_partition):
            p.produce(TOPIC, value=b"p%d-%d" % (part, i), partition=part,
                      on_delivery=lambda err, msg: errors.append(err) if err else None)
    left = p.flush(30)
    if left or errors:
        raise BrokerError("produce: %d undelivered, errors %s" % (left, errors[:3]))


def create_topic():
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap(), "socket.timeout.ms": 10000})
    fs = a.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=1)],
                         operation_timeout=10, request_timeout=15)
    fs[TOPIC].result(timeout=30)


def confluent_committed(group):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer(confluent_conf(group))
    try:
        got = c.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=15)
    finally:
        c.close()
    for tp in got:
        if tp.error is not None:
            raise BrokerError("committed() for %s partition %d: %s" % (group, tp.partition, tp.error))
    return {tp.partition: tp.offset for tp in got}


def kafka_python_committed(group):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap(), group_id=group, enable_auto_commit=False,
                      request_timeout_ms=30000, api_version_auto_timeout_ms=10000)
    try:
        out = {}
        for p in range(PARTITIONS):
            r = c.committed(TopicPartition(TOPIC, p), metadata=True)
            out[p] = None if r is None else (r.offset, r.metadata)
        return out
    finally:
        c.close()


def phase1(broker):
    """Start 1: data, commits, SIGKILL.  Returns None or a reason."""
    create_topic()
    produce(PER_PARTITION)
    cc = committer("commit-confluent")
    res = read_result(cc, 40)
    if "error" in res:
        return "confluent committer: %s" % res["error"]
    want = {str(p): o for p, o in COMMITS_GC.items()}
    if res["committed"] != want:
        return "confluent committer: committed() before the kill %s, want %s" % (
            res["committed"], want)
    kc = committer("commit-kafka-python")
    res = read_result(kc, 40)
    broker.kill("right after the standalone commit of %s was acknowledged" % GS)
    cc.kill()
    kc.kill()
    if "error" in res:
        return "kafka-python committer: %s" % res["error"]
    want = {str(p): list(v) for p, v in COMMITS_GK.items()}
    if res["committed"] != want:
        return "kafka-python committer: committed() before the kill differs: %s" % short_diff(
            res["committed"], want)
    return None


def short_diff(got, want):
    """got vs want ({partition: (offset, metadata)}), long metadata shortened."""
    def show(v):
        if isinstance(v, (list, tuple)) and len(v) == 2 and isinstance(v[1], str) and len(v[1]) > 40:
            return (v[0], "%d bytes of metadata starting %r" % (len(v[1]), v[1][:10]))
        return v
    return "; ".join("partition %s: %r, want %r" % (p, show(got.get(p)), show(want[p]))
                     for p in want if got.get(p) != want[p])


def offsets_recovered():
    bad = []
    for group, want in ((GC, COMMITS_GC), (GK, {p: o for p, (o, _) in COMMITS_GK.items()}),
                        (GS, {p: o for p, (o, _) in COMMITS_GS.items()})):
        got = confluent_committed(group)
        if got != want:
            bad.append("%s: %s, want %s" % (group, got, want))
    return "; ".join(bad) or None


def metadata_recovered():
    bad = []
    for group, want in ((GK, COMMITS_GK), (GS, COMMITS_GS)):
        got = kafka_python_committed(group)
        if got != want:
            bad.append("%s: %s" % (group, short_diff(got, want)))
    return "; ".join(bad) or None


def first_offsets_confluent(group, want):
    from confluent_kafka import Consumer
    c = Consumer(confluent_conf(group, **{"auto.offset.reset": "latest"}))
    first = {}
    try:
        c.subscribe([TOPIC])
        deadline = time.time() + 30
        while len(first) < PARTITIONS and time.time() < deadline:
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            KEEP.append(m)
            first.setdefault(m.partition(), m.offset())
    finally:
        c.close()
    if first != want:
        return "first offsets read %s, want %s" % (first, want)
    return None


def first_offsets_kafka_python(group, want):
    from kafka import KafkaConsumer
    c = KafkaConsumer(bootstrap_servers=bootstrap(), group_id=group, enable_auto_commit=False,
                      auto_offset_reset="latest", session_timeout_ms=6000,
                      heartbeat_interval_ms=1000, request_timeout_ms=30000,
                      api_version_auto_timeout_ms=10000)
    first = {}
    try:
        c.subscribe([TOPIC])
        deadline = time.time() + 30
        while len(first) < PARTITIONS and time.time() < deadline:
            for tp, recs in c.poll(200).items():
                if recs:
                    first.setdefault(tp.partition, recs[0].offset)
    finally:
        c.close()
    if first != want:
        return "first offsets read %s, want %s" % (first, want)
    return None


def overwrite_and_delete(broker):
    """Start 2, after the checks: new offsets for GC, GS deleted, SIGKILL."""
    from confluent_kafka import Consumer, TopicPartition
    from kafka import KafkaAdminClient
    c = Consumer(confluent_conf(GC))
    try:
        res = c.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in COMMITS_GC_2.items()],
                       asynchronous=False)
    finally:
        c.close()
    errs = [str(tp.error) for tp in res if tp.error is not None]
    if errs:
        return "standalone commit to %s: %s" % (GC, errs)
    a = KafkaAdminClient(bootstrap_servers=bootstrap(), request_timeout_ms=30000,
                         api_version_auto_timeout_ms=10000)
    try:
        res = a.delete_consumer_groups([GS])
    finally:
        a.close()
    errs = [(g, e) for g, e in res if e.errno != 0]
    if errs:
        return "DeleteGroups %s: %s" % (GS, errs)
    broker.kill("right after DeleteGroups %s" % GS)
    return None


def after_second_kill():
    got = confluent_committed(GC)
    if got != COMMITS_GC_2:
        return "%s after the second restart: %s, want %s" % (GC, got, COMMITS_GC_2)
    return None


def delete_survives():
    from kafka import KafkaAdminClient
    got = kafka_python_committed(GS)
    if any(v is not None for v in got.values()):
        return "deleted group %s has offsets after the restart: %s" % (GS, got)
    a = KafkaAdminClient(bootstrap_servers=bootstrap(), request_timeout_ms=30000,
                         api_version_auto_timeout_ms=10000)
    try:
        groups = [g for g, _ in a.list_consumer_groups()]
    finally:
        a.close()
    if GS in groups:
        return "deleted group %s is listed after the restart" % GS
    return None


def main():
    if not (PORT and BIN and DATA and PROPS and LOG):
        print("PORT, SLUICE_BIN, SLUICE_DATA, SLUICE_PROPS and SLUICE_LOG must be set; "
              "run through tests/integration/with-broker.sh", file=sys.stderr)
        return 2
    report.stop_on_signals(kill_all)
    report.watchdog("commit_crash", WATCHDOG_S, kill_all)
    started = time.monotonic()
    broker = Broker()
    try:
        broker.format()
        broker.start()
        why = phase1(broker)
        if why:
            fail("commit_crash_commits", why)
            return report.status()
        ok("commit_crash_commits")
        broker.start()
        case("commit_crash_offsets_recovered", offsets_recovered)
        case("commit_crash_metadata_recovered", metadata_recovered)
        produce(1)
        case("commit_crash_resume_confluent", first_offsets_confluent, GC, COMMITS_GC)
        case("commit_crash_resume_kafka_python", first_offsets_kafka_python, GK,
             {p: o for p, (o, _) in COMMITS_GK.items()})
        why = overwrite_and_delete(broker)
        if why:
            fail("commit_crash_overwrite_and_delete", why)
        else:
            broker.start()
            case("commit_crash_overwrite_survives", after_second_kill)
            case("commit_crash_delete_survives", delete_survives)
        rc = broker.stop()
        if rc is None:
            fail("commit_crash_clean_stop", "broker did not exit within 10 s of SIGTERM")
        elif rc != 0:
            fail("commit_crash_clean_stop", "broker exit status %d after SIGTERM, want 0" % rc)
        else:
            ok("commit_crash_clean_stop")
    except BrokerError as e:
        fail("commit_crash_broker", str(e))
    except Exception as e:  # noqa: BLE001 - any error fails the run
        traceback.print_exc(file=sys.stderr)
        fail("commit_crash_error", "%s: %s" % (type(e).__name__, e))
    finally:
        kill_all()
        note("%.1f s, %d broker starts" % (time.monotonic() - started, broker.starts))
    return report.status()


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "commit-confluent":
        commit_confluent()
    elif len(sys.argv) == 2 and sys.argv[1] == "commit-kafka-python":
        commit_kafka_python()
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
