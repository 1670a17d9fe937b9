#!/usr/bin/python3
# harness: self
"""test_shared_faults.py - the broker with shared storage when S3 is not
there at start-up, and when the broker dies in the middle of a compaction:
the real broker (SLUICE_BIN), s3rver behind the signature proxy and the
fault server (tests/s3/env.py), confluent-kafka as the client, and the
independent bucket reader tests/s3/bucket.py to check the bucket.
(tests/integration/test_shared_storage.py has the other shared-storage
cases, S3 answering 503 SlowDown among them; shared_env.py holds what the
two have in common.)

The contract (docs/CONFIG.md "Shared storage", storage/tier.h): at start the
manifest is read before the listener opens; while the store fails the broker
logs each attempt and keeps trying, and a stop signal ends that wait.
Compaction merges the oldest run of small objects into one, PUTs it and
swaps it in with one manifest commit; the inputs retire with it, and the
collector deletes retired objects and uploads no version names once
sluice.objects.gc.grace.ms has passed.  So a crash at any point of a
compaction loses and repeats nothing.

Each case has a prefix of its own in the bucket (s3://sluice-test/PREFIX)
and a broker of its own on $PORT.

  faults_start_stop_waiting  S3 unreachable (nothing listens on the
                             endpoint's port): the broker logs the refused
                             connections ("[http] cannot connect to
                             127.0.0.1:P: Connection refused"), does not
                             listen, and SIGTERM stops it with status 0
                             within 10 s ("stop signal while reading the
                             manifest").
  faults_start_unreachable   the same start; refused connections are still
                             being logged 3 s after the first, the Kafka port
                             stays closed; then a fault server passing
                             requests to the S3 appears on that port: the
                             broker reads the (empty) bucket, listens, and
                             records produced are read back and uploaded.
  faults_compaction_crash    many small objects (sluice.upload.bytes 200000,
                             an upload every 100 ms, compaction every 200
                             ms, records in bursts; compaction is kept from
                             merging them while they pile up by answering its
                             GETs 403), then SIGKILL (a) while the fault
                             server holds the merged object's PUT, and (b)
                             while it holds the manifest version that would
                             swap a merged object in (the object is up: the
                             log said "merged into"); each time a restart on
                             the old WAL.  Then, once compaction and the
                             collector (grace 3 s) are done: every
                             acknowledged record is read exactly once from
                             offset 0 (sluice.tail.bytes=0: from the
                             objects), bucket.py's history and objects check
                             out and hold the same records, no version names
                             the merged object of (b), and data/ holds
                             exactly the objects the manifest names.

Figures are printed as "# figures ..." lines and a summary at the end.
SEED=N repeats a run's record values.  Every wait is bounded; a watchdog ends
the run TEST_TIMEOUT - 15 s in.
"""

import os
import re
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "s3"))

import shared_env  # noqa: E402
from report import note  # noqa: E402
from shared_env import (MIB, RUN_ID, SEED, Broker, BrokerError, Load, bucket_records, create_topic,  # noqa: E402
                        figure, load_bucket, log_since, log_size, objects_url, port_open, read_back,
                        store_of, wait_uploaded)

TIMEOUT = int(os.environ.get("TEST_TIMEOUT", "300"))
WATCHDOG_S = max(60, TIMEOUT - 15)
UPLOAD_WAIT_S = 30      # the manifest catches up with the high watermarks
REFUSED_S = 15          # the first refused connections are logged
S3_BACK_S = 45          # the broker listens once S3 answers
QUIET_S = 5             # no new version this long: compaction and the collector are done
GRACE_MS = 3000         # sluice.objects.gc.grace.ms of faults_compaction_crash
SMALL_UPLOAD = 200000   # sluice.upload.bytes of faults_compaction_crash
PARTS = 4
MERGED_RE = re.compile(r"\[tier\] compaction: (\d+) objects \(\d+ bytes\) merged into (\S+) ")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_refused(b, mark, port, done, seconds, what):
    """Watch the log while the broker waits for S3 on port: it must stay
    alive and not listen.  Returns the refused-connection lines once
    done(lines) holds; BrokerError after seconds."""
    needle = "[http] cannot connect to 127.0.0.1:%d: Connection refused" % port
    deadline = time.monotonic() + seconds
    while True:
        b.check_alive()
        if port_open():
            raise BrokerError("the broker accepts Kafka connections while S3 is unreachable")
        lines = [ln for ln in log_since(mark) if needle in ln]
        if done(lines):
            return lines
        if time.monotonic() > deadline:
            raise BrokerError("%s: not within %d s (%d lines with '%s'; the log's last: %s)"
                              % (what, seconds, len(lines), needle, log_since(mark)[-2:]))
        time.sleep(0.1)


def s3_on_port(s3, port):
    """A fault server on port passing every request to s3's signature proxy
    (its log: build/test-logs/s3-test_shared_faults-late.log).  Returns the
    process and its control."""
    from env import _die_with_parent
    from faultserver import FaultControl
    ready = os.path.join(shared_env.DATA, "late-s3.ready")
    with open(os.path.join(TOP, "build", "test-logs", "s3-%s-late.log" % shared_env.TEST), "wb") as out:
        fs = subprocess.Popen(["/usr/bin/python3", os.path.join(TOP, "tests", "s3", "faultserver.py"),
                               "--port", str(port), "--upstream", s3.endpoint, "--default", "pass",
                               "--ready-file", ready], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                              preexec_fn=_die_with_parent)
    deadline = time.monotonic() + 20
    while not os.path.exists(ready):
        if fs.poll() is not None or time.monotonic() > deadline:
            fs.kill()
            raise BrokerError("the fault server on port %d did not start (status %s)" % (port, fs.wait(5)))
        time.sleep(0.05)
    return fs, FaultControl("http://127.0.0.1:%d" % port)


def naming(store, key, checked):
    """The versions in the bucket not read before (checked: the numbers
    read, updated) whose OBJECT operations name key.  A version that
    vanishes under the collector is passed over."""
    import bucket
    hits = []
    for n in sorted(bucket.list_versions(store)):
        if n in checked:
            continue
        try:
            v = bucket.read_version(store, n)
        except bucket.Vanished:
            continue
        checked.add(n)
        for t, body in v.ops:
            if t != bucket.OBJECT:
                continue
            c = bucket.Cursor(body, "version %d" % n)
            c.u64()
            if c.str("key", 1, 512) == key:
                hits.append(n)
    return hits


class Run:
    def __init__(self, s3):
        self.s3 = s3

    # -- S3 unreachable at start

    def unreachable_broker(self, prefix):
        """A broker whose S3 endpoint is a port where nothing listens, started
        and not waited for.  Returns (broker, the port, the log mark)."""
        dead = free_port()
        b = Broker(self.s3, {"sluice.upload.interval.ms": 200},
                   objects_url(self.s3, prefix, "http://127.0.0.1:%d" % dead))
        b.format("wal-" + prefix)
        mark = log_size()
        b.spawn("S3 endpoint 127.0.0.1:%d, where nothing listens" % dead)
        return b, dead, mark

    def start_stop_waiting(self):
        b, dead, mark = self.unreachable_broker("stop")
        lines = wait_refused(b, mark, dead, lambda ls: len(ls) >= 2, REFUSED_S, "2 refused connections logged")
        t0 = time.monotonic()
        rc = b.stop(10)
        secs = time.monotonic() - t0
        if rc is None:
            return "the broker waiting for S3 did not exit within 10 s of SIGTERM"
        if rc != 0:
            return "the broker waiting for S3 exited with status %d after SIGTERM, want 0" % rc
        if not any("stop signal while reading the manifest" in ln for ln in log_since(mark)):
            return "no log line says the stop signal ended the wait for the manifest"
        figure("start-up, S3 unreachable: %d refused connections logged, no listener; SIGTERM: status 0 in %.2f s"
               % (len(lines), secs))
        return ("", "%d refused connections logged, no listener; SIGTERM: exit 0 in %.2f s" % (len(lines), secs))

    def start_unreachable(self):
        prefix = "late"
        b, dead, mark = self.unreachable_broker(prefix)
        t0 = time.monotonic()
        first = wait_refused(b, mark, dead, lambda ls: len(ls) >= 1, REFUSED_S, "a refused connection logged")
        t_first = time.monotonic()
        # Still trying (and not listening) 3 s on.
        n3 = len(wait_refused(b, mark, dead, lambda ls: time.monotonic() >= t_first + 3, 10, "3 s of waiting"))
        lines = wait_refused(b, mark, dead, lambda ls: len(ls) > n3, REFUSED_S,
                             "another refused connection logged 3 s after the first")
        waited = time.monotonic() - t0
        note("%.1f s of S3 unreachable: %d refused connections logged, e.g. %s"
             % (waited, len(lines), first[0].strip()))
        # S3 appears on that port.
        fs, f = s3_on_port(self.s3, dead)
        try:
            t1 = time.monotonic()
            b.wait_ready(S3_BACK_S)
            up = time.monotonic() - t1
            if not any("holds no manifest: starting a new one" in ln for ln in log_since(mark)):
                return "listening, but no log line says the (empty) bucket's manifest was read"
            topic = "faults-late-" + RUN_ID
            create_topic(topic, 2)
            load = Load(topic, 2)
            load.produce(count=300, broker=b)
            if load.errors or len(load.acked) != 300:
                return "%d of 300 records acknowledged, errors %s" % (len(load.acked), load.errors[:3])
            why, rb, hws = read_back(topic, 2, load, b)
            if why:
                return "reading back: %s" % why
            wait_uploaded(self.s3, b, {topic: hws}, "after S3 came", UPLOAD_WAIT_S, prefix)
            passed = sum(1 for r in f.requests() if r["action"] == "pass")
            rc = b.stop()
        finally:
            fs.terminate()
            fs.wait(10)
        if rc != 0:
            return "exit status %s after SIGTERM, want 0" % rc
        figure("start-up, S3 unreachable for %.1f s (%d refused connections logged, no listener); listening %.1f s "
               "after S3 answered; 300 records read back and uploaded (%d requests to S3)"
               % (waited, len(lines), up, passed))
        return ("", "%d refused connections logged over %.1f s, no listener; listening %.1f s after S3 came; "
                "300 records read back and uploaded" % (len(lines), waited, up))

    # -- crash during compaction

    def compaction_crash(self):
        import bucket
        prefix = "compaction"
        bkt = self.s3.bucket
        data_path = "/%s/%s/data/" % (bkt, prefix)
        mf_path = "/%s/%s/manifest/" % (bkt, prefix)
        f = self.s3.fault()
        f.reset()
        b = Broker(self.s3, {
            "sluice.upload.interval.ms": 100,
            "sluice.upload.bytes": SMALL_UPLOAD,
            "sluice.compaction.interval.ms": 200,
            "sluice.cache.bytes": 32 * MIB,
            "sluice.tail.bytes": 0,
            "sluice.objects.gc.grace.ms": GRACE_MS,
            "sluice.objects.gc.interval.ms": 1000,
        }, objects_url(self.s3, prefix))
        store = store_of(self.s3, prefix)
        topic = "faults-compact-" + RUN_ID
        mark0 = log_size()

        def refuse_gets():
            """Compaction's reads fail at once (a 403 is not retried): it
            plans again every interval until they pass."""
            f.reset()
            f.push({"do": "error", "status": 403, "code": "AccessDenied", "method": "GET", "path": data_path,
                    "times": 10 ** 6})

        def bursts(count, size=8, gap=0.15):
            """Small objects: count bursts of size records, gap s apart."""
            for _ in range(count):
                load.send(count=size)
                t_end = time.monotonic() + gap
                while time.monotonic() < t_end:
                    load.p.poll(0.02)
                b.check_alive()
            load.flush(b)
            if load.errors:
                raise BrokerError("produce failed: %s" % load.errors[:3])
            return wait_uploaded(self.s3, b, {topic: load.hws()}, "after %d bursts" % count, UPLOAD_WAIT_S, prefix)

        def wait_held(method, path, why):
            deadline = time.monotonic() + 30
            while True:
                held = [r for r in f.requests() if r["action"] == "hang" and r["method"] == method
                        and r["path"].startswith(path)]
                if held:
                    return held[0]
                if time.monotonic() > deadline:
                    raise BrokerError("%s: no %s %s... reached the fault server within 30 s" % (why, method, path))
                b.check_alive()
                time.sleep(0.05)

        def restart(why):
            epoch = load_bucket(self.s3, prefix).epoch
            b.start(why)
            deadline = time.monotonic() + 30
            while load_bucket(self.s3, prefix).epoch <= epoch:   # claimed: a version is committed
                b.check_alive()
                if time.monotonic() > deadline:
                    raise BrokerError("%s: no manifest version with an epoch above %d in 30 s" % (why, epoch))
                time.sleep(0.2)

        refuse_gets()
        b.format("wal-compaction")
        b.start("compaction crashes")
        create_topic(topic, PARTS)
        load = Load(topic, PARTS)

        # (a) SIGKILL while the merged object's PUT is held.
        small = len(bursts(20).objects)
        f.reset()
        f.push({"do": "hang", "seconds": 120, "method": "PUT", "path": data_path})
        held = wait_held("PUT", data_path, "(a) the merged object")
        gets = [r for r in f.requests() if r["method"] == "GET" and r["path"].startswith(data_path)
                and r["action"] == "pass" and r["n"] < held["n"]]
        if not gets:
            return "(a): the held PUT %s followed no GET of a data object: not a compaction's" % held["path"]
        b.kill("(a) while the merged object's PUT %s is held" % held["path"])
        note("(a) killed holding the merged object's PUT, after %d GETs of the %d small objects"
             % (len(gets), small))
        refuse_gets()
        restart("old WAL after a kill during a compaction's PUT")

        # (b) SIGKILL while the version that names the merged object is held.
        bursts(15)
        mark = log_size()
        # Nothing waits to go up: the next version is a compaction's swap, as
        # its reads pass now.  (Should one swap slip through between the reset
        # and the push, the version held is a later compaction's: the orphan
        # is the merged object that no version names.)
        f.reset()
        f.push({"do": "hang", "seconds": 120, "method": "PUT", "path": mf_path})
        held = wait_held("PUT", mf_path, "(b) the compaction's manifest version")
        deadline = time.monotonic() + 5
        while not any(MERGED_RE.search(ln) for ln in log_since(mark)):
            if time.monotonic() > deadline:
                return ("(b): a manifest version PUT (%s) was held, but the log says no compaction merged "
                        "anything before it" % held["path"])
            time.sleep(0.1)
        b.kill("(b) while the manifest version PUT %s is held" % held["path"])
        merged = [m.group(2) for m in map(MERGED_RE.search, log_since(mark)) if m]
        st = load_bucket(self.s3, prefix)
        named = {o.key for o in st.objects.values()} | set(st.retired)
        orphans = [k for k in merged if k not in named]
        if not orphans:
            return "(b): the merged objects %s are all named by version %d: the held PUT was no compaction's" % (
                merged, st.version)
        orphan = orphans[-1]
        if orphan not in dict(store.list("data/")):
            return "(b): the merged object %s, logged as uploaded, is not in the bucket" % orphan
        checked = set()
        hits = naming(store, orphan, checked)
        if hits:
            return "(b): versions %s name %s, whose commit was held" % (hits, orphan)
        note("(b) killed holding %s, the version that would name the merged %s"
             % (held["path"].rsplit("/", 1)[1], orphan))
        f.reset()
        restart("old WAL after a kill during a compaction's commit")

        # Compaction merges freely now; produce goes on.
        bursts(5)
        t_quiet = time.monotonic()
        deadline = t_quiet + 60
        last_v, since = None, time.monotonic()
        while True:
            b.check_alive()
            st = load_bucket(self.s3, prefix)
            hits = naming(store, orphan, checked)
            if hits:
                return "versions %s, written after the restart, name %s" % (hits, orphan)
            if st.version != last_v:
                last_v, since = st.version, time.monotonic()
            lst = bucket.check_objects(store, st)
            if (time.monotonic() - since >= QUIET_S and not lst["missing"] and not lst["unnamed"]
                    and not lst["retired_present"]):
                break
            if time.monotonic() > deadline:
                return ("60 s after produce stopped: version %d (%.0f s old); unnamed keys %s, retired keys still "
                        "there %s, missing %s" % (st.version, time.monotonic() - since, lst["unnamed"][:3],
                                                  lst["retired_present"][:3], lst["missing"][:3]))
            time.sleep(0.5)
        settle = time.monotonic() - t_quiet
        listed = dict(store.list("data/"))
        if orphan in listed:
            return "the merged object %s of the killed commit is still in the bucket" % orphan
        compactions = [m for m in map(MERGED_RE.search, log_since(mark0)) if m]
        if len(compactions) < 2:
            return "%d compactions logged ('merged into'), want the killed one and more" % len(compactions)

        why, rb, hws = read_back(topic, PARTS, load, b)
        if why:
            return "reading back from offset 0: %s" % why
        st, h = bucket.check_history(store)
        lst = bucket.check_objects(store, st)
        if lst["missing"] or lst["wrong_size"] or lst["unnamed"] or lst["retired_present"]:
            return "bucket.py: %s" % {k: v[:3] for k, v in lst.items() if v}
        why, n = bucket_records(self.s3, st, topic, PARTS, load.acked, load.first, load.n, prefix)
        if why:
            return "in the bucket: %s" % why
        hits = naming(store, orphan, checked)
        if hits:
            return "versions %s name %s, whose commit was killed" % (hits, orphan)
        some = sorted(o.key for o in st.objects.values())[0]
        if not naming(store, some, set()):
            return "no version in the bucket names %s, an object of the newest: misread versions?" % some
        rc = b.stop()
        if rc != 0:
            return "exit status %s after SIGTERM, want 0" % rc
        figure("compaction crashes: %d records acknowledged, %d small objects before the first merge; 2 kills "
               "(merged PUT held, its commit held); %d merges logged over %d broker starts; settled %.1f s after produce stopped "
               "(quiet %d s, grace %d ms); read back from the objects: %s; bucket.py: %d records, %d versions "
               "(%d read for the orphan's name), %d objects, all named"
               % (len(load.acked), small, len(compactions), b.starts, settle, QUIET_S, GRACE_MS,
                  rb.verdict()[1], n, h["versions"], len(checked), len(listed)))
        return ("", "%d acknowledged records read exactly once after 2 kills during compaction; the orphaned "
                "merged object named by no version and collected; %d objects in the bucket, all named"
                % (len(load.acked), len(listed)))


def main():
    def steps(s3):
        run = Run(s3)
        return [("faults_start_stop_waiting", run.start_stop_waiting),
                ("faults_start_unreachable", run.start_unreachable),
                ("faults_compaction_crash", run.compaction_crash)]

    return shared_env.main("shared_faults", "SEED=%d, watchdog %d s, broker %s" % (SEED, WATCHDOG_S, shared_env.BIN),
                           steps, WATCHDOG_S)


if __name__ == "__main__":
    shared_env.exit_with(main())
