//! The events the account and transaction services exchange, and the JetStream plumbing they
//! share.
//!
//! A tour:
//! - [`ids`]: newtypes at the boundary (`AccountId`, `TransactionId`, `EventId`, `Amount`,
//!   `TransactionKind`).
//! - [`events`]: `AccountOpened`, `TransactionCreated`, `TransactionApplied`,
//!   `TransactionRejected`, each with its type name, schema version and subject.
//! - [`envelope`]: the versioned envelope around every event and its JSON encoding.
//! - [`topology`]: every subject, stream and durable consumer in one place, and `ensure`.
//! - [`publisher`]: JetStream publish with `Nats-Msg-Id` = event id, awaiting the PubAck.
//! - [`listener`] and [`runner`]: the `Listener` trait (`on_message -> Outcome`) and the loop that
//!   runs it with manual acks, progress, NAK delays, termination of poison messages and a drain.
//! - [`log_limit`]: at most one line per interval for trouble a bad producer can repeat.
//! - [`observe`]: decision notes on core NATS, for watching the ordering protocol at work.
//! - [`inspect`]: reading a stream's events back from the start.
//! - [`trace`]: the W3C `traceparent` carried in headers.
//! - [`service`]: what every service shares: database handle, outbox relay, configuration,
//!   operational routes, logging and shutdown.

pub mod envelope;
pub mod events;
pub mod ids;
pub mod inspect;
pub mod listener;
pub mod log_limit;
pub mod observe;
pub mod publisher;
pub mod runner;
pub mod service;
pub mod topology;
pub mod trace;

pub use envelope::{DecodeError, EncodedEvent, Envelope};
pub use events::{
    AccountOpened, Event, TransactionApplied, TransactionCreated, TransactionRejected,
};
pub use ids::{AccountId, Amount, EventId, TransactionId, TransactionKind};
pub use listener::{Listener, MessageContext, Outcome, ProgressAcks, UndecodableMessage};
pub use publisher::{PublishError, Published, Publisher};
pub use runner::ListenerStats;
pub use topology::{ConsumerSpec, StartAt, StreamSpec};
pub use trace::TraceContext;
