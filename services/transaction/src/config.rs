//! The transaction service's configuration: flags and environment variables.

use std::net::SocketAddr;

use clap::Parser;
use common_events::service::config::{parse_addr, CommonConfig};

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
}
