//! The ordering decision (see `docs/ordering.md`), as a pure function of the account's state and
//! the incoming `TransactionCreated`:
//!
//! - `number <= last`: a duplicate; ack, change nothing.
//! - `number == last + 1`: the next one; apply it (or reject it for insufficient funds, which
//!   still consumes the number).
//! - `number > last + 1`: a gap; hand it back with a short, growing delay so the predecessor can
//!   arrive first.

use std::time::Duration;

use common_events::{TransactionCreated, TransactionKind};

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
    /// The next number and the balance allows it.
    Apply {
        /// The balance after it.
        balance_after: i64,
    },
    /// The next number, refused; it consumes the number and leaves the balance.
    Reject {
        /// Why, for people.
        reason: String,
    },
}

/// Decides what `event` does to an account in `state`.
pub fn decide(state: AccountState, event: &TransactionCreated) -> Decision {
    let last = state.last_transaction_number;
    if event.number <= last {
        return Decision::Duplicate;
    }
    if event.number > last + 1 {
        return Decision::Gap { expected: last + 1 };
    }
    let amount = event.amount.get();
    let after = match event.kind {
        TransactionKind::Deposit => state.balance.checked_add(amount),
        TransactionKind::Withdrawal => state.balance.checked_sub(amount),
    };
    match after {
        Some(balance_after) if balance_after >= 0 => Decision::Apply { balance_after },
        Some(_) => Decision::Reject {
            reason: format!(
                "insufficient funds: balance {}, withdrawal {amount}",
                state.balance
            ),
        },
        None => Decision::Reject {
            reason: format!("balance {} cannot take {amount} more", state.balance),
        },
    }
}

/// The NAK delay for a gap at its `delivered`-th delivery: 10 ms, doubling, at most 1 s.
pub fn gap_delay(delivered: i64) -> Duration {
    let exponent = delivered.clamp(1, 8) - 1;
    Duration::from_millis(10 << exponent).min(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use common_events::{AccountId, Amount, TransactionId};

    fn event(number: u64, kind: TransactionKind, amount: i64) -> TransactionCreated {
        TransactionCreated {
            transaction_id: TransactionId::new(),
            account_id: AccountId::new(),
            number,
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
        assert_eq!(decision, Decision::Apply { balance_after: 15 });
        let decision = decide(state(10, 3), &event(4, TransactionKind::Withdrawal, 10));
        assert_eq!(decision, Decision::Apply { balance_after: 0 });
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
            matches!(decision, Decision::Reject { reason } if reason.contains("insufficient funds"))
        );
    }

    #[test]
    fn a_deposit_that_would_overflow_is_rejected() {
        let decision = decide(
            state(i64::MAX - 1, 0),
            &event(1, TransactionKind::Deposit, 5),
        );
        assert!(matches!(decision, Decision::Reject { .. }));
    }

    #[test]
    fn gap_delays_grow_and_stay_short() {
        assert_eq!(gap_delay(1), Duration::from_millis(10));
        assert_eq!(gap_delay(2), Duration::from_millis(20));
        assert!(gap_delay(5) > gap_delay(4));
        assert_eq!(gap_delay(1000), Duration::from_secs(1));
        assert_eq!(gap_delay(0), Duration::from_millis(10));
    }
}
