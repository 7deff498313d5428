//! What JetStream holds and has served, gathered for the monitoring port (`/jsz`, `/metrics`).

use std::sync::atomic::Ordering;

use super::stream::Storage;
use super::JetStream;

/// JetStream's usage at one moment.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    /// Bytes of memory streams.
    pub memory: u64,
    /// Bytes of file streams.
    pub storage: u64,
    /// API requests served, and those answered with an error.
    pub api_total: u64,
    pub api_errors: u64,
    /// Every stream, by name.
    pub streams: Vec<StreamUsage>,
}

/// One stream's share.
#[derive(Debug)]
pub(crate) struct StreamUsage {
    /// The account the stream belongs to.
    pub account: String,
    pub name: String,
    pub messages: u64,
    pub bytes: u64,
    pub consumers: Vec<ConsumerUsage>,
}

/// One consumer's counters.
#[derive(Debug)]
pub(crate) struct ConsumerUsage {
    pub name: String,
    /// Messages not yet delivered.
    pub num_pending: u64,
    /// Delivered and not yet acknowledged.
    pub num_ack_pending: u64,
    /// Of those, delivered more than once.
    pub num_redelivered: u64,
    /// Pull requests waiting.
    pub num_waiting: u64,
}

impl Usage {
    /// Consumers of every stream.
    pub fn consumers(&self) -> usize {
        self.streams.iter().map(|s| s.consumers.len()).sum()
    }

    /// Messages in every stream.
    pub fn messages(&self) -> u64 {
        self.streams.iter().map(|s| s.messages).sum()
    }

    /// Bytes in every stream.
    pub fn bytes(&self) -> u64 {
        self.memory + self.storage
    }

    /// Adds another account's usage to this one.
    pub fn add(&mut self, other: Usage) {
        self.memory += other.memory;
        self.storage += other.storage;
        self.api_total += other.api_total;
        self.api_errors += other.api_errors;
        self.streams.extend(other.streams);
    }
}

impl JetStream {
    /// Gathers the usage. Each stream is locked on its own, and released before its consumers
    /// are (a consumer's task locks the consumer, then its stream).
    pub fn usage(&self) -> Usage {
        let streams: Vec<_> = self.streams.read().values().cloned().collect();
        let mut usage = Usage {
            api_total: self.api_total.load(Ordering::Relaxed),
            api_errors: self.api_errors.load(Ordering::Relaxed),
            ..Usage::default()
        };
        for stream in streams {
            let (state, storage) = {
                let inner = stream.inner.lock();
                (inner.store.state(), inner.config.storage)
            };
            match storage {
                Storage::Memory => usage.memory += state.bytes,
                Storage::File => usage.storage += state.bytes,
            }
            let consumers: Vec<_> = stream.consumers.read().values().cloned().collect();
            usage.streams.push(StreamUsage {
                account: self.ctx.account.name.clone(),
                name: stream.name.clone(),
                messages: state.msgs,
                bytes: state.bytes,
                consumers: consumers
                    .iter()
                    .map(|c| {
                        let s = c.snapshot();
                        ConsumerUsage {
                            name: c.name.clone(),
                            num_pending: s.num_pending,
                            num_ack_pending: s.num_ack_pending,
                            num_redelivered: s.num_redelivered,
                            num_waiting: s.num_waiting,
                        }
                    })
                    .collect(),
            });
        }
        usage
    }
}
