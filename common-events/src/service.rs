//! What every service built on these events shares: database access (SQLite or PostgreSQL), the
//! transactional outbox and its relay, common configuration, the `/healthz` `/readyz`
//! `/metrics` routes, start-up with retries and backoff, the HTTP server's life cycle, logging
//! and shutdown signals. A third service reuses these as they are.

pub mod batch;
pub mod config;
pub mod db;
pub mod foundation;
pub mod http;
pub mod nats_auth;
pub mod ops;
pub mod outbox;
pub mod retry;
pub mod server;
pub mod shutdown;
pub mod tasks;
pub mod telemetry;
