//! Creating transactions, in batches: each request is numbered `previous + 1` for its account
//! and stored with its `TransactionCreated` outbox row; a batch shares one database transaction
//! (group commit). A request that fails (unknown account, reused key) leaves nothing behind (a
//! key it claimed is removed again), so it needs no savepoint; a database error fails the whole
//! batch.

use common_events::service::batch::Batcher;
use common_events::service::db::now_millis;
use common_events::service::outbox;
use common_events::{Envelope, TraceContext, TransactionCreated, TransactionId};
use sqlx::AnyConnection;

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
    pub key: Option<String>,
    /// The request's trace context, carried by the event.
    pub trace: TraceContext,
}

/// Creates transactions through a batching task.
pub type Creator = Batcher<CreateRequest, Result<Created, StoreError>>;

/// Starts the batching task over `store`.
pub fn creator(store: Store) -> Creator {
    Batcher::spawn(BATCH, move |requests| {
        let store = store.clone();
        async move {
            let count = requests.len();
            match store.create_batch(&requests).await {
                Ok(results) => results,
                Err(err) => {
                    tracing::error!(error = %err, count, "writing a batch of transactions failed");
                    (0..count).map(|_| Err(StoreError::Batch)).collect()
                }
            }
        }
    })
}

impl Store {
    /// Creates every request in one database transaction; the outer error fails them all.
    pub async fn create_batch(
        &self,
        requests: &[CreateRequest],
    ) -> Result<Vec<Result<Created, StoreError>>, sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            results.push(create_one(&mut tx, request).await?);
        }
        tx.commit().await?;
        self.relay.wake();
        Ok(results)
    }
}

async fn create_one(
    conn: &mut AnyConnection,
    request: &CreateRequest,
) -> Result<Result<Created, StoreError>, sqlx::Error> {
    let new = &request.new;
    let id = TransactionId::new();
    if let Some(key) = &request.key {
        if let Some(first) = replay(conn, key, new).await? {
            return Ok(first);
        }
        if !claim_key(conn, key, id).await? {
            // Another replica's batch claimed the key and has committed since: its result.
            let first = replay(conn, key, new).await?;
            return Ok(first.unwrap_or_else(|| Err(StoreError::KeyReused(key.clone()))));
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
                .bind(key)
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

/// Inserts the idempotency key for `id`; false when it exists already. On PostgreSQL a
/// concurrent claim of the same key waits here until the other transaction ends.
async fn claim_key(
    conn: &mut AnyConnection,
    key: &str,
    id: TransactionId,
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "insert into idempotency_key (key, transaction_id, created_at) values ($1, $2, $3) \
         on conflict (key) do nothing",
    )
    .bind(key)
    .bind(id.to_string())
    .bind(now_millis())
    .execute(conn)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// The first result for `key`, if it was used before: the same transaction when the request
/// matches, [`StoreError::KeyReused`] when it does not.
async fn replay(
    conn: &mut AnyConnection,
    key: &str,
    new: &NewTransaction,
) -> Result<Option<Result<Created, StoreError>>, sqlx::Error> {
    let sql = format!(
        "select {COLUMNS} from transaction_record \
         where id = (select transaction_id from idempotency_key where key = $1)"
    );
    let Some(record): Option<TransactionRecord> =
        sqlx::query_as(&sql).bind(key).fetch_optional(conn).await?
    else {
        return Ok(None);
    };
    let same = record.account_id == new.account_id.to_string()
        && record.kind == new.kind.as_str()
        && record.amount == new.amount.get();
    if !same {
        return Ok(Some(Err(StoreError::KeyReused(key.to_owned()))));
    }
    Ok(Some(Ok(Created {
        record,
        replayed: true,
    })))
}
