//! NATS Streaming (STAN) served on top of the broker's JetStream streams, so that STAN clients
//! (`node-nats-streaming`, `stan.go`, ...) work unchanged and share their channels with
//! JetStream clients.
//!
//! With `-cid <cluster>` the broker runs this component beside its client port. Like NATS
//! Streaming's own server, which talks to its embedded NATS server as a client, it is a NATS
//! client of the broker (one loopback connection) and keeps no store of its own:
//! - a channel is a JetStream stream (see [`names`] for the naming rule), so a message's STAN
//!   sequence is its stream sequence, and JetStream clients read and write the same messages;
//! - a subscription (or a queue group) is a pull consumer on that stream: durable
//!   subscriptions and durable queue groups are durable consumers, the others are removed with
//!   their subscription. The consumer keeps what was acknowledged; this component keeps which
//!   member holds which message ([`group`]);
//! - clients, their heartbeats and their subscriptions live in memory ([`server`]).
//!
//! The wire messages are in [`wire`].

pub(crate) mod group;
pub mod names;
pub(crate) mod server;
pub mod wire;

use std::time::Duration;

/// NATS Streaming's default heartbeat interval (`-hbi`): 30 s.
pub const DEFAULT_HB_INTERVAL: Duration = Duration::from_secs(30);
/// NATS Streaming's default heartbeat timeout (`-hbt`): 10 s.
pub const DEFAULT_HB_TIMEOUT: Duration = Duration::from_secs(10);
/// NATS Streaming's default number of missed heartbeats that closes a client (`-hbf`).
pub const DEFAULT_HB_FAIL_COUNT: u32 = 10;
/// Most channels (`-mc`); 0 is no limit.
pub const DEFAULT_MAX_CHANNELS: usize = 100;
/// Most subscriptions on one channel (`-msu`); 0 is no limit.
pub const DEFAULT_MAX_SUBS: usize = 1000;
/// Most messages a channel keeps (`-mm`), dropping the oldest; 0 is no limit.
pub const DEFAULT_MAX_MSGS: u64 = 1_000_000;
/// Most bytes a channel keeps (`-mb`), dropping the oldest; 0 is no limit.
pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024 * 1024;
/// How long a second connect with a registered client ID waits for the first client to answer
/// a heartbeat before replacing it, as NATS Streaming: 500 ms.
pub const DUPLICATE_CLIENT_CHECK: Duration = Duration::from_millis(500);

/// NATS Streaming's settings besides the cluster ID, with its defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StanSettings {
    /// How often the server sends each client a heartbeat (`-hbi`).
    pub hb_interval: Duration,
    /// How long a heartbeat may go unanswered (`-hbt`).
    pub hb_timeout: Duration,
    /// Missed heartbeats in a row after which the client is closed (`-hbf`).
    pub hb_fail_count: u32,
    /// See [`DEFAULT_MAX_CHANNELS`].
    pub max_channels: usize,
    /// See [`DEFAULT_MAX_SUBS`].
    pub max_subs: usize,
    /// See [`DEFAULT_MAX_MSGS`].
    pub max_msgs: u64,
    /// See [`DEFAULT_MAX_BYTES`].
    pub max_bytes: u64,
    /// How long a channel keeps a message (`-ma`); zero is for ever.
    pub max_age: Duration,
}

impl Default for StanSettings {
    fn default() -> Self {
        StanSettings {
            hb_interval: DEFAULT_HB_INTERVAL,
            hb_timeout: DEFAULT_HB_TIMEOUT,
            hb_fail_count: DEFAULT_HB_FAIL_COUNT,
            max_channels: DEFAULT_MAX_CHANNELS,
            max_subs: DEFAULT_MAX_SUBS,
            max_msgs: DEFAULT_MAX_MSGS,
            max_bytes: DEFAULT_MAX_BYTES,
            max_age: Duration::ZERO,
        }
    }
}
