//! The console's configuration: flags and environment variables, like the services'.

use std::net::SocketAddr;

use clap::Parser;
use service_kit::config::parse_addr;
use service_kit::nats_auth::NatsAuth;

/// `console`: the web console of the stack (accounts, live timeline, broker panel, scenarios).
#[derive(Parser, Clone, Debug)]
#[command(name = "console", version, about)]
pub struct Config {
    /// Where the console's page and API listen (port 0 picks a free port; the bound address is
    /// logged as `console listening addr=…`).
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080", value_parser = parse_addr)]
    pub http_addr: SocketAddr,

    /// The NATS server with JetStream the services use (the bundled broker or nats-server).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// How to log in to the broker.
    #[command(flatten)]
    pub nats_auth: NatsAuth,

    /// The account service, one URL per replica (comma-separated in ACCOUNT_URLS); requests go
    /// to the first that answers.
    #[arg(
        long = "account-url",
        env = "ACCOUNT_URLS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8082"
    )]
    pub account_urls: Vec<String>,

    /// The transaction service.
    #[arg(long, env = "TRANSACTION_URL", default_value = "http://127.0.0.1:8081")]
    pub transaction_url: String,

    /// The statement service (per-account statements with a running balance).
    #[arg(long, env = "STATEMENT_URL", default_value = "http://127.0.0.1:8083")]
    pub statement_url: String,

    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "LOG_JSON")]
    pub log_json: bool,

    /// How many timeline entries the console keeps for a page that opens (the ring buffer).
    #[arg(long, env = "TIMELINE_HISTORY", default_value_t = 500, hide = true)]
    pub timeline_history: usize,

    /// How many live entries may wait for one browser before it skips to the newest.
    #[arg(long, env = "SSE_BUFFER", default_value_t = 256, hide = true)]
    pub sse_buffer: usize,

    /// How often the broker panel is refreshed, in milliseconds.
    #[arg(long, env = "BROKER_REFRESH_MS", default_value_t = 2000, hide = true)]
    pub broker_refresh_ms: u64,
}

impl Config {
    /// The configuration with every default and these overrides, as the command line would
    /// parse it (for the launcher and tests): `Config::from_args(["--http-addr=127.0.0.1:0"])`.
    pub fn from_args<I, S>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString> + Clone,
    {
        let program = std::iter::once(std::ffi::OsString::from("console"));
        Self::try_parse_from(program.chain(args.into_iter().map(Into::into)))
    }

    /// The account-service URLs, without trailing slashes or empty entries.
    pub fn account_urls(&self) -> Vec<String> {
        self.account_urls
            .iter()
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .filter(|url| !url.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_services_ports() {
        let config = Config::from_args(Vec::<String>::new()).unwrap();
        assert_eq!(config.http_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(config.nats_url, "nats://127.0.0.1:4222");
        assert_eq!(config.account_urls(), ["http://127.0.0.1:8082"]);
        assert_eq!(config.transaction_url, "http://127.0.0.1:8081");
        assert_eq!(config.statement_url, "http://127.0.0.1:8083");
        assert!(!config.log_json);
    }

    #[test]
    fn account_urls_are_a_comma_separated_list() {
        let config =
            Config::from_args(["--account-url=http://a:1/,http://b:2", "--log-json"]).unwrap();
        assert_eq!(config.account_urls(), ["http://a:1", "http://b:2"]);
        assert!(config.log_json);
    }

    #[test]
    fn a_bad_address_names_the_flag() {
        let err = Config::from_args(["--http-addr=nowhere"]).unwrap_err();
        assert!(err.to_string().contains("--http-addr"), "{err}");
    }
}
