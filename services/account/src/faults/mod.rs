//! Fault injection, for demonstrations and tests, never in production: with `--fault-injection`
//! (`FAULT_INJECTION=true`) the service serves `/faults`, where a client arms a fault for one
//! account's `TransactionCreated` deliveries, and the listener plays it between its decision and
//! its commit:
//!
//! - `slow`: the handler takes `delay_ms` longer; the runner's `+WPI` progress acks go on, so
//!   the broker keeps the message with this handler;
//! - `freeze`: the handler stops its progress acks and sleeps `delay_ms`, as a frozen process
//!   (a long pause, a partition) would: past the ack wait the broker redelivers the message, and
//!   when the handler wakes its commit is stale;
//! - `crash`: the process aborts (`std::process::abort`, like `kill -9`: the connection drops,
//!   the message stays unacknowledged);
//! - `fail_before_ack`: the handler commits, then fails before its ack: it hands the message
//!   back (`-NAK`) instead, so the broker redelivers what was applied already (this one acts
//!   after the commit, see [`Injected::after_commit`]).
//!
//! A fault fires on the delivery whose count equals `on_delivery` (1, the first, by default),
//! once, on the replica that gets it; arming it on every replica is safe, since the redelivery
//! (delivery 2) passes. Faults expire after [`FAULT_TTL`], and at most [`MAX_FAULTS`] are armed
//! at once. They live in memory: a restart forgets them.
//!
//! Without the flag every `/faults` route answers `403` `fault_injection_off`.
//!
//! A tour: [`registry`] holds the armed faults ([`Faults`]: arm, list, clear, take);
//! [`routes`] serves them ([`router`]: `GET`, `POST` and `DELETE /faults`).

mod registry;
mod routes;

pub use registry::{
    ArmError, ArmRequest, Fault, FaultKind, Faults, Injected, FAULT_TTL, MAX_DELAY_MS, MAX_FAULTS,
    MAX_ON_DELIVERY,
};
pub use routes::router;
