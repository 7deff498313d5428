//! The benchmarks, each a [`Benchmark`] in the table [`all`]. A new one is a module with a
//! type implementing the trait and a line in [`all`].

mod js_consume;
mod js_publish;
mod js_rss;
mod publish;
mod publish_async;
mod pubsub;
mod reqrep;
mod stan;

use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::args::{Settings, Workload};
use crate::system::CpuUsage;
use crate::targets::Target;

/// One benchmark: a way to load a server and the figures it yields.
pub(crate) trait Benchmark: Sync {
    /// Short name for `--only` and JSON: `pub`.
    fn name(&self) -> &'static str;
    /// What the table calls it: `publish, raw TCP`.
    fn title(&self) -> &'static str;
    /// Whether `--messages` or `--requests` sets its work.
    fn unit(&self) -> WorkUnit;
    /// Messages (or requests) in one run when the command line does not say, chosen so a run
    /// takes one to three seconds on a 2-core machine.
    fn default_count(&self, payload: usize) -> u64;
    /// Runs once against `target` and measures.
    fn run(&self, env: &Env, target: &Target, case: &Case) -> anyhow::Result<Sample>;
    /// Which servers it runs against.
    fn suite(&self) -> Suite {
        Suite::Core
    }
    /// Whether `--duration` applies; when not, a run does the default count.
    fn timeable(&self) -> bool {
        true
    }
    /// Whether every run needs a freshly started server (for figures about the process's whole
    /// life, such as peak memory).
    fn fresh_server(&self) -> bool {
        false
    }
}

/// Every benchmark, in the order they run and print, with the parameters `settings` gives.
pub(crate) fn all(settings: &Settings) -> Vec<Box<dyn Benchmark>> {
    vec![
        Box::new(publish::PublishRaw),
        Box::new(pubsub::PubSubRaw),
        Box::new(publish_async::PublishAsync),
        Box::new(reqrep::RequestReply),
        Box::new(js_publish::JsPublish),
        Box::new(js_publish::JsPublishAsync {
            window: settings.window,
        }),
        Box::new(js_consume::JsConsume {
            window: settings.window,
            batch: settings.batch,
        }),
        Box::new(js_rss::JsRss {
            window: settings.window,
        }),
        Box::new(stan::StanPublish {
            window: settings.window,
        }),
        Box::new(stan::StanSubscribe {
            window: settings.window,
            batch: settings.batch,
        }),
    ]
}

/// A set of servers that benchmarks run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Suite {
    /// Core NATS: the broker and nats-server as they start by default.
    Core,
    /// JetStream with file storage: the broker with both sync policies, and nats-server.
    JetStream,
    /// NATS Streaming on the broker (`-cid`), against the same work done with JetStream on the
    /// broker and on nats-server.
    Stan,
}

/// What a benchmark's count counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WorkUnit {
    /// Messages published (throughput benchmarks).
    Messages,
    /// Requests made (latency benchmarks).
    Requests,
}

/// What the benchmarks share: the async runtime for the async-nats clients.
pub(crate) struct Env {
    /// Runs async-nats clients.
    pub runtime: tokio::runtime::Runtime,
}

/// One benchmark configuration: payload size and amount of work.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Case {
    /// Payload bytes per message.
    pub payload: usize,
    /// How much to do.
    pub work: Work,
}

/// A resolved [`Workload`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Work {
    /// Exactly this many.
    Count(u64),
    /// As many as fit in this time.
    For(Duration),
}

impl Work {
    /// `workload`, with the benchmark's default count filled in.
    pub(crate) fn resolve(workload: Workload, bench: &dyn Benchmark, payload: usize) -> Work {
        match workload {
            Workload::Count(n) => Work::Count(n),
            Workload::For(d) if bench.timeable() => Work::For(d),
            Workload::Default | Workload::For(_) => Work::Count(bench.default_count(payload)),
        }
    }

    /// Whether `done` units, started at `start`, are all there is to do.
    pub(crate) fn finished(&self, done: u64, start: std::time::Instant) -> bool {
        match *self {
            Work::Count(n) => done >= n,
            Work::For(d) => start.elapsed() >= d,
        }
    }
}

/// A measured quantity and which direction is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Metric {
    /// `msgs/s`, `p50 µs`, ...
    pub name: &'static str,
    /// True for throughput, false for latency.
    pub higher_is_better: bool,
}

/// Messages per second.
pub(crate) const MSGS_PER_SEC: Metric = Metric {
    name: "msgs/s",
    higher_is_better: true,
};
/// Payload megabytes (10^6 bytes) per second.
pub(crate) const MB_PER_SEC: Metric = Metric {
    name: "MB/s",
    higher_is_better: true,
};
/// Median round-trip time in microseconds.
pub(crate) const P50_US: Metric = Metric {
    name: "p50 µs",
    higher_is_better: false,
};
/// 99th-percentile round-trip time in microseconds.
pub(crate) const P99_US: Metric = Metric {
    name: "p99 µs",
    higher_is_better: false,
};
/// The server's peak resident memory (`VmHWM`) in MiB.
pub(crate) const PEAK_RSS_MIB: Metric = Metric {
    name: "peak RSS MiB",
    higher_is_better: false,
};
/// The server's resident memory (`VmRSS`) at the end of the run, in MiB.
pub(crate) const RSS_MIB: Metric = Metric {
    name: "RSS MiB",
    higher_is_better: false,
};

/// One value of a metric.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Figure {
    /// What was measured.
    pub metric: Metric,
    /// Its value.
    pub value: f64,
}

/// The result of one run.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Sample {
    /// Messages (or requests) done in the measured interval.
    pub count: u64,
    /// Length of the measured interval.
    pub seconds: f64,
    /// The figures, in the benchmark's order.
    pub figures: Vec<Figure>,
    /// CPU use over the measured interval.
    pub cpu: CpuUsage,
}

impl Sample {
    /// msgs/s and MB/s for `count` messages of `payload` bytes in `elapsed`.
    pub(crate) fn throughput(
        count: u64,
        payload: usize,
        elapsed: Duration,
        cpu: CpuUsage,
    ) -> Sample {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let rate = count as f64 / secs;
        Sample {
            count,
            seconds: secs,
            figures: vec![
                Figure {
                    metric: MSGS_PER_SEC,
                    value: rate,
                },
                Figure {
                    metric: MB_PER_SEC,
                    value: rate * payload as f64 / 1e6,
                },
            ],
            cpu,
        }
    }

    /// A sample of `count` messages in `elapsed` whose figures are msgs/s and then `more`.
    pub(crate) fn rate(count: u64, elapsed: Duration, cpu: CpuUsage, more: Vec<Figure>) -> Sample {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut figures = vec![Figure {
            metric: MSGS_PER_SEC,
            value: count as f64 / secs,
        }];
        figures.extend(more);
        Sample {
            count,
            seconds: secs,
            figures,
            cpu,
        }
    }

    /// The value of `metric`, if this sample has it.
    pub(crate) fn value(&self, metric: Metric) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.metric == metric)
            .map(|f| f.value)
    }
}

/// Round-trip times, for p50 and p99.
pub(crate) struct Latencies(Histogram<u64>);

impl Latencies {
    /// An empty record of times from 1 ns to 60 s, to 3 significant digits.
    pub(crate) fn new() -> anyhow::Result<Latencies> {
        Histogram::new_with_bounds(1, 60_000_000_000, 3)
            .map(Latencies)
            .context("creating the latency histogram")
    }

    /// Records one round trip.
    pub(crate) fn record(&mut self, time: Duration) {
        self.0
            .saturating_record(u64::try_from(time.as_nanos()).unwrap_or(u64::MAX));
    }

    /// p50 and p99 in microseconds.
    pub(crate) fn figures(&self) -> Vec<Figure> {
        let us = |q: f64| self.0.value_at_quantile(q) as f64 / 1000.0;
        vec![
            Figure {
                metric: P50_US,
                value: us(0.50),
            },
            Figure {
                metric: P99_US,
                value: us(0.99),
            },
        ]
    }
}
