//! NATS Streaming (STAN) served on top of the broker's JetStream streams: so far its wire
//! messages ([`wire`]). The server side (discovery, connections, publishing, subscriptions,
//! heartbeats) is being built on them.

pub mod wire;
