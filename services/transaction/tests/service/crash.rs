//! Outbox crash safety with the real binary: state committed, process killed before the
//! publish, restart publishes once; and killed after the publish but before the row is marked
//! sent, restart re-publishes and the stream drops the duplicate.

use std::path::Path;
use std::time::Duration;

use common_events::inspect::read_all;
use common_events::{AccountId, TransactionCreated};
use serde_json::json;
use test_support::process::ServiceProcess;
use test_support::scenario;
use test_support::wait::until_eq;
use test_support::{eventually, Scenario, Target};

use crate::support::{ground, publish_account_opened, Ground, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(a_crash_between_commit_and_publish_loses_nothing_and_the_restart_publishes_once),
    scenario!(a_crash_between_publish_and_marking_sent_republishes_and_the_stream_deduplicates),
    scenario!(sigterm_stops_the_service_promptly_even_when_the_broker_is_gone),
];

fn start(ground: &Ground, extra: &[(&str, &str)]) -> anyhow::Result<ServiceProcess> {
    let mut env = vec![
        ("NATS_URL", ground.broker.url()),
        ("DATABASE_URL", ground.database_url.clone()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    ServiceProcess::start(Path::new(env!("CARGO_BIN_EXE_transaction-service")), &env)
}

/// Opens an account and creates one deposit through `service`; returns the transaction id.
async fn create_one(ground: &Ground, service: &ServiceProcess) -> anyhow::Result<AccountId> {
    deposit_for_a_new_account(ground, service, false).await
}

/// Opens an account and POSTs one deposit to it; returns the account. With `abort_expected`,
/// an error is taken as the service's deliberate abort, which may come before it writes the
/// response: the transaction it aborts after is the one this request created (the service
/// publishes only what a request created, and nothing else is posted to it).
async fn deposit_for_a_new_account(
    ground: &Ground,
    service: &ServiceProcess,
    abort_expected: bool,
) -> anyhow::Result<AccountId> {
    let client = async_nats::connect(ground.broker.url()).await?;
    let js = async_nats::jetstream::new(client);
    let account = AccountId::new();
    publish_account_opened(&js, account).await?;
    let http = reqwest::Client::new();
    let body = json!({"account_id": account.to_string(), "kind": "deposit", "amount": 5});
    let url = format!("{}/api/transactions", service.url());
    eventually("the transaction to be created", BOUND, || async {
        match http.post(&url).json(&body).send().await {
            Ok(response) => Ok((response.status().as_u16() == 201).then_some(())),
            Err(_) if abort_expected => Ok(Some(())),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    Ok(account)
}

/// Rows left in the service's outbox.
async fn outbox_rows(ground: &Ground) -> anyhow::Result<i64> {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&ground.database_url).await?;
    let rows = sqlx::query_scalar("select count(*) from outbox")
        .fetch_one(&mut conn)
        .await?;
    Ok(rows)
}

/// TransactionCreated events in the stream for `account`.
async fn published(ground: &Ground, account: &AccountId) -> anyhow::Result<usize> {
    let client = async_nats::connect(ground.broker.url()).await?;
    let js = async_nats::jetstream::new(client);
    let events = read_all::<TransactionCreated>(&js).await?;
    Ok(events
        .iter()
        .filter(|(_, e)| e.data.account_id == *account)
        .count())
}

async fn a_crash_between_commit_and_publish_loses_nothing_and_the_restart_publishes_once(
    t: Target,
) -> anyhow::Result<()> {
    let ground = ground(&t).await?;
    let mut service = start(&ground, &[("OUTBOX_RELAY", "false")])?;
    let id = create_one(&ground, &service).await?;
    service.kill();
    assert_eq!(
        published(&ground, &id).await?,
        0,
        "nothing was published before the crash"
    );
    let _restarted = start(&ground, &[])?;
    until_eq("exactly one TransactionCreated", BOUND, 1, || {
        published(&ground, &id)
    })
    .await?;
    // The relay deletes a row once its publish is acknowledged; with the outbox empty, no later
    // round has anything to publish again.
    until_eq("an empty outbox", BOUND, 0, || outbox_rows(&ground)).await?;
    assert_eq!(published(&ground, &id).await?, 1);
    Ok(())
}

async fn a_crash_between_publish_and_marking_sent_republishes_and_the_stream_deduplicates(
    t: Target,
) -> anyhow::Result<()> {
    let ground = ground(&t).await?;
    let mut service = start(&ground, &[("OUTBOX_CRASH_AFTER_PUBLISH", "true")])?;
    let id = deposit_for_a_new_account(&ground, &service, true).await?;
    let status = service.wait_exit(BOUND)?;
    assert!(!status.success(), "the fault injection aborts the process");
    assert_eq!(
        published(&ground, &id).await?,
        1,
        "published before the crash"
    );
    let restarted = start(&ground, &[])?;
    let http = reqwest::Client::new();
    let metrics = format!("{}/metrics", restarted.url());
    until_eq(
        "the re-publish to be acknowledged as a duplicate",
        BOUND,
        true,
        || async {
            let text = http.get(&metrics).send().await?.text().await?;
            Ok(text.contains("outbox_duplicates_total 1"))
        },
    )
    .await?;
    assert_eq!(
        published(&ground, &id).await?,
        1,
        "the stream kept one copy"
    );
    Ok(())
}

async fn sigterm_stops_the_service_promptly_even_when_the_broker_is_gone(
    t: Target,
) -> anyhow::Result<()> {
    let mut ground = ground(&t).await?;
    let mut service = start(&ground, &[])?;
    create_one(&ground, &service).await?;
    ground.broker.process().kill()?;
    // Bounded by the listeners' drain (10 s at most) plus the flush timeout (2 s); with nothing
    // in flight it takes about the flush timeout.
    let status = service.terminate(Duration::from_secs(20))?;
    assert!(status.success(), "a graceful stop exits 0, got {status}");
    Ok(())
}
