//! End-to-end tests of the whole stack and the load tool.
//!
//! - [`client`]: a small client of both services' HTTP APIs.
//! - [`stack`]: the whole stack in one process for tests: a broker, a transaction service and
//!   account-service replicas sharing one database.
//! - [`invariants`]: every invariant of the ordering protocol (docs/ordering.md), checked
//!   against what the services report and what the stream holds.
//! - [`load`]: the closed-loop load, a concurrent mixed load of deposits and withdrawals over
//!   many accounts, timed from request to applied.
//! - [`open_loop`]: the same transactions at a fixed rate, on the schedule of [`schedule`],
//!   timed from each one's scheduled time.
//! - [`outcomes`]: when each transaction's outcome event reached the broker.
//! - [`figures`]: a run's figures, for the JSON output and the human summary.

pub mod client;
pub mod figures;
pub mod invariants;
pub mod load;
pub mod open_loop;
pub mod outcomes;
pub mod schedule;
pub mod stack;
