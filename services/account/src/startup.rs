//! Wiring: database, broker, the `TransactionCreated` listener, outbox relay and the HTTP
//! server, with a graceful stop.

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
use crate::listener::TransactionsListener;
use crate::rebuild;
use crate::routes;
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
    store: Store,
}

impl Application {
    /// Connects to the database (running migrations) and the broker (ensuring streams and the
    /// consumer), rebuilds when asked, starts the listener and the relay, and binds the HTTP
    /// address.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let spec = ConsumerSpec {
            concurrency: config.common.listener_concurrency,
            ..ConsumerSpec::account_service()
        };
        let specs = std::slice::from_ref(&spec);
        let base = Foundation::connect(&config.common, "account", MIGRATIONS, specs).await?;
        let store = Store::new(base.db.clone(), base.relay.clone());
        if config.rebuild {
            rebuild::rebuild(&store, &base.js)
                .await
                .context("rebuilding")?;
        }
        let stats = Arc::new(ListenerStats::default());
        let mut tasks = base.tasks();
        let listener = TransactionsListener::live(store.clone());
        tasks.spawn_listener(&base.js, spec, listener, stats.clone());
        let relay_stats = base.relay.stats();
        let metrics = Arc::new(move |out: &mut String| {
            stats.render("transactions-created", out);
            relay_stats.render(out);
        });
        let ops = Ops::new(base.db.clone(), base.nats.clone(), metrics);
        let router = ops.count_requests(routes::router(store.clone()).merge(ops.router()));
        let listener = tokio::net::TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding {}", config.http_addr))?;
        let server = Server {
            name: "account-service",
            listener,
            router,
            tasks,
            nats: base.nats,
            db: base.db,
        };
        Ok(Self { server, store })
    }

    /// The bound HTTP address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The store, for tests that look at the database directly.
    pub fn store(&self) -> Store {
        self.store.clone()
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
