// Helpers of the NATS Streaming client table: start a broker with -cid on free ports, and the
// node-nats-streaming calls as promises.
'use strict'

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const stan = require('node-nats-streaming')
const NATS = require('nats')

const CLUSTER = 'test-cluster'
const BROKER = process.env.BROKER_BIN || path.join(__dirname, '..', '..', '..', 'target', 'debug', 'broker')
const WAIT = 10000

// Starts the broker with NATS Streaming on a free client and monitoring port; resolves once the
// streaming component says it is ready.
// With `logFile`, the broker is also given `-log <logFile>`, and its lines are read from there.
async function startBroker (extra = [], dir = null, logFile = null) {
  dir = dir || fs.mkdtempSync(path.join(os.tmpdir(), 'stan-test-'))
  const args = ['-p', '-1', '-m', '-1', '-cid', CLUSTER, '-sd', dir, ...extra]
  if (logFile) args.push('-log', logFile)
  const child = spawn(BROKER, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  const ready = new Promise((resolve, reject) => {
    const check = () => {
      const client = /Listening for client connections on [^\s]*:(\d+)/.exec(log)
      const monitor = /Starting http monitor on [^\s]*:(\d+)/.exec(log)
      if (client && /Streaming Server is ready/.test(log)) {
        clearTimeout(timer)
        clearInterval(poll)
        resolve({ port: Number(client[1]), http: monitor && Number(monitor[1]) })
      }
    }
    const timer = setTimeout(() => { clearInterval(poll); reject(new Error('broker not ready:\n' + log)) }, WAIT)
    const poll = setInterval(() => {
      if (logFile && fs.existsSync(logFile)) { log = fs.readFileSync(logFile, 'utf8'); check() }
    }, 20)
    child.stderr.on('data', chunk => { log += chunk; check() })
    child.on('exit', code => {
      clearTimeout(timer)
      clearInterval(poll)
      reject(new Error(`broker exited (${code}):\n${log}`))
    })
  })
  const { port, http } = await ready
  const exited = new Promise(resolve => child.on('exit', resolve))
  return {
    port,
    http,
    dir,
    url: `nats://127.0.0.1:${port}`,
    log: () => log,
    stop: async () => { child.kill('SIGTERM'); await exited },
    kill: async () => { child.kill('SIGKILL'); await exited }
  }
}

// Connects a STAN client; rejects with the server's error.
function connect (broker, clientId, opts = {}) {
  return new Promise((resolve, reject) => {
    const sc = stan.connect(CLUSTER, clientId, { url: broker.url, ...opts })
    sc.once('connect', () => resolve(sc))
    sc.once('error', reject)
  })
}

function close (sc) {
  return new Promise((resolve, reject) => {
    if (sc.isClosed()) return resolve()
    sc.once('close', resolve)
    sc.once('error', reject)
    sc.close()
  })
}

function publish (sc, subject, data) {
  return new Promise((resolve, reject) => {
    sc.publish(subject, data, (err, guid) => err ? reject(err) : resolve(guid))
  })
}

// Subscribes and keeps every message in `sub.messages`; resolves once the server accepted it.
function subscribe (sc, subject, queue, opts) {
  return new Promise((resolve, reject) => {
    const sub = queue ? sc.subscribe(subject, queue, opts) : sc.subscribe(subject, opts)
    sub.messages = []
    sub.waiters = []
    sub.on('message', m => {
      sub.messages.push(m)
      sub.waiters = sub.waiters.filter(w => !w())
    })
    sub.once('ready', () => resolve(sub))
    sub.once('error', reject)
  })
}

// Resolves with the subscription's messages once it has `n` of them.
function received (sub, n, timeout = WAIT) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (sub.messages.length >= n) { clearTimeout(timer); resolve(sub.messages.slice()); return true }
      return false
    }
    const timer = setTimeout(() => reject(new Error(`got ${sub.messages.length} of ${n} messages`)), timeout)
    if (!check()) sub.waiters.push(check)
  })
}

function sleep (ms) { return new Promise(resolve => setTimeout(resolve, ms)) }

function unsubscribe (sub) {
  return new Promise((resolve, reject) => {
    sub.once('unsubscribed', resolve)
    sub.once('error', reject)
    sub.unsubscribe()
  })
}

function closeSub (sub) {
  return new Promise((resolve, reject) => {
    sub.once('closed', resolve)
    sub.once('error', reject)
    sub.close()
  })
}

// A plain NATS connection, for JetStream requests and raw protocol messages.
function natsConnect (broker) {
  return new Promise((resolve, reject) => {
    const nc = NATS.connect({ url: broker.url, preserveBuffers: true })
    nc.once('connect', () => resolve(nc))
    nc.once('error', reject)
  })
}

function request (nc, subject, payload, timeout = WAIT) {
  return new Promise((resolve, reject) => {
    nc.requestOne(subject, payload, {}, timeout, reply => {
      if (reply instanceof Error) reject(reply)
      else resolve(reply)
    })
  })
}

async function monitor (broker, path) {
  const res = await fetch(`http://127.0.0.1:${broker.http}${path}`)
  if (!res.ok) throw new Error(`${path}: ${res.status}`)
  return res.json()
}

module.exports = {
  CLUSTER, stan, startBroker, connect, close, publish, subscribe, received, sleep,
  unsubscribe, closeSub, natsConnect, request, monitor
}
