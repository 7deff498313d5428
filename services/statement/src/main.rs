//! `statement-service`: see the crate documentation and `--help`.

use std::process::ExitCode;

use clap::Parser;
use service_kit::app::exit_code;
use service_kit::{shutdown, telemetry};
use statement::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let telemetry = telemetry::init("statement-service", config.common.log_json);
    let result = statement::run(config, shutdown::signal()).await;
    telemetry.shutdown();
    exit_code("statement-service", result)
}
