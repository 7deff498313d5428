//! The transactional outbox: events are written in the same database transaction as the state
//! change that causes them ([`insert`]), and the [`Relay`] publishes them (`Nats-Msg-Id` = event
//! id), then deletes each row once its PubAck arrived. A crash between commit and publish loses
//! nothing; a crash between publish and delete re-publishes, and the stream drops the duplicate.
//!
//! The table, `outbox (seq, event_id, subject, payload, traceparent, created_at)`, is the kit's
//! own migration (`services/kit/migrations/outbox`), which start-up runs for every service that
//! declares something to publish ([`migrate`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyConnection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use sqlx::migrate::Migrator;

use prometheus_client::metrics::histogram::Histogram;

use crate::bulk;
use crate::db::{now_millis, Db, DbError};
use crate::metrics::{latency_histogram, AtomicCounter, Metrics};
use common_events::envelope::EncodedEvent;
use common_events::publisher::Publisher;
use common_events::trace::TraceContext;

static SQLITE: Migrator = sqlx::migrate!("migrations/outbox/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/outbox/postgres");

/// Creates the `outbox` table when missing (the kit's migration, beside the service's own).
pub async fn migrate(db: &Db) -> Result<(), DbError> {
    db.migrate(&SQLITE, &POSTGRES).await
}

/// Adds `event` to the outbox inside the caller's transaction.
pub async fn insert(conn: &mut AnyConnection, event: &EncodedEvent) -> Result<(), sqlx::Error> {
    insert_many(conn, std::slice::from_ref(event)).await
}

/// Adds `events` to the outbox inside the caller's transaction, in order, with as few
/// statements as [`bulk::runs`] allows.
pub async fn insert_many(
    conn: &mut AnyConnection,
    events: &[EncodedEvent],
) -> Result<(), sqlx::Error> {
    let now = now_millis();
    let into = "outbox (event_id, subject, payload, traceparent, created_at)";
    bulk::insert(conn, into, 5, events, |query, event| {
        query
            .bind(event.id.to_string())
            .bind(&event.subject)
            .bind(event.payload.to_vec())
            .bind(event.trace.map(|t| t.to_string()))
            .bind(now)
    })
    .await
}

/// How the relay behaves.
#[derive(Clone, Debug)]
pub struct RelayOptions {
    /// The most rows published per round.
    pub batch: usize,
    /// How often it looks for rows when nobody wakes it (rows of a crashed peer, say).
    pub poll: Duration,
    /// Fault injection for tests: abort the process after the PubAcks of a round arrive and
    /// before the rows are deleted.
    pub crash_after_publish: bool,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            batch: 256,
            poll: Duration::from_millis(500),
            crash_after_publish: false,
        }
    }
}

/// Counts and the outbox lag, for `/metrics`.
#[derive(Debug)]
pub struct RelayStats {
    /// Events acknowledged by the stream.
    pub published: AtomicU64,
    /// Of those, the ones the stream already had (re-publishes).
    pub duplicates: AtomicU64,
    /// Rounds that failed (broker or database unavailable); retried.
    pub failures: AtomicU64,
    /// Time from an event's insert to its PubAck.
    lag: Histogram,
}

impl Default for RelayStats {
    fn default() -> Self {
        Self {
            published: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            lag: latency_histogram(),
        }
    }
}

impl RelayStats {
    /// Serves these counts in `metrics`: `outbox_published_total`, `outbox_duplicates_total`,
    /// `outbox_failures_total` and the histogram `outbox_lag_seconds`.
    pub fn register(self: &Arc<Self>, metrics: &Metrics) {
        let counters: [AtomicCounter<RelayStats>; 3] = [
            (
                "outbox_published",
                "Outbox events the stream acknowledged.",
                |s| &s.published,
            ),
            (
                "outbox_duplicates",
                "Of the events acknowledged, those the stream already had (re-publishes).",
                |s| &s.duplicates,
            ),
            (
                "outbox_failures",
                "Relay rounds that failed (broker or database unavailable); retried.",
                |s| &s.failures,
            ),
        ];
        metrics.atomic_counters(self, &counters);
        metrics.register(
            "outbox_lag_seconds",
            "Time from an event's insert into the outbox to the stream's acknowledgement of it.",
            self.lag.clone(),
        );
    }
}

/// Publishes outbox rows. Several relays may share a database (replicas): each row is then
/// perhaps published twice, and deduplicated by the stream.
#[derive(Clone)]
pub struct Relay {
    db: Db,
    publisher: Publisher,
    options: RelayOptions,
    wake: Arc<Notify>,
    stats: Arc<RelayStats>,
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    event_id: String,
    subject: String,
    payload: Vec<u8>,
    traceparent: Option<String>,
    created_at: i64,
}

impl Relay {
    /// A relay over `db`'s outbox.
    pub fn new(db: Db, publisher: Publisher, options: RelayOptions) -> Self {
        Self {
            db,
            publisher,
            options,
            wake: Arc::new(Notify::new()),
            stats: Arc::new(RelayStats::default()),
        }
    }

    /// Tells the relay that rows were committed (call after commit).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<RelayStats> {
        Arc::clone(&self.stats)
    }

    /// Publishes rows until `shutdown`, then makes one last round so committed events go out.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            match self.publish_round().await {
                Ok(n) if n == self.options.batch => continue,
                Ok(_) => {}
                Err(err) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %err, "outbox relay round failed; will retry");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.options.poll) => {}
            }
        }
        if !self.publisher.is_connected() {
            tracing::info!("broker unreachable; outbox rows stay for the next start");
        } else if let Err(err) = self.publish_round().await {
            tracing::warn!(error = %err, "last outbox round failed; rows stay for the next start");
        }
    }

    /// Publishes up to one batch and deletes what was acknowledged; returns how many rows.
    pub async fn publish_round(&self) -> Result<usize, RelayError> {
        let rows: Vec<Row> = sqlx::query_as(
            "select seq, event_id, subject, payload, traceparent, created_at from outbox \
             order by seq limit $1",
        )
        .bind(i64::try_from(self.options.batch).unwrap_or(i64::MAX))
        .fetch_all(self.db.pool())
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let done = self.publish_rows(&rows).await;
        if self.options.crash_after_publish && !done.is_empty() {
            tracing::error!("outbox fault injection: aborting after publish, before marking sent");
            std::process::abort();
        }
        self.delete(&done).await?;
        if done.len() < rows.len() {
            return Err(RelayError::Incomplete(rows.len() - done.len()));
        }
        Ok(rows.len())
    }

    /// Sends every row, then awaits the PubAcks; returns the seqs that were acknowledged.
    async fn publish_rows(&self, rows: &[Row]) -> Vec<i64> {
        let mut pending = Vec::with_capacity(rows.len());
        for row in rows {
            let Ok(id) = row.event_id.parse() else {
                tracing::error!(seq = row.seq, event_id = %row.event_id, "outbox row has a malformed event id; skipping it");
                continue;
            };
            let event = EncodedEvent {
                id,
                subject: row.subject.clone(),
                payload: row.payload.clone().into(),
                trace: row.traceparent.as_deref().and_then(TraceContext::parse),
            };
            match self.publisher.send(&event).await {
                Ok(ack) => pending.push((row.seq, row.created_at, ack)),
                Err(err) => {
                    tracing::warn!(error = %err, "outbox publish failed");
                    break;
                }
            }
        }
        let mut done = Vec::with_capacity(pending.len());
        for (seq, created_at, ack) in pending {
            match ack.acked().await {
                Ok(published) => {
                    self.stats.published.fetch_add(1, Ordering::Relaxed);
                    // Another replica's clock may be a little ahead: no lag below zero.
                    let lag_ms = now_millis().saturating_sub(created_at).max(0);
                    self.stats.lag.observe(lag_ms as f64 / 1000.0);
                    if published.duplicate {
                        self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                    done.push(seq);
                }
                Err(err) => tracing::warn!(error = %err, "outbox publish not acknowledged"),
            }
        }
        done
    }

    async fn delete(&self, seqs: &[i64]) -> Result<(), sqlx::Error> {
        if seqs.is_empty() {
            return Ok(());
        }
        let placeholders: Vec<String> = (1..=seqs.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "delete from outbox where seq in ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for seq in seqs {
            query = query.bind(*seq);
        }
        // A delete lost in a power cut publishes its rows again, and the stream drops them as
        // duplicates: it need not wait for an fsync.
        let mut tx = self.db.begin_relaxed().await?;
        query.execute(&mut *tx).await?;
        tx.commit().await
    }
}

/// Why a relay round did not publish everything.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Reading or deleting rows failed.
    #[error("outbox database access: {0}")]
    Db(#[from] sqlx::Error),
    /// Some rows were not acknowledged (they stay and are retried).
    #[error("{0} outbox rows were not acknowledged")]
    Incomplete(usize),
}
