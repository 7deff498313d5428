//! The transaction service's database: known accounts, numbered transactions, idempotency keys
//! and the outbox, all written in one database transaction per request.

use common_events::service::db::{now_millis, Db};
use common_events::service::outbox::{self, Relay};
use common_events::{
    AccountId, Amount, Envelope, TraceContext, TransactionCreated, TransactionId, TransactionKind,
};
use serde::Serialize;

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
    /// An idempotency key came back with a different request.
    #[error("idempotency key {0:?} was first used for a different request")]
    KeyReused(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// How a transaction ended, from the account service's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// `TransactionApplied`.
    Applied,
    /// `TransactionRejected`.
    Rejected,
}

/// A cheap-to-clone handle over the database and the outbox relay.
#[derive(Clone)]
pub struct Store {
    db: Db,
    relay: Relay,
}

const COLUMNS: &str = "id, account_id, number, kind, amount, status, reason";

impl Store {
    /// A store over `db` whose commits wake `relay`.
    pub fn new(db: Db, relay: Relay) -> Self {
        Self { db, relay }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Numbers and stores a transaction with its `TransactionCreated` outbox row, in one
    /// database transaction; the number is the account's previous number + 1.
    pub async fn create(
        &self,
        new: &NewTransaction,
        key: Option<&str>,
        trace: TraceContext,
    ) -> Result<Created, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let number: Option<i64> = sqlx::query_scalar(
            "update account set last_number = last_number + 1 where id = $1 returning last_number",
        )
        .bind(new.account_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(number) = number else {
            return Err(StoreError::UnknownAccount(new.account_id));
        };
        let id = TransactionId::new();
        if let Some(key) = key {
            if !claim_key(&mut tx, key, id).await? {
                tx.rollback().await?;
                return self.replay(key, new).await;
            }
        }
        let now = now_millis();
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
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let event = Envelope::new(TransactionCreated {
            transaction_id: id,
            account_id: new.account_id,
            number: number as u64,
            kind: new.kind,
            amount: new.amount,
        })
        .correlated(id.0);
        outbox::insert(&mut tx, &event.encode(Some(trace))).await?;
        tx.commit().await?;
        self.relay.wake();
        let record = pending_record(id, new, number);
        Ok(Created {
            record,
            replayed: false,
        })
    }

    async fn replay(&self, key: &str, new: &NewTransaction) -> Result<Created, StoreError> {
        let sql = format!(
            "select {COLUMNS} from transaction_record \
             where id = (select transaction_id from idempotency_key where key = $1)"
        );
        let record: TransactionRecord = sqlx::query_as(&sql)
            .bind(key)
            .fetch_one(self.db.pool())
            .await?;
        let same = record.account_id == new.account_id.to_string()
            && record.kind == new.kind.as_str()
            && record.amount == new.amount.get();
        if !same {
            return Err(StoreError::KeyReused(key.to_owned()));
        }
        Ok(Created {
            record,
            replayed: true,
        })
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
        sqlx::query(
            "insert into account (id, last_number, opened_at) values ($1, 0, $2) \
             on conflict (id) do nothing",
        )
        .bind(id.to_string())
        .bind(now_millis())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Sets a pending transaction's final status (a repeat changes nothing).
    pub async fn settle(
        &self,
        id: TransactionId,
        outcome: Settlement,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let status = match outcome {
            Settlement::Applied => "applied",
            Settlement::Rejected => "rejected",
        };
        sqlx::query(
            "update transaction_record set status = $1, reason = $2, updated_at = $3 \
             where id = $4 and status = 'pending'",
        )
        .bind(status)
        .bind(reason)
        .bind(now_millis())
        .bind(id.to_string())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }
}

/// Inserts the idempotency key; false when it already existed.
async fn claim_key(
    tx: &mut sqlx::AnyConnection,
    key: &str,
    id: TransactionId,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "insert into idempotency_key (key, transaction_id, created_at) values ($1, $2, $3) \
         on conflict (key) do nothing",
    )
    .bind(key)
    .bind(id.to_string())
    .bind(now_millis())
    .execute(tx)
    .await?;
    Ok(result.rows_affected() == 1)
}

fn pending_record(id: TransactionId, new: &NewTransaction, number: i64) -> TransactionRecord {
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
