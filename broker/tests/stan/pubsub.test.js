// Publishing and plain subscriptions: PubAcks, start positions, acks, ack wait, MaxInflight.
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./helpers')

async function withClient (fn, extra = []) {
  const broker = await h.startBroker(extra)
  const sc = await h.connect(broker, 'pubsub')
  try { await fn(sc, broker) } finally {
    await h.close(sc).catch(() => {})
    await broker.stop()
  }
}

const opts = sc => sc.subscriptionOptions()
const data = msgs => msgs.map(m => m.getData())
const seqs = msgs => msgs.map(m => m.getSequence())

test('a publish is acknowledged with its guid, and a subscriber gets it with its sequence and time', async () => {
  await withClient(async sc => {
    const sub = await h.subscribe(sc, 'orders', null, opts(sc))
    const before = Date.now()
    const guid = await h.publish(sc, 'orders', 'first')
    assert.match(guid, /\S+/)
    const [m] = await h.received(sub, 1)
    assert.equal(m.getData(), 'first')
    assert.equal(m.getSubject(), 'orders')
    assert.equal(m.getSequence(), 1)
    assert.equal(m.isRedelivered(), false)
    assert.ok(Math.abs(m.getTimestamp().getTime() - before) < 5000, 'the message has the time it was stored')
  })
})

test('a publish to an invalid channel is refused in its PubAck', async () => {
  await withClient(async sc => {
    await assert.rejects(h.publish(sc, 'wild.*', 'x'), /stan: invalid publish request/)
    await assert.rejects(h.publish(sc, 'wild.>', 'x'), /stan: invalid publish request/)
  })
})

test('a subscription request is checked as NATS Streaming checks it', async () => {
  await withClient(async (sc, broker) => {
    await assert.rejects(h.subscribe(sc, 'wild.>', null, opts(sc)), /stan: invalid subject/)
    const nc = await h.natsConnect(broker)
    const { pb } = require('node-nats-streaming/lib/pb/protocol_pb')
    const ask = async change => {
      const req = new pb.SubscriptionRequest()
      req.setClientId('pubsub')
      req.setSubject('checked')
      req.setInbox('_INBOX.checked')
      req.setMaxInFlight(10)
      req.setAckWaitInSecs(30)
      change(req)
      const reply = await h.request(nc, sc.subRequests, Buffer.from(req.serializeBinary()))
      return pb.SubscriptionResponse.deserializeBinary(new Uint8Array(reply)).getError()
    }
    assert.equal(await ask(r => r.setClientId('')), 'stan: clientID missing')
    assert.equal(await ask(r => r.setAckWaitInSecs(0)), 'stan: invalid ack wait time, should be >= 1s')
    assert.equal(await ask(r => r.setMaxInFlight(0)), 'stan: invalid MaxInflight, should be >= 1')
    assert.equal(await ask(r => r.setStartPosition(9)), 'stan: invalid start position')
    assert.equal(await ask(r => r.setClientId('stranger')), 'stan: unknown clientID')
    assert.equal(await ask(r => { r.setQGroup('q'); r.setDurableName('a:b') }),
      "stan: durable name of a durable queue subscriber can't contain the character ':'")
    assert.equal(await ask(() => {}), '')
    const garbage = await h.request(nc, sc.subRequests, Buffer.from([0xff, 0xff]))
    assert.equal(pb.SubscriptionResponse.deserializeBinary(new Uint8Array(garbage)).getError(),
      'stan: invalid subscription request')
    nc.close()
  })
})

test('the start positions: new only, last received, all available, at a sequence, at a time delta', async () => {
  await withClient(async sc => {
    for (let i = 1; i <= 5; i++) await h.publish(sc, 'history', `m${i}`)
    const newOnly = await h.subscribe(sc, 'history', null, opts(sc))
    const last = await h.subscribe(sc, 'history', null, opts(sc).setStartWithLastReceived())
    const all = await h.subscribe(sc, 'history', null, opts(sc).setDeliverAllAvailable())
    const atSeq = await h.subscribe(sc, 'history', null, opts(sc).setStartAtSequence(3))
    const beyond = await h.subscribe(sc, 'history', null, opts(sc).setStartAtSequence(99))
    await h.sleep(1100)
    await h.publish(sc, 'history', 'm6')
    const delta = await h.subscribe(sc, 'history', null, opts(sc).setStartAtTimeDelta(500))
    const atTime = await h.subscribe(sc, 'history', null, opts(sc).setStartTime(new Date(Date.now() - 60000)))
    await h.publish(sc, 'history', 'm7')
    assert.deepEqual(data(await h.received(newOnly, 2)), ['m6', 'm7'])
    assert.deepEqual(data(await h.received(last, 3)), ['m5', 'm6', 'm7'])
    assert.deepEqual(seqs(await h.received(all, 7)), [1, 2, 3, 4, 5, 6, 7])
    assert.deepEqual(seqs(await h.received(atSeq, 5)), [3, 4, 5, 6, 7])
    assert.deepEqual(data(await h.received(beyond, 2)), ['m6', 'm7'], 'a sequence past the end is new only')
    assert.deepEqual(data(await h.received(delta, 2)), ['m6', 'm7'])
    assert.deepEqual(seqs(await h.received(atTime, 7)), [1, 2, 3, 4, 5, 6, 7])
    await h.sleep(200)
    assert.equal(newOnly.messages.length, 2, 'no more than asked for')
  })
})

test('an unacknowledged message comes again after the ack wait, marked redelivered with its count', async () => {
  await withClient(async sc => {
    const sub = await h.subscribe(sc, 'retry', null, opts(sc).setManualAckMode(true).setAckWait(1000))
    await h.publish(sc, 'retry', 'once')
    const [first] = await h.received(sub, 1)
    assert.equal(first.isRedelivered(), false)
    const [, second] = await h.received(sub, 2, 5000)
    assert.equal(second.getSequence(), 1)
    assert.equal(second.isRedelivered(), true)
    assert.equal(second.getRedeliveryCount(), 1)
    second.ack()
    await h.sleep(1500)
    assert.equal(sub.messages.length, 2, 'an acknowledged message is not sent again')
  })
})

test('MaxInflight holds back messages until earlier ones are acknowledged', async () => {
  await withClient(async sc => {
    const sub = await h.subscribe(sc, 'flow', null, opts(sc).setManualAckMode(true).setMaxInFlight(2).setAckWait(30000))
    for (let i = 1; i <= 5; i++) await h.publish(sc, 'flow', `m${i}`)
    await h.received(sub, 2)
    await h.sleep(300)
    assert.equal(sub.messages.length, 2, 'two outstanding at most')
    sub.messages[0].ack()
    await h.received(sub, 3)
    await h.sleep(300)
    assert.equal(sub.messages.length, 3)
    for (const m of sub.messages) m.ack()
    assert.deepEqual(data(await h.received(sub, 5)), ['m1', 'm2', 'm3', 'm4', 'm5'])
  })
})

test('auto ack mode acknowledges each message for the client', async () => {
  await withClient(async sc => {
    const sub = await h.subscribe(sc, 'auto', null, opts(sc).setAckWait(1000).setMaxInFlight(1))
    for (let i = 1; i <= 3; i++) await h.publish(sc, 'auto', `m${i}`)
    assert.deepEqual(data(await h.received(sub, 3)), ['m1', 'm2', 'm3'])
    await h.sleep(1500)
    assert.equal(sub.messages.length, 3, 'nothing redelivered')
  })
})

test('an unsubscribed or closed subscription gets nothing more', async () => {
  await withClient(async sc => {
    const a = await h.subscribe(sc, 'stop', null, opts(sc))
    const b = await h.subscribe(sc, 'stop', null, opts(sc))
    await h.publish(sc, 'stop', 'before')
    await h.received(a, 1)
    await h.received(b, 1)
    await h.unsubscribe(a)
    await h.closeSub(b)
    await h.publish(sc, 'stop', 'after')
    await h.sleep(300)
    assert.equal(a.messages.length, 1)
    assert.equal(b.messages.length, 1)
  })
})

test('a message with a reply subject keeps it', async () => {
  await withClient(async (sc, broker) => {
    const sub = await h.subscribe(sc, 'replies', null, opts(sc))
    // node-nats-streaming has no reply in its publish; send the PubMsg by hand.
    const nc = await h.natsConnect(broker)
    const { pb } = require('node-nats-streaming/lib/pb/protocol_pb')
    const msg = new pb.PubMsg()
    msg.setClientId('pubsub')
    msg.setGuid('guid-1')
    msg.setSubject('replies')
    msg.setReply('answer.here')
    msg.setData(Buffer.from('question'))
    const ack = pb.PubAck.deserializeBinary(new Uint8Array(
      await h.request(nc, `${sc.pubPrefix}.replies`, Buffer.from(msg.serializeBinary()))))
    assert.equal(ack.getGuid(), 'guid-1')
    assert.equal(ack.getError(), '')
    const [m] = await h.received(sub, 1)
    assert.equal(m.getData(), 'question')
    assert.equal(m.msg.getReply(), 'answer.here')
    // A publish from a client that is not connected is refused.
    msg.setClientId('stranger')
    const refused = pb.PubAck.deserializeBinary(new Uint8Array(
      await h.request(nc, `${sc.pubPrefix}.replies`, Buffer.from(msg.serializeBinary()))))
    assert.equal(refused.getError(), 'stan: invalid publish request')
    nc.close()
  })
})
