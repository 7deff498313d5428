//! The short way to run a service that publishes nothing: it listens to events, keeps a
//! projection in its own database and may serve a read API. [`App`] does what every such
//! service's start-up does (bind the HTTP port first, connect the database and the broker with
//! retries through [`Foundation`], serve `/healthz` `/readyz` `/metrics` meanwhile, stop
//! gracefully); the service only says what it is ([`Declared`]) and wires its listeners, routes
//! and metrics into a [`Wiring`]:
//!
//! ```ignore
//! let declared = Declared::new("example", MIGRATIONS, vec![opened_consumer()]);
//! let app = App::bind(&config.common, declared, config.http_addr).await?;
//! app.run_until(shutdown::signal(), |mut wiring| async move {
//!     wiring.listen(OPENED, OpenedListener(wiring.db.clone()))?;
//!     Ok(wiring)
//! })
//! .await
//! ```
//!
//! A service that publishes events (and so has an outbox and a relay) wires a
//! [`Server`] and a [`Foundation`] itself, as the account and transaction
//! services do.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use async_nats::jetstream;
use axum::Router;
use common_events::topology::ConsumerSpec;
use tokio_util::sync::CancellationToken;

use crate::config::CommonConfig;
use crate::db::Db;
use crate::foundation::{Foundation, Migrations, ServiceSpec, StartError};
use crate::listener::Listener;
use crate::metrics::Metrics;
use crate::ops::{DetailFn, Ops};
use crate::runner::ListenerStats;
use crate::server::{BindError, Server, Started};
use crate::tasks::Tasks;

/// The flag and variable every service's HTTP address comes from, for the error of a busy port.
pub const HTTP_ADDR_SETTING: &str = "HTTP_ADDR / --http-addr";

/// What a listening service is: its name, its migrations and the consumers it reads with.
#[derive(Clone)]
pub struct Declared {
    /// Its short name: `statement` makes the default database `statement.db`, the broker
    /// connection and the logs `statement-service`.
    pub name: &'static str,
    /// Its database migrations (the projection's tables; no outbox).
    pub migrations: Migrations,
    /// Its consumers, as declared ([`ConsumerSpec::new`]); `LISTENER_CONCURRENCY` and
    /// `ACK_WAIT` are applied when the service starts.
    pub consumers: Vec<ConsumerSpec>,
}

impl Declared {
    /// A service named `name` with `migrations`, reading with `consumers`.
    pub fn new(name: &'static str, migrations: Migrations, consumers: Vec<ConsumerSpec>) -> Self {
        Self {
            name,
            migrations,
            consumers,
        }
    }

    /// Its consumers with this replica's listener settings.
    fn tuned(&self, common: &CommonConfig) -> Vec<ConsumerSpec> {
        let consumers = self.consumers.iter().cloned();
        consumers.map(|spec| common.consumer(spec)).collect()
    }

    /// Connects to the database (migrated) and the broker (streams and consumers ensured), with
    /// the retries of [`Foundation::connect`]; for commands that run once (a rebuild) rather
    /// than serve.
    pub async fn connect(&self, common: &CommonConfig) -> Result<Foundation, StartError> {
        let consumers = self.tuned(common);
        Foundation::connect(common, self.spec(&consumers), &Ops::starting()).await
    }

    fn spec<'a>(&self, consumers: &'a [ConsumerSpec]) -> ServiceSpec<'a> {
        ServiceSpec {
            name: self.name,
            migrations: self.migrations,
            consumers,
            publishes: &[],
        }
    }
}

/// A listening service bound to its HTTP address, not yet connected.
pub struct App {
    common: CommonConfig,
    declared: Declared,
    server: Server,
}

impl App {
    /// Binds `addr` (a busy port fails at once, naming [`HTTP_ADDR_SETTING`]).
    pub async fn bind(
        common: &CommonConfig,
        declared: Declared,
        addr: SocketAddr,
    ) -> Result<Self, BindError> {
        // One short string per service started, for the server's log lines.
        let service: &'static str = Box::leak(format!("{}-service", declared.name).into());
        let server = Server::bind(service, addr, HTTP_ADDR_SETTING).await?;
        Ok(Self {
            common: common.clone(),
            declared,
            server,
        })
    }

    /// The bound HTTP address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Connects (retrying), lets `wire` start the listeners and add routes and metrics, serves
    /// until `shutdown` resolves, then stops gracefully (see [`Server::run`]). A shutdown while
    /// connecting or wiring stops at once.
    pub async fn run_until<W, Fut>(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        wire: W,
    ) -> anyhow::Result<()>
    where
        W: FnOnce(Wiring) -> Fut,
        Fut: Future<Output = anyhow::Result<Wiring>>,
    {
        let Self {
            common,
            declared,
            server,
        } = self;
        let start = |ops: Ops, stop: CancellationToken| async move {
            let consumers = declared.tuned(&common);
            let base = Foundation::connect(&common, declared.spec(&consumers), &ops).await?;
            let wiring = Wiring {
                tasks: base.tasks(),
                db: base.db,
                nats: base.nats,
                js: base.js,
                consumers,
                stop,
                ops,
                router: Router::new(),
            };
            Ok(wire(wiring).await?.started())
        };
        server.run(start, shutdown).await
    }
}

/// A connected service being wired: its connections, and what it adds to run and serve.
pub struct Wiring {
    /// The database, migrated.
    pub db: Db,
    /// The broker connection.
    pub nats: async_nats::Client,
    /// Its JetStream context.
    pub js: jetstream::Context,
    consumers: Vec<ConsumerSpec>,
    stop: CancellationToken,
    ops: Ops,
    tasks: Tasks,
    router: Router,
}

impl Wiring {
    /// Cancelled when the service is asked to stop while still wiring (a long rebuild before
    /// serving ends with it).
    pub fn stop(&self) -> &CancellationToken {
        &self.stop
    }

    /// Runs `listener` on the declared consumer named `durable` until shutdown; its counts are
    /// in `/metrics` labelled `listener="<its name>"` (see [`ListenerStats`]). An error when no
    /// such consumer was declared.
    pub fn listen<L: Listener>(
        &mut self,
        durable: &str,
        listener: L,
    ) -> anyhow::Result<Arc<ListenerStats>> {
        let Some(spec) = self
            .consumers
            .iter()
            .find(|c| c.durable == durable)
            .cloned()
        else {
            anyhow::bail!("no consumer {durable:?} is declared: add it to Declared::consumers");
        };
        let stats = ListenerStats::registered(self.ops.metrics(), listener.name());
        self.tasks
            .spawn_listener(&self.js, spec, listener, Arc::clone(&stats));
        Ok(stats)
    }

    /// Runs a background task of the service's own until shutdown (see [`Tasks::spawn`]).
    pub fn spawn<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task);
    }

    /// Serves `router`'s routes beside the others (the operational routes are the server's).
    pub fn routes(&mut self, router: Router) {
        self.router = std::mem::take(&mut self.router).merge(router);
    }

    /// The service's metrics registry, served at `/metrics`: register its own series here.
    pub fn metrics(&self) -> &Metrics {
        self.ops.metrics()
    }

    /// Adds the service's own facts to every `/readyz` body.
    pub fn readiness_detail(&self, detail: DetailFn) {
        self.ops.readiness_detail(detail);
    }

    fn started(self) -> Started {
        Started {
            router: self.router,
            tasks: self.tasks,
            nats: self.nats,
            db: self.db,
        }
    }
}

/// The exit of a service's `main`: success, or the error logged and printed (`error: …`) with
/// status 1.
pub fn exit_code(service: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let err = format!("{err:#}");
            tracing::error!(error = %err, "{service} failed");
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common_events::topology::{subjects, ACCOUNTS};

    static NO_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;

    #[test]
    fn declared_consumers_take_this_replicas_listener_settings() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            common: CommonConfig,
        }
        let cli = Cli::parse_from(["x", "--ack-wait=3s", "--listener-concurrency=2"]);
        let declared = Declared::new(
            "example",
            Migrations {
                sqlite: &NO_MIGRATIONS,
                postgres: &NO_MIGRATIONS,
            },
            vec![ConsumerSpec::new(
                ACCOUNTS,
                "example-opened",
                subjects::ACCOUNT_OPENED,
            )],
        );
        let tuned = declared.tuned(&cli.common);
        assert_eq!(tuned.len(), 1);
        assert_eq!(tuned[0].ack_wait, std::time::Duration::from_secs(3));
        assert_eq!(tuned[0].concurrency, 2);
        let spec = declared.spec(&tuned);
        assert!(
            spec.publishes.is_empty(),
            "a listening service publishes nothing"
        );
    }

    #[tokio::test]
    async fn a_busy_port_fails_at_once_naming_the_setting() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            common: CommonConfig,
        }
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let common = Cli::parse_from(["x"]).common;
        let migrations = Migrations {
            sqlite: &NO_MIGRATIONS,
            postgres: &NO_MIGRATIONS,
        };
        let declared = Declared::new("example", migrations, Vec::new());
        let err = App::bind(&common, declared, addr).await.err().unwrap();
        assert_eq!(
            err.to_string(),
            format!("cannot listen on {addr} (HTTP_ADDR / --http-addr): address in use")
        );
    }

    #[test]
    fn a_failed_service_exits_with_status_one() {
        assert_eq!(exit_code("x", Ok(())), ExitCode::SUCCESS);
        assert_eq!(
            exit_code("x", Err(anyhow::anyhow!("gave up"))),
            ExitCode::FAILURE
        );
    }
}
