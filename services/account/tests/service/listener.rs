//! The `TransactionCreated` listener: duplicate, next, gap and poison, and insufficient funds.

use account::ordering::{AccountState, Verdict};
use account::store::{Publish, Record};
use common_events::inspect::read_all;
use common_events::{TraceContext, TransactionApplied, TransactionRejected};
use test_support::scenario;
use test_support::wait::until_eq;
use test_support::{Scenario, Target};

use crate::support::{spawn_app, Tx, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(the_next_number_is_applied_and_emits_transaction_applied),
    scenario!(a_duplicate_is_acked_and_changes_nothing),
    scenario!(a_gap_is_not_applied_until_its_predecessor_arrives),
    scenario!(insufficient_funds_is_rejected_and_still_consumes_the_number),
    scenario!(poison_messages_are_terminated_and_dead_lettered_and_the_listener_goes_on),
    scenario!(a_batch_records_an_account_twice_in_order_and_refuses_a_number_taken_meanwhile),
];

/// One batch written in multi-row statements: an account twice (its second record decided on
/// the first's result), another account, and a stale record of a number the batch itself takes
/// first; only the stale one changes nothing, and only the published ones emit events.
async fn a_batch_records_an_account_twice_in_order_and_refuses_a_number_taken_meanwhile(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let (a, b) = (app.open("a").await?, app.open("b").await?);
    let state = |balance, last| AccountState {
        balance,
        last_transaction_number: last,
    };
    let record = |tx: &Tx, before, balance_after, publish| -> anyhow::Result<Record> {
        Ok(Record {
            event: tx.event()?.data,
            verdict: Verdict::Applied { balance_after },
            state: before,
            publish,
        })
    };
    let (a1, a2, b1) = (
        Tx::deposit(a, 1, 10),
        Tx::deposit(a, 2, 5),
        Tx::deposit(b, 1, 7),
    );
    let stale = Tx::deposit(a, 1, 99);
    let traced = Publish::Outcome(TraceContext::new_root());
    let records = vec![
        record(&a1, state(0, 0), 10, traced)?,
        record(&b1, state(0, 0), 7, traced)?,
        record(&a2, state(10, 1), 15, Publish::Nothing)?,
        record(&stale, state(0, 0), 99, traced)?,
    ];
    let done = app.store.record_batch(&records).await?;
    assert_eq!(done, [true, true, true, false]);
    assert_eq!(app.balance(a).await?, (15, 2));
    assert_eq!(app.balance(b).await?, (7, 1));
    let ledger: Vec<_> = app
        .store
        .ledger(a, 0, 10)
        .await?
        .into_iter()
        .map(|e| (e.number, e.transaction_id, e.balance_after))
        .collect();
    assert_eq!(
        ledger,
        [(1, a1.id.to_string(), 10), (2, a2.id.to_string(), 15)]
    );
    let applied = || async { Ok(read_all::<TransactionApplied>(&app.js).await?.len()) };
    until_eq("the two published outcomes", BOUND, 2, applied).await?;
    let mut published: Vec<_> = read_all::<TransactionApplied>(&app.js)
        .await?
        .into_iter()
        .map(|(_, e)| (e.data.transaction_id, e.data.balance_after))
        .collect();
    published.sort();
    let mut expected = vec![(a1.id, 10), (b1.id, 7)];
    expected.sort();
    assert_eq!(published, expected);
    Ok(())
}

async fn the_next_number_is_applied_and_emits_transaction_applied(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.open("a").await?;
    let deposit = Tx::deposit(account, 1, 500);
    app.created(&deposit).await?;
    until_eq("the deposit applied", BOUND, (500, 1), || {
        app.balance(account)
    })
    .await?;
    let applied = || async { Ok(read_all::<TransactionApplied>(&app.js).await?.len()) };
    until_eq("one TransactionApplied", BOUND, 1, applied).await?;
    let event = &read_all::<TransactionApplied>(&app.js).await?[0].1;
    assert_eq!(event.data.transaction_id, deposit.id);
    assert_eq!(
        (event.data.number.get(), event.data.balance_after),
        (1, 500)
    );
    assert_eq!(event.correlation_id, Some(deposit.id.0));
    Ok(())
}

async fn a_duplicate_is_acked_and_changes_nothing(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.open("a").await?;
    let deposit = Tx::deposit(account, 1, 100);
    app.created(&deposit).await?;
    until_eq("the deposit applied", BOUND, (100, 1), || {
        app.balance(account)
    })
    .await?;
    app.created(&deposit).await?;
    until_eq("both deliveries acked", BOUND, 2, || {
        app.listener_count("acked")
    })
    .await?;
    assert_eq!(
        app.balance(account).await?,
        (100, 1),
        "the duplicate changed nothing"
    );
    let (_, ledger) = app.get(&format!("/api/accounts/{account}/ledger")).await?;
    assert_eq!(ledger["items"].as_array().map(Vec::len), Some(1));
    Ok(())
}

async fn a_gap_is_not_applied_until_its_predecessor_arrives(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.open("a").await?;
    app.created(&Tx::deposit(account, 2, 20)).await?;
    until_eq("the gap handed back twice", BOUND, true, || async {
        Ok(app.listener_count("retried").await? >= 2)
    })
    .await?;
    assert_eq!(
        app.balance(account).await?,
        (0, 0),
        "number 2 waits for number 1"
    );
    app.created(&Tx::withdrawal(account, 1, 5)).await?;
    // 1 (withdraw 5 from 0) is rejected, then 2 (deposit 20) applies: order by number, not arrival.
    until_eq("both consumed", BOUND, (20, 2), || app.balance(account)).await?;
    let (_, ledger) = app.get(&format!("/api/accounts/{account}/ledger")).await?;
    let outcomes: Vec<&str> = ledger["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["rejected", "applied"]);
    Ok(())
}

async fn insufficient_funds_is_rejected_and_still_consumes_the_number(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.open("a").await?;
    let withdrawal = Tx::withdrawal(account, 1, 50);
    app.created(&withdrawal).await?;
    until_eq("number 1 consumed", BOUND, (0, 1), || app.balance(account)).await?;
    let rejected = || async { Ok(read_all::<TransactionRejected>(&app.js).await?.len()) };
    until_eq("one TransactionRejected", BOUND, 1, rejected).await?;
    let event = &read_all::<TransactionRejected>(&app.js).await?[0].1.data;
    assert_eq!(event.transaction_id, withdrawal.id);
    assert!(
        event.reason.contains("insufficient funds"),
        "{}",
        event.reason
    );
    app.created(&Tx::deposit(account, 2, 70)).await?;
    until_eq("number 2 applied", BOUND, (70, 2), || app.balance(account)).await
}

async fn poison_messages_are_terminated_and_dead_lettered_and_the_listener_goes_on(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.open("a").await?;
    app.js
        .publish("transactions.created", "not an event".into())
        .await?
        .await?;
    // A negative amount, and numbers outside 1 to 2^63 - 1: none of them decodes.
    for (number, amount) in [("1", "-5"), ("0", "5"), ("18446744073709551615", "5")] {
        let payload = format!(
            r#"{{"id":"{}","type":"TransactionCreated","schema_version":1,"occurred_at":"2025-01-01T00:00:00Z","correlation_id":null,"data":{{"transaction_id":"{}","account_id":"{account}","number":{number},"kind":"deposit","amount":{amount}}}}}"#,
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4()
        );
        app.js
            .publish("transactions.created", payload.into())
            .await?
            .await?;
    }
    app.created(&Tx::deposit(account, 1, 5)).await?;
    until_eq("the valid deposit applied", BOUND, (5, 1), || {
        app.balance(account)
    })
    .await?;
    until_eq("four dead letters", BOUND, 4, || async {
        Ok(app.store.dead_letter_count().await?)
    })
    .await?;
    until_eq("four undecodable", BOUND, 4, || {
        app.listener_count("undecodable")
    })
    .await
}
