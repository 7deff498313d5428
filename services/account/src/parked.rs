//! Parking (see `docs/ordering.md`): a `TransactionCreated` whose predecessor has not arrived in
//! time, or that arrives while too many gaps are open, leaves the broker (`+TERM`) for the
//! `parked_transaction` table, so that it no longer holds one of the consumer's in-flight slots
//! and blocks every other account. It is applied from there, in number order, when its
//! predecessor is recorded: at once by the replica that records the predecessor, and by a
//! sweep every [`SWEEP_EVERY`] that catches what another replica or a crash left.
//!
//! Unparking finds conflicts too (see [`crate::conflict`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common_events::{AccountId, Amount, TransactionCreated, TransactionNumber};
use service_kit::db::now_millis;
use service_kit::metrics::{AtomicCounter, Metrics};
use sqlx::AnyConnection;
use tokio_util::sync::CancellationToken;

use crate::conflict::{insert_conflict, recorded_in, Conflict};
use crate::ordering::{decide, AccountState, Decision};
use crate::store::{record_one, Publish, Record, Store};

/// How often the sweep looks for parked transactions whose turn has come.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// The most accounts one sweep unparks (the next sweep takes the rest).
const SWEEP_ACCOUNTS: i64 = 256;
/// The most parked transactions applied in one database transaction.
const UNPARK_BATCH: usize = 64;
/// The most accounts remembered as having parked transactions (past it, gaps of the others are
/// parked by the usual rules only).
const PARKED_ACCOUNTS: usize = 10_000;

/// A `TransactionCreated` to park, with where it came from.
#[derive(Clone, Debug)]
pub struct Parked {
    /// The event.
    pub event: TransactionCreated,
    /// Whether its outcome event is published when it is applied.
    pub publish: Publish,
    /// The subject it was published on.
    pub subject: String,
    /// Its sequence in the stream.
    pub stream_sequence: u64,
}

/// What parking and conflicts came to, for `/metrics` and `/readyz`.
#[derive(Debug, Default)]
pub struct ParkingStats {
    /// Parked now (refreshed from the database by every sweep).
    pub parked_now: AtomicI64,
    /// Parked since start.
    pub parked: AtomicU64,
    /// Applied (or rejected for funds) from the parked table since start.
    pub unparked: AtomicU64,
    /// Conflicts dead-lettered since start.
    pub conflicts: AtomicU64,
    /// Events for accounts the service does not have, dead-lettered since start.
    pub unknown_account: AtomicU64,
    /// Accounts with parked transactions: their other gaps wait for the same missing
    /// predecessor, so they are parked at once, and apply in one run when it arrives.
    accounts: Mutex<HashSet<AccountId>>,
}

impl ParkingStats {
    /// Serves these counts in `metrics`: the gauge `account_parked_transactions` and the
    /// counters `account_parked_total`, `account_unparked_total`, `account_conflicts_total` and
    /// `account_unknown_account_total`.
    pub fn register(self: &Arc<Self>, metrics: &Metrics) {
        let stats = Arc::clone(self);
        metrics.gauge_fn(
            "account_parked_transactions",
            "Transactions parked in the database now, waiting for their predecessor (as of \
             the last sweep).",
            move || stats.parked_now.load(Ordering::Relaxed).max(0),
        );
        let counters: [AtomicCounter<ParkingStats>; 4] = [
            (
                "account_parked",
                "Transactions parked since start (a gap open too long, or too many open).",
                |s| &s.parked,
            ),
            (
                "account_unparked",
                "Parked transactions applied or rejected since start, once their predecessor \
                 came.",
                |s| &s.unparked,
            ),
            (
                "account_conflicts",
                "Numbers claimed by a second transaction since start: dead-lettered and \
                 rejected.",
                |s| &s.conflicts,
            ),
            (
                "account_unknown_account",
                "Events for accounts this service does not have, dead-lettered since start.",
                |s| &s.unknown_account,
            ),
        ];
        metrics.atomic_counters(self, &counters);
    }

    /// Whether `account` has parked transactions (as far as this replica knows: what it parked,
    /// and what the last sweep saw).
    pub fn has_parked(&self, account: AccountId) -> bool {
        self.accounts
            .lock()
            .is_ok_and(|accounts| accounts.contains(&account))
    }

    pub(crate) fn remember(&self, account: AccountId) {
        if let Ok(mut accounts) = self.accounts.lock() {
            if accounts.len() < PARKED_ACCOUNTS {
                accounts.insert(account);
            }
        }
    }

    fn forget(&self, account: AccountId) {
        if let Ok(mut accounts) = self.accounts.lock() {
            accounts.remove(&account);
        }
    }

    fn replace_accounts(&self, parked: HashSet<AccountId>) {
        if let Ok(mut accounts) = self.accounts.lock() {
            *accounts = parked;
        }
    }

    /// Adds the parked count to a `/readyz` body.
    pub fn readiness(&self, body: &mut serde_json::Map<String, serde_json::Value>) {
        let parked = self.parked_now.load(Ordering::Relaxed).max(0);
        body.insert("parked_transactions".into(), parked.into());
    }
}

/// What one unparking pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unparked {
    /// Applied or rejected for funds (their number consumed).
    pub recorded: u64,
    /// Dropped as duplicates of what the account already recorded.
    pub duplicates: u64,
    /// Dead-lettered as conflicts.
    pub conflicts: u64,
}

#[derive(sqlx::FromRow)]
struct ParkedRow {
    account_id: String,
    number: i64,
    transaction_id: String,
    kind: String,
    amount: i64,
    traceparent: Option<String>,
    subject: String,
    stream_sequence: i64,
}

impl ParkedRow {
    fn decode(&self) -> Result<Parked, String> {
        let event = TransactionCreated {
            transaction_id: self.transaction_id.parse().map_err(|e| format!("{e}"))?,
            account_id: self.account_id.parse().map_err(|e| format!("{e}"))?,
            number: TransactionNumber::try_from(self.number).map_err(|e| e.to_string())?,
            kind: self.kind.parse().map_err(|e| format!("{e}"))?,
            amount: Amount::new(self.amount).map_err(|e| e.to_string())?,
        };
        Ok(Parked {
            event,
            publish: Publish::from_traceparent(self.traceparent.as_deref()),
            subject: self.subject.clone(),
            stream_sequence: u64::try_from(self.stream_sequence).unwrap_or(0),
        })
    }
}

const PARKED_COLUMNS: &str = "account_id, number, transaction_id, kind, amount, traceparent, \
                              subject, stream_sequence";

impl Store {
    /// Parks `items` in one database transaction; each answer is whether it was new (a
    /// redelivered message that was parked before is not parked twice).
    pub async fn park_batch(&self, items: &[Parked]) -> Result<Vec<bool>, sqlx::Error> {
        let mut tx = self.db().begin_write().await?;
        let mut fresh = Vec::with_capacity(items.len());
        for item in items {
            let event = &item.event;
            let inserted = sqlx::query(
                "insert into parked_transaction (account_id, number, transaction_id, kind, \
                 amount, traceparent, subject, stream_sequence, parked_at) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 on conflict (account_id, number, transaction_id) do nothing",
            )
            .bind(event.account_id.to_string())
            .bind(event.number.as_i64())
            .bind(event.transaction_id.to_string())
            .bind(event.kind.as_str())
            .bind(event.amount.get())
            .bind(item.publish.traceparent())
            .bind(&item.subject)
            .bind(i64::try_from(item.stream_sequence).unwrap_or(i64::MAX))
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
            fresh.push(inserted.rows_affected() == 1);
        }
        tx.commit().await?;
        let added = fresh.iter().filter(|new| **new).count() as u64;
        let stats = self.parking();
        stats.parked.fetch_add(added, Ordering::Relaxed);
        stats.parked_now.fetch_add(added as i64, Ordering::Relaxed);
        for item in items {
            stats.remember(item.event.account_id);
        }
        Ok(fresh)
    }

    /// How many transactions are parked.
    pub async fn parked_count(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("select count(*) from parked_transaction")
            .fetch_one(self.db().pool())
            .await
    }

    /// The parked transactions of an account, in number order (for tests and people).
    pub async fn parked(&self, account: AccountId) -> Result<Vec<Parked>, sqlx::Error> {
        let sql = format!(
            "select {PARKED_COLUMNS} from parked_transaction where account_id = $1 \
             order by number, parked_at, transaction_id"
        );
        let rows: Vec<ParkedRow> = sqlx::query_as(&sql)
            .bind(account.to_string())
            .fetch_all(self.db().pool())
            .await?;
        Ok(rows.iter().filter_map(|row| row.decode().ok()).collect())
    }

    /// Applies the parked transactions of `account` whose turn has come, in number order and
    /// up to [`UNPARK_BATCH`] per database transaction, until the next number is not parked;
    /// drops the ones that turn out to be duplicates and dead-letters conflicts. `emit` writes
    /// outcome events (not in rebuilds).
    pub async fn unpark(&self, account: AccountId, emit: bool) -> Result<Unparked, sqlx::Error> {
        let mut done = Unparked::default();
        let sql = format!(
            "select {PARKED_COLUMNS} from parked_transaction where account_id = $1 \
             and number <= $2 order by number, parked_at, transaction_id limit $3"
        );
        loop {
            let Some(mut state) = self.state(account).await? else {
                return Ok(done);
            };
            let last = i64::try_from(state.last_transaction_number).unwrap_or(i64::MAX);
            let rows: Vec<ParkedRow> = sqlx::query_as(&sql)
                .bind(account.to_string())
                .bind(last.saturating_add(UNPARK_BATCH as i64))
                .bind(2 * UNPARK_BATCH as i64)
                .fetch_all(self.db().pool())
                .await?;
            if rows
                .first()
                .is_none_or(|row| row.number > last.saturating_add(1))
            {
                if rows.is_empty() {
                    self.parking().forget(account);
                }
                return Ok(done);
            }
            let mut tx = self.db().begin_write().await?;
            let mut pass = Unparked::default();
            let mut handled = Vec::new();
            let mut raced = false;
            for row in &rows {
                if row.number > last_of(state).saturating_add(1) {
                    break;
                }
                if !delete_row(&mut tx, row).await? {
                    // Another replica took this row meanwhile.
                    raced = true;
                    break;
                }
                match row.decode() {
                    Ok(mut parked) => {
                        if !emit {
                            parked.publish = Publish::Nothing;
                        }
                        match unpark_one(&mut tx, &parked, state).await? {
                            None => {
                                raced = true;
                                break;
                            }
                            Some((UnparkOutcome::Recorded, after)) => {
                                state = after;
                                pass.recorded += 1;
                            }
                            Some((UnparkOutcome::Duplicate, _)) => pass.duplicates += 1,
                            Some((UnparkOutcome::Conflict(reason), _)) => {
                                tracing::error!(%account, number = row.number, transaction = %row.transaction_id, %reason, "conflicting parked transaction dead-lettered");
                                pass.conflicts += 1;
                            }
                        }
                    }
                    Err(error) => {
                        // Only this service writes the table; a row it cannot read is kept
                        // for people as a dead letter rather than blocking the account.
                        tracing::error!(%account, number = row.number, %error, "unreadable parked row; dead-lettering it");
                        let reason = format!("unreadable parked transaction: {error}");
                        dead_letter_row(&mut tx, row, &reason).await?;
                    }
                }
                handled.push(row);
            }
            if raced {
                // Another replica recorded one of these numbers meanwhile: look again.
                tx.rollback().await?;
                continue;
            }
            if handled.is_empty() {
                tx.rollback().await?;
                return Ok(done);
            }
            tx.commit().await?;
            let stats = self.parking();
            stats
                .parked_now
                .fetch_sub(handled.len() as i64, Ordering::Relaxed);
            stats.unparked.fetch_add(pass.recorded, Ordering::Relaxed);
            stats.conflicts.fetch_add(pass.conflicts, Ordering::Relaxed);
            self.recorded();
            done.recorded += pass.recorded;
            done.duplicates += pass.duplicates;
            done.conflicts += pass.conflicts;
        }
    }

    /// Accounts with a parked transaction whose turn has come.
    async fn accounts_to_unpark(&self) -> Result<Vec<AccountId>, sqlx::Error> {
        let ids: Vec<String> = sqlx::query_scalar(
            "select distinct p.account_id from parked_transaction p \
             join account a on a.id = p.account_id \
             where p.number <= a.last_transaction_number + 1 limit $1",
        )
        .bind(SWEEP_ACCOUNTS)
        .fetch_all(self.db().pool())
        .await?;
        Ok(ids.iter().filter_map(|id| id.parse().ok()).collect())
    }

    /// One sweep: refreshes the parked count and unparks every account whose turn has come.
    pub async fn sweep_parked(&self, emit: bool) -> Result<Unparked, sqlx::Error> {
        let parked = self.parked_count().await?;
        self.parking().parked_now.store(parked, Ordering::Relaxed);
        let mut total = Unparked::default();
        if parked == 0 {
            self.parking().replace_accounts(HashSet::new());
            return Ok(total);
        }
        let accounts: Vec<String> =
            sqlx::query_scalar("select distinct account_id from parked_transaction limit $1")
                .bind(PARKED_ACCOUNTS as i64)
                .fetch_all(self.db().pool())
                .await?;
        let accounts = accounts.iter().filter_map(|id| id.parse().ok()).collect();
        self.parking().replace_accounts(accounts);
        for account in self.accounts_to_unpark().await? {
            let done = self.unpark(account, emit).await?;
            total.recorded += done.recorded;
            total.duplicates += done.duplicates;
            total.conflicts += done.conflicts;
        }
        if total.recorded > 0 {
            tracing::info!(?total, "sweep applied parked transactions");
        }
        Ok(total)
    }
}

/// Runs [`Store::sweep_parked`] every [`SWEEP_EVERY`] until `stop` is cancelled.
pub async fn sweep(store: Store, stop: CancellationToken) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Err(err) = store.sweep_parked(true).await {
            tracing::warn!(error = %err, "sweeping parked transactions failed; trying again");
        }
    }
}

enum UnparkOutcome {
    Recorded,
    Duplicate,
    Conflict(String),
}

fn last_of(state: AccountState) -> i64 {
    i64::try_from(state.last_transaction_number).unwrap_or(i64::MAX)
}

/// Handles one parked transaction in `tx`, the account being in `state`: what it came to and
/// the account's state after it; `None` when the account moved on meanwhile.
async fn unpark_one(
    tx: &mut AnyConnection,
    parked: &Parked,
    state: AccountState,
) -> Result<Option<(UnparkOutcome, AccountState)>, sqlx::Error> {
    let event = &parked.event;
    let verdict = match decide(state, event) {
        Decision::Duplicate => {
            let recorded = recorded_in(tx, event.account_id, event.number.get()).await?;
            let outcome = match recorded {
                Some(recorded) if recorded != event.transaction_id.to_string() => {
                    let conflict = Conflict {
                        event,
                        recorded: &recorded,
                        subject: &parked.subject,
                        stream_sequence: parked.stream_sequence,
                        publish: parked.publish,
                    };
                    if insert_conflict(tx, &conflict).await? {
                        UnparkOutcome::Conflict(conflict.reason())
                    } else {
                        UnparkOutcome::Duplicate
                    }
                }
                _ => UnparkOutcome::Duplicate,
            };
            return Ok(Some((outcome, state)));
        }
        // Unparking only looks at numbers up to the next one.
        Decision::Gap { .. } => return Ok(None),
        Decision::Decided(verdict) => verdict,
    };
    let after = verdict.state_after(state, event.number.get());
    let record = Record {
        event: event.clone(),
        verdict,
        state,
        publish: parked.publish,
    };
    Ok(record_one(tx, &record)
        .await?
        .then_some((UnparkOutcome::Recorded, after)))
}

async fn dead_letter_row(
    tx: &mut AnyConnection,
    row: &ParkedRow,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let payload = format!(
        "parked row: account {} number {} transaction {} kind {} amount {}",
        row.account_id, row.number, row.transaction_id, row.kind, row.amount
    );
    insert_dead_letter(
        tx,
        &row.subject,
        row.stream_sequence,
        payload.as_bytes(),
        reason,
    )
    .await
}

/// Inserts one dead letter.
pub(crate) async fn insert_dead_letter(
    conn: &mut AnyConnection,
    subject: &str,
    stream_sequence: i64,
    payload: &[u8],
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into dead_letter (subject, stream_sequence, payload, reason, created_at) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(subject)
    .bind(stream_sequence)
    .bind(payload.to_vec())
    // A reason may quote the bad input; PostgreSQL refuses a NUL in text.
    .bind(reason.replace('\0', "\\0"))
    .bind(now_millis())
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a parked row; false when it was gone (another replica unparked it).
async fn delete_row(tx: &mut AnyConnection, row: &ParkedRow) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query(
        "delete from parked_transaction where account_id = $1 and number = $2 \
         and transaction_id = $3",
    )
    .bind(&row.account_id)
    .bind(row.number)
    .bind(&row.transaction_id)
    .execute(tx)
    .await?;
    Ok(deleted.rows_affected() == 1)
}
