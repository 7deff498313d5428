//! A concurrent mixed load of deposits and withdrawals over many accounts, with each
//! transaction timed from the start of its HTTP request to the arrival of its
//! `TransactionApplied` or `TransactionRejected` on the broker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::StreamExt;
use hdrhistogram::Histogram;

use crate::client::Client;

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
    /// Transactions per second, request to outcome.
    pub fn per_second(&self) -> f64 {
        self.transactions as f64 / self.elapsed.as_secs_f64()
    }

    /// A one-paragraph summary.
    pub fn summary(&self) -> String {
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        format!(
            "{} transactions in {:.2} s: {:.0} tx/s request→applied ({} applied, {} rejected); \
             request→outcome p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
             HTTP POST p50 {:.1} ms, p99 {:.1} ms",
            self.transactions,
            self.elapsed.as_secs_f64(),
            self.per_second(),
            self.applied,
            self.rejected,
            ms(&self.end_to_end, 0.5),
            ms(&self.end_to_end, 0.99),
            self.end_to_end.max() as f64 / 1000.0,
            ms(&self.request, 0.5),
            ms(&self.request, 0.99),
        )
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

/// Arrival times of outcome events, by transaction id, and whether each was applied.
type Arrivals = Arc<Mutex<HashMap<String, (Instant, bool)>>>;

/// Drives `options.transactions` random deposits and withdrawals over `accounts`.
pub async fn run(
    client: &Client,
    nats: &async_nats::Client,
    accounts: &[String],
    options: &LoadOptions,
) -> anyhow::Result<LoadReport> {
    let arrivals: Arrivals = Arc::default();
    let collector = collect(nats, Arc::clone(&arrivals)).await?;
    let started = Instant::now();
    let sent = send_all(client, accounts, options).await?;
    let all_in = || {
        arrivals
            .lock()
            .map(|a| sent.keys().all(|id| a.contains_key(id)))
            .unwrap_or(false)
    };
    let deadline = Instant::now() + options.settle_timeout;
    let mut next_look = Instant::now() + STREAM_LOOK_AFTER;
    while !all_in() {
        if Instant::now() >= next_look || Instant::now() > deadline {
            fill_from_stream(nats, &arrivals).await;
            next_look = Instant::now() + STREAM_LOOK_AFTER;
            if all_in() {
                break;
            }
        }
        if Instant::now() > deadline {
            bail!(
                "not every transaction had an outcome {:?} after the last request",
                options.settle_timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    collector.abort();
    report(&sent, &arrivals, started)
}

/// How long the wait for outcomes goes on the subscription alone before it also reads the
/// outcomes back from the stream (see [`fill_from_stream`]).
const STREAM_LOOK_AFTER: Duration = Duration::from_secs(5);

/// Adds the outcomes the subscription missed, read back from the stream. A plain subscription
/// loses what is published while its client reconnects, and the cluster target kills a node this
/// client may be connected to. Such an outcome's arrival is its event's own time. A failure (a
/// broker user without JetStream rights, as the Kubernetes load job's) leaves the subscription's
/// record as it was.
async fn fill_from_stream(nats: &async_nats::Client, arrivals: &Arrivals) {
    use common_events::inspect::read_all;
    use common_events::{TransactionApplied, TransactionRejected};
    let js = async_nats::jetstream::new(nats.clone());
    let (Ok(applied), Ok(rejected)) = (
        read_all::<TransactionApplied>(&js).await,
        read_all::<TransactionRejected>(&js).await,
    ) else {
        return;
    };
    let (now, wall) = (Instant::now(), chrono::Utc::now());
    let at = |time: chrono::DateTime<chrono::Utc>| {
        let ago = (wall - time).to_std().unwrap_or_default();
        now.checked_sub(ago).unwrap_or(now)
    };
    let Ok(mut arrivals) = arrivals.lock() else {
        return;
    };
    for (_, event) in applied {
        arrivals
            .entry(event.data.transaction_id.to_string())
            .or_insert((at(event.occurred_at), true));
    }
    for (_, event) in rejected {
        arrivals
            .entry(event.data.transaction_id.to_string())
            .or_insert((at(event.occurred_at), false));
    }
}

/// Subscribes to the outcome subjects and records each arrival.
async fn collect(
    nats: &async_nats::Client,
    arrivals: Arrivals,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut outcomes = nats.subscribe("transactions.*").await?;
    nats.flush().await?;
    Ok(tokio::spawn(async move {
        while let Some(message) = outcomes.next().await {
            let applied = match message.subject.as_str() {
                "transactions.applied" => true,
                "transactions.rejected" => false,
                _ => continue,
            };
            let Ok(event) = serde_json::from_slice::<serde_json::Value>(&message.payload) else {
                continue;
            };
            if let Some(id) = event["data"]["transaction_id"].as_str() {
                if let Ok(mut arrivals) = arrivals.lock() {
                    arrivals
                        .entry(id.to_owned())
                        .or_insert((Instant::now(), applied));
                }
            }
        }
    }))
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
                let account = &accounts[fastrand::usize(..accounts.len())];
                let (kind, amount) = if fastrand::u8(..10) < 6 {
                    ("deposit", fastrand::i64(1..=100))
                } else {
                    ("withdrawal", fastrand::i64(1..=150))
                };
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

fn report(sent: &Sent, arrivals: &Arrivals, started: Instant) -> anyhow::Result<LoadReport> {
    let arrivals = arrivals.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut end_to_end = Histogram::new(3)?;
    let mut request = Histogram::new(3)?;
    let (mut applied, mut last) = (0, started);
    for (id, (start, took)) in sent {
        let (arrived, was_applied) = arrivals[id];
        end_to_end.record(arrived.saturating_duration_since(*start).as_micros() as u64)?;
        request.record(took.as_micros() as u64)?;
        applied += usize::from(was_applied);
        last = last.max(arrived);
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
