//! Running one component in this process: `bank <component> [its flags]`. The stack starts
//! each child this way, so one binary carries every process of the bank.

use std::future::Future;
use std::process::ExitCode;

use clap::Parser;
use service_kit::{shutdown, telemetry};

/// A process of the bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// The bundled broker (`bank broker`, the flags of the `broker` binary).
    Broker,
    /// An account-service replica (`bank account-service`).
    Account,
    /// The transaction service (`bank transaction-service`).
    Transaction,
    /// The statement service (`bank statement-service`).
    Statement,
    /// The web console (`bank console`).
    Console,
}

impl Component {
    /// The component a subcommand names.
    pub fn named(subcommand: &str) -> Option<Self> {
        match subcommand {
            "broker" => Some(Component::Broker),
            "account-service" => Some(Component::Account),
            "transaction-service" => Some(Component::Transaction),
            "statement-service" => Some(Component::Statement),
            "console" => Some(Component::Console),
            _ => None,
        }
    }

    /// Its subcommand.
    pub fn subcommand(self) -> &'static str {
        match self {
            Component::Broker => "broker",
            Component::Account => "account-service",
            Component::Transaction => "transaction-service",
            Component::Statement => "statement-service",
            Component::Console => "console",
        }
    }

    /// Runs it with `args` (without the subcommand) until SIGINT or SIGTERM.
    pub fn run(self, args: Vec<String>) -> ExitCode {
        let argv = std::iter::once(self.subcommand().to_owned()).chain(args);
        match self {
            Component::Broker => broker::entry::main(argv.skip(1)),
            Component::Account => {
                let config = account::Config::parse_from(argv);
                let _telemetry = telemetry::init("account-service", config.common.log_json);
                serve(account::run(config, shutdown::signal()))
            }
            Component::Transaction => {
                let config = transaction::Config::parse_from(argv);
                let _telemetry = telemetry::init("transaction-service", config.common.log_json);
                serve(transaction::run(config, shutdown::signal()))
            }
            Component::Statement => {
                let config = statement::Config::parse_from(argv);
                let _telemetry = telemetry::init("statement-service", config.common.log_json);
                serve(statement::run(config, shutdown::signal()))
            }
            Component::Console => {
                let config = console::Config::parse_from(argv);
                let _telemetry = telemetry::init("console", config.log_json);
                serve(console::run(config, shutdown::signal()))
            }
        }
    }
}

/// Runs a service future on a fresh multi-threaded runtime and turns its result into an exit
/// code, printing the error chain.
fn serve(service: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(service) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_component_is_named_by_its_subcommand() {
        for component in [
            Component::Broker,
            Component::Account,
            Component::Transaction,
            Component::Statement,
            Component::Console,
        ] {
            assert_eq!(Component::named(component.subcommand()), Some(component));
        }
        assert_eq!(Component::named("--help"), None);
    }
}
