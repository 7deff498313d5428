//! The start-up every service shares: database (migrated), broker (streams and consumers
//! ensured) and outbox relay.
//!
//! The database and the broker are connected to side by side, each retried with exponential
//! backoff (see [`retry`](crate::retry)) until it answers or `CONNECT_DEADLINE` passes, so a
//! service may start before what it depends on.

use async_nats::jetstream;
use sqlx::migrate::Migrator;
use tokio::time::Instant;

use crate::config::{redact_url, CommonConfig};
use crate::db::{Backend, Db, DbError, DbOptions};
use crate::ops::Ops;
use crate::outbox::{self, Relay, RelayOptions};
use crate::retry::{retry, Failure, Stop};
use crate::tasks::{connect_nats, Tasks};
use common_events::publisher::Publisher;
use common_events::topology::{self, ConsumerSpec, TopologyError};

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created.
    #[error("creating the data directory: {0}")]
    DataDir(#[source] std::io::Error),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The broker did not answer.
    #[error("connecting to NATS at {url}: {error} ({})", nats_hint(error))]
    Nats {
        /// The configured URL.
        url: String,
        /// The client's error (its own causes are in its message).
        error: async_nats::ConnectError,
    },
    /// The broker login settings are unusable (a missing or malformed credentials file).
    #[error("broker login: {0}")]
    NatsLogin(String),
    /// Streams or consumers could not be created.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// `CONNECT_DEADLINE` passed before a step succeeded.
    #[error("gave up on {what} after {attempts} attempts (CONNECT_DEADLINE={deadline}): {last}")]
    Deadline {
        /// The step: "the broker at nats://…".
        what: String,
        /// How many attempts were made.
        attempts: u32,
        /// The deadline, as configured.
        deadline: String,
        /// The last attempt's error.
        last: String,
    },
}

/// What to check when the broker connection fails.
fn nats_hint(error: &async_nats::ConnectError) -> &'static str {
    use async_nats::ConnectErrorKind as Kind;
    match error.kind() {
        Kind::Authentication | Kind::AuthorizationViolation => {
            "the broker refused the login: check NATS_USER and NATS_PASSWORD, NATS_TOKEN, \
             NATS_CREDS or NATS_NKEY"
        }
        Kind::ServerParse => "NATS_URL is not a NATS URL or a comma-separated list of them",
        Kind::Tls => "a TLS problem",
        _ => "is the broker running? set NATS_URL",
    }
}

impl StartError {
    fn classify(self) -> Failure<Self> {
        let transient = match &self {
            StartError::DataDir(_) | StartError::NatsLogin(_) => false,
            StartError::Db(err) => err.is_transient(),
            StartError::Nats { error, .. } => {
                use async_nats::ConnectErrorKind as Kind;
                !matches!(
                    error.kind(),
                    Kind::ServerParse
                        | Kind::Authentication
                        | Kind::AuthorizationViolation
                        | Kind::Tls
                )
            }
            // JetStream not enabled yet, no leader yet, a timeout: all worth another try.
            StartError::Topology(_) => true,
            StartError::Deadline { .. } => false,
        };
        if transient {
            Failure::Transient(self)
        } else {
            Failure::Fatal(self)
        }
    }
}

/// The migrations of a service, one directory per backend.
#[derive(Clone, Copy)]
pub struct Migrations {
    /// For SQLite.
    pub sqlite: &'static Migrator,
    /// For PostgreSQL.
    pub postgres: &'static Migrator,
}

/// What a service declares about itself; the kit does the rest.
#[derive(Clone, Copy)]
pub struct ServiceSpec<'a> {
    /// Its short name: `account` makes the default database `account.db` and the broker
    /// connection `account-service`.
    pub name: &'static str,
    /// Its database migrations.
    pub migrations: Migrations,
    /// The consumers it reads with, ensured at start-up (build each with
    /// [`CommonConfig::consumer`], so that `LISTENER_CONCURRENCY` and `ACK_WAIT` apply).
    pub consumers: &'a [ConsumerSpec],
    /// The subjects it publishes through its outbox. Empty for a service that only listens:
    /// then it needs no `outbox` table and no relay runs.
    pub publishes: &'a [&'static str],
}

/// A service's connections, ready to be wired.
pub struct Foundation {
    /// The database.
    pub db: Db,
    /// The broker connection.
    pub nats: async_nats::Client,
    /// Its JetStream context.
    pub js: jetstream::Context,
    /// The outbox relay (not yet running).
    pub relay: Relay,
    relay_enabled: bool,
}

impl Foundation {
    /// Opens and migrates the database (`<service>.db` under the data directory unless
    /// `DATABASE_URL` is set) and, side by side, connects to the broker as `<service>-service`
    /// and ensures the streams and `consumers`. Each step is retried with backoff until it
    /// succeeds, fails for good (a malformed URL, a rejected password, a migration that does
    /// not match the database) or `CONNECT_DEADLINE` passes. `ops` learns of each connection as
    /// it comes up, for `/readyz`, and serves the relay's counts in `/metrics`.
    ///
    /// Cancel it by dropping the future.
    pub async fn connect(
        common: &CommonConfig,
        spec: ServiceSpec<'_>,
        ops: &Ops,
    ) -> Result<Self, StartError> {
        let deadline = common.connect_deadline().map(|d| Instant::now() + d);
        let name = format!("{}-service", spec.name);
        let (db, (nats, js)) = tokio::try_join!(
            Self::database(common, &spec, deadline, ops),
            Self::broker(common, &name, spec.consumers, deadline, ops),
        )?;
        let options = RelayOptions {
            crash_after_publish: common.outbox_crash_after_publish,
            ..RelayOptions::default()
        };
        let relay = Relay::new(db.clone(), Publisher::new(js.clone()), options);
        if !spec.publishes.is_empty() {
            relay.stats().register(ops.metrics());
        }
        Ok(Self {
            db,
            nats,
            js,
            relay,
            relay_enabled: common.outbox_relay && !spec.publishes.is_empty(),
        })
    }

    async fn database(
        common: &CommonConfig,
        spec: &ServiceSpec<'_>,
        deadline: Option<Instant>,
        ops: &Ops,
    ) -> Result<Db, StartError> {
        let migrations = spec.migrations;
        let url = common
            .database_url(spec.name)
            .map_err(StartError::DataDir)?;
        let max_connections = match Backend::of_url(&url)? {
            Backend::Sqlite => common.db_max_connections.unwrap_or(4),
            Backend::Postgres => common.db_max_connections.unwrap_or(16),
        };
        let options = DbOptions {
            max_connections,
            sqlite_synchronous: common.sqlite_synchronous,
        };
        let what = format!("the database at {}", redact_url(&url));
        let db = retry(&what, deadline, || async {
            Db::connect_with(&url, options)
                .await
                .map_err(|err| StartError::Db(err).classify())
        })
        .await
        .map_err(|stop| gave_up(stop, &what, common))?;
        ops.database_up(db.clone());
        let migrating = format!("migrating {what}");
        let publishes = !spec.publishes.is_empty();
        retry(&migrating, deadline, || async {
            let migrated = async {
                db.migrate(migrations.sqlite, migrations.postgres).await?;
                if publishes {
                    outbox::migrate(&db).await?;
                }
                Ok(())
            };
            migrated
                .await
                .map_err(|err: DbError| StartError::Db(err).classify())
        })
        .await
        .map_err(|stop| gave_up(stop, &migrating, common))?;
        tracing::info!(database = %redact_url(&url), "database connected and migrated");
        Ok(db)
    }

    async fn broker(
        common: &CommonConfig,
        name: &str,
        consumers: &[ConsumerSpec],
        deadline: Option<Instant>,
        ops: &Ops,
    ) -> Result<(async_nats::Client, jetstream::Context), StartError> {
        let url = redact_url(&common.nats_url);
        let what = format!("the broker at {url}");
        let login = common
            .nats_auth
            .load_for(&common.nats_url)
            .map_err(StartError::NatsLogin)?;
        tracing::info!(login = login.describe(), "broker login");
        let (nats, js) = retry(&what, deadline, || async {
            connect_nats(&common.nats_url, name, &login)
                .await
                .map_err(|error| {
                    let url = url.clone();
                    StartError::Nats { url, error }.classify()
                })
        })
        .await
        .map_err(|stop| gave_up(stop, &what, common))?;
        ops.broker_up(nats.clone());
        let ensuring = format!("the streams and consumers on {what}");
        retry(&ensuring, deadline, || async {
            topology::ensure_replicated(&js, consumers, common.stream_replicas)
                .await
                .map_err(|err| StartError::Topology(err).classify())
        })
        .await
        .map_err(|stop| gave_up(stop, &ensuring, common))?;
        tracing::info!(broker = %url, "broker connected; streams and consumers in place");
        Ok((nats, js))
    }

    /// Background tasks with the relay already running (unless the service publishes nothing or
    /// `OUTBOX_RELAY=false`).
    pub fn tasks(&self) -> Tasks {
        let mut tasks = Tasks::new();
        if self.relay_enabled {
            tasks.spawn_relay(self.relay.clone());
        }
        tasks
    }
}

fn gave_up(stop: Stop<StartError>, what: &str, common: &CommonConfig) -> StartError {
    match stop {
        Stop::Fatal(err) => err,
        Stop::Deadline { attempts, last } => StartError::Deadline {
            what: what.to_owned(),
            attempts,
            deadline: common.connect_deadline().map_or_else(
                || "none".to_owned(),
                |d| humantime::format_duration(d).to_string(),
            ),
            last: last.map_or_else(
                || "the last attempt had no answer by the deadline".to_owned(),
                |err| err.to_string(),
            ),
        },
    }
}
