// Connecting and closing: client IDs, duplicates, pings, heartbeats.
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const h = require('./helpers')

test('a client connects and closes', async () => {
  const broker = await h.startBroker()
  try {
    const sc = await h.connect(broker, 'client-1')
    await h.close(sc)
    // Closed, the ID is free again.
    const again = await h.connect(broker, 'client-1')
    await h.close(again)
  } finally { await broker.stop() }
})

test('a client ID outside letters, digits, - and _ is refused', async () => {
  const broker = await h.startBroker()
  try {
    await assert.rejects(h.connect(broker, 'bad.id'),
      /stan: invalid clientID: only alphanumeric and `-` or `_` characters allowed/)
  } finally { await broker.stop() }
})

test('a second connect with the ID of a live client is refused', async () => {
  const broker = await h.startBroker()
  try {
    const first = await h.connect(broker, 'dup')
    await assert.rejects(h.connect(broker, 'dup'), /stan: clientID already registered/)
    // The first one still works.
    await h.publish(first, 'dup.channel', 'still here')
    await h.close(first)
  } finally { await broker.stop() }
})

test('a connect with the ID of a client that is gone replaces it', async () => {
  const broker = await h.startBroker()
  try {
    // A client in another process, killed without closing: its heartbeat inbox goes silent.
    const script = `
      const stan = require('node-nats-streaming')
      const sc = stan.connect('${h.CLUSTER}', 'crashed', { url: '${broker.url}' })
      sc.on('connect', () => console.log('up'))`
    const child = spawn(process.execPath, ['-e', script], { cwd: __dirname, stdio: ['ignore', 'pipe', 'inherit'] })
    await new Promise(resolve => child.stdout.once('data', resolve))
    child.kill('SIGKILL')
    await new Promise(resolve => child.on('exit', resolve))
    const sc = await h.connect(broker, 'crashed')
    await h.publish(sc, 'replaced', 'x')
    await h.close(sc)
  } finally { await broker.stop() }
})

test('a client that misses its heartbeats is closed, and its pings then say so', async () => {
  const broker = await h.startBroker(['-hbi', '200ms', '-hbt', '200ms', '-hbf', '1'])
  try {
    // A raw connect whose heartbeat inbox nobody answers.
    const nc = await h.natsConnect(broker)
    const { pb } = require('node-nats-streaming/lib/pb/protocol_pb')
    const req = new pb.ConnectRequest()
    req.setClientId('silent')
    req.setHeartbeatInbox('_INBOX.nobody-answers')
    req.setConnId(Buffer.from('silent-conn'))
    req.setProtocol(1)
    req.setPingInterval(1)
    req.setPingMaxOut(3)
    const reply = await h.request(nc, `_STAN.discover.${h.CLUSTER}`, Buffer.from(req.serializeBinary()))
    const cr = pb.ConnectResponse.deserializeBinary(new Uint8Array(reply))
    assert.equal(cr.getError(), '')
    const ping = new pb.Ping()
    ping.setConnId(Buffer.from('silent-conn'))
    const pong = async () => pb.PingResponse.deserializeBinary(new Uint8Array(
      await h.request(nc, cr.getPingRequests(), Buffer.from(ping.serializeBinary())))).getError()
    assert.equal(await pong(), '')
    // Two missed heartbeats (more than -hbf 1) take some 0.8 s.
    let error = ''
    for (let i = 0; i < 50 && error === ''; i++) {
      await h.sleep(100)
      error = await pong()
    }
    assert.equal(error, 'client has been replaced or is no longer registered')
    nc.close()
  } finally { await broker.stop() }
})

test('a connect request without a heartbeat inbox is refused', async () => {
  const broker = await h.startBroker()
  try {
    const nc = await h.natsConnect(broker)
    const { pb } = require('node-nats-streaming/lib/pb/protocol_pb')
    const req = new pb.ConnectRequest()
    req.setClientId('no-inbox')
    const reply = await h.request(nc, `_STAN.discover.${h.CLUSTER}`, Buffer.from(req.serializeBinary()))
    assert.equal(pb.ConnectResponse.deserializeBinary(new Uint8Array(reply)).getError(),
      'stan: invalid connection request')
    const garbage = await h.request(nc, `_STAN.discover.${h.CLUSTER}`, Buffer.from([0xff, 0xff, 0xff]))
    assert.equal(pb.ConnectResponse.deserializeBinary(new Uint8Array(garbage)).getError(),
      'stan: invalid connection request')
    nc.close()
  } finally { await broker.stop() }
})

test('-SDV and -log: the streaming debug lines go to the log file', async () => {
  const fs = require('node:fs')
  const path = require('node:path')
  const os = require('node:os')
  const logFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'stan-log-')), 'stan.log')
  const broker = await h.startBroker(['-SDV'], null, logFile)
  try {
    const sc = await h.connect(broker, 'logged-client')
    await h.close(sc)
    let log = ''
    for (let i = 0; i < 100 && !/Closed client="logged-client"/.test(log); i++) {
      await h.sleep(20)
      log = fs.readFileSync(logFile, 'utf8')
    }
    assert.match(log, /Streaming Server is ready/)
    assert.match(log, /DEBUG Connected client="logged-client"/)
    assert.match(log, /DEBUG Closed client="logged-client"/)
  } finally { await broker.stop() }
})
