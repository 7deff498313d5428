//! The statement service: per-account statements with a running balance, projected from the
//! account service's `AccountOpened`, `TransactionApplied` and `TransactionRejected` into a
//! database of its own, by the same sequence-number protocol as the account service (see
//! `docs/ordering.md`). It publishes nothing, so it has no outbox and no relay; it is built on
//! [`service_kit::app`], the short start-up of a listening service (`docs/new-service.md`
//! walks through how).
//!
//! A tour: this file (configuration, consumers, wiring, [`run`]), [`projection`] (the decision
//! for each event, as a pure function, and the three listeners around it), [`store`] (SQL),
//! [`routes`] (`GET /api/accounts/{id}/statement`), [`rebuild`] (`statement-service rebuild`:
//! drop the projection and replay the streams).

pub mod projection;
pub mod rebuild;
pub mod routes;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use common_events::topology::{subjects, ConsumerSpec, ACCOUNTS, TRANSACTIONS};
use service_kit::app::{App, Declared, Wiring};
use service_kit::config::{parse_addr, CommonConfig};
use service_kit::foundation::Migrations;
use sqlx::migrate::Migrator;

use crate::projection::{AppliedListener, OpenedListener, ProjectionStats, RejectedListener};
use crate::store::Store;

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// The service's migrations.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// The durable consumer (queue group) of `AccountOpened`.
pub const OPENED: &str = "statement-service-opened";
/// The durable consumer of `TransactionApplied`.
pub const APPLIED: &str = "statement-service-applied";
/// The durable consumer of `TransactionRejected`.
pub const REJECTED: &str = "statement-service-rejected";

/// What the service is: its name, migrations and consumers.
pub fn declared() -> Declared {
    Declared::new(
        "statement",
        MIGRATIONS,
        vec![
            ConsumerSpec::new(ACCOUNTS, OPENED, subjects::ACCOUNT_OPENED),
            ConsumerSpec::new(TRANSACTIONS, APPLIED, subjects::TRANSACTION_APPLIED),
            ConsumerSpec::new(TRANSACTIONS, REJECTED, subjects::TRANSACTION_REJECTED),
        ],
    )
}

/// `statement-service`: per-account statements with a running balance.
#[derive(Parser, Clone, Debug)]
#[command(name = "statement-service", version, about)]
pub struct Config {
    /// Settings every service shares.
    #[command(flatten)]
    pub common: CommonConfig,

    /// Where the HTTP API listens (port 0 picks a free port; the bound address is logged).
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8083", value_parser = parse_addr)]
    pub http_addr: SocketAddr,

    /// What to do; without a command, serve.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands of `statement-service`.
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Serve the API and keep the statements up to date (the default).
    Serve,
    /// Drop the statements and replay ACCOUNTS and TRANSACTIONS from the start into them, then
    /// exit. A service running on the same database meanwhile is safe: its events wait for
    /// their turn as any late event does.
    Rebuild,
}

/// Runs what `config` asks for until it is done or `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    match config.command {
        None | Some(Command::Serve) => Service::bind(&config).await?.run_until(shutdown).await,
        Some(Command::Rebuild) => {
            let report = rebuild::run(&config.common, shutdown).await?;
            println!(
                "rebuilt {} statements with {} lines",
                report.accounts, report.lines
            );
            Ok(())
        }
    }
}

/// The service bound to its HTTP address, not yet connected.
pub struct Service {
    app: App,
}

impl Service {
    /// Binds the HTTP address (a busy port fails at once).
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        let app = App::bind(&config.common, declared(), config.http_addr).await?;
        Ok(Self { app })
    }

    /// The bound HTTP address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.app.local_addr()
    }

    /// Connects (retrying), runs the listeners and serves until `shutdown` resolves.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.app.run_until(shutdown, wire).await
    }
}

/// The listeners, the API and the metrics.
async fn wire(mut wiring: Wiring) -> anyhow::Result<Wiring> {
    let store = Store::new(wiring.db.clone());
    let stats = Arc::new(ProjectionStats::default());
    wiring.listen(OPENED, OpenedListener::new(store.clone()))?;
    wiring.listen(APPLIED, AppliedListener::new(store.clone(), stats.clone()))?;
    wiring.listen(
        REJECTED,
        RejectedListener::new(store.clone(), stats.clone()),
    )?;
    stats.register(wiring.metrics());
    wiring.routes(routes::router(store));
    Ok(wiring)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("statement-service").chain(args.iter().copied()))
    }

    #[test]
    fn serves_on_8083_by_default_and_rebuild_is_a_command() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.http_addr.port(), 8083);
        assert_eq!(config.command, None);
        assert_eq!(parse(&["rebuild"]).unwrap().command, Some(Command::Rebuild));
        assert_eq!(parse(&["serve"]).unwrap().command, Some(Command::Serve));
        assert!(parse(&["rebiuld"]).is_err());
    }

    #[test]
    fn every_consumer_is_durable_and_named_after_the_service() {
        let declared = declared();
        let names: Vec<&str> = declared
            .consumers
            .iter()
            .map(|c| c.durable.as_str())
            .collect();
        assert_eq!(names, [OPENED, APPLIED, REJECTED]);
        assert!(names.iter().all(|n| n.starts_with("statement-service-")));
    }
}
