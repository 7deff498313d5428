//! What the services exchange: the events, their envelope, subjects and streams, and how an
//! event goes onto the wire. How a service runs (database, outbox, listener runner, HTTP) lives
//! in the `service-kit` crate, so a program that only reads or writes events needs only this one.
//!
//! A tour:
//! - [`ids`]: newtypes at the boundary (`AccountId`, `TransactionId`, `EventId`, `Amount`,
//!   `TransactionKind`).
//! - [`events`]: `AccountOpened`, `TransactionCreated`, `TransactionApplied`,
//!   `TransactionRejected`, each with its type name, schema version and subject.
//! - [`envelope`]: the versioned envelope around every event and its JSON encoding.
//! - [`topology`]: every subject, stream and durable consumer in one place, and `ensure`.
//! - [`publisher`]: JetStream publish with `Nats-Msg-Id` = event id, awaiting the PubAck.
//! - [`observe`]: decision notes on core NATS, for watching the ordering protocol at work.
//! - [`inspect`]: reading a stream's events back from the start.
//! - [`trace`]: the W3C `traceparent` carried in headers.

pub mod envelope;
pub mod events;
pub mod ids;
pub mod inspect;
pub mod observe;
pub mod publisher;
pub mod topology;
pub mod trace;

pub use envelope::{DecodeError, EncodedEvent, Envelope};
pub use events::{
    AccountOpened, Event, TransactionApplied, TransactionCreated, TransactionRejected,
};
pub use ids::{AccountId, Amount, EventId, TransactionId, TransactionKind, TransactionNumber};
pub use publisher::{PublishError, Published, Publisher};
pub use topology::{ConsumerSpec, StartAt, StreamSpec};
pub use trace::TraceContext;
