//! Feeds the [`Timeline`] from the broker: an ordered JetStream consumer per stream (`ACCOUNTS`,
//! `TRANSACTIONS`) starting at new messages, and a core subscription to the decision notes
//! (`observe.decisions.>`). Read-only: the console creates no stream and no durable consumer.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use common_events::observe::{DecisionNote, DECISIONS_ALL};
use common_events::topology::{StreamSpec, STREAMS};
use futures_util::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::link::BrokerLink;
use crate::money::format_cents;
use crate::timeline::{Entry, Timeline};

/// How long to wait before following a stream again after its consumer ended.
const RETRY: Duration = Duration::from_secs(2);
/// How often to look for a stream that does not exist yet (the services create it as they
/// start, and events published meanwhile should show without a long delay).
const RETRY_MISSING: Duration = Duration::from_millis(250);

/// Starts following every stream and the decision notes, once the broker is connected.
pub fn spawn(link: BrokerLink, timeline: Arc<Timeline>, shutdown: CancellationToken) {
    for spec in STREAMS {
        let (link, timeline, shutdown) = (link.clone(), timeline.clone(), shutdown.clone());
        tokio::spawn(async move {
            let Some(client) = wait_for_link(&link, &shutdown).await else {
                return;
            };
            follow_stream(jetstream::new(client), spec, timeline, shutdown).await;
        });
    }
    tokio::spawn(async move {
        let Some(client) = wait_for_link(&link, &shutdown).await else {
            return;
        };
        follow_decisions(client, timeline, shutdown).await;
    });
}

async fn wait_for_link(
    link: &BrokerLink,
    shutdown: &CancellationToken,
) -> Option<async_nats::Client> {
    tokio::select! {
        _ = shutdown.cancelled() => None,
        client = link.ready() => client,
    }
}

/// Follows one stream from its next message, with an ordered consumer that the client
/// recreates on its own after gaps and reconnects; starts over if the stream is missing.
async fn follow_stream(
    js: jetstream::Context,
    spec: StreamSpec,
    timeline: Arc<Timeline>,
    shutdown: CancellationToken,
) {
    // Where to start: after the last message shown; before the first attach, at new messages,
    // or at the stream's first message if the stream did not exist yet when the console first
    // looked (everything in it then came after the console started).
    let mut start = Start::New;
    let mut warned = false;
    while !shutdown.is_cancelled() {
        match open_ordered(&js, spec, start).await {
            Ok(mut messages) => {
                tracing::info!(stream = spec.name, "timeline follows the stream");
                warned = false;
                let _source = SourceGuard::new(&timeline);
                loop {
                    let next = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        next = messages.next() => next,
                    };
                    match next {
                        Some(Ok(message)) => {
                            let sequence = message.info().ok().map(|info| info.stream_sequence);
                            if let Some(sequence) = sequence {
                                start = Start::After(sequence);
                            }
                            let entry = event_entry(
                                spec.name,
                                message.subject.as_str(),
                                sequence,
                                &message.payload,
                            );
                            timeline.push(entry);
                        }
                        Some(Err(err)) => {
                            tracing::debug!(stream = spec.name, error = %err, "ordered consumer error");
                        }
                        None => break,
                    }
                }
                tracing::warn!(
                    stream = spec.name,
                    "the stream's ordered consumer ended; following again"
                );
            }
            Err(err) if !warned => {
                warned = true;
                if start == Start::New {
                    start = Start::First;
                }
                tracing::warn!(stream = spec.name, error = %err, "cannot follow the stream yet (do the services run?); retrying");
            }
            Err(err) => {
                tracing::debug!(stream = spec.name, error = %err, "cannot follow the stream yet")
            }
        }
        let pause = if warned { RETRY_MISSING } else { RETRY };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Where a stream's ordered consumer starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// At messages published from now on.
    New,
    /// At the stream's first message.
    First,
    /// After this stream sequence.
    After(u64),
}

async fn open_ordered(
    js: &jetstream::Context,
    spec: StreamSpec,
    start: Start,
) -> Result<consumer::pull::Ordered, async_nats::Error> {
    let stream = js.get_stream(spec.name).await?;
    let deliver_policy = match start {
        Start::After(sequence) => consumer::DeliverPolicy::ByStartSequence {
            start_sequence: sequence + 1,
        },
        Start::First => consumer::DeliverPolicy::All,
        Start::New => consumer::DeliverPolicy::New,
    };
    // A name of its own puts it in the subject of the create request
    // (`$JS.API.CONSUMER.CREATE.<stream>.<name>`), so a broker's permissions can let the console
    // create its readers while denying the services' durable consumer names.
    let name = format!("console-{}", uuid::Uuid::new_v4().simple());
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            name: Some(name),
            description: Some("web console timeline".into()),
            deliver_policy,
            ..Default::default()
        })
        .await?;
    Ok(consumer.messages().await?)
}

/// Subscribes to every service's decision notes (core NATS, not stored), resubscribing if the
/// subscription ends.
async fn follow_decisions(
    client: async_nats::Client,
    timeline: Arc<Timeline>,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        match client.subscribe(DECISIONS_ALL).await {
            Ok(mut notes) => {
                let _source = SourceGuard::new(&timeline);
                loop {
                    let next = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        next = notes.next() => next,
                    };
                    let Some(message) = next else { break };
                    timeline.push(note_entry(message.subject.as_str(), &message.payload));
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot subscribe to decision notes; retrying")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// Counts a source as followed while it lives.
struct SourceGuard(Arc<crate::timeline::TimelineStats>);

impl SourceGuard {
    fn new(timeline: &Timeline) -> Self {
        let stats = timeline.stats();
        stats.sources.fetch_add(1, Ordering::Relaxed);
        Self(stats)
    }
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        self.0.sources.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A timeline entry for a message of `stream`: the envelope's type, account, number and a
/// sentence; a payload that is no envelope still gets a row, saying so.
pub fn event_entry(stream: &str, subject: &str, sequence: Option<u64>, payload: &[u8]) -> Entry {
    let envelope: Option<Value> = serde_json::from_slice(payload).ok();
    let field = |name: &str| envelope.as_ref().and_then(|e| e.get(name));
    let data = field("data").cloned().unwrap_or(Value::Null);
    let kind = field("type")
        .and_then(Value::as_str)
        .unwrap_or("undecodable")
        .to_owned();
    let at_ms = field("occurred_at")
        .and_then(Value::as_str)
        .and_then(chrono_ms)
        .unwrap_or_else(crate::now_ms);
    let text = |name: &str| data.get(name).and_then(Value::as_str).map(str::to_owned);
    let int = |name: &str| data.get(name).and_then(Value::as_i64);
    let number = data.get("number").and_then(Value::as_u64);
    let amount = int("amount").map(format_cents).unwrap_or_default();
    let kind_word = text("kind").unwrap_or_default();
    let numbered = number.map(|n| format!("#{n} ")).unwrap_or_default();
    let summary = match kind.as_str() {
        "AccountOpened" => format!("account opened for {}", text("owner").unwrap_or_default()),
        "TransactionCreated" => format!("{numbered}{kind_word} {amount} created"),
        "TransactionApplied" => format!(
            "{numbered}{kind_word} {amount} applied, balance {}",
            int("balance_after").map(format_cents).unwrap_or_default()
        ),
        "TransactionRejected" => format!(
            "{numbered}{kind_word} {amount} rejected: {}",
            text("reason").unwrap_or_default()
        ),
        "undecodable" => format!("{} bytes that are no event envelope", payload.len()),
        other => format!("{other} event"),
    };
    Entry {
        id: 0,
        source: "event",
        kind,
        subject: subject.to_owned(),
        stream: Some(stream.to_owned()),
        stream_sequence: sequence,
        account_id: text("account_id"),
        transaction_id: text("transaction_id"),
        number,
        decision: None,
        summary,
        at_ms,
        data,
    }
}

/// A timeline entry for a decision note; a payload that is no note still gets a row.
pub fn note_entry(subject: &str, payload: &[u8]) -> Entry {
    let Ok(note) = serde_json::from_slice::<DecisionNote>(payload) else {
        return Entry {
            id: 0,
            source: "decision",
            kind: "decision".into(),
            subject: subject.to_owned(),
            stream: None,
            stream_sequence: None,
            account_id: None,
            transaction_id: None,
            number: None,
            decision: Some("unreadable".into()),
            summary: format!(
                "a decision note that does not decode ({} bytes)",
                payload.len()
            ),
            at_ms: crate::now_ms(),
            data: Value::Null,
        };
    };
    let number = note.number.map(|n| format!("#{n} ")).unwrap_or_default();
    let last = note
        .last_transaction_number
        .map(|n| format!(", last was {n}"))
        .unwrap_or_default();
    let detail = note
        .detail
        .as_deref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default();
    let progress = note
        .progress_acks
        .map(|n| format!(", {n} progress ack{}", if n == 1 { "" } else { "s" }))
        .unwrap_or_default();
    let fault = note
        .fault
        .as_deref()
        .map(|f| format!(", fault injected: {f}"))
        .unwrap_or_default();
    let summary = format!(
        "{number}{} by {} (delivery {}{last}{progress}{fault}){detail}",
        note.decision.as_str(),
        note.replica,
        note.delivered
    );
    Entry {
        id: 0,
        source: "decision",
        kind: "decision".into(),
        subject: subject.to_owned(),
        stream: None,
        stream_sequence: Some(note.stream_sequence),
        account_id: note.account_id.map(|id| id.to_string()),
        transaction_id: note.transaction_id.map(|id| id.to_string()),
        number: note.number,
        decision: Some(note.decision.as_str().to_owned()),
        summary,
        at_ms: note.at_ms,
        data: serde_json::to_value(&note).unwrap_or(Value::Null),
    }
}

/// Milliseconds since the epoch of an RFC 3339 time, as the envelopes write it.
fn chrono_ms(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use common_events::observe::DecisionKind;
    use common_events::{
        AccountId, Amount, Envelope, TransactionCreated, TransactionId, TransactionKind,
        TransactionNumber,
    };

    use super::*;

    #[test]
    fn a_created_event_becomes_a_row_with_its_account_and_number() {
        let account = AccountId::new();
        let event = Envelope::new(TransactionCreated {
            transaction_id: TransactionId::new(),
            account_id: account,
            number: TransactionNumber::new(2).unwrap(),
            kind: TransactionKind::Withdrawal,
            amount: Amount::new(6000).unwrap(),
        });
        let encoded = event.encode(None);
        let entry = event_entry("TRANSACTIONS", &encoded.subject, Some(9), &encoded.payload);
        assert_eq!(entry.kind, "TransactionCreated");
        assert_eq!(entry.account_id, Some(account.to_string()));
        assert_eq!(entry.number, Some(2));
        assert_eq!(entry.stream_sequence, Some(9));
        assert_eq!(entry.summary, "#2 withdrawal 60.00 created");
        assert_eq!(entry.at_ms, event.occurred_at.timestamp_millis());
    }

    #[test]
    fn garbage_still_gets_a_row() {
        let entry = event_entry("TRANSACTIONS", "transactions.created", Some(1), b"nope");
        assert_eq!(entry.kind, "undecodable");
        let note = note_entry("observe.decisions.x", b"nope");
        assert_eq!(note.decision.as_deref(), Some("unreadable"));
    }

    #[test]
    fn a_decision_note_becomes_a_row_with_its_decision() {
        let note = DecisionNote {
            service: "account-service".into(),
            replica: "account-1".into(),
            subject: "transactions.created".into(),
            stream_sequence: 7,
            delivered: 2,
            account_id: Some(AccountId::new()),
            transaction_id: None,
            number: Some(3),
            last_transaction_number: Some(1),
            decision: DecisionKind::Gap,
            detail: Some("expected 2".into()),
            progress_acks: None,
            fault: None,
            at_ms: 5,
        };
        let payload = serde_json::to_vec(&note).unwrap();
        let entry = note_entry("observe.decisions.account-service", &payload);
        assert_eq!(entry.decision.as_deref(), Some("gap"));
        assert_eq!(entry.number, Some(3));
        assert_eq!(
            entry.summary,
            "#3 gap by account-1 (delivery 2, last was 1): expected 2"
        );
        let slow = DecisionNote {
            decision: DecisionKind::Applied,
            delivered: 1,
            last_transaction_number: Some(0),
            number: Some(1),
            detail: None,
            progress_acks: Some(2),
            fault: Some("slow 12000 ms".into()),
            ..note
        };
        let entry = note_entry(
            "observe.decisions.account-service",
            &serde_json::to_vec(&slow).unwrap(),
        );
        assert_eq!(
            entry.summary,
            "#1 applied by account-1 (delivery 1, last was 0, 2 progress acks, fault injected: \
             slow 12000 ms)"
        );
    }
}
