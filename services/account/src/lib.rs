//! The account service: opens accounts (publishing `AccountOpened` through the outbox) and keeps
//! balances as a projection of `TransactionCreated`, applied in per-account number order by the
//! listener of queue group `account-service` (see `docs/ordering.md`).
//!
//! [`run`] is the whole service: it binds the HTTP port, connects to the database and the
//! broker (retrying until they answer), serves, and stops gracefully when `shutdown` resolves.
//!
//! A tour: [`config`] (flags and environment), [`startup`] (wiring, `Application`, `run`), [`routes`]
//! (the HTTP API), [`ordering`] (the pure duplicate/next/gap decision and when a gap is parked),
//! [`listener`] (the consumer around it), [`parked`] (parked transactions), [`conflict`] (a
//! number claimed twice),
//! [`store`] (SQL), [`rebuild`] (replaying the streams into an empty
//! database), [`error`] (`ApiError`), [`faults`] (fault injection for demonstrations and tests:
//! `--fault-injection` and `/faults`).

pub mod config;
pub mod conflict;
pub mod error;
pub mod faults;
pub mod listener;
pub mod ordering;
pub mod parked;
pub mod rebuild;
pub mod routes;
pub mod startup;
pub mod store;

pub use config::Config;
pub use startup::{run, Application};
