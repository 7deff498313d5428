//! A service's Prometheus metrics: one [`Metrics`] registry per service instance, encoded in
//! the Prometheus text format (0.0.4) with `# HELP` and `# TYPE` on every family.
//!
//! Built on `prometheus-client`, the Prometheus project's own Rust client: its registries are
//! values, not process globals, so several services in one process (the tests, a stack run in
//! one test) each keep their own series; its label sets are typed; and it writes the classic
//! text format every Prometheus version scrapes.
//!
//! Two kinds of series live here: metrics the code updates as it goes (counters, gauges and
//! histograms registered with [`Metrics::register`]), and readings taken at scrape time from
//! counters a service already keeps in atomics ([`Metrics::counter_fn`], [`Metrics::gauge_fn`],
//! [`Metrics::counters_fn`]).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Metric, Registry};

/// The `Content-Type` of `/metrics`: the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The upper bounds, in seconds, of every latency histogram (HTTP requests, handlers, outbox
/// lag): from half a millisecond, where a handler of a warm cache answers, to a minute, where
/// an outbox waits out a broker outage.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// A histogram over [`LATENCY_BUCKETS`].
pub fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// A service's metrics registry; cheap to clone, shared by everything that registers into it.
#[derive(Clone, Default)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    shared: Arc<Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic while registering leaves the registry as it was: keep serving it.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `metric` as family `name` (without the `_total` of a counter, which the
    /// encoding adds) with its `help` line.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry().register(name, help, metric);
    }

    /// The one `T` of this registry (a set of families that several parts of a service add
    /// series to, such as every listener's): made, and its families registered, by `make` the
    /// first time it is asked for.
    pub fn shared<T: Clone + Send + Sync + 'static>(&self, make: impl FnOnce(&Metrics) -> T) -> T {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = shared.get(&TypeId::of::<T>()) {
            if let Some(found) = found.downcast_ref::<T>() {
                return found.clone();
            }
        }
        let made = make(self);
        shared.insert(TypeId::of::<T>(), Box::new(made.clone()));
        made
    }

    /// A counter read at scrape time from `read`.
    pub fn counter_fn(
        &self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> u64 + Send + Sync + 'static,
    ) {
        self.collect(name, help, MetricType::Counter, move || {
            vec![(Vec::new(), Reading::Count(read()))]
        });
    }

    /// Counters read at scrape time from the atomic fields of `stats`: one per
    /// `(name, help, field)` of `counters`.
    pub fn atomic_counters<S: Send + Sync + 'static>(
        &self,
        stats: &Arc<S>,
        counters: &[AtomicCounter<S>],
    ) {
        for &(name, help, field) in counters {
            let stats = Arc::clone(stats);
            self.counter_fn(name, help, move || {
                field(&stats).load(std::sync::atomic::Ordering::Relaxed)
            });
        }
    }

    /// A gauge read at scrape time from `read`.
    pub fn gauge_fn(
        &self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> i64 + Send + Sync + 'static,
    ) {
        self.collect(name, help, MetricType::Gauge, move || {
            vec![(Vec::new(), Reading::Level(read()))]
        });
    }

    /// A counter family read at scrape time: `read` gives each series' labels and value.
    pub fn counters_fn(
        &self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> Vec<(Labels, u64)> + Send + Sync + 'static,
    ) {
        self.collect(name, help, MetricType::Counter, move || {
            let series = read().into_iter();
            series
                .map(|(labels, n)| (labels, Reading::Count(n)))
                .collect()
        });
    }

    fn collect(
        &self,
        name: &'static str,
        help: &'static str,
        kind: MetricType,
        read: impl Fn() -> Vec<(Labels, Reading)> + Send + Sync + 'static,
    ) {
        let readout = Readout {
            name,
            help,
            kind,
            read: Box::new(read),
        };
        self.registry().register_collector(Box::new(readout));
    }

    /// Every family, in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry();
        if let Err(err) = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        {
            // Only a metric whose encoding fails gets here (writing to a String cannot).
            tracing::warn!(error = %err, "encoding the metrics failed");
        }
        out
    }
}

/// A counter of [`Metrics::atomic_counters`]: its name, its help and the field it reads.
pub type AtomicCounter<S> = (
    &'static str,
    &'static str,
    fn(&S) -> &std::sync::atomic::AtomicU64,
);

/// The labels of one series read at scrape time: `(name, value)` pairs.
pub type Labels = Vec<(&'static str, String)>;

/// One value read at scrape time.
enum Reading {
    /// A counter's count.
    Count(u64),
    /// A gauge's level.
    Level(i64),
}

/// Series read at scrape time (see [`Metrics::counter_fn`]).
struct Readout {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    read: Box<dyn Fn() -> Vec<(Labels, Reading)> + Send + Sync>,
}

impl fmt::Debug for Readout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readout").field("name", &self.name).finish()
    }
}

impl Collector for Readout {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let series = (self.read)();
        let mut family = encoder.encode_descriptor(self.name, self.help, None, self.kind)?;
        for (labels, value) in series {
            let metric = family.encode_family(&labels)?;
            match value {
                Reading::Count(count) => ConstCounter::new(count).encode(metric)?,
                Reading::Level(level) => ConstGauge::new(level).encode(metric)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn every_family_has_help_and_type_and_counters_end_in_total() {
        let metrics = Metrics::new();
        let counter = Counter::<u64>::default();
        metrics.register("things", "Things done.", counter.clone());
        counter.inc();
        metrics.gauge_fn("queue_depth", "Items waiting.", || 3);
        metrics.counters_fn("results", "Results by kind.", || {
            vec![(vec![("kind", "sent".to_owned())], 2)]
        });
        let text = metrics.encode();
        for expected in [
            "# HELP things_total Things done.",
            "# TYPE things_total counter",
            "things_total 1",
            "# TYPE queue_depth gauge",
            "queue_depth 3",
            "# TYPE results_total counter",
            "results_total{kind=\"sent\"} 2",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn a_latency_histogram_has_a_bucket_per_bound_and_inf() {
        let metrics = Metrics::new();
        let histogram = latency_histogram();
        metrics.register("work_seconds", "How long work took.", histogram.clone());
        histogram.observe(0.003);
        let text = metrics.encode();
        assert!(text.contains("# TYPE work_seconds histogram"), "{text}");
        assert!(
            text.contains("work_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("work_seconds_bucket{le=\"+Inf\"} 1"),
            "{text}"
        );
        assert!(text.contains("work_seconds_count 1"), "{text}");
    }
}
