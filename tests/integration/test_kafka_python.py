"""tests/integration/test_kafka_python.py - kafka-python against the broker
at $BOOTSTRAP; run by with-broker.sh with /usr/bin/python3.

  kafka_python_api_version     the client inferred a broker >= 0.11 from
                               ApiVersions, so it writes record batch v2
  kafka_python_roundtrip_CODEC KafkaProducer (acks=all) writes keyed records
                               with null/empty keys and values, headers
                               (repeated key, empty value) and explicit
                               timestamps to partition 0; KafkaConsumer
                               (no group: assign + seek_to_beginning) reads
                               them back, compared byte for byte with offsets
  kafka_python_admin_*         KafkaAdminClient creates a 3-partition topic,
                               sees it in metadata, gets TopicAlreadyExists
                               on a second create, deletes it

Codecs: none and gzip always; snappy, lz4 and zstd only when their Python
modules are installed (Debian's python3-kafka does not pull them in).

Prints "ok NAME" or "FAIL NAME: reason" per case; exits 1 on any failure.
Every wait is bounded, and a watchdog ends the run after WATCHDOG_S.
"""

import importlib
import os
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
import report
from report import case

BOOTSTRAP = os.environ.get("BOOTSTRAP")
WATCHDOG_S = 110
RUN_ID = "%d-%d" % (os.getpid(), int(time.time()))
N = 1000
CODEC_MODULES = {"none": None, "gzip": None, "snappy": "snappy", "lz4": "lz4.frame",
                 "zstd": "zstandard"}


def common():
    return {"bootstrap_servers": BOOTSTRAP, "request_timeout_ms": 30000,
            "api_version_auto_timeout_ms": 10000}


def record(i, base_ts):
    """The i-th test record: (key, value, headers, timestamp)."""
    if i % 7 == 0:
        key = None
    elif i % 17 == 0:
        key = b""
    else:
        key = b"key-%d" % i
    if i % 11 == 0 and key is not None:
        value = None  # kafka-python refuses a record with both null
    elif i % 13 == 0:
        value = b""
    else:
        value = (b"value-%d|" % i) + bytes(range(256))[i % 256:] + b"y" * (i % 300)
    if i % 5 == 0:
        headers = []
    else:
        # No null header value: KafkaProducer.send() accepts bytes only.
        headers = [("h", b"first"), ("h", b"second"), ("empty", b""),
                   ("bin", bytes([i % 256, 0, 255]))]
    return key, value, headers, base_ts + i


def api_version():
    p = KafkaProducer(**common())
    try:
        v = p.config["api_version"]
    finally:
        p.close(timeout=10)
    if v is None or tuple(v) < (0, 11):
        return "inferred broker version %r, want >= (0, 11) (record batch v2)" % (v,)
    return None


def roundtrip(codec):
    topic = "kafka-python-%s-%s" % (codec, RUN_ID)
    base_ts = int(time.time() * 1000) - 3600 * 1000
    p = KafkaProducer(acks="all", compression_type=None if codec == "none" else codec,
                      linger_ms=20, retries=0, max_block_ms=30000, **common())
    try:
        futures = []
        for i in range(N):
            key, value, headers, ts = record(i, base_ts)
            futures.append(p.send(topic, value=value, key=key, headers=headers,
                                  partition=0, timestamp_ms=ts))
        p.flush(timeout=40)
        for i, f in enumerate(futures):
            md = f.get(timeout=10)
            if md.offset != i:
                return "record %d was acknowledged at offset %d" % (i, md.offset)
    finally:
        p.close(timeout=10)

    c = KafkaConsumer(group_id=None, enable_auto_commit=False,
                      auto_offset_reset="none", fetch_max_wait_ms=100, **common())
    got = []
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        deadline = time.time() + 30
        while len(got) < N and time.time() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                got.extend(recs)
    finally:
        c.close(autocommit=False)
    if len(got) != N:
        return "consumed %d of %d records" % (len(got), N)
    for i, r in enumerate(got):
        key, value, headers, ts = record(i, base_ts)
        have = (r.partition, r.offset, r.key, r.value, list(r.headers or []),
                r.timestamp_type, r.timestamp)
        expect = (0, i, key, value, headers, 0, ts)
        if have != expect:
            return "record %d differs:\n  got  %r\n  want %r" % (i, have, expect)
    return None


ADMIN_TOPIC = "kafka-python-admin-" + RUN_ID


def admin():
    return KafkaAdminClient(**common())


def admin_create():
    a = admin()
    try:
        a.create_topics([NewTopic(ADMIN_TOPIC, 3, 1)], timeout_ms=10000)
    finally:
        a.close()
    return None


def admin_metadata():
    a = admin()
    try:
        topics = a.describe_topics([ADMIN_TOPIC])
    finally:
        a.close()
    if len(topics) != 1 or topics[0]["topic"] != ADMIN_TOPIC:
        return "describe_topics returned %r" % (topics,)
    t = topics[0]
    if t["error_code"] != 0:
        return "topic error_code %d" % t["error_code"]
    parts = sorted(p["partition"] for p in t["partitions"])
    if parts != [0, 1, 2]:
        return "partitions %r, want [0, 1, 2]" % parts
    return None


def admin_exists():
    a = admin()
    try:
        a.create_topics([NewTopic(ADMIN_TOPIC, 3, 1)], timeout_ms=10000)
    except TopicAlreadyExistsError:
        return None
    finally:
        a.close()
    return "second create succeeded"


def admin_delete():
    a = admin()
    try:
        a.delete_topics([ADMIN_TOPIC], timeout_ms=10000)
        deadline = time.time() + 10
        while time.time() < deadline:
            if ADMIN_TOPIC not in a.list_topics():
                return None
            time.sleep(0.2)
    finally:
        a.close()
    return "topic still listed 10 s after delete"


def main():
    if not BOOTSTRAP:
        print("BOOTSTRAP is not set; run through tests/integration/with-broker.sh",
              file=sys.stderr)
        return 2
    report.watchdog("kafka_python", WATCHDOG_S)
    case("kafka_python_api_version", api_version)
    for codec, module in CODEC_MODULES.items():
        if module is not None:
            try:
                importlib.import_module(module)
            except ImportError:
                print("# skip kafka_python_roundtrip_%s: no Python module %s"
                      % (codec, module), flush=True)
                continue
        case("kafka_python_roundtrip_" + codec, roundtrip, codec)
    case("kafka_python_admin_create_3_partitions", admin_create)
    case("kafka_python_admin_metadata", admin_metadata)
    case("kafka_python_admin_topic_already_exists", admin_exists)
    case("kafka_python_admin_delete", admin_delete)
    return report.status()


if __name__ == "__main__":
    sys.exit(main())
