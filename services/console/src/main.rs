//! `console`: the web console of the stack; see the crate documentation and `--help`.

use clap::Parser;
use console::Config;
use service_kit::{shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_json);
    console::run(config, shutdown::signal()).await
}
