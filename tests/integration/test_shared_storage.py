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
                           the committed offset, offsetsForTimes answered from
                           the objects as a scan of partition 0 says; the new
                           broker claims the manifest with a higher epoch.
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
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "s3"))

import shared_env  # noqa: E402
from report import note  # noqa: E402
from shared_env import (MIB, RUN_ID, SEED, Broker, Load, ReadBack, bootstrap,  # noqa: E402
                        bucket_records, create_topic, data_keys, figure, load_bucket, partitions_of,
                        store_of, wait_uploaded, watermarks)

BIG_MIB = int(os.environ.get("SLUICE_BIG", "256"))
TIMEOUT = int(os.environ.get("TEST_TIMEOUT", "420"))
OUTAGE_S = float(os.environ.get("SLUICE_OUTAGE_S", "60"))   # shared_s3_slowdown
WATCHDOG_S = max(60, TIMEOUT - 15)
PARTITIONS = 12
NODE = shared_env.NODE
SERVED_S = 30         # a restarted broker serves the topics of the bucket
UPLOAD_WAIT_S = 60 + BIG_MIB // 4   # the manifest catches up with the high watermarks
CRASH_RECORDS = 3000  # per phase of shared_kill_mid_upload
BIG_TOPIC = "shared-big-" + RUN_ID
MARKER_TOPIC = "shared-marker-" + RUN_ID
CRASH_TOPIC = "shared-crash-" + RUN_ID
OUTAGE_TOPIC = "shared-outage-" + RUN_ID
GROUP = "shared-group-" + RUN_ID
TOPIC_CONFIG = {"retention.ms": "999999999"}
SETTINGS = {
    "sluice.upload.interval.ms": 500,
    "sluice.upload.bytes": 8 * MIB,
    "sluice.cache.bytes": 64 * MIB,
    "sluice.tail.bytes": 16 * MIB,
    "sluice.objects.gc.grace.ms": 60000,
    "sluice.objects.gc.interval.ms": 2000,
    "log.retention.check.interval.ms": 1000,
}


def figures(label, before_keys, after_keys, extra=""):
    new = {k: s for k, s in after_keys.items() if k not in before_keys}
    count = len(new)
    avg = sum(new.values()) / count if count else 0
    figure("%s: %d objects uploaded, average %.2f MiB%s" % (label, count, avg / MIB, extra))


# ---------------------------------------------------------------- the cases

def times_from_objects(topic, part, upto):
    """offsetsForTimes answered from the data objects (a blank WAL: nothing
    in memory): for about 40 record timestamps among the first upto records
    of topic-part, the first offset whose timestamp is at or after it, as a
    scan of the records says; and no offset (-1) after the last record."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": "sluice-times", "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, part, 0)])
        ts = []
        deadline = time.monotonic() + 120
        while len(ts) < upto and time.monotonic() < deadline:
            m = c.poll(1)
            if m is None or m.error():
                continue
            if m.offset() != len(ts):
                return "offsetsForTimes scan: offset %d after %d records" % (m.offset(), len(ts))
            ts.append(m.timestamp()[1])
        if len(ts) < upto:
            return "offsetsForTimes scan: %d of %d records in 120 s" % (len(ts), upto)
        c.unassign()
        wrong = []
        picks = sorted(set(ts[::max(1, upto // 40)]) | {ts[0] - 1, ts[-1]})
        for t in picks:
            want = next((o for o, x in enumerate(ts) if x >= t), None)
            got = c.offsets_for_times([TopicPartition(topic, part, t)], timeout=15)[0]
            if got.error is not None or got.offset != want:
                wrong.append("%d -> %s (error %s), want %d" % (t, got.offset, got.error, want))
        if upto == watermarks(topic, part + 1)[part][1]:  # the whole partition was scanned
            got = c.offsets_for_times([TopicPartition(topic, part, max(ts) + 1)], timeout=15)[0]
            if got.offset != -1:
                wrong.append("after the last record -> %s, want -1" % got.offset)
        if wrong:
            return "offsetsForTimes from the objects: " + "; ".join(wrong[:5])
        note("offsetsForTimes from the objects: %d timestamps of %s-%d answered as a scan says" %
             (len(picks), topic, part))
        return None
    finally:
        c.close()


class Run:
    def __init__(self, s3):
        self.s3 = s3
        self.broker = Broker(s3, SETTINGS)
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
        shared_env.FIGURES.append("run 1 produce (64 MiB WAL): " + self.produce_line)
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
            shared_env.FIGURES.append("run 1 read-back from offset 0: " + v[1])
        return v

    def big_in_bucket(self):
        import bucket
        import objreader
        if self.big_hws is None:
            return "no high watermarks (the read-back did not run)"
        t0 = time.monotonic()
        st = wait_uploaded(self.s3, self.broker, {BIG_TOPIC: self.big_hws}, "after the big produce", UPLOAD_WAIT_S)
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
        st = wait_uploaded(self.s3, b, {MARKER_TOPIC: {0: 1}, BIG_TOPIC: self.big_hws}, "before the restart",
                           UPLOAD_WAIT_S)
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
        why = times_from_objects(BIG_TOPIC, 0, min(self.big_hws[0], 20000))
        if why:
            return "after the restart, " + why
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
        shared_env.FIGURES.append("run 2 (blank WAL) up in %.1f s, topics served %.1f s after start; read-back: %s"
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
        st = wait_uploaded(self.s3, b, {OUTAGE_TOPIC: hws}, "after the outage", UPLOAD_WAIT_S)
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
        shared_env.FIGURES.append(line)
        return ("", line)

    def kill_mid_upload(self):
        import bucket
        b = self.broker
        f = self.s3.fault()
        bkt = self.s3.bucket
        create_topic(CRASH_TOPIC, 4)
        # Nothing else waiting to go up: the next PUTs are for this case's records.
        wait_uploaded(self.s3, b, {CRASH_TOPIC: {}}, "before the crash phases", UPLOAD_WAIT_S)
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
            wait_uploaded(self.s3, b, {CRASH_TOPIC: acked_hws}, "after the restart (%s)" % phase, UPLOAD_WAIT_S)
        hws = {p: hi for p, (lo, hi) in watermarks(CRASH_TOPIC, 4).items()}
        rb = ReadBack(CRASH_TOPIC, 4, hws, load.acked, b, 0, load.n)
        rb.run()
        v = rb.verdict()
        if not isinstance(v, tuple):
            return "after the kills: %s" % v
        if rb.records != len(load.acked) or sum(hws.values()) != len(load.acked):
            return "%d records read, high watermarks %s, %d records acknowledged" % (rb.records, hws, len(load.acked))
        st = wait_uploaded(self.s3, b, {CRASH_TOPIC: hws}, "after the kills", UPLOAD_WAIT_S)
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
    runs = []

    def steps(s3):
        run = Run(s3)
        runs.append(run)
        return [("shared_big_produce", run.big_produce), ("shared_big_read_back", run.big_read_back),
                ("shared_big_in_bucket", run.big_in_bucket), ("shared_blank_wal_restart", run.blank_wal_restart),
                ("shared_s3_slowdown", run.s3_slowdown),
                ("shared_kill_mid_upload", run.kill_mid_upload), ("shared_clean_stop", run.clean_stop)]

    def broker_left(i):
        proc = runs[0].broker.proc
        return proc is not None and proc.poll() is None

    return shared_env.main("shared_storage", "SLUICE_BIG=%d MiB, SEED=%d, watchdog %d s"
                           % (BIG_MIB, SEED, WATCHDOG_S), steps, WATCHDOG_S, chained=broker_left,
                           summary="summary of the figures (SLUICE_BIG=%d MiB):" % BIG_MIB)


if __name__ == "__main__":
    shared_env.exit_with(main())
