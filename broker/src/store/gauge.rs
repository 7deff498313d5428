//! [`UsageGauge`]: bytes stored by many stores together, kept by the stores themselves, so that
//! JetStream can hold a server to `max_storage` and `max_memory` without locking every stream
//! on each publish (nats-server's stores report their usage to it the same way).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A shared count of stored bytes; clones count together.
#[derive(Debug, Clone, Default)]
pub struct UsageGauge(Arc<AtomicU64>);

impl UsageGauge {
    /// A gauge at zero.
    pub fn new() -> UsageGauge {
        UsageGauge::default()
    }

    /// The bytes counted now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn add(&self, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn sub(&self, bytes: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(bytes))
            });
    }
}
