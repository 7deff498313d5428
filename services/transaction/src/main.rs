//! `transaction-service`: see the crate documentation and `--help`.

use std::process::ExitCode;

use clap::Parser;
use service_kit::app::exit_code;
use service_kit::{shutdown, telemetry};
use transaction::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let telemetry = telemetry::init("transaction-service", config.common.log_json);
    let result = transaction::run(config, shutdown::signal()).await;
    telemetry.shutdown();
    exit_code("transaction-service", result)
}
