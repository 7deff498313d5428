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

use std::collections::HashMap;

use common_events::{AccountId, TraceContext, TransactionId, TransactionNumber};
use service_kit::batch::{Batcher, OnFailure};
use service_kit::db::now_millis;
use service_kit::outbox;
use sqlx::{AnyConnection, Connection};

use crate::idempotency::{self, IdempotencyKey, KeyRetention};
use crate::numbering;
use crate::store::{insert_records, Created, NewTransaction, Store, StoreError, TransactionRecord};

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
        let written = match isolation {
            Isolation::Shared => create_all(&mut tx, requests, cutoff).await,
            Isolation::Savepoints => create_each_on_savepoint(&mut tx, requests, cutoff).await,
        };
        let results = match written {
            Ok(results) => results,
            Err(err) => {
                let _ = tx.rollback().await;
                return Err(Failure::Statement(err));
            }
        };
        tx.commit().await.map_err(Failure::Transaction)?;
        self.relay.wake();
        Ok(results)
    }
}

/// [`create_on_savepoint`] for each request, in order.
async fn create_each_on_savepoint(
    conn: &mut AnyConnection,
    requests: &[CreateRequest],
    cutoff: i64,
) -> Result<Vec<CreateResult>, sqlx::Error> {
    let mut results = Vec::with_capacity(requests.len());
    for request in requests {
        results.push(create_on_savepoint(conn, request, cutoff).await?);
    }
    Ok(results)
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

/// Writes every request, as [`create_one`] would one after the other, in a few multi-row
/// statements: requests with a key one by one (their key is checked and claimed first), the
/// others together, with one statement taking each account's numbers, one inserting the rows
/// and one their events.
async fn create_all(
    conn: &mut AnyConnection,
    requests: &[CreateRequest],
    cutoff: i64,
) -> Result<Vec<CreateResult>, sqlx::Error> {
    let mut results: Vec<Option<CreateResult>> = requests.iter().map(|_| None).collect();
    let mut plain = Vec::with_capacity(requests.len());
    for (i, request) in requests.iter().enumerate() {
        if request.key.is_some() {
            results[i] = Some(create_one(conn, request, cutoff).await?);
        } else {
            plain.push(i);
        }
    }
    let mut counts: HashMap<AccountId, i64> = HashMap::new();
    for &i in &plain {
        *counts.entry(requests[i].new.account_id).or_default() += 1;
    }
    let mut counts: Vec<(AccountId, i64)> = counts.into_iter().collect();
    counts.sort_unstable_by_key(|(account, _)| *account);
    let last = numbering::take_numbers(conn, &counts).await?;
    // Each account's first new number, handed out in request order.
    let mut next: HashMap<AccountId, i64> = counts
        .iter()
        .filter_map(|(account, count)| Some((*account, last.get(account)? - count + 1)))
        .collect();
    let mut records = Vec::with_capacity(plain.len());
    let mut events = Vec::with_capacity(plain.len());
    for &i in &plain {
        let request = &requests[i];
        let account = request.new.account_id;
        let Some(number) = next.get_mut(&account) else {
            results[i] = Some(Err(StoreError::UnknownAccount(account)));
            continue;
        };
        let taken =
            TransactionNumber::try_from(*number).map_err(|err| sqlx::Error::Decode(err.into()))?;
        *number += 1;
        let record = TransactionRecord::pending(TransactionId::new(), &request.new, taken);
        events.push(record.created_event().encode(Some(request.trace)));
        records.push((i, record));
    }
    let rows: Vec<TransactionRecord> = records.iter().map(|(_, r)| r.clone()).collect();
    insert_records(conn, &rows).await?;
    outbox::insert_many(conn, &events).await?;
    for (i, record) in records {
        results[i] = Some(Ok(Created {
            record,
            replayed: false,
        }));
    }
    Ok(results.into_iter().flatten().collect())
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
