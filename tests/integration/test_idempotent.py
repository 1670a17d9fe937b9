# harness: self
"""tests/integration/test_idempotent.py - an idempotent producer through
broker kills: no duplicate, no gap.

with-broker.sh starts no broker for this test (the first line): it runs its
own with test_crash.py's Broker, on $PORT, with a WAL formatted in
$SLUICE_DATA.

A confluent-kafka (librdkafka) producer with enable.idempotence=true writes
numbered records at a steady rate to a 4-partition topic while the broker is
SIGKILLed KILLS times, each a random 0.3-1.5 s after the restarted broker
acknowledged its first write, and restarted on the same WAL.  Batches that
reached the WAL before a kill are retried by the producer after the restart
with the same producer id and sequences, and must be recognised from the
producer state the restarted broker rebuilt from its WAL.  Then a consumer
reads every partition from offset 0 to its high watermark:

  idem_all_delivered      every record produced was acknowledged, with no
                          delivery error;
  idem_exactly_once       every record number appears exactly once (no
                          duplicate, no gap), and every acknowledged record is
                          at its acknowledged offset, intact;
  idem_order_kept         within a partition, record numbers increase with
                          offsets (the producer sends each partition's records
                          in number order);
  idem_offsets_dense      offsets 0..hw-1, each once.

The same run with enable.idempotence=false (test_crash.py) reads some
records twice: retries of batches a kill did not prevent from landing.

Prints "ok NAME" or "FAIL NAME: reason" per case; exits 1 on any failure.
The kill delays come from CRASH_SEED (printed; set it to repeat them).
"""

import os
import random
import sys
import time
import traceback

import report
import test_crash as tc
from report import case, fail, note, ok

KILLS = 3


def exactly_once(load, got):
    where = {}
    for p in range(tc.PARTITIONS):
        for o, m in got[p].items():
            where.setdefault(tc.number_of(m), []).append((p, o))
    twice = sorted((n, places) for n, places in where.items() if len(places) > 1)
    missing = [n for n in range(load.n) if n not in where]
    foreign = [n for n in where if n is None or n >= load.n]
    bad = []
    for p, o, n, _ in load.acked:
        m = got[p].get(o)
        if m is None or tc.number_of(m) != n:
            bad.append("record %d acknowledged at partition %d offset %d, found %s there"
                       % (n, p, o, "nothing" if m is None else "record %s" % tc.number_of(m)))
        else:
            diff = tc.intact(m, n)
            if diff:
                bad.append("record %d altered: %s" % (n, diff))
    why = []
    if twice:
        why.append("%d records written more than once, first %d at %s"
                   % (len(twice), twice[0][0], twice[0][1]))
    if missing:
        why.append("%d of %d records missing, first %s" % (len(missing), load.n, missing[:5]))
    if foreign:
        why.append("records the producer never sent: %s" % foreign[:5])
    if bad:
        why.append("%d acknowledged records not where acknowledged, first: %s"
                   % (len(bad), bad[0]))
    if why:
        return "; ".join(why)
    return ("", "%d records, each once" % load.n)


def order_kept(got):
    for p in range(tc.PARTITIONS):
        prev = None
        for o in sorted(got[p]):
            n = tc.number_of(got[p][o])
            if prev is not None and n is not None and n < prev[1]:
                return ("partition %d: record %d at offset %d after record %d at offset %d"
                        % (p, n, o, prev[1], prev[0]))
            prev = (o, n)
    return None


def main():
    if not (tc.PORT and tc.BIN and tc.DATA and tc.PROPS and tc.LOG):
        print("PORT, SLUICE_BIN, SLUICE_DATA, SLUICE_PROPS and SLUICE_LOG must be set; "
              "run through tests/integration/with-broker.sh", file=sys.stderr)
        return 2
    tc.KILLS = KILLS
    report.stop_on_signals(tc.kill_all)
    report.watchdog("idempotent", tc.WATCHDOG_S, tc.kill_all)
    started = time.monotonic()
    note("seed %d (CRASH_SEED=%d reproduces the schedule), %d records/s"
         % (tc.SEED, tc.SEED, tc.RATE))
    rng = random.Random(tc.SEED)
    broker = tc.Broker()
    try:
        broker.format()
        broker.start()
        topic = "idem-%s" % tc.RUN_ID
        tc.create_topic(topic, tc.PARTITIONS)
        load = tc.Load(topic, idempotent=True)
        why = tc.produce_through_kills(broker, load, rng)
        if why:
            fail("idem_produce_through_kills", why)
            for line in load.log.lines[-10:]:
                note("librdkafka: " + line)
            return report.status()
        deadline = time.monotonic() + tc.FLUSH_S
        while True:
            left = load.p.flush(1.0)
            if not left or time.monotonic() > deadline:
                break
            broker.check_alive()
        if not case("idem_all_delivered", tc.all_delivered, load, left):
            for line in load.log.lines[-10:]:
                note("librdkafka: " + line)
        marks, got, repeats, errors = tc.read_back(topic)
        v = tc.Verdict(load, marks, got, repeats, errors)
        case("idem_exactly_once", exactly_once, load, got)
        case("idem_order_kept", order_kept, got)
        case("idem_offsets_dense", v.dense)
        v.counts()
        dups = sum(1 for line in open(tc.LOG, errors="replace")
                   if "refused" in line and "producer" in line)
        note("%d produce refusals naming a producer in the brokers' log" % dups)
        rc = broker.stop()
        if rc != 0:
            fail("idem_clean_stop", "broker exit status %s after SIGTERM, want 0" % rc)
        else:
            ok("idem_clean_stop")
    except tc.BrokerError as e:
        fail("idem_broker", str(e))
    except Exception as e:  # noqa: BLE001 - any error fails the run
        traceback.print_exc(file=sys.stderr)
        fail("idem_error", "%s: %s" % (type(e).__name__, e))
    finally:
        tc.kill_all()
    note("%.1f s, %d broker starts, %d kills" % (time.monotonic() - started, broker.starts,
                                                 broker.kills))
    return report.status()


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
