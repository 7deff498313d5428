//! `transaction-service`: see the crate documentation and `--help`.

use std::process::ExitCode;

use clap::Parser;
use service_kit::{shutdown, telemetry};
use transaction::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init(config.common.log_json);
    match transaction::run(config, shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let err = format!("{err:#}");
            tracing::error!(error = %err, "transaction-service failed");
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
