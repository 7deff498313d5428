//! Configuration every service shares, from flags and environment variables (12-factor).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Flags and variables common to every service; each service adds its own with `#[command(flatten)]`.
#[derive(Args, Clone, Debug)]
pub struct CommonConfig {
    /// The NATS server (the bundled broker or a NATS JetStream cluster).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// `sqlite://…` or `postgres://…`; default: a SQLite file under the data directory.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Where the default SQLite file lives.
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// The most database connections [default: 4 on SQLite, where writers take turns and fewer
    /// connections mean fewer thread hand-offs; 16 on PostgreSQL].
    #[arg(long, env = "DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<u32>,

    /// Handlers run at once per listener on this replica.
    #[arg(long, env = "LISTENER_CONCURRENCY", default_value_t = 32)]
    pub listener_concurrency: usize,

    /// Publish the outbox (`false` leaves events in the database, for tests and maintenance).
    #[arg(long, env = "OUTBOX_RELAY", default_value_t = true, action = clap::ArgAction::Set)]
    pub outbox_relay: bool,

    /// Fault injection for tests: abort after publishing outbox rows, before marking them sent.
    #[arg(long, env = "OUTBOX_CRASH_AFTER_PUBLISH", hide = true)]
    pub outbox_crash_after_publish: bool,

    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "LOG_JSON")]
    pub log_json: bool,
}

impl CommonConfig {
    /// `DATABASE_URL`, or `sqlite://<data dir>/<service>.db?mode=rwc`, creating the directory.
    pub fn database_url(&self, service: &str) -> std::io::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        std::fs::create_dir_all(&self.data_dir)?;
        let file = self.data_dir.join(format!("{service}.db"));
        Ok(format!("sqlite://{}?mode=rwc", file.display()))
    }
}

/// Parses `HTTP_ADDR`-style values (`0.0.0.0:8080`, `127.0.0.1:0`).
pub fn parse_addr(value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|err| format!("{value:?} is not an address like 0.0.0.0:8080: {err}"))
}
