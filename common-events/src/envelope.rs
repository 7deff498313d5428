//! The versioned envelope around every event, and its JSON encoding.
//!
//! ```json
//! {"id": "…", "type": "TransactionCreated", "schema_version": 1,
//!  "occurred_at": "2025-01-01T00:00:00Z", "correlation_id": "…", "data": {…}}
//! ```

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::events::Event;
use crate::ids::EventId;
use crate::trace::TraceContext;

/// An event with its metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Unique per event; the `Nats-Msg-Id` it is published with.
    pub id: EventId,
    /// The event's type name ([`Event::TYPE`]).
    #[serde(rename = "type")]
    pub event_type: String,
    /// The schema version of `data`.
    pub schema_version: u32,
    /// When the fact happened.
    pub occurred_at: DateTime<Utc>,
    /// Ties related events together (for transactions: the transaction id).
    pub correlation_id: Option<Uuid>,
    /// The event itself.
    pub data: T,
}

/// Why a payload is not an event of the expected type.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or not the envelope/event shape.
    #[error("payload is not a valid envelope: {0}")]
    Json(#[from] serde_json::Error),
    /// A well-formed envelope of another type.
    #[error("expected a {expected} event, got {found}")]
    WrongType {
        /// The type the listener handles.
        expected: &'static str,
        /// The type the envelope names.
        found: String,
    },
    /// A newer schema than this code understands.
    #[error("{event_type} schema version {found} is newer than the supported {supported}")]
    UnsupportedVersion {
        /// The event type.
        event_type: &'static str,
        /// The version in the envelope.
        found: u32,
        /// The newest version this code reads.
        supported: u32,
    },
    /// A text field holds a NUL character, which no database the services use can store
    /// (PostgreSQL refuses it in text): a handler would fail on it at every delivery.
    #[error("{event_type}.{field} contains a NUL character")]
    Nul {
        /// The event type.
        event_type: &'static str,
        /// The field.
        field: String,
    },
}

/// An event ready to publish or to store in an outbox: subject, id and JSON bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedEvent {
    /// The event id ([`Envelope::id`]).
    pub id: EventId,
    /// The subject to publish on.
    pub subject: String,
    /// The JSON envelope.
    pub payload: Bytes,
    /// Trace context to carry in the `traceparent` header.
    pub trace: Option<TraceContext>,
}

impl<T: Event> Envelope<T> {
    /// Wraps `data` with a new id, the current time and no correlation id.
    pub fn new(data: T) -> Self {
        Self {
            id: EventId::new(),
            event_type: T::TYPE.to_owned(),
            schema_version: T::SCHEMA_VERSION,
            occurred_at: Utc::now(),
            correlation_id: None,
            data,
        }
    }

    /// Sets the correlation id.
    pub fn correlated(mut self, correlation_id: Uuid) -> Self {
        self.correlation_id = Some(correlation_id);
        self
    }

    /// The JSON encoding, with the subject and id to publish it under.
    pub fn encode(&self, trace: Option<TraceContext>) -> EncodedEvent {
        // Serializing these plain structs cannot fail: no maps with non-string keys, no
        // fallible Serialize impls.
        let payload = serde_json::to_vec(self).expect("events serialize to JSON");
        EncodedEvent {
            id: self.id,
            subject: T::SUBJECT.to_owned(),
            payload: payload.into(),
            trace,
        }
    }

    /// Parses a payload, checking the type name and that the schema version is supported.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let envelope: Envelope<serde_json::Value> = serde_json::from_slice(payload)?;
        if envelope.event_type != T::TYPE {
            return Err(DecodeError::WrongType {
                expected: T::TYPE,
                found: envelope.event_type,
            });
        }
        if envelope.schema_version > T::SCHEMA_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                event_type: T::TYPE,
                found: envelope.schema_version,
                supported: T::SCHEMA_VERSION,
            });
        }
        if let Some(field) = nul_in(&envelope.data) {
            return Err(DecodeError::Nul {
                event_type: T::TYPE,
                field,
            });
        }
        Ok(Envelope {
            id: envelope.id,
            event_type: envelope.event_type,
            schema_version: envelope.schema_version,
            occurred_at: envelope.occurred_at,
            correlation_id: envelope.correlation_id,
            data: serde_json::from_value(envelope.data)?,
        })
    }
}

/// The first field of an event's data (a top-level string) holding a NUL character.
fn nul_in(data: &serde_json::Value) -> Option<String> {
    let fields = data.as_object()?;
    fields
        .iter()
        .find(|(_, value)| value.as_str().is_some_and(|text| text.contains('\0')))
        .map(|(name, _)| name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{AccountOpened, TransactionCreated};
    use crate::ids::{AccountId, Amount, TransactionId, TransactionKind, TransactionNumber};

    #[test]
    fn a_nul_in_a_text_field_does_not_decode() {
        let opened = Envelope::new(AccountOpened {
            account_id: AccountId::new(),
            owner: "al\0ice".into(),
        });
        let payload = serde_json::to_vec(&opened).unwrap();
        let err = Envelope::<AccountOpened>::decode(&payload).unwrap_err();
        assert!(
            matches!(err, DecodeError::Nul { ref field, .. } if field == "owner"),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "AccountOpened.owner contains a NUL character"
        );
    }

    fn created() -> Envelope<TransactionCreated> {
        Envelope::new(TransactionCreated {
            transaction_id: TransactionId::new(),
            account_id: AccountId::new(),
            number: TransactionNumber::new(3).unwrap(),
            kind: TransactionKind::Withdrawal,
            amount: Amount::new(250).unwrap(),
        })
    }

    #[test]
    fn an_envelope_round_trips_through_json() {
        let event = created();
        let encoded = event.encode(None);
        assert_eq!(encoded.subject, "transactions.created");
        let decoded = Envelope::<TransactionCreated>::decode(&encoded.payload).unwrap();
        assert_eq!(decoded, event);
    }

    #[test]
    fn decoding_another_event_type_is_an_error() {
        let encoded = created().encode(None);
        let err = Envelope::<AccountOpened>::decode(&encoded.payload).unwrap_err();
        assert!(matches!(err, DecodeError::WrongType { .. }), "{err}");
    }

    #[test]
    fn a_newer_schema_version_is_refused() {
        let mut event = created();
        event.schema_version = 9;
        let encoded = event.encode(None);
        let err = Envelope::<TransactionCreated>::decode(&encoded.payload).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::UnsupportedVersion { found: 9, .. }
        ));
    }

    #[test]
    fn garbage_and_invalid_amounts_do_not_decode() {
        assert!(Envelope::<TransactionCreated>::decode(b"not json").is_err());
        let text = String::from_utf8(created().encode(None).payload.to_vec()).unwrap();
        let negative = text.replace("\"amount\":250", "\"amount\":-250");
        assert!(Envelope::<TransactionCreated>::decode(negative.as_bytes()).is_err());
    }

    #[test]
    fn transaction_numbers_outside_one_to_i64_max_do_not_decode() {
        let text = String::from_utf8(created().encode(None).payload.to_vec()).unwrap();
        for bad in ["0", "-1", "9223372036854775808", "1.5", "\"3\""] {
            let changed = text.replace("\"number\":3", &format!("\"number\":{bad}"));
            assert_ne!(changed, text);
            assert!(
                Envelope::<TransactionCreated>::decode(changed.as_bytes()).is_err(),
                "{bad}"
            );
        }
    }
}
