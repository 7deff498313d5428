//! The per-account sequence-number protocol, the part every projection shares (see
//! `docs/ordering.md`): an event carries its number in its account's sequence, and a
//! projection that remembers the last number it took (`last_transaction_number`) knows what to
//! do with each delivery, whatever the order the broker delivers in.

use std::time::Duration;

/// Where an event's number stands against the last number a projection took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turn {
    /// At or below the last: taken before (a redelivery, or a claim on a number already taken).
    Taken,
    /// Exactly the last + 1: apply it now.
    Next,
    /// Past the next: its predecessors are not in yet; hand it back and try again later.
    Ahead {
        /// The number the projection waits for.
        expected: u64,
    },
}

impl Turn {
    /// The turn of `number` when the last number taken is `last`.
    pub fn of(last: u64, number: u64) -> Self {
        match last.checked_add(1) {
            Some(next) if number == next => Turn::Next,
            Some(next) if number > next => Turn::Ahead { expected: next },
            _ => Turn::Taken,
        }
    }
}

/// The first wait before an event that is not its turn yet comes back.
pub const FIRST_WAIT: Duration = Duration::from_millis(10);

/// The longest wait: an event that waits is redelivered at least this often.
pub const MAX_WAIT: Duration = Duration::from_secs(1);

/// How long to hand back an event that is not its turn yet, at its `delivered`-th delivery:
/// [`FIRST_WAIT`], doubling with each delivery, at most [`MAX_WAIT`].
pub fn wait_before_retry(delivered: i64) -> Duration {
    let doublings = u32::try_from(delivered.clamp(1, 16) - 1).unwrap_or(0);
    FIRST_WAIT.saturating_mul(1 << doublings).min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_is_taken_next_or_ahead() {
        assert_eq!(Turn::of(0, 1), Turn::Next);
        assert_eq!(Turn::of(4, 5), Turn::Next);
        assert_eq!(Turn::of(4, 4), Turn::Taken);
        assert_eq!(Turn::of(4, 1), Turn::Taken);
        assert_eq!(Turn::of(4, 0), Turn::Taken);
        assert_eq!(Turn::of(4, 9), Turn::Ahead { expected: 5 });
        assert_eq!(Turn::of(u64::MAX, u64::MAX), Turn::Taken);
    }

    #[test]
    fn waits_double_from_the_first_and_stop_at_the_longest() {
        assert_eq!(wait_before_retry(1), FIRST_WAIT);
        assert_eq!(wait_before_retry(2), FIRST_WAIT * 2);
        assert_eq!(wait_before_retry(4), FIRST_WAIT * 8);
        assert_eq!(wait_before_retry(0), FIRST_WAIT);
        assert_eq!(wait_before_retry(-3), FIRST_WAIT);
        assert_eq!(wait_before_retry(8), MAX_WAIT);
        assert_eq!(wait_before_retry(i64::MAX), MAX_WAIT);
    }
}
