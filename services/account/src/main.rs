//! `account-service`: see the crate documentation and `--help`.

use std::process::ExitCode;

use account::Config;
use clap::Parser;
use service_kit::{shutdown, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init(config.common.log_json);
    match account::run(config, shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let err = format!("{err:#}");
            tracing::error!(error = %err, "account-service failed");
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
