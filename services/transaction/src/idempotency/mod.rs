//! Idempotency keys, all in one place: the `Idempotency-Key` header ([`key`]), how long a key
//! names its transaction and the sweep of old ones ([`retention`]), and what creating a
//! transaction does with a key (here):
//!
//! 1. [`replay`]: a key used since the cutoff names its first transaction; the same request gets
//!    that transaction back, a different one is refused ([`StoreError::KeyReused`]).
//! 2. [`claim`]: otherwise the key is claimed for the new transaction (an expired row is taken
//!    over); if another replica claimed it first and has committed since, its result is replayed.
//! 3. [`release`]: a request that fails by the rules (an unknown account) gives its key back, so
//!    nothing of it is left behind.
//!
//! A key older than the retention no longer names its transaction, where it is read and where it
//! is claimed, so the rule holds whether or not the sweep has run.

pub mod key;
pub mod retention;

use common_events::TransactionId;
use service_kit::db::now_millis;
use sqlx::AnyConnection;

pub use key::{IdempotencyKey, KeyError, MAX_KEY_BYTES};
pub use retention::KeyRetention;

use crate::store::{Created, NewTransaction, StoreError, TransactionRecord, COLUMNS};

/// What one create request came to, when its key decides it.
pub type Replayed = Result<Created, StoreError>;

/// The first result for `key`, if it was used since `cutoff`: the same transaction when the
/// request matches, [`StoreError::KeyReused`] when it does not.
pub async fn replay(
    conn: &mut AnyConnection,
    key: &IdempotencyKey,
    new: &NewTransaction,
    cutoff: i64,
) -> Result<Option<Replayed>, sqlx::Error> {
    let sql = format!(
        "select {COLUMNS} from transaction_record where id = \
         (select transaction_id from idempotency_key where key = $1 and created_at >= $2)"
    );
    let Some(record): Option<TransactionRecord> = sqlx::query_as(&sql)
        .bind(key.as_str())
        .bind(cutoff)
        .fetch_optional(conn)
        .await?
    else {
        return Ok(None);
    };
    if !record.is_for(new) {
        return Ok(Some(Err(StoreError::KeyReused)));
    }
    Ok(Some(Ok(Created {
        record,
        replayed: true,
    })))
}

/// Claims `key` for `id`: inserts it, or takes over an expired row (created before `cutoff`);
/// false when a live one exists. On PostgreSQL a concurrent claim of the same key waits here
/// until the other transaction ends.
pub async fn claim(
    conn: &mut AnyConnection,
    key: &IdempotencyKey,
    id: TransactionId,
    cutoff: i64,
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "insert into idempotency_key (key, transaction_id, created_at) values ($1, $2, $3) \
         on conflict (key) do update \
         set transaction_id = excluded.transaction_id, created_at = excluded.created_at \
         where idempotency_key.created_at < $4",
    )
    .bind(key.as_str())
    .bind(id.to_string())
    .bind(now_millis())
    .bind(cutoff)
    .execute(conn)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Gives `key` back: the request that claimed it created nothing.
pub async fn release(conn: &mut AnyConnection, key: &IdempotencyKey) -> Result<(), sqlx::Error> {
    sqlx::query("delete from idempotency_key where key = $1")
        .bind(key.as_str())
        .execute(conn)
        .await?;
    Ok(())
}
