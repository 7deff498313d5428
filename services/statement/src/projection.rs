//! The projection: what each event does to the statements.
//!
//! `AccountOpened` opens an empty statement. `TransactionApplied` and `TransactionRejected` each
//! claim one number of their account's sequence, and [`decide`] says what a claim does, by the
//! same protocol as the account service (`docs/ordering.md`):
//!
//! - the account's statement is not open yet (its `AccountOpened` is on another stream and may
//!   come later): wait, the message handed back with a growing delay;
//! - the number is `last_transaction_number + 1`: record its line; an applied one moves the
//!   running balance, a rejected one keeps it and shows the reason;
//! - the number is further ahead: wait the same way until its predecessors are in;
//! - the number is at or below the last: taken before; a duplicate when the line under that
//!   number is this transaction, else a **conflict**;
//! - a rejection whose reason starts with [`CONFLICT_PREFIX`] is the account service refusing a
//!   second claim on a number another transaction holds: it consumed no number and moved no
//!   money, so it is no line of the statement either, whenever it arrives.
//!
//! A conflict is acked, counted (`statement_conflicts_total`) and logged; the statement keeps
//! the line of the transaction that holds the number, as the account's ledger does.
//!
//! An applied event says the balance after it; the running balance must equal it. When it does
//! not (a bug on one side), the line keeps the statement's own running balance, so a statement
//! always adds up, and `statement_balance_mismatches_total` and an error log surface it.
//!
//! A line and the account's new `last_transaction_number` are written in one database
//! transaction, by a conditional update (`… where last_transaction_number = number - 1`), before
//! the message is acked: a crash before the commit redelivers the message, one after it makes
//! the redelivery a duplicate, and two replicas that take the same number cannot both record
//! it.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common_events::{
    AccountId, AccountOpened, Envelope, Event, TransactionApplied, TransactionId, TransactionKind,
    TransactionNumber, TransactionRejected,
};
use service_kit::log_limit::LogLimiter;
use service_kit::metrics::Metrics;
use service_kit::sequence::{wait_before_retry, Turn};
use service_kit::{Listener, MessageContext, Outcome};

use crate::store::Store;

/// How a rejection's reason starts when the account service refused a second claim on a number
/// (`docs/ordering.md`, "conflicts").
pub const CONFLICT_PREFIX: &str = "conflict:";

/// How long a message waits before a retry after a database error.
const RETRY_AFTER_ERROR: Duration = Duration::from_millis(500);
/// How long a message waits when another replica took its number first (it comes back as a
/// duplicate).
const RETRY_AFTER_RACE: Duration = Duration::from_millis(5);

/// A statement's running state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountState {
    /// The running balance, in minor units.
    pub balance: i64,
    /// The last number of the account's sequence with a line.
    pub last_transaction_number: u64,
}

/// What happened to a claimed number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Applied; the account service says the balance became this.
    Applied {
        /// `balance_after` from the event.
        reported_balance: i64,
    },
    /// Rejected for this reason; the balance stays.
    Rejected {
        /// Why, from the event.
        reason: String,
    },
}

/// An event that claims one number of an account's sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The account.
    pub account_id: AccountId,
    /// The transaction.
    pub transaction_id: TransactionId,
    /// Its number in the account's sequence (1 to 2^63 - 1: a number outside that does not
    /// decode, and the runner terminates the message before it gets here).
    pub number: TransactionNumber,
    /// Deposit or withdrawal.
    pub kind: TransactionKind,
    /// Minor units.
    pub amount: i64,
    /// Applied or rejected.
    pub effect: Effect,
    /// When the account service decided it, in milliseconds since the Unix epoch.
    pub occurred_at: i64,
}

impl Claim {
    /// The account service's refusal of a second claim on a taken number: no line.
    pub fn is_conflict_rejection(&self) -> bool {
        matches!(&self.effect, Effect::Rejected { reason } if reason.starts_with(CONFLICT_PREFIX))
    }
}

/// What a claim does to the statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A conflict rejection: no line; ack and count.
    ConflictRejection,
    /// The statement is not open yet: wait.
    UnknownAccount,
    /// Its predecessors are not in yet: wait.
    Ahead {
        /// The number the statement waits for.
        expected: u64,
    },
    /// Taken before: a duplicate or a conflict, by the line under that number.
    Taken,
    /// The next number: record its line with this running balance.
    Record {
        /// The balance after the line.
        balance_after: i64,
        /// The balance the event reported, when it differs from the running balance.
        mismatch: Option<i64>,
    },
}

/// Decides what `claim` does to a statement in `state` (`None`: not open yet).
pub fn decide(state: Option<AccountState>, claim: &Claim) -> Decision {
    if claim.is_conflict_rejection() {
        return Decision::ConflictRejection;
    }
    let Some(state) = state else {
        return Decision::UnknownAccount;
    };
    match Turn::of(state.last_transaction_number, claim.number.get()) {
        Turn::Taken => Decision::Taken,
        Turn::Ahead { expected } => Decision::Ahead { expected },
        Turn::Next => match &claim.effect {
            Effect::Rejected { .. } => Decision::Record {
                balance_after: state.balance,
                mismatch: None,
            },
            Effect::Applied { reported_balance } => {
                let running = match claim.kind {
                    TransactionKind::Deposit => state.balance.checked_add(claim.amount),
                    TransactionKind::Withdrawal => state.balance.checked_sub(claim.amount),
                };
                Decision::Record {
                    balance_after: running.unwrap_or(*reported_balance),
                    mismatch: (running != Some(*reported_balance)).then_some(*reported_balance),
                }
            }
        },
    }
}

/// The projection's own counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct ProjectionStats {
    /// Claims on a number another transaction holds.
    pub conflicts: AtomicU64,
    /// Applied events whose `balance_after` differed from the running balance.
    pub mismatches: AtomicU64,
    conflict_logs: LogLimiter,
    mismatch_logs: LogLimiter,
}

impl ProjectionStats {
    /// Serves these counts in `metrics`: `statement_conflicts_total` and
    /// `statement_balance_mismatches_total`.
    pub fn register(self: &Arc<Self>, metrics: &Metrics) {
        let stats = Arc::clone(self);
        metrics.counter_fn(
            "statement_conflicts",
            "Claims on a transaction number another transaction already holds (acked, kept \
             out of the statement).",
            move || stats.conflicts.load(Ordering::Relaxed),
        );
        let stats = Arc::clone(self);
        metrics.counter_fn(
            "statement_balance_mismatches",
            "Applied events whose balance_after differed from the statement's running balance.",
            move || stats.mismatches.load(Ordering::Relaxed),
        );
    }

    fn conflict(&self, claim: &Claim, holder: Option<&str>) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
        if let Some(suppressed) = self.conflict_logs.allow() {
            tracing::warn!(
                account = %claim.account_id,
                number = claim.number.get(),
                transaction = %claim.transaction_id,
                holder = holder.unwrap_or("none"),
                suppressed,
                "a claim on a number another transaction holds: no line"
            );
        }
    }

    fn mismatch(&self, claim: &Claim, running: i64, reported: i64) {
        self.mismatches.fetch_add(1, Ordering::Relaxed);
        if let Some(suppressed) = self.mismatch_logs.allow() {
            tracing::error!(
                account = %claim.account_id,
                number = claim.number.get(),
                transaction = %claim.transaction_id,
                running,
                reported,
                suppressed,
                "the running balance differs from the balance the account service reported"
            );
        }
    }
}

/// Opens a statement for each `AccountOpened`.
pub struct OpenedListener {
    store: Store,
}

impl OpenedListener {
    /// Over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl Listener for OpenedListener {
    type Event = AccountOpened;

    fn name(&self) -> &'static str {
        "accounts-opened"
    }

    async fn on_message(&self, event: Envelope<AccountOpened>, _: MessageContext) -> Outcome {
        let opened_at = event.occurred_at.timestamp_millis();
        let data = &event.data;
        match self
            .store
            .open(data.account_id, &data.owner, opened_at)
            .await
        {
            Ok(()) => Outcome::Ack,
            Err(err) => {
                tracing::warn!(error = %err, account = %data.account_id, "opening a statement failed; retrying");
                Outcome::Retry(RETRY_AFTER_ERROR)
            }
        }
    }
}

/// An event that claims a number: the claim it makes, and its listener's name.
pub trait Claims: Event {
    /// The listener's name in logs and metrics.
    const LISTENER: &'static str;
    /// The claim `event` makes.
    fn claim(event: &Envelope<Self>) -> Claim;
}

/// Implements [`Claims`] for an outcome event, whose fields are alike but for the effect.
macro_rules! claims {
    ($event:ty, $listener:literal, |$data:ident| $effect:expr) => {
        impl Claims for $event {
            const LISTENER: &'static str = $listener;
            fn claim(event: &Envelope<Self>) -> Claim {
                let $data = &event.data;
                Claim {
                    account_id: $data.account_id,
                    transaction_id: $data.transaction_id,
                    number: $data.number,
                    kind: $data.kind,
                    amount: $data.amount.get(),
                    effect: $effect,
                    occurred_at: event.occurred_at.timestamp_millis(),
                }
            }
        }
    };
}

claims!(TransactionApplied, "transactions-applied", |data| {
    Effect::Applied {
        reported_balance: data.balance_after,
    }
});
claims!(TransactionRejected, "transactions-rejected", |data| {
    Effect::Rejected {
        reason: data.reason.clone(),
    }
});

/// Records the lines of one event type.
pub struct ClaimListener<E> {
    store: Store,
    stats: Arc<ProjectionStats>,
    event: PhantomData<fn() -> E>,
}

/// The `TransactionApplied` listener.
pub type AppliedListener = ClaimListener<TransactionApplied>;
/// The `TransactionRejected` listener.
pub type RejectedListener = ClaimListener<TransactionRejected>;

impl<E: Claims> ClaimListener<E> {
    /// Over `store`, counting into `stats`.
    pub fn new(store: Store, stats: Arc<ProjectionStats>) -> Self {
        Self {
            store,
            stats,
            event: PhantomData,
        }
    }

    /// The outcome of one delivery and its decision label (for
    /// `listener_handle_duration_seconds{decision}`).
    async fn handle(
        &self,
        claim: &Claim,
        delivered: i64,
    ) -> Result<(Outcome, &'static str), sqlx::Error> {
        let state = self.store.state(claim.account_id).await?;
        let wait = Outcome::Retry(wait_before_retry(delivered));
        match decide(state, claim) {
            Decision::ConflictRejection => {
                self.stats.conflict(claim, None);
                Ok((Outcome::Ack, "conflict"))
            }
            Decision::UnknownAccount => Ok((wait, "unknown_account")),
            Decision::Ahead { .. } => Ok((wait, "gap")),
            Decision::Taken => {
                let holder = self.store.holder(claim.account_id, claim.number).await?;
                if holder.as_deref() != Some(claim.transaction_id.to_string().as_str()) {
                    self.stats.conflict(claim, holder.as_deref());
                    return Ok((Outcome::Ack, "conflict"));
                }
                Ok((Outcome::Ack, "duplicate"))
            }
            Decision::Record {
                balance_after,
                mismatch,
            } => {
                if let Some(reported) = mismatch {
                    self.stats.mismatch(claim, balance_after, reported);
                }
                if self.store.record(claim, balance_after).await? {
                    Ok((Outcome::Ack, "recorded"))
                } else {
                    Ok((Outcome::Retry(RETRY_AFTER_RACE), "race"))
                }
            }
        }
    }
}

impl<E: Claims> Listener for ClaimListener<E> {
    type Event = E;

    fn name(&self) -> &'static str {
        E::LISTENER
    }

    async fn on_message(&self, event: Envelope<E>, context: MessageContext) -> Outcome {
        let claim = E::claim(&event);
        match self.handle(&claim, context.delivered).await {
            Ok((outcome, decision)) => {
                context.decision.record(decision);
                outcome
            }
            Err(err) => {
                context.decision.record("error");
                tracing::warn!(error = %err, account = %claim.account_id, number = claim.number.get(), "recording a line failed; retrying");
                Outcome::Retry(RETRY_AFTER_ERROR)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(number: u64, kind: TransactionKind, amount: i64, effect: Effect) -> Claim {
        Claim {
            account_id: AccountId::new(),
            transaction_id: TransactionId::new(),
            number: TransactionNumber::new(number).unwrap(),
            kind,
            amount,
            effect,
            occurred_at: 0,
        }
    }

    fn applied(number: u64, kind: TransactionKind, amount: i64, reported: i64) -> Claim {
        let effect = Effect::Applied {
            reported_balance: reported,
        };
        claim(number, kind, amount, effect)
    }

    fn rejected(number: u64, reason: &str) -> Claim {
        let effect = Effect::Rejected {
            reason: reason.to_owned(),
        };
        claim(number, TransactionKind::Withdrawal, 50, effect)
    }

    fn record(balance_after: i64, mismatch: Option<i64>) -> Decision {
        Decision::Record {
            balance_after,
            mismatch,
        }
    }

    const AT_2_WITH_100: Option<AccountState> = Some(AccountState {
        balance: 100,
        last_transaction_number: 2,
    });

    #[test]
    fn the_next_applied_number_moves_the_running_balance() {
        let deposit = applied(3, TransactionKind::Deposit, 20, 120);
        let expected = record(120, None);
        assert_eq!(decide(AT_2_WITH_100, &deposit), expected);
        let withdrawal = applied(3, TransactionKind::Withdrawal, 30, 70);
        let expected = record(70, None);
        assert_eq!(decide(AT_2_WITH_100, &withdrawal), expected);
    }

    #[test]
    fn the_next_rejected_number_keeps_the_balance() {
        let refused = rejected(3, "insufficient funds: balance 100, withdrawal 150");
        let expected = record(100, None);
        assert_eq!(decide(AT_2_WITH_100, &refused), expected);
    }

    #[test]
    fn a_reported_balance_that_differs_is_a_mismatch_and_the_running_balance_stays() {
        let deposit = applied(3, TransactionKind::Deposit, 20, 999);
        let expected = record(120, Some(999));
        assert_eq!(decide(AT_2_WITH_100, &deposit), expected);
        let full = Some(AccountState {
            balance: i64::MAX,
            last_transaction_number: 0,
        });
        let overflow = applied(1, TransactionKind::Deposit, 1, 5);
        let expected = record(5, Some(5));
        assert_eq!(decide(full, &overflow), expected);
    }

    #[test]
    fn numbers_at_or_below_the_last_are_taken_and_further_ones_wait() {
        for number in [1, 2] {
            let again = applied(number, TransactionKind::Deposit, 1, 1);
            assert_eq!(decide(AT_2_WITH_100, &again), Decision::Taken);
        }
        let ahead = applied(5, TransactionKind::Deposit, 1, 1);
        assert_eq!(
            decide(AT_2_WITH_100, &ahead),
            Decision::Ahead { expected: 3 }
        );
        assert_eq!(decide(None, &ahead), Decision::UnknownAccount);
    }

    #[test]
    fn a_conflict_rejection_is_never_a_line_whatever_its_number() {
        for number in [1, 3, 9] {
            let conflict = rejected(
                number,
                "conflict: number 3 of account a is already transaction t",
            );
            assert_eq!(
                decide(AT_2_WITH_100, &conflict),
                Decision::ConflictRejection
            );
            assert_eq!(decide(None, &conflict), Decision::ConflictRejection);
        }
    }
}
