//! The databases the service suites run on, from one table: SQLite and PostgreSQL.

use std::fmt;
use std::path::Path;

/// A database backend the suites run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// A SQLite file in the test's temporary directory.
    Sqlite,
    /// A fresh database on the shared test PostgreSQL.
    Postgres,
}

/// Every database target.
pub fn database_targets() -> Vec<DatabaseTarget> {
    vec![DatabaseTarget::Sqlite, DatabaseTarget::Postgres]
}

impl DatabaseTarget {
    /// `sqlite` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            DatabaseTarget::Sqlite => "sqlite",
            DatabaseTarget::Postgres => "postgres",
        }
    }

    /// Why this target cannot run here, if it cannot.
    pub fn unavailable(self) -> Option<String> {
        match self {
            DatabaseTarget::Sqlite => None,
            DatabaseTarget::Postgres => crate::postgres::unavailable(),
        }
    }

    /// The URL of a new, empty database; `dir` holds SQLite files (`name` tells them apart).
    pub async fn fresh_url(self, dir: &Path, name: &str) -> anyhow::Result<String> {
        match self {
            DatabaseTarget::Sqlite => Ok(format!(
                "sqlite://{}?mode=rwc",
                dir.join(format!("{name}.db")).display()
            )),
            DatabaseTarget::Postgres => crate::postgres::fresh_database().await,
        }
    }
}

impl fmt::Display for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
