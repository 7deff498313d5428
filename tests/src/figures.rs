//! The figures of a load run, once: the JSON output serialises them and the human summary is
//! written from them.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::load::LoadReport;
use crate::schedule::{OpenReport, LATE_BOUND};

/// A latency distribution, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latency {
    /// How many samples.
    pub samples: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// The figures of a histogram of microseconds.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            samples: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.5)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        }
    }

    fn text(&self) -> String {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms",
            self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms
        )
    }
}

/// What an open-loop run measured, over its measured part (after the warm-up).
#[derive(Clone, Debug, Serialize)]
pub struct OpenFigures {
    /// The rate asked for.
    pub offered_per_s: f64,
    /// Requests sent per second.
    pub sent_per_s: f64,
    /// Outcomes per second: what the stack achieved.
    pub achieved_per_s: f64,
    /// Requests due.
    pub scheduled: u64,
    /// Requests sent and settled.
    pub sent: u64,
    pub applied: u64,
    pub rejected: u64,
    /// Requests not sent because the in-flight bound was full.
    pub dropped: u64,
    /// The in-flight bound.
    pub max_in_flight: usize,
    /// Requests sent more than `late_bound_ms` after they were due.
    pub late: u64,
    pub late_bound_ms: f64,
    /// How far behind the schedule the latest request went out.
    pub max_send_lag_ms: f64,
    /// Requests that failed, warm-up included, and the first failure.
    pub failed: u64,
    pub first_failure: Option<String>,
    /// Whether requests were dropped: the stack did not keep up with the rate.
    pub overloaded: bool,
    /// Due time → outcome event.
    pub request_to_applied: Latency,
    /// Due time → HTTP response.
    pub http_post: Latency,
}

impl OpenFigures {
    /// The figures of an open-loop report.
    pub fn of(report: &OpenReport) -> Self {
        Self {
            offered_per_s: f64::from(report.plan.rate),
            sent_per_s: report.sent_per_second(),
            achieved_per_s: report.settled_per_second(),
            scheduled: report.scheduled,
            sent: report.sent,
            applied: report.applied,
            rejected: report.sent - report.applied,
            dropped: report.dropped,
            max_in_flight: report.plan.max_in_flight,
            late: report.late,
            late_bound_ms: LATE_BOUND.as_secs_f64() * 1000.0,
            max_send_lag_ms: report.max_send_lag.as_secs_f64() * 1000.0,
            failed: report.failed,
            first_failure: report.first_failure.clone(),
            overloaded: report.overloaded(),
            request_to_applied: Latency::of(&report.end_to_end),
            http_post: Latency::of(&report.request),
        }
    }

    /// A few lines for people.
    pub fn summary(&self) -> String {
        let overloaded = if self.overloaded {
            "; OVERLOADED: the stack did not keep up with the offered rate"
        } else {
            ""
        };
        format!(
            "offered {:.0} tx/s, sent {:.1} tx/s, achieved {:.1} tx/s (outcomes per second); \
             {} due, {} sent ({} applied, {} rejected), {} dropped at the in-flight bound of {}, \
             {} late (sent > {:.0} ms after due, at most {:.1} ms), {} failed{overloaded}\n\
             request→applied (from the scheduled time) {}\n\
             HTTP POST (from the scheduled time) {}",
            self.offered_per_s,
            self.sent_per_s,
            self.achieved_per_s,
            self.scheduled,
            self.sent,
            self.applied,
            self.rejected,
            self.dropped,
            self.max_in_flight,
            self.late,
            self.late_bound_ms,
            self.max_send_lag_ms,
            self.failed,
            self.request_to_applied.text(),
            self.http_post.text(),
        )
    }
}

/// What a closed-loop run measured: as many transactions as `concurrency` workers get through,
/// which is the stack's maximum rate at that concurrency.
#[derive(Clone, Debug, Serialize)]
pub struct ClosedFigures {
    pub transactions: usize,
    pub elapsed_s: f64,
    /// Transactions per second from the first request to the last outcome.
    pub max_per_s: f64,
    pub applied: usize,
    pub rejected: usize,
    /// Request start → outcome event.
    pub request_to_applied: Latency,
    /// HTTP request latency.
    pub http_post: Latency,
}

impl ClosedFigures {
    /// The figures of a closed-loop report.
    pub fn of(report: &LoadReport) -> Self {
        Self {
            transactions: report.transactions,
            elapsed_s: report.elapsed.as_secs_f64(),
            max_per_s: report.per_second(),
            applied: report.applied,
            rejected: report.rejected,
            request_to_applied: Latency::of(&report.end_to_end),
            http_post: Latency::of(&report.request),
        }
    }

    /// A few lines for people.
    pub fn summary(&self) -> String {
        format!(
            "{} transactions in {:.2} s: closed-loop maximum {:.0} tx/s request→applied \
             ({} applied, {} rejected)\n\
             request→applied {}\n\
             HTTP POST {}",
            self.transactions,
            self.elapsed_s,
            self.max_per_s,
            self.applied,
            self.rejected,
            self.request_to_applied.text(),
            self.http_post.text(),
        )
    }
}
