//! What a listener's runner counts and times, for `/metrics` and tests:
//!
//! - `listener_messages_total{listener,outcome}`: messages acked, retried, rejected,
//!   undecodable, and `+WPI` progress acks sent;
//! - `listener_handle_duration_seconds{listener,event,decision}`: how long the handler took,
//!   by event type and the decision it reported (or its outcome);
//! - `listener_consumer_pending{listener}`: messages the consumer had not yet delivered, as of
//!   the last delivery or the last look at the consumer (every few seconds, so that an idle or
//!   stalled listener shows it too);
//! - `listener_redeliveries_total{listener}`: deliveries after the first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use crate::metrics::{latency_histogram, Metrics};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    listener: &'static str,
    event: &'static str,
    decision: &'static str,
}

type Durations = Family<HandledLabels, Histogram, fn() -> Histogram>;

/// The listener families of one service, shared by all its listeners.
#[derive(Clone)]
struct Families {
    handled: Durations,
    pending: Family<ListenerLabel, Gauge>,
    redelivered: Family<ListenerLabel, Counter>,
    /// Every listener's counts, read by `listener_messages_total` at scrape time (weakly: the
    /// counts hold these families).
    listeners: Arc<Mutex<Vec<Weak<ListenerStats>>>>,
}

impl Families {
    fn standalone() -> Self {
        Self {
            handled: Durations::new_with_constructor(latency_histogram),
            pending: Family::default(),
            redelivered: Family::default(),
            listeners: Arc::default(),
        }
    }

    fn register(metrics: &Metrics) -> Self {
        let families = Self::standalone();
        let listeners = Arc::clone(&families.listeners);
        metrics.counters_fn(
            "listener_messages",
            "Messages a listener handled, by outcome (acked, retried, rejected, undecodable), \
             and +WPI progress acks it sent (outcome progress).",
            move || {
                let listeners = listeners.lock().unwrap_or_else(|e| e.into_inner());
                listeners
                    .iter()
                    .filter_map(Weak::upgrade)
                    .flat_map(|stats| stats.counts())
                    .collect()
            },
        );
        metrics.register(
            "listener_handle_duration_seconds",
            "Time a listener's handler took for one delivery, by event type and the decision \
             it came to (or its outcome when it reports none).",
            families.handled.clone(),
        );
        metrics.register(
            "listener_consumer_pending",
            "Messages on the listener's consumer not yet delivered, as of its last delivery.",
            families.pending.clone(),
        );
        metrics.register(
            "listener_redeliveries",
            "Deliveries of a message after its first (a retry, an expired ack wait, a restart).",
            families.redelivered.clone(),
        );
        families
    }
}

/// Counts of what one listener did with its messages.
pub struct ListenerStats {
    /// Acknowledged.
    pub acked: AtomicU64,
    /// Handed back with `-NAK` and a delay.
    pub retried: AtomicU64,
    /// Terminated by the handler's decision.
    pub rejected: AtomicU64,
    /// Terminated because the payload did not decode.
    pub undecodable: AtomicU64,
    /// `+WPI` progress acks sent for slow handlers.
    pub progress: AtomicU64,
    listener: &'static str,
    families: Families,
}

impl Default for ListenerStats {
    /// Counts kept for the caller alone (a rebuild, a test), in no registry.
    fn default() -> Self {
        Self::with(Families::standalone(), "")
    }
}

impl std::fmt::Debug for ListenerStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerStats")
            .field("listener", &self.listener)
            .field("acked", &self.acked)
            .field("retried", &self.retried)
            .field("rejected", &self.rejected)
            .finish_non_exhaustive()
    }
}

impl ListenerStats {
    fn with(families: Families, listener: &'static str) -> Self {
        Self {
            acked: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            undecodable: AtomicU64::new(0),
            progress: AtomicU64::new(0),
            listener,
            families,
        }
    }

    /// The counts of listener `listener`, served in `metrics` (see the module documentation).
    pub fn registered(metrics: &Metrics, listener: &'static str) -> Arc<Self> {
        let families = metrics.shared(Families::register);
        // Every listener's series from the start, at zero until something happens.
        let label = ListenerLabel { listener };
        drop(families.pending.get_or_create(&label));
        drop(families.redelivered.get_or_create(&label));
        let stats = Arc::new(Self::with(families.clone(), listener));
        let mut listeners = families.listeners.lock().unwrap_or_else(|e| e.into_inner());
        listeners.push(Arc::downgrade(&stats));
        stats
    }

    fn counts(&self) -> Vec<(crate::metrics::Labels, u64)> {
        [
            ("acked", &self.acked),
            ("retried", &self.retried),
            ("rejected", &self.rejected),
            ("undecodable", &self.undecodable),
            ("progress", &self.progress),
        ]
        .into_iter()
        .map(|(outcome, counter)| {
            let labels = vec![
                ("listener", self.listener.to_owned()),
                ("outcome", outcome.to_owned()),
            ];
            (labels, counter.load(Ordering::Relaxed))
        })
        .collect()
    }

    /// One delivery arrived: `pending` messages follow it on the consumer, and this is its
    /// `delivered`-th delivery.
    pub(crate) fn delivery(&self, pending: u64, delivered: i64) {
        let label = ListenerLabel {
            listener: self.listener,
        };
        self.pending(pending);
        if delivered > 1 {
            self.families.redelivered.get_or_create(&label).inc();
        }
    }

    /// The consumer has `pending` messages not yet delivered (from its info).
    pub(crate) fn pending(&self, pending: u64) {
        let label = ListenerLabel {
            listener: self.listener,
        };
        let pending = i64::try_from(pending).unwrap_or(i64::MAX);
        self.families.pending.get_or_create(&label).set(pending);
    }

    /// A handler for an `event` took `took` and came to `decision`.
    pub(crate) fn handled(&self, event: &'static str, decision: &'static str, took: Duration) {
        let labels = HandledLabels {
            listener: self.listener,
            event,
            decision,
        };
        let histogram = self.families.handled.get_or_create(&labels);
        histogram.observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_listeners_share_each_family_once() {
        let metrics = Metrics::new();
        let one = ListenerStats::registered(&metrics, "one");
        let two = ListenerStats::registered(&metrics, "two");
        one.acked.fetch_add(2, Ordering::Relaxed);
        two.delivery(5, 2);
        two.handled("Thing", "applied", Duration::from_millis(3));
        let text = metrics.encode();
        assert_eq!(
            text.matches("# TYPE listener_messages_total counter")
                .count(),
            1,
            "{text}"
        );
        for line in [
            "listener_messages_total{listener=\"one\",outcome=\"acked\"} 2",
            "listener_messages_total{listener=\"two\",outcome=\"acked\"} 0",
            "listener_consumer_pending{listener=\"two\"} 5",
            "listener_redeliveries_total{listener=\"two\"} 1",
            "listener_handle_duration_seconds_count{listener=\"two\",event=\"Thing\",decision=\"applied\"} 1",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }
}
