//! `statement-service rebuild`: the statements are a projection of the streams, so they can be
//! dropped and made again. The rebuild connects as the service does, deletes every statement and
//! line, and replays `AccountOpened`, `TransactionApplied` and `TransactionRejected` from the
//! start of their streams, side by side, through the same listeners as the live service (each
//! line waits for its turn exactly as it does live), until all three caught up.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;
use async_nats::jetstream;
use common_events::topology::{subjects, ACCOUNTS, TRANSACTIONS};
use service_kit::config::CommonConfig;
use service_kit::replay::Replay;
use tokio_util::sync::CancellationToken;

use crate::projection::{AppliedListener, OpenedListener, ProjectionStats, RejectedListener};
use crate::store::Store;

/// What a rebuild made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebuildReport {
    /// Statements (accounts).
    pub accounts: i64,
    /// Lines.
    pub lines: i64,
}

/// Connects (retrying as the service does), rebuilds, and closes; abandoned when `shutdown`
/// resolves first.
pub async fn run(
    common: &CommonConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<RebuildReport> {
    let stop = CancellationToken::new();
    let _signal = tokio_util::task::AbortOnDropHandle::new(tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown.await;
            stop.cancel();
        }
    }));
    let declared = crate::declared();
    let connect = declared.connect(common);
    let base = tokio::select! {
        base = connect => base?,
        _ = stop.cancelled() => anyhow::bail!("stopped before the rebuild connected"),
    };
    let store = Store::new(base.db.clone());
    let rebuilt = rebuild(&store, &base.js, &stop).await;
    base.db.close().await;
    rebuilt
}

/// Deletes every statement of `store` and replays the streams into it.
pub async fn rebuild(
    store: &Store,
    js: &jetstream::Context,
    stop: &CancellationToken,
) -> anyhow::Result<RebuildReport> {
    store.clear().await.context("dropping the statements")?;
    let stats = Arc::new(ProjectionStats::default());
    let mut replay = Replay::new(js, stop);
    let opened = OpenedListener::new(store.clone());
    replay
        .add(ACCOUNTS, subjects::ACCOUNT_OPENED, opened)
        .await?;
    let applied = AppliedListener::new(store.clone(), Arc::clone(&stats));
    replay
        .add(TRANSACTIONS, subjects::TRANSACTION_APPLIED, applied)
        .await?;
    let rejected = RejectedListener::new(store.clone(), Arc::clone(&stats));
    replay
        .add(TRANSACTIONS, subjects::TRANSACTION_REJECTED, rejected)
        .await?;
    replay.finish().await.context("replaying the streams")?;
    let (accounts, lines) = store.counts().await?;
    let report = RebuildReport { accounts, lines };
    tracing::info!(
        ?report,
        conflicts = stats.conflicts.load(Ordering::Relaxed),
        balance_mismatches = stats.mismatches.load(Ordering::Relaxed),
        "rebuild finished"
    );
    Ok(report)
}
