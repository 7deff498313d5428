//! The stack `load` starts when it is given no URLs: a broker with JetStream, one
//! transaction-service and some account-service processes sharing one database, each from the
//! binary beside `load`, with its default configuration.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::ValueEnum;
use e2e_tests::client::Client;
use test_support::process::ServiceProcess;
use test_support::{BrokerTarget, StartedBroker};

/// How long the services it starts may take to become ready.
const READY_BOUND: Duration = Duration::from_secs(60);

/// The broker to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Broker {
    /// The bundled broker beside this binary, in its durable default.
    Broker,
    /// The reference nats-server (found or installed as the tests do).
    NatsServer,
}

/// What to start.
pub struct StackOptions<'a> {
    pub broker: Broker,
    /// Account-service replicas.
    pub replicas: usize,
    /// A `postgres://…` server URL (without a database) to use instead of SQLite.
    pub postgres: Option<&'a str>,
}

/// What `load` started, kept alive until the end.
pub struct Spawned {
    /// A client of the services.
    pub client: Client,
    /// The broker's URL.
    pub nats_url: String,
    _services: Vec<ServiceProcess>,
    _broker: StartedBroker,
    _dir: tempfile::TempDir,
}

/// Starts the stack and waits until every service is ready.
pub async fn spawn(options: &StackOptions<'_>) -> anyhow::Result<Spawned> {
    let broker = match options.broker {
        Broker::NatsServer => BrokerTarget::reference(),
        Broker::Broker => BrokerTarget::bundled(sibling("broker")?),
    }
    .start()?;
    eprintln!("started {:?} at {}", options.broker, broker.url());
    let dir = tempfile::tempdir()?;
    let (account_db, transaction_db) = match options.postgres {
        Some(base) => (
            create_db(base, "account").await?,
            create_db(base, "transaction").await?,
        ),
        None => {
            let db = |name: &str| format!("sqlite://{}?mode=rwc", dir.path().join(name).display());
            (db("account.db"), db("transaction.db"))
        }
    };
    let env = |db: &str| {
        vec![
            ("NATS_URL", broker.url()),
            ("DATABASE_URL", db.to_owned()),
            ("RUST_LOG", "warn,service_kit::server=info".to_owned()),
        ]
    };
    let mut services = Vec::new();
    for _ in 0..options.replicas.max(1) {
        services.push(ServiceProcess::start(
            &sibling("account-service")?,
            &env(&account_db),
        )?);
    }
    let transaction =
        ServiceProcess::start(&sibling("transaction-service")?, &env(&transaction_db))?;
    services.push(transaction);
    for service in &services {
        service.wait_ready(READY_BOUND).await?;
    }
    let transaction = services.last().context("no transaction service")?;
    let client = Client::new(&services[0].url(), &transaction.url())?;
    Ok(Spawned {
        client,
        nats_url: broker.url(),
        _services: services,
        _broker: broker,
        _dir: dir,
    })
}

/// A binary in the same directory as this one.
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the load binary")?;
    let path = exe.with_file_name(name);
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: build it with cargo build --release -p broker -p account -p transaction",
        path.display()
    );
    Ok(path)
}

async fn create_db(base: &str, name: &str) -> anyhow::Result<String> {
    use sqlx::{Connection, Executor};
    let db = format!("load_{name}_{:08x}", fastrand::u32(..));
    let mut conn = sqlx::PgConnection::connect(&format!("{base}/postgres"))
        .await
        .context("connecting to PostgreSQL (--postgres)")?;
    conn.execute(format!("create database {db}").as_str())
        .await
        .with_context(|| format!("creating database {db}"))?;
    Ok(format!("{base}/{db}"))
}
