//! The ordering decision (see `docs/ordering.md`), as a pure function of the account's state and
//! the incoming `TransactionCreated`:
//!
//! - `number <= last`: a duplicate; ack, change nothing.
//! - `number == last + 1`: the next one; apply it (or reject it for insufficient funds, which
//!   still consumes the number).
//! - `number > last + 1`: a gap; hand it back with a short, growing delay so the predecessor can
//!   arrive first, until [`OpenGaps`] says to park it (it stayed open too long, or too many gaps
//!   are open on this replica).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common_events::{
    EncodedEvent, Envelope, TraceContext, TransactionApplied, TransactionCreated, TransactionKind,
    TransactionRejected,
};
use serde::Serialize;
use service_kit::sequence::Turn;

/// What the account looks like before the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountState {
    /// The balance in minor units.
    pub balance: i64,
    /// The number of the last transaction applied or rejected.
    pub last_transaction_number: u64,
}

/// What to do with a `TransactionCreated`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Seen before: ack and change nothing.
    Duplicate,
    /// A predecessor is missing: retry later, never ack.
    Gap {
        /// The number the account waits for.
        expected: u64,
    },
    /// Its turn: the verdict consumes the number.
    Decided(Verdict),
}

/// What the account service made of a transaction whose turn it was. Either way the number is
/// consumed; the verdict is recorded in the ledger and announced by its outcome event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Applied; the balance becomes `balance_after`.
    Applied {
        /// The new balance.
        balance_after: i64,
    },
    /// Refused; the balance stays.
    Rejected {
        /// Why, for people and the transaction service.
        reason: String,
    },
}

impl Verdict {
    /// The ledger's name for it.
    pub fn outcome(&self) -> LedgerOutcome {
        match self {
            Verdict::Applied { .. } => LedgerOutcome::Applied,
            Verdict::Rejected { .. } => LedgerOutcome::Rejected,
        }
    }

    /// Why it was refused, if it was.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Applied { .. } => None,
            Verdict::Rejected { reason } => Some(reason),
        }
    }

    /// The account after the verdict on transaction `number`, from `before`.
    pub fn state_after(&self, before: AccountState, number: u64) -> AccountState {
        let balance = match self {
            Verdict::Applied { balance_after } => *balance_after,
            Verdict::Rejected { .. } => before.balance,
        };
        AccountState {
            balance,
            last_transaction_number: number,
        }
    }

    /// The outcome event that announces the verdict on `created` (`TransactionApplied` or
    /// `TransactionRejected`, correlated by the transaction), continuing `trace`.
    pub fn event(&self, created: &TransactionCreated, trace: TraceContext) -> EncodedEvent {
        let correlation = created.transaction_id.0;
        match self {
            Verdict::Applied { balance_after } => Envelope::new(TransactionApplied {
                transaction_id: created.transaction_id,
                account_id: created.account_id,
                number: created.number,
                kind: created.kind,
                amount: created.amount,
                balance_after: *balance_after,
            })
            .correlated(correlation)
            .encode(Some(trace)),
            Verdict::Rejected { reason } => Envelope::new(TransactionRejected {
                transaction_id: created.transaction_id,
                account_id: created.account_id,
                number: created.number,
                kind: created.kind,
                amount: created.amount,
                reason: reason.clone(),
            })
            .correlated(correlation)
            .encode(Some(trace)),
        }
    }
}

/// A consumed number's outcome, as the ledger stores it and the API shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerOutcome {
    /// The transaction moved the balance.
    Applied,
    /// The transaction was refused; the balance stayed.
    Rejected,
}

/// An `outcome` column value that names no [`LedgerOutcome`].
#[derive(Debug, thiserror::Error)]
#[error("outcome {0:?} is not applied or rejected")]
pub struct InvalidOutcome(String);

impl LedgerOutcome {
    /// The name in the database and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerOutcome::Applied => "applied",
            LedgerOutcome::Rejected => "rejected",
        }
    }
}

impl TryFrom<String> for LedgerOutcome {
    type Error = InvalidOutcome;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "applied" => Ok(LedgerOutcome::Applied),
            "rejected" => Ok(LedgerOutcome::Rejected),
            _ => Err(InvalidOutcome(value)),
        }
    }
}

/// Decides what `event` does to an account in `state`.
pub fn decide(state: AccountState, event: &TransactionCreated) -> Decision {
    match Turn::of(state.last_transaction_number, event.number.get()) {
        Turn::Taken => Decision::Duplicate,
        Turn::Ahead { expected } => Decision::Gap { expected },
        Turn::Next => Decision::Decided(verdict(state.balance, event)),
    }
}

/// The verdict on `event` when it is its turn and the balance is `balance`.
fn verdict(balance: i64, event: &TransactionCreated) -> Verdict {
    let amount = event.amount.get();
    let after = match event.kind {
        TransactionKind::Deposit => balance.checked_add(amount),
        TransactionKind::Withdrawal => balance.checked_sub(amount),
    };
    match after {
        Some(balance_after) if balance_after >= 0 => Verdict::Applied { balance_after },
        Some(_) => Verdict::Rejected {
            reason: format!("insufficient funds: balance {balance}, withdrawal {amount}"),
        },
        None => Verdict::Rejected {
            reason: format!("balance {balance} cannot take {amount} more"),
        },
    }
}

/// How long a gap may stay open before it is parked, unless `GAP_PARK_AFTER` says otherwise.
pub const DEFAULT_GAP_PARK_AFTER: Duration = Duration::from_secs(120);
/// How many gaps a replica hands back at once before it parks new ones, unless
/// `MAX_OPEN_GAPS` says otherwise. Handed-back messages hold the consumer's in-flight slots
/// (1,024 across all replicas), so this stays well below that.
pub const DEFAULT_MAX_OPEN_GAPS: usize = 256;
/// A gap this replica has not seen for this long was settled elsewhere (another replica
/// applied or parked it) and is forgotten.
const GAP_FORGET: Duration = Duration::from_secs(30);
/// A gap seen within this long is being handed back now (its redelivery delay is at most 1 s):
/// only those count against `MAX_OPEN_GAPS`. One another replica settled stops counting soon,
/// although its first sighting is remembered for [`GAP_FORGET`].
const GAP_RECENT: Duration = Duration::from_secs(3);
/// The most gaps remembered; past it every new gap is parked.
const GAP_MEMORY: usize = 100_000;

/// When a gap stops being handed back and is parked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GapPolicy {
    /// A gap open this long is parked.
    pub park_after: Duration,
    /// With this many gaps open on this replica, a new one is parked at once.
    pub max_open: usize,
}

impl Default for GapPolicy {
    fn default() -> Self {
        Self {
            park_after: DEFAULT_GAP_PARK_AFTER,
            max_open: DEFAULT_MAX_OPEN_GAPS,
        }
    }
}

/// The gaps this replica is handing back, by stream sequence: when each was first and last
/// seen.
#[derive(Debug, Default)]
pub struct OpenGaps {
    policy: GapPolicy,
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    gaps: HashMap<u64, (Instant, Instant)>,
    pruned: Option<Instant>,
    /// How many were seen within [`GAP_RECENT`] (counted at each prune, kept up since).
    recent: usize,
}

impl OpenGaps {
    /// No gaps open yet, parked by `policy`.
    pub fn new(policy: GapPolicy) -> Self {
        Self {
            policy,
            seen: Mutex::default(),
        }
    }

    /// The policy.
    pub fn policy(&self) -> GapPolicy {
        self.policy
    }

    /// Notes that the message with stream sequence `sequence` is a gap at `now`; true when it
    /// is to be parked rather than handed back.
    pub fn should_park(&self, sequence: u64, now: Instant) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen
            .pruned
            .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1))
        {
            seen.gaps
                .retain(|_, (_, last)| now.saturating_duration_since(*last) < GAP_FORGET);
            seen.recent = seen
                .gaps
                .values()
                .filter(|(_, last)| now.saturating_duration_since(*last) < GAP_RECENT)
                .count();
            seen.pruned = Some(now);
        }
        if seen.gaps.len() >= GAP_MEMORY && !seen.gaps.contains_key(&sequence) {
            return true;
        }
        let (first, last) = match seen.gaps.get(&sequence) {
            Some(&(first, last)) => (first, Some(last)),
            None => (now, None),
        };
        if last.is_none_or(|last| now.saturating_duration_since(last) >= GAP_RECENT) {
            seen.recent += 1;
        }
        seen.gaps.insert(sequence, (first, now));
        let open_for = now.saturating_duration_since(first);
        open_for >= self.policy.park_after || seen.recent > self.policy.max_open
    }

    /// The message with stream sequence `sequence` is no longer a gap here (applied, a
    /// duplicate, parked or dead-lettered).
    pub fn closed(&self, sequence: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, last)) = seen.gaps.remove(&sequence) {
            if last.elapsed() < GAP_RECENT {
                seen.recent = seen.recent.saturating_sub(1);
            }
        }
    }

    /// How many gaps are being handed back (seen within the last few seconds).
    pub fn open(&self) -> usize {
        self.seen.lock().map_or(0, |seen| seen.recent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common_events::{AccountId, Amount, TransactionId, TransactionNumber};

    fn event(number: u64, kind: TransactionKind, amount: i64) -> TransactionCreated {
        TransactionCreated {
            transaction_id: TransactionId::new(),
            account_id: AccountId::new(),
            number: TransactionNumber::new(number).unwrap(),
            kind,
            amount: Amount::new(amount).unwrap(),
        }
    }

    fn state(balance: i64, last: u64) -> AccountState {
        AccountState {
            balance,
            last_transaction_number: last,
        }
    }

    #[test]
    fn a_number_at_or_below_last_is_a_duplicate() {
        let deposit = |n| event(n, TransactionKind::Deposit, 5);
        assert_eq!(decide(state(10, 3), &deposit(3)), Decision::Duplicate);
        assert_eq!(decide(state(10, 3), &deposit(1)), Decision::Duplicate);
    }

    #[test]
    fn the_next_number_is_applied() {
        let decision = decide(state(10, 3), &event(4, TransactionKind::Deposit, 5));
        assert_eq!(
            decision,
            Decision::Decided(Verdict::Applied { balance_after: 15 })
        );
        let decision = decide(state(10, 3), &event(4, TransactionKind::Withdrawal, 10));
        assert_eq!(
            decision,
            Decision::Decided(Verdict::Applied { balance_after: 0 })
        );
    }

    #[test]
    fn a_number_past_the_next_is_a_gap() {
        let decision = decide(state(10, 3), &event(6, TransactionKind::Deposit, 5));
        assert_eq!(decision, Decision::Gap { expected: 4 });
    }

    #[test]
    fn a_withdrawal_beyond_the_balance_is_rejected_and_consumes_its_number() {
        let decision = decide(state(10, 0), &event(1, TransactionKind::Withdrawal, 11));
        assert!(
            matches!(decision, Decision::Decided(Verdict::Rejected { reason }) if reason.contains("insufficient funds"))
        );
    }

    #[test]
    fn a_deposit_that_would_overflow_is_rejected() {
        let decision = decide(
            state(i64::MAX - 1, 0),
            &event(1, TransactionKind::Deposit, 5),
        );
        assert!(matches!(
            decision,
            Decision::Decided(Verdict::Rejected { .. })
        ));
    }

    #[test]
    fn a_gap_is_parked_once_it_stayed_open_for_the_bound() {
        let policy = GapPolicy {
            park_after: Duration::from_secs(60),
            max_open: 10,
        };
        let gaps = OpenGaps::new(policy);
        let start = Instant::now();
        assert!(!gaps.should_park(7, start));
        assert!(!gaps.should_park(7, start + Duration::from_secs(20)));
        assert!(!gaps.should_park(7, start + Duration::from_secs(40)));
        assert!(gaps.should_park(7, start + Duration::from_secs(60)));
        gaps.closed(7);
        assert_eq!(gaps.open(), 0);
    }

    #[test]
    fn past_the_most_open_gaps_new_ones_are_parked_at_once() {
        let gaps = OpenGaps::new(GapPolicy {
            park_after: Duration::from_secs(60),
            max_open: 3,
        });
        let now = Instant::now();
        for sequence in 1..=3 {
            assert!(!gaps.should_park(sequence, now), "gap {sequence}");
        }
        assert!(gaps.should_park(4, now), "the fourth open gap");
        gaps.closed(4);
        assert!(
            !gaps.should_park(2, now),
            "an open one is still handed back"
        );
        gaps.closed(1);
        assert!(!gaps.should_park(5, now), "room again");
    }

    #[test]
    fn a_gap_another_replica_settled_soon_stops_counting_against_the_limit() {
        let gaps = OpenGaps::new(GapPolicy {
            park_after: Duration::from_secs(10),
            max_open: 1,
        });
        let start = Instant::now();
        assert!(!gaps.should_park(1, start));
        // Gap 1 went to another replica and was applied there: never seen here again.
        let later = start + GAP_RECENT + Duration::from_secs(1);
        assert!(!gaps.should_park(2, later), "gap 1 no longer counts");
        assert!(gaps.should_park(3, later), "gap 2 does");
        // Gap 1's first sighting is still remembered, for its parking clock.
        assert!(gaps.should_park(1, start + Duration::from_secs(10)));
    }

    #[test]
    fn a_gap_not_seen_for_a_while_is_forgotten_and_its_clock_restarts() {
        let gaps = OpenGaps::new(GapPolicy {
            park_after: Duration::from_secs(60),
            max_open: 1,
        });
        let start = Instant::now();
        assert!(!gaps.should_park(1, start));
        // Settled by another replica: never seen here again.
        let later = start + GAP_FORGET + Duration::from_secs(1);
        assert!(
            !gaps.should_park(2, later),
            "gap 1 was forgotten, so 2 fits"
        );
        assert_eq!(gaps.open(), 1);
    }
}
