//! Wiring: database, broker, listeners, outbox relay and the HTTP server, with a graceful stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use common_events::runner::ListenerStats;
use common_events::service::foundation::{Foundation, Migrations};
use common_events::service::ops::Ops;
use common_events::service::server::Server;
use common_events::topology::ConsumerSpec;
use sqlx::migrate::Migrator;

use crate::config::Config;
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

/// A built service: bound to its address, connected, not yet serving.
pub struct Application {
    server: Server,
}

/// The consumers this service reads, with the configured concurrency.
fn consumers(concurrency: usize) -> [ConsumerSpec; 3] {
    [
        ConsumerSpec::transaction_service_accounts(),
        ConsumerSpec::transaction_service_applied(),
        ConsumerSpec::transaction_service_rejected(),
    ]
    .map(|spec| ConsumerSpec {
        concurrency,
        ..spec
    })
}

impl Application {
    /// Connects to the database (running migrations) and the broker (ensuring streams and
    /// consumers), starts the listeners and the relay, and binds the HTTP address.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let specs = consumers(config.common.listener_concurrency);
        let base = Foundation::connect(&config.common, "transaction", MIGRATIONS, &specs).await?;
        let store = Store::new(base.db.clone(), base.relay.clone());
        let stats: [Arc<ListenerStats>; 3] = Default::default();
        let mut tasks = base.tasks();
        let [accounts, applied, rejected] = specs;
        let js = &base.js;
        let settler = crate::listeners::settler(store.clone());
        let [s0, s1, s2] = stats.clone();
        tasks.spawn_listener(js, accounts, AccountsListener(store.clone()), s0);
        tasks.spawn_listener(js, applied, AppliedListener(settler.clone()), s1);
        tasks.spawn_listener(js, rejected, RejectedListener(settler), s2);
        let relay_stats = base.relay.stats();
        let metrics = Arc::new(move |out: &mut String| {
            for (name, stats) in ["accounts", "applied", "rejected"].iter().zip(&stats) {
                stats.render(name, out);
            }
            relay_stats.render(out);
        });
        let ops = Ops::new(base.db.clone(), base.nats.clone(), metrics);
        let state = AppState {
            creator: crate::create::creator(store.clone()),
            store,
            max_amount: config.max_amount,
        };
        let router = ops.count_requests(routes::router(state).merge(ops.router()));
        let listener = tokio::net::TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding {}", config.http_addr))?;
        let server = Server {
            name: "transaction-service",
            listener,
            router,
            tasks,
            nats: base.nats,
            db: base.db,
        };
        Ok(Self { server })
    }

    /// The bound HTTP address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops gracefully (see [`Server::run_until`]).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.server
            .run_until(shutdown)
            .await
            .context("serving HTTP")
    }
}
