//! Creating transactions, in batches: each request is numbered `previous + 1` for its account
//! and stored with its `TransactionCreated` outbox row; a batch shares one database transaction
//! (group commit).
//!
//! A request that fails by the rules (unknown account, reused key) leaves nothing behind (a key
//! it claimed is removed again), so it needs no savepoint. A request the database refuses fails
//! the whole database transaction, though: then the batch is rolled back and written again with
//! a savepoint around each request, so only that request fails. The common case pays for no
//! savepoint. A failed commit is not retried: it may have committed (a connection lost while
//! committing), and writing the batch again would create its transactions twice.

use common_events::{Envelope, TraceContext, TransactionCreated, TransactionId};
use service_kit::batch::Batcher;
use service_kit::db::now_millis;
use service_kit::outbox;
use sqlx::{AnyConnection, Connection};

use crate::key::IdempotencyKey;
use crate::retention::KeyRetention;
use crate::store::{
    pending_record, Created, NewTransaction, Store, StoreError, TransactionRecord, COLUMNS,
};

/// The most requests written in one database transaction.
const BATCH: usize = 64;

/// One request to create a transaction.
#[derive(Clone, Debug)]
pub struct CreateRequest {
    /// The validated transaction.
    pub new: NewTransaction,
    /// The `Idempotency-Key`, if any.
    pub key: Option<IdempotencyKey>,
    /// The request's trace context, carried by the event.
    pub trace: TraceContext,
}

/// What one request of a batch came to.
pub type CreateResult = Result<Created, StoreError>;

/// Creates transactions through a batching task.
pub type Creator = Batcher<CreateRequest, CreateResult>;

/// Starts the batching task over `store`; keys name their transaction for `retention`.
pub fn creator(store: Store, retention: KeyRetention) -> Creator {
    Batcher::spawn(BATCH, move |requests| {
        let store = store.clone();
        async move { store.create_batch(&requests, retention).await }
    })
}

/// How a batch is written: all in one go, or each request on its own savepoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isolation {
    Shared,
    Savepoints,
}

/// Why writing a batch failed.
enum Failure {
    /// A statement failed; nothing was committed, so the batch may be written again.
    Statement(sqlx::Error),
    /// Beginning or committing failed: nothing to tell apart (and a commit may have happened).
    Transaction(sqlx::Error),
}

impl Store {
    /// Creates every request, one result each, in order: in one database transaction, and if a
    /// statement fails, once more with a savepoint per request so that only the requests the
    /// database refuses fail (with [`StoreError::Db`]). When the database transaction itself
    /// cannot begin or commit, every request fails with [`StoreError::Batch`].
    pub async fn create_batch(
        &self,
        requests: &[CreateRequest],
        retention: KeyRetention,
    ) -> Vec<CreateResult> {
        let count = requests.len();
        let failed = match self.write(requests, retention, Isolation::Shared).await {
            Ok(results) => return results,
            Err(Failure::Statement(err)) => {
                tracing::warn!(
                    error = %err, count,
                    "a batch of transactions failed; writing it again, a savepoint per request"
                );
                match self.write(requests, retention, Isolation::Savepoints).await {
                    Ok(results) => return results,
                    Err(Failure::Statement(err) | Failure::Transaction(err)) => err,
                }
            }
            Err(Failure::Transaction(err)) => err,
        };
        tracing::error!(error = %failed, count, "writing a batch of transactions failed");
        (0..count).map(|_| Err(StoreError::Batch)).collect()
    }

    async fn write(
        &self,
        requests: &[CreateRequest],
        retention: KeyRetention,
        isolation: Isolation,
    ) -> Result<Vec<CreateResult>, Failure> {
        let mut tx = self.db.begin_write().await.map_err(Failure::Transaction)?;
        let cutoff = retention.cutoff(now_millis());
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            let result = match isolation {
                Isolation::Shared => create_one(&mut tx, request, cutoff).await,
                Isolation::Savepoints => create_on_savepoint(&mut tx, request, cutoff).await,
            };
            match result {
                Ok(result) => results.push(result),
                Err(err) => {
                    let _ = tx.rollback().await;
                    return Err(Failure::Statement(err));
                }
            }
        }
        tx.commit().await.map_err(Failure::Transaction)?;
        self.relay.wake();
        Ok(results)
    }
}

/// [`create_one`] inside a savepoint: a statement the database refuses rolls back this request
/// only and becomes its result. Only failing to roll back to the savepoint is an error.
async fn create_on_savepoint(
    conn: &mut AnyConnection,
    request: &CreateRequest,
    cutoff: i64,
) -> Result<CreateResult, sqlx::Error> {
    let mut savepoint = conn.begin().await?;
    match create_one(&mut savepoint, request, cutoff).await {
        Ok(result) => {
            savepoint.commit().await?;
            Ok(result)
        }
        Err(err) => {
            savepoint.rollback().await?;
            Ok(Err(StoreError::Db(err)))
        }
    }
}

/// Writes one request; keys created before `cutoff` are expired (free for a new transaction).
async fn create_one(
    conn: &mut AnyConnection,
    request: &CreateRequest,
    cutoff: i64,
) -> Result<CreateResult, sqlx::Error> {
    let new = &request.new;
    let id = TransactionId::new();
    if let Some(key) = &request.key {
        if let Some(first) = replay(conn, key, new, cutoff).await? {
            return Ok(first);
        }
        if !claim_key(conn, key, id, cutoff).await? {
            // Another replica's batch claimed the key and has committed since: its result.
            let first = replay(conn, key, new, cutoff).await?;
            return Ok(first.unwrap_or(Err(StoreError::KeyReused)));
        }
    }
    let number: Option<i64> = sqlx::query_scalar(
        "update account set last_number = last_number + 1 where id = $1 returning last_number",
    )
    .bind(new.account_id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(number) = number else {
        if let Some(key) = &request.key {
            sqlx::query("delete from idempotency_key where key = $1")
                .bind(key.as_str())
                .execute(&mut *conn)
                .await?;
        }
        return Ok(Err(StoreError::UnknownAccount(new.account_id)));
    };
    insert(conn, id, new, number).await?;
    let event = Envelope::new(TransactionCreated {
        transaction_id: id,
        account_id: new.account_id,
        number: number as u64,
        kind: new.kind,
        amount: new.amount,
    })
    .correlated(id.0);
    outbox::insert(conn, &event.encode(Some(request.trace))).await?;
    Ok(Ok(Created {
        record: pending_record(id, new, number),
        replayed: false,
    }))
}

async fn insert(
    conn: &mut AnyConnection,
    id: TransactionId,
    new: &NewTransaction,
    number: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into transaction_record \
         (id, account_id, number, kind, amount, status, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, 'pending', $6, $6)",
    )
    .bind(id.to_string())
    .bind(new.account_id.to_string())
    .bind(number)
    .bind(new.kind.as_str())
    .bind(new.amount.get())
    .bind(now_millis())
    .execute(conn)
    .await?;
    Ok(())
}

/// Claims `key` for `id`: inserts it, or takes over an expired row (created before `cutoff`);
/// false when a live one exists. On PostgreSQL a concurrent claim of the same key waits here
/// until the other transaction ends.
async fn claim_key(
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

/// The first result for `key`, if it was used since `cutoff`: the same transaction when the
/// request matches, [`StoreError::KeyReused`] when it does not.
async fn replay(
    conn: &mut AnyConnection,
    key: &IdempotencyKey,
    new: &NewTransaction,
    cutoff: i64,
) -> Result<Option<CreateResult>, sqlx::Error> {
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
    let same = record.account_id == new.account_id.to_string()
        && record.kind == new.kind.as_str()
        && record.amount == new.amount.get();
    if !same {
        return Ok(Some(Err(StoreError::KeyReused)));
    }
    Ok(Some(Ok(Created {
        record,
        replayed: true,
    })))
}
