//! What the service publishes and how it follows the account service's outcomes.

use common_events::inspect::read_all;
use common_events::{
    Amount, Envelope, Publisher, TransactionApplied, TransactionCreated, TransactionId,
    TransactionKind, TransactionNumber, TransactionRejected,
};
use test_support::scenario;
use test_support::wait::until_eq;
use test_support::{Scenario, Target};

use crate::support::{spawn_app, start_on, TestApp, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(each_transaction_is_published_once_as_transaction_created),
    scenario!(applied_and_rejected_events_settle_the_status),
    scenario!(a_graceful_stop_drains_and_a_restart_continues_the_numbering),
];

pub async fn created_events(app: &TestApp) -> anyhow::Result<Vec<TransactionCreated>> {
    Ok(read_all::<TransactionCreated>(&app.js)
        .await?
        .into_iter()
        .map(|(_, e)| e.data)
        .collect())
}

async fn each_transaction_is_published_once_as_transaction_created(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.known_account().await?;
    let first = app.create(account, "deposit", 40).await?;
    app.create(account, "withdrawal", 15).await?;
    until_eq("two TransactionCreated", BOUND, 2, || async {
        Ok(created_events(&app).await?.len())
    })
    .await?;
    let events = created_events(&app).await?;
    let one = events
        .iter()
        .find(|e| e.number == TransactionNumber::FIRST)
        .expect("number 1 published");
    assert_eq!(
        one.transaction_id.to_string(),
        first["id"].as_str().unwrap_or_default()
    );
    assert_eq!(one.account_id, account);
    assert_eq!((one.kind, one.amount.get()), (TransactionKind::Deposit, 40));
    let outbox = || async {
        let rows: i64 = sqlx::query_scalar("select count(*) from outbox")
            .fetch_one(app.db.pool())
            .await?;
        Ok(rows)
    };
    until_eq("published rows to leave the outbox", BOUND, 0, outbox).await
}

fn id_and_number(
    created: &serde_json::Value,
) -> anyhow::Result<(TransactionId, TransactionNumber)> {
    let id = created["id"].as_str().unwrap_or_default().parse()?;
    let number = TransactionNumber::new(created["number"].as_u64().unwrap_or_default())?;
    Ok((id, number))
}

async fn applied_and_rejected_events_settle_the_status(t: Target) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.known_account().await?;
    let (applied_id, n1) = id_and_number(&app.create(account, "deposit", 10).await?)?;
    let (rejected_id, n2) = id_and_number(&app.create(account, "withdrawal", 99).await?)?;
    let publisher = Publisher::new(app.js.clone());
    let amount = Amount::new(10)?;
    let applied = TransactionApplied {
        transaction_id: applied_id,
        account_id: account,
        number: n1,
        kind: TransactionKind::Deposit,
        amount,
        balance_after: 10,
    };
    publisher.publish(&Envelope::new(applied), None).await?;
    let rejected = TransactionRejected {
        transaction_id: rejected_id,
        account_id: account,
        number: n2,
        kind: TransactionKind::Withdrawal,
        amount: Amount::new(99)?,
        reason: "insufficient funds: balance 10, withdrawal 99".into(),
    };
    publisher.publish(&Envelope::new(rejected), None).await?;
    let status = |id: TransactionId| {
        let app = &app;
        async move { Ok(app.get(&format!("/api/transactions/{id}")).await?.1["status"].clone()) }
    };
    until_eq("status applied", BOUND, "applied".into(), || {
        status(applied_id)
    })
    .await?;
    until_eq("status rejected", BOUND, "rejected".into(), || {
        status(rejected_id)
    })
    .await?;
    let (_, read) = app.get(&format!("/api/transactions/{rejected_id}")).await?;
    assert!(read["reason"]
        .as_str()
        .is_some_and(|r| r.contains("insufficient funds")));
    Ok(())
}

async fn a_graceful_stop_drains_and_a_restart_continues_the_numbering(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.known_account().await?;
    app.create(account, "deposit", 1).await?;
    let ground = app.stop().await?;
    let app = start_on(ground).await?;
    let next = app.create(account, "deposit", 1).await?;
    assert_eq!(next["number"], 2);
    until_eq("two TransactionCreated", BOUND, 2, || async {
        Ok(created_events(&app).await?.len())
    })
    .await
}
