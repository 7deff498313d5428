//! The transaction service's transactions: their rows, their status, and reading and settling
//! them. Numbering is in [`crate::numbering`], keys in [`crate::idempotency`], and creating (all
//! of it in one database transaction per batch) in [`crate::create`].

use common_events::{
    AccountId, Amount, Envelope, TransactionCreated, TransactionId, TransactionKind,
    TransactionNumber,
};
use serde::Serialize;
use service_kit::batch::BatchFailed;
use service_kit::bulk;
use service_kit::db::{now_millis, Db};
use service_kit::outbox::Relay;
use sqlx::AnyConnection;

use crate::numbering;

/// A validated request for a new transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTransaction {
    /// The account.
    pub account_id: AccountId,
    /// Deposit or withdrawal.
    pub kind: TransactionKind,
    /// How much.
    pub amount: Amount,
}

/// Where a transaction stands: created and numbered, then applied or rejected by the account
/// service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransactionStatus {
    /// Created; the account service has not decided yet.
    Pending,
    /// The account service applied it (`TransactionApplied`).
    Applied,
    /// The account service rejected it (`TransactionRejected`), with a reason.
    Rejected,
}

/// A `status` column value that names no [`TransactionStatus`].
#[derive(Debug, thiserror::Error)]
#[error("status {0:?} is not pending, applied or rejected")]
pub struct InvalidStatus(String);

impl TransactionStatus {
    /// The name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionStatus::Pending => "pending",
            TransactionStatus::Applied => "applied",
            TransactionStatus::Rejected => "rejected",
        }
    }
}

impl TryFrom<String> for TransactionStatus {
    type Error = InvalidStatus;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "pending" => Ok(TransactionStatus::Pending),
            "applied" => Ok(TransactionStatus::Applied),
            "rejected" => Ok(TransactionStatus::Rejected),
            _ => Err(InvalidStatus(value)),
        }
    }
}

/// A stored transaction, as the API shows it. Every column is checked as it is read, so a row
/// that is not a valid transaction is an error rather than a wrong answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TransactionRecord {
    /// Its id.
    #[sqlx(try_from = "String")]
    pub id: TransactionId,
    /// The account.
    #[sqlx(try_from = "String")]
    pub account_id: AccountId,
    /// Its number in the account's sequence.
    #[sqlx(try_from = "i64")]
    pub number: TransactionNumber,
    /// Deposit or withdrawal.
    #[sqlx(try_from = "String")]
    pub kind: TransactionKind,
    /// Minor units.
    #[sqlx(try_from = "i64")]
    pub amount: Amount,
    /// Pending, applied or rejected.
    #[sqlx(try_from = "String")]
    pub status: TransactionStatus,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl TransactionRecord {
    /// A new transaction `id` with `number`, not decided yet.
    pub fn pending(id: TransactionId, new: &NewTransaction, number: TransactionNumber) -> Self {
        Self {
            id,
            account_id: new.account_id,
            number,
            kind: new.kind,
            amount: new.amount,
            status: TransactionStatus::Pending,
            reason: None,
        }
    }

    /// Whether this transaction is what `new` asks for (an idempotency key's replay).
    pub fn is_for(&self, new: &NewTransaction) -> bool {
        self.account_id == new.account_id && self.kind == new.kind && self.amount == new.amount
    }

    /// The event that announces it, correlated by its id.
    pub fn created_event(&self) -> Envelope<TransactionCreated> {
        Envelope::new(TransactionCreated {
            transaction_id: self.id,
            account_id: self.account_id,
            number: self.number,
            kind: self.kind,
            amount: self.amount,
        })
        .correlated(self.id.0)
    }

    /// Inserts the row.
    pub async fn insert(&self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        insert_records(conn, std::slice::from_ref(self)).await
    }
}

/// Inserts `records` in as few statements as [`bulk::runs`] allows.
pub async fn insert_records(
    conn: &mut AnyConnection,
    records: &[TransactionRecord],
) -> Result<(), sqlx::Error> {
    let now = now_millis();
    let into = "transaction_record \
                (id, account_id, number, kind, amount, status, reason, created_at, updated_at)";
    bulk::insert(conn, into, 9, records, |query, record| {
        query
            .bind(record.id.to_string())
            .bind(record.account_id.to_string())
            .bind(record.number.as_i64())
            .bind(record.kind.as_str())
            .bind(record.amount.get())
            .bind(record.status.as_str())
            .bind(record.reason.as_deref())
            .bind(now)
            .bind(now)
    })
    .await
}

/// The result of a create: the transaction and whether an idempotency key replayed it.
#[derive(Clone, Debug)]
pub struct Created {
    /// The transaction.
    pub record: TransactionRecord,
    /// True when the key had been used before and this is the first result again.
    pub replayed: bool,
}

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No `AccountOpened` for this account has arrived (yet).
    #[error("unknown account {0}")]
    UnknownAccount(AccountId),
    /// An idempotency key came back with a different request (the key is not repeated: a
    /// client may treat keys as secrets).
    #[error(
        "this Idempotency-Key was first used for a different request (another account, kind \
         or amount); send a new key for a new transaction"
    )]
    KeyReused,
    /// The database failed, or refused this request.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// The batch this request was written in failed (the error is logged once).
    #[error(transparent)]
    Batch(#[from] BatchFailed),
}

/// How a transaction ended, from the account service's events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settle {
    /// The transaction.
    pub id: TransactionId,
    /// `None` when applied; the reason when rejected.
    pub reason: Option<String>,
}

/// A cheap-to-clone handle over the database and the outbox relay.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: Db,
    pub(crate) relay: Relay,
}

pub(crate) const COLUMNS: &str = "id, account_id, number, kind, amount, status, reason";

impl Store {
    /// A store over `db` whose commits wake `relay`.
    pub fn new(db: Db, relay: Relay) -> Self {
        Self { db, relay }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// One transaction by id.
    pub async fn get(&self, id: TransactionId) -> Result<Option<TransactionRecord>, StoreError> {
        let sql = format!("select {COLUMNS} from transaction_record where id = $1");
        let record = sqlx::query_as(&sql)
            .bind(id.to_string())
            .fetch_optional(self.db.pool())
            .await?;
        Ok(record)
    }

    /// An account's transactions with numbers above `after`, in number order, at most `limit`.
    pub async fn list(
        &self,
        account_id: AccountId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<TransactionRecord>, StoreError> {
        let sql = format!(
            "select {COLUMNS} from transaction_record \
             where account_id = $1 and number > $2 order by number limit $3"
        );
        let records = sqlx::query_as(&sql)
            .bind(account_id.to_string())
            .bind(after)
            .bind(limit)
            .fetch_all(self.db.pool())
            .await?;
        Ok(records)
    }

    /// Records an account from `AccountOpened` (a repeat changes nothing).
    pub async fn learn_account(&self, id: AccountId) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        numbering::open_account(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets the final status of pending transactions, all in one database transaction:
    /// applied ones with one statement, rejected ones (with their reasons) one by one. A repeat
    /// changes nothing.
    pub async fn settle(&self, settlements: &[Settle]) -> Result<(), StoreError> {
        let now = now_millis();
        let applied: Vec<&Settle> = settlements.iter().filter(|s| s.reason.is_none()).collect();
        let mut tx = self.db.begin_write().await?;
        for run in bulk::runs(applied.len()) {
            let placeholders: Vec<String> = (4..run.len() + 4).map(|i| format!("${i}")).collect();
            let sql = format!(
                "update transaction_record set status = $1, updated_at = $2 \
                 where status = $3 and id in ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql)
                .bind(TransactionStatus::Applied.as_str())
                .bind(now)
                .bind(TransactionStatus::Pending.as_str());
            for settle in &applied[run] {
                query = query.bind(settle.id.to_string());
            }
            query.execute(&mut *tx).await?;
        }
        for settle in settlements.iter().filter(|s| s.reason.is_some()) {
            sqlx::query(
                "update transaction_record set status = $1, reason = $2, updated_at = $3 \
                 where id = $4 and status = $5",
            )
            .bind(TransactionStatus::Rejected.as_str())
            .bind(settle.reason.as_deref())
            .bind(now)
            .bind(settle.id.to_string())
            .bind(TransactionStatus::Pending.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
