//! Wiring: the HTTP port first, then database and broker (retried until they answer), the
//! listeners, the outbox relay and the API, with a graceful stop.

use std::future::Future;
use std::net::SocketAddr;

use common_events::topology::{subjects, ConsumerSpec, ACCOUNTS, TRANSACTIONS};
use service_kit::foundation::{Foundation, Migrations, ServiceSpec};
use service_kit::ops::Ops;
use service_kit::runner::ListenerStats;
use service_kit::server::{Server, Started};
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::idempotency::retention::sweep_keys;
use crate::listeners::{AccountsListener, AppliedListener, RejectedListener};
use crate::routes::{self, AppState};
use crate::store::Store;

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// The service's migrations.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// The service's name in logs and broker connections.
pub const SERVICE: &str = "transaction-service";

/// Runs the service until `shutdown` resolves: binds the HTTP port (a busy port fails at
/// once), connects to the database and the broker with retries, serves, then stops gracefully.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Application::build(config).await?.run_until(shutdown).await
}

/// A service bound to its HTTP address, not yet connected.
pub struct Application {
    config: Config,
    server: Server,
}

/// The consumers this service reads with: `AccountOpened`, `TransactionApplied` and
/// `TransactionRejected`, one durable consumer each.
pub fn consumers() -> [ConsumerSpec; 3] {
    [
        ConsumerSpec::new(
            ACCOUNTS,
            "transaction-service-accounts",
            subjects::ACCOUNT_OPENED,
        ),
        ConsumerSpec::new(
            TRANSACTIONS,
            "transaction-service-applied",
            subjects::TRANSACTION_APPLIED,
        ),
        ConsumerSpec::new(
            TRANSACTIONS,
            "transaction-service-rejected",
            subjects::TRANSACTION_REJECTED,
        ),
    ]
}

impl Application {
    /// Binds the HTTP address. Nothing is connected yet: [`Application::run_until`] does that,
    /// serving `/healthz` and `/readyz` meanwhile.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let server = Server::bind(SERVICE, config.http_addr, "HTTP_ADDR / --http-addr").await?;
        Ok(Self { config, server })
    }

    /// The bound HTTP address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Connects (retrying, see [`Foundation::connect`]), starts the listeners and the relay,
    /// serves until `shutdown` resolves, then stops gracefully (see [`Server::run`]).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self { config, server } = self;
        server
            .run(|ops, stop| start(config, ops, stop), shutdown)
            .await
    }
}

async fn start(config: Config, ops: Ops, stop: CancellationToken) -> anyhow::Result<Started> {
    let specs = consumers().map(|spec| config.common.consumer(spec));
    let declared = ServiceSpec {
        name: "transaction",
        migrations: MIGRATIONS,
        consumers: &specs,
        publishes: &[subjects::TRANSACTION_CREATED],
    };
    let base = Foundation::connect(&config.common, declared, &ops).await?;
    let store = Store::new(base.db.clone(), base.relay.clone());
    let [s0, s1, s2] = ["accounts", "applied", "rejected"]
        .map(|name| ListenerStats::registered(ops.metrics(), name));
    let mut tasks = base.tasks();
    let [accounts, applied, rejected] = specs;
    let js = &base.js;
    let settler = crate::listeners::settler(store.clone());
    tasks.spawn_listener(js, accounts, AccountsListener(store.clone()), s0);
    tasks.spawn_listener(js, applied, AppliedListener(settler.clone()), s1);
    tasks.spawn_listener(js, rejected, RejectedListener(settler), s2);
    let retention = config.idempotency_key_retention;
    tokio::spawn(sweep_keys(base.db.clone(), retention, stop));
    let state = AppState {
        creator: crate::create::creator(store.clone(), retention),
        store,
        max_amount: config.max_amount,
    };
    Ok(Started {
        router: routes::router(state),
        tasks,
        nats: base.nats,
        db: base.db,
    })
}
