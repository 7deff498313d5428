//! Hostile and broken producers: events for accounts that do not exist, gaps that never close,
//! a flood of them, and numbers claimed by two transactions. None of them may stall other
//! accounts, lose anything, or apply anything out of order.

use std::time::{Duration, Instant};

use account::conflict::Conflict;
use account::store::Publish;
use common_events::inspect::read_all;
use common_events::topology::{subjects, TRANSACTIONS};
use common_events::{
    AccountId, TraceContext, TransactionCreated, TransactionId, TransactionRejected,
};
use test_support::scenario;
use test_support::wait::until_eq;
use test_support::{Scenario, Target};

use crate::support::{spawn_app, spawn_app_with, start_with, TestApp, Tx, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(an_event_for_an_unknown_account_is_dead_lettered_not_handed_back),
    scenario!(
        a_gap_open_past_the_bound_is_parked_and_applied_in_order_when_its_predecessor_arrives
    ),
    scenario!(parked_transactions_survive_a_restart_and_are_applied_by_the_next_service),
    scenario!(with_2000_forged_gaps_outstanding_a_bystander_deposit_settles_within_a_second),
    scenario!(a_consumed_number_claimed_by_another_transaction_is_a_conflict_not_a_duplicate),
    scenario!(two_parked_claims_on_one_number_apply_the_first_and_reject_the_other),
];

/// A short parking bound for the tests that wait for it.
const PARK_SOON: &str = "--gap-park-after=300ms";
/// How long applying 2,000 parked transactions may take on a loaded machine.
const BULK_BOUND: Duration = Duration::from_secs(120);

async fn an_event_for_an_unknown_account_is_dead_lettered_not_handed_back(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let stranger = AccountId::new();
    app.created(&Tx::deposit(stranger, 1, 5)).await?;
    until_eq("one dead letter", BOUND, 1, || async {
        Ok(app.store.dead_letter_count().await?)
    })
    .await?;
    until_eq("counted", BOUND, 1, || {
        app.metric("account_unknown_account_total")
    })
    .await?;
    until_eq("terminated", BOUND, 1, || app.listener_count("rejected")).await?;
    assert_eq!(app.listener_count("retried").await?, 0, "never handed back");
    assert_eq!(consumer_backlog(&app).await?, (0, 0), "nothing outstanding");
    // The listener goes on.
    let account = app.open("a").await?;
    app.created(&Tx::deposit(account, 1, 7)).await?;
    until_eq("a real deposit applied", BOUND, (7, 1), || {
        app.balance(account)
    })
    .await
}

async fn a_gap_open_past_the_bound_is_parked_and_applied_in_order_when_its_predecessor_arrives(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app_with(&t, &[PARK_SOON]).await?;
    let account = app.open("a").await?;
    // 2 and 3 arrive; 1 does not, for longer than the bound.
    app.created(&Tx::deposit(account, 3, 300)).await?;
    app.created(&Tx::withdrawal(account, 2, 50)).await?;
    until_eq("both parked", BOUND, 2, || {
        app.metric("account_parked_transactions")
    })
    .await?;
    let (_, ready) = app.get("/readyz").await?;
    assert_eq!(ready["parked_transactions"], 2, "{ready}");
    assert_eq!(consumer_backlog(&app).await?, (0, 0), "off the broker");
    assert_eq!(app.balance(account).await?, (0, 0), "nothing applied early");
    let parked: Vec<u64> = app
        .store
        .parked(account)
        .await?
        .iter()
        .map(|p| p.event.number.get())
        .collect();
    assert_eq!(parked, [2, 3]);

    app.created(&Tx::deposit(account, 1, 100)).await?;
    // 1: 100; 2: withdraw 50 (allowed only after 1); 3: +300.
    until_eq("all three in order", BOUND, (350, 3), || {
        app.balance(account)
    })
    .await?;
    assert_eq!(ledger_outcomes(&app, account).await?, ["applied"; 3]);
    until_eq("none parked", BOUND, 0, || {
        app.metric("account_parked_transactions")
    })
    .await?;
    assert_eq!(app.metric("account_unparked_total").await?, 2);
    let applied = read_all::<common_events::TransactionApplied>(&app.js).await?;
    let numbers: Vec<u64> = applied.iter().map(|(_, e)| e.data.number.get()).collect();
    assert_eq!(numbers, [1, 2, 3], "outcome events in number order");
    Ok(())
}

async fn parked_transactions_survive_a_restart_and_are_applied_by_the_next_service(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app_with(&t, &[PARK_SOON]).await?;
    let account = app.open("a").await?;
    app.created(&Tx::deposit(account, 2, 20)).await?;
    until_eq("parked", BOUND, 1, || {
        app.metric("account_parked_transactions")
    })
    .await?;
    app.service.stop().await?;

    let (service, store) = start_with(&app.broker.url(), &app.database_url, &[PARK_SOON]).await?;
    let app = TestApp {
        service,
        store,
        ..app
    };
    app.created(&Tx::deposit(account, 1, 10)).await?;
    until_eq("both applied after the restart", BOUND, (30, 2), || {
        app.balance(account)
    })
    .await?;
    assert_eq!(app.store.parked_count().await?, 0);
    app.service.stop().await
}

async fn with_2000_forged_gaps_outstanding_a_bystander_deposit_settles_within_a_second(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let victim = app.open("victim").await?;
    let forged: Vec<Tx> = (2..=2001).map(|n| Tx::deposit(victim, n, 1)).collect();
    app.created_all(&forged).await?;
    // Every forged event delivered at least once: the ones past the open-gap limit are parked,
    // the rest are handed back again and again.
    until_eq("all forged events delivered", BULK_BOUND, 0, || async {
        Ok(consumer_backlog(&app).await?.0)
    })
    .await?;
    // At most 256 handed back (MAX_OPEN_GAPS) plus those being handled or pulled: far from the
    // consumer's 1,024 in-flight slots.
    let open = consumer_backlog(&app).await?.1;
    assert!(open <= 512, "{open} messages hold in-flight slots");
    let parked = app.metric("account_parked_total").await?;
    let settled = usize::try_from(parked)? + open;
    assert!(
        settled >= 2000,
        "{parked} parked and {open} in flight of 2,000"
    );

    let bystander = app.open("bystander").await?;
    let started = Instant::now();
    app.created(&Tx::deposit(bystander, 1, 42)).await?;
    until_eq(
        "the bystander's deposit",
        Duration::from_secs(1),
        (42, 1),
        || app.balance(bystander),
    )
    .await?;
    eprintln!(
        "bystander settled in {:?} with {parked} parked, {open} handed back",
        started.elapsed()
    );

    // The victim's real first transaction arrives: everything applies, in order.
    app.created(&Tx::deposit(victim, 1, 1)).await?;
    until_eq("all 2,001 applied", BULK_BOUND, (2001, 2001), || {
        app.balance(victim)
    })
    .await?;
    until_eq("none parked", BOUND, 0, || {
        app.metric("account_parked_transactions")
    })
    .await?;
    Ok(())
}

async fn a_consumed_number_claimed_by_another_transaction_is_a_conflict_not_a_duplicate(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.open("a").await?;
    let forged = Tx::deposit(account, 1, 1_000_000);
    app.created(&forged).await?;
    until_eq(
        "the forged one applied first",
        BOUND,
        (1_000_000, 1),
        || app.balance(account),
    )
    .await?;
    let real = Tx::deposit(account, 1, 10);
    app.created(&real).await?;
    let rejected_for = |id: TransactionId| {
        let js = app.js.clone();
        async move {
            let events = read_all::<TransactionRejected>(&js).await?;
            anyhow::Ok(
                events
                    .into_iter()
                    .filter(|(_, e)| e.data.transaction_id == id)
                    .map(|(_, e)| e.data.reason)
                    .collect::<Vec<_>>(),
            )
        }
    };
    until_eq("the real one rejected", BOUND, 1, || async {
        Ok(rejected_for(real.id).await?.len())
    })
    .await?;
    let reason = rejected_for(real.id).await?.remove(0);
    assert!(reason.starts_with("conflict:"), "{reason}");
    assert!(reason.contains(&forged.id.to_string()), "{reason}");
    assert_eq!(app.metric("account_conflicts_total").await?, 1);
    assert_eq!(app.store.dead_letter_count().await?, 1);
    assert_eq!(app.balance(account).await?, (1_000_000, 1));

    // A true duplicate (same transaction, same number) is still only a duplicate.
    app.created(&forged).await?;
    until_eq("the duplicate acked", BOUND, 2, || {
        app.listener_count("acked")
    })
    .await?;
    assert_eq!(app.metric("account_conflicts_total").await?, 1);
    assert_eq!(app.store.dead_letter_count().await?, 1);

    // The conflicting message met again (a redelivery after a crash between the commit and
    // the +TERM, or a second replica) is not dead-lettered or rejected twice.
    let created = read_all::<TransactionCreated>(&app.js).await?;
    let (sequence, envelope) = created
        .iter()
        .find(|(_, e)| e.data.transaction_id == real.id)
        .ok_or_else(|| anyhow::anyhow!("the real TransactionCreated is in the stream"))?;
    let recorded = forged.id.to_string();
    let again = Conflict {
        event: &envelope.data,
        recorded: &recorded,
        subject: subjects::TRANSACTION_CREATED,
        stream_sequence: *sequence,
        publish: Publish::Outcome(TraceContext::new_root()),
    };
    assert!(!app.store.record_conflict(&again).await?, "met before");
    assert_eq!(app.store.dead_letter_count().await?, 1);
    assert_eq!(app.metric("account_conflicts_total").await?, 1);
    Ok(())
}

async fn two_parked_claims_on_one_number_apply_the_first_and_reject_the_other(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app_with(&t, &[PARK_SOON]).await?;
    let account = app.open("a").await?;
    let first = Tx::deposit(account, 2, 20);
    app.created(&first).await?;
    until_eq("the first parked", BOUND, 1, || {
        app.metric("account_parked_transactions")
    })
    .await?;
    let second = Tx::deposit(account, 2, 99);
    app.created(&second).await?;
    until_eq("the second parked", BOUND, 2, || {
        app.metric("account_parked_transactions")
    })
    .await?;
    app.created(&Tx::deposit(account, 1, 1)).await?;
    until_eq("1 and the first 2 applied", BOUND, (21, 2), || {
        app.balance(account)
    })
    .await?;
    until_eq("the other claim is a conflict", BOUND, 1, || {
        app.metric("account_conflicts_total")
    })
    .await?;
    let rejected = read_all::<TransactionRejected>(&app.js).await?;
    let ids: Vec<_> = rejected
        .iter()
        .map(|(_, e)| e.data.transaction_id)
        .collect();
    assert_eq!(ids, [second.id]);
    assert_eq!(app.store.parked_count().await?, 0);
    Ok(())
}

/// `(num_pending, num_ack_pending)` of the service's consumer: messages not delivered yet, and
/// messages delivered but not acknowledged or terminated.
async fn consumer_backlog(app: &TestApp) -> anyhow::Result<(u64, usize)> {
    let broker = |err: async_nats::Error| anyhow::anyhow!("reading the consumer: {err}");
    let stream = app.js.get_stream(TRANSACTIONS.name).await?;
    let consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_consumer("account-service")
        .await
        .map_err(broker)?;
    let info = consumer
        .get_info()
        .await
        .map_err(|err| broker(err.into()))?;
    Ok((info.num_pending, info.num_ack_pending))
}

async fn ledger_outcomes(app: &TestApp, account: AccountId) -> anyhow::Result<Vec<String>> {
    let (_, ledger) = app.get(&format!("/api/accounts/{account}/ledger")).await?;
    Ok(ledger["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["outcome"].as_str().map(str::to_owned))
        .collect())
}
