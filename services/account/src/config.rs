//! The account service's configuration: flags and environment variables.

use std::net::SocketAddr;

use clap::Parser;
use common_events::service::config::{parse_addr, CommonConfig};

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
}
