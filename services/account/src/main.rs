//! `account-service`: see the crate documentation and `--help`.

use std::process::ExitCode;

use account::Config;
use clap::Parser;
use service_kit::app::exit_code;
use service_kit::{shutdown, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let telemetry = telemetry::init("account-service", config.common.log_json);
    let result = account::run(config, shutdown::signal()).await;
    telemetry.shutdown();
    exit_code("account-service", result)
}
