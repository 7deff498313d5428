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
//! Every failure mode runs on every broker × database target, (a) to (f) as docs/ordering.md
//! letters them. Five arm a fault on the service's replicas (fault injection,
//! `--fault-injection`) for the scenario account's first delivery: a handler that fails after
//! its commit and before its ack (a), a handler slower than the ack wait (c), a handler that
//! freezes past the ack wait and then commits its stale copy (d), a replica that crashes
//! mid-flight (d, a child process that really aborts), and handlers that hold the number they
//! found next while a second copy is decided (f). The service runs with `ACK_WAIT=2s`, so the
//! ones bound by the ack wait take a few seconds, not twelve.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use common_events::observe::{DecisionKind, DecisionNote};
use console::scenarios::{self, Fault, ScenarioEnv, ScenarioId, Verdict};
use test_support::process::ServiceProcess;
use test_support::scenario;
use test_support::wait::until_eq;
use test_support::{InProcess, Scenario, Target};

use crate::support::{spawn_app, spawn_app_with, TestApp, BOUND, START_BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(a_listener_failing_before_its_ack_has_the_redelivery_applied_again_by_the_naive_handler_only),
    scenario!(a_withdrawal_arriving_before_its_deposit_is_misjudged_by_the_naive_handler_only),
    scenario!(
        a_handler_slower_than_the_ack_wait_makes_the_naive_handler_apply_twice_and_the_service_once
    ),
    scenario!(
        a_dead_client_s_stale_copy_is_applied_again_by_the_naive_handler_and_refused_by_the_service
    ),
    scenario!(
        a_replica_that_crashes_mid_flight_loses_the_naive_handler_s_deposit_not_the_service_s
    ),
    scenario!(a_duplicate_delivery_is_applied_twice_by_the_naive_handler_and_once_by_the_service),
    scenario!(two_replicas_racing_on_one_number_both_apply_it_in_the_naive_handler_once_in_the_service),
];

/// The ack wait the fault scenarios' services run with: short, so that a redelivery after it
/// (and a stall past it) costs a few seconds on every target.
const ACK_WAIT: &str = "2s";
const ACK_WAIT_MS: u64 = 2_000;

/// The flags of the `n`th replica that plays faults.
fn faulty(n: usize) -> [String; 3] {
    [
        "--fault-injection".to_owned(),
        format!("--replica-id=account-{n}"),
        format!("--ack-wait={ACK_WAIT}"),
    ]
}

/// A service with fault injection on and the short ack wait, replica `account-1`.
async fn spawn_faulty(t: &Target) -> anyhow::Result<TestApp> {
    let flags = faulty(1);
    spawn_app_with(t, &flags.each_ref().map(String::as_str)).await
}

/// [`spawn_faulty`] and a second such replica, `account-2`, on the same broker and database;
/// the scenario environment that knows both.
async fn spawn_two_faulty(t: &Target) -> anyhow::Result<(TestApp, InProcess, ScenarioEnv)> {
    let app = spawn_faulty(t).await?;
    let flags = faulty(2);
    let (second, _) = app.replica(&flags.each_ref().map(String::as_str)).await?;
    let urls = [app.service.url.clone(), second.url.clone()];
    let env = env(&app.js, &urls);
    Ok((app, second, env))
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

/// The decision notes of [`deliveries`] with this decision.
fn decided(
    notes: &[DecisionNote],
    decision: DecisionKind,
) -> Vec<(i64, DecisionKind, &str, Option<&str>)> {
    let mut seen = deliveries(notes);
    seen.retain(|d| d.1 == decision);
    seen
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

/// The same verdict the page shows: the naive handler wrong, the service right.
fn assert_naive_wrong_service_right(verdict: &Verdict, expected: (i64, i64, i64, u64), why: &str) {
    assert_eq!(balances(verdict), expected, "{why}: {}", verdict.line);
    assert!(verdict.naive_wrong && verdict.passed, "{}", verdict.line);
}

/// The service's consumer holds nothing back: every delivery acknowledged, none pending.
async fn nothing_pending(app: &TestApp) -> anyhow::Result<()> {
    until_eq(
        "nothing pending on the service's consumer",
        BOUND,
        (0, 0),
        || test_support::jetstream::pending(&app.js, scenarios::ACCOUNT_CONSUMER),
    )
    .await
}

/// (a) A listener that fails after its commit and before its ack (an error after the write, a
/// connection lost before the ack went out): the message is handed back and delivered again.
/// The naive handler applied the deposit, failed, and applies the redelivery again. The
/// service's handler commits the deposit and number 1 together, fails the same way (a
/// `fail_before_ack` fault), and finds number 1 consumed on the redelivery: a duplicate.
async fn a_listener_failing_before_its_ack_has_the_redelivery_applied_again_by_the_naive_handler_only(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_faulty(&t).await?;
    let verdict = run(&app, ScenarioId::FailedBeforeAck).await?;
    assert_naive_wrong_service_right(
        &verdict,
        (100, 200, 100, 1),
        "truth 100; the naive handler applies the redelivery again; the service once",
    );
    assert_eq!(
        deliveries(&verdict.decisions),
        [
            (
                1,
                DecisionKind::Applied,
                "account-1",
                Some("fail_before_ack")
            ),
            (2, DecisionKind::Duplicate, "account-1", None)
        ],
        "applied and handed back, then acked as a duplicate: {verdict:#?}"
    );
    until_eq("one hand-back and one ack", BOUND, (1, 1), || async {
        Ok((
            app.listener_count("retried").await?,
            app.listener_count("acked").await?,
        ))
    })
    .await?;
    nothing_pending(&app).await
}

/// (b) Events of one account can arrive out of number order: one replica of the producer was
/// faster than another, a NAKed or timed-out message comes back after later ones, the stream is
/// replayed by a consumer that started late. Here the withdrawal of 60 (number 2) arrives
/// before the deposit of 100 (number 1) that pays for it.
async fn a_withdrawal_arriving_before_its_deposit_is_misjudged_by_the_naive_handler_only(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let verdict = run(&app, ScenarioId::OutOfOrder).await?;
    assert_naive_wrong_service_right(
        &verdict,
        (40, 100, 40, 2),
        "truth 40; the naive handler rejects the withdrawal for funds that were on their way; \
         the service applies both in order",
    );
    assert_eq!(verdict.naive_rejected, 1, "{}", verdict.line);
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

/// (c) A handler slower than the ack wait: the broker redelivers a message whose handler has
/// not acknowledged it within the ack wait. The naive handler (its own consumer with the
/// service consumer's ack wait, no progress acks) stalls on delivery 1 for the ack wait + 2 s,
/// takes the redelivery meanwhile and applies the deposit twice. The service's handler is made
/// as slow on delivery 1 (a `slow` fault); its runner's `+WPI` progress acks keep the message,
/// so there is no redelivery: applied once.
async fn a_handler_slower_than_the_ack_wait_makes_the_naive_handler_apply_twice_and_the_service_once(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_faulty(&t).await?;
    let verdict = run(&app, ScenarioId::SlowHandler).await?;
    assert_naive_wrong_service_right(
        &verdict,
        (100, 200, 100, 1),
        "truth 100; the naive handler applies the redelivery and its own copy; the service once",
    );
    let stall = ACK_WAIT_MS + 2_000;
    assert_eq!(
        (verdict.ack_wait_ms, verdict.fault, verdict.fault_delay_ms),
        (ACK_WAIT_MS, Some(Fault::Slow), Some(stall))
    );
    let slow = format!("slow {stall} ms");
    assert_eq!(
        deliveries(&verdict.decisions),
        [(1, DecisionKind::Applied, "account-1", Some(slow.as_str()))],
        "one delivery, applied after the stall, never redelivered: {verdict:#?}"
    );
    assert!(
        verdict.progress_acks >= 2,
        "+WPI every half ack wait over the stall: {verdict:#?}"
    );
    assert!(app.listener_count("progress").await? >= 2);
    assert!(verdict.elapsed_ms >= stall, "{}", verdict.elapsed_ms);
    nothing_pending(&app).await
}

/// (d) A dead client: a handler that stops responding without closing its connection (a frozen
/// process, a long pause, a partition), so the broker thinks it alive until the ack wait has
/// passed. The service's handler on delivery 1 decides "next", then freezes for the ack wait +
/// 2 s with its progress acks stopped (a `freeze` fault); the broker redelivers after the ack
/// wait, a handler applies the redelivery; the frozen one wakes and commits its stale copy,
/// whose conditional update matches nothing: `race`, handed back (and the broker ignores the
/// hand-back: the message is acknowledged already). Applied once. The naive frozen handler
/// wakes and applies its stale copy: twice.
///
/// Two replicas in this process: only the frozen handler stalls, not its replica, which may take
/// the redelivery itself on another handler (a truly frozen process could not); the verdict's
/// log says which replica did, and the balance is the same either way.
async fn a_dead_client_s_stale_copy_is_applied_again_by_the_naive_handler_and_refused_by_the_service(
    t: Target,
) -> anyhow::Result<()> {
    let (app, second, env) = spawn_two_faulty(&t).await?;
    let verdict = run_in(&env, ScenarioId::DeadClient).await?;
    assert_naive_wrong_service_right(
        &verdict,
        (100, 200, 100, 1),
        "truth 100; the naive handler applies the redelivery and its stale copy; the service once",
    );
    let seen = deliveries(&verdict.decisions);
    let frozen: Vec<_> = seen.iter().filter(|d| d.3.is_some()).collect();
    assert_eq!(frozen.len(), 1, "one frozen delivery: {verdict:#?}");
    let freeze = format!("freeze {} ms", ACK_WAIT_MS + 2_000);
    assert_eq!(
        (frozen[0].0, frozen[0].1, frozen[0].3),
        (1, DecisionKind::Race, Some(freeze.as_str())),
        "the stale copy lost the conditional update: {verdict:#?}"
    );
    let applied = decided(&verdict.decisions, DecisionKind::Applied);
    assert_eq!(applied.len(), 1, "applied once: {verdict:#?}");
    assert_eq!(applied[0].0, 2, "by the redelivery: {verdict:#?}");
    assert_eq!(
        verdict.progress_acks, 0,
        "a frozen handler sends no progress ack: {verdict:#?}"
    );
    let account = verdict.account_id.parse()?;
    assert_eq!(app.balance(account).await?, (100, 1));
    nothing_pending(&app).await?;
    second.stop().await
}

/// (d) A dead client whose connection drops: a replica crashed mid-flight. The replica that
/// gets delivery 1 aborts before committing (`std::process::abort()`, like `kill -9`), so the
/// service runs as two child processes. The broker redelivers the unacknowledged deposit (at
/// once on the bundled broker, which redelivers a closed connection's messages, after the ack
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
            ("ACK_WAIT", ACK_WAIT.to_owned()),
        ];
        let replica = ServiceProcess::start(program, &vars)?;
        replica.wait_ready(START_BOUND).await?;
        replicas.push(replica);
    }
    let urls: Vec<String> = replicas.iter().map(ServiceProcess::url).collect();
    let js = jetstream::new(async_nats::connect(broker.url()).await?);
    let verdict = run_in(&env(&js, &urls), ScenarioId::CrashedReplica).await?;
    assert_naive_wrong_service_right(
        &verdict,
        (100, 0, 100, 1),
        "truth 100; the naive handler acked and lost the deposit; the service applied it once",
    );
    assert_eq!(verdict.naive_lost, 1, "{}", verdict.line);
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
    let applied = decided(&verdict.decisions, DecisionKind::Applied);
    assert_eq!(applied.len(), 1, "applied once: {verdict:#?}");
    assert!(
        applied[0].0 >= 2 && Some(applied[0].2) == survivor,
        "the other replica applied a redelivery: {verdict:#?}"
    );
    assert_eq!(verdict.replicas_down.len(), 1, "{verdict:#?}");
    assert!(verdict.replicas_down[0].starts_with(crashed[0]));
    Ok(())
}

/// (e) A duplicate delivery: the same transaction reaches the consumer twice, one copy after
/// the other (a producer retried a publish whose confirmation it did not get, or a relay
/// re-published after the stream's duplicate window): deposit 100 (#1), delivered twice.
async fn a_duplicate_delivery_is_applied_twice_by_the_naive_handler_and_once_by_the_service(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let verdict = run(&app, ScenarioId::DuplicateDelivery).await?;
    assert_naive_wrong_service_right(
        &verdict,
        (100, 200, 100, 1),
        "truth 100; the naive handler applies the second copy again; the service once",
    );
    until_eq("both deliveries acked", BOUND, 2, || {
        app.listener_count("acked")
    })
    .await?;
    let account = verdict.account_id.parse()?;
    assert_eq!(app.balance(account).await?, (100, 1));
    nothing_pending(&app).await
}

/// (f) Two replicas racing on one number: two copies of deposit 100 (#1) reach two handlers at
/// once, and both read the account at number 0 and find #1 next before either writes (each
/// holds it for a second: a `slow` fault of [`scenarios::RACE_HOLD`]). The naive handler checks
/// the number too, but its check and its write are two steps: both copies pass the check, both
/// are applied. The service's commit is conditional (`where last_transaction_number = 0`): the
/// first wins, the other is a `race`, handed back, and acked as a duplicate when it returns.
async fn two_replicas_racing_on_one_number_both_apply_it_in_the_naive_handler_once_in_the_service(
    t: Target,
) -> anyhow::Result<()> {
    let (app, second, env) = spawn_two_faulty(&t).await?;
    let verdict = run_in(&env, ScenarioId::ReplicaRace).await?;
    assert_naive_wrong_service_right(
        &verdict,
        (100, 200, 100, 1),
        "truth 100; both naive handlers pass the number check and apply; the service once",
    );
    let decided = |kind| decided(&verdict.decisions, kind);
    let (applied, raced) = (decided(DecisionKind::Applied), decided(DecisionKind::Race));
    assert_eq!(
        (applied.len(), raced.len()),
        (1, 1),
        "one commit won, one lost the conditional update: {verdict:#?}"
    );
    assert_eq!(
        (applied[0].0, raced[0].0),
        (1, 1),
        "both on a first delivery: {verdict:#?}"
    );
    let duplicates = decided(DecisionKind::Duplicate);
    assert!(
        !duplicates.is_empty() && duplicates.iter().all(|d| d.0 >= 2),
        "the hand-back came back as a duplicate: {verdict:#?}"
    );
    let account = verdict.account_id.parse()?;
    assert_eq!(app.balance(account).await?, (100, 1));
    nothing_pending(&app).await?;
    second.stop().await
}
