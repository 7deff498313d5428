// Queue groups and durables: sharing, handing on what a departing member held, resuming.
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./helpers')

const data = msgs => msgs.map(m => m.getData())
const seqs = msgs => msgs.map(m => m.getSequence())

test('a queue group shares the messages among its members, each once', async () => {
  const broker = await h.startBroker()
  const a = await h.connect(broker, 'member-a')
  const b = await h.connect(broker, 'member-b')
  try {
    const subA = await h.subscribe(a, 'work', 'workers', a.subscriptionOptions())
    const subB = await h.subscribe(b, 'work', 'workers', b.subscriptionOptions())
    for (let i = 1; i <= 20; i++) await h.publish(a, 'work', `job${i}`)
    const deadline = Date.now() + 10000
    while (subA.messages.length + subB.messages.length < 20 && Date.now() < deadline) await h.sleep(20)
    const all = [...seqs(subA.messages), ...seqs(subB.messages)].sort((x, y) => x - y)
    assert.deepEqual(all, Array.from({ length: 20 }, (_, i) => i + 1))
    assert.ok(subA.messages.length > 0 && subB.messages.length > 0, 'both members got work')
  } finally {
    await h.close(a); await h.close(b); await broker.stop()
  }
})

test("a member that closes hands what it had not acknowledged to the group's other member", async () => {
  const broker = await h.startBroker()
  const a = await h.connect(broker, 'holder')
  const b = await h.connect(broker, 'taker')
  try {
    const manual = sc => sc.subscriptionOptions().setManualAckMode(true).setAckWait(60000).setMaxInFlight(5)
    const subA = await h.subscribe(a, 'handoff', 'grp', manual(a))
    for (let i = 1; i <= 3; i++) await h.publish(a, 'handoff', `m${i}`)
    await h.received(subA, 3)
    const subB = await h.subscribe(b, 'handoff', 'grp', manual(b))
    await h.close(a)
    const got = await h.received(subB, 3)
    assert.deepEqual(seqs(got), [1, 2, 3])
    assert.ok(got.every(m => m.isRedelivered()), 'handed-on messages are marked redelivered')
  } finally {
    await h.close(b); await broker.stop()
  }
})

test('a durable subscription resumes after its client closes, and starts over after an unsubscribe', async () => {
  const broker = await h.startBroker()
  try {
    let sc = await h.connect(broker, 'durable-client')
    const opts = s => s.subscriptionOptions().setDurableName('audit').setDeliverAllAvailable()
    let sub = await h.subscribe(sc, 'ledger', null, opts(sc))
    for (let i = 1; i <= 3; i++) await h.publish(sc, 'ledger', `e${i}`)
    await h.received(sub, 3)
    await assert.rejects(h.subscribe(sc, 'ledger', null, opts(sc)), /stan: duplicate durable registration/)
    await h.close(sc)
    // While it is away, more arrives.
    const other = await h.connect(broker, 'publisher')
    for (let i = 4; i <= 5; i++) await h.publish(other, 'ledger', `e${i}`)
    sc = await h.connect(broker, 'durable-client')
    sub = await h.subscribe(sc, 'ledger', null, opts(sc))
    assert.deepEqual(data(await h.received(sub, 2)), ['e4', 'e5'], 'resumed where it left off')
    await h.sleep(200)
    assert.equal(sub.messages.length, 2)
    await h.unsubscribe(sub)
    sub = await h.subscribe(sc, 'ledger', null, opts(sc))
    assert.equal((await h.received(sub, 5)).length, 5, 'unsubscribed, the durable is gone: all again')
    // Another client's durable of the same name is its own.
    const theirs = await h.subscribe(other, 'ledger', null, opts(other))
    assert.equal((await h.received(theirs, 5)).length, 5)
    await h.close(sc); await h.close(other)
  } finally { await broker.stop() }
})

test('a durable keeps what was delivered but not acknowledged, and redelivers it on resume', async () => {
  const broker = await h.startBroker()
  try {
    let sc = await h.connect(broker, 'dur-pending')
    const opts = s => s.subscriptionOptions().setDurableName('d').setDeliverAllAvailable()
      .setManualAckMode(true).setAckWait(60000)
    let sub = await h.subscribe(sc, 'pending', null, opts(sc))
    await h.publish(sc, 'pending', 'p1')
    await h.publish(sc, 'pending', 'p2')
    const [first] = await h.received(sub, 2)
    first.ack()
    await h.sleep(100)
    await h.closeSub(sub)
    sub = await h.subscribe(sc, 'pending', null, opts(sc))
    const [again] = await h.received(sub, 1)
    assert.equal(again.getData(), 'p2')
    assert.equal(again.isRedelivered(), true)
    await h.close(sc)
  } finally { await broker.stop() }
})

test('a durable queue group outlives its last member closing and is removed by its last unsubscribe', async () => {
  const broker = await h.startBroker()
  try {
    const opts = s => s.subscriptionOptions().setDurableName('dq').setDeliverAllAvailable()
    const pub = await h.connect(broker, 'dq-publisher')
    let sc = await h.connect(broker, 'dq-member')
    let sub = await h.subscribe(sc, 'jobs', 'workers', opts(sc))
    await h.publish(pub, 'jobs', 'j1')
    await h.received(sub, 1)
    await h.close(sc)
    await h.publish(pub, 'jobs', 'j2')
    sc = await h.connect(broker, 'dq-member-2')
    sub = await h.subscribe(sc, 'jobs', 'workers', opts(sc))
    assert.deepEqual(data(await h.received(sub, 1)), ['j2'], 'the group went on where it was')
    await h.sleep(200)
    assert.equal(sub.messages.length, 1)
    await h.unsubscribe(sub)
    sub = await h.subscribe(sc, 'jobs', 'workers', opts(sc))
    assert.deepEqual(data(await h.received(sub, 2)), ['j1', 'j2'], 'unsubscribed, the group started over')
    await h.close(sc); await h.close(pub)
  } finally { await broker.stop() }
})

test("a client that stops answering heartbeats is closed and its queue member's messages go to the others", async () => {
  const broker = await h.startBroker(['-hbi', '300ms', '-hbt', '300ms', '-hbf', '1'])
  try {
    const { spawn } = require('node:child_process')
    // A member in another process that takes messages and never acknowledges them, then hangs.
    const script = `
      const stan = require('node-nats-streaming')
      const sc = stan.connect('${h.CLUSTER}', 'frozen', { url: '${broker.url}' })
      sc.on('connect', () => {
        const o = sc.subscriptionOptions().setManualAckMode(true).setAckWait(60000)
        const sub = sc.subscribe('tasks', 'crew', o)
        let n = 0
        sub.on('message', () => { if (++n === 2) { console.log('took'); process.kill(process.pid, 'SIGSTOP') } })
        sub.on('ready', () => console.log('ready'))
      })`
    const child = spawn(process.execPath, ['-e', script], { cwd: __dirname, stdio: ['ignore', 'pipe', 'inherit'] })
    const lines = []
    child.stdout.on('data', d => lines.push(...String(d).trim().split('\n')))
    while (!lines.includes('ready')) await h.sleep(20)
    const pub = await h.connect(broker, 'tasks-publisher')
    await h.publish(pub, 'tasks', 't1')
    await h.publish(pub, 'tasks', 't2')
    while (!lines.includes('took')) await h.sleep(20)
    const other = await h.connect(broker, 'healthy')
    const sub = await h.subscribe(other, 'tasks', 'crew', other.subscriptionOptions())
    const got = await h.received(sub, 2, 10000)
    assert.deepEqual(seqs(got).sort(), [1, 2])
    child.kill('SIGKILL')
    await h.close(other); await h.close(pub)
  } finally { await broker.stop() }
})
