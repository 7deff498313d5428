//! The transaction service: accepts transactions over HTTP, numbers them per account
//! (`number = previous + 1`, in the same database transaction as the row and its outbox event)
//! and publishes `TransactionCreated`; learns accounts from `AccountOpened` and follows
//! `TransactionApplied` / `TransactionRejected` to set each transaction's status.
//!
//! [`run`] is the whole service: it binds the HTTP port, connects to the database and the
//! broker (retrying until they answer), serves, and stops gracefully when `shutdown` resolves.
//!
//! A tour: [`config`] (flags and environment), [`startup`] (wiring, `Application`, `run`),
//! [`routes`] (the HTTP API), [`store`] (transactions and their status), [`numbering`] (each
//! account's sequence), [`idempotency`] (the `Idempotency-Key` header, its replay and
//! retention), [`create`] (creating, in batches), [`listeners`] (the events it consumes),
//! [`error`] (`ApiError`).

pub mod config;
pub mod create;
pub mod error;
pub mod idempotency;
pub mod listeners;
pub mod numbering;
pub mod routes;
pub mod startup;
pub mod store;

pub use config::Config;
pub use startup::{run, Application};
