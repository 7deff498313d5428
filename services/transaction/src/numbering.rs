//! Each account's sequence of transaction numbers. The service learns an account from
//! `AccountOpened` with `last_transaction_number` 0; every transaction created for it takes the
//! next number, in the same database transaction as the transaction's row and its outbox event,
//! so numbers have no gaps and no repeats whatever crashes.

use std::collections::HashMap;

use common_events::{AccountId, TransactionNumber};
use service_kit::bulk;
use service_kit::db::now_millis;
use sqlx::AnyConnection;

/// Records an account, with no number handed out yet; a repeat changes nothing.
pub async fn open_account(conn: &mut AnyConnection, id: AccountId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into account (id, last_transaction_number, opened_at) values ($1, 0, $2) \
         on conflict (id) do nothing",
    )
    .bind(id.to_string())
    .bind(now_millis())
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the account's next number; `None` when the account is unknown. On PostgreSQL a
/// concurrent taker of the same account's number waits here until the other transaction ends.
pub async fn next_number(
    conn: &mut AnyConnection,
    account: AccountId,
) -> Result<Option<TransactionNumber>, sqlx::Error> {
    let number: Option<i64> = sqlx::query_scalar(
        "update account set last_transaction_number = last_transaction_number + 1 \
         where id = $1 returning last_transaction_number",
    )
    .bind(account.to_string())
    .fetch_optional(conn)
    .await?;
    number
        .map(|n| TransactionNumber::try_from(n).map_err(|err| sqlx::Error::Decode(err.into())))
        .transpose()
}

/// Takes `count` numbers for each account of `counts` (each account once), in one statement per
/// [`bulk::runs`] run; the account's last number after it, by account. Accounts missing from the
/// answer are unknown.
pub async fn take_numbers(
    conn: &mut AnyConnection,
    counts: &[(AccountId, i64)],
) -> Result<HashMap<AccountId, i64>, sqlx::Error> {
    let mut last = HashMap::with_capacity(counts.len());
    for run in bulk::runs(counts.len()) {
        let sql = format!(
            "with v (v_id, v_count) as (values {}) \
             update account set last_transaction_number = last_transaction_number + v.v_count \
             from v where id = v.v_id returning id, last_transaction_number",
            bulk::values(run.len(), 2)
        );
        let mut query = sqlx::query_as::<_, (String, i64)>(&sql);
        for (account, count) in &counts[run] {
            query = query.bind(account.to_string()).bind(*count);
        }
        for (id, number) in query.fetch_all(&mut *conn).await? {
            let account = id
                .parse()
                .map_err(|err: uuid::Error| sqlx::Error::Decode(err.into()))?;
            last.insert(account, number);
        }
    }
    Ok(last)
}
