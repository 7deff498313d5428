// A STAN listener as NATS Streaming services wrote them: one channel, one durable queue group,
// manual acks, everything the channel holds on first start.
'use strict'

class Listener {
  // subclasses set `subject` (the channel), `queueGroupName`, and `onMessage(data, msg)`
  constructor (client, { ackWait = 5000 } = {}) {
    this.client = client
    this.ackWait = ackWait
  }

  subscriptionOptions () {
    return this.client
      .subscriptionOptions()
      .setDeliverAllAvailable()
      .setManualAckMode(true)
      .setAckWait(this.ackWait)
      .setDurableName(this.queueGroupName)
  }

  // Resolves once the server has accepted the subscription.
  listen () {
    return new Promise((resolve, reject) => {
      const subscription = this.client.subscribe(this.subject, this.queueGroupName, this.subscriptionOptions())
      subscription.on('message', async msg => {
        let data
        try {
          data = JSON.parse(msg.getData())
        } catch (e) {
          // A payload that is not JSON will never parse: acknowledge it, so it is not redelivered.
          console.error(`${this.subject} #${msg.getSequence()}: not JSON, skipped: ${e.message}`)
          msg.ack()
          return
        }
        try {
          await this.onMessage(data, msg)
        } catch (e) {
          // Not acknowledged: the broker redelivers it after the ack wait.
          console.error(`${this.subject} #${msg.getSequence()}: ${e.message}; will be redelivered`)
        }
      })
      subscription.once('ready', () => resolve(subscription))
      subscription.once('error', reject)
    })
  }
}

module.exports = { Listener }
