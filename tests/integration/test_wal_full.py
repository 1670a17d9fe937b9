# test_wal_full.py - a full write-ahead log: produce waits for space up to
# request.timeout.ms and then fails with REQUEST_TIMED_OUT (retriable);
# nothing acknowledged is harmed and fetches keep working.
#
# broker-args: --set sluice.wal.capacity.bytes=4194304 --set request.timeout.ms=1500 --set sluice.upload.interval.ms=3600000 --set sluice.upload.bytes=1073741824
import os
import sys
import time

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic
import report
from report import fail, ok

BOOTSTRAP = os.environ["BOOTSTRAP"]
keep = []       # confluent-kafka 1.7 mishandles freed messages: keep them alive




def main():
    topic = "walfull-%d-%d" % (os.getpid(), int(time.time()))
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        f.result(10)

    acked, errors = {}, []

    def on_delivery(err, msg):
        keep.append(msg)
        if err is None:
            acked[int(msg.key())] = msg.offset()
        else:
            errors.append(err)

    # No retries: the broker's own answer reaches the callback.
    p = ck.Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 5,
                     "message.send.max.retries": 0, "message.timeout.ms": 20000,
                     "request.timeout.ms": 10000})
    value = os.urandom(4000)
    # 4 MiB of WAL holds well under 1100 records of 4 KB: write 1500.
    start = time.time()
    for n in range(1500):
        p.produce(topic, key=str(n).encode(), value=value, on_delivery=on_delivery)
        p.poll(0)
    left = p.flush(30)
    took = time.time() - start
    print("# acked %d, failed %d, in %.1f s" % (len(acked), len(errors), took), flush=True)

    if left == 0 and acked and errors:
        ok("wal_full_some_acked_some_refused")
    else:
        fail("wal_full_some_acked_some_refused",
             "acked %d, failed %d, unflushed %d" % (len(acked), len(errors), left))
    codes = {e.code() for e in errors}
    if codes == {ck.KafkaError.REQUEST_TIMED_OUT}:
        ok("wal_full_error_is_request_timed_out")
    else:
        fail("wal_full_error_is_request_timed_out", "errors: %s" % sorted(str(e) for e in errors)[:3])
    if errors and took >= 1.4:
        ok("wal_full_waited_for_request_timeout")
    else:
        fail("wal_full_waited_for_request_timeout", "whole run took %.2f s" % took)

    # Everything acknowledged is readable, densely, at its offset.
    c = ck.Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "unused", "enable.auto.commit": False})
    c.assign([ck.TopicPartition(topic, 0, 0)])
    got = {}
    deadline = time.time() + 20
    while len(got) < len(acked) and time.time() < deadline:
        for m in c.consume(500, 1.0):
            keep.append(m)
            if m.error():
                continue
            got[m.offset()] = int(m.key())
    lo, hi = c.get_watermark_offsets(ck.TopicPartition(topic, 0), timeout=10)
    missing = [n for n, off in acked.items() if got.get(off) != n]
    if not missing and hi == len(acked) and sorted(got) == list(range(hi)):
        ok("wal_full_acknowledged_intact_and_fetchable")
    else:
        fail("wal_full_acknowledged_intact_and_fetchable",
             "missing %d of %d acked, hw %d, read %d" % (len(missing), len(acked), hi, len(got)))
    c.close()
    return report.status()


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    os._exit(1 if rc else 0)
