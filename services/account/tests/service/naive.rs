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
//! `last + 1` only, acks what is at or below `last` and holds back what is ahead (see
//! docs/ordering.md).
//!
//! The last three scenarios arm a fault on the service's replicas (fault injection,
//! `--fault-injection`) for the scenario account's first delivery: a handler slower than the
//! ack wait, a replica that crashes mid-flight (a child process that really aborts), a handler
//! that freezes past the ack wait and then commits its stale copy.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use common_events::observe::{DecisionKind, DecisionNote};
use console::scenarios::{self, Fault, ScenarioEnv, ScenarioId, Verdict};
use test_support::process::ServiceProcess;
use test_support::scenario;
use test_support::wait::until_eq;
use test_support::{DatabaseTarget, Scenario, Target};

use crate::support::{spawn_app, spawn_app_with, TestApp, BOUND, START_BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(a_redelivered_deposit_is_applied_twice_by_the_naive_handler_and_once_by_the_service),
    scenario!(a_withdrawal_arriving_before_its_deposit_is_misjudged_by_the_naive_handler_only),
    scenario!(
        a_handler_slower_than_the_ack_wait_makes_the_naive_handler_apply_twice_and_the_service_once,
        only = slow_handler_targets
    ),
    scenario!(
        a_replica_that_crashes_mid_flight_loses_the_naive_handler_s_deposit_not_the_service_s,
        only = crashed_replica_targets
    ),
    scenario!(
        a_dead_client_s_stale_copy_is_applied_again_by_the_naive_handler_and_refused_by_the_service,
        only = dead_client_targets
    ),
];

// The fault scenarios wait for the broker's ack wait (10 s): the slow handler and the dead
// client take about 12 s each, the crash about 10 s on nats-server (the bundled broker
// redelivers a closed connection's messages at once). So they run on fewer targets than the
// others:

/// Progress acks are the broker's business: both brokers, on SQLite.
fn slow_handler_targets(t: &Target) -> bool {
    t.database() == DatabaseTarget::Sqlite
}

/// Both brokers on SQLite, and the bundled broker (fast here) on PostgreSQL too.
fn crashed_replica_targets(t: &Target) -> bool {
    t.is("broker", "sqlite") || t.is("nats-server", "sqlite") || t.is("broker", "postgres")
}

/// The stale commit is refused by the database's conditional update: both brokers and both
/// databases, in two trials.
fn dead_client_targets(t: &Target) -> bool {
    t.is("broker", "sqlite") || t.is("nats-server", "postgres")
}

/// The console's scenario environment for this broker and these account-service URLs.
fn env(js: &jetstream::Context, urls: &[String]) -> ScenarioEnv {
    ScenarioEnv::new(js.clone(), urls[0].as_str())
        .with_replicas(urls.iter().cloned())
        .with_ready_bound(BOUND)
        .with_settle_bound(BOUND)
}

/// Runs the console's scenario, printing its verdict line and what it did.
async fn run_in(env: &ScenarioEnv, id: ScenarioId) -> anyhow::Result<Verdict> {
    let verdict = scenarios::run(id, env).await?;
    for step in &verdict.steps {
        eprintln!("  {step}");
    }
    eprintln!("{} ({} ms)", verdict.line, verdict.elapsed_ms);
    Ok(verdict)
}

/// Runs the console's scenario against this test's service and broker.
async fn run(app: &TestApp, id: ScenarioId) -> anyhow::Result<Verdict> {
    run_in(&env(&app.js, std::slice::from_ref(&app.service.url)), id).await
}

/// `(delivery, decision, replica, fault)` of each decision note, in time order.
fn deliveries(notes: &[DecisionNote]) -> Vec<(i64, DecisionKind, &str, Option<&str>)> {
    notes
        .iter()
        .map(|n| {
            (
                n.delivered,
                n.decision,
                n.replica.as_str(),
                n.fault.as_deref(),
            )
        })
        .collect()
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

/// A handler slower than the ack wait: the broker redelivers a message whose handler has not
/// acknowledged it within the ack wait. The naive handler (its own consumer with the service
/// consumer's ack wait, no progress acks) stalls on delivery 1 for the ack wait + 2 s, takes the
/// redelivery meanwhile and applies the deposit twice. The service's handler is made as slow on
/// delivery 1 (a `slow` fault); its runner's `+WPI` progress acks keep the message, so there is
/// no redelivery: applied once.
async fn a_handler_slower_than_the_ack_wait_makes_the_naive_handler_apply_twice_and_the_service_once(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app_with(&t, &["--fault-injection", "--replica-id=account-1"]).await?;
    let verdict = run(&app, ScenarioId::SlowHandler).await?;
    assert_eq!(
        balances(&verdict),
        (100, 200, 100, 1),
        "truth 100; the naive handler applies the redelivery and its own copy; the service once: \
         {}",
        verdict.line
    );
    assert!(verdict.naive_wrong && verdict.passed, "{}", verdict.line);
    assert_eq!(
        (verdict.ack_wait_ms, verdict.fault, verdict.fault_delay_ms),
        (10_000, Some(Fault::Slow), Some(12_000))
    );
    assert_eq!(
        deliveries(&verdict.decisions),
        [(1, DecisionKind::Applied, "account-1", Some("slow 12000 ms"))],
        "one delivery, applied after the stall, never redelivered: {verdict:#?}"
    );
    assert!(
        verdict.progress_acks >= 2,
        "+WPI every half ack wait over 12 s: {verdict:#?}"
    );
    assert!(app.listener_count("progress").await? >= 2);
    assert!(verdict.elapsed_ms >= 12_000, "{}", verdict.elapsed_ms);
    Ok(())
}

/// A replica crashed mid-flight: the replica that gets delivery 1 aborts before committing
/// (`std::process::abort()`, like `kill -9`), so the service runs as two child processes. The
/// broker redelivers the unacknowledged deposit (at once on the bundled broker, after the ack
/// wait on nats-server) to the other replica: applied once. The naive handler acked on receipt
/// and "crashed" before applying (simulated in the console): the deposit is lost.
async fn a_replica_that_crashes_mid_flight_loses_the_naive_handler_s_deposit_not_the_service_s(
    t: Target,
) -> anyhow::Result<()> {
    let broker = t.broker.start()?;
    let dir = tempfile::tempdir()?;
    let database_url = t.database().fresh_url(dir.path(), "account").await?;
    let program = Path::new(env!("CARGO_BIN_EXE_account-service"));
    let names = ["account-1", "account-2"];
    let mut replicas = Vec::new();
    for name in names {
        let vars = [
            ("NATS_URL", broker.url()),
            ("DATABASE_URL", database_url.clone()),
            ("FAULT_INJECTION", "true".to_owned()),
            ("REPLICA_ID", name.to_owned()),
        ];
        let replica = ServiceProcess::start(program, &vars)?;
        replica.wait_ready(START_BOUND).await?;
        replicas.push(replica);
    }
    let urls: Vec<String> = replicas.iter().map(ServiceProcess::url).collect();
    let js = jetstream::new(async_nats::connect(broker.url()).await?);
    let verdict = run_in(&env(&js, &urls), ScenarioId::CrashedReplica).await?;
    assert_eq!(
        (balances(&verdict), verdict.naive_lost),
        ((100, 0, 100, 1), 1),
        "truth 100; the naive handler acked and lost the deposit; the service applied it once: {}",
        verdict.line
    );
    assert!(verdict.naive_wrong && verdict.passed, "{}", verdict.line);
    let mut crashed = Vec::new();
    for (replica, name) in replicas.iter_mut().zip(names) {
        if let Ok(status) = replica.wait_exit(Duration::ZERO) {
            assert_eq!(
                status.signal(),
                Some(6),
                "{name} aborted (SIGABRT): {status}"
            );
            crashed.push(name);
        }
    }
    assert_eq!(crashed.len(), 1, "exactly one replica crashed: {crashed:?}");
    let survivor = names.iter().find(|name| !crashed.contains(name)).copied();
    let applied: Vec<_> = deliveries(&verdict.decisions)
        .into_iter()
        .filter(|(_, decision, _, _)| *decision == DecisionKind::Applied)
        .collect();
    assert_eq!(applied.len(), 1, "applied once: {verdict:#?}");
    assert!(
        applied[0].0 >= 2 && Some(applied[0].2) == survivor,
        "the other replica applied a redelivery: {verdict:#?}"
    );
    assert_eq!(verdict.replicas_down.len(), 1, "{verdict:#?}");
    assert!(verdict.replicas_down[0].starts_with(crashed[0]));
    Ok(())
}

/// A dead client: a handler that stops responding without closing its connection (a frozen
/// process, a long pause, a partition). The service's handler on delivery 1 decides "next",
/// then freezes for the ack wait + 2 s with its progress acks stopped (a `freeze` fault); the
/// broker redelivers after the ack wait, a handler applies the redelivery; the frozen one wakes
/// and commits its stale copy, whose conditional update matches nothing: `race`, handed back
/// (and the broker ignores the hand-back: the message is acknowledged already). Applied once.
/// The naive frozen handler wakes and applies its stale copy: twice.
///
/// Two replicas in this process: only the frozen handler stalls, not its replica, which may take
/// the redelivery itself on another handler (a truly frozen process could not); the verdict's
/// log says which replica did, and the balance is the same either way.
async fn a_dead_client_s_stale_copy_is_applied_again_by_the_naive_handler_and_refused_by_the_service(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app_with(&t, &["--fault-injection", "--replica-id=account-1"]).await?;
    let (second, _) = app
        .replica(&["--fault-injection", "--replica-id=account-2"])
        .await?;
    let urls = [app.service.url.clone(), second.url.clone()];
    let verdict = run_in(&env(&app.js, &urls), ScenarioId::DeadClient).await?;
    assert_eq!(
        balances(&verdict),
        (100, 200, 100, 1),
        "truth 100; the naive handler applies the redelivery and its stale copy; the service \
         once: {}",
        verdict.line
    );
    assert!(verdict.naive_wrong && verdict.passed, "{}", verdict.line);
    let seen = deliveries(&verdict.decisions);
    let frozen: Vec<_> = seen.iter().filter(|d| d.3.is_some()).collect();
    assert_eq!(frozen.len(), 1, "one frozen delivery: {verdict:#?}");
    assert_eq!(
        (frozen[0].0, frozen[0].1, frozen[0].3),
        (1, DecisionKind::Race, Some("freeze 12000 ms")),
        "the stale copy lost the conditional update: {verdict:#?}"
    );
    let applied: Vec<_> = seen
        .iter()
        .filter(|d| d.1 == DecisionKind::Applied)
        .collect();
    assert_eq!(applied.len(), 1, "applied once: {verdict:#?}");
    assert_eq!(applied[0].0, 2, "by the redelivery: {verdict:#?}");
    assert_eq!(
        verdict.progress_acks, 0,
        "a frozen handler sends no progress ack: {verdict:#?}"
    );
    let account = verdict.account_id.parse()?;
    assert_eq!(app.balance(account).await?, (100, 1));
    second.stop().await
}
