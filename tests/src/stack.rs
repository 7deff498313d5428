//! The whole stack in one test process: a broker, a transaction service, account-service
//! replicas sharing one database and a statement service, each with its own broker connection
//! and database pool, as separate processes would have.

use std::time::Duration;

use clap::Parser;
use tempfile::TempDir;
use test_support::{InProcess, StartedBroker, Target};

use crate::client::Client;

/// How long a service may take to become ready (`/readyz` 200). Generous: a rebuild replays
/// every stream before it is ready, and a CI machine under load runs several such stacks at
/// once; the bound is there to catch a start-up that hangs, not to time one.
const READY: Duration = Duration::from_secs(180);

/// A running stack.
pub struct Stack {
    /// The transaction service.
    pub transaction: InProcess,
    /// The account-service replicas (the queue group `account-service`).
    pub replicas: Vec<InProcess>,
    /// The statement service.
    pub statement: InProcess,
    /// A client of the three APIs (the account service through the first replica).
    pub client: Client,
    /// A broker connection for tests.
    pub nats: async_nats::Client,
    /// The account services' shared database.
    pub account_database: String,
    /// The statement service's database.
    pub statement_database: String,
    /// Replicas of each stream the services create (`--stream-replicas`): 3 on the cluster.
    pub stream_replicas: usize,
    /// Declared last so they drop last.
    pub broker: StartedBroker,
    /// Holds SQLite files.
    pub dir: TempDir,
}

impl Stack {
    /// Starts a broker, the three databases, the transaction service, `replicas` account
    /// services and the statement service.
    pub async fn start(target: &Target, replicas: usize) -> anyhow::Result<Self> {
        let broker = target.broker.start()?;
        let dir = tempfile::tempdir()?;
        let database = target.database();
        let stream_replicas = target.broker.stream_replicas();
        let transaction_database = database.fresh_url(dir.path(), "transaction").await?;
        let account_database = database.fresh_url(dir.path(), "account").await?;
        let statement_database = database.fresh_url(dir.path(), "statement").await?;
        let mut started = Vec::new();
        for _ in 0..replicas.max(1) {
            started.push(
                start_account(&broker.url(), stream_replicas, &account_database, false).await?,
            );
        }
        let transaction =
            start_transaction(&broker.url(), stream_replicas, &transaction_database).await?;
        let statement =
            start_statement(&broker.url(), stream_replicas, &statement_database).await?;
        let client =
            Client::new(&started[0].url, &transaction.url)?.with_statement_url(&statement.url);
        let nats = connect(&broker.url()).await?;
        Ok(Self {
            transaction,
            replicas: started,
            statement,
            client,
            nats,
            account_database,
            statement_database,
            stream_replicas,
            broker,
            dir,
        })
    }
}

/// A test's broker connection to `url`, a NATS URL or a comma-separated list (a cluster's nodes,
/// between which the client fails over).
pub async fn connect(url: &str) -> anyhow::Result<async_nats::Client> {
    let servers = url
        .split(',')
        .map(|u| u.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(async_nats::ConnectOptions::new()
        .max_reconnects(None)
        .connect(servers)
        .await?)
}

/// The command line of `program` on `nats_url` (streams it creates get `stream_replicas`) and
/// `database_url`, listening on a free port of the loopback interface.
fn service_args(
    program: &str,
    nats_url: &str,
    stream_replicas: usize,
    database_url: &str,
) -> Vec<String> {
    vec![
        program.to_owned(),
        format!("--nats-url={nats_url}"),
        format!("--database-url={database_url}"),
        format!("--stream-replicas={stream_replicas}"),
        "--http-addr=127.0.0.1:0".to_owned(),
    ]
}

/// Starts an account service on `nats_url` (streams it creates get `stream_replicas`) and
/// `database_url`, rebuilding first if asked, and waits until it is ready.
pub async fn start_account(
    nats_url: &str,
    stream_replicas: usize,
    database_url: &str,
    rebuild: bool,
) -> anyhow::Result<InProcess> {
    let mut args = service_args("account-service", nats_url, stream_replicas, database_url);
    if rebuild {
        args.push("--rebuild".to_owned());
    }
    let app = account::Application::build(account::Config::parse_from(args)).await?;
    let service = InProcess::spawn(app.local_addr(), |stop| app.run_until(stop));
    service.wait_ready(READY).await?;
    Ok(service)
}

/// Starts a transaction service on `nats_url` (streams it creates get `stream_replicas`) and
/// `database_url`, and waits until it is ready.
pub async fn start_transaction(
    nats_url: &str,
    stream_replicas: usize,
    database_url: &str,
) -> anyhow::Result<InProcess> {
    let args = service_args(
        "transaction-service",
        nats_url,
        stream_replicas,
        database_url,
    );
    let app = transaction::Application::build(transaction::Config::parse_from(args)).await?;
    let service = InProcess::spawn(app.local_addr(), |stop| app.run_until(stop));
    service.wait_ready(READY).await?;
    Ok(service)
}

/// Starts a statement service on `nats_url` (streams it creates get `stream_replicas`) and
/// `database_url`, and waits until it is ready.
pub async fn start_statement(
    nats_url: &str,
    stream_replicas: usize,
    database_url: &str,
) -> anyhow::Result<InProcess> {
    let args = service_args("statement-service", nats_url, stream_replicas, database_url);
    let service = statement::Service::bind(&statement::Config::parse_from(args)).await?;
    let service = InProcess::spawn(service.local_addr(), |stop| service.run_until(stop));
    service.wait_ready(READY).await?;
    Ok(service)
}
