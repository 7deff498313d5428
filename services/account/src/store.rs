//! The account service's database: accounts (the projection), the ledger of consumed numbers,
//! dead letters, the outbox, and parked transactions (see [`crate::parked`]).

use common_events::{AccountId, AccountOpened, Envelope, TraceContext, TransactionCreated};
use serde::Serialize;
use service_kit::bulk;
use service_kit::db::{now_millis, Db};
use service_kit::outbox::{self, Relay};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::Notify;

use crate::ordering::{AccountState, LedgerOutcome, Verdict};
use crate::parked::{insert_dead_letter, ParkingStats};

/// An account as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Account {
    /// Its id.
    pub id: String,
    /// Who owns it.
    pub owner: String,
    /// Minor units.
    pub balance: i64,
    /// The last transaction number applied or rejected.
    pub last_transaction_number: i64,
}

/// One consumed transaction number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct LedgerEntry {
    /// Its number in the account's sequence.
    pub number: i64,
    /// The transaction.
    pub transaction_id: String,
    /// `deposit` or `withdrawal`.
    pub kind: String,
    /// Minor units.
    pub amount: i64,
    /// Applied or rejected.
    #[sqlx(try_from = "String")]
    pub outcome: LedgerOutcome,
    /// The balance after it.
    pub balance_after: i64,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Whether recording a verdict also writes its outcome event to the outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Publish {
    /// Write the outcome event, continuing this trace (the live service).
    Outcome(TraceContext),
    /// Record only: a rebuild replays what was announced before.
    Nothing,
}

impl Publish {
    /// How it is stored beside a parked transaction: the trace, or nothing.
    pub fn traceparent(self) -> Option<String> {
        match self {
            Publish::Outcome(trace) => Some(trace.to_string()),
            Publish::Nothing => None,
        }
    }

    /// Read back from [`Publish::traceparent`]; a stored trace that no longer parses still
    /// publishes, under a new trace.
    pub fn from_traceparent(stored: Option<&str>) -> Self {
        match stored {
            Some(value) => {
                Publish::Outcome(TraceContext::parse(value).unwrap_or_else(TraceContext::new_root))
            }
            None => Publish::Nothing,
        }
    }
}

/// One decided transaction to record.
#[derive(Clone, Debug)]
pub struct Record {
    /// The event.
    pub event: TransactionCreated,
    /// What the ordering decision made of it.
    pub verdict: Verdict,
    /// The account's state the decision was made on.
    pub state: AccountState,
    /// Whether its outcome event is published.
    pub publish: Publish,
}

/// A cheap-to-clone handle over the database and the outbox relay.
#[derive(Clone)]
pub struct Store {
    db: Db,
    relay: Relay,
    progress: Arc<Notify>,
    parking: Arc<ParkingStats>,
}

const ACCOUNT_COLUMNS: &str = "id, owner, balance, last_transaction_number";

impl Store {
    /// A store over `db` whose commits wake `relay`.
    pub fn new(db: Db, relay: Relay) -> Self {
        Self {
            db,
            relay,
            progress: Arc::default(),
            parking: Arc::default(),
        }
    }

    /// Parking and conflict counters.
    pub fn parking(&self) -> &Arc<ParkingStats> {
        &self.parking
    }

    /// Wakes the outbox relay after a commit that wrote events.
    pub(crate) fn wake_relay(&self) {
        self.relay.wake();
    }

    /// After a commit that recorded transactions: wakes the relay and the handlers waiting for
    /// a predecessor.
    pub(crate) fn recorded(&self) {
        self.relay.wake();
        self.progress.notify_waiters();
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Notified whenever this process records a transaction (for handlers waiting on a gap).
    pub fn progress(&self) -> &Notify {
        &self.progress
    }

    /// Opens an account and writes its `AccountOpened` to the outbox, in one transaction.
    pub async fn open(&self, owner: &str, trace: TraceContext) -> Result<Account, sqlx::Error> {
        let id = AccountId::new();
        let mut tx = self.db.begin_write().await?;
        insert_account(&mut tx, id, owner, now_millis()).await?;
        let event = Envelope::new(AccountOpened {
            account_id: id,
            owner: owner.to_owned(),
        })
        .correlated(id.0);
        outbox::insert(&mut tx, &event.encode(Some(trace))).await?;
        tx.commit().await?;
        self.relay.wake();
        Ok(Account {
            id: id.to_string(),
            owner: owner.to_owned(),
            balance: 0,
            last_transaction_number: 0,
        })
    }

    /// Adds an account from a replayed `AccountOpened` unless it exists (rebuilds).
    pub async fn restore(&self, event: &Envelope<AccountOpened>) -> Result<(), sqlx::Error> {
        let data = &event.data;
        let created = event.occurred_at.timestamp_millis();
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "insert into account (id, owner, balance, last_transaction_number, created_at) \
             values ($1, $2, 0, 0, $3) on conflict (id) do nothing",
        )
        .bind(data.account_id.to_string())
        .bind(&data.owner)
        .bind(created)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// One account.
    pub async fn get(&self, id: AccountId) -> Result<Option<Account>, sqlx::Error> {
        let sql = format!("select {ACCOUNT_COLUMNS} from account where id = $1");
        sqlx::query_as(&sql)
            .bind(id.to_string())
            .fetch_optional(self.db.pool())
            .await
    }

    /// Accounts with ids above `after`, in id order, at most `limit`.
    pub async fn list(&self, after: &str, limit: i64) -> Result<Vec<Account>, sqlx::Error> {
        let sql =
            format!("select {ACCOUNT_COLUMNS} from account where id > $1 order by id limit $2");
        sqlx::query_as(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(self.db.pool())
            .await
    }

    /// An account's ledger with numbers above `after`, in number order, at most `limit`.
    pub async fn ledger(
        &self,
        id: AccountId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<LedgerEntry>, sqlx::Error> {
        sqlx::query_as(
            "select number, transaction_id, kind, amount, outcome, balance_after, reason \
             from ledger_entry where account_id = $1 and number > $2 order by number limit $3",
        )
        .bind(id.to_string())
        .bind(after)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await
    }

    /// How many accounts exist.
    pub async fn account_count(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("select count(*) from account")
            .fetch_one(self.db.pool())
            .await
    }

    /// The balance and last number of an account, if it exists.
    pub async fn state(&self, id: AccountId) -> Result<Option<AccountState>, sqlx::Error> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("select balance, last_transaction_number from account where id = $1")
                .bind(id.to_string())
                .fetch_optional(self.db.pool())
                .await?;
        Ok(row.map(|(balance, last)| AccountState {
            balance,
            last_transaction_number: u64::try_from(last).unwrap_or(0),
        }))
    }

    /// Records a batch in one database transaction (group commit). For each record: a
    /// conditional update of the account (`… where last_transaction_number = number - 1`), its
    /// ledger entry and, when it has a trace, the resulting event in the outbox. Each answer is
    /// false, that record changing nothing, when its account moved on meanwhile (another replica
    /// got there first). The batch takes a few multi-row statements, not three per record.
    pub async fn record_batch(&self, records: &[Record]) -> Result<Vec<bool>, sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        let done = record_many(&mut tx, records).await?;
        tx.commit().await?;
        if done.contains(&true) {
            self.recorded();
        }
        Ok(done)
    }

    /// Keeps a message that cannot be processed, for people to look at.
    pub async fn dead_letter(
        &self,
        subject: &str,
        stream_sequence: u64,
        payload: &[u8],
        reason: &str,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        let sequence = i64::try_from(stream_sequence).unwrap_or(i64::MAX);
        insert_dead_letter(&mut tx, subject, sequence, payload, reason).await?;
        tx.commit().await
    }

    /// How many dead letters there are.
    pub async fn dead_letter_count(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("select count(*) from dead_letter")
            .fetch_one(self.db.pool())
            .await
    }
}

/// Records `records` in `conn`'s database transaction, as [`record_one`] would one after the
/// other: each answer is false, that record changing nothing, when its account had moved on.
/// The account updates go in rounds with each account at most once, since a record's condition
/// depends on the ones before it of the same account; a batch nearly always has one round.
pub(crate) async fn record_many(
    conn: &mut sqlx::AnyConnection,
    records: &[Record],
) -> Result<Vec<bool>, sqlx::Error> {
    let mut done = vec![false; records.len()];
    let mut left: Vec<usize> = (0..records.len()).collect();
    while !left.is_empty() {
        let mut accounts = HashSet::new();
        let (round, later): (Vec<usize>, Vec<usize>) = left
            .iter()
            .partition(|&&i| accounts.insert(records[i].event.account_id));
        for run in bulk::runs(round.len()) {
            let run = &round[run];
            let changed = update_accounts(conn, run.iter().map(|&i| &records[i])).await?;
            for &i in run {
                done[i] = changed.contains(&records[i].event.account_id.to_string());
            }
        }
        left = later;
    }
    let recorded: Vec<&Record> = records
        .iter()
        .zip(&done)
        .filter_map(|(record, done)| done.then_some(record))
        .collect();
    insert_entries(conn, &recorded).await?;
    let events: Vec<_> = recorded
        .iter()
        .filter_map(|record| match record.publish {
            Publish::Outcome(trace) => Some(record.verdict.event(&record.event, trace)),
            Publish::Nothing => None,
        })
        .collect();
    outbox::insert_many(conn, &events).await?;
    Ok(done)
}

/// The conditional updates of `records` (each of another account) in one statement; the ids of
/// the accounts it changed.
async fn update_accounts(
    conn: &mut sqlx::AnyConnection,
    records: impl ExactSizeIterator<Item = &Record>,
) -> Result<HashSet<String>, sqlx::Error> {
    let sql = format!(
        "with v (v_id, v_balance, v_last, v_expected) as (values {}) \
         update account set balance = v.v_balance, last_transaction_number = v.v_last \
         from v where id = v.v_id and last_transaction_number = v.v_expected returning id",
        bulk::values(records.len(), 4)
    );
    let mut query = sqlx::query_scalar(&sql);
    for record in records {
        let event = &record.event;
        let after = record.verdict.state_after(record.state, event.number.get());
        let number = event.number.as_i64();
        query = query
            .bind(event.account_id.to_string())
            .bind(after.balance)
            .bind(number)
            .bind(number - 1);
    }
    let changed: Vec<String> = query.fetch_all(conn).await?;
    Ok(changed.into_iter().collect())
}

/// The ledger entries of `records` (all recorded), in as few statements as [`bulk::runs`]
/// allows.
async fn insert_entries(
    conn: &mut sqlx::AnyConnection,
    records: &[&Record],
) -> Result<(), sqlx::Error> {
    let now = now_millis();
    let into = "ledger_entry (account_id, number, transaction_id, kind, amount, outcome, \
                balance_after, reason, recorded_at)";
    bulk::insert(conn, into, 9, records, |query, record| {
        let event = &record.event;
        let after = record.verdict.state_after(record.state, event.number.get());
        query
            .bind(event.account_id.to_string())
            .bind(event.number.as_i64())
            .bind(event.transaction_id.to_string())
            .bind(event.kind.as_str())
            .bind(event.amount.get())
            .bind(record.verdict.outcome().as_str())
            .bind(after.balance)
            .bind(record.verdict.reason())
            .bind(now)
    })
    .await
}

/// Records one decided transaction in `conn`'s database transaction; false, changing nothing,
/// when its account moved on meanwhile.
pub(crate) async fn record_one(
    conn: &mut sqlx::AnyConnection,
    record: &Record,
) -> Result<bool, sqlx::Error> {
    let done = record_many(conn, std::slice::from_ref(record)).await?;
    Ok(done.first().copied().unwrap_or(false))
}

async fn insert_account(
    conn: &mut sqlx::AnyConnection,
    id: AccountId,
    owner: &str,
    created_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into account (id, owner, balance, last_transaction_number, created_at) \
         values ($1, $2, 0, 0, $3)",
    )
    .bind(id.to_string())
    .bind(owner)
    .bind(created_at)
    .execute(conn)
    .await?;
    Ok(())
}
