//! `load`: drives the services' HTTP APIs with a mixed load of deposits and withdrawals and
//! reports how fast and how soon transactions go from request to applied.
//!
//! Two modes:
//! - closed loop (the default, `--concurrency N`): N workers each send their next request when
//!   the last is answered; the rate they reach is the stack's maximum at that concurrency.
//! - open loop (`--rate R`): R requests per second on a fixed schedule whatever the responses
//!   do, each timed from its scheduled time, reported after a `--warmup`; requests due while
//!   `--max-in-flight` are unsettled are dropped and counted (the stack is overloaded).
//!
//! By default it starts everything itself from the binaries beside it (build with
//! `cargo build --release -p broker -p account -p transaction -p e2e-tests --bins`): a broker
//! with JetStream (`--broker broker`, the bundled one, by default; or `--broker nats-server`),
//! one transaction-service and `--replicas` account-service processes sharing one SQLite
//! database (or PostgreSQL with `--postgres`). With `--account-url`, `--transaction-url` and
//! `--nats-url` it drives a stack that is already running. `--json` prints one JSON object
//! with the settings and every figure instead of the human summary.

mod output;
mod spawn;

use std::time::Duration;

use anyhow::Context;
use clap::builder::TypedValueParser;
use clap::Parser;
use e2e_tests::client::Client;
use e2e_tests::figures::{ClosedFigures, OpenFigures};
use e2e_tests::load::{self, LoadOptions};
use e2e_tests::schedule::Plan;
use e2e_tests::{invariants, open_loop};
use service_kit::config::redact_url;
use service_kit::nats_auth::NatsAuth;
use service_kit::tasks::server_addrs;

use output::{Figures, Output};
use spawn::{Broker, StackOptions};

/// How long the transactions still in flight after the load may take to settle, and the
/// invariant check to see nothing pending.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

/// How many open-loop requests may be in flight (due and not settled) at once by default.
const DEFAULT_MAX_IN_FLIGHT: usize = 5_000;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(
    name = "load",
    about = "Load the account and transaction services; report tx/s and latency"
)]
struct Args {
    /// Accounts to spread the load over.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    accounts: u32,
    /// Transactions to create (closed loop); in the open loop, how many are measured when no
    /// --duration is given (the duration is then transactions / rate).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    transactions: u64,
    /// Closed loop: requests in flight at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: u32,
    /// Open loop: transactions per second, sent on a fixed schedule whatever the responses do.
    #[arg(long, conflicts_with = "concurrency", value_parser = clap::value_parser!(u32).range(1..))]
    rate: Option<u32>,
    /// Open loop: how long the measured part lasts (`20s`, `1m`), after the warm-up.
    #[arg(long, requires = "rate", value_parser = parse_positive_duration)]
    duration: Option<Duration>,
    /// Open loop: how long requests go out before the measured part; their samples are dropped.
    #[arg(long, default_value = "5s", requires = "rate", value_parser = parse_duration)]
    warmup: Duration,
    /// Open loop: requests in flight (due and not settled) at most; a request due beyond it is
    /// dropped and counted, and the run is reported as overloaded.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT, requires = "rate",
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    max_in_flight: usize,
    /// Account-service replicas to start (without --account-url).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    replicas: u32,
    /// The broker to start (without --account-url).
    #[arg(long, value_enum, default_value_t = Broker::Broker)]
    broker: Broker,
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
    /// Print one JSON object with the settings and every figure instead of the summary.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// The open-loop plan, when --rate is given.
    fn plan(&self) -> Option<Plan> {
        let rate = self.rate?;
        let duration = self
            .duration
            .unwrap_or_else(|| Duration::from_secs_f64(self.transactions as f64 / f64::from(rate)));
        Some(Plan {
            rate,
            warmup: self.warmup,
            duration,
            max_in_flight: self.max_in_flight,
            settle_timeout: SETTLE_TIMEOUT,
        })
    }

    /// Whether it drives services that run already.
    fn external(&self) -> bool {
        self.account_url.is_some()
    }
}

fn parse_duration(value: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(value)
        .with_context(|| format!("{value:?} is not a duration (say 20s, 500ms or 1m)"))
}

fn parse_positive_duration(value: &str) -> anyhow::Result<Duration> {
    let duration = parse_duration(value)?;
    anyhow::ensure!(!duration.is_zero(), "the duration must be more than zero");
    Ok(duration)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let load_before = output::load_average();
    let (client, nats_url, _spawned) =
        match (&args.account_url, &args.transaction_url, &args.nats_url) {
            (Some(a), Some(t), Some(n)) => (Client::new(a, t)?, n.clone(), None),
            _ => {
                let spawned = spawn::spawn(&StackOptions {
                    broker: args.broker,
                    replicas: args.replicas as usize,
                    postgres: args.postgres.as_deref(),
                })
                .await?;
                let (client, nats_url) = (spawned.client.clone(), spawned.nats_url.clone());
                (client, nats_url, Some(spawned))
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
    let accounts = load::open_accounts(&client, args.accounts as usize).await?;
    let figures = drive(&args, &client, &nats, &accounts).await?;
    let mut output = Output::new(&args, load_before, figures);
    if !args.json {
        output.print_figures();
    }
    if args.check {
        let checked = check(&client, &accounts).await;
        output.set_invariants(accounts.len(), checked.map_err(|e| format!("{e:#}")));
        if !args.json {
            output.print_invariants();
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&output)?);
    }
    output.verdict()
}

/// Runs the load the flags ask for.
async fn drive(
    args: &Args,
    client: &Client,
    nats: &async_nats::Client,
    accounts: &[String],
) -> anyhow::Result<Figures> {
    if let Some(plan) = args.plan() {
        eprintln!(
            "offering {} tx/s for {:?} after a {:?} warm-up, at most {} in flight",
            plan.rate, plan.duration, plan.warmup, plan.max_in_flight
        );
        let report = open_loop::run(client, nats, accounts, &plan).await?;
        return Ok(Figures::Open(OpenFigures::of(&report)));
    }
    let options = LoadOptions {
        transactions: args.transactions as usize,
        concurrency: args.concurrency as usize,
        settle_timeout: SETTLE_TIMEOUT,
    };
    eprintln!(
        "driving {} transactions, {} in flight",
        args.transactions, args.concurrency
    );
    let report = load::run(client, nats, accounts, &options).await?;
    Ok(Figures::Closed(ClosedFigures::of(&report)))
}

/// Waits until nothing is pending and checks every invariant; returns the ledger entries seen.
async fn check(client: &Client, accounts: &[String]) -> anyhow::Result<usize> {
    let views = invariants::settled(client, accounts, SETTLE_TIMEOUT).await?;
    invariants::check(&views)?;
    Ok(views.iter().map(|v| v.ledger.len()).sum())
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::*;

    fn parse(flags: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("load").chain(flags.iter().copied()))
    }

    fn refusal(flags: &[&str]) -> ErrorKind {
        parse(flags).map(|_| ()).unwrap_err().kind()
    }

    #[test]
    fn a_rate_of_zero_and_a_bound_of_zero_are_refused() {
        assert_eq!(refusal(&["--rate", "0"]), ErrorKind::ValueValidation);
        assert_eq!(
            refusal(&["--rate", "5", "--max-in-flight", "0"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(refusal(&["--concurrency", "0"]), ErrorKind::ValueValidation);
    }

    #[test]
    fn a_rate_and_a_concurrency_are_refused_together() {
        let kind = refusal(&["--rate", "5", "--concurrency", "4"]);
        assert_eq!(kind, ErrorKind::ArgumentConflict);
    }

    #[test]
    fn open_loop_flags_without_a_rate_are_refused() {
        for flags in [
            ["--warmup", "1s"],
            ["--duration", "1s"],
            ["--max-in-flight", "9"],
        ] {
            assert_eq!(
                refusal(&flags),
                ErrorKind::MissingRequiredArgument,
                "{flags:?}"
            );
        }
    }

    #[test]
    fn a_duration_must_read_as_one() {
        let error = parse(&["--rate", "5", "--duration", "soon"])
            .map(|_| ())
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ValueValidation);
        assert!(error.to_string().contains("not a duration"), "{error}");
        assert_eq!(
            refusal(&["--rate", "5", "--duration", "0s"]),
            ErrorKind::ValueValidation
        );
        assert!(parse(&["--rate", "5", "--warmup", "0s"]).is_ok());
    }

    #[test]
    fn without_a_duration_the_open_loop_measures_the_transaction_count() {
        let args = parse(&["--rate", "500", "--transactions", "10000"]).unwrap();
        let plan = args.plan().unwrap();
        assert_eq!(plan.duration, Duration::from_secs(20));
        assert_eq!(plan.warmup, Duration::from_secs(5));
        assert_eq!(plan.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
        let args = parse(&["--rate", "500", "--duration", "30s", "--warmup", "2s"]).unwrap();
        let plan = args.plan().unwrap();
        assert_eq!((plan.duration, plan.warmup), (30 * SECOND, 2 * SECOND));
    }

    #[test]
    fn without_a_rate_the_loop_is_closed() {
        let args = parse(&["--concurrency", "16"]).unwrap();
        assert!(args.plan().is_none());
        assert_eq!(args.concurrency, 16);
    }

    const SECOND: Duration = Duration::from_secs(1);
}
