//! An account service in-process on port 0, with its own broker and database, and helpers that
//! play the transaction service's part by publishing `TransactionCreated`.

use std::time::Duration;

use account::store::Store;
use account::{Application, Config};
use async_nats::jetstream;
use clap::Parser;
use common_events::{
    AccountId, Amount, Envelope, Publisher, TransactionCreated, TransactionId, TransactionKind,
    TransactionNumber,
};
use serde_json::{json, Value};
use tempfile::TempDir;
use test_support::{InProcess, StartedBroker, Target};

/// How long waits for asynchronous effects may take.
pub const BOUND: Duration = Duration::from_secs(15);
/// How long a service may take to become ready: generous, to catch a hang on a loaded CI
/// machine rather than to time a start.
pub const START_BOUND: Duration = Duration::from_secs(60);

/// A running service and what it runs on.
pub struct TestApp {
    pub service: InProcess,
    pub js: jetstream::Context,
    pub store: Store,
    /// The service's database, for more replicas on it.
    pub database_url: String,
    /// Declared last so it drops last: broker and files outlive the service.
    pub broker: StartedBroker,
    pub dir: TempDir,
}

/// Starts a broker, a database and a service for `target`, and waits until it is ready.
pub async fn spawn_app(target: &Target) -> anyhow::Result<TestApp> {
    spawn_app_with(target, &[]).await
}

/// [`spawn_app`] with more flags for the service.
pub async fn spawn_app_with(target: &Target, flags: &[&str]) -> anyhow::Result<TestApp> {
    let broker = target.broker.start()?;
    let dir = tempfile::tempdir()?;
    let database_url = target.database().fresh_url(dir.path(), "account").await?;
    let (service, store) = start_with(&broker.url(), &database_url, flags).await?;
    let client = async_nats::connect(broker.url()).await?;
    Ok(TestApp {
        service,
        js: jetstream::new(client),
        store,
        database_url,
        broker,
        dir,
    })
}

/// Starts one more service on `nats_url` and `database_url`, rebuilding first if asked, and
/// waits until it is ready.
pub async fn start(
    nats_url: &str,
    database_url: &str,
    rebuild: bool,
) -> anyhow::Result<(InProcess, Store)> {
    let flags: &[&str] = if rebuild { &["--rebuild"] } else { &[] };
    start_with(nats_url, database_url, flags).await
}

/// Starts a service on `nats_url` and `database_url` with more `flags`, and waits until it is
/// ready (`/readyz` 200).
pub async fn start_with(
    nats_url: &str,
    database_url: &str,
    flags: &[&str],
) -> anyhow::Result<(InProcess, Store)> {
    let service = spawn_service(nats_url, database_url, flags).await?;
    service.0.wait_ready(START_BOUND).await?;
    let store = service.1.await?;
    Ok((service.0, store))
}

/// Starts a service on `nats_url` and `database_url` with more `flags`, without waiting for
/// it to connect; the store resolves once it has its database.
pub async fn spawn_service(
    nats_url: &str,
    database_url: &str,
    flags: &[&str],
) -> anyhow::Result<(
    InProcess,
    impl std::future::Future<Output = anyhow::Result<Store>>,
)> {
    let mut args = vec![
        "account-service".to_owned(),
        format!("--nats-url={nats_url}"),
        format!("--database-url={database_url}"),
        "--http-addr=127.0.0.1:0".to_owned(),
    ];
    args.extend(flags.iter().map(|flag| (*flag).to_owned()));
    let app = Application::build(Config::parse_from(args)).await?;
    let store = app.store();
    let service = InProcess::spawn(app.local_addr(), |stop| app.run_until(stop));
    Ok((service, store))
}

impl TestApp {
    /// Starts another replica of the service on the same broker and database, with `flags`, and
    /// waits until it is ready.
    pub async fn replica(&self, flags: &[&str]) -> anyhow::Result<(InProcess, Store)> {
        start_with(&self.broker.url(), &self.database_url, flags).await
    }

    /// Opens an account through the API.
    pub async fn open(&self, owner: &str) -> anyhow::Result<AccountId> {
        let (status, body) = self
            .service
            .post("/api/accounts", &json!({"owner": owner}), &[])
            .await?;
        anyhow::ensure!(status == 201, "expected 201, got {status}: {body}");
        Ok(body["id"].as_str().unwrap_or_default().parse()?)
    }

    /// `(balance, last_transaction_number)` of an account, read through the API.
    pub async fn balance(&self, id: AccountId) -> anyhow::Result<(i64, i64)> {
        let (status, body) = self.service.get(&format!("/api/accounts/{id}")).await?;
        anyhow::ensure!(status == 200, "expected 200, got {status}: {body}");
        let field = |name: &str| body[name].as_i64().unwrap_or(-1);
        Ok((field("balance"), field("last_transaction_number")))
    }

    /// Publishes `TransactionCreated` (a new event id each time, so a repeat is not dropped by
    /// the stream's deduplication but reaches the listener).
    pub async fn created(&self, tx: &Tx) -> anyhow::Result<()> {
        Publisher::new(self.js.clone())
            .publish(&tx.event()?, None)
            .await?;
        Ok(())
    }

    /// A counter of the listener from `/metrics`.
    pub async fn listener_count(&self, outcome: &str) -> anyhow::Result<u64> {
        let (_, text) = self.service.get("/metrics").await?;
        let needle = format!("listener=\"transactions-created\",outcome=\"{outcome}\"}} ");
        let text = text.as_str().unwrap_or_default();
        let line = text
            .lines()
            .find_map(|line| line.split_once(&needle).map(|(_, n)| n));
        Ok(line.and_then(|n| n.trim().parse().ok()).unwrap_or(0))
    }

    /// `GET <path>`.
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        self.service.get(path).await
    }
}

/// A transaction as the transaction service would publish it.
#[derive(Clone, Debug)]
pub struct Tx {
    pub id: TransactionId,
    pub account: AccountId,
    pub number: u64,
    pub kind: TransactionKind,
    pub amount: i64,
}

impl Tx {
    /// Its `TransactionCreated`, in a new envelope (a new event id each time).
    pub fn event(&self) -> anyhow::Result<Envelope<TransactionCreated>> {
        Ok(Envelope::new(TransactionCreated {
            transaction_id: self.id,
            account_id: self.account,
            number: TransactionNumber::new(self.number)?,
            kind: self.kind,
            amount: Amount::new(self.amount)?,
        }))
    }

    /// A deposit with a new id.
    pub fn deposit(account: AccountId, number: u64, amount: i64) -> Self {
        Self {
            id: TransactionId::new(),
            account,
            number,
            kind: TransactionKind::Deposit,
            amount,
        }
    }

    /// A withdrawal with a new id.
    pub fn withdrawal(account: AccountId, number: u64, amount: i64) -> Self {
        Self {
            kind: TransactionKind::Withdrawal,
            ..Self::deposit(account, number, amount)
        }
    }
}

impl TestApp {
    /// A metric without labels from `/metrics` (0 when absent).
    pub async fn metric(&self, name: &str) -> anyhow::Result<i64> {
        let (_, text) = self.service.get("/metrics").await?;
        let text = text.as_str().unwrap_or_default();
        let value = text.lines().find_map(|line| {
            let (metric, value) = line.split_once(' ')?;
            (metric == name).then(|| value.trim().parse().ok())?
        });
        Ok(value.unwrap_or(0))
    }

    /// Publishes every transaction of `txs`, awaiting the acks together.
    pub async fn created_all(&self, txs: &[Tx]) -> anyhow::Result<()> {
        let publisher = Publisher::new(self.js.clone());
        for chunk in txs.chunks(256) {
            let sends = chunk.iter().map(|tx| {
                let publisher = publisher.clone();
                async move {
                    publisher.publish(&tx.event()?, None).await?;
                    anyhow::Ok(())
                }
            });
            for sent in futures_util::future::join_all(sends).await {
                sent?;
            }
        }
        Ok(())
    }
}
