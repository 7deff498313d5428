//! How a run ended ([`Verdict`]), the line that says it, and the console's count of runs
//! ([`RunStats`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use common_events::observe::DecisionNote;
use serde::Serialize;

use super::{Fault, LedgerOutcome};
use crate::money::format_cents;

/// How a run ended: the truth, the naive handler's balance and the service's, and a line to
/// read.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// The scenario's slug.
    pub scenario: &'static str,
    /// Its title.
    pub title: &'static str,
    /// The account the run opened.
    pub account_id: String,
    /// The balance a sequential replay in number order gives, in minor units.
    pub truth: i64,
    /// The naive handler's balance.
    pub naive: i64,
    /// How many withdrawals the naive handler refused.
    pub naive_rejected: usize,
    /// How many deliveries the naive handler acknowledged and lost (its simulated crash).
    pub naive_lost: usize,
    /// The account service's balance, through its API.
    pub service: i64,
    /// The account service's `last_transaction_number`.
    pub service_last_number: u64,
    /// The number it must reach.
    pub expected_last_number: u64,
    /// The account service's ledger: how it consumed each number.
    pub service_outcomes: Vec<LedgerOutcome>,
    /// The decision notes the account service published about this account during the run
    /// (none when it publishes none).
    pub decisions: Vec<DecisionNote>,
    /// Whether the service consumed every number and acknowledged every delivery in time.
    pub settled: bool,
    /// The naive handler got it wrong: the failure mode was reproduced.
    pub naive_wrong: bool,
    /// The account service got it right: its balance is the truth at the last number.
    pub passed: bool,
    /// The verdict in one line.
    pub line: String,
    /// What the run did, step by step.
    pub steps: Vec<String>,
    /// How long the run took.
    pub elapsed_ms: u64,
    /// The account service consumer's ack wait, as the broker reports it.
    pub ack_wait_ms: u64,
    /// The fault the run armed on the account service (`slow`, `crash`, `freeze`), if any.
    pub fault: Option<Fault>,
    /// How long its slow or frozen handler stalled (the ack wait + [`FAULT_MARGIN`](super::FAULT_MARGIN)).
    pub fault_delay_ms: Option<u64>,
    /// The `+WPI` progress acks the service's handlers sent, as their decision notes report.
    pub progress_acks: u64,
    /// The account-service replicas seen to stop answering during the run (the crash).
    pub replicas_down: Vec<String>,
    /// When the first `TransactionCreated` was published, in milliseconds since the epoch (the
    /// decision notes' `at_ms` are on the same clock).
    pub published_at_ms: i64,
}

/// `12 s`, `1.5 s`, `40 ms`.
pub(super) fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        return format!("{} ms", duration.as_millis());
    }
    let secs = duration.as_secs_f64();
    if (secs - secs.round()).abs() < 0.05 {
        format!("{secs:.0} s")
    } else {
        format!("{secs:.1} s")
    }
}

/// The verdict in one line a reader can check against the numbers above it.
pub(super) fn verdict_line(v: &Verdict, bound: Duration) -> String {
    let right = |ok: bool| if ok { "right" } else { "wrong" };
    let numbers = format!(
        "{}: truth {}; naive handler {} ({}); account service {} at number {} ({})",
        v.title,
        format_cents(v.truth),
        format_cents(v.naive),
        right(!v.naive_wrong),
        format_cents(v.service),
        v.service_last_number,
        right(v.passed),
    );
    let conclusion = if v.passed && v.naive_wrong {
        "PASSED: the account service kept the balance right where the naive handler did not"
            .to_owned()
    } else if v.passed {
        "PASSED: the account service is right (the naive handler happened to be right too)"
            .to_owned()
    } else if v.service_last_number < v.expected_last_number || !v.settled {
        format!(
            "FAILED: the account service did not consume every number within {} (expected \
             number {})",
            seconds(bound),
            v.expected_last_number
        )
    } else {
        format!(
            "FAILED: the account service's balance {} is not the truth {}",
            format_cents(v.service),
            format_cents(v.truth)
        )
    };
    format!("{numbers}. {conclusion}.")
}

/// How many runs of each scenario the console has made, and how many passed.
#[derive(Debug, Default)]
pub struct RunStats {
    counts: Mutex<HashMap<(&'static str, bool), u64>>,
}

impl RunStats {
    /// Counts one run.
    pub fn record(&self, verdict: &Verdict) {
        let mut counts = self.counts.lock().expect("not poisoned");
        *counts
            .entry((verdict.scenario, verdict.passed))
            .or_default() += 1;
    }

    /// `(scenario, passed, count)` for every combination seen.
    pub fn snapshot(&self) -> Vec<(&'static str, bool, u64)> {
        let counts = self.counts.lock().expect("not poisoned");
        let mut rows: Vec<_> = counts.iter().map(|(&(s, p), &n)| (s, p, n)).collect();
        rows.sort();
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_seconds_or_milliseconds() {
        assert_eq!(seconds(Duration::from_secs(12)), "12 s");
        assert_eq!(seconds(Duration::from_millis(10_140)), "10.1 s");
        assert_eq!(seconds(Duration::from_millis(40)), "40 ms");
    }

    #[test]
    fn the_verdict_line_says_who_was_right() {
        let mut verdict = Verdict {
            scenario: "duplicate-delivery",
            title: "Duplicate delivery",
            account_id: String::new(),
            truth: 100,
            naive: 200,
            naive_rejected: 0,
            naive_lost: 0,
            service: 100,
            service_last_number: 1,
            expected_last_number: 1,
            service_outcomes: vec![],
            decisions: vec![],
            settled: true,
            naive_wrong: true,
            passed: true,
            line: String::new(),
            steps: vec![],
            elapsed_ms: 0,
            ack_wait_ms: 10_000,
            fault: None,
            fault_delay_ms: None,
            progress_acks: 0,
            replicas_down: vec![],
            published_at_ms: 0,
        };
        assert_eq!(
            verdict_line(&verdict, Duration::from_secs(15)),
            "Duplicate delivery: truth 1.00; naive handler 2.00 (wrong); account service 1.00 \
             at number 1 (right). PASSED: the account service kept the balance right where the \
             naive handler did not."
        );
        verdict.service = 200;
        verdict.passed = false;
        assert!(verdict_line(&verdict, Duration::from_secs(15))
            .ends_with("FAILED: the account service's balance 2.00 is not the truth 1.00."));
    }
}
