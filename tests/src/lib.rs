//! End-to-end tests of the whole stack and the load tool.
//!
//! - [`client`]: a small client of both services' HTTP APIs.
//! - [`stack`]: the whole stack in one process for tests: a broker, a transaction service and
//!   account-service replicas sharing one database.
//! - [`invariants`]: every invariant of the ordering protocol (docs/ordering.md), checked
//!   against what the services report and what the stream holds.
//! - [`load`]: a concurrent mixed load of deposits and withdrawals over many accounts, timed from
//!   request to applied.

pub mod client;
pub mod invariants;
pub mod load;
pub mod stack;
