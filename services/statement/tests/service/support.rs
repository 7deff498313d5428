//! A statement service in-process on port 0, with its own broker and database, and helpers that
//! play the account service's part by publishing `AccountOpened`, `TransactionApplied` and
//! `TransactionRejected`.

use std::time::Duration;

use async_nats::jetstream;
use clap::Parser;
use common_events::{
    AccountId, AccountOpened, Amount, Envelope, Event, Publisher, TransactionApplied,
    TransactionId, TransactionKind, TransactionNumber, TransactionRejected,
};
use serde_json::Value;
use statement::{Config, Service};
use tempfile::TempDir;
use test_support::{InProcess, StartedBroker, Target};

/// How long waits for asynchronous effects may take.
pub const BOUND: Duration = Duration::from_secs(15);
/// How long a service may take to become ready (generous: a hang, not a slow start, is the
/// failure to catch).
pub const START_BOUND: Duration = Duration::from_secs(60);

/// A running service and what it runs on.
pub struct TestApp {
    pub service: InProcess,
    pub js: jetstream::Context,
    pub database_url: String,
    /// Declared last so they drop last: broker and files outlive the service.
    pub broker: StartedBroker,
    pub dir: TempDir,
}

/// Starts a broker, a database and a service for `target`, and waits until it is ready.
pub async fn spawn_app(target: &Target) -> anyhow::Result<TestApp> {
    let broker = target.broker.start()?;
    let dir = tempfile::tempdir()?;
    let database_url = target.database().fresh_url(dir.path(), "statement").await?;
    let service = start(&broker.url(), &database_url).await?;
    let client = async_nats::connect(broker.url()).await?;
    Ok(TestApp {
        service,
        js: jetstream::new(client),
        database_url,
        broker,
        dir,
    })
}

/// The service's configuration on `nats_url` and `database_url`, with more `args`.
pub fn config(nats_url: &str, database_url: &str, args: &[&str]) -> Config {
    let mut argv = vec![
        "statement-service".to_owned(),
        format!("--nats-url={nats_url}"),
        format!("--database-url={database_url}"),
        "--http-addr=127.0.0.1:0".to_owned(),
    ];
    argv.extend(args.iter().map(|arg| (*arg).to_owned()));
    Config::parse_from(argv)
}

/// Starts a service on `nats_url` and `database_url` and waits until it is ready.
pub async fn start(nats_url: &str, database_url: &str) -> anyhow::Result<InProcess> {
    let service = Service::bind(&config(nats_url, database_url, &[])).await?;
    let service = InProcess::spawn(service.local_addr(), |stop| service.run_until(stop));
    service.wait_ready(START_BOUND).await?;
    Ok(service)
}

/// One transaction's outcome as the account service publishes it.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub id: TransactionId,
    pub account: AccountId,
    pub number: u64,
    pub kind: TransactionKind,
    pub amount: i64,
    /// `Ok(balance_after)` when applied, `Err(reason)` when rejected.
    pub result: Result<i64, String>,
}

impl Outcome {
    /// A deposit of `amount`, applied with `balance_after`.
    pub fn deposit(account: AccountId, number: u64, amount: i64, balance_after: i64) -> Self {
        Self {
            id: TransactionId::new(),
            account,
            number,
            kind: TransactionKind::Deposit,
            amount,
            result: Ok(balance_after),
        }
    }

    /// A withdrawal of `amount`, applied with `balance_after`.
    pub fn withdrawal(account: AccountId, number: u64, amount: i64, balance_after: i64) -> Self {
        Self {
            kind: TransactionKind::Withdrawal,
            ..Self::deposit(account, number, amount, balance_after)
        }
    }

    /// A withdrawal of `amount`, rejected for `reason`.
    pub fn refused(account: AccountId, number: u64, amount: i64, reason: &str) -> Self {
        Self {
            result: Err(reason.to_owned()),
            ..Self::withdrawal(account, number, amount, 0)
        }
    }
}

impl TestApp {
    /// Publishes `event` in a new envelope (a new event id each time, so a repeat is not
    /// dropped by the stream's deduplication but reaches the listener).
    async fn publish<E: Event>(&self, event: E) -> anyhow::Result<()> {
        Publisher::new(self.js.clone())
            .publish(&Envelope::new(event), None)
            .await?;
        Ok(())
    }

    /// Publishes an `AccountOpened` for a new account and returns it.
    pub async fn open(&self, owner: &str) -> anyhow::Result<AccountId> {
        let account = AccountId::new();
        self.opened(account, owner).await?;
        Ok(account)
    }

    /// Publishes `AccountOpened` for `account`.
    pub async fn opened(&self, account: AccountId, owner: &str) -> anyhow::Result<()> {
        let owner = owner.to_owned();
        let account_id = account;
        self.publish(AccountOpened { account_id, owner }).await
    }

    /// Publishes the outcome event of `outcome`.
    pub async fn outcome(&self, outcome: &Outcome) -> anyhow::Result<()> {
        let (transaction_id, account_id, kind) = (outcome.id, outcome.account, outcome.kind);
        let amount = Amount::new(outcome.amount)?;
        let number = TransactionNumber::new(outcome.number)?;
        match &outcome.result {
            Ok(balance_after) => {
                let balance_after = *balance_after;
                self.publish(TransactionApplied {
                    transaction_id,
                    account_id,
                    number,
                    kind,
                    amount,
                    balance_after,
                })
                .await
            }
            Err(reason) => {
                let reason = reason.clone();
                self.publish(TransactionRejected {
                    transaction_id,
                    account_id,
                    number,
                    kind,
                    amount,
                    reason,
                })
                .await
            }
        }
    }

    /// Publishes every outcome of `outcomes`, in that order.
    pub async fn outcomes(&self, outcomes: &[Outcome]) -> anyhow::Result<()> {
        for outcome in outcomes {
            self.outcome(outcome).await?;
        }
        Ok(())
    }

    /// `GET /api/accounts/{account}/statement<query>`.
    pub async fn statement(&self, account: AccountId, query: &str) -> anyhow::Result<(u16, Value)> {
        statement(&self.service, account, query).await
    }

    /// The statement's last number, once the statement exists (0 before).
    pub async fn last_number(&self, account: AccountId) -> anyhow::Result<i64> {
        let (status, body) = self.statement(account, "").await?;
        Ok(if status == 200 {
            body["last_transaction_number"].as_i64().unwrap_or(-1)
        } else {
            0
        })
    }

    /// A metric line's value from `/metrics` (0 when absent); `name` includes any labels.
    pub async fn metric(&self, name: &str) -> anyhow::Result<u64> {
        metric(&self.service, name).await
    }

    /// A listener's count of `outcome` (`acked`, `retried`, `rejected`, `undecodable`).
    pub async fn listener(&self, listener: &str, outcome: &str) -> anyhow::Result<u64> {
        let name =
            format!("listener_messages_total{{listener=\"{listener}\",outcome=\"{outcome}\"}}");
        self.metric(&name).await
    }
}

/// A metric line's value from `service`'s `/metrics` (0 when absent); `name` includes any
/// labels.
pub async fn metric(service: &InProcess, name: &str) -> anyhow::Result<u64> {
    let (_, text) = service.get("/metrics").await?;
    let text = text.as_str().unwrap_or_default();
    let value = text.lines().find_map(|line| {
        let (metric, value) = line.rsplit_once(' ')?;
        (metric == name).then(|| value.trim().parse().ok())?
    });
    Ok(value.unwrap_or(0))
}

/// `GET /api/accounts/{account}/statement<query>` on `service`.
pub async fn statement(
    service: &InProcess,
    account: AccountId,
    query: &str,
) -> anyhow::Result<(u16, Value)> {
    service
        .get(&format!("/api/accounts/{account}/statement{query}"))
        .await
}

/// The lines of a statement body as `(number, outcome, balance_after)`.
pub fn lines(body: &Value) -> Vec<(i64, String, i64)> {
    let lines = body["lines"].as_array().cloned().unwrap_or_default();
    lines
        .iter()
        .map(|line| {
            (
                line["number"].as_i64().unwrap_or(-1),
                line["outcome"].as_str().unwrap_or_default().to_owned(),
                line["balance_after"].as_i64().unwrap_or(i64::MIN),
            )
        })
        .collect()
}
