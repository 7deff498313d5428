//! Creating transactions, in batches: each request is numbered ([`numbering`]), with its
//! idempotency key checked and claimed ([`idempotency`]), and stored with its
//! `TransactionCreated` outbox row; a batch shares one database transaction (group commit).
//!
//! A request that fails by the rules (unknown account, reused key) leaves nothing behind (a key
//! it claimed is removed again), so it needs no savepoint. A request the database refuses fails
//! the whole database transaction, though: then the batch is rolled back and written again with
//! a savepoint around each request, so only that request fails. The common case pays for no
//! savepoint. A failed commit is not retried: it may have committed (a connection lost while
//! committing), and writing the batch again would create its transactions twice.

use common_events::{TraceContext, TransactionId};
use service_kit::batch::{Batcher, OnFailure};
use service_kit::db::now_millis;
use service_kit::outbox;
use sqlx::{AnyConnection, Connection};

use crate::idempotency::{self, IdempotencyKey, KeyRetention};
use crate::numbering;
use crate::store::{Created, NewTransaction, Store, StoreError, TransactionRecord};

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

/// Starts the batching task over `store`; keys name their transaction for `retention`. A batch
/// that fails as a whole fails every request in it ([`OnFailure::FailAll`]): its commit may have
/// happened, and writing it again would create its transactions twice.
pub fn creator(store: Store, retention: KeyRetention) -> Creator {
    Batcher::spawn("create", BATCH, OnFailure::FailAll, move |requests| {
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
    /// database refuses fail (with [`StoreError::Db`]). An error when the database transaction
    /// itself cannot begin or commit.
    pub async fn create_batch(
        &self,
        requests: &[CreateRequest],
        retention: KeyRetention,
    ) -> Result<Vec<CreateResult>, sqlx::Error> {
        match self.write(requests, retention, Isolation::Shared).await {
            Ok(results) => Ok(results),
            Err(Failure::Statement(err)) => {
                tracing::warn!(
                    error = %err, count = requests.len(),
                    "a batch of transactions failed; writing it again, a savepoint per request"
                );
                match self.write(requests, retention, Isolation::Savepoints).await {
                    Ok(results) => Ok(results),
                    Err(Failure::Statement(err) | Failure::Transaction(err)) => Err(err),
                }
            }
            Err(Failure::Transaction(err)) => Err(err),
        }
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
        if let Some(first) = idempotency::replay(conn, key, new, cutoff).await? {
            return Ok(first);
        }
        if !idempotency::claim(conn, key, id, cutoff).await? {
            // Another replica's batch claimed the key and has committed since: its result.
            let first = idempotency::replay(conn, key, new, cutoff).await?;
            return Ok(first.unwrap_or(Err(StoreError::KeyReused)));
        }
    }
    let Some(number) = numbering::next_number(conn, new.account_id).await? else {
        if let Some(key) = &request.key {
            idempotency::release(conn, key).await?;
        }
        return Ok(Err(StoreError::UnknownAccount(new.account_id)));
    };
    let record = TransactionRecord::pending(id, new, number);
    record.insert(conn).await?;
    outbox::insert(conn, &record.created_event().encode(Some(request.trace))).await?;
    Ok(Ok(Created {
        record,
        replayed: false,
    }))
}
