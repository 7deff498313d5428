//! Configuration every service shares, from flags and environment variables (12-factor).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use common_events::topology::{self, ConsumerSpec};

use crate::db::SqliteSynchronous;
use crate::nats_auth::NatsAuth;

/// Flags and variables common to every service; each service adds its own with `#[command(flatten)]`.
#[derive(Args, Clone, Debug)]
pub struct CommonConfig {
    /// The NATS server (the bundled broker or a NATS JetStream cluster).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// How to log in to the broker.
    #[command(flatten)]
    pub nats_auth: NatsAuth,

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

    /// SQLite's durability: `full` fsyncs at every commit, so an answered write survives a power
    /// loss; `normal` is faster but may lose the last commits on power loss. Ignored on
    /// PostgreSQL.
    #[arg(
        long,
        env = "SQLITE_SYNCHRONOUS",
        default_value = "full",
        value_parser = parse_sqlite_synchronous,
        value_name = "full|normal"
    )]
    pub sqlite_synchronous: SqliteSynchronous,

    /// Handlers run at once per listener on this replica.
    #[arg(long, env = "LISTENER_CONCURRENCY", default_value_t = topology::DEFAULT_CONCURRENCY)]
    pub listener_concurrency: usize,

    /// How long the broker waits for a listener's ack before it redelivers the message to any
    /// replica (`1s` to `1h`). Applies to consumers this service creates; an existing consumer
    /// keeps the ack wait it was created with (a warning says so when they differ).
    #[arg(
        long,
        env = "ACK_WAIT",
        default_value = "10s",
        value_parser = parse_ack_wait,
        value_name = "DURATION"
    )]
    pub ack_wait: Duration,

    /// Publish the outbox (`false` leaves events in the database, for tests and maintenance).
    #[arg(long, env = "OUTBOX_RELAY", default_value_t = true, action = clap::ArgAction::Set)]
    pub outbox_relay: bool,

    /// Fault injection for tests: abort after publishing outbox rows, before marking them sent.
    #[arg(long, env = "OUTBOX_CRASH_AFTER_PUBLISH", hide = true)]
    pub outbox_crash_after_publish: bool,

    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "LOG_JSON")]
    pub log_json: bool,

    /// How long start-up keeps retrying the database and the broker before the process gives up
    /// and exits with an error (`30s`, `5m`, `1h`); `0` or unset: retry for ever.
    #[arg(long, env = "CONNECT_DEADLINE", value_parser = parse_deadline, value_name = "DURATION")]
    pub connect_deadline: Option<Duration>,

    /// Replicas of each stream this service creates (1..=5; more than 1 needs a JetStream
    /// cluster of at least that many servers). Streams that exist already are left as they are.
    #[arg(long, env = "STREAM_REPLICAS", default_value_t = 1, value_parser = parse_stream_replicas)]
    pub stream_replicas: usize,

    /// This replica's name in decision notes and logs [default: the host name, which is the pod
    /// name on Kubernetes].
    #[arg(long, env = "REPLICA_ID")]
    pub replica_id: Option<String>,
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

    /// The start-up deadline; `None` means retry for ever (`CONNECT_DEADLINE` unset or `0`).
    pub fn connect_deadline(&self) -> Option<Duration> {
        self.connect_deadline.filter(|d| !d.is_zero())
    }

    /// `spec` with this replica's listener settings (`LISTENER_CONCURRENCY`, `ACK_WAIT`).
    pub fn consumer(&self, spec: ConsumerSpec) -> ConsumerSpec {
        ConsumerSpec {
            concurrency: self.listener_concurrency,
            ack_wait: self.ack_wait,
            ..spec
        }
    }

    /// `REPLICA_ID`, else the host name, else `unknown`.
    pub fn replica_id(&self) -> String {
        match self.replica_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => host_name().unwrap_or_else(|| "unknown".to_owned()),
        }
    }
}

/// The host name: `/proc/sys/kernel/hostname` (Linux; the pod name on Kubernetes), else
/// `$HOSTNAME`.
pub fn host_name() -> Option<String> {
    let from_kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    let from_env = || std::env::var("HOSTNAME").ok();
    [from_kernel, from_env()]
        .into_iter()
        .flatten()
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
}

/// Parses `CONNECT_DEADLINE`: a duration like `30s`, `5m` or `1h 30m`; `0` (or nothing) means
/// no deadline.
pub fn parse_deadline(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if value.is_empty() || value == "0" {
        return Ok(Duration::ZERO);
    }
    parse_duration(value).map_err(|err| format!("{err}; 0 means no deadline"))
}

/// Parses a duration setting: `30s`, `5m`, `1h 30m`, `7days` (humantime's units).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value.trim())
        .map_err(|err| format!("{value:?} is not a duration like 30s, 5m or 1h ({err})"))
}

/// The shortest `ACK_WAIT`: below it, a handler's ordinary database write would be redelivered
/// to another replica before it commits.
pub const MIN_ACK_WAIT: Duration = Duration::from_secs(1);
/// The longest `ACK_WAIT`: a message lost with a dead client waits this long for redelivery.
pub const MAX_ACK_WAIT: Duration = Duration::from_secs(3600);

/// Parses `ACK_WAIT`: a duration from [`MIN_ACK_WAIT`] to [`MAX_ACK_WAIT`].
pub fn parse_ack_wait(value: &str) -> Result<Duration, String> {
    let wait = parse_duration(value)?;
    if (MIN_ACK_WAIT..=MAX_ACK_WAIT).contains(&wait) {
        Ok(wait)
    } else {
        Err(format!(
            "{value:?} is outside 1s to 1h: shorter redelivers ordinary writes to another \
             replica, longer leaves a dead client's messages waiting"
        ))
    }
}

/// Parses `STREAM_REPLICAS`: a whole number from 1 to 5 (JetStream's limit).
pub fn parse_stream_replicas(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n @ 1..=5) => Ok(n),
        _ => Err(format!(
            "{value:?} is not a stream replica count: JetStream keeps 1 to 5 replicas of a \
             stream (use 3 on a three-node cluster, 1 on a single server)"
        )),
    }
}

/// Parses `SQLITE_SYNCHRONOUS`: `full` or `normal`.
pub fn parse_sqlite_synchronous(value: &str) -> Result<SqliteSynchronous, String> {
    value.parse()
}

/// `url` (or a comma-separated list of URLs) fit for logs: passwords, NATS tokens and
/// `password=` parameters replaced by `***`.
pub fn redact_url(url: &str) -> String {
    url.split(',').map(redact_one).collect::<Vec<_>>().join(",")
}

fn redact_one(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = match userinfo.split_once(':') {
                Some((user, _password)) => format!("{user}:***"),
                // A lone NATS user part is a token; a lone PostgreSQL one is a user name.
                None if !scheme.starts_with("postgres") => "***".to_owned(),
                None => userinfo.to_owned(),
            };
            format!("{user}@{host}")
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Parses `HTTP_ADDR`-style values (`0.0.0.0:8080`, `127.0.0.1:0`).
pub fn parse_addr(value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|err| format!("{value:?} is not an address like 0.0.0.0:8080: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonConfig,
    }

    fn parse(args: &[&str]) -> Result<CommonConfig, clap::Error> {
        let argv = std::iter::once("service").chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|cli| cli.common)
    }

    #[test]
    fn the_connect_deadline_is_a_human_duration_and_zero_or_unset_is_unlimited() {
        let deadline = |args: &[&str]| parse(args).unwrap().connect_deadline();
        assert_eq!(
            deadline(&["--connect-deadline=30s"]),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            deadline(&["--connect-deadline", "5m"]),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            deadline(&["--connect-deadline=1s 500ms"]),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(deadline(&["--connect-deadline=0"]), None);
        assert_eq!(deadline(&["--connect-deadline=0s"]), None);
        assert_eq!(deadline(&[]), None);
        let err = parse(&["--connect-deadline=soon"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not a duration like 30s"), "{err}");
    }

    #[test]
    fn stream_replicas_default_to_one_and_are_one_to_five() {
        let replicas = |args: &[&str]| parse(args).map(|c| c.stream_replicas);
        assert_eq!(replicas(&[]).unwrap(), 1);
        assert_eq!(replicas(&["--stream-replicas=3"]).unwrap(), 3);
        assert_eq!(replicas(&["--stream-replicas", "5"]).unwrap(), 5);
        for bad in ["0", "6", "three", "-1"] {
            let err = replicas(&[&format!("--stream-replicas={bad}")])
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains("1 to 5 replicas"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_ack_wait_defaults_to_ten_seconds_and_is_one_second_to_an_hour() {
        let wait = |args: &[&str]| parse(args).map(|c| c.ack_wait);
        assert_eq!(wait(&[]).unwrap(), topology::DEFAULT_ACK_WAIT);
        assert_eq!(wait(&["--ack-wait=2s"]).unwrap(), Duration::from_secs(2));
        assert_eq!(wait(&["--ack-wait=1h"]).unwrap(), MAX_ACK_WAIT);
        for bad in ["500ms", "0", "2h", "soon"] {
            let err = wait(&[&format!("--ack-wait={bad}")])
                .err()
                .unwrap()
                .to_string();
            assert!(
                err.contains("1s to 1h") || err.contains("not a duration"),
                "{bad}: {err}"
            );
        }
        let tuned = parse(&["--ack-wait=3s", "--listener-concurrency=5"])
            .unwrap()
            .consumer(ConsumerSpec::new(
                topology::ACCOUNTS,
                "x",
                "accounts.opened",
            ));
        assert_eq!(
            (tuned.ack_wait, tuned.concurrency),
            (Duration::from_secs(3), 5)
        );
    }

    #[test]
    fn sqlite_synchronous_defaults_to_full_and_refuses_other_modes() {
        let mode = |args: &[&str]| parse(args).map(|c| c.sqlite_synchronous);
        assert_eq!(mode(&[]).unwrap(), SqliteSynchronous::Full);
        let normal = mode(&["--sqlite-synchronous=normal"]).unwrap();
        assert_eq!(normal, SqliteSynchronous::Normal);
        let err = mode(&["--sqlite-synchronous=off"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not a SQLite synchronous mode"), "{err}");
    }

    #[test]
    fn urls_lose_their_secrets_in_logs() {
        for (url, shown) in [
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
            ("nats://user:pw@nats:4222", "nats://user:***@nats:4222"),
            ("nats://s3cret@nats:4222", "nats://***@nats:4222"),
            (
                "nats://a:1@h1:4222,nats://h2:4222",
                "nats://a:***@h1:4222,nats://h2:4222",
            ),
            ("postgres://app@db/accounts", "postgres://app@db/accounts"),
            (
                "postgres://app:pw@db:5432/accounts?sslmode=require",
                "postgres://app:***@db:5432/accounts?sslmode=require",
            ),
            (
                "postgres://db/accounts?user=app&password=pw",
                "postgres://db/accounts?user=app&password=***",
            ),
            (
                "sqlite://data/account.db?mode=rwc",
                "sqlite://data/account.db?mode=rwc",
            ),
        ] {
            assert_eq!(redact_url(url), shown);
        }
    }

    #[test]
    fn the_replica_id_defaults_to_the_host_name() {
        let named = parse(&["--replica-id=account-7"]).unwrap();
        assert_eq!(named.replica_id(), "account-7");
        let blank = parse(&["--replica-id= "]).unwrap();
        let host = host_name().unwrap_or_else(|| "unknown".to_owned());
        assert_eq!(blank.replica_id(), host);
        assert!(!host.is_empty());
    }
}
