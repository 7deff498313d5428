//! The start-up every service shares: database (migrated), broker (streams and consumers
//! ensured) and outbox relay.

use async_nats::jetstream;
use sqlx::migrate::Migrator;

use super::config::CommonConfig;
use super::db::{Backend, Db, DbError};
use super::outbox::{Relay, RelayOptions};
use super::tasks::{connect_nats, Tasks};
use crate::publisher::Publisher;
use crate::topology::{self, ConsumerSpec, TopologyError};

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
    #[error("connecting to NATS at {url}: {source} (is the broker running? set NATS_URL)")]
    Nats {
        /// The configured URL.
        url: String,
        /// The client's error.
        source: async_nats::ConnectError,
    },
    /// Streams or consumers could not be created.
    #[error(transparent)]
    Topology(#[from] TopologyError),
}

/// The migrations of a service, one directory per backend.
#[derive(Clone, Copy)]
pub struct Migrations {
    /// For SQLite.
    pub sqlite: &'static Migrator,
    /// For PostgreSQL.
    pub postgres: &'static Migrator,
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
    /// `DATABASE_URL` is set), connects to the broker as `<service>-service` and ensures the
    /// streams and `consumers`.
    pub async fn connect(
        common: &CommonConfig,
        service: &str,
        migrations: Migrations,
        consumers: &[ConsumerSpec],
    ) -> Result<Self, StartError> {
        let url = common.database_url(service).map_err(StartError::DataDir)?;
        let connections = match Backend::of_url(&url)? {
            Backend::Sqlite => common.db_max_connections.unwrap_or(4),
            Backend::Postgres => common.db_max_connections.unwrap_or(16),
        };
        let db = Db::connect(&url, connections).await?;
        db.migrate(migrations.sqlite, migrations.postgres).await?;
        let name = format!("{service}-service");
        let (nats, js) = connect_nats(&common.nats_url, &name)
            .await
            .map_err(|source| StartError::Nats {
                url: common.nats_url.clone(),
                source,
            })?;
        topology::ensure(&js, consumers).await?;
        let options = RelayOptions {
            crash_after_publish: common.outbox_crash_after_publish,
            ..RelayOptions::default()
        };
        let relay = Relay::new(db.clone(), Publisher::new(js.clone()), options);
        Ok(Self {
            db,
            nats,
            js,
            relay,
            relay_enabled: common.outbox_relay,
        })
    }

    /// Background tasks with the relay already running (unless `OUTBOX_RELAY=false`).
    pub fn tasks(&self) -> Tasks {
        let mut tasks = Tasks::new();
        if self.relay_enabled {
            tasks.spawn_relay(self.relay.clone());
        }
        tasks
    }
}
