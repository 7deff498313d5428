// A STAN publisher: JSON on one channel, resolved once the broker has stored it.
'use strict'

class Publisher {
  // subclasses set `subject` (the channel)
  constructor (client) {
    this.client = client
  }

  publish (data) {
    return new Promise((resolve, reject) => {
      this.client.publish(this.subject, JSON.stringify(data), (err, guid) => {
        if (err) return reject(err)
        resolve(guid)
      })
    })
  }
}

module.exports = { Publisher }
