//! Stream limits and what each means, following nats-server's stores:
//! - `None` is unlimited (nats-server's `-1`, and `0` for the counts and `max_age`).
//! - `discard: old` evicts the oldest messages after an append until `max_msgs` and `max_bytes`
//!   hold again; `discard: new` refuses the append instead, with the limit in the error.
//! - `max_msgs_per_subject` always evicts the subject's oldest message, whatever `discard` says,
//!   unless `discard: new` with `discard_new_per_subject` asks to refuse instead. Under
//!   `discard: new`, a message that will replace its subject's oldest is not refused by
//!   `max_msgs`, nor by `max_bytes` when the evicted message is at least as large.
//! - `max_msg_size` refuses a message whose headers plus payload exceed it.
//! - `max_age` removes messages older than it when [`Store::expire`](super::Store::expire) runs.

use std::time::Duration;

use super::{Limit, StoreError};

/// What a full stream does with a new message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Discard {
    /// Evict the oldest messages to make room (nats-server's default).
    #[default]
    Old,
    /// Refuse the new message.
    New,
}

/// The limits of a stream's configuration that the store enforces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Most messages kept.
    pub max_msgs: Option<u64>,
    /// Most bytes kept, counted as [`Store::msg_size`](super::Store::msg_size) does.
    pub max_bytes: Option<u64>,
    /// Oldest message kept, by its timestamp.
    pub max_age: Option<Duration>,
    /// Most messages kept per subject.
    pub max_msgs_per_subject: Option<u64>,
    /// Largest headers plus payload accepted.
    pub max_msg_size: Option<u64>,
    /// Evict old messages or refuse new ones when `max_msgs` or `max_bytes` is reached.
    pub discard: Discard,
    /// With `discard: new`, refuse a message whose subject is at `max_msgs_per_subject`.
    pub discard_new_per_subject: bool,
}

/// The store's counters that the admission check looks at.
pub(crate) struct Admission {
    /// Messages and bytes stored now.
    pub msgs: u64,
    /// Bytes stored now.
    pub bytes: u64,
    /// Messages stored now on the new message's subject.
    pub subject_msgs: u64,
    /// Size of the oldest message on that subject (evicted if the subject is at its limit).
    pub subject_first_size: u64,
    /// Size of the new message.
    pub size: u64,
    /// Headers plus payload of the new message.
    pub body_len: u64,
}

impl Limits {
    /// Whether a new message may be stored, with nats-server's `discard: new` rules.
    pub(crate) fn admit(&self, a: &Admission) -> Result<(), StoreError> {
        let refuse = |limit| Err(StoreError::LimitExceeded(limit));
        if self.max_msg_size.is_some_and(|max| a.body_len > max) {
            return refuse(Limit::MaxMsgSize);
        }
        if self.discard != Discard::New {
            return Ok(());
        }
        let at_subject_limit = self
            .max_msgs_per_subject
            .is_some_and(|max| a.subject_msgs >= max);
        if at_subject_limit && self.discard_new_per_subject {
            return refuse(Limit::MaxMsgsPerSubject);
        }
        if self.max_msgs.is_some_and(|max| a.msgs >= max) && !at_subject_limit {
            return refuse(Limit::MaxMsgs);
        }
        // nats-server refuses when the stream would reach, not only pass, max_bytes.
        if self.max_bytes.is_some_and(|max| a.bytes + a.size >= max)
            && (!at_subject_limit || a.subject_first_size <= a.size)
        {
            return refuse(Limit::MaxBytes);
        }
        Ok(())
    }

    /// Whether old messages are evicted for `max_msgs` and `max_bytes`.
    pub(crate) fn evicts_old(&self) -> bool {
        self.discard == Discard::Old
    }

    /// `max_age` in nanoseconds, if set.
    pub(crate) fn max_age_nanos(&self) -> Option<i64> {
        self.max_age
            .map(|age| i64::try_from(age.as_nanos()).unwrap_or(i64::MAX))
    }
}
