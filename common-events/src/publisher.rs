//! Publishing events to JetStream: `Nats-Msg-Id` = event id (so a re-publish within the
//! stream's duplicate window is dropped by the server), and every publish awaits its PubAck.

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use async_nats::HeaderMap;

use crate::envelope::{EncodedEvent, Envelope};
use crate::events::Event;
use crate::trace::{TraceContext, TRACEPARENT};

/// Why a publish failed. Nothing is lost either way: the caller keeps the event (an outbox row)
/// and tries again.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The request could not be sent (disconnected, too large, too many in flight).
    #[error("sending event {event_id} on {subject}: {source}")]
    Send {
        /// The event.
        event_id: String,
        /// Its subject.
        subject: String,
        /// The client's error.
        source: jetstream::context::PublishError,
    },
    /// The server did not acknowledge it (no stream for the subject, timeout, stream error).
    #[error("no PubAck for event {event_id}: {source}")]
    Ack {
        /// The event.
        event_id: String,
        /// The client's error.
        source: jetstream::context::PublishError,
    },
}

/// What the stream said about a published event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The stream sequence it is stored at.
    pub sequence: u64,
    /// True when the server already had this event id (a deduplicated re-publish).
    pub duplicate: bool,
}

/// A cheap-to-clone handle that publishes events and awaits their acknowledgements.
#[derive(Clone, Debug)]
pub struct Publisher {
    js: jetstream::Context,
}

/// A publish that was sent and whose PubAck has not been awaited yet.
pub struct PendingPublish {
    event_id: String,
    ack: PublishAckFuture,
}

impl PendingPublish {
    /// Waits for the PubAck.
    pub async fn acked(self) -> Result<Published, PublishError> {
        let ack = self.ack.await.map_err(|source| PublishError::Ack {
            event_id: self.event_id,
            source,
        })?;
        Ok(Published {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}

impl Publisher {
    /// Wraps a JetStream context.
    pub fn new(js: jetstream::Context) -> Self {
        Self { js }
    }

    /// Whether the broker connection is up now.
    pub fn is_connected(&self) -> bool {
        self.js.client().connection_state() == async_nats::connection::State::Connected
    }

    /// Publishes a typed event and waits for its PubAck.
    pub async fn publish<T: Event>(
        &self,
        event: &Envelope<T>,
        trace: Option<TraceContext>,
    ) -> Result<Published, PublishError> {
        self.publish_encoded(&event.encode(trace)).await
    }

    /// Publishes an already encoded event (an outbox row) and waits for its PubAck.
    pub async fn publish_encoded(&self, event: &EncodedEvent) -> Result<Published, PublishError> {
        self.send(event).await?.acked().await
    }

    /// Sends the publish without waiting for the PubAck, so many can be in flight at once;
    /// await [`PendingPublish::acked`] before treating the event as published.
    pub async fn send(&self, event: &EncodedEvent) -> Result<PendingPublish, PublishError> {
        let event_id = event.id.to_string();
        let mut headers = HeaderMap::new();
        if let Some(trace) = event.trace {
            headers.insert(TRACEPARENT, trace.to_string().as_str());
        }
        let message = PublishMessage::build()
            .payload(event.payload.clone())
            .headers(headers)
            .message_id(&event_id);
        let ack = self
            .js
            .send_publish(event.subject.clone(), message)
            .await
            .map_err(|source| PublishError::Send {
                event_id: event_id.clone(),
                subject: event.subject.clone(),
                source,
            })?;
        Ok(PendingPublish { event_id, ack })
    }
}
