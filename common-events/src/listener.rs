//! The listener abstraction: what a service implements to consume one event type from its queue
//! group. The [`crate::runner`] does the JetStream work (pulling, acks, progress, drain).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use crate::envelope::Envelope;
use crate::events::Event;
use crate::trace::TraceContext;

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
