//! The listener abstraction: what a service implements to consume one event type from its queue
//! group. The [`crate::runner`] does the JetStream work (pulling, acks, progress, drain).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use common_events::envelope::Envelope;
use common_events::events::Event;
use common_events::trace::TraceContext;

/// What to do with a message after its handler ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done (or a duplicate): acknowledge it, never see it again.
    Ack,
    /// Not now: hand it back (`-NAK`) to be redelivered after the delay.
    Retry(Duration),
    /// Never processable: terminate it (`+TERM`) with this reason; no redelivery.
    Reject(String),
}

/// Facts about the message being handled.
#[derive(Clone, Debug)]
pub struct MessageContext {
    /// The subject it was published on.
    pub subject: String,
    /// Its sequence in the stream.
    pub stream_sequence: u64,
    /// How many times it has been delivered, this time included (1 on first delivery).
    pub delivered: i64,
    /// Its `Nats-Msg-Id`, if it had one.
    pub message_id: Option<String>,
    /// The trace this handling belongs to (a child of the publisher's context, or a new root).
    pub trace: TraceContext,
    /// The runner's `+WPI` progress acks for this delivery: how many were sent, and a switch to
    /// stop them.
    pub progress: ProgressAcks,
    /// The decision the handler came to, as the `decision` label of its latency in `/metrics`.
    pub decision: DecisionLabel,
}

/// The name of the decision a handler came to for one delivery (`applied`, `duplicate`,
/// `gap`, …), which labels its latency in `/metrics`; a handler that records none is labelled
/// by its outcome (`acked`, `retried`, `rejected`). Names are a fixed set (`&'static str`), so
/// the series stay few.
#[derive(Clone, Debug, Default)]
pub struct DecisionLabel(Arc<std::sync::OnceLock<&'static str>>);

impl DecisionLabel {
    /// Records the decision (the first one recorded counts).
    pub fn record(&self, decision: &'static str) {
        let _ = self.0.set(decision);
    }

    /// The decision recorded, if any.
    pub fn get(&self) -> Option<&'static str> {
        self.0.get().copied()
    }
}

/// The `+WPI` progress acks the runner sends for one delivery while its handler runs (every half
/// ack wait, so that a slow handler keeps its message): a count, and a switch to stop them.
///
/// [`ProgressAcks::stop`] is for fault injection only: a frozen process (a long pause, a
/// partition) sends nothing, so the broker redelivers its message after the ack wait; a handler
/// that plays a frozen one stops its progress acks to show that. Nothing else should call it.
#[derive(Clone, Debug, Default)]
pub struct ProgressAcks(Arc<ProgressState>);

#[derive(Debug, Default)]
struct ProgressState {
    stopped: AtomicBool,
    sent: AtomicU64,
}

impl ProgressAcks {
    /// Stops the progress acks of this delivery for good (fault injection only: see above).
    pub fn stop(&self) {
        self.0.stopped.store(true, Ordering::SeqCst);
    }

    /// Whether [`ProgressAcks::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    /// How many progress acks the runner has sent for this delivery so far.
    pub fn sent(&self) -> u64 {
        self.0.sent.load(Ordering::SeqCst)
    }

    /// Counts one progress ack sent (the runner's part).
    pub(crate) fn count_sent(&self) {
        self.0.sent.fetch_add(1, Ordering::SeqCst);
    }
}

/// A message whose payload did not decode as the listener's event; it is terminated.
#[derive(Clone, Debug)]
pub struct UndecodableMessage {
    /// The subject.
    pub subject: String,
    /// Its sequence in the stream.
    pub stream_sequence: u64,
    /// How many times it has been delivered, this time included.
    pub delivered: i64,
    /// The raw payload.
    pub payload: Bytes,
    /// Why it did not decode.
    pub error: String,
}

/// A consumer of one event type. Implementations are shared by the runner's concurrent handlers.
pub trait Listener: Send + Sync + 'static {
    /// The event this listener handles.
    type Event: Event;

    /// Name for logs and metrics.
    fn name(&self) -> &'static str;

    /// Handles one event. Return [`Outcome::Ack`] only once its effects are committed.
    fn on_message(
        &self,
        event: Envelope<Self::Event>,
        context: MessageContext,
    ) -> impl Future<Output = Outcome> + Send;

    /// Called before a message that does not decode is terminated (say, to keep a dead-letter
    /// row). The runner already logs and counts it.
    fn on_undecodable(&self, message: UndecodableMessage) -> impl Future<Output = ()> + Send {
        let _ = message;
        async {}
    }
}
