//! Start-up and stop: a service started before its broker or database waits for them (serving
//! `/healthz` and a 503 `/readyz` meanwhile) and becomes ready when they come; it follows the
//! broker going away and coming back; a busy HTTP port and a passed `CONNECT_DEADLINE` fail
//! clearly; SIGTERM stops it promptly whether it is starting or serving.

use std::time::{Duration, Instant};

use common_events::inspect::read_all;
use common_events::AccountOpened;
use test_support::scenario;
use test_support::startup::{self, api_says_starting, stays_starting, Binary};
use test_support::wait::until_eq;
use test_support::{eventually, unused_port, DatabaseTarget, Scenario, Target};
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};

use crate::support::{spawn_service, Tx, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(a_service_started_before_the_broker_waits_and_becomes_ready_when_the_broker_comes_up),
    scenario!(readiness_follows_the_broker_going_away_and_coming_back),
    scenario!(a_service_started_before_its_database_waits_and_becomes_ready_when_it_comes_up),
    scenario!(a_busy_http_port_fails_at_once_naming_the_setting),
    scenario!(with_a_connect_deadline_and_no_broker_the_binary_exits_with_an_error),
    scenario!(sigterm_while_waiting_for_the_broker_stops_at_once),
    scenario!(sigterm_with_nothing_in_flight_exits_well_under_two_seconds),
];

/// How long a service may take to become ready once what it waits for is there: the backoff
/// between attempts reaches 5 s, the broker client's own reconnect delay a few seconds.
const READY_AFTER: Duration = Duration::from_secs(60);

const BINARY: &str = env!("CARGO_BIN_EXE_account-service");

async fn a_service_started_before_the_broker_waits_and_becomes_ready_when_the_broker_comes_up(
    t: Target,
) -> anyhow::Result<()> {
    let port = unused_port()?;
    let nats_url = format!("nats://127.0.0.1:{port}");
    let dir = tempfile::tempdir()?;
    let database_url = t.database().fresh_url(dir.path(), "account").await?;
    let (service, store) = spawn_service(&nats_url, &database_url, &[]).await?;
    stays_starting(&service, "broker", "database", Duration::from_millis(1500)).await?;
    api_says_starting(&service, "/api/accounts").await?;

    let broker = t.broker.start_on(port, &dir.path().join("jetstream"))?;
    let came = Instant::now();
    service.wait_ready(READY_AFTER).await?;
    eprintln!("ready {:?} after the broker came up", came.elapsed());
    let (status, body) = service
        .post("/api/accounts", &serde_json::json!({"owner": "late"}), &[])
        .await?;
    anyhow::ensure!(status == 201, "opening an account: {status} {body}");
    // The relay runs: the outbox row reaches the stream.
    let js = async_nats::jetstream::new(async_nats::connect(broker.url()).await?);
    let opened = || async { Ok(read_all::<AccountOpened>(&js).await?.len()) };
    until_eq("the AccountOpened published", BOUND, 1, opened).await?;
    assert_eq!(store.await?.account_count().await?, 1);
    service.stop().await
}

async fn readiness_follows_the_broker_going_away_and_coming_back(t: Target) -> anyhow::Result<()> {
    let port = unused_port()?;
    let dir = tempfile::tempdir()?;
    let jetstream = dir.path().join("jetstream");
    let mut broker = t.broker.start_on(port, &jetstream)?;
    let database_url = t.database().fresh_url(dir.path(), "account").await?;
    let (service, _) = spawn_service(&broker.url(), &database_url, &[]).await?;
    service.wait_ready(BOUND).await?;
    let app = Opened::new(&service).await?;

    broker.kill();
    eventually("/readyz to say the broker is gone", BOUND, || async {
        let (status, body) = service.get("/readyz").await?;
        Ok((status == 503 && body["broker"] == false && body["database"] == true).then_some(()))
    })
    .await?;
    assert_eq!(service.get("/healthz").await?.0, 200);

    let broker = t.broker.start_on(port, &jetstream)?;
    let came = Instant::now();
    service.wait_ready(READY_AFTER).await?;
    eprintln!(
        "ready again {:?} after the broker came back",
        came.elapsed()
    );
    // The listener pulls again: a deposit published now is applied.
    let js = async_nats::jetstream::new(async_nats::connect(broker.url()).await?);
    app.deposit(&js, 1, 40).await?;
    until_eq(
        "the deposit applied after the reconnect",
        BOUND,
        (40, 1),
        || app.balance(&service),
    )
    .await?;
    service.stop().await
}

/// An account opened through a service, for checks after a reconnect.
struct Opened {
    id: common_events::AccountId,
}

impl Opened {
    async fn new(service: &test_support::InProcess) -> anyhow::Result<Self> {
        let (status, body) = service
            .post("/api/accounts", &serde_json::json!({"owner": "a"}), &[])
            .await?;
        anyhow::ensure!(status == 201, "{status} {body}");
        Ok(Self {
            id: body["id"].as_str().unwrap_or_default().parse()?,
        })
    }

    async fn deposit(
        &self,
        js: &async_nats::jetstream::Context,
        number: u64,
        amount: i64,
    ) -> anyhow::Result<()> {
        let tx = Tx::deposit(self.id, number, amount);
        let event = common_events::Envelope::new(common_events::TransactionCreated {
            transaction_id: tx.id,
            account_id: tx.account,
            number: common_events::TransactionNumber::new(tx.number)?,
            kind: tx.kind,
            amount: common_events::Amount::new(tx.amount)?,
        });
        common_events::Publisher::new(js.clone())
            .publish(&event, None)
            .await?;
        Ok(())
    }

    async fn balance(&self, service: &test_support::InProcess) -> anyhow::Result<(i64, i64)> {
        let (_, body) = service.get(&format!("/api/accounts/{}", self.id)).await?;
        let field = |name: &str| body[name].as_i64().unwrap_or(-1);
        Ok((field("balance"), field("last_transaction_number")))
    }
}

/// SQLite: the database file's directory appears late (a volume mounted after the process
/// started). PostgreSQL: the server's port accepts late (a proxy in front of the test server
/// starts late).
async fn a_service_started_before_its_database_waits_and_becomes_ready_when_it_comes_up(
    t: Target,
) -> anyhow::Result<()> {
    let broker = t.broker.start()?;
    let dir = tempfile::tempdir()?;
    let real_url = t.database().fresh_url(dir.path(), "account").await?;
    let later = dir.path().join("mounted-later");
    let (database_url, proxy_port) = match t.database() {
        DatabaseTarget::Sqlite => {
            let file = later.join("account.db");
            (format!("sqlite://{}?mode=rwc", file.display()), None)
        }
        DatabaseTarget::Postgres => {
            let port = unused_port()?;
            (on_loopback_port(&real_url, port)?, Some(port))
        }
    };
    let (service, _) = spawn_service(&broker.url(), &database_url, &[]).await?;
    stays_starting(&service, "database", "broker", Duration::from_millis(1500)).await?;
    api_says_starting(&service, "/api/accounts").await?;

    let _proxy = match proxy_port {
        Some(port) => Some(proxy(port, upstream(&real_url)?).await?),
        None => {
            std::fs::create_dir_all(&later)?;
            None
        }
    };
    let came = Instant::now();
    service.wait_ready(READY_AFTER).await?;
    eprintln!("ready {:?} after the database came up", came.elapsed());
    let (status, body) = service
        .post("/api/accounts", &serde_json::json!({"owner": "late"}), &[])
        .await?;
    anyhow::ensure!(status == 201, "opening an account: {status} {body}");
    service.stop().await
}

/// `url` pointed at `127.0.0.1:port`, where the test's proxy listens. The host changes too: the
/// real server may be on another address (testcontainers hands out the Docker bridge's gateway
/// when the tests run inside a container), and the proxy only listens on loopback.
fn on_loopback_port(url: &str, port: u16) -> anyhow::Result<String> {
    let address = upstream(url)?;
    Ok(url.replacen(&address, &format!("127.0.0.1:{port}"), 1))
}

/// `host:port` of a `postgres://user@host:port/db` URL.
fn upstream(url: &str) -> anyhow::Result<String> {
    let rest = url.split_once('@').map(|(_, rest)| rest);
    let address = rest.and_then(|rest| rest.split('/').next());
    address
        .filter(|a| a.contains(':'))
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no host:port in {url}"))
}

/// Forwards connections on `127.0.0.1:port` to `upstream` until dropped.
async fn proxy(
    port: u16,
    upstream: String,
) -> anyhow::Result<tokio_util::task::AbortOnDropHandle<()>> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let task = tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = TcpStream::connect(&upstream).await {
                    let _ = copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    Ok(tokio_util::task::AbortOnDropHandle::new(task))
}

const SERVICE: Binary = Binary {
    path: BINARY,
    name: "account",
};

async fn a_busy_http_port_fails_at_once_naming_the_setting(_: Target) -> anyhow::Result<()> {
    startup::a_busy_http_port_fails_at_once(|args| async move {
        let config = <account::Config as clap::Parser>::try_parse_from(args)?;
        account::run(config, std::future::pending()).await
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
