// broker-args: --set group.initial.rebalance.delay.ms=0
// tests/integration/test_groups_kafkajs.js - kafkajs 2.2.4 consumer groups
// against the broker at $BOOTSTRAP; run by with-broker.sh with node.
//
// Each consumer is a node process of its own (this file, run as
// `node test_groups_kafkajs.js consumer CONF`), so that one can be
// SIGKILLed.  It writes one JSON line per event to its own file with
// fs.writeSync: every assignment it receives and every record it consumes
// (partition, offset, record number), tagged with its generation and member
// id.  kafkajs has no public accessor for the generation, so it is taken
// from kafkajs's own debug log entry "Received assignment" (generationId,
// memberId, memberAssignment), caught by a logCreator that drops every
// other entry.  kafkajs consumes eagerly: a new assignment replaces the
// old one, and nothing is consumed between a rebalance's start and its
// "Received assignment".  Offsets are committed by autoCommit (every
// 500 ms) only for records whose eachMessage returned, that is after their
// line was written.
//
// Meanwhile this process produces numbered records (value = the number,
// partition = number % 6, acks=-1) at RATE per second with a kafkajs
// producer.
//
//   kafkajs_groups_three_share   three consumers hold all six partitions
//                                between them, each some
//   kafkajs_groups_failover      one is SIGKILLed; each of its partitions is
//                                consumed by another member within
//                                SESSION_MS + MARGIN_S
//   kafkajs_groups_new_member_share  a fourth joins and gets a share
//   kafkajs_groups_no_skips      every acknowledged record was consumed
//   kafkajs_groups_one_member_per_generation  no record consumed by two
//                                members in one generation (redelivery in a
//                                later generation is allowed and counted)
//   kafkajs_groups_assignments_disjoint  in each generation each partition
//                                went to at most one member
//   kafkajs_groups_close         the survivors disconnect (leave) cleanly
//
// Prints "ok NAME" or "FAIL NAME: reason" per case; exits 1 on any failure.
// Every wait is bounded, a watchdog ends the run after WATCHDOG_S, and every
// consumer process is killed on the way out.
'use strict'

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'

const fs = require('fs')
const os = require('os')
const path = require('path')
const { spawn } = require('child_process')
const { Kafka, logLevel } = require(path.join(__dirname, '..', '..', 'node_modules', 'kafkajs'))

const BOOTSTRAP = process.env.BOOTSTRAP
const PARTITIONS = 6
const SESSION_MS = 6000
const MARGIN_S = 8
const RATE = 150
const WATCHDOG_S = 150
const RUN_ID = `${process.pid}-${Math.floor(Date.now() / 1000)}`

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// ---- the consumer process ----

async function consumerMain (conf) {
  const fd = fs.openSync(conf.out, 'a')
  let gen = -1
  let member = ''
  const emit = obj => {
    fs.writeSync(fd, JSON.stringify(Object.assign(obj, { gen, member, t: Date.now() / 1000 })) + '\n')
  }
  const logCreator = () => ({ log }) => {
    if (log.message === 'Received assignment') {
      gen = log.generationId
      member = log.memberId
      const parts = (log.memberAssignment || {})[conf.topic] || []
      emit({ ev: 'assign', parts: [...parts].sort((a, b) => a - b) })
    } else if (log.message && /crash|error/i.test(log.message) && log.error) {
      emit({ ev: 'log', message: log.message, error: String(log.error) })
    }
  }
  const kafka = new Kafka({
    clientId: conf.name,
    brokers: [conf.bootstrap],
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 2000 },
    logLevel: logLevel.DEBUG,
    logCreator
  })
  const consumer = kafka.consumer({
    groupId: conf.group,
    sessionTimeout: SESSION_MS,
    rebalanceTimeout: 20000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 200,
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 2000 }
  })
  consumer.on(consumer.events.CRASH, e => emit({ ev: 'crash', error: String(e.payload.error) }))
  let stopping = false
  process.on('SIGTERM', async () => {
    if (stopping) return
    stopping = true
    emit({ ev: 'closing' })
    try {
      await consumer.disconnect()
      emit({ ev: 'closed' })
    } catch (e) {
      emit({ ev: 'close_error', error: String(e) })
    }
    process.exit(0)
  })
  await consumer.connect()
  await consumer.subscribe({ topics: [conf.topic], fromBeginning: true })
  emit({ ev: 'start' })
  await consumer.run({
    autoCommit: true,
    autoCommitInterval: 500,
    eachMessage: async ({ partition, message }) => {
      emit({ ev: 'm', p: partition, o: Number(message.offset), n: Number(message.value.toString()) })
    }
  })
}

// ---- the test process ----

let failures = 0
const CHILDREN = []

function ok (name) { console.log(`ok ${name}`) }
function fail (name, why) {
  failures++
  console.log(`FAIL ${name}: ${why}`)
}
function note (text) { console.log(`# ${text}`) }

async function runCase (name, fn) {
  let why
  try {
    why = await fn()
  } catch (e) {
    console.error(e)
    why = `${e.name}: ${e.message}`
  }
  if (Array.isArray(why)) ok(`${name} (${why[1]})`)
  else if (why) fail(name, why)
  else ok(name)
  return !why || Array.isArray(why)
}

function killChildren () {
  for (const c of CHILDREN) {
    if (c.exitCode === null && c.signalCode === null) {
      try { c.proc.kill('SIGKILL') } catch (e) {}
    }
  }
}

class Proc {
  constructor (workdir, name, group, topic) {
    this.name = name
    this.out = path.join(workdir, `${name}.jsonl`)
    this.err = path.join(workdir, `${name}.stderr`)
    const conf = { bootstrap: BOOTSTRAP, group, topic, name, out: this.out }
    const errFd = fs.openSync(this.err, 'a')
    this.proc = spawn(process.execPath, [__filename, 'consumer', JSON.stringify(conf)],
      { stdio: ['ignore', 'ignore', errFd] })
    fs.closeSync(errFd)
    this.exitCode = null
    this.signalCode = null
    this.exited = new Promise(resolve => this.proc.on('exit', (code, sig) => {
      this.exitCode = code
      this.signalCode = sig
      resolve()
    }))
    CHILDREN.push(this)
    this.events = []
    this.msgs = []
    this.pos = 0
    this.buf = ''
    this.owned = new Set()
    this.killedAt = null
  }

  refresh () {
    let data
    try {
      const fd = fs.openSync(this.out, 'r')
      try {
        const size = fs.fstatSync(fd).size
        if (size <= this.pos) return
        const b = Buffer.alloc(size - this.pos)
        fs.readSync(fd, b, 0, b.length, this.pos)
        this.pos = size
        data = b.toString()
      } finally {
        fs.closeSync(fd)
      }
    } catch (e) {
      if (e.code === 'ENOENT') return
      throw e
    }
    const lines = (this.buf + data).split('\n')
    this.buf = lines.pop()
    for (const line of lines) {
      const ev = JSON.parse(line)
      ev.who = this.name
      this.events.push(ev)
      if (ev.ev === 'm') this.msgs.push(ev)
      else if (ev.ev === 'assign') this.owned = new Set(ev.parts)
    }
  }

  async kill () {
    this.proc.kill('SIGKILL')
    await Promise.race([this.exited, sleep(10000)])
    this.killedAt = Date.now() / 1000
  }

  async stop (deadline) {
    if (this.exitCode === null && this.signalCode === null) this.proc.kill('SIGTERM')
    const left = Math.max(100, deadline - Date.now())
    const done = await Promise.race([this.exited.then(() => true), sleep(left).then(() => false)])
    if (!done) {
      this.proc.kill('SIGKILL')
      await Promise.race([this.exited, sleep(5000)])
    }
    this.refresh()
    return done
  }

  stderrTail (n = 8) {
    try {
      return fs.readFileSync(this.err, 'utf8').split('\n').filter(l => l).slice(-n)
    } catch (e) {
      return []
    }
  }
}

class Load {
  constructor (producer, topic) {
    this.producer = producer
    this.topic = topic
    this.n = 0
    this.acked = new Map() // "p:o" -> number
    this.errors = []
    this.running = true
    this.done = this.loop()
  }

  async loop () {
    const t0 = Date.now()
    while (this.running) {
      const due = Math.min(Math.floor((Date.now() - t0) * RATE / 1000) - this.n, 200)
      if (due > 0) {
        const msgs = []
        const byPart = new Map()
        for (let i = 0; i < due; i++) {
          const n = this.n++
          const p = n % PARTITIONS
          msgs.push({ partition: p, key: `k${n}`, value: String(n) })
          if (!byPart.has(p)) byPart.set(p, [])
          byPart.get(p).push(n)
        }
        try {
          const res = await this.producer.send({ topic: this.topic, acks: -1, timeout: 30000, messages: msgs })
          for (const r of res) {
            if (r.errorCode !== 0) {
              this.errors.push(`partition ${r.partition}: error ${r.errorCode}`)
              continue
            }
            const ns = byPart.get(r.partition) || []
            ns.forEach((n, i) => this.acked.set(`${r.partition}:${Number(r.baseOffset) + i}`, n))
          }
        } catch (e) {
          this.errors.push(`records ${msgs[0].value}..: ${e.message}`)
        }
      }
      await sleep(50)
    }
  }

  async stop () {
    this.running = false
    await this.done
  }
}

async function waitUntil (seconds, pred, procs) {
  const end = Date.now() + seconds * 1000
  for (;;) {
    for (const p of procs) p.refresh()
    if (pred()) return true
    if (Date.now() >= end) return false
    await sleep(250)
  }
}

function everyoneHolds (procs) {
  if (!procs.every(p => p.owned.size > 0)) return false
  const flat = procs.flatMap(p => [...p.owned]).sort((a, b) => a - b)
  return JSON.stringify(flat) === JSON.stringify([...Array(PARTITIONS).keys()])
}

function describeOwners (procs) {
  return procs.map(p => `${p.name}${p.killedAt ? ' (killed)' : ''} owns [${[...p.owned].sort((a, b) => a - b)}]`).join('; ')
}

function allConsumed (load, procs) {
  const seen = new Set()
  for (const p of procs) for (const m of p.msgs) seen.add(`${m.p}:${m.o}`)
  for (const k of load.acked.keys()) if (!seen.has(k)) return false
  return true
}

async function main () {
  if (!BOOTSTRAP) {
    console.error('BOOTSTRAP is not set; run through tests/integration/with-broker.sh')
    return 2
  }
  const started = Date.now()
  const workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-groups-kafkajs-'))
  note(`consumer event logs in ${workdir}`)
  const kafka = new Kafka({
    clientId: 'sluice-test',
    brokers: [BOOTSTRAP],
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 3000 },
    logLevel: logLevel.WARN
  })
  const topic = `kafkajs-grp-${RUN_ID}`
  const group = `kafkajs-grp-${RUN_ID}`
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }], waitForLeaders: true, timeout: 10000 })
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false })
  await producer.connect()
  const load = new Load(producer, topic)

  const procs = [0, 1, 2].map(i => new Proc(workdir, `kjs-c${i}`, group, topic))
  const everything = [...procs]
  const showStderr = () => {
    for (const p of everything) for (const l of p.stderrTail()) note(`${p.name}: ${l}`)
  }

  const shared = await runCase('kafkajs_groups_three_share', async () => {
    if (await waitUntil(40, () => everyoneHolds(procs), procs)) return ['', describeOwners(procs)]
    return `after 40 s: ${describeOwners(procs)}`
  })
  if (!shared) {
    showStderr()
    killChildren()
    await load.stop()
    return 1
  }
  await waitUntil(3, () => false, procs)

  const victim = procs[1]
  victim.refresh()
  const lost = [...victim.owned].sort((a, b) => a - b)
  await victim.kill()
  note(`killed ${victim.name} (pid ${victim.proc.pid}), which owned partitions [${lost}]`)
  const live = [procs[0], procs[2]]

  const takenOver = () => {
    const firsts = {}
    for (const p of live) {
      for (const m of p.msgs) {
        if (lost.includes(m.p) && m.t > victim.killedAt) {
          const dt = m.t - victim.killedAt
          if (firsts[m.p] === undefined || dt < firsts[m.p]) firsts[m.p] = dt
        }
      }
    }
    return firsts
  }
  await runCase('kafkajs_groups_failover', async () => {
    const limit = SESSION_MS / 1000 + MARGIN_S
    await waitUntil(limit + 2, () => Object.keys(takenOver()).length === lost.length, live)
    const firsts = takenOver()
    const never = lost.filter(p => firsts[p] === undefined)
    if (never.length) return `partitions [${never}] of the killed member not consumed by others ${limit + 2} s after the kill (${describeOwners(live)})`
    const slow = lost.filter(p => firsts[p] > limit)
    const shown = lost.map(p => `${p}: ${firsts[p].toFixed(1)} s`).join(', ')
    if (slow.length) return `taken over later than ${limit} s after the kill: ${shown}`
    const handover = lost.map(p => {
      const mine = victim.msgs.filter(m => m.p === p).map(m => m.o)
      const after = live.flatMap(x => x.msgs).filter(m => m.p === p && m.t > victim.killedAt)
      const first = after.length ? after.reduce((a, b) => (b.t < a.t ? b : a)).o : 'none'
      return `partition ${p}: last read ${mine.length ? Math.max(...mine) : 'none'}, next owner started at ${first}`
    }).join(', ')
    return ['', `taken over ${shown} after the kill; ${handover}`]
  })

  const newcomer = new Proc(workdir, 'kjs-c3', group, topic)
  everything.push(newcomer)
  live.push(newcomer)
  await runCase('kafkajs_groups_new_member_share', async () => {
    if (await waitUntil(30, () => newcomer.owned.size > 0 && newcomer.msgs.length > 0 && everyoneHolds(live), live)) {
      return ['', describeOwners(live)]
    }
    return `after 30 s: ${describeOwners(live)}; the new member consumed ${newcomer.msgs.length} records`
  })
  await waitUntil(2, () => false, live)

  await load.stop()
  if (!await waitUntil(25, () => allConsumed(load, everything), live)) {
    note('not every acknowledged record consumed 25 s after the last was produced')
  }
  await runCase('kafkajs_groups_close', async () => {
    const deadline = Date.now() + 20000
    const results = await Promise.all(live.map(p => p.stop(deadline)))
    const slow = live.filter((p, i) => !results[i]).map(p => p.name)
    if (slow.length) return `${slow} did not exit within 20 s of SIGTERM`
    const unclean = live.filter(p => !p.events.some(e => e.ev === 'closed'))
    if (unclean.length) {
      return unclean.map(p => {
        const e = p.events.find(x => x.ev === 'close_error' || x.ev === 'crash')
        return `${p.name} did not disconnect cleanly${e ? `: ${e.ev} ${e.error}` : ''}`
      }).join('; ')
    }
    return null
  })
  for (const p of everything) p.refresh()

  const byOffset = new Map() // "p:o" -> [{gen, who, n}]
  for (const p of everything) {
    for (const m of p.msgs) {
      const k = `${m.p}:${m.o}`
      if (!byOffset.has(k)) byOffset.set(k, [])
      byOffset.get(k).push({ gen: m.gen, who: p.name, n: m.n })
    }
  }

  await runCase('kafkajs_groups_no_skips', async () => {
    if (load.errors.length) return `${load.errors.length} send errors, first: ${load.errors[0]}`
    const missing = [...load.acked.keys()].filter(k => !byOffset.has(k))
    const wrong = [...load.acked.entries()].filter(([k, n]) => byOffset.has(k) && byOffset.get(k).some(x => x.n !== n))
    if (wrong.length) return `${wrong.length} offsets returned other records than were acknowledged there, first ${wrong[0][0]}: acked ${wrong[0][1]}, consumed ${JSON.stringify(byOffset.get(wrong[0][0]))}`
    if (missing.length) {
      const per = {}
      for (const k of missing) {
        const [p, o] = k.split(':').map(Number)
        if (!per[p]) per[p] = []
        per[p].push(o)
      }
      const shown = Object.entries(per).map(([p, os]) => `partition ${p} offsets ${os.sort((a, b) => a - b).slice(0, 8)}${os.length > 8 ? '...' : ''}`).join('; ')
      return `${missing.length} of ${load.acked.size} acknowledged records never consumed: ${shown}`
    }
    let copies = 0
    for (const v of byOffset.values()) copies += v.length - 1
    return ['', `${load.acked.size} records, ${copies} consumed again in a later generation`]
  })

  await runCase('kafkajs_groups_one_member_per_generation', async () => {
    const bad = []
    let unknown = 0
    for (const [k, seen] of byOffset) {
      const gens = new Map()
      for (const x of seen) {
        if (x.gen < 0) { unknown++; continue }
        if (!gens.has(x.gen)) gens.set(x.gen, new Set())
        gens.get(x.gen).add(x.who)
      }
      for (const [gen, whos] of gens) if (whos.size > 1) bad.push(`${k} in generation ${gen} by ${[...whos]}`)
    }
    if (unknown) note(`${unknown} records consumed before any "Received assignment" (generation not known)`)
    if (bad.length) return `${bad.length} records consumed by two members in one generation; first (partition:offset) ${bad[0]}`
    return null
  })

  await runCase('kafkajs_groups_assignments_disjoint', async () => {
    const byGen = new Map()
    const bad = []
    for (const p of everything) {
      for (const e of p.events) {
        if (e.ev !== 'assign') continue
        if (!byGen.has(e.gen)) byGen.set(e.gen, new Map())
        const owners = byGen.get(e.gen)
        for (const part of e.parts) {
          if (owners.has(part) && owners.get(part) !== p.name) bad.push(`generation ${e.gen}: partition ${part} to ${owners.get(part)} and ${p.name}`)
          owners.set(part, p.name)
        }
      }
    }
    return bad.length ? bad.slice(0, 5).join('; ') : null
  })

  const crashes = everything.flatMap(p => p.events.filter(e => e.ev === 'crash').map(e => `${p.name}: ${e.error}`))
  for (const c of crashes) note(`consumer crash event: ${c}`)
  await producer.disconnect()
  await admin.disconnect()
  note(`${((Date.now() - started) / 1000).toFixed(1)} s`)
  if (failures) showStderr()
  else fs.rmSync(workdir, { recursive: true, force: true })
  return failures ? 1 : 0
}

if (process.argv[2] === 'consumer') {
  consumerMain(JSON.parse(process.argv[3])).catch(e => {
    console.error(e)
    process.exit(1)
  })
} else {
  const watchdog = setTimeout(() => {
    console.log(`FAIL kafkajs_groups_watchdog: still running after ${WATCHDOG_S} s`)
    killChildren()
    process.exit(1)
  }, WATCHDOG_S * 1000)
  main().then(status => {
    clearTimeout(watchdog)
    killChildren()
    process.exit(status)
  }, e => {
    console.error(e)
    console.log(`FAIL kafkajs_groups_setup: ${e.name}: ${e.message}`)
    killChildren()
    process.exit(1)
  })
}
