//! What a listener decided about each event it handled, published on core NATS (fire and
//! forget, not stored in any stream) so that an operator or the web console can watch the
//! ordering protocol at work: which replica took which number, at which delivery, and why.
//!
//! Subject: `observe.decisions.<service>` (for instance `observe.decisions.account-service`);
//! subscribe to `observe.decisions.>` for every service. The payload is one [`DecisionNote`]
//! as JSON. Nothing depends on these notes: losing one loses no money, only a line of the
//! timeline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, TransactionId};

/// The subject prefix of decision notes; the service name follows.
pub const DECISIONS_PREFIX: &str = "observe.decisions";

/// The subject every service's notes match.
pub const DECISIONS_ALL: &str = "observe.decisions.>";

/// The subject `service` publishes its notes on.
pub fn decisions_subject(service: &str) -> String {
    format!("{DECISIONS_PREFIX}.{service}")
}

/// What a listener did with one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// The next number: applied, balance changed.
    Applied,
    /// The next number, refused (insufficient funds); the number is consumed.
    Rejected,
    /// At or below the last number, same transaction: acked, nothing changed.
    Duplicate,
    /// Ahead of the next number: handed back to wait for its predecessor.
    Gap,
    /// For an account the service does not have: terminated and dead-lettered.
    UnknownAccount,
    /// A gap open too long (or too many open): taken off the broker and kept in the database
    /// until its predecessor arrives.
    Parked,
    /// A number the account already consumed for another transaction: terminated,
    /// dead-lettered and rejected.
    Conflict,
    /// Another replica changed the account first; handed back, a duplicate next time.
    Race,
    /// Undecodable or invalid: terminated and dead-lettered.
    Poison,
    /// A database error; handed back to retry.
    Error,
}

impl DecisionKind {
    /// The snake_case name, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Applied => "applied",
            DecisionKind::Rejected => "rejected",
            DecisionKind::Duplicate => "duplicate",
            DecisionKind::Gap => "gap",
            DecisionKind::UnknownAccount => "unknown_account",
            DecisionKind::Parked => "parked",
            DecisionKind::Conflict => "conflict",
            DecisionKind::Race => "race",
            DecisionKind::Poison => "poison",
            DecisionKind::Error => "error",
        }
    }
}

/// One decision, as published on [`decisions_subject`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionNote {
    /// The service (`account-service`).
    pub service: String,
    /// The replica that handled the delivery (`REPLICA_ID`, by default the host name).
    pub replica: String,
    /// The subject the event was published on.
    pub subject: String,
    /// Its sequence in the stream.
    pub stream_sequence: u64,
    /// Which delivery this was (1 for the first).
    pub delivered: i64,
    /// The account, when the event decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    /// The transaction, when the event decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<TransactionId>,
    /// The event's number in its account's sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    /// The account's `last_transaction_number` when the decision was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transaction_number: Option<u64>,
    /// What was decided.
    pub decision: DecisionKind,
    /// A reason for people (the rejection reason, the poison's error, the expected number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How many `+WPI` progress acks were sent while this delivery was handled (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_acks: Option<u64>,
    /// The fault injected into this delivery (`slow 12000 ms`, `freeze 12000 ms`), when fault
    /// injection is on and one fired (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
}

/// How long a note that could not be queued at once may wait for room in the client's queue.
const LATE_NOTE_TIMEOUT: Duration = Duration::from_secs(1);

/// Counts of notes, for `/metrics`.
#[derive(Debug, Default)]
pub struct NoteStats {
    /// Handed to the broker connection.
    pub sent: AtomicU64,
    /// Dropped: the broker was unreachable or the client's queue stayed full.
    pub dropped: AtomicU64,
}

/// Publishes one service replica's decision notes on core NATS, fire and forget: publishing
/// never waits for the broker, never fails the caller and never slows it down; a note that
/// cannot go out at once is sent from a background task or dropped (and counted).
#[derive(Clone)]
pub struct DecisionNotes {
    client: async_nats::Client,
    subject: async_nats::Subject,
    service: String,
    replica: String,
    stats: Arc<NoteStats>,
}

impl DecisionNotes {
    /// Notes of `service` (`account-service`) from `replica`, over `client`.
    pub fn new(client: async_nats::Client, service: &str, replica: impl Into<String>) -> Self {
        Self {
            client,
            subject: decisions_subject(service).into(),
            service: service.to_owned(),
            replica: replica.into(),
            stats: Arc::default(),
        }
    }

    /// The replica the notes name.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// A note about one delivery with the service, the replica and the time filled in, and the
    /// event's fields empty (set those that are known).
    pub fn note(
        &self,
        subject: &str,
        stream_sequence: u64,
        delivered: i64,
        decision: DecisionKind,
    ) -> DecisionNote {
        DecisionNote {
            service: self.service.clone(),
            replica: self.replica.clone(),
            subject: subject.to_owned(),
            stream_sequence,
            delivered,
            account_id: None,
            transaction_id: None,
            number: None,
            last_transaction_number: None,
            decision,
            detail: None,
            progress_acks: None,
            fault: None,
            at_ms: chrono::Utc::now().timestamp_millis(),
        }
    }

    /// Publishes `note` without waiting for anything.
    pub fn publish(&self, note: &DecisionNote) {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let payload = match serde_json::to_vec(note) {
            Ok(payload) => Bytes::from(payload),
            Err(err) => {
                tracing::debug!(error = %err, "a decision note did not encode");
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let now = self
            .client
            .publish(self.subject.clone(), payload.clone())
            .now_or_never();
        match now {
            Some(Ok(())) => {
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
            }
            Some(Err(err)) => {
                tracing::debug!(error = %err, "a decision note was not published");
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The client's queue is full (or this task spent its budget): finish elsewhere.
            None => {
                let (client, subject) = (self.client.clone(), self.subject.clone());
                let stats = Arc::clone(&self.stats);
                tokio::spawn(async move {
                    let late = client.publish(subject, payload);
                    let counter = match tokio::time::timeout(LATE_NOTE_TIMEOUT, late).await {
                        Ok(Ok(())) => &stats.sent,
                        _ => &stats.dropped,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                });
            }
        }
    }

    /// Its counters.
    pub fn stats(&self) -> &NoteStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_round_trips_through_json_with_snake_case_decisions() {
        let note = DecisionNote {
            service: "account-service".into(),
            replica: "account-1".into(),
            subject: "transactions.created".into(),
            stream_sequence: 7,
            delivered: 2,
            account_id: Some(AccountId::new()),
            transaction_id: Some(TransactionId::new()),
            number: Some(3),
            last_transaction_number: Some(1),
            decision: DecisionKind::Gap,
            detail: Some("expected 2".into()),
            progress_acks: Some(2),
            fault: Some("slow 12000 ms".into()),
            at_ms: 1,
        };
        let json = serde_json::to_value(&note).unwrap();
        assert_eq!(json["decision"], "gap");
        let back: DecisionNote = serde_json::from_value(json).unwrap();
        assert_eq!(back, note);
    }

    #[test]
    fn subjects_fall_under_the_wildcard() {
        assert_eq!(
            decisions_subject("account-service"),
            "observe.decisions.account-service"
        );
        assert!(DECISIONS_ALL.starts_with(DECISIONS_PREFIX));
    }
}
