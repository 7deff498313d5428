//! How long idempotency keys are kept (`IDEMPOTENCY_KEY_RETENTION`), and the sweep that deletes
//! the older ones.
//!
//! A key older than the retention no longer names its transaction: the next request with it is
//! a new transaction. That rule is applied where keys are read and claimed (see `create`), so
//! it holds whether or not the sweep has run; the sweep only keeps the table small. It runs in
//! the background in bounded batches, each its own short transaction, so a request waits at
//! most for one batch.

use std::time::Duration;

use service_kit::config::parse_duration;
use service_kit::db::{now_millis, Db};
use tokio_util::sync::CancellationToken;

/// The default retention: a day, as Stripe's.
pub const DEFAULT_KEY_RETENTION: &str = "24h";

/// The shortest retention accepted.
pub const MIN_KEY_RETENTION: Duration = Duration::from_secs(1);

/// The longest retention accepted: a year (keys are rows, kept that long).
pub const MAX_KEY_RETENTION: Duration = Duration::from_secs(365 * 24 * 3600);

/// How often the sweep runs, at most; a shorter retention sweeps every retention period.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The most keys one sweep statement deletes (one short write transaction each).
pub const SWEEP_BATCH: i64 = 1000;

/// How long a key names its transaction, between [`MIN_KEY_RETENTION`] and
/// [`MAX_KEY_RETENTION`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRetention(Duration);

impl KeyRetention {
    /// The retention as a duration.
    pub fn get(self) -> Duration {
        self.0
    }

    /// The oldest `created_at` (milliseconds since the epoch) that still holds at `now`.
    pub fn cutoff(self, now: i64) -> i64 {
        // At most a year of milliseconds: no overflow.
        now - self.0.as_millis() as i64
    }

    /// How long the sweep waits between runs.
    pub fn sweep_every(self) -> Duration {
        self.0.min(SWEEP_EVERY)
    }
}

/// Parses `IDEMPOTENCY_KEY_RETENTION`: a duration like `24h`, `30m` or `7days`, from 1 s to
/// 365 days.
pub fn parse_key_retention(value: &str) -> Result<KeyRetention, String> {
    let duration = parse_duration(value)?;
    if !(MIN_KEY_RETENTION..=MAX_KEY_RETENTION).contains(&duration) {
        return Err(format!(
            "{value:?} is outside the idempotency key retention's range of 1s to 365days \
             (the default is {DEFAULT_KEY_RETENTION})"
        ));
    }
    Ok(KeyRetention(duration))
}

/// Deletes keys older than `retention` every [`KeyRetention::sweep_every`] until `stop` is
/// cancelled. A failed sweep is logged and tried again at the next round.
pub async fn sweep_keys(db: Db, retention: KeyRetention, stop: CancellationToken) {
    let mut every = tokio::time::interval(retention.sweep_every());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        match sweep_once(&db, retention.cutoff(now_millis()), &stop).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "expired idempotency keys deleted"),
            Err(err) => tracing::warn!(error = %err, "deleting expired idempotency keys failed"),
        }
    }
}

/// Deletes every key created before `cutoff`, [`SWEEP_BATCH`] at a time; returns how many.
pub async fn sweep_once(
    db: &Db,
    cutoff: i64,
    stop: &CancellationToken,
) -> Result<u64, sqlx::Error> {
    let mut deleted = 0;
    while !stop.is_cancelled() {
        let mut tx = db.begin_write().await?;
        // The outer `created_at` test matters on PostgreSQL: a key claimed anew meanwhile (its
        // row updated by a concurrent request) is re-checked against it and kept.
        let batch = sqlx::query(
            "delete from idempotency_key where created_at < $1 and key in \
             (select key from idempotency_key where created_at < $1 limit $2)",
        )
        .bind(cutoff)
        .bind(SWEEP_BATCH)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        deleted += batch;
        if batch < SWEEP_BATCH as u64 {
            break;
        }
        // Let waiting requests have the database between batches.
        tokio::task::yield_now().await;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retention_defaults_to_a_day_and_is_a_human_duration() {
        let day = parse_key_retention(DEFAULT_KEY_RETENTION).unwrap();
        assert_eq!(day.get(), Duration::from_secs(86_400));
        assert_eq!(day.sweep_every(), SWEEP_EVERY);
        let short = parse_key_retention("2s").unwrap();
        assert_eq!(short.get(), Duration::from_secs(2));
        assert_eq!(short.sweep_every(), Duration::from_secs(2));
        assert_eq!(short.cutoff(10_000), 8_000);
        assert!(parse_key_retention("365days").is_ok());
    }

    #[tokio::test]
    async fn the_sweep_deletes_every_expired_key_in_bounded_batches_and_keeps_live_ones() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = Db::connect(&url, 2).await.unwrap();
        let migrations = crate::startup::MIGRATIONS;
        db.migrate(migrations.sqlite, migrations.postgres)
            .await
            .unwrap();
        let expired = 2 * SWEEP_BATCH + 500;
        sqlx::query(
            "with recursive n(i) as (select 1 union all select i + 1 from n where i < $1) \
             insert into idempotency_key (key, transaction_id, created_at) \
             select 'old-' || i, 'gone', i from n",
        )
        .bind(expired)
        .execute(db.pool())
        .await
        .unwrap();
        sqlx::query("insert into idempotency_key values ('live', 'kept', 1000000)")
            .execute(db.pool())
            .await
            .unwrap();
        let stop = CancellationToken::new();
        let deleted = sweep_once(&db, 1_000_000, &stop).await.unwrap();
        assert_eq!(deleted, expired as u64, "three batches");
        let left: Vec<String> = sqlx::query_scalar("select key from idempotency_key")
            .fetch_all(db.pool())
            .await
            .unwrap();
        assert_eq!(left, ["live"]);
    }

    #[test]
    fn a_retention_that_is_not_a_duration_or_out_of_range_says_what_is_accepted() {
        for bad in ["0", "0s", "500ms", "366days", "100years"] {
            let err = parse_key_retention(bad).unwrap_err();
            assert!(err.contains("range of 1s to 365days"), "{bad}: {err}");
        }
        for bad in ["", "soon", "24", "-1h"] {
            let err = parse_key_retention(bad).unwrap_err();
            assert!(err.contains("is not a duration like"), "{bad}: {err}");
        }
    }
}
