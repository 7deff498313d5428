//! `console`: the web console of the stack; see the crate documentation and `--help`.

use clap::Parser;
use console::Config;
use service_kit::{shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let telemetry = telemetry::init("console", config.log_json);
    let result = console::run(config, shutdown::signal()).await;
    telemetry.shutdown();
    result
}
