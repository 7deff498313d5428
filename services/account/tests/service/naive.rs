//! The worked example of docs/ordering.md, run: each way delivery order breaks a balance, shown
//! failing with a naive handler and passing with the account service's sequence numbers.
//!
//! The scenarios are the web console's ([`console::scenarios`]): the code the console runs live
//! against a deployment runs here against this test's service, through the service's HTTP API
//! and its broker. A run opens a fresh account, starts the naive handler on a consumer of its
//! own (the same listener runner as the service's; apply whatever arrives, in arrival order, ack
//! at once), publishes `TransactionCreated` for that account in the problematic order, waits
//! until the service has consumed every number and acknowledged every delivery, and compares
//! both with the truth, a sequential replay in number order. The service applies number
//! `last + 1` only, acks what is at or below `last` and holds back what is ahead (DESIGN
//! decision 4).

use console::scenarios::{self, ScenarioEnv, ScenarioId, Verdict};
use test_support::scenario;
use test_support::wait::until_eq;
use test_support::{Scenario, Target};

use crate::support::{spawn_app, TestApp, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(a_redelivered_deposit_is_applied_twice_by_the_naive_handler_and_once_by_the_service),
    scenario!(a_withdrawal_arriving_before_its_deposit_is_misjudged_by_the_naive_handler_only),
];

/// Runs the console's scenario against this test's service and broker.
async fn run(app: &TestApp, id: ScenarioId) -> anyhow::Result<Verdict> {
    let env = ScenarioEnv::new(app.js.clone(), app.service.url.as_str())
        .with_ready_bound(BOUND)
        .with_settle_bound(BOUND);
    let verdict = scenarios::run(id, &env).await?;
    eprintln!("{}", verdict.line);
    Ok(verdict)
}

/// `(truth, naive, service, service's last number)`.
fn balances(verdict: &Verdict) -> (i64, i64, i64, u64) {
    (
        verdict.truth,
        verdict.naive,
        verdict.service,
        verdict.service_last_number,
    )
}

/// A redelivery (the ack was lost, the handler was slower than ack_wait, or a relay
/// re-published after the duplicate window) hands the same transaction over twice: deposit 100
/// (#1), delivered twice.
async fn a_redelivered_deposit_is_applied_twice_by_the_naive_handler_and_once_by_the_service(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let verdict = run(&app, ScenarioId::DuplicateDelivery).await?;
    assert_eq!(
        balances(&verdict),
        (100, 200, 100, 1),
        "truth 100; the naive handler applies the redelivery again; the service once: {}",
        verdict.line
    );
    assert!(verdict.naive_wrong && verdict.passed, "{}", verdict.line);
    until_eq("both deliveries acked", BOUND, 2, || {
        app.listener_count("acked")
    })
    .await?;
    let account = verdict.account_id.parse()?;
    assert_eq!(app.balance(account).await?, (100, 1));
    Ok(())
}

/// Events of one account can arrive out of number order: two replicas' publishes race, a
/// NAKed or timed-out message comes back after later ones, the stream is replayed by a
/// consumer that started late. Here the withdrawal of 60 (number 2) arrives before the deposit
/// of 100 (number 1) that pays for it.
async fn a_withdrawal_arriving_before_its_deposit_is_misjudged_by_the_naive_handler_only(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let verdict = run(&app, ScenarioId::OutOfOrder).await?;
    assert_eq!(
        (balances(&verdict), verdict.naive_rejected),
        ((40, 100, 40, 2), 1),
        "truth 40; the naive handler rejects the withdrawal for funds that were on their way; \
         the service applies both in order: {}",
        verdict.line
    );
    assert!(verdict.naive_wrong && verdict.passed, "{}", verdict.line);
    let outcomes: Vec<&str> = verdict
        .service_outcomes
        .iter()
        .map(|o| o.outcome.as_str())
        .collect();
    assert_eq!(
        outcomes,
        ["applied", "applied"],
        "the service rejected nothing: {verdict:?}"
    );
    Ok(())
}
