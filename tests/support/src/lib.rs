//! Test support shared by the services' tests and the end-to-end tests.
//!
//! - [`brokers`]: the table of broker targets (today the reference nats-server with JetStream;
//!   the bundled broker joins with one line once it has JetStream).
//! - [`cluster`]: a three-node nats-server JetStream cluster on loopback (the `nats-cluster`
//!   target) with a handle that kills a node and restarts it.
//! - [`corpus`]: fuzz corpora run as tests: the fuzz targets' checks, a seeded mutator, a
//!   service's database without a broker.
//! - [`databases`]: SQLite and PostgreSQL targets, a fresh database per test.
//! - [`postgres`]: a throwaway local PostgreSQL cluster (`initdb` + `pg_ctl`), or
//!   `TEST_DATABASE_URL`.
//! - [`exposition`]: a strict parser of the Prometheus text format, for `/metrics`.
//! - [`in_process`]: a service on a tokio task with an HTTP client for its API.
//! - [`jetstream`]: connecting, reading a consumer's counts, a sample event.
//! - [`matrix`]: runs scenarios once per target, named `<broker>/<database>::<scenario>`.
//! - [`process`]: a service binary as a child process, its address read from its log.
//! - [`startup`]: checks of a service that waits for its database or broker, and a binary run
//!   to its exit.
//! - [`wait`]: bounded waits with a clear failure message, `/readyz` included.
//!
//! With `CI=true` a missing nats-server or PostgreSQL fails the run; elsewhere those targets are
//! skipped with a note.

pub mod brokers;
pub mod cluster;
pub mod corpus;
pub mod databases;
pub mod exposition;
pub mod in_process;
pub mod jetstream;
pub mod matrix;
pub mod postgres;
pub mod process;
pub mod startup;
pub mod wait;

pub use broker::harness::node;
pub use brokers::{unused_port, BrokerOnPort, BrokerTarget, StartedBroker};
pub use cluster::NatsCluster;
pub use databases::DatabaseTarget;
pub use in_process::InProcess;
pub use matrix::{Scenario, Target};
pub use wait::eventually;

/// True when running in CI, where every target must run.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Makes a [`Scenario`] from an `async fn name(target: Target) -> anyhow::Result<()>`, named
/// after the function; `scenario!(name, only = predicate)` runs it only on the targets for which
/// `fn predicate(&Target) -> bool` holds.
#[macro_export]
macro_rules! scenario {
    ($name:ident) => {
        $crate::Scenario {
            name: stringify!($name),
            run: |target| Box::pin($name(target)),
            only: None,
        }
    };
    ($name:ident, only = $only:expr) => {
        $crate::Scenario {
            name: stringify!($name),
            run: |target| Box::pin($name(target)),
            only: Some($only),
        }
    };
}
