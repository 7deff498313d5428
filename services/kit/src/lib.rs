//! The runtime every service built on `common-events` shares. `common-events` says what the
//! services exchange; this crate is how a service runs:
//!
//! - [`listener`] and [`runner`]: the `Listener` trait (`on_message -> Outcome`) and the loop
//!   that runs it on a durable pull consumer with manual acks, progress, NAK delays, termination
//!   of poison messages and a drain.
//! - [`db`]: one handle over SQLite or PostgreSQL, with migrations.
//! - [`outbox`]: the transactional outbox and the relay that publishes it.
//! - [`batch`]: groups concurrent writes into one database transaction.
//! - [`foundation`] and [`retry`]: start-up (database, broker, streams, consumers) with retries
//!   and backoff, so a service may start before what it depends on.
//! - [`config`], [`nats_auth`]: the settings every service shares, and the broker login.
//! - [`server`], [`http`], [`api_error`], [`page`], [`ops`]: the HTTP server's life cycle, input
//!   checks, the one API error type, paging of list endpoints, and the `/healthz` `/readyz`
//!   `/metrics` routes.
//! - [`metrics`], [`observe`]: a service's Prometheus registry, and what the HTTP port records
//!   of each request (latency by route, the request log line, the trace context).
//! - [`tasks`], [`shutdown`], [`telemetry`], [`log_limit`]: background tasks, signals, logging
//!   and OpenTelemetry traces.
//! - [`app`]: the short start-up of a service that only listens (and may serve a read API);
//!   [`sequence`]: the per-account sequence-number turn every projection decides by;
//!   [`replay`]: replaying streams into a projection (rebuilds).

pub mod api_error;
pub mod app;
pub mod batch;
pub mod bulk;
pub mod config;
pub mod db;
pub mod foundation;
pub mod http;
pub mod listener;
pub mod listener_stats;
pub mod log_limit;
pub mod metrics;
pub mod nats_auth;
pub mod observe;
pub mod ops;
pub mod outbox;
pub mod page;
pub mod replay;
pub mod retry;
pub mod runner;
pub mod sequence;
pub mod server;
pub mod shutdown;
pub mod tasks;
pub mod telemetry;

pub use listener::{
    DecisionLabel, Listener, MessageContext, Outcome, ProgressAcks, UndecodableMessage,
};
pub use runner::ListenerStats;
