//! Newtypes for the values events carry: identifiers, amounts, numbers and kinds.
//!
//! They validate at the boundary (HTTP bodies, event payloads, database rows) so inner code can
//! trust them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new random (v4) identifier.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        /// For database columns that store the id as text.
        impl TryFrom<String> for $name {
            type Error = uuid::Error;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }
    };
}

uuid_id!(
    /// Identifies an account across both services.
    AccountId
);
uuid_id!(
    /// Identifies a transaction across both services.
    TransactionId
);
uuid_id!(
    /// Identifies one event; published as `Nats-Msg-Id`, so a re-publish is deduplicated.
    EventId
);

/// A positive amount of money in minor units (cents).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Amount(i64);

/// Why a number is not an [`Amount`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("amount must be a positive integer of minor units, got {0}")]
pub struct InvalidAmount(pub i64);

impl Amount {
    /// Accepts strictly positive values.
    pub fn new(minor_units: i64) -> Result<Self, InvalidAmount> {
        if minor_units > 0 {
            Ok(Self(minor_units))
        } else {
            Err(InvalidAmount(minor_units))
        }
    }

    /// The value in minor units.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for Amount {
    type Error = InvalidAmount;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Amount> for i64 {
    fn from(amount: Amount) -> Self {
        amount.0
    }
}

/// A transaction's place in its account's sequence: 1 for the account's first transaction, then
/// one more for each. Events carry it; the account service applies number `last + 1` only. It
/// is at least 1 and at most `i64::MAX` (databases store it as a signed 64-bit integer), and
/// both are checked wherever one is read: in an event, a request or a database row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct TransactionNumber(u64);

/// Why a value is not a [`TransactionNumber`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a transaction number is 1 to {max}, got {0}", max = i64::MAX)]
pub struct InvalidNumber(pub i128);

impl TransactionNumber {
    /// The first number of every account.
    pub const FIRST: Self = Self(1);

    /// Accepts 1 to `i64::MAX`.
    pub fn new(number: u64) -> Result<Self, InvalidNumber> {
        if (1..=i64::MAX as u64).contains(&number) {
            Ok(Self(number))
        } else {
            Err(InvalidNumber(number.into()))
        }
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The number as the databases store it.
    pub fn as_i64(self) -> i64 {
        // At most i64::MAX by construction.
        self.0 as i64
    }

    /// The number after this one; `None` past `i64::MAX`.
    pub fn next(self) -> Option<Self> {
        Self::new(self.0 + 1).ok()
    }
}

impl TryFrom<u64> for TransactionNumber {
    type Error = InvalidNumber;
    fn try_from(value: u64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl TryFrom<i64> for TransactionNumber {
    type Error = InvalidNumber;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        u64::try_from(value)
            .map_err(|_| InvalidNumber(value.into()))
            .and_then(Self::new)
    }
}

impl From<TransactionNumber> for u64 {
    fn from(number: TransactionNumber) -> Self {
        number.0
    }
}

impl From<TransactionNumber> for i64 {
    fn from(number: TransactionNumber) -> Self {
        number.as_i64()
    }
}

impl fmt::Display for TransactionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether a transaction adds money to an account or takes it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransactionKind {
    /// Adds the amount to the balance.
    Deposit,
    /// Takes the amount from the balance, if the balance covers it.
    Withdrawal,
}

/// A string that names no [`TransactionKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("kind must be \"deposit\" or \"withdrawal\", got {0:?}")]
pub struct InvalidKind(pub String);

impl TransactionKind {
    /// The lower-case name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionKind::Deposit => "deposit",
            TransactionKind::Withdrawal => "withdrawal",
        }
    }

    /// The signed change this kind makes to a balance.
    pub fn signed(self, amount: Amount) -> i64 {
        match self {
            TransactionKind::Deposit => amount.get(),
            TransactionKind::Withdrawal => -amount.get(),
        }
    }
}

impl FromStr for TransactionKind {
    type Err = InvalidKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "deposit" => Ok(TransactionKind::Deposit),
            "withdrawal" => Ok(TransactionKind::Withdrawal),
            other => Err(InvalidKind(other.to_owned())),
        }
    }
}

/// For database columns that store the kind by name.
impl TryFrom<String> for TransactionKind {
    type Error = InvalidKind;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for TransactionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_rejects_zero_and_negative_values() {
        assert!(Amount::new(0).is_err());
        assert!(Amount::new(-5).is_err());
        assert_eq!(Amount::new(7).map(Amount::get), Ok(7));
    }

    #[test]
    fn amount_in_json_must_be_positive() {
        assert!(serde_json::from_str::<Amount>("-1").is_err());
        assert_eq!(
            serde_json::from_str::<Amount>("12").ok(),
            Amount::new(12).ok()
        );
    }

    #[test]
    fn transaction_numbers_are_one_to_i64_max_however_they_arrive() {
        assert_eq!(TransactionNumber::new(1), Ok(TransactionNumber::FIRST));
        assert!(TransactionNumber::new(0).is_err());
        assert!(TransactionNumber::new(i64::MAX as u64 + 1).is_err());
        assert!(TransactionNumber::try_from(-1i64).is_err());
        let max = TransactionNumber::try_from(i64::MAX).unwrap();
        assert_eq!(max.as_i64(), i64::MAX);
        assert_eq!(max.next(), None);
        assert_eq!(TransactionNumber::FIRST.next().map(u64::from), Some(2));
        assert!(serde_json::from_str::<TransactionNumber>("0").is_err());
        assert!(serde_json::from_str::<TransactionNumber>("9223372036854775808").is_err());
        let seven: TransactionNumber = serde_json::from_str("7").unwrap();
        assert_eq!(serde_json::to_string(&seven).unwrap(), "7");
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in [TransactionKind::Deposit, TransactionKind::Withdrawal] {
            assert_eq!(kind.as_str().parse::<TransactionKind>(), Ok(kind));
        }
        assert!("refund".parse::<TransactionKind>().is_err());
    }
}
