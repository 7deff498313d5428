//! The schedule on tokio's paused clock: time moves only when every task waits, so each request
//! goes out exactly when it is due and a fake target's stall lasts exactly as long as it says.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::*;

const MS: Duration = Duration::from_millis(1);

fn plan(rate: u32, warmup_ms: u64, duration_ms: u64) -> Plan {
    Plan {
        rate,
        warmup: Duration::from_millis(warmup_ms),
        duration: Duration::from_millis(duration_ms),
        max_in_flight: 1_000,
        settle_timeout: Duration::from_secs(10),
    }
}

/// A target that answers and settles at once, except that every request sent in
/// `[from, to)` after `start` waits until `to` (the stack stalls for that long).
fn stalling(start: Instant, from: Duration, to: Duration) -> impl FnMut(Slot) -> BoxedRequest {
    move |_slot| {
        Box::pin(async move {
            let sent = Instant::now();
            let since = sent - start;
            if since >= from && since < to {
                tokio::time::sleep_until(start + to).await;
            }
            answered_now_after(sent)
        })
    }
}

/// A request sent at `sent`, answered and settled (applied) now.
fn answered_now_after(sent: Instant) -> anyhow::Result<Sample> {
    let now = Instant::now();
    Ok(Sample {
        sent,
        responded: now,
        settled: now,
        applied: true,
    })
}

/// A request sent, answered and settled (applied) now.
fn answered_now() -> anyhow::Result<Sample> {
    answered_now_after(Instant::now())
}

type BoxedRequest =
    std::pin::Pin<Box<dyn Future<Output = anyhow::Result<Sample>> + Send + 'static>>;

/// How many samples of `histogram` are above zero.
fn above_zero(histogram: &Histogram<u64>) -> u64 {
    histogram.len() - histogram.count_at(0)
}

#[test]
fn offsets_are_one_over_the_rate_apart_without_drift() {
    let p = plan(1_000, 0, 1_000);
    assert_eq!(p.offset(0), Duration::ZERO);
    assert_eq!(p.offset(1), MS);
    assert_eq!(p.offset(1_000), Duration::from_secs(1));
    let p = plan(3, 0, 1_000);
    assert_eq!(p.offset(1), Duration::from_nanos(333_333_333));
    assert_eq!(p.offset(2), Duration::from_nanos(666_666_666));
    assert_eq!(p.offset(3_000), Duration::from_secs(1_000));
}

#[tokio::test(start_paused = true)]
async fn each_request_goes_out_at_its_scheduled_time() {
    let start = Instant::now();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let report = drive(&plan(200, 250, 1_000), move |slot| {
        let record = Arc::clone(&record);
        async move {
            let sent = Instant::now();
            record.lock().unwrap().push((slot, sent));
            Ok(Sample {
                sent,
                responded: sent,
                settled: sent,
                applied: slot.index % 2 == 0,
            })
        }
    })
    .await
    .unwrap();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by_key(|(slot, _)| slot.index);
    assert_eq!(seen.len(), 250, "1.25 s at 200/s");
    for (i, (slot, sent)) in seen.iter().enumerate() {
        assert_eq!(slot.index, i as u64);
        assert_eq!(
            slot.at - start,
            5 * MS * i as u32,
            "request {i} due 5 ms apart"
        );
        assert_eq!(*sent, slot.at, "request {i} went out when due");
        assert_eq!(slot.measured, i >= 50, "the first 250 ms are the warm-up");
    }
    assert_eq!(
        (report.scheduled, report.sent, report.applied),
        (200, 200, 100)
    );
    assert_eq!((report.dropped, report.late, report.failed), (0, 0, 0));
    assert_eq!(report.end_to_end.max(), 0);
    assert_eq!(report.settled_per_second(), 200.0);
}

#[tokio::test(start_paused = true)]
async fn a_stall_is_measured_from_the_schedule_of_every_request_due_during_it() {
    let start = Instant::now();
    // Requests are due every 10 ms; those due at 200, 210, ..., 500 ms (31) wait until 505 ms.
    let report = drive(&plan(100, 0, 1_000), stalling(start, 195 * MS, 505 * MS))
        .await
        .unwrap();
    assert_eq!(
        (report.scheduled, report.sent, report.dropped),
        (100, 100, 0)
    );
    assert_eq!(
        report.late, 0,
        "the schedule does not wait for the stalled requests"
    );
    assert_eq!(
        above_zero(&report.end_to_end),
        31,
        "every request due in the stall"
    );
    assert!(report
        .end_to_end
        .equivalent(report.end_to_end.max(), 305_000));
    assert!(report.request.equivalent(report.request.max(), 305_000));
    assert!(report
        .end_to_end
        .equivalent(report.end_to_end.value_at_quantile(0.9), 205_000));
}

#[tokio::test(start_paused = true)]
async fn a_request_sent_late_is_timed_from_when_it_was_due() {
    // One connection: each request waits for the one before it, then takes 30 ms. Requests due
    // every 10 ms go out ever later: request i at 30·i ms, answered at 30·(i+1) ms.
    let connection = Arc::new(tokio::sync::Mutex::new(()));
    let report = drive(&plan(100, 0, 200), move |_slot| {
        let connection = Arc::clone(&connection);
        async move {
            let _held = connection.lock().await;
            let sent = Instant::now();
            tokio::time::sleep(30 * MS).await;
            answered_now_after(sent)
        }
    })
    .await
    .unwrap();
    assert_eq!((report.scheduled, report.sent), (20, 20));
    assert_eq!(
        report.late, 19,
        "all but the first went out over 10 ms late"
    );
    assert_eq!(report.max_send_lag, 380 * MS);
    // Timed from when it was sent, each would take 30 ms; from when it was due, the last one
    // (due at 190 ms, answered at 600 ms) took 410 ms.
    assert!(report
        .end_to_end
        .equivalent(report.end_to_end.min(), 30_000));
    assert!(report
        .end_to_end
        .equivalent(report.end_to_end.max(), 410_000));
}

#[tokio::test(start_paused = true)]
async fn requests_due_while_the_in_flight_bound_is_full_are_dropped() {
    let start = Instant::now();
    let mut plan = plan(100, 0, 1_000);
    plan.max_in_flight = 5;
    let report = drive(&plan, stalling(start, 195 * MS, 505 * MS))
        .await
        .unwrap();
    // The requests due at 200-240 ms take the five places; those due at 250-500 ms find none.
    assert_eq!(
        (report.scheduled, report.sent, report.dropped),
        (100, 74, 26)
    );
    assert!(report.overloaded());
    assert_eq!(above_zero(&report.end_to_end), 5);
}

#[tokio::test(start_paused = true)]
async fn warm_up_samples_are_left_out_of_the_figures() {
    let start = Instant::now();
    let report = drive(&plan(100, 500, 500), stalling(start, 95 * MS, 305 * MS))
        .await
        .unwrap();
    assert_eq!((report.scheduled, report.sent), (50, 50));
    assert_eq!(report.end_to_end.len(), 50);
    assert_eq!(report.end_to_end.max(), 0, "the stall was in the warm-up");
    assert_eq!(report.settled_in_window, 50);
    assert_eq!(report.settled_per_second(), 100.0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_request_is_counted_and_the_others_go_on() {
    let report = drive(&plan(100, 0, 100), |slot| async move {
        anyhow::ensure!(slot.index != 3, "refused");
        answered_now()
    })
    .await
    .unwrap();
    assert_eq!((report.scheduled, report.sent, report.failed), (10, 9, 1));
    assert_eq!(report.first_failure.as_deref(), Some("refused"));
}

#[tokio::test(start_paused = true)]
async fn a_request_that_never_settles_fails_the_run_after_the_settle_timeout() {
    let error = drive(&plan(100, 0, 100), |slot| async move {
        if slot.index == 0 {
            std::future::pending::<()>().await;
        }
        answered_now()
    })
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("1 requests had not settled"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_plan_without_a_rate_is_refused() {
    let error = drive(&plan(0, 0, 100), |_| async {
        anyhow::bail!("never called")
    })
    .await
    .unwrap_err();
    assert!(error.to_string().contains("rate"), "{error}");
}
