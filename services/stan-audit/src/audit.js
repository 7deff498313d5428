// The audit trail: every transaction outcome the Rust account service publishes (on the
// JetStream stream TRANSACTIONS) is read here as a STAN channel, and an AuditRecorded message is
// published on the channel `audit.recorded`, which the broker keeps in a stream of its own.
'use strict'

const { Listener } = require('./listener')
const { Publisher } = require('./publisher')

const QUEUE_GROUP = 'stan-audit'

class AuditRecordedPublisher extends Publisher {
  get subject () { return 'audit.recorded' }
}

class OutcomeListener extends Listener {
  constructor (client, subject, outcome, publisher, opts) {
    super(client, opts)
    this.channel = subject
    this.outcome = outcome
    this.publisher = publisher
  }

  get subject () { return this.channel }
  get queueGroupName () { return QUEUE_GROUP }

  async onMessage (event, msg) {
    const transactionId = event.data && event.data.transaction_id
    if (!transactionId) throw new Error('no data.transaction_id in the event')
    await this.publisher.publish({
      transaction_id: transactionId,
      account_id: event.data.account_id,
      outcome: this.outcome,
      // The STAN sequence is the message's sequence in the TRANSACTIONS stream.
      source_sequence: msg.getSequence(),
      recorded_at: new Date().toISOString()
    })
    // The seeds' pattern: acknowledge only once the work is done.
    msg.ack()
    console.log(`audited ${this.channel} #${msg.getSequence()} transaction=${transactionId} outcome=${this.outcome}`)
  }
}

// Subscribes both outcome listeners; resolves once both are accepted.
async function startAudit (client, opts = {}) {
  const publisher = new AuditRecordedPublisher(client)
  const listeners = [
    new OutcomeListener(client, 'transactions.applied', 'applied', publisher, opts),
    new OutcomeListener(client, 'transactions.rejected', 'rejected', publisher, opts)
  ]
  return Promise.all(listeners.map(l => l.listen()))
}

module.exports = { startAudit, AuditRecordedPublisher, OutcomeListener }
