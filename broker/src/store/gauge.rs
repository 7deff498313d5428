//! [`UsageGauge`]: bytes stored by many stores together, kept by the stores themselves, so that
//! JetStream can hold a server to `max_storage` and `max_memory` without locking every stream
//! on each publish (nats-server's stores report their usage to it the same way).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A shared count of stored bytes; clones count together, and a gauge made by
/// [`UsageGauge::child`] counts into its parent too (an account's usage inside the server's).
#[derive(Debug, Clone, Default)]
pub struct UsageGauge {
    count: Arc<AtomicU64>,
    parent: Option<Arc<UsageGauge>>,
}

impl UsageGauge {
    /// A gauge at zero.
    pub fn new() -> UsageGauge {
        UsageGauge::default()
    }

    /// A gauge at zero whose counts go to this one as well.
    pub fn child(&self) -> UsageGauge {
        UsageGauge {
            count: Arc::default(),
            parent: Some(Arc::new(self.clone())),
        }
    }

    /// The bytes counted now.
    pub fn get(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn add(&self, bytes: u64) {
        self.count.fetch_add(bytes, Ordering::Relaxed);
        if let Some(parent) = &self.parent {
            parent.add(bytes);
        }
    }

    pub(crate) fn sub(&self, bytes: u64) {
        let before = self
            .count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(bytes))
            })
            .unwrap_or_else(|n| n);
        if let Some(parent) = &self.parent {
            // Only what this gauge held leaves the parent.
            parent.sub(before.min(bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_counts_into_its_parent_and_siblings_stay_apart() {
        let server = UsageGauge::new();
        let (a, b) = (server.child(), server.child());
        a.add(10);
        b.clone().add(5);
        a.sub(3);
        assert_eq!((server.get(), a.get(), b.get()), (12, 7, 5));
        b.sub(100);
        assert_eq!((server.get(), b.get()), (7, 0));
    }
}
