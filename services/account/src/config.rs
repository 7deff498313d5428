//! The account service's configuration: flags and environment variables.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use service_kit::config::{parse_addr, parse_duration, CommonConfig};

use crate::ordering::GapPolicy;

/// `account-service`: opens accounts and applies transactions in number order.
#[derive(Parser, Clone, Debug)]
#[command(name = "account-service", version, about)]
pub struct Config {
    /// Settings every service shares.
    #[command(flatten)]
    pub common: CommonConfig,

    /// Where the HTTP API listens (port 0 picks a free port; the bound address is logged).
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8082", value_parser = parse_addr)]
    pub http_addr: SocketAddr,

    /// Before serving, rebuild the balances of an empty database by replaying the ACCOUNTS and
    /// TRANSACTIONS streams from the start (refused when the database has accounts).
    #[arg(long, env = "REBUILD")]
    pub rebuild: bool,

    /// Publish a decision note on `observe.decisions.account-service` (core NATS, fire and
    /// forget) for every `TransactionCreated` delivery handled.
    #[arg(long, env = "DECISION_NOTES", default_value_t = true, action = clap::ArgAction::Set)]
    pub decision_notes: bool,

    /// Fault injection, for demonstrations and tests, never in production: serve `/faults`, where
    /// a client makes this replica slow, frozen or crash on one account's next
    /// `TransactionCreated` delivery (the web console's scenarios do).
    #[arg(long, env = "FAULT_INJECTION")]
    pub fault_injection: bool,

    /// How long a transaction may wait for its predecessor (a gap) before it is parked: taken
    /// off the broker and kept in the database until the predecessor arrives. A duration like
    /// `90s` or `5m`.
    #[arg(long, env = "GAP_PARK_AFTER", default_value = "2m", value_parser = parse_park_after)]
    pub gap_park_after: Duration,

    /// How many gaps one replica hands back at once; past it, new gaps are parked at once so
    /// one account's trouble never fills the consumer's in-flight slots (1,024 across all
    /// replicas). From 1 to 1,024.
    #[arg(long, env = "MAX_OPEN_GAPS", default_value_t = crate::ordering::DEFAULT_MAX_OPEN_GAPS, value_parser = parse_max_open_gaps)]
    pub max_open_gaps: usize,
}

impl Config {
    /// When gaps are parked.
    pub fn gap_policy(&self) -> GapPolicy {
        GapPolicy {
            park_after: self.gap_park_after,
            max_open: self.max_open_gaps,
        }
    }
}

/// Parses `GAP_PARK_AFTER`: a positive duration.
fn parse_park_after(value: &str) -> Result<Duration, String> {
    let duration = parse_duration(value)?;
    if duration.is_zero() {
        return Err("must be longer than 0: a gap needs time for its predecessor to arrive".into());
    }
    Ok(duration)
}

/// Parses `MAX_OPEN_GAPS`: 1 to 1,024 (the consumer's in-flight limit).
fn parse_max_open_gaps(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err(format!(
            "{value:?} is not a count from 1 to 1024 (the consumer's in-flight limit)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_injection_is_off_unless_asked_for() {
        let parse = |args: &[&str]| {
            let argv = std::iter::once("account-service").chain(args.iter().copied());
            Config::try_parse_from(argv).unwrap().fault_injection
        };
        assert!(!parse(&[]));
        assert!(parse(&["--fault-injection"]));
    }

    fn try_parse(args: &[&str]) -> Result<Config, clap::Error> {
        let argv = std::iter::once("account-service").chain(args.iter().copied());
        Config::try_parse_from(argv)
    }

    #[test]
    fn gaps_park_after_two_minutes_or_past_256_open_by_default() {
        let policy = try_parse(&[]).unwrap().gap_policy();
        assert_eq!(policy, GapPolicy::default());
        assert_eq!(policy.park_after, Duration::from_secs(120));
        assert_eq!(policy.max_open, 256);
        let config = try_parse(&["--gap-park-after=750ms", "--max-open-gaps=3"]).unwrap();
        assert_eq!(config.gap_park_after, Duration::from_millis(750));
        assert_eq!(config.max_open_gaps, 3);
    }

    #[test]
    fn bad_gap_settings_are_refused_with_the_reason() {
        for (args, needle) in [
            (&["--gap-park-after=0s"][..], "longer than 0"),
            (&["--gap-park-after=soon"][..], "not a duration"),
            (&["--max-open-gaps=0"][..], "from 1 to 1024"),
            (&["--max-open-gaps=5000"][..], "from 1 to 1024"),
            (&["--max-open-gaps=-1"][..], "from 1 to 1024"),
        ] {
            let err = try_parse(args).unwrap_err().to_string();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }
}
