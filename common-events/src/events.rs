//! The events the services exchange. Each names its subject and schema version.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, Amount, TransactionId, TransactionKind, TransactionNumber};
use crate::topology::subjects;

/// A typed event: its type name, schema version and subject.
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The `type` field of the envelope, e.g. `TransactionCreated`.
    const TYPE: &'static str;
    /// The newest schema version this code writes and reads.
    const SCHEMA_VERSION: u32;
    /// The subject it is published on.
    const SUBJECT: &'static str;
}

/// An account was opened (published by the account service).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountOpened {
    /// The new account.
    pub account_id: AccountId,
    /// Who owns it.
    pub owner: String,
}

/// A transaction was accepted and numbered (published by the transaction service).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionCreated {
    /// The transaction.
    pub transaction_id: TransactionId,
    /// The account it applies to.
    pub account_id: AccountId,
    /// Its place in the account's sequence: previous number + 1, starting at 1.
    pub number: TransactionNumber,
    /// Deposit or withdrawal.
    pub kind: TransactionKind,
    /// How much, in minor units.
    pub amount: Amount,
}

/// A transaction changed the balance (published by the account service).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionApplied {
    /// The transaction.
    pub transaction_id: TransactionId,
    /// The account it applied to.
    pub account_id: AccountId,
    /// Its number in the account's sequence.
    pub number: TransactionNumber,
    /// Deposit or withdrawal.
    pub kind: TransactionKind,
    /// How much, in minor units.
    pub amount: Amount,
    /// The balance right after it.
    pub balance_after: i64,
}

/// A transaction was refused (insufficient funds); it still consumed its number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionRejected {
    /// The transaction.
    pub transaction_id: TransactionId,
    /// The account it was for.
    pub account_id: AccountId,
    /// Its number in the account's sequence.
    pub number: TransactionNumber,
    /// Deposit or withdrawal.
    pub kind: TransactionKind,
    /// How much, in minor units.
    pub amount: Amount,
    /// Why, for people: `insufficient funds: balance 10, withdrawal 25`.
    pub reason: String,
}

impl Event for AccountOpened {
    const TYPE: &'static str = "AccountOpened";
    const SCHEMA_VERSION: u32 = 1;
    const SUBJECT: &'static str = subjects::ACCOUNT_OPENED;
}

impl Event for TransactionCreated {
    const TYPE: &'static str = "TransactionCreated";
    const SCHEMA_VERSION: u32 = 1;
    const SUBJECT: &'static str = subjects::TRANSACTION_CREATED;
}

impl Event for TransactionApplied {
    const TYPE: &'static str = "TransactionApplied";
    const SCHEMA_VERSION: u32 = 1;
    const SUBJECT: &'static str = subjects::TRANSACTION_APPLIED;
}

impl Event for TransactionRejected {
    const TYPE: &'static str = "TransactionRejected";
    const SCHEMA_VERSION: u32 = 1;
    const SUBJECT: &'static str = subjects::TRANSACTION_REJECTED;
}
