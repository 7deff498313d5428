// The STAN audit service. Configuration from the environment:
//   NATS_URL         the broker (default nats://127.0.0.1:4222, the bank's)
//   STAN_CLUSTER_ID  the broker's -cid (default bank, as `cargo run --release` starts it)
//   STAN_CLIENT_ID   this instance's client ID (default stan-audit-<pid>)
'use strict'

const stan = require('node-nats-streaming')
const { startAudit } = require('./audit')

const url = process.env.NATS_URL || 'nats://127.0.0.1:4222'
const cluster = process.env.STAN_CLUSTER_ID || 'bank'
const clientId = process.env.STAN_CLIENT_ID || `stan-audit-${process.pid}`

const client = stan.connect(cluster, clientId, { url })

client.on('connect', async () => {
  try {
    await startAudit(client)
    console.log(`stan-audit ready: client ${clientId} on ${url} (cluster ${cluster})`)
  } catch (e) {
    console.error(`cannot subscribe: ${e.message}`)
    process.exit(1)
  }
})
client.on('error', e => {
  console.error(`stan-audit: ${e.message}`)
  process.exit(1)
})
client.on('connection_lost', e => {
  console.error(`stan-audit: connection lost: ${e && e.message}`)
  process.exit(1)
})
client.on('close', () => process.exit(0))

// Closing tells the broker at once; the durable queue group stays for the next start.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => client.close())
