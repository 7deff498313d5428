// Channels are JetStream streams: what one kind of client writes the other reads, with the
// same sequence numbers; and the channel limits of the command line.
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./helpers')

const json = reply => JSON.parse(String(reply))

test('a JetStream client reads what a STAN client published, at the same sequence', async () => {
  const broker = await h.startBroker()
  const sc = await h.connect(broker, 'stan-writer')
  const nc = await h.natsConnect(broker)
  try {
    await h.publish(sc, 'orders.created', 'from stan 1')
    await h.publish(sc, 'orders.created', 'from stan 2')
    // The stream is named after the channel (a dot is %2E).
    const info = json(await h.request(nc, '$JS.API.STREAM.INFO.orders%2Ecreated', ''))
    assert.deepEqual(info.config.subjects, ['orders.created'])
    assert.equal(info.state.messages, 2)
    const got = json(await h.request(nc, '$JS.API.STREAM.MSG.GET.orders%2Ecreated', JSON.stringify({ seq: 2 })))
    assert.equal(got.message.subject, 'orders.created')
    assert.equal(Buffer.from(got.message.data, 'base64').toString(), 'from stan 2')
  } finally {
    nc.close(); await h.close(sc); await broker.stop()
  }
})

test('a STAN subscriber gets what a JetStream client published, with its PubAck sequence', async () => {
  const broker = await h.startBroker()
  const sc = await h.connect(broker, 'stan-reader')
  const nc = await h.natsConnect(broker)
  try {
    // A JetStream service made the stream, with its own name and subjects.
    const created = json(await h.request(nc, '$JS.API.STREAM.CREATE.PAYMENTS',
      JSON.stringify({ name: 'PAYMENTS', subjects: ['payments.>'], storage: 'file' })))
    assert.equal(created.error, undefined, JSON.stringify(created.error))
    const ack1 = json(await h.request(nc, 'payments.settled', 'js one'))
    await h.request(nc, 'payments.refunded', 'other subject')
    const ack2 = json(await h.request(nc, 'payments.settled', 'js two'))
    assert.equal(ack1.stream, 'PAYMENTS')
    const sub = await h.subscribe(sc, 'payments.settled', null, sc.subscriptionOptions().setDeliverAllAvailable())
    const got = await h.received(sub, 2)
    assert.deepEqual(got.map(m => m.getData()), ['js one', 'js two'])
    assert.deepEqual(got.map(m => m.getSequence()), [ack1.seq, ack2.seq])
    // And a STAN publish on that channel lands in the service's stream.
    await h.publish(sc, 'payments.settled', 'stan three')
    const [, , third] = await h.received(sub, 3)
    assert.equal(third.getSequence(), ack2.seq + 1)
    const info = json(await h.request(nc, '$JS.API.STREAM.INFO.PAYMENTS', ''))
    assert.equal(info.state.messages, 4)
  } finally {
    nc.close(); await h.close(sc); await broker.stop()
  }
})

test('-mc limits the channels, -msu the subscriptions per channel, -mm the messages kept', async () => {
  const broker = await h.startBroker(['-mc', '2', '-msu', '2', '-mm', '3'])
  const sc = await h.connect(broker, 'limited')
  const nc = await h.natsConnect(broker)
  try {
    await h.publish(sc, 'one', 'x')
    await h.publish(sc, 'two', 'x')
    await assert.rejects(h.publish(sc, 'three', 'x'), /too many channels/)
    const o = () => sc.subscriptionOptions()
    await h.subscribe(sc, 'one', null, o())
    await h.subscribe(sc, 'one', null, o())
    await assert.rejects(h.subscribe(sc, 'one', null, o()), /too many subscriptions per channel/)
    for (let i = 1; i <= 5; i++) await h.publish(sc, 'two', `m${i}`)
    const info = json(await h.request(nc, '$JS.API.STREAM.INFO.two', ''))
    assert.equal(info.config.max_msgs, 3)
    assert.deepEqual([info.state.messages, info.state.first_seq, info.state.last_seq], [3, 4, 6])
  } finally {
    nc.close(); await h.close(sc); await broker.stop()
  }
})

test('-ma and -mb become the stream limits, -st memory its storage', async () => {
  const broker = await h.startBroker(['-ma', '1h', '-mb', '1MB', '-st', 'memory'])
  const sc = await h.connect(broker, 'aged')
  const nc = await h.natsConnect(broker)
  try {
    await h.publish(sc, 'aged', 'x')
    const info = json(await h.request(nc, '$JS.API.STREAM.INFO.aged', ''))
    assert.equal(info.config.max_age, 3600 * 1e9)
    assert.equal(info.config.max_bytes, 1024 * 1024)
    assert.equal(info.config.storage, 'memory')
    assert.equal(info.config.discard, 'old')
  } finally {
    nc.close(); await h.close(sc); await broker.stop()
  }
})

test('acknowledged STAN messages survive the broker killed with -9 while publishing', async () => {
  let broker = await h.startBroker()
  const dir = broker.dir
  const sc = await h.connect(broker, 'crash-writer', { maxReconnectAttempts: 0 })
  sc.on('error', () => {})
  const acked = []
  let sent = 0
  // node-nats-streaming calls back without an error for the PubAcks it was still waiting for
  // when its connection closes: only those before the disconnect are acknowledgements.
  let lost = false
  sc.nc.on('disconnect', () => { lost = true })
  // Publishes keep going, many in flight, until the broker is gone.
  let dead = false
  const more = () => {
    if (dead) return
    for (let k = 0; k < 1000; k++) {
      const i = sent++
      sc.publish('durable.channel', `m${i}`, err => { if (!err && !lost) acked.push(i) })
    }
    setTimeout(more, 1)
  }
  more()
  while (acked.length < 500) await h.sleep(5)
  await broker.kill()
  dead = true
  await h.sleep(100)
  const stored = acked.slice()
  assert.ok(sent > stored.length, `killed with publishes in flight (${sent} sent, ${stored.length} acked)`)
  sc.close()
  broker = await h.startBroker([], dir)
  try {
    const reader = await h.connect(broker, 'crash-reader')
    const sub = await h.subscribe(reader, 'durable.channel', null, reader.subscriptionOptions().setDeliverAllAvailable())
    await h.received(sub, stored.length)
    await h.sleep(300)
    const got = new Set(sub.messages.map(m => m.getData()))
    const lost = stored.filter(i => !got.has(`m${i}`))
    assert.deepEqual(lost, [], 'every acknowledged message is there after the restart')
    await h.close(reader)
  } finally { await broker.stop() }
})
