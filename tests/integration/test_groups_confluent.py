# broker-args: --set group.initial.rebalance.delay.ms=0
"""tests/integration/test_groups_confluent.py - confluent-kafka (librdkafka
2.0.2) consumer groups against the broker at $BOOTSTRAP; run by
with-broker.sh with /usr/bin/python3.

Each consumer is a process of its own (this file, run as
`test_groups_confluent.py consumer CONF`), so that one can be SIGKILLed.  It
writes one JSON line per event to its own file with unbuffered writes:
every assignment change (on_assign / on_revoke / on_lost, with the partitions
of the change) and every record it consumes (partition, offset, record
number), each tagged with the generation and member id librdkafka holds at
that moment (read from consumer_group_metadata(), whose serialised form is
"CGMDv2:", the generation as a native int32, then the group id and member id
as NUL-terminated strings).  Offsets are stored with store_offsets() only
after the line is written, and committed by auto-commit every 500 ms, so a
killed member's partitions are handed over at offsets it has reported.

Meanwhile this process produces numbered records (value = the number,
partition = number % PARTITIONS, acks=all) at RATE per second.

groups_eager_*: three consumers (range assignor) share a 6-partition topic;
one is SIGKILLed; a fourth joins later.
  _three_share           all three hold partitions in one generation,
                         covering all six
  _failover              each partition of the killed member is consumed by
                         another member within SESSION_MS + MARGIN_S of the kill
  _new_member_share      the fourth gets partitions and consumes from them
  _no_skips              every acknowledged record was consumed
  _one_member_per_generation  no record was consumed by two members in the
                         same generation (redelivery in a later generation,
                         at-least-once, is allowed and counted)
  _assignments_disjoint  in every generation each partition went to at most
                         one member
groups_coop_*: three consumers with partition.assignment.strategy=
cooperative-sticky join one by one.
  _joins                 each new member gets a share
  _incremental           rebalances were incremental: some member revoked
                         part of its partitions while keeping the rest
                         (confluent-kafka 1.7 has no rebalance_protocol();
                         its rebalance callback calls incremental_assign
                         itself for the COOPERATIVE protocol)
  _final_assignment      at the end every partition is owned by exactly one
                         member
  _no_skips, _one_member_per_generation  as above

Prints "ok NAME" or "FAIL NAME: reason" per case; exits 1 on any failure.
Every wait is bounded, a watchdog ends the run after WATCHDOG_S, and every
consumer process is killed on the way out.  The program ends with os._exit()
(see test_confluent.py on confluent-kafka 1.7's teardown).
"""

import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback

import report
from report import case, fail, note

BOOTSTRAP = os.environ.get("BOOTSTRAP")
PARTITIONS = 6
SESSION_MS = 6000
MARGIN_S = 8
RATE = 200
WATCHDOG_S = 150
RUN_ID = "%d-%d" % (os.getpid(), int(time.time()))
KEEP = []


# ---- the consumer process ----

def group_meta(c):
    """(generation, member id) from librdkafka's serialised group metadata."""
    b = c.consumer_group_metadata()
    if not isinstance(b, (bytes, bytearray)) or not b.startswith(b"CGMDv2:") or len(b) < 11:
        return -2, ""
    gen = struct.unpack("<i", b[7:11])[0]
    parts = bytes(b[11:]).split(b"\x00")
    return gen, (parts[1].decode("utf-8", "replace") if len(parts) > 1 else "")


def consumer_main(conf):
    from confluent_kafka import Consumer, KafkaException
    fd = os.open(conf["out"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    c = None

    def emit(obj):
        gen, member = group_meta(c)
        obj.update(gen=gen, member=member, t=time.time())
        os.write(fd, (json.dumps(obj) + "\n").encode())

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    c = Consumer({
        "bootstrap.servers": conf["bootstrap"],
        "group.id": conf["group"],
        "client.id": conf["name"],
        "partition.assignment.strategy": conf["strategy"],
        "session.timeout.ms": SESSION_MS,
        "heartbeat.interval.ms": 1000,
        "max.poll.interval.ms": 30000,
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 500,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 100,
        "socket.timeout.ms": 10000,
        "topic.metadata.refresh.interval.ms": 2000,
    })

    def on_assign(cons, parts):
        emit({"ev": "assign", "parts": sorted(p.partition for p in parts)})

    def on_revoke(cons, parts):
        emit({"ev": "revoke", "parts": sorted(p.partition for p in parts)})

    def on_lost(cons, parts):
        emit({"ev": "lost", "parts": sorted(p.partition for p in parts)})

    c.subscribe([conf["topic"]], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    emit({"ev": "start"})
    while not stop:
        # poll(), not consume(): librdkafka 2.0.2's batch consume can drop
        # fetched messages of a retained partition when an incremental
        # rebalance runs inside it (fixed in later librdkafka).
        m = c.poll(0.2)
        if m is None:
            continue
        KEEP.append(m)
        if m.error():
            emit({"ev": "error", "error": str(m.error())})
            continue
        emit({"ev": "m", "p": m.partition(), "o": m.offset(), "n": int(m.value())})
        try:
            c.store_offsets(message=m)
        except KafkaException as e:
            emit({"ev": "store_error", "p": m.partition(), "o": m.offset(), "error": str(e)})
    emit({"ev": "closing"})
    c.close()
    os.write(fd, (json.dumps({"ev": "closed", "t": time.time()}) + "\n").encode())
    os.close(fd)
    os._exit(0)


# ---- the test process ----

CHILDREN = []


def kill_children():
    for p in CHILDREN:
        if p.proc.poll() is None:
            try:
                p.proc.kill()
            except OSError:
                pass


class Proc:
    """One consumer process and the events it has written so far."""

    def __init__(self, workdir, name, group, topic, strategy):
        self.name = name
        self.out = os.path.join(workdir, name + ".jsonl")
        self.err = os.path.join(workdir, name + ".stderr")
        conf = {"bootstrap": BOOTSTRAP, "group": group, "topic": topic,
                "strategy": strategy, "name": name, "out": self.out}
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "consumer",
                                          json.dumps(conf)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err)
        CHILDREN.append(self)
        self.events = []
        self.msgs = []
        self.pos = 0
        self.buf = b""
        self.owned = set()
        self.killed_at = None

    def refresh(self):
        try:
            with open(self.out, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return
        self.pos += len(data)
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            ev = json.loads(line)
            ev["who"] = self.name
            self.events.append(ev)
            if ev["ev"] == "m":
                self.msgs.append(ev)
            elif ev["ev"] == "assign":
                self.owned |= set(ev["parts"])
            elif ev["ev"] in ("revoke", "lost"):
                self.owned -= set(ev["parts"])

    def consumed(self):
        return self.msgs

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)
        self.killed_at = time.time()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait_stopped(self, deadline):
        try:
            self.proc.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return False
        return True

    def stderr_tail(self, n=8):
        try:
            with open(self.err, "rb") as f:
                return f.read().decode("utf-8", "replace").splitlines()[-n:]
        except OSError:
            return []


class Load:
    """Produces numbered records at RATE per second from this thread."""

    def __init__(self, topic):
        from confluent_kafka import Producer
        self.topic = topic
        self.p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 5,
                           "enable.idempotence": False, "message.timeout.ms": 30000,
                           "socket.timeout.ms": 10000})
        self.n = 0
        self.acked = {}    # (partition, offset) -> number
        self.errors = []
        self.t0 = time.monotonic()
        self.running = True

    def delivered(self, err, msg, n):
        KEEP.append(msg)
        if err is not None:
            self.errors.append("record %d: %s" % (n, err))
        else:
            self.acked[(msg.partition(), msg.offset())] = n

    def pump(self, seconds, until=None, procs=()):
        """Produce for up to `seconds`, refreshing procs' events; returns
        True as soon as until() holds (or at the end when until is None)."""
        end = time.monotonic() + seconds
        next_check = 0
        while True:
            now = time.monotonic()
            if self.running:
                due = min(int((now - self.t0) * RATE) - self.n, 100)
                for _ in range(max(due, 0)):
                    n = self.n
                    try:
                        self.p.produce(self.topic, value=b"%d" % n, key=b"k%d" % n,
                                       partition=n % PARTITIONS,
                                       on_delivery=lambda err, msg, n=n: self.delivered(err, msg, n))
                    except BufferError:
                        break
                    self.n += 1
            self.p.poll(0)
            for pr in procs:
                pr.refresh()
            if until is not None and now >= next_check:
                next_check = now + 0.25
                if until():
                    return True
            if now >= end:
                return until is None
            time.sleep(0.02)

    def finish(self, procs):
        self.running = False
        left = self.p.flush(30)
        for pr in procs:
            pr.refresh()
        return left


def create_topic(name, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": BOOTSTRAP, "socket.timeout.ms": 10000})
    fs = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                         operation_timeout=10, request_timeout=15)
    fs[name].result(timeout=30)


def latest_generation_assignments(procs):
    """{generation: {name: partitions}} from assign events of live members."""
    by_gen = {}
    for pr in procs:
        for e in pr.events:
            if e["ev"] == "assign":
                by_gen.setdefault(e["gen"], {}).setdefault(pr.name, set()).update(e["parts"])
    return by_gen


def everyone_holds(procs):
    """All procs own at least one partition and together own all, each once."""
    owned = [pr.owned for pr in procs]
    if not all(owned):
        return False
    flat = [p for o in owned for p in o]
    return sorted(flat) == list(range(PARTITIONS))


def all_consumed(load, procs):
    seen = set()
    for pr in procs:
        for e in pr.consumed():
            seen.add((e["p"], e["o"]))
    return all(k in seen for k in load.acked)


def describe_owners(procs):
    return "; ".join("%s%s owns %s" % (pr.name, " (killed)" if pr.killed_at else "",
                                       sorted(pr.owned)) for pr in procs)


class Verdict:
    def __init__(self, load, procs):
        self.load, self.procs = load, procs
        self.by_offset = {}   # (p, o) -> [(gen, who, member, n, t)]
        for pr in procs:
            for e in pr.consumed():
                self.by_offset.setdefault((e["p"], e["o"]), []).append(
                    (e["gen"], pr.name, e["member"], e["n"], e["t"]))

    def no_skips(self):
        if self.load.errors:
            return "%d delivery errors, first: %s" % (len(self.load.errors), self.load.errors[0])
        missing = sorted(k for k in self.load.acked if k not in self.by_offset)
        wrong = [(k, self.load.acked[k], [x[3] for x in self.by_offset[k]])
                 for k in sorted(self.load.acked) if k in self.by_offset
                 and any(x[3] != self.load.acked[k] for x in self.by_offset[k])]
        if wrong:
            return "%d offsets returned other records than were acknowledged there, first: " \
                   "partition %d offset %d acked record %d, consumed %s" % (
                       len(wrong), wrong[0][0][0], wrong[0][0][1], wrong[0][1], wrong[0][2])
        if missing:
            per = {}
            for p, o in missing:
                per.setdefault(p, []).append(o)
            return "%d of %d acknowledged records never consumed: %s" % (
                len(missing), len(self.load.acked),
                "; ".join("partition %d offsets %s%s" % (p, os_[:8], "..." if len(os_) > 8 else "")
                          for p, os_ in sorted(per.items())))
        copies = sum(len(v) - 1 for v in self.by_offset.values())
        return ("", "%d records, %d consumed again in a later generation"
                % (len(self.load.acked), copies))

    def one_member_per_generation(self):
        bad = []
        for (p, o), seen in sorted(self.by_offset.items()):
            gens = {}
            for gen, who, member, n, t in seen:
                if gen < 0:
                    continue
                gens.setdefault(gen, set()).add(who)
            for gen, whos in gens.items():
                if len(whos) > 1:
                    bad.append((p, o, gen, sorted(whos)))
        if bad:
            p, o, gen, whos = bad[0]
            return "%d records consumed by two members in one generation; first partition %d " \
                   "offset %d in generation %d by %s" % (len(bad), p, o, gen, whos)
        unknown = sum(1 for v in self.by_offset.values() for x in v if x[0] < 0)
        if unknown:
            note("%d records consumed while librdkafka held no generation (not checked)" % unknown)
        return None

    def assignments_disjoint(self):
        bad = []
        for gen, who_parts in sorted(latest_generation_assignments(self.procs).items()):
            seen = {}
            for who, parts in who_parts.items():
                for p in parts:
                    if p in seen:
                        bad.append("generation %d: partition %d to %s and %s" % (gen, p, seen[p], who))
                    seen[p] = who
        return "; ".join(bad[:5]) if bad else None


def stop_all(procs):
    for pr in procs:
        pr.stop()
    deadline = time.time() + 15
    slow = [pr.name for pr in procs if not pr.wait_stopped(deadline)]
    for pr in procs:
        pr.refresh()
    return slow


def run_eager(workdir):
    topic = "grp-eager-" + RUN_ID
    group = "grp-eager-" + RUN_ID
    create_topic(topic, PARTITIONS)
    load = Load(topic)
    procs = [Proc(workdir, "eager-c%d" % i, group, topic, "range") for i in range(3)]
    everything = list(procs)

    def three_share():
        if load.pump(30, until=lambda: everyone_holds(procs), procs=procs):
            return ("", describe_owners(procs))
        return "after 30 s: " + describe_owners(procs)
    if not case("groups_eager_three_share", three_share):
        return fail_rest(everything, "eager")
    load.pump(3, procs=procs)

    victim = procs[1]
    victim.refresh()
    lost = sorted(victim.owned)
    victim.kill()
    note("killed %s (pid %d), which owned partitions %s" % (victim.name, victim.proc.pid, lost))
    live = [procs[0], procs[2]]

    def taken_over():
        firsts = {}
        for p in lost:
            ts = [e["t"] for pr in live for e in pr.consumed()
                  if e["p"] == p and e["t"] > victim.killed_at]
            if ts:
                firsts[p] = min(ts) - victim.killed_at
        return firsts

    def failover():
        limit = SESSION_MS / 1000 + MARGIN_S
        load.pump(limit + 2, until=lambda: len(taken_over()) == len(lost), procs=live)
        firsts = taken_over()
        slow = {p: round(firsts[p], 1) for p in firsts if firsts[p] > limit}
        never = [p for p in lost if p not in firsts]
        if never:
            return "partitions %s of the killed member not consumed by others %.0f s after " \
                   "the kill (%s)" % (never, limit + 2, describe_owners(live))
        if slow:
            return "taken over later than %.0f s after the kill: %s" % (limit, slow)
        return ("", "taken over %s s after the kill; %s" % (
            {p: round(t, 1) for p, t in sorted(firsts.items())}, handover(victim, live, lost)))
    case("groups_eager_failover", failover)

    newcomer = Proc(workdir, "eager-c3", group, topic, "range")
    everything.append(newcomer)
    live.append(newcomer)

    def new_member_share():
        ok_ = load.pump(25, until=lambda: newcomer.owned and newcomer.consumed()
                        and everyone_holds(live), procs=live)
        if not ok_:
            return "after 25 s: %s; the new member consumed %d records" % (
                describe_owners(live), len(newcomer.consumed()))
        return ("", describe_owners(live))
    case("groups_eager_new_member_share", new_member_share)
    load.pump(2, procs=live)
    return finish(load, everything, live, "eager", check_disjoint=True)


def handover(victim, live, lost):
    """Per partition: the killed member's last offset and where the next
    owner started (at most its last + 1; lower means redelivery)."""
    parts = []
    for p in lost:
        last = max((e["o"] for e in victim.consumed() if e["p"] == p), default=None)
        after = [e for pr in live for e in pr.consumed()
                 if e["p"] == p and e["t"] > victim.killed_at]
        first = min(after, key=lambda e: e["t"])["o"] if after else None
        parts.append("partition %d: last read %s, next owner started at %s" % (p, last, first))
    return ", ".join(parts)


def fail_rest(procs, prefix):
    for pr in procs:
        for line in pr.stderr_tail():
            note("%s: %s" % (pr.name, line))
    kill_children()
    return None


def finish(load, everything, live, prefix, check_disjoint):
    left = load.finish(everything)
    if left:
        fail("groups_%s_produce" % prefix, "%d records undelivered after 30 s" % left)
    if not load.pump(20, until=lambda: all_consumed(load, everything), procs=live):
        note("not every acknowledged record consumed 20 s after the last was produced")
    slow = stop_all(live)
    if slow:
        fail("groups_%s_close" % prefix, "%s did not close within 15 s of SIGTERM" % slow)
    v = Verdict(load, everything)
    case("groups_%s_no_skips" % prefix, v.no_skips)
    case("groups_%s_one_member_per_generation" % prefix, v.one_member_per_generation)
    if check_disjoint:
        case("groups_%s_assignments_disjoint" % prefix, v.assignments_disjoint)
    return v


def run_coop(workdir):
    topic = "grp-coop-" + RUN_ID
    group = "grp-coop-" + RUN_ID
    create_topic(topic, PARTITIONS)
    load = Load(topic)
    procs = []

    def joins():
        for i in range(3):
            procs.append(Proc(workdir, "coop-c%d" % i, group, topic, "cooperative-sticky"))
            if not load.pump(30, until=lambda: everyone_holds(procs)
                             and all(pr.consumed() for pr in procs), procs=procs):
                return "member %d: after 30 s: %s" % (i, describe_owners(procs))
            load.pump(1.5, procs=procs)
        return ("", describe_owners(procs))
    if not case("groups_coop_joins", joins):
        return fail_rest(procs, "coop")

    def incremental():
        # A member that kept some partitions while revoking others (an
        # eager rebalance revokes everything).
        for pr in procs:
            owned = set()
            for e in pr.events:
                if e["ev"] == "assign":
                    owned |= set(e["parts"])
                elif e["ev"] == "revoke":
                    if set(e["parts"]) < owned:
                        return ("", "%s revoked %s and kept %s" % (
                            pr.name, e["parts"], sorted(owned - set(e["parts"]))))
                    owned -= set(e["parts"])
        return "no member revoked only part of its partitions: every rebalance was eager"
    case("groups_coop_incremental", incremental)

    def final_assignment():
        for pr in procs:
            pr.refresh()
        flat = sorted(p for pr in procs for p in pr.owned)
        if flat != list(range(PARTITIONS)):
            return "owned at the end: %s" % describe_owners(procs)
        return ("", describe_owners(procs))
    case("groups_coop_final_assignment", final_assignment)
    return finish(load, procs, procs, "coop", check_disjoint=False)


def main():
    if not BOOTSTRAP:
        print("BOOTSTRAP is not set; run through tests/integration/with-broker.sh", file=sys.stderr)
        return 2
    report.watchdog("groups_confluent", WATCHDOG_S, kill_children)
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="sluice-groups-confluent-")
    note("consumer event logs in %s" % workdir)
    try:
        run_eager(workdir)
        note("eager part: %.1f s" % (time.monotonic() - started))
        run_coop(workdir)
    except Exception as e:  # noqa: BLE001 - any error fails the run
        traceback.print_exc(file=sys.stderr)
        fail("groups_confluent_error", "%s: %s" % (type(e).__name__, e))
    finally:
        kill_children()
    note("%.1f s" % (time.monotonic() - started))
    if report.status() == 0:
        for f in os.listdir(workdir):
            os.unlink(os.path.join(workdir, f))
        os.rmdir(workdir)
    return report.status()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "consumer":
        consumer_main(json.loads(sys.argv[2]))
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
