//! Conflicts: a `TransactionCreated` whose number its account already consumed for another
//! transaction (see `docs/ordering.md`). It is dead-lettered once per message, and a
//! `TransactionRejected` with a reason starting `conflict:` tells the transaction service, so
//! the claimant never stays pending. Found by the listener (a delivery at or below the
//! account's last number) and by unparking.

use std::sync::atomic::Ordering;

use common_events::{AccountId, Envelope, TransactionCreated};
use service_kit::db::now_millis;
use service_kit::outbox;
use sqlx::AnyConnection;

use crate::ordering::Verdict;
use crate::parked::insert_dead_letter;
use crate::store::{Publish, Store};

/// A transaction that claims a number its account consumed for another transaction.
#[derive(Clone, Debug)]
pub struct Conflict<'a> {
    /// The claimant.
    pub event: &'a TransactionCreated,
    /// The transaction the account recorded under that number.
    pub recorded: &'a str,
    /// Where the claimant came from (a dead letter is kept once per message).
    pub subject: &'a str,
    /// Its sequence in the stream.
    pub stream_sequence: u64,
    /// Whether its `TransactionRejected` is published.
    pub publish: Publish,
}

impl Conflict<'_> {
    /// The reason people and the transaction service see.
    pub fn reason(&self) -> String {
        format!(
            "conflict: number {} of account {} is already transaction {}",
            self.event.number, self.event.account_id, self.recorded
        )
    }
}

impl Store {
    /// The transaction recorded under `number` of `account`, if any.
    pub async fn recorded_transaction(
        &self,
        account: AccountId,
        number: u64,
    ) -> Result<Option<String>, sqlx::Error> {
        let mut conn = self.db().pool().acquire().await?;
        recorded_in(&mut conn, account, number).await
    }

    /// Dead-letters a conflict and, when it has a trace, emits its `TransactionRejected`, in one
    /// database transaction; false when this message was dead-lettered before (a redelivery).
    pub async fn record_conflict(&self, conflict: &Conflict<'_>) -> Result<bool, sqlx::Error> {
        let mut tx = self.db().begin_write().await?;
        let new = insert_conflict(&mut tx, conflict).await?;
        tx.commit().await?;
        if new {
            self.conflict_recorded();
        }
        Ok(new)
    }

    fn conflict_recorded(&self) {
        self.parking().conflicts.fetch_add(1, Ordering::Relaxed);
        self.wake_relay();
    }
}

pub(crate) async fn recorded_in(
    conn: &mut AnyConnection,
    account: AccountId,
    number: u64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select transaction_id from ledger_entry where account_id = $1 and number = $2",
    )
    .bind(account.to_string())
    .bind(i64::try_from(number).unwrap_or(i64::MAX))
    .fetch_optional(conn)
    .await
}

/// Dead-letters `conflict` unless its message was, and emits its `TransactionRejected` when it
/// has a trace; whether it was new.
pub(crate) async fn insert_conflict(
    tx: &mut AnyConnection,
    conflict: &Conflict<'_>,
) -> Result<bool, sqlx::Error> {
    let sequence = i64::try_from(conflict.stream_sequence).unwrap_or(i64::MAX);
    let event = conflict.event;
    // The primary key makes this the one place that decides "first time": a second replica or
    // a redelivery inserts nothing (on PostgreSQL it waits for the first to commit).
    let claimed = sqlx::query(
        "insert into conflict (subject, stream_sequence, account_id, number, transaction_id, \
         recorded_at) values ($1, $2, $3, $4, $5, $6) \
         on conflict (subject, stream_sequence) do nothing",
    )
    .bind(conflict.subject)
    .bind(sequence)
    .bind(event.account_id.to_string())
    .bind(event.number.as_i64())
    .bind(event.transaction_id.to_string())
    .bind(now_millis())
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() != 1 {
        return Ok(false);
    }
    let reason = conflict.reason();
    let payload = serde_json::to_vec(&Envelope::new(event.clone())).unwrap_or_default();
    insert_dead_letter(tx, conflict.subject, sequence, &payload, &reason).await?;
    if let Publish::Outcome(trace) = conflict.publish {
        let verdict = Verdict::Rejected { reason };
        outbox::insert(tx, &verdict.event(event, trace)).await?;
    }
    Ok(true)
}
