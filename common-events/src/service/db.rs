//! One handle over SQLite or PostgreSQL (sqlx's `Any` driver), chosen by the URL.
//!
//! SQL is written once for both: lower case, `$1`-style placeholders (SQLite reads them too),
//! integer money and millisecond timestamps, ids as text.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Which database a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://…`: the embedded default.
    Sqlite,
    /// `postgres://…` or `postgresql://…`.
    Postgres,
}

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names neither SQLite nor PostgreSQL.
    #[error("DATABASE_URL must start with sqlite:// or postgres://, got {0:?}")]
    UnsupportedUrl(String),
    /// Connecting failed.
    #[error("connecting to the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// A migration failed.
    #[error("running migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl DbError {
    /// Whether trying again later may succeed: the server is down, starting, restarting or
    /// unreachable, or (SQLite) the file cannot be opened yet. A malformed URL, a rejected
    /// password or a migration that does not match the database are not.
    pub fn is_transient(&self) -> bool {
        use sqlx::migrate::MigrateError;
        match self {
            DbError::UnsupportedUrl(_) => false,
            DbError::Connect(err) => match err {
                sqlx::Error::Configuration(_) => false,
                // SQLSTATE class 28: invalid authorization (a wrong user or password).
                sqlx::Error::Database(db) => !db.code().is_some_and(|c| c.starts_with("28")),
                _ => true,
            },
            DbError::Migrate(
                MigrateError::Execute(err) | MigrateError::ExecuteMigration(err, _),
            ) => connection_trouble(err),
            DbError::Migrate(_) => false,
        }
    }
}

/// An error that says the connection, not the statement, failed.
fn connection_trouble(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE classes 08 (connection exception) and 57 (operator intervention: shutting
        // down, cannot connect now).
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57")),
        _ => false,
    }
}

/// A cheap-to-clone database handle.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time; writers of this process queue here instead of
    /// spinning in SQLite's busy handler (other processes still meet the busy timeout).
    write_gate: Arc<Mutex<()>>,
}

/// A database transaction that will write; on SQLite it also holds this process's write gate.
/// Derefs to the connection, so `&mut *tx` is an executor.
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    _gate: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    /// Rolls back.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl Backend {
    /// The backend a URL names.
    pub fn of_url(url: &str) -> Result<Self, DbError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(DbError::UnsupportedUrl(url.to_owned()))
        }
    }
}

impl Db {
    /// Connects with at most `max_connections`. SQLite connections use WAL, `synchronous =
    /// normal` and a 10 s busy timeout, so several processes can share one file.
    ///
    /// One plain connection is tried first, so that a server that is not there fails at once
    /// with its own error ("connection refused") rather than after the pool's acquire timeout.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let options: AnyConnectOptions = url.parse().map_err(DbError::Connect)?;
        let probe = AnyConnection::connect_with(&options)
            .await
            .map_err(DbError::Connect)?;
        let _ = probe.close().await;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "pragma journal_mode = wal; pragma synchronous = normal; \
                             pragma busy_timeout = 10000; pragma foreign_keys = on; \
                             pragma cache_size = -16000; pragma mmap_size = 268435456",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(DbError::Connect)?;
        Ok(Self {
            pool,
            backend,
            write_gate: Arc::default(),
        })
    }

    /// Runs the migrator for this backend.
    pub async fn migrate(&self, sqlite: &Migrator, postgres: &Migrator) -> Result<(), DbError> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlite,
            Backend::Postgres => postgres,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// The pool, for reads and single statements.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock at once
    /// (`begin immediate`), so it waits for other writers instead of failing midway.
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                let gate = Arc::clone(&self.write_gate).lock_owned().await;
                let tx = self.pool.begin_with("begin immediate").await?;
                Ok(WriteTx {
                    tx,
                    _gate: Some(gate),
                })
            }
            Backend::Postgres => Ok(WriteTx {
                tx: self.pool.begin().await?,
                _gate: None,
            }),
        }
    }

    /// True when a trivial query succeeds (for `/readyz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("select 1").execute(&self.pool).await.is_ok()
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch, the timestamp format of every table.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
