"""tests/integration/test_confluent.py - confluent-kafka (librdkafka) against
the broker at $BOOTSTRAP; run by with-broker.sh with /usr/bin/python3.

For each compression codec a producer (acks=all) writes records with keys,
null and empty keys, null and empty values, headers (a repeated key, a null
value) and explicit CreateTime timestamps to partition 0 of a new topic; a
consumer reads them back with assign() from offset 0 and every field is
compared byte for byte, offsets included.  librdkafka's debug log must show
every batch sent with the codec: it silently falls back to no compression
when the broker's ApiVersions ranges do not enable a codec.  Then the admin
API (create, metadata, delete, TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION)
and ListOffsets (watermarks, offsets_for_times on plain and on compressed
batches).

Consumer groups are not implemented yet: the consumer carries a group.id
only because confluent-kafka requires one; it never subscribes and commits
nothing (enable.auto.commit=false).

Prints "ok NAME" or "FAIL NAME: reason" per case; exits 1 on any failure.
Every wait is bounded, and a watchdog ends the run after WATCHDOG_S.

confluent-kafka 1.7.0 (Debian's) drops a reference to None each time a
Message with a null key or value is freed; enough of them and CPython
aborts ("none_dealloc").  So every Message is kept alive in KEEP, and the
program ends with os._exit() instead of running the interpreter's teardown.
"""

import os
import sys
import time

from confluent_kafka import (Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition, TIMESTAMP_CREATE_TIME)
from confluent_kafka.admin import AdminClient, NewTopic
import report
from report import case, fail, rdkafka_logger

BOOTSTRAP = os.environ.get("BOOTSTRAP")
WATCHDOG_S = 110
RUN_ID = "%d-%d" % (os.getpid(), int(time.time()))
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
N = 1000
KEEP = []  # every Message object, never freed (see above)


def record(i, base_ts):
    """The i-th test record: (key, value, headers, timestamp)."""
    if i % 7 == 0:
        key = None
    elif i % 17 == 0:
        key = b""
    else:
        key = b"key-%d" % i
    if i % 11 == 0:
        value = None
    elif i % 13 == 0:
        value = b""
    else:
        # Compressible text with a few binary bytes, of varying length.
        value = (b"value-%d|" % i) + bytes(range(256))[i % 256:] + b"x" * (i % 300)
    if i % 5 == 0:
        headers = []
    else:
        headers = [("h", b"first"), ("h", b"second"), ("null", None),
                   ("bin", bytes([i % 256, 0, 255]))]
    return key, value, headers, base_ts + i


def check_compressed(lines, codec):
    """librdkafka quietly sends a batch uncompressed when the broker's
    ApiVersions does not enable the codec ("Broker does not support
    compression type ..."); the round trip would pass without testing the
    codec.  Require no such line and at least one batch sent with the codec
    (a batch that compression would make larger, such as a lone small
    record, is rightly sent plain)."""
    if codec == "none":
        return None
    for line in lines:
        if "does not support compression" in line:
            return "librdkafka did not compress: " + line.split("]: ")[-1]
    sets = [line for line in lines if "Produce MessageSet with" in line]
    if not any(line.rstrip().endswith(", %s)" % codec) for line in sets):
        return "none of %d produced batches was sent with %s" % (len(sets), codec)
    return None


def common_conf():
    return {"bootstrap.servers": BOOTSTRAP, "socket.timeout.ms": 10000}


def produce_all(topic, codec, base_ts):
    """Produce N records to partition 0; return (error text or None, offsets)."""
    conf = common_conf()
    conf.update({"acks": "all", "compression.type": codec, "linger.ms": 20,
                 "batch.num.messages": 200, "message.timeout.ms": 30000,
                 "enable.idempotence": False})
    logger, log = rdkafka_logger("rdkafka-" + codec)
    conf.update({"debug": "msg", "logger": logger})
    p = Producer(conf)
    offsets = {}
    errors = []

    def delivered(err, msg, i):
        KEEP.append(msg)
        if err is not None:
            errors.append("record %d: %s" % (i, err))
        else:
            offsets[i] = msg.offset()

    for i in range(N):
        key, value, headers, ts = record(i, base_ts)
        p.produce(topic, value=value, key=key, partition=0, timestamp=ts,
                  headers=headers,
                  on_delivery=lambda err, msg, i=i: delivered(err, msg, i))
        p.poll(0)
    left = p.flush(40)
    if left:
        return "%d records not delivered within 40 s" % left, offsets
    if errors:
        return "%d delivery errors, first: %s" % (len(errors), errors[0]), offsets
    return check_compressed(log.lines, codec), offsets


def consume_all(topic, want, timeout_s=30):
    """Read partition 0 from offset 0 until `want` records or timeout."""
    conf = common_conf()
    conf.update({"group.id": "sluice-test-unused-" + RUN_ID,
                 "enable.auto.commit": False, "enable.auto.offset.store": False,
                 "auto.offset.reset": "error", "enable.partition.eof": False,
                 "fetch.wait.max.ms": 100})
    c = Consumer(conf)
    got = []
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        deadline = time.time() + timeout_s
        while len(got) < want and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            KEEP.append(m)
            if m.error():
                raise KafkaException(m.error())
            got.append(m)
    finally:
        c.close()
    return got


def roundtrip(codec):
    topic = "confluent-%s-%s" % (codec, RUN_ID)
    base_ts = int(time.time() * 1000) - 3600 * 1000
    err, offsets = produce_all(topic, codec, base_ts)
    if err:
        return err
    if sorted(offsets.values()) != list(range(N)):
        return "delivery offsets are not 0..%d" % (N - 1)
    for i in range(N):
        if offsets[i] != i:
            return "record %d was acknowledged at offset %d" % (i, offsets[i])
    got = consume_all(topic, N)
    if len(got) != N:
        return "consumed %d of %d records" % (len(got), N)
    for i, m in enumerate(got):
        key, value, headers, ts = record(i, base_ts)
        have = (m.partition(), m.offset(), m.key(), m.value(),
                list(m.headers() or []), m.timestamp())
        expect = (0, i, key, value, headers, (TIMESTAMP_CREATE_TIME, ts))
        if have != expect:
            return "record %d differs:\n  got  %r\n  want %r" % (i, have, expect)
    return None


def admin_client():
    return AdminClient(common_conf())


def create(admin, name, partitions):
    """CreateTopics for one topic; returns None or the KafkaError."""
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)],
        operation_timeout=10, request_timeout=15)
    try:
        futures[name].result(timeout=30)
    except KafkaException as e:
        return e.args[0]
    return None


ADMIN_TOPIC = "confluent-admin-" + RUN_ID


def admin_create():
    err = create(admin_client(), ADMIN_TOPIC, 3)
    return "create_topics failed: %s" % err if err else None


def admin_metadata():
    md = admin_client().list_topics(timeout=10)
    t = md.topics.get(ADMIN_TOPIC)
    if t is None:
        return "topic missing from metadata"
    if t.error is not None:
        return "topic has error %s" % t.error
    if sorted(t.partitions) != [0, 1, 2]:
        return "partitions %r, want [0, 1, 2]" % sorted(t.partitions)
    for pid, pm in t.partitions.items():
        if pm.error is not None or pm.leader not in md.brokers:
            return "partition %d: error %s, leader %d" % (pid, pm.error, pm.leader)
    return None


def admin_exists():
    err = create(admin_client(), ADMIN_TOPIC, 3)
    if err is None:
        return "second create succeeded"
    if err.code() != KafkaError.TOPIC_ALREADY_EXISTS:
        return "error %s, want TOPIC_ALREADY_EXISTS" % err
    return None


def admin_invalid():
    bad = "bad topic name! " + RUN_ID
    try:
        err = create(admin_client(), bad, 1)
    except (KafkaException, ValueError) as e:
        return "rejected by the client, not the broker: %s" % e
    if err is None:
        return "topic %r was created" % bad
    # Kafka's INVALID_TOPIC_EXCEPTION (17) is TOPIC_EXCEPTION in librdkafka.
    if err.code() != KafkaError.TOPIC_EXCEPTION:
        return "error %s, want INVALID_TOPIC_EXCEPTION" % err
    return None


def admin_delete():
    admin = admin_client()
    futures = admin.delete_topics([ADMIN_TOPIC], operation_timeout=10, request_timeout=15)
    futures[ADMIN_TOPIC].result(timeout=30)
    # Metadata for all topics: asking for this one by name could auto-create it.
    deadline = time.time() + 10
    while time.time() < deadline:
        if ADMIN_TOPIC not in admin.list_topics(timeout=10).topics:
            return None
        time.sleep(0.2)
    return "topic still listed 10 s after delete"


OFFSETS_TOPIC = "confluent-offsets-" + RUN_ID
OFFSETS_N = 50
offsets_base_ts = int(time.time() * 1000) - 600 * 1000


def offsets_setup(topic, codec):
    """OFFSETS_N records, timestamps 10 ms apart and increasing with the
    offset; compressed ones go out as one batch (a long linger), with values
    that compress (librdkafka sends a batch plain when compressing would
    not make it smaller)."""
    logger, log = rdkafka_logger("rdkafka-offsets-" + codec)
    p = Producer(dict(common_conf(), **{"acks": "all", "message.timeout.ms": 30000,
                                        "compression.type": codec, "linger.ms": 200,
                                        "debug": "msg", "logger": logger}))
    for i in range(OFFSETS_N):
        p.produce(topic, value=b"v%d-" % i + b"x" * 200, partition=0,
                  timestamp=offsets_base_ts + 10 * i)
    left = p.flush(30)
    if left:
        return "%d records not delivered" % left
    return check_compressed(log.lines, codec)


def offsets_consumer():
    return Consumer(dict(common_conf(), **{"group.id": "sluice-test-unused-" + RUN_ID,
                                           "enable.auto.commit": False}))


def watermarks():
    c = offsets_consumer()
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(OFFSETS_TOPIC, 0), timeout=10,
                                         cached=False)
    finally:
        c.close()
    if (lo, hi) != (0, OFFSETS_N):
        return "watermarks (%d, %d), want (0, %d)" % (lo, hi, OFFSETS_N)
    return None


def offsets_for_times(topic):
    """Kafka answers with the first record at or after the time, inside a
    compressed batch too (not the batch's base offset)."""
    c = offsets_consumer()
    queries = [
        (offsets_base_ts - 1000, 0),            # before everything: the first record
        (offsets_base_ts + 10 * 17, 17),        # exact timestamp
        (offsets_base_ts + 10 * 17 + 5, 18),    # between two records: the later one
        (offsets_base_ts + 10 * OFFSETS_N + 1000, -1),  # after everything: none (-1)
    ]
    try:
        for ts, want in queries:
            res = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            if res[0].error is not None:
                return "timestamp %d: error %s" % (ts, res[0].error)
            if res[0].offset != want:
                return "timestamp %d: offset %d, want %d" % (ts, res[0].offset, want)
    finally:
        c.close()
    return None


def main():
    if not BOOTSTRAP:
        print("BOOTSTRAP is not set; run through tests/integration/with-broker.sh",
              file=sys.stderr)
        return 2
    report.watchdog("confluent", WATCHDOG_S)
    for codec in CODECS:
        case("confluent_roundtrip_" + codec, roundtrip, codec)
    case("confluent_admin_create_3_partitions", admin_create)
    case("confluent_admin_metadata", admin_metadata)
    case("confluent_admin_topic_already_exists", admin_exists)
    case("confluent_admin_invalid_topic_name", admin_invalid)
    case("confluent_admin_delete", admin_delete)
    err = offsets_setup(OFFSETS_TOPIC, "none")
    if err:
        fail("confluent_list_offsets_setup", err)
    else:
        case("confluent_watermark_offsets", watermarks)
        case("confluent_offsets_for_times", offsets_for_times, OFFSETS_TOPIC)
    topic = OFFSETS_TOPIC + "-gzip"
    err = offsets_setup(topic, "gzip")
    if err:
        fail("confluent_list_offsets_compressed_setup", err)
    else:
        case("confluent_offsets_for_times_compressed", offsets_for_times, topic)
    return report.status()


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
