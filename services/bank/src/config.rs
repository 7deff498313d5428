//! The stack's flags and environment variables.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;

/// The most account-service replicas the stack starts.
pub const MAX_ACCOUNT_REPLICAS: usize = 16;

/// `bank`: runs the whole bank on this machine (broker, services, console) until Ctrl-C.
#[derive(Parser, Clone, Debug)]
#[command(
    name = "bank",
    version,
    about,
    args_override_self = true,
    after_help = "Components alone: bank broker [flags] | bank account-service [flags] | \
                  bank transaction-service [flags] | bank statement-service [flags] | \
                  bank console [flags] (each with --help)."
)]
pub struct StackConfig {
    /// Where the broker's store, the SQLite files and the logs live.
    #[arg(long, env = "BANK_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// The address every component listens on (0.0.0.0 to reach the stack from other hosts).
    #[arg(long, env = "BANK_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// The web console's HTTP port (0 picks a free one).
    #[arg(long, env = "BANK_CONSOLE_PORT", default_value_t = 8080)]
    pub console_port: u16,

    /// The transaction service's HTTP port (0 picks a free one).
    #[arg(long, env = "BANK_TRANSACTION_PORT", default_value_t = 8081)]
    pub transaction_port: u16,

    /// The first account-service replica's HTTP port; the others take the next free ones
    /// (0 picks free ones).
    #[arg(long, env = "BANK_ACCOUNT_PORT", default_value_t = 8082)]
    pub account_port: u16,

    /// The statement service's HTTP port (0 picks a free one).
    #[arg(long, env = "BANK_STATEMENT_PORT", default_value_t = 8084)]
    pub statement_port: u16,

    /// The broker's client port (0 picks a free one).
    #[arg(long, env = "BANK_BROKER_PORT", default_value_t = 4222)]
    pub broker_port: u16,

    /// The broker's monitoring port (0 picks a free one).
    #[arg(long, env = "BANK_MONITOR_PORT", default_value_t = 8222)]
    pub monitor_port: u16,

    /// How many account-service replicas share the queue group.
    #[arg(long, env = "BANK_ACCOUNT_REPLICAS", default_value_t = 2,
          value_parser = parse_replicas)]
    pub account_replicas: usize,

    /// Where the components' logs go: `files` (one per component under <data-dir>/logs) or
    /// `terminal` (interleaved, each line prefixed with its component).
    #[arg(long, env = "BANK_LOGS", value_enum, default_value_t = LogTarget::Files)]
    pub logs: LogTarget,
}

/// Where component logs go.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// `<data-dir>/logs/<component>.log`.
    Files,
    /// This terminal, prefixed.
    Terminal,
}

fn parse_replicas(value: &str) -> Result<usize, String> {
    let n: usize = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number of replicas"))?;
    if (1..=MAX_ACCOUNT_REPLICAS).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "between 1 and {MAX_ACCOUNT_REPLICAS} replicas, got {n}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ports_and_two_replicas() {
        let config = StackConfig::try_parse_from(["bank"]).unwrap();
        assert_eq!(
            (
                config.console_port,
                config.transaction_port,
                config.account_port,
                config.statement_port,
                config.broker_port,
                config.monitor_port,
                config.account_replicas
            ),
            (8080, 8081, 8082, 8084, 4222, 8222, 2)
        );
        assert_eq!(config.data_dir, PathBuf::from("data"));
    }

    #[test]
    fn replicas_out_of_range_are_refused_with_the_range() {
        for bad in ["0", "17", "two", "-1"] {
            let flag = format!("--account-replicas={bad}");
            let err = StackConfig::try_parse_from(["bank", flag.as_str()])
                .unwrap_err()
                .to_string();
            assert!(err.contains("replicas"), "{bad}: {err}");
        }
    }
}
