//! The listener-only example of `docs/new-service.md` (`examples/listener_only`) works: run
//! in-process, it projects `AccountOpened` into its own table, once however often delivered.

use common_events::{AccountId, AccountOpened, Envelope, Publisher};
use service_kit::db::Db;
use test_support::scenario;
use test_support::wait::until_eq;
use test_support::{InProcess, Scenario, Target};

use crate::listener_only;
use crate::support::{BOUND, START_BOUND};

pub const SCENARIOS: &[Scenario] = &[scenario!(the_listener_only_example_keeps_each_owner_once)];

async fn the_listener_only_example_keeps_each_owner_once(t: Target) -> anyhow::Result<()> {
    use clap::Parser;
    let broker = t.broker.start()?;
    let dir = tempfile::tempdir()?;
    let url = t.database().fresh_url(dir.path(), "owners").await?;
    let config = listener_only::Config::parse_from([
        "owners-service".to_owned(),
        format!("--nats-url={}", broker.url()),
        format!("--database-url={url}"),
        "--http-addr=127.0.0.1:0".to_owned(),
    ]);
    let app = listener_only::bind(&config).await?;
    let service = InProcess::spawn(app.local_addr(), |stop| listener_only::run(app, stop));
    service.wait_ready(START_BOUND).await?;
    let publisher = Publisher::new(test_support::jetstream::connect(&broker.url()).await?);
    let (alice, bob) = (AccountId::new(), AccountId::new());
    for (account_id, owner) in [(alice, "alice"), (bob, "bob"), (alice, "alice")] {
        let owner = owner.to_owned();
        let event = Envelope::new(AccountOpened { account_id, owner });
        publisher.publish(&event, None).await?;
    }
    let acked = "listener_messages_total{listener=\"owners\",outcome=\"acked\"} 3";
    until_eq("three deliveries acked", BOUND, true, || async {
        let (_, metrics) = service.get("/metrics").await?;
        Ok(metrics.as_str().unwrap_or_default().contains(acked))
    })
    .await?;
    let db = Db::connect(&url, 1).await?;
    let owners: Vec<(String, String)> =
        sqlx::query_as("select account_id, owner from owner order by owner")
            .fetch_all(db.pool())
            .await?;
    let expected = [(alice, "alice"), (bob, "bob")].map(|(id, o)| (id.to_string(), o.to_owned()));
    assert_eq!(owners, expected);
    db.close().await;
    service.stop().await
}
