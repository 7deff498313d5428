//! The `TransactionCreated` listener: duplicate, next, gap and poison, and insufficient funds.

use common_events::inspect::read_all;
use common_events::{TransactionApplied, TransactionRejected};
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
];

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
