//! The open-loop schedule: requests go out at a constant rate, each at its own time on a fixed
//! schedule whatever the responses do (as wrk2 and k6's constant-arrival-rate executor do), and
//! each is timed from that scheduled time. A stall therefore shows in the latency of every
//! request that was due during it, not only in the one that was waiting when it began (the
//! closed loop's "coordinated omission").
//!
//! [`drive`] knows nothing of HTTP or NATS: it calls a function per slot and tallies the
//! [`Sample`] each returns, so its tests drive it with a fake target on tokio's paused clock.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How far behind its scheduled time a request may go out before it counts as late (the tool
/// itself could not keep the schedule: a busy machine, or a client without a free connection).
/// A late request is still timed from its scheduled time.
pub const LATE_BOUND: Duration = Duration::from_millis(10);

/// The schedule and its limits.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Requests per second.
    pub rate: u32,
    /// How long requests go out before the measured part; their samples are dropped.
    pub warmup: Duration,
    /// How long the measured part lasts.
    pub duration: Duration,
    /// How many requests may be in flight (scheduled and not settled) at once. A request due
    /// while that many are in flight is not sent and counts as dropped: the target is
    /// overloaded, and the tool does not queue without end.
    pub max_in_flight: usize,
    /// How long the requests still in flight after the last scheduled one may take to settle.
    pub settle_timeout: Duration,
}

impl Plan {
    /// When request `index` is due, after the start.
    pub fn offset(&self, index: u64) -> Duration {
        let nanos = u128::from(index) * 1_000_000_000 / u128::from(self.rate.max(1));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// How long requests go out: the warm-up and the measured part.
    pub fn total(&self) -> Duration {
        self.warmup + self.duration
    }
}

/// One request of the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Its place in the schedule, from 0.
    pub index: u64,
    /// When it is due.
    pub at: Instant,
    /// Whether it falls in the measured part (after the warm-up).
    pub measured: bool,
}

/// What a request that went out reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// When it actually went out.
    pub sent: Instant,
    /// When its HTTP response arrived.
    pub responded: Instant,
    /// When its outcome arrived.
    pub settled: Instant,
    /// Whether it was applied (else rejected).
    pub applied: bool,
}

/// What an open-loop run measured, over its measured part unless said otherwise.
#[derive(Clone, Debug)]
pub struct OpenReport {
    /// The schedule it ran.
    pub plan: Plan,
    /// Requests due in the measured part.
    pub scheduled: u64,
    /// Of those, sent and settled.
    pub sent: u64,
    /// Of those, applied (the rest were rejected for insufficient funds).
    pub applied: u64,
    /// Not sent: due while [`Plan::max_in_flight`] requests were in flight.
    pub dropped: u64,
    /// Sent more than [`LATE_BOUND`] after they were due.
    pub late: u64,
    /// How far behind the schedule the latest request went out.
    pub max_send_lag: Duration,
    /// Requests that failed (an HTTP error, say), warm-up included.
    pub failed: u64,
    /// The first failure's message.
    pub first_failure: Option<String>,
    /// Outcomes (of any request, warm-up included) that arrived during the measured part.
    pub settled_in_window: u64,
    /// Due → outcome, microseconds.
    pub end_to_end: Histogram<u64>,
    /// Due → HTTP response, microseconds.
    pub request: Histogram<u64>,
}

impl OpenReport {
    fn new(plan: &Plan) -> anyhow::Result<Self> {
        Ok(Self {
            plan: plan.clone(),
            scheduled: 0,
            sent: 0,
            applied: 0,
            dropped: 0,
            late: 0,
            max_send_lag: Duration::ZERO,
            failed: 0,
            first_failure: None,
            settled_in_window: 0,
            end_to_end: Histogram::new(3)?,
            request: Histogram::new(3)?,
        })
    }

    /// Requests sent per second of the measured part.
    pub fn sent_per_second(&self) -> f64 {
        self.sent as f64 / self.plan.duration.as_secs_f64()
    }

    /// Outcomes per second during the measured part: what the stack achieved.
    pub fn settled_per_second(&self) -> f64 {
        self.settled_in_window as f64 / self.plan.duration.as_secs_f64()
    }

    /// Whether the target fell so far behind that requests were dropped.
    pub fn overloaded(&self) -> bool {
        self.dropped > 0
    }

    fn add(&mut self, slot: Slot, window: (Instant, Instant), result: anyhow::Result<Sample>) {
        let sample = match result {
            Ok(sample) => sample,
            Err(e) => {
                self.failed += 1;
                self.first_failure.get_or_insert_with(|| format!("{e:#}"));
                return;
            }
        };
        if (window.0..window.1).contains(&sample.settled) {
            self.settled_in_window += 1;
        }
        if !slot.measured {
            return;
        }
        let micros = |t: Instant| t.saturating_duration_since(slot.at).as_micros() as u64;
        // Auto-resizing histograms take any value.
        let _ = self.end_to_end.record(micros(sample.settled));
        let _ = self.request.record(micros(sample.responded));
        let lag = sample.sent.saturating_duration_since(slot.at);
        self.max_send_lag = self.max_send_lag.max(lag);
        self.late += u64::from(lag > LATE_BOUND);
        self.sent += 1;
        self.applied += u64::from(sample.applied);
    }
}

/// Runs `plan`: calls `issue` for each slot at its time, unless [`Plan::max_in_flight`]
/// requests are in flight, runs what it returns on a task of its own, and tallies the samples.
/// Fails when requests are still in flight [`Plan::settle_timeout`] after the last was due.
pub async fn drive<F, Fut>(plan: &Plan, mut issue: F) -> anyhow::Result<OpenReport>
where
    F: FnMut(Slot) -> Fut,
    Fut: Future<Output = anyhow::Result<Sample>> + Send + 'static,
{
    anyhow::ensure!(plan.rate > 0, "the rate must be at least 1 request/s");
    anyhow::ensure!(plan.max_in_flight > 0, "max in flight must be at least 1");
    anyhow::ensure!(!plan.duration.is_zero(), "the duration must not be zero");
    let mut report = OpenReport::new(plan)?;
    let permits = Arc::new(Semaphore::new(plan.max_in_flight));
    let mut running = JoinSet::new();
    let start = Instant::now();
    let window = (start + plan.warmup, start + plan.total());
    for index in 0.. {
        let offset = plan.offset(index);
        if offset >= plan.total() {
            break;
        }
        let slot = Slot {
            index,
            at: start + offset,
            measured: offset >= plan.warmup,
        };
        loop {
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(slot.at) => break,
                Some(done) = running.join_next() => {
                    let (slot, result) = done?;
                    report.add(slot, window, result);
                }
            }
        }
        report.scheduled += u64::from(slot.measured);
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            report.dropped += u64::from(slot.measured);
            continue;
        };
        let request = issue(slot);
        running.spawn(async move {
            let result = request.await;
            drop(permit);
            (slot, result)
        });
    }
    let deadline = Instant::now() + plan.settle_timeout;
    while !running.is_empty() {
        match tokio::time::timeout_at(deadline, running.join_next()).await {
            Ok(Some(done)) => {
                let (slot, result) = done?;
                report.add(slot, window, result);
            }
            Ok(None) => break,
            Err(_) => bail!(
                "{} requests had not settled {:?} after the last one was due",
                running.len(),
                plan.settle_timeout
            ),
        }
    }
    Ok(report)
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
