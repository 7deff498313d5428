//! `load`: drives the services' HTTP APIs with a concurrent mixed load of deposits and
//! withdrawals and reports transactions per second from request to applied, with p50/p99.
//!
//! By default it starts everything itself from the binaries beside it (build with
//! `cargo build --release -p broker -p account -p transaction -p e2e-tests --bins`): a broker
//! with JetStream (`--broker broker`, the bundled one, by default; or `--broker nats-server`),
//! one transaction-service and `--replicas` account-service processes sharing one SQLite
//! database. With `--account-url`, `--transaction-url` and `--nats-url` it drives a stack
//! that is already running.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use e2e_tests::client::Client;
use e2e_tests::invariants;
use e2e_tests::load::{self, LoadOptions};
use service_kit::config::redact_url;
use service_kit::nats_auth::NatsAuth;
use service_kit::tasks::server_addrs;
use test_support::process::ServiceProcess;
use test_support::{BrokerTarget, StartedBroker};

/// How long the services it starts may take to become ready.
const READY_BOUND: Duration = Duration::from_secs(60);

/// Command-line options.
#[derive(Parser, Debug)]
#[command(
    name = "load",
    about = "Load the account and transaction services; report tx/s and latency"
)]
struct Args {
    /// Accounts to spread the load over.
    #[arg(long, default_value_t = 100)]
    accounts: usize,
    /// Transactions to create.
    #[arg(long, default_value_t = 20_000)]
    transactions: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Account-service replicas to start (without --account-url).
    #[arg(long, default_value_t = 2)]
    replicas: usize,
    /// The broker to start: `broker` (the bundled one, beside this binary) or `nats-server`.
    #[arg(long, default_value = "broker", value_parser = ["broker", "nats-server"])]
    broker: String,
    /// `postgres://…` server URL (without a database) to use instead of SQLite.
    #[arg(long)]
    postgres: Option<String>,
    /// A running account service.
    #[arg(long, env = "ACCOUNT_URL", requires_all = ["transaction_url", "nats_url"])]
    account_url: Option<String>,
    /// A running transaction service.
    #[arg(long, env = "TRANSACTION_URL")]
    transaction_url: Option<String>,
    /// The broker the running services use (watched for the outcome events).
    #[arg(long, env = "NATS_URL")]
    nats_url: Option<String>,
    /// How to log in to that broker (it needs to subscribe to `transactions.>`).
    #[command(flatten)]
    nats_auth: NatsAuth,
    /// After the load, wait until nothing is pending and check every invariant of the ordering
    /// protocol on the accounts it used (exactly once, numbers 1..n, balance = replay, never
    /// negative); exit 1 on a violation.
    #[arg(long, env = "LOAD_CHECK")]
    check: bool,
}

/// What `load` started, kept alive until the end.
struct Spawned {
    _broker: StartedBroker,
    _services: Vec<ServiceProcess>,
    _dir: tempfile::TempDir,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (client, nats_url, _spawned) =
        match (&args.account_url, &args.transaction_url, &args.nats_url) {
            (Some(a), Some(t), Some(n)) => (Client::new(a, t)?, n.clone(), None),
            _ => {
                let (client, nats, spawned) = spawn(&args).await?;
                (client, nats, Some(spawned))
            }
        };
    let login = args
        .nats_auth
        .load_for(&nats_url)
        .map_err(anyhow::Error::msg)?;
    let nats = login
        .apply(async_nats::ConnectOptions::new().name("load"))
        .connect(server_addrs(&nats_url)?)
        .await
        .with_context(|| format!("connecting to NATS at {}", redact_url(&nats_url)))?;
    eprintln!("opening {} accounts", args.accounts);
    let accounts = load::open_accounts(&client, args.accounts).await?;
    let options = LoadOptions {
        transactions: args.transactions,
        concurrency: args.concurrency,
        settle_timeout: Duration::from_secs(120),
    };
    eprintln!(
        "driving {} transactions, {} in flight",
        args.transactions, args.concurrency
    );
    let report = load::run(&client, &nats, &accounts, &options).await?;
    println!("{}", report.summary());
    if args.check {
        let views = invariants::settled(&client, &accounts, options.settle_timeout).await?;
        invariants::check(&views)?;
        let entries: usize = views.iter().map(|v| v.ledger.len()).sum();
        println!(
            "invariants hold on {} accounts ({entries} ledger entries): every transaction \
             settled once, numbers 1..n, balance = replay, never negative",
            views.len()
        );
    }
    Ok(())
}

async fn spawn(args: &Args) -> anyhow::Result<(Client, String, Spawned)> {
    let broker = match args.broker.as_str() {
        "nats-server" => BrokerTarget::reference(),
        _ => BrokerTarget::bundled(sibling("broker")?),
    }
    .start()?;
    eprintln!("started {} at {}", args.broker, broker.url());
    let dir = tempfile::tempdir()?;
    let (account_db, transaction_db) = match &args.postgres {
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
    for _ in 0..args.replicas.max(1) {
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
    let nats = broker.url();
    Ok((
        client,
        nats,
        Spawned {
            _broker: broker,
            _services: services,
            _dir: dir,
        },
    ))
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
    let mut conn = sqlx::PgConnection::connect(&format!("{base}/postgres")).await?;
    conn.execute(format!("create database {db}").as_str())
        .await?;
    Ok(format!("{base}/{db}"))
}
