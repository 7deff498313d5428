//! Reading a stream's events back from the start, for rebuild checks, tests and tools.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;

use crate::envelope::{DecodeError, Envelope};
use crate::events::Event;
use crate::topology::{stream_of, StreamSpec};

/// Why events could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// No stream captures the event's subject.
    #[error("no stream captures {subject}")]
    NoStream {
        /// The event's subject.
        subject: &'static str,
    },
    /// The broker refused a request or timed out.
    #[error("reading {subject}: {source}")]
    Broker {
        /// The subject being read.
        subject: &'static str,
        /// The client's error.
        source: async_nats::Error,
    },
    /// A stored message is not an event of the expected type.
    #[error("message {sequence} on {subject}: {source}")]
    Decode {
        /// The subject being read.
        subject: &'static str,
        /// Its stream sequence.
        sequence: u64,
        /// Why it did not decode.
        source: DecodeError,
    },
}

/// Every `T` event stored so far, with its stream sequence, oldest first.
pub async fn read_all<T: Event>(
    js: &jetstream::Context,
) -> Result<Vec<(u64, Envelope<T>)>, InspectError> {
    let spec: StreamSpec = stream_of(T::SUBJECT).ok_or(InspectError::NoStream {
        subject: T::SUBJECT,
    })?;
    let wrap = |source: async_nats::Error| InspectError::Broker {
        subject: T::SUBJECT,
        source,
    };
    let stream = js.get_stream(spec.name).await.map_err(|e| wrap(e.into()))?;
    let mut reader = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: T::SUBJECT.to_owned(),
            ack_policy: consumer::AckPolicy::None,
            deliver_policy: consumer::DeliverPolicy::All,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .map_err(|e| wrap(e.into()))?;
    let pending = reader.info().await.map_err(|e| wrap(e.into()))?.num_pending;
    let mut events = Vec::with_capacity(pending as usize);
    let mut messages = reader.messages().await.map_err(|e| wrap(e.into()))?;
    while (events.len() as u64) < pending {
        let next = tokio::time::timeout(Duration::from_secs(10), messages.next()).await;
        let message = match next {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(err))) => return Err(wrap(err.into())),
            Ok(None) | Err(_) => return Err(wrap("the stream stopped delivering".into())),
        };
        let sequence = message.info().map_err(wrap)?.stream_sequence;
        let event = Envelope::decode(&message.payload).map_err(|source| InspectError::Decode {
            subject: T::SUBJECT,
            sequence,
            source,
        })?;
        events.push((sequence, event));
    }
    drop(messages);
    let _ = stream.delete_consumer(&reader.cached_info().name).await;
    Ok(events)
}
