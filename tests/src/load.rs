//! A concurrent mixed load of deposits and withdrawals over many accounts, closed loop (each
//! worker sends its next request when its last is answered, so the rate it reaches is the
//! stack's maximum at that concurrency), with each transaction timed from the start of its HTTP
//! request to the arrival of its `TransactionApplied` or `TransactionRejected` on the broker.
//! The open loop is in [`crate::open_loop`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::client::Client;
use crate::figures::ClosedFigures;
use crate::outcomes::{Outcome, Outcomes};

/// What load to drive.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// How many transactions to create.
    pub transactions: usize,
    /// How many requests are in flight at once.
    pub concurrency: usize,
    /// How long to wait for the last outcome after the last request.
    pub settle_timeout: Duration,
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// Transactions created.
    pub transactions: usize,
    /// From the first request to the last outcome.
    pub elapsed: Duration,
    /// Of those, applied and rejected.
    pub applied: usize,
    /// Rejected for insufficient funds.
    pub rejected: usize,
    /// Request → outcome latency, microseconds.
    pub end_to_end: Histogram<u64>,
    /// HTTP request latency (POST /api/transactions), microseconds.
    pub request: Histogram<u64>,
}

impl LoadReport {
    /// Transactions per second, from the first request to the last outcome: the closed-loop
    /// maximum.
    pub fn per_second(&self) -> f64 {
        self.transactions as f64 / self.elapsed.as_secs_f64()
    }

    /// A few lines for people (see [`ClosedFigures`]).
    pub fn summary(&self) -> String {
        ClosedFigures::of(self).summary()
    }
}

/// Opens `count` accounts and waits until the transaction service knows each of them.
pub async fn open_accounts(client: &Client, count: usize) -> anyhow::Result<Vec<String>> {
    let opens = (0..count).map(|i| async move { client.open_account(&format!("load-{i}")).await });
    let accounts = futures_util::future::try_join_all(opens).await?;
    let ids: Vec<String> = accounts.into_iter().map(|a| a.id).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in &ids {
        // A first deposit per account both waits for AccountOpened to arrive and funds it.
        while client.create(id, "deposit", 50).await?.is_none() {
            if Instant::now() > deadline {
                bail!("the transaction service never learned account {id}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(ids)
}

/// Drives `options.transactions` random deposits and withdrawals over `accounts`, closed loop:
/// each of `options.concurrency` workers sends its next request when its last one is answered.
pub async fn run(
    client: &Client,
    nats: &async_nats::Client,
    accounts: &[String],
    options: &LoadOptions,
) -> anyhow::Result<LoadReport> {
    let outcomes = Outcomes::watch(nats).await?;
    let started = Instant::now();
    let sent = send_all(client, accounts, options).await?;
    let deadline = Instant::now() + options.settle_timeout;
    let mut arrivals = HashMap::with_capacity(sent.len());
    for id in sent.keys() {
        match tokio::time::timeout_at(deadline, outcomes.of(id)).await {
            Ok(outcome) => arrivals.insert(id.as_str(), outcome?),
            Err(_) => bail!(
                "not every transaction had an outcome {:?} after the last request",
                options.settle_timeout
            ),
        };
    }
    report(&sent, &arrivals, started)
}

/// A random transaction over `accounts`: 60% deposits of 1-100, 40% withdrawals of 1-150 (so
/// some are rejected for insufficient funds).
pub fn random_transaction(accounts: &[String]) -> (&str, &'static str, i64) {
    let account = &accounts[fastrand::usize(..accounts.len())];
    if fastrand::u8(..10) < 6 {
        (account, "deposit", fastrand::i64(1..=100))
    } else {
        (account, "withdrawal", fastrand::i64(1..=150))
    }
}

/// Request start and duration of every created transaction, by id.
type Sent = HashMap<String, (Instant, Duration)>;

async fn send_all(
    client: &Client,
    accounts: &[String],
    options: &LoadOptions,
) -> anyhow::Result<Sent> {
    let remaining = Arc::new(AtomicUsize::new(options.transactions));
    let workers = (0..options.concurrency.max(1)).map(|_| {
        let (client, accounts, remaining) =
            (client.clone(), accounts.to_vec(), Arc::clone(&remaining));
        tokio::spawn(async move {
            let mut sent = Sent::new();
            while remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                let (account, kind, amount) = random_transaction(&accounts);
                let start = Instant::now();
                let created = client
                    .create(account, kind, amount)
                    .await?
                    .context("account unknown")?;
                sent.insert(created.id, (start, start.elapsed()));
            }
            anyhow::Ok(sent)
        })
    });
    let mut all = Sent::new();
    for worker in futures_util::future::join_all(workers).await {
        all.extend(worker.context("a load worker panicked")??);
    }
    Ok(all)
}

fn report(
    sent: &Sent,
    arrivals: &HashMap<&str, Outcome>,
    started: Instant,
) -> anyhow::Result<LoadReport> {
    let mut end_to_end = Histogram::new(3)?;
    let mut request = Histogram::new(3)?;
    let (mut applied, mut last) = (0, started);
    for (id, (start, took)) in sent {
        let outcome = arrivals[id.as_str()];
        end_to_end.record(outcome.at.saturating_duration_since(*start).as_micros() as u64)?;
        request.record(took.as_micros() as u64)?;
        applied += usize::from(outcome.applied);
        last = last.max(outcome.at);
    }
    Ok(LoadReport {
        transactions: sent.len(),
        elapsed: last - started,
        applied,
        rejected: sent.len() - applied,
        end_to_end,
        request,
    })
}
