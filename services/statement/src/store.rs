//! The statement service's database: `statement_account` (each account's running balance and
//! `last_transaction_number`) and `statement_line` (one line per number of its sequence).

use common_events::{AccountId, TransactionNumber};
use serde::Serialize;
use service_kit::db::Db;

use crate::projection::{AccountState, Claim, Effect};

/// A cheap-to-clone handle over the database.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

/// An account's statement header.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Account {
    /// Who owns it.
    pub owner: String,
    /// The running balance after its last line.
    pub balance: i64,
    /// The number of its last line (0 before the first).
    pub last_transaction_number: i64,
}

/// One line of a statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Line {
    /// Its number in the account's sequence.
    pub number: i64,
    /// The transaction.
    pub transaction_id: String,
    /// `deposit` or `withdrawal`.
    pub kind: String,
    /// Minor units.
    pub amount: i64,
    /// `applied` or `rejected`.
    pub outcome: String,
    /// The running balance after it.
    pub balance_after: i64,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the account service decided it: milliseconds since the Unix epoch, shown as an
    /// RFC 3339 time.
    #[serde(serialize_with = "rfc3339")]
    pub occurred_at: i64,
}

fn rfc3339<S: serde::Serializer>(millis: &i64, out: S) -> Result<S::Ok, S::Error> {
    match chrono::DateTime::from_timestamp_millis(*millis) {
        Some(at) => out.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        None => out.serialize_none(),
    }
}

impl Store {
    /// A store over `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Opens an account's statement, unless it is open already.
    pub async fn open(
        &self,
        id: AccountId,
        owner: &str,
        opened_at: i64,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "insert into statement_account (account_id, owner, opened_at) values ($1, $2, $3) \
             on conflict (account_id) do nothing",
        )
        .bind(id.to_string())
        .bind(owner)
        .bind(opened_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// The running state of an account's statement; `None` when it is not open.
    pub async fn state(&self, id: AccountId) -> Result<Option<AccountState>, sqlx::Error> {
        Ok(self.account(id).await?.map(|account| AccountState {
            balance: account.balance,
            last_transaction_number: u64::try_from(account.last_transaction_number).unwrap_or(0),
        }))
    }

    /// An account's statement header; `None` when it is not open.
    pub async fn account(&self, id: AccountId) -> Result<Option<Account>, sqlx::Error> {
        sqlx::query_as(
            "select owner, balance, last_transaction_number from statement_account \
             where account_id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(self.db.pool())
        .await
    }

    /// The transaction whose line holds `number` of the account, if any.
    pub async fn holder(
        &self,
        id: AccountId,
        number: TransactionNumber,
    ) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar(
            "select transaction_id from statement_line where account_id = $1 and number = $2",
        )
        .bind(id.to_string())
        .bind(number.as_i64())
        .fetch_optional(self.db.pool())
        .await
    }

    /// Records `claim`'s line with `balance_after` and moves the account to its number, in one
    /// database transaction, if the account's last number is still the one before; false,
    /// changing nothing, when it moved on meanwhile (another replica took the number).
    pub async fn record(&self, claim: &Claim, balance_after: i64) -> Result<bool, sqlx::Error> {
        let number = claim.number.as_i64();
        let account = claim.account_id.to_string();
        let (outcome, reason) = match &claim.effect {
            Effect::Applied { .. } => ("applied", None),
            Effect::Rejected { reason } => ("rejected", Some(reason.as_str())),
        };
        let mut tx = self.db.begin_write().await?;
        let moved = sqlx::query(
            "update statement_account set balance = $1, last_transaction_number = $2 \
             where account_id = $3 and last_transaction_number = $4",
        )
        .bind(balance_after)
        .bind(number)
        .bind(&account)
        .bind(number - 1)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "insert into statement_line (account_id, number, transaction_id, kind, amount, \
             outcome, balance_after, reason, occurred_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&account)
        .bind(number)
        .bind(claim.transaction_id.to_string())
        .bind(claim.kind.as_str())
        .bind(claim.amount)
        .bind(outcome)
        .bind(balance_after)
        .bind(reason)
        .bind(claim.occurred_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The running balance before line `from`: after the last line numbered below it (0 when
    /// there is none).
    pub async fn balance_before(&self, id: AccountId, from: i64) -> Result<i64, sqlx::Error> {
        let balance: Option<i64> = sqlx::query_scalar(
            "select balance_after from statement_line where account_id = $1 and number < $2 \
             order by number desc limit 1",
        )
        .bind(id.to_string())
        .bind(from)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(balance.unwrap_or(0))
    }

    /// The lines numbered `from` to `to` (both included), in number order, at most `limit`.
    pub async fn lines(
        &self,
        id: AccountId,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<Line>, sqlx::Error> {
        sqlx::query_as(
            "select number, transaction_id, kind, amount, outcome, balance_after, reason, \
             occurred_at from statement_line \
             where account_id = $1 and number >= $2 and number <= $3 order by number limit $4",
        )
        .bind(id.to_string())
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await
    }

    /// Drops the whole projection (a rebuild starts from nothing).
    pub async fn clear(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query("delete from statement_line")
            .execute(&mut *tx)
            .await?;
        sqlx::query("delete from statement_account")
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// How many statements and lines there are.
    pub async fn counts(&self) -> Result<(i64, i64), sqlx::Error> {
        let accounts = sqlx::query_scalar("select count(*) from statement_account")
            .fetch_one(self.db.pool())
            .await?;
        let lines = sqlx::query_scalar("select count(*) from statement_line")
            .fetch_one(self.db.pool())
            .await?;
        Ok((accounts, lines))
    }
}
