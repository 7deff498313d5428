//! The whole stack with two account-service replicas under a concurrent mixed load, with a
//! replica stopped and replaced mid-load and duplicates injected afterwards, on every broker ×
//! database target. Asserts every invariant of the ordering protocol (docs/ordering.md).

use std::time::Duration;

use anyhow::Context;
use common_events::inspect::read_all;
use common_events::{
    Envelope, Publisher, TransactionApplied, TransactionCreated, TransactionRejected,
};
use e2e_tests::client::Client;
use e2e_tests::invariants::{self, AccountView};
use e2e_tests::load::{self, LoadOptions};
use e2e_tests::stack::{start_account, Stack};
use test_support::matrix::{self, Axes};
use test_support::wait::until_eq;
use test_support::{scenario, Target};

const SETTLE: Duration = Duration::from_secs(90);

fn main() {
    matrix::run(
        &[scenario!(
            two_replicas_under_a_concurrent_mixed_load_keep_every_invariant
        )],
        Axes::BrokersAndDatabases,
    );
}

async fn two_replicas_under_a_concurrent_mixed_load_keep_every_invariant(
    t: Target,
) -> anyhow::Result<()> {
    let mut stack = Stack::start(&t, 2).await?;
    let accounts = load::open_accounts(&stack.client, 25).await?;
    let chaos = replace_a_replica_mid_load(&mut stack)?;
    let options = LoadOptions {
        transactions: 800,
        concurrency: 32,
        settle_timeout: SETTLE,
    };
    let report = load::run(&stack.client, &stack.nats, &accounts, &options).await?;
    eprintln!("{}: {}", t.broker, report.summary());
    chaos.await.context("the chaos task panicked")??;
    let views = invariants::settled(&stack.client, &accounts, SETTLE).await?;
    invariants::check(&views)?;
    each_outcome_is_published_exactly_once(&stack, &views).await?;
    replayed_duplicates_change_nothing(&stack, &accounts, &views).await?;
    a_rebuild_equals_the_live_state(&stack, &accounts, &views).await
}

/// Stops the second replica gracefully a moment into the load and starts a replacement on the
/// same database. (The delay is the fault schedule, not a wait for a condition.)
fn replace_a_replica_mid_load(
    stack: &mut Stack,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let second = stack.replicas.pop().context("two replicas")?;
    let (nats, database) = (stack.broker.url(), stack.account_database.clone());
    Ok(tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        second.stop().await?;
        let replacement = start_account(&nats, &database, false).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        replacement.stop().await
    }))
}

async fn each_outcome_is_published_exactly_once(
    stack: &Stack,
    views: &[AccountView],
) -> anyhow::Result<()> {
    let js = async_nats::jetstream::new(stack.nats.clone());
    let total: usize = views.iter().map(|v| v.transactions.len()).sum();
    let applied = read_all::<TransactionApplied>(&js).await?;
    let rejected = read_all::<TransactionRejected>(&js).await?;
    let mut ids: Vec<String> = applied
        .iter()
        .map(|(_, e)| e.data.transaction_id.to_string())
        .collect();
    ids.extend(
        rejected
            .iter()
            .map(|(_, e)| e.data.transaction_id.to_string()),
    );
    ids.sort();
    ids.dedup();
    assert_eq!(
        applied.len() + rejected.len(),
        total,
        "one outcome event per transaction"
    );
    assert_eq!(ids.len(), total, "no transaction has two outcome events");
    Ok(())
}

/// Publishes 100 stored `TransactionCreated` events again under new event ids (as a redelivery
/// storm would deliver them) and checks nothing changes.
async fn replayed_duplicates_change_nothing(
    stack: &Stack,
    accounts: &[String],
    before: &[AccountView],
) -> anyhow::Result<()> {
    let js = async_nats::jetstream::new(stack.nats.clone());
    let created = read_all::<TransactionCreated>(&js).await?;
    let publisher = Publisher::new(js.clone());
    for (_, event) in created.iter().take(100) {
        publisher
            .publish(&Envelope::new(event.data.clone()), None)
            .await?;
    }
    let consumer_idle = || async {
        let stream = js.get_stream("TRANSACTIONS").await?;
        let consumer: async_nats::jetstream::consumer::PullConsumer = stream
            .get_consumer("account-service")
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        let info = consumer.get_info().await?;
        Ok((info.num_pending, info.num_ack_pending))
    };
    until_eq("the duplicates to be acked", SETTLE, (0, 0), consumer_idle).await?;
    let after = invariants::read(&stack.client, accounts).await?;
    assert!(after == before, "duplicates changed the state");
    Ok(())
}

async fn a_rebuild_equals_the_live_state(
    stack: &Stack,
    accounts: &[String],
    live: &[AccountView],
) -> anyhow::Result<()> {
    let target_db = if stack.account_database.starts_with("sqlite") {
        format!(
            "sqlite://{}?mode=rwc",
            stack.dir.path().join("rebuilt.db").display()
        )
    } else {
        test_support::postgres::fresh_database().await?
    };
    let rebuilt = start_account(&stack.broker.url(), &target_db, true).await?;
    let client = Client::new(&rebuilt.url, &stack.client.transaction_url)?;
    let again = invariants::read(&client, accounts).await?;
    for (live, again) in live.iter().zip(&again) {
        assert_eq!(live.account, again.account, "rebuilt account differs");
        assert_eq!(
            live.ledger, again.ledger,
            "rebuilt ledger of {} differs",
            live.account.id
        );
    }
    rebuilt.stop().await
}
