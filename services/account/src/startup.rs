//! Wiring: the HTTP port first, then database and broker (retried until they answer), the
//! `TransactionCreated` listener, the outbox relay and the API, with a graceful stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;
use common_events::observe::DecisionNotes;
use common_events::topology::{subjects, ConsumerSpec, TRANSACTIONS};
use service_kit::foundation::{Foundation, Migrations, ServiceSpec};
use service_kit::metrics::Metrics;
use service_kit::ops::Ops;
use service_kit::runner::ListenerStats;
use service_kit::server::{Server, Started};
use sqlx::migrate::Migrator;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::faults::{self, Faults};
use crate::listener::TransactionsListener;
use crate::parked;
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

/// The service's name in logs, broker connections and decision notes.
pub const SERVICE: &str = "account-service";

/// The queue group every replica shares on `transactions.created`.
pub const CONSUMER: &str = "account-service";

/// The consumer the service reads `TransactionCreated` with.
pub fn transactions_created() -> ConsumerSpec {
    ConsumerSpec::new(TRANSACTIONS, CONSUMER, subjects::TRANSACTION_CREATED)
}

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
    store: watch::Sender<Option<Store>>,
}

impl Application {
    /// Binds the HTTP address. Nothing is connected yet: [`Application::run_until`] does that,
    /// serving `/healthz` and `/readyz` meanwhile.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let server = Server::bind(SERVICE, config.http_addr, "HTTP_ADDR / --http-addr").await?;
        Ok(Self {
            config,
            server,
            store: watch::Sender::new(None),
        })
    }

    /// The bound HTTP address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The store, once the service is connected to its database (for tests that look at the
    /// database directly); an error when the service stops before that.
    pub fn store(&self) -> impl Future<Output = anyhow::Result<Store>> + Send + 'static {
        let mut store = self.store.subscribe();
        async move {
            let store = store
                .wait_for(Option::is_some)
                .await
                .map_err(|_| anyhow::anyhow!("the service stopped before it had a database"))?;
            store.clone().context("waited for the store")
        }
    }

    /// Connects (retrying, see [`Foundation::connect`]), rebuilds when asked, starts the
    /// listener and the relay, serves until `shutdown` resolves, then stops gracefully (see
    /// [`Server::run`]).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            config,
            server,
            store,
        } = self;
        let start = |ops, stop| start(config, ops, stop, &store);
        server.run(start, shutdown).await
    }
}

async fn start(
    config: Config,
    ops: Ops,
    stop: CancellationToken,
    publish_store: &watch::Sender<Option<Store>>,
) -> anyhow::Result<Started> {
    let spec = config.common.consumer(transactions_created());
    let declared = ServiceSpec {
        name: "account",
        migrations: MIGRATIONS,
        consumers: std::slice::from_ref(&spec),
        publishes: &[
            subjects::ACCOUNT_OPENED,
            subjects::TRANSACTION_APPLIED,
            subjects::TRANSACTION_REJECTED,
        ],
    };
    let base = Foundation::connect(&config.common, declared, &ops).await?;
    let store = Store::new(base.db.clone(), base.relay.clone());
    publish_store.send_replace(Some(store.clone()));
    if config.rebuild {
        rebuild::rebuild_until(&store, &base.js, &stop)
            .await
            .context("rebuilding")?;
    }
    let replica = config.common.replica_id();
    let notes = config.decision_notes.then(|| {
        tracing::info!(%replica, "publishing decision notes");
        DecisionNotes::new(base.nats.clone(), SERVICE, replica.clone())
    });
    let faults = config.fault_injection.then(|| {
        tracing::warn!(
            "fault injection is on (/faults): for demonstrations and tests, never in production"
        );
        Faults::default()
    });
    let stats = ListenerStats::registered(ops.metrics(), "transactions-created");
    let mut tasks = base.tasks();
    let listener = TransactionsListener::live(store.clone(), notes.clone())
        .with_gap_policy(config.gap_policy())
        .with_concurrency(spec.concurrency)
        .with_faults(faults.clone());
    tasks.spawn_listener(&base.js, spec, listener, stats.clone());
    let sweeping = store.clone();
    tasks.spawn(move |stop| parked::sweep(sweeping, stop));
    let parking = Arc::clone(store.parking());
    let detail = Arc::clone(&parking);
    ops.readiness_detail(Arc::new(move |body| detail.readiness(body)));
    parking.register(ops.metrics());
    if let Some(notes) = notes {
        register_notes(ops.metrics(), notes);
    }
    Ok(Started {
        router: routes::router(store).merge(faults::router(faults, replica)),
        tasks,
        nats: base.nats,
        db: base.db,
    })
}

/// Serves the decision notes' counts: `decision_notes_total{result="sent"|"dropped"}`.
fn register_notes(metrics: &Metrics, notes: DecisionNotes) {
    metrics.counters_fn(
        "decision_notes",
        "Decision notes handed to the broker connection (sent) or dropped (broker unreachable, \
         queue full).",
        move || {
            let stats = notes.stats();
            [("sent", &stats.sent), ("dropped", &stats.dropped)]
                .into_iter()
                .map(|(result, counter)| {
                    let labels = vec![("result", result.to_owned())];
                    (labels, counter.load(Ordering::Relaxed))
                })
                .collect()
        },
    );
}
