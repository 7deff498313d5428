//! The transaction service's database: known accounts, numbered transactions, idempotency keys
//! and the outbox, all written in one database transaction per request.

use common_events::{AccountId, Amount, TransactionId, TransactionKind};
use serde::Serialize;
use service_kit::db::{now_millis, Db};
use service_kit::outbox::Relay;

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

/// A stored transaction, as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TransactionRecord {
    /// Its id.
    pub id: String,
    /// The account.
    pub account_id: String,
    /// Its number in the account's sequence.
    pub number: i64,
    /// `deposit` or `withdrawal`.
    pub kind: String,
    /// Minor units.
    pub amount: i64,
    /// `pending`, `applied` or `rejected`.
    pub status: String,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
    #[error("writing the batch failed")]
    Batch,
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
        sqlx::query(
            "insert into account (id, last_number, opened_at) values ($1, 0, $2) \
             on conflict (id) do nothing",
        )
        .bind(id.to_string())
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
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
        if !applied.is_empty() {
            let placeholders: Vec<String> =
                (2..applied.len() + 2).map(|i| format!("${i}")).collect();
            let sql = format!(
                "update transaction_record set status = 'applied', updated_at = $1 \
                 where status = 'pending' and id in ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(now);
            for settle in &applied {
                query = query.bind(settle.id.to_string());
            }
            query.execute(&mut *tx).await?;
        }
        for settle in settlements.iter().filter(|s| s.reason.is_some()) {
            sqlx::query(
                "update transaction_record set status = 'rejected', reason = $1, updated_at = $2 \
                 where id = $3 and status = 'pending'",
            )
            .bind(settle.reason.as_deref())
            .bind(now)
            .bind(settle.id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

pub(crate) fn pending_record(
    id: TransactionId,
    new: &NewTransaction,
    number: i64,
) -> TransactionRecord {
    TransactionRecord {
        id: id.to_string(),
        account_id: new.account_id.to_string(),
        number,
        kind: new.kind.as_str().to_owned(),
        amount: new.amount.get(),
        status: "pending".to_owned(),
        reason: None,
    }
}
