//! Start-up and stop: a service started before its broker waits for it (serving `/healthz` and
//! a 503 `/readyz` meanwhile) and becomes ready when it comes; a busy HTTP port and a passed
//! `CONNECT_DEADLINE` fail clearly; SIGTERM stops it promptly whether it is starting or serving.

use std::path::Path;
use std::time::{Duration, Instant};

use common_events::AccountId;
use serde_json::json;
use test_support::process::ServiceProcess;
use test_support::scenario;
use test_support::startup::{self, api_says_starting, run_to_exit, stays_starting, Binary};
use test_support::{unused_port, Scenario, Target};

use crate::support::{publish_account_opened, spawn_service, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(a_service_started_before_the_broker_waits_and_becomes_ready_when_the_broker_comes_up),
    scenario!(a_busy_http_port_fails_at_once_naming_the_setting),
    scenario!(with_a_connect_deadline_and_no_broker_the_binary_exits_with_an_error),
    scenario!(sigterm_while_waiting_for_the_broker_stops_at_once),
    scenario!(sigterm_with_nothing_in_flight_exits_well_under_two_seconds),
    scenario!(with_a_broker_login_the_service_becomes_ready_and_a_wrong_password_stops_it),
];

/// How long a service may take to become ready once the broker is there (the backoff between
/// attempts reaches 5 s).
const READY_AFTER: Duration = Duration::from_secs(60);

const BINARY: &str = env!("CARGO_BIN_EXE_transaction-service");

async fn a_service_started_before_the_broker_waits_and_becomes_ready_when_the_broker_comes_up(
    t: Target,
) -> anyhow::Result<()> {
    let port = unused_port()?;
    let nats_url = format!("nats://127.0.0.1:{port}");
    let dir = tempfile::tempdir()?;
    let database_url = t.database().fresh_url(dir.path(), "transaction").await?;
    let service = spawn_service(&nats_url, &database_url, &[]).await?;
    stays_starting(&service, "broker", "database", Duration::from_millis(1500)).await?;
    api_says_starting(&service, "/api/transactions").await?;

    let broker = t.broker.start_on(port, &dir.path().join("jetstream"))?;
    let came = Instant::now();
    service.wait_ready(READY_AFTER).await?;
    eprintln!("ready {:?} after the broker came up", came.elapsed());
    // The listeners run: an AccountOpened published now makes the account known.
    let js = async_nats::jetstream::new(async_nats::connect(broker.url()).await?);
    let account = AccountId::new();
    publish_account_opened(&js, account).await?;
    let body = json!({"account_id": account.to_string(), "kind": "deposit", "amount": 5});
    let created = test_support::eventually("a transaction on the new account", BOUND, || async {
        let (status, created) = service.post("/api/transactions", &body, &[]).await?;
        Ok((status == 201).then_some(created))
    })
    .await?;
    assert_eq!(created["number"], 1);
    service.stop().await
}

/// A broker with authentication: `NATS_USER` and `NATS_PASSWORD` get the service in; a wrong
/// password is final (no retries), and the error says which settings to check.
async fn with_a_broker_login_the_service_becomes_ready_and_a_wrong_password_stops_it(
    t: Target,
) -> anyhow::Result<()> {
    let config = "authorization { users = [ { user: transaction, password: right-one } ] }\n";
    let broker = t.broker.start_with_config(config)?;
    let dir = tempfile::tempdir()?;
    let database = format!("sqlite://{}?mode=rwc", dir.path().join("tx.db").display());
    let login = |password: &str| {
        [
            ("NATS_URL", broker.url()),
            ("DATABASE_URL", database.clone()),
            ("NATS_USER", "transaction".to_owned()),
            ("NATS_PASSWORD", password.to_owned()),
        ]
    };
    let mut service = ServiceProcess::start(Path::new(BINARY), &login("right-one"))?;
    service.wait_ready(READY_AFTER).await?;
    service.terminate(Duration::from_secs(5))?;

    let env = login("wrong");
    let exit = tokio::task::spawn_blocking(move || {
        run_to_exit(Path::new(BINARY), &env, Duration::from_secs(15))
    })
    .await??;
    assert!(!exit.status.success(), "exited with {}", exit.status);
    assert!(
        exit.stderr.contains("the broker refused the login")
            && exit.stderr.contains("NATS_USER and NATS_PASSWORD"),
        "stderr: {}",
        exit.stderr
    );
    assert!(
        !exit.stderr.contains("wrong"),
        "the password leaked: {}",
        exit.stderr
    );
    assert!(
        exit.elapsed < Duration::from_secs(5),
        "took {:?}",
        exit.elapsed
    );
    Ok(())
}

const SERVICE: Binary = Binary {
    path: BINARY,
    name: "transaction",
};

async fn a_busy_http_port_fails_at_once_naming_the_setting(_: Target) -> anyhow::Result<()> {
    startup::a_busy_http_port_fails_at_once(|args| async move {
        let config = <transaction::Config as clap::Parser>::try_parse_from(args)?;
        transaction::run(config, std::future::pending()).await
    })
    .await
}

async fn with_a_connect_deadline_and_no_broker_the_binary_exits_with_an_error(
    _: Target,
) -> anyhow::Result<()> {
    startup::gives_up_at_its_connect_deadline(SERVICE).await
}

async fn sigterm_while_waiting_for_the_broker_stops_at_once(_: Target) -> anyhow::Result<()> {
    startup::sigterm_while_waiting_for_the_broker_stops_at_once(SERVICE).await
}

async fn sigterm_with_nothing_in_flight_exits_well_under_two_seconds(
    t: Target,
) -> anyhow::Result<()> {
    startup::sigterm_with_nothing_in_flight_stops_quickly(&t, SERVICE).await
}
