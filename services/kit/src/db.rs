//! One handle over SQLite or PostgreSQL (sqlx's `Any` driver), chosen by the URL.
//!
//! SQL is written once for both: lower case, `$1`-style placeholders (SQLite reads them too),
//! integer money and millisecond timestamps, ids as text.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
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
    /// The database has migrations of this range that this build does not have: a newer build
    /// migrated it.
    #[error(
        "the database has migration {version} ({description}), which this build does not know: \
         a newer version of the service migrated it; run that version or newer"
    )]
    UnknownMigration {
        /// Its version.
        version: i64,
        /// Its description, as recorded.
        description: String,
    },
    /// The lock that keeps processes sharing a SQLite file from migrating at once failed.
    #[error("locking {path} for migrations: {source}")]
    MigrationLock {
        /// The lock file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl DbError {
    /// Whether trying again later may succeed: the server is down, starting, restarting or
    /// unreachable, or (SQLite) the file cannot be opened yet. A malformed URL, a rejected
    /// password or a migration that does not match the database are not.
    pub fn is_transient(&self) -> bool {
        use sqlx::migrate::MigrateError;
        match self {
            DbError::UnsupportedUrl(_)
            | DbError::MigrationLock { .. }
            | DbError::UnknownMigration { .. } => false,
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

/// How SQLite makes a commit durable: its `synchronous` pragma (`SQLITE_SYNCHRONOUS`). In WAL
/// mode, `full` fsyncs the log at every commit, so a commit that was answered survives a power
/// loss; `normal` fsyncs only at checkpoints, so the last commits before a power loss (not a
/// process crash) may be lost. PostgreSQL ignores it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SqliteSynchronous {
    /// An fsync at every commit (the default; group commit amortises it).
    #[default]
    Full,
    /// An fsync at checkpoints only: faster, not durable against power loss.
    Normal,
}

impl SqliteSynchronous {
    /// The pragma's value, as SQLite spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SqliteSynchronous::Full => "full",
            SqliteSynchronous::Normal => "normal",
        }
    }
}

impl std::str::FromStr for SqliteSynchronous {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(SqliteSynchronous::Full),
            "normal" => Ok(SqliteSynchronous::Normal),
            _ => Err(format!(
                "{value:?} is not a SQLite synchronous mode: use full (an fsync at every commit, \
                 the default) or normal (faster; the last commits may be lost on power loss)"
            )),
        }
    }
}

/// How to open the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DbOptions {
    /// The most connections in the pool.
    pub max_connections: u32,
    /// SQLite's durability (ignored on PostgreSQL).
    pub sqlite_synchronous: SqliteSynchronous,
}

impl DbOptions {
    /// `max_connections` connections and the durable default.
    pub fn new(max_connections: u32) -> Self {
        Self {
            max_connections,
            sqlite_synchronous: SqliteSynchronous::default(),
        }
    }
}

/// A cheap-to-clone database handle.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// The SQLite file, when the database is one (not in memory).
    sqlite_file: Option<PathBuf>,
    /// SQLite allows one writer at a time; writers of this process queue here instead of
    /// spinning in SQLite's busy handler (other processes still meet the busy timeout).
    write_gate: Arc<Mutex<()>>,
    /// SQLite: one connection with `synchronous = normal`, for [`Db::begin_relaxed`].
    relaxed: Option<AnyPool>,
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
    /// Connects with at most `max_connections` and the durable default ([`Db::connect_with`]).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbError> {
        Self::connect_with(url, DbOptions::new(max_connections)).await
    }

    /// Connects as `options` say. SQLite connections use WAL, the configured `synchronous` mode
    /// and a 10 s busy timeout, so several processes can share one file; one more connection,
    /// in `normal` mode, serves [`Db::begin_relaxed`].
    ///
    /// One plain connection is tried first, so that a server that is not there fails at once
    /// with its own error ("connection refused") rather than after the pool's acquire timeout.
    pub async fn connect_with(url: &str, options: DbOptions) -> Result<Self, DbError> {
        let DbOptions {
            max_connections,
            sqlite_synchronous,
        } = options;
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let options: AnyConnectOptions = url.parse().map_err(DbError::Connect)?;
        let probe = AnyConnection::connect_with(&options)
            .await
            .map_err(DbError::Connect)?;
        let _ = probe.close().await;
        let pool = sqlite_aware_pool(backend, max_connections, sqlite_synchronous)
            .connect_with(options.clone())
            .await
            .map_err(DbError::Connect)?;
        // An in-memory database is one per connection: no second connection for it.
        let relaxed = match backend {
            Backend::Sqlite if sqlite_file(url).is_some() => Some(
                sqlite_aware_pool(backend, 1, SqliteSynchronous::Normal)
                    .connect_with(options)
                    .await
                    .map_err(DbError::Connect)?,
            ),
            Backend::Sqlite | Backend::Postgres => None,
        };
        Ok(Self {
            pool,
            backend,
            sqlite_file: sqlite_file(url),
            write_gate: Arc::default(),
            relaxed,
        })
    }

    /// Runs the migrator for this backend. Processes sharing one SQLite file (replicas on one
    /// machine) take turns through a lock file beside it, since SQLite has no lock for
    /// migrations as PostgreSQL's advisory lock; the later ones find the work done.
    ///
    /// A service's migrations and the kit's (versions from [`KIT_MIGRATIONS_FROM`] up) share
    /// the database's migration table, so each migrator only answers for its own range: a
    /// version of its range that the database has and the migrator does not is an error
    /// ([`DbError::UnknownMigration`]), the other range is left alone.
    pub async fn migrate(&self, sqlite: &Migrator, postgres: &Migrator) -> Result<(), DbError> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlite,
            Backend::Postgres => postgres,
        };
        let _turn = match &self.sqlite_file {
            Some(file) => Some(migration_lock(file).await?),
            None => None,
        };
        self.check_known(migrator).await?;
        let own_range_only = Migrator {
            migrations: migrator.migrations.clone(),
            ignore_missing: true,
            locking: migrator.locking,
            no_tx: migrator.no_tx,
        };
        own_range_only.run(&self.pool).await?;
        Ok(())
    }

    /// Fails when the database has a migration of `migrator`'s range that it does not.
    async fn check_known(&self, migrator: &Migrator) -> Result<(), DbError> {
        let kit = migrator.iter().any(|m| m.version >= KIT_MIGRATIONS_FROM);
        // No table yet (a new database) reads as nothing applied.
        let applied: Vec<(i64, String)> =
            sqlx::query_as("select version, description from _sqlx_migrations")
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default();
        let unknown = applied.into_iter().find(|(version, _)| {
            (*version >= KIT_MIGRATIONS_FROM) == kit
                && !migrator.iter().any(|m| m.version == *version)
        });
        match unknown {
            Some((version, description)) => Err(DbError::UnknownMigration {
                version,
                description,
            }),
            None => Ok(()),
        }
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

    /// Begins a transaction that will write, and whose commit need not survive a power cut
    /// (a process crash it does survive): for writes that are harmless to lose, such as the
    /// outbox's deletes (a lost delete publishes the row again, and the stream drops the
    /// duplicate). On SQLite it runs on a connection with `synchronous = normal`, so its commit
    /// does not wait for an fsync (the next durable commit syncs it along); on PostgreSQL with
    /// `synchronous_commit = off` for this transaction.
    pub async fn begin_relaxed(&self) -> Result<WriteTx, sqlx::Error> {
        match (&self.relaxed, self.backend) {
            (Some(relaxed), _) => {
                let gate = Arc::clone(&self.write_gate).lock_owned().await;
                let tx = relaxed.begin_with("begin immediate").await?;
                Ok(WriteTx {
                    tx,
                    _gate: Some(gate),
                })
            }
            (None, Backend::Sqlite) => self.begin_write().await,
            (None, Backend::Postgres) => {
                let mut tx = self.pool.begin().await?;
                tx.execute("set local synchronous_commit to off").await?;
                Ok(WriteTx { tx, _gate: None })
            }
        }
    }

    /// True when a trivial query succeeds (for `/readyz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("select 1").execute(&self.pool).await.is_ok()
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(relaxed) = &self.relaxed {
            relaxed.close().await;
        }
    }
}

/// Pool options; SQLite connections get WAL, `synchronous` and a 10 s busy timeout, so several
/// processes can share one file.
fn sqlite_aware_pool(
    backend: Backend,
    max_connections: u32,
    synchronous: SqliteSynchronous,
) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    let pragmas = format!(
                        "pragma journal_mode = wal; pragma synchronous = {}; \
                         pragma busy_timeout = 10000; pragma foreign_keys = on; \
                         pragma cache_size = -16000; pragma mmap_size = 268435456",
                        synchronous.as_str()
                    );
                    conn.execute(pragmas.as_str()).await?;
                }
                Ok(())
            })
        })
}

/// The file a `sqlite:` URL names; `None` for other URLs and in-memory databases.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Waits for and takes the exclusive lock on `<file>.migrate-lock`; released when dropped.
async fn migration_lock(file: &Path) -> Result<std::fs::File, DbError> {
    let mut name = file.as_os_str().to_owned();
    name.push(".migrate-lock");
    let path = PathBuf::from(name);
    let lock_path = path.clone();
    let locked = tokio::task::spawn_blocking(move || {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        lock.lock()?;
        Ok::<_, std::io::Error>(lock)
    })
    .await
    .unwrap_or_else(|join| Err(std::io::Error::other(join)));
    locked.map_err(|source| DbError::MigrationLock { path, source })
}

/// The first version of the kit's own migrations (the outbox table); a service numbers its
/// migrations below it.
pub const KIT_MIGRATIONS_FROM: i64 = 90_000_000;

/// Milliseconds since the Unix epoch, the timestamp format of every table.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file_and_memory_names_none() {
        let file = |url| sqlite_file(url);
        assert_eq!(
            file("sqlite:///srv/data/account.db?mode=rwc"),
            Some(PathBuf::from("/srv/data/account.db"))
        );
        assert_eq!(file("sqlite://data/a.db"), Some(PathBuf::from("data/a.db")));
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("postgres://u@h/db"), None);
    }

    #[test]
    fn sqlite_synchronous_is_full_or_normal_and_anything_else_says_which() {
        assert_eq!(SqliteSynchronous::default(), SqliteSynchronous::Full);
        assert_eq!("full".parse(), Ok(SqliteSynchronous::Full));
        assert_eq!(" NORMAL ".parse(), Ok(SqliteSynchronous::Normal));
        for bad in ["", "off", "extra", "2", "fast"] {
            let err = bad.parse::<SqliteSynchronous>().unwrap_err();
            assert!(
                err.contains("use full") && err.contains("or normal"),
                "{bad}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn pooled_sqlite_connections_use_the_synchronous_mode_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        // SQLite's numbers for the modes: 1 normal, 2 full.
        for (mode, number) in [(SqliteSynchronous::Full, 2), (SqliteSynchronous::Normal, 1)] {
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
            let options = DbOptions {
                max_connections: 2,
                sqlite_synchronous: mode,
            };
            let db = Db::connect_with(&url, options).await.unwrap();
            // Both connections of the pool, held at once, so neither is the other.
            let mut first = db.pool().acquire().await.unwrap();
            let mut second = db.pool().acquire().await.unwrap();
            for conn in [&mut first, &mut second] {
                let in_effect: i64 = sqlx::query_scalar("pragma synchronous")
                    .fetch_one(&mut **conn)
                    .await
                    .unwrap();
                assert_eq!(in_effect, number, "{mode:?}");
            }
            drop((first, second));
            db.close().await;
        }
        let default = Db::connect(
            &format!("sqlite://{}?mode=rwc", dir.path().join("d.db").display()),
            1,
        )
        .await
        .unwrap();
        let in_effect: i64 = sqlx::query_scalar("pragma synchronous")
            .fetch_one(default.pool())
            .await
            .unwrap();
        assert_eq!(in_effect, 2, "the default is full");
    }

    #[tokio::test]
    async fn a_relaxed_write_skips_only_its_own_fsync_and_takes_the_write_gate() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
        let db = Db::connect(&url, 2).await.unwrap();
        sqlx::query("create table t (x int)")
            .execute(db.pool())
            .await
            .unwrap();
        let mut relaxed = db.begin_relaxed().await.unwrap();
        let mode: i64 = sqlx::query_scalar("pragma synchronous")
            .fetch_one(&mut *relaxed)
            .await
            .unwrap();
        assert_eq!(mode, 1, "normal on the relaxed connection");
        sqlx::query("insert into t values (1)")
            .execute(&mut *relaxed)
            .await
            .unwrap();
        let durable = tokio::spawn({
            let db = db.clone();
            async move { db.begin_write().await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!durable.is_finished(), "a durable writer waits at the gate");
        relaxed.commit().await.unwrap();
        durable.await.unwrap().unwrap();
        let rows: i64 = sqlx::query_scalar("select count(*) from t")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(rows, 1);
        let mode: i64 = sqlx::query_scalar("pragma synchronous")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(mode, 2, "the pool stays full");
        db.close().await;
    }

    #[tokio::test]
    async fn a_service_s_and_the_kit_s_migrations_share_the_table_and_each_checks_its_own_range() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, files: &[(&str, &str)]| {
            let path = dir.path().join(name);
            std::fs::create_dir(&path).unwrap();
            for (file, sql) in files {
                std::fs::write(path.join(file), sql).unwrap();
            }
            path
        };
        let v1 = write("v1", &[("0001_a.sql", "create table a (x int);")]);
        let v2 = write(
            "v2",
            &[
                ("0001_a.sql", "create table a (x int);"),
                ("0002_b.sql", "create table b (x int);"),
            ],
        );
        let kit = write("kit", &[("90000001_k.sql", "create table k (x int);")]);
        let [v1, v2, kit] =
            [v1, v2, kit].map(|path| async move { Migrator::new(path.as_path()).await.unwrap() });
        let (v1, v2, kit) = (v1.await, v2.await, kit.await);
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
        let db = Db::connect(&url, 1).await.unwrap();
        db.migrate(&v2, &v2).await.unwrap();
        db.migrate(&kit, &kit).await.unwrap();
        db.migrate(&v2, &v2)
            .await
            .expect("the kit's migration is not the service's business");
        db.migrate(&kit, &kit).await.unwrap();
        let err = db.migrate(&v1, &v1).await.unwrap_err();
        assert!(
            matches!(err, DbError::UnknownMigration { version: 2, .. }),
            "an older build refuses a database a newer one migrated: {err}"
        );
        assert!(!err.is_transient());
        let tables: i64 = sqlx::query_scalar(
            "select count(*) from sqlite_master where type = 'table' and name in ('a', 'b', 'k')",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(tables, 3);
    }

    #[tokio::test]
    async fn a_migration_waits_while_another_process_migrates_the_same_sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        let migrations = dir.path().join("migrations");
        std::fs::create_dir(&migrations).unwrap();
        std::fs::write(
            migrations.join("0001_init.sql"),
            "create table account (id text primary key);",
        )
        .unwrap();
        let migrator = Migrator::new(migrations.as_path()).await.unwrap();
        let file = dir.path().join("shared.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let db = Db::connect(&url, 2).await.unwrap();
        // Another process's turn, held here: a separate open file, as another process has.
        let other = migration_lock(&file).await.unwrap();
        let waiting = tokio::spawn(async move {
            let migrator = migrator;
            db.migrate(&migrator, &migrator).await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "the migration ran during another's turn"
        );
        drop(other);
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the migration ran once the turn was free")
            .unwrap()
            .unwrap();
    }
}
