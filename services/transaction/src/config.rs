//! The transaction service's configuration: flags and environment variables.

use std::net::SocketAddr;

use clap::Parser;
use service_kit::config::{parse_addr, CommonConfig};

use crate::idempotency::retention::{parse_key_retention, KeyRetention, DEFAULT_KEY_RETENTION};

/// `transaction-service`: numbers transactions per account and publishes them.
#[derive(Parser, Clone, Debug)]
#[command(name = "transaction-service", version, about)]
pub struct Config {
    /// Settings every service shares.
    #[command(flatten)]
    pub common: CommonConfig,

    /// Where the HTTP API listens (port 0 picks a free port; the bound address is logged).
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8081", value_parser = parse_addr)]
    pub http_addr: SocketAddr,

    /// The largest amount one transaction may carry, in minor units.
    #[arg(long, env = "MAX_AMOUNT", default_value_t = 100_000_000)]
    pub max_amount: i64,

    /// How long an `Idempotency-Key` names its transaction (`24h`, `30m`, `7days`; 1s to
    /// 365days). An older key is free for a new transaction, and a background sweep deletes it.
    #[arg(
        long,
        env = "IDEMPOTENCY_KEY_RETENTION",
        default_value = DEFAULT_KEY_RETENTION,
        value_parser = parse_key_retention,
        value_name = "DURATION"
    )]
    pub idempotency_key_retention: KeyRetention,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("transaction-service").chain(args.iter().copied()))
    }

    #[test]
    fn idempotency_keys_are_kept_a_day_unless_configured_and_bad_values_stop_the_start() {
        let retention = |args: &[&str]| parse(args).map(|c| c.idempotency_key_retention.get());
        assert_eq!(retention(&[]).unwrap(), Duration::from_secs(24 * 3600));
        let short = retention(&["--idempotency-key-retention=90m"]).unwrap();
        assert_eq!(short, Duration::from_secs(90 * 60));
        for (bad, says) in [
            ("0", "range of 1s to 365days"),
            ("tomorrow", "not a duration"),
        ] {
            let err = retention(&[&format!("--idempotency-key-retention={bad}")])
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
