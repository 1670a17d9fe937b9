// tests/integration/test_kafkajs.js - kafkajs 2.2.4 against the broker at
// $BOOTSTRAP; run by with-broker.sh with node.
//
// kafkajs can only consume through a consumer group, and groups are not
// implemented yet; it has no public group-less fetch.  So kafkajs creates,
// describes and deletes topics, produces (acks=-1, uncompressed and gzip)
// and asks for offsets, also with an idempotent producer, and what it produced is read back by a small
// confluent-kafka reader (/usr/bin/python3, assign() without a group) and
// compared byte for byte: keys, values, headers, timestamps, offsets.
//
// kafkajs sends a null header value wrongly (it throws while sizing it), so
// headers here have a repeated key and an empty value but no null value.
//
// Prints "ok NAME" or "FAIL NAME: reason" per case; exits 1 on any failure.
// Every request has a timeout, and a watchdog ends the run after 110 s.
'use strict'

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'

const path = require('path')
const { spawnSync } = require('child_process')
const { Kafka, CompressionTypes, logLevel } = require(path.join(__dirname, '..', '..', 'node_modules', 'kafkajs'))

const BOOTSTRAP = process.env.BOOTSTRAP
const RUN_ID = `${process.pid}-${Math.floor(Date.now() / 1000)}`
const N = 500
const BATCH = 100 // records per send(), so several batches per topic
let failures = 0

function ok (name) { console.log(`ok ${name}`) }
function fail (name, why) {
  failures++
  console.log(`FAIL ${name}: ${why}`)
}

async function runCase (name, fn) {
  let why
  try {
    why = await fn()
  } catch (e) {
    console.error(e)
    why = `${e.name}: ${e.message}`
  }
  if (why) fail(name, why)
  else ok(name)
  return !why
}

// The i-th record as sent, and as the reader must report it.
function record (i, baseTs) {
  const key = i % 7 === 0 ? null : Buffer.from(`key-${i}`)
  let value
  if (i % 11 === 0) value = null
  else if (i % 13 === 0) value = Buffer.alloc(0)
  else {
    const bin = Buffer.alloc(256 - (i % 256))
    for (let j = 0; j < bin.length; j++) bin[j] = (i + j) % 256
    value = Buffer.concat([Buffer.from(`value-${i}|`), bin, Buffer.alloc(i % 300, 'z')])
  }
  const headers = i % 5 === 0
    ? {}
    : { h: [Buffer.from('first'), Buffer.from('second')], empty: Buffer.alloc(0), bin: Buffer.from([i % 256, 0, 255]) }
  const want = {
    o: i,
    k: key === null ? null : key.toString('hex'),
    v: value === null ? null : value.toString('hex'),
    h: i % 5 === 0
      ? []
      : [['h', '6669727374'], ['h', '7365636f6e64'], ['empty', ''], ['bin', Buffer.from([i % 256, 0, 255]).toString('hex')]],
    tt: 1, // CreateTime
    t: baseTs + i
  }
  return { msg: { key, value, headers, timestamp: String(baseTs + i), partition: 0 }, want }
}

// Reads partition 0 of a topic from offset 0 with confluent-kafka and prints
// one JSON object per record.  Message objects are kept and the process ends
// with os._exit: Debian's confluent-kafka 1.7.0 mishandles None's reference
// count when a Message with a null key or value is freed.
const READER = `
import json, os, sys, time
from confluent_kafka import Consumer, TopicPartition
bootstrap, topic, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "sluice-test-unused",
              "enable.auto.commit": False, "auto.offset.reset": "error"})
c.assign([TopicPartition(topic, 0, 0)])
keep = []
deadline = time.time() + 30
hx = lambda b: None if b is None else b.hex()
while len(keep) < want and time.time() < deadline:
    m = c.poll(0.5)
    if m is None:
        continue
    keep.append(m)
    if m.error():
        print(json.dumps({"error": str(m.error())}), flush=True)
        os._exit(1)
    tt, ts = m.timestamp()
    print(json.dumps({"o": m.offset(), "k": hx(m.key()), "v": hx(m.value()),
                      "h": [[k, hx(v)] for k, v in (m.headers() or [])],
                      "tt": tt, "t": ts}), flush=True)
c.close()
sys.stdout.flush()
os._exit(0)
`

function readBack (topic, n) {
  const r = spawnSync('/usr/bin/python3', ['-c', READER, BOOTSTRAP, topic, String(n)],
    { timeout: 60000, encoding: 'utf8', maxBuffer: 64 << 20 })
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`reader exited ${r.status}: ${(r.stdout + r.stderr).slice(-500)}`)
  return r.stdout.split('\n').filter(l => l).map(l => JSON.parse(l))
}

async function main () {
  if (!BOOTSTRAP) {
    console.error('BOOTSTRAP is not set; run through tests/integration/with-broker.sh')
    return 2
  }
  const kafka = new Kafka({
    clientId: 'sluice-test',
    brokers: [BOOTSTRAP],
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 3000 },
    logLevel: logLevel.WARN
  })
  const admin = kafka.admin()
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false })
  await admin.connect()
  await producer.connect()

  const adminTopic = `kafkajs-admin-${RUN_ID}`
  const topics = { none: `kafkajs-none-${RUN_ID}`, gzip: `kafkajs-gzip-${RUN_ID}` }
  const baseTs = { none: Date.now() - 3600 * 1000, gzip: Date.now() - 1800 * 1000 }

  await runCase('kafkajs_admin_create_3_partitions', async () => {
    const created = await admin.createTopics({
      topics: [{ topic: adminTopic, numPartitions: 3, replicationFactor: 1 }],
      waitForLeaders: true,
      timeout: 10000
    })
    return created === true ? null : `createTopics returned ${created}`
  })

  await runCase('kafkajs_admin_topic_already_exists', async () => {
    // kafkajs answers false when every error is TOPIC_ALREADY_EXISTS.
    const created = await admin.createTopics({
      topics: [{ topic: adminTopic, numPartitions: 3, replicationFactor: 1 }],
      timeout: 10000
    })
    return created === false ? null : `createTopics returned ${created}, want false`
  })

  await runCase('kafkajs_admin_metadata', async () => {
    const md = await admin.fetchTopicMetadata({ topics: [adminTopic] })
    const t = md.topics.find(x => x.name === adminTopic)
    if (!t) return 'topic missing from metadata'
    const ids = t.partitions.map(p => p.partitionId).sort()
    if (JSON.stringify(ids) !== '[0,1,2]') return `partitions ${JSON.stringify(ids)}, want [0,1,2]`
    const bad = t.partitions.find(p => p.partitionErrorCode !== 0 || p.leader < 0)
    return bad ? `partition ${bad.partitionId}: error ${bad.partitionErrorCode}, leader ${bad.leader}` : null
  })

  for (const codec of ['none', 'gzip']) {
    const topic = topics[codec]
    const compression = codec === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None
    const records = []
    for (let i = 0; i < N; i++) records.push(record(i, baseTs[codec]))

    const produced = await runCase(`kafkajs_produce_${codec}`, async () => {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true, timeout: 10000 })
      for (let start = 0; start < N; start += BATCH) {
        const res = await producer.send({
          topic,
          acks: -1,
          timeout: 30000,
          compression,
          messages: records.slice(start, start + BATCH).map(r => r.msg)
        })
        if (res.length !== 1 || res[0].errorCode !== 0 || res[0].partition !== 0) {
          return `send at ${start}: ${JSON.stringify(res)}`
        }
        if (String(res[0].baseOffset) !== String(start)) {
          return `send at ${start}: base offset ${res[0].baseOffset}, want ${start}`
        }
      }
      return null
    })

    if (produced) {
      await runCase(`kafkajs_readback_${codec}`, async () => {
        const got = readBack(topic, N)
        if (got.length !== N) return `read back ${got.length} of ${N} records`
        for (let i = 0; i < N; i++) {
          const have = JSON.stringify(got[i])
          const want = JSON.stringify(records[i].want)
          if (have !== want) return `record ${i} differs:\n  got  ${have}\n  want ${want}`
        }
        return null
      })
    }
  }

  // An idempotent producer: InitProducerId, then batches carrying its id,
  // epoch and sequences, which the broker checks; read back as above.
  const idemTopic = `kafkajs-idem-${RUN_ID}`
  const idemRecords = []
  for (let i = 0; i < N; i++) idemRecords.push(record(i, baseTs.none))
  const idemProduced = await runCase('kafkajs_produce_idempotent', async () => {
    const idem = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 })
    await idem.connect()
    try {
      await admin.createTopics({ topics: [{ topic: idemTopic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true, timeout: 10000 })
      for (let start = 0; start < N; start += BATCH) {
        const res = await idem.send({
          topic: idemTopic,
          acks: -1,
          timeout: 30000,
          messages: idemRecords.slice(start, start + BATCH).map(r => r.msg)
        })
        if (res.length !== 1 || res[0].errorCode !== 0 || String(res[0].baseOffset) !== String(start)) {
          return `send at ${start}: ${JSON.stringify(res)}, want base offset ${start}`
        }
      }
    } finally {
      await idem.disconnect()
    }
    return null
  })
  if (idemProduced) {
    await runCase('kafkajs_readback_idempotent', async () => {
      const got = readBack(idemTopic, N)
      if (got.length !== N) return `read back ${got.length} of ${N} records`
      for (let i = 0; i < N; i++) {
        const have = JSON.stringify(got[i])
        const want = JSON.stringify(idemRecords[i].want)
        if (have !== want) return `record ${i} differs:\n  got  ${have}\n  want ${want}`
      }
      return null
    })
  }

  await runCase('kafkajs_fetch_topic_offsets', async () => {
    const offs = await admin.fetchTopicOffsets(topics.gzip)
    const p0 = offs.find(p => p.partition === 0)
    if (!p0) return `no partition 0 in ${JSON.stringify(offs)}`
    if (String(p0.low) !== '0' || String(p0.high) !== String(N)) {
      return `low ${p0.low} high ${p0.high}, want 0 and ${N}`
    }
    return null
  })

  await runCase('kafkajs_offsets_by_timestamp', async () => {
    const cases = [
      [baseTs.gzip - 1000, '0'], // before everything: the first record
      [baseTs.gzip + 17, '17'], // an exact timestamp
      [baseTs.gzip + N + 1000, String(N)] // after everything: kafkajs reports the high watermark
    ]
    for (const [ts, want] of cases) {
      const offs = await admin.fetchTopicOffsetsByTimestamp(topics.gzip, ts)
      const p0 = offs.find(p => p.partition === 0)
      if (!p0 || String(p0.offset) !== want) return `timestamp ${ts}: ${JSON.stringify(offs)}, want offset ${want}`
    }
    return null
  })

  await runCase('kafkajs_admin_delete', async () => {
    await admin.deleteTopics({ topics: [adminTopic, topics.none, topics.gzip, idemTopic], timeout: 10000 })
    const deadline = Date.now() + 10000
    while (Date.now() < deadline) {
      const names = await admin.listTopics()
      if (![adminTopic, topics.none, topics.gzip, idemTopic].some(t => names.includes(t))) return null
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    return 'topics still listed 10 s after delete'
  })

  await producer.disconnect()
  await admin.disconnect()
  return failures ? 1 : 0
}

const watchdog = setTimeout(() => {
  console.log('FAIL kafkajs_watchdog: still running after 110 s')
  process.exit(1)
}, 110000)

main().then(status => {
  clearTimeout(watchdog)
  process.exit(status)
}, e => {
  console.error(e)
  console.log(`FAIL kafkajs_setup: ${e.name}: ${e.message}`)
  process.exit(1)
})
