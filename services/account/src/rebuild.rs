//! Event sourcing: an account service started on an empty database replays `AccountOpened` and
//! then `TransactionCreated` from the start of their streams, through the same ordering logic,
//! and reaches the same balances. Outcomes are not re-published: the stream already has them.

use anyhow::bail;
use async_nats::jetstream;
use common_events::topology::{self, subjects, ACCOUNTS, TRANSACTIONS};
use service_kit::replay::Replay;
use tokio_util::sync::CancellationToken;

use crate::listener::{AccountsProjector, TransactionsListener};
use crate::store::Store;

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
/// tasks stop with it. Accounts are replayed first, then transactions: a transaction for an
/// account not restored yet would be dead-lettered as unknown.
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
    let mut accounts = Replay::new(js, stop);
    let projector = AccountsProjector(store.clone());
    accounts
        .add(ACCOUNTS, subjects::ACCOUNT_OPENED, projector)
        .await?;
    accounts.finish().await?;
    let mut transactions = Replay::new(js, stop);
    let listener = TransactionsListener::rebuild(store.clone());
    let stats = transactions
        .add(TRANSACTIONS, subjects::TRANSACTION_CREATED, listener)
        .await?;
    transactions.finish().await?;
    let report = RebuildReport {
        accounts: store.account_count().await?,
        transactions: stats.acked.load(std::sync::atomic::Ordering::Relaxed),
    };
    tracing::info!(?report, "rebuild finished");
    Ok(report)
}
