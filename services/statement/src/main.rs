//! `statement-service`: see the crate documentation and `--help`.

use std::process::ExitCode;

use clap::Parser;
use service_kit::app::exit_code;
use service_kit::{shutdown, telemetry};
use statement::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init(config.common.log_json);
    exit_code(
        "statement-service",
        statement::run(config, shutdown::signal()).await,
    )
}
