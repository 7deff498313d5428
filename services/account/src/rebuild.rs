//! Event sourcing: an account service started on an empty database replays `AccountOpened` and
//! then `TransactionCreated` from the start of their streams, through the same ordering logic,
//! and reaches the same balances. Outcomes are not re-published: the stream already has them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use async_nats::jetstream::{self, consumer::PullConsumer};
use common_events::topology::{self, subjects, ConsumerSpec, ACCOUNTS, TRANSACTIONS};
use service_kit::runner::{self, ListenerStats};
use service_kit::Listener;
use tokio_util::sync::CancellationToken;

use crate::listener::{AccountsProjector, TransactionsListener};
use crate::store::Store;

/// How often the replay checks whether it caught up.
const POLL: Duration = Duration::from_millis(50);

/// What a rebuild replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebuildReport {
    /// Accounts restored.
    pub accounts: i64,
    /// `TransactionCreated` messages handled.
    pub transactions: u64,
}

/// Replays both streams into `store`, which must be empty.
pub async fn rebuild(store: &Store, js: &jetstream::Context) -> anyhow::Result<RebuildReport> {
    rebuild_until(store, js, &CancellationToken::new()).await
}

/// [`rebuild`], abandoned when `stop` is cancelled (a shutdown during start-up); the replay
/// tasks stop with it.
pub async fn rebuild_until(
    store: &Store,
    js: &jetstream::Context,
    stop: &CancellationToken,
) -> anyhow::Result<RebuildReport> {
    let existing = store.account_count().await?;
    if existing > 0 {
        bail!("rebuild needs an empty database; this one has {existing} accounts");
    }
    topology::ensure(js, &[]).await?;
    let accounts = ConsumerSpec::replay(ACCOUNTS, subjects::ACCOUNT_OPENED);
    replay(js, accounts, AccountsProjector(store.clone()), stop).await?;
    let transactions = ConsumerSpec::replay(TRANSACTIONS, subjects::TRANSACTION_CREATED);
    let stats = replay(
        js,
        transactions,
        TransactionsListener::rebuild(store.clone()),
        stop,
    )
    .await?;
    let report = RebuildReport {
        accounts: store.account_count().await?,
        transactions: stats.acked.load(std::sync::atomic::Ordering::Relaxed),
    };
    tracing::info!(?report, "rebuild finished");
    Ok(report)
}

/// Runs `listener` on a fresh replay consumer until nothing is pending or unacknowledged, then
/// removes the consumer.
async fn replay<L: Listener>(
    js: &jetstream::Context,
    spec: ConsumerSpec,
    listener: L,
    stop: &CancellationToken,
) -> anyhow::Result<Arc<ListenerStats>> {
    let consumer = topology::ensure_consumer(js, &spec).await?;
    let stats = Arc::new(ListenerStats::default());
    let shutdown = stop.child_token();
    let task = tokio::spawn(runner::run(
        js.clone(),
        spec.clone(),
        Arc::new(listener),
        Arc::clone(&stats),
        shutdown.clone(),
    ));
    let caught_up = tokio::select! {
        caught_up = wait_caught_up(&consumer) => caught_up,
        _ = stop.cancelled() => Err(anyhow::anyhow!("stopped before the replay caught up")),
    };
    shutdown.cancel();
    task.await.context("the replay task panicked")??;
    let stream = js.get_stream(spec.stream.name).await?;
    let _ = stream.delete_consumer(&spec.durable).await;
    caught_up?;
    Ok(stats)
}

async fn wait_caught_up(consumer: &PullConsumer) -> anyhow::Result<()> {
    loop {
        let info = consumer
            .get_info()
            .await
            .context("reading the replay consumer")?;
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}
