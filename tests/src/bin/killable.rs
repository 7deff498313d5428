//! `killable account-service|transaction-service|statement-service [flags]`: one of the stack's services as a
//! process of its own, with that service's flags and environment, so that the end-to-end test
//! can kill it with SIGKILL (a real crash: its connection drops, nothing more is acknowledged)
//! while the rest of the stack runs in the test's process.

use std::process::ExitCode;

use clap::Parser;
use service_kit::app::exit_code;
use service_kit::{shutdown, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let service = args.next().unwrap_or_default();
    let argv = std::iter::once(service.clone()).chain(args);
    let result = match service.as_str() {
        "account-service" => {
            let config = account::Config::parse_from(argv);
            let telemetry = telemetry::init(&service, config.common.log_json);
            let result = account::run(config, shutdown::signal()).await;
            telemetry.shutdown();
            result
        }
        "transaction-service" => {
            let config = transaction::Config::parse_from(argv);
            let telemetry = telemetry::init(&service, config.common.log_json);
            let result = transaction::run(config, shutdown::signal()).await;
            telemetry.shutdown();
            result
        }
        "statement-service" => {
            let config = statement::Config::parse_from(argv);
            let telemetry = telemetry::init(&service, config.common.log_json);
            let result = statement::run(config, shutdown::signal()).await;
            telemetry.shutdown();
            result
        }
        other => {
            eprintln!(
                "usage: killable account-service|transaction-service|statement-service [flags] \
                 (got {other:?})"
            );
            return ExitCode::from(2);
        }
    };
    exit_code(&service, result)
}
