// NATS Streaming's monitoring endpoints on the monitoring port, in its JSON.
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./helpers')

test('/streaming/serverz, storez, clientsz and channelsz describe clients, channels and subscriptions', async () => {
  const broker = await h.startBroker(['-mc', '10', '-mm', '500'])
  const a = await h.connect(broker, 'mon-a')
  const b = await h.connect(broker, 'mon-b')
  try {
    const manual = sc => sc.subscriptionOptions().setManualAckMode(true).setAckWait(60000).setMaxInFlight(2)
    await h.subscribe(a, 'mon.orders', null, manual(a).setDurableName('audit'))
    const q = await h.subscribe(b, 'mon.orders', 'workers', manual(b))
    for (let i = 1; i <= 3; i++) await h.publish(a, 'mon.orders', `order ${i}`)
    await h.publish(b, 'mon.other', 'x')
    await h.received(q, 2)

    const server = await h.monitor(broker, '/streaming/serverz')
    assert.equal(server.cluster_id, h.CLUSTER)
    assert.equal(server.state, 'STANDALONE')
    assert.deepEqual([server.clients, server.subscriptions, server.channels], [2, 2, 2])
    assert.deepEqual([server.total_msgs, server.in_msgs], [4, 4])
    assert.ok(server.out_msgs >= 4, `out_msgs ${server.out_msgs}`)
    assert.match(server.uptime, /\d+(ms|s)/)

    const store = await h.monitor(broker, '/streaming/storez')
    assert.equal(store.type, 'FILE')
    assert.equal(store.limits.max_channels, 10)
    assert.equal(store.limits.max_msgs, 500)
    assert.equal(store.total_msgs, 4)

    const clients = await h.monitor(broker, '/streaming/clientsz?subs=1')
    assert.equal(clients.total, 2)
    const ca = clients.clients.find(c => c.id === 'mon-a')
    assert.equal(ca.subs_count, 1)
    const [durable] = ca.subscriptions['mon.orders']
    assert.equal(durable.durable_name, 'audit')
    assert.equal(durable.is_durable, true)
    assert.equal(durable.max_inflight, 2)
    assert.equal(durable.ack_wait, 60)
    assert.equal(durable.pending_count, 2, 'two of three sent, none acknowledged')
    assert.equal(durable.is_stalled, true, 'at its MaxInflight')
    assert.equal(durable.last_sent, 2)

    const oneClient = await h.monitor(broker, '/streaming/clientsz?client=mon-b&subs=1')
    assert.equal(oneClient.id, 'mon-b')
    assert.equal(oneClient.subscriptions['mon.orders'][0].queue_name, 'workers')
    await assert.rejects(h.monitor(broker, '/streaming/clientsz?client=nobody'), /404/)

    const names = await h.monitor(broker, '/streaming/channelsz')
    assert.deepEqual(names.names.sort(), ['mon.orders', 'mon.other'])
    const detail = await h.monitor(broker, '/streaming/channelsz?subs=1')
    const orders = detail.channels.find(c => c.name === 'mon.orders')
    assert.deepEqual([orders.msgs, orders.first_seq, orders.last_seq, orders.subs_count], [3, 1, 3, 2])
    const queue = orders.subscriptions.find(s => s.client_id === 'mon-b')
    assert.equal(queue.queue_name, 'workers')
    assert.equal(queue.is_durable, false)
    const one = await h.monitor(broker, '/streaming/channelsz?channel=mon.other')
    assert.deepEqual([one.name, one.msgs], ['mon.other', 1])
    const paged = await h.monitor(broker, '/streaming/channelsz?offset=1&limit=1')
    assert.deepEqual([paged.count, paged.total, paged.offset, paged.limit], [1, 2, 1, 1])
    await assert.rejects(h.monitor(broker, '/streaming/channelsz?channel=nope'), /404/)
  } finally {
    await h.close(a); await h.close(b); await broker.stop()
  }
})
