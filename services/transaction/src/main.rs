//! `transaction-service`: see the crate documentation and `--help`.

use clap::Parser;
use common_events::service::{shutdown, telemetry};
use transaction::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.common.log_json);
    let app = Application::build(config).await?;
    app.run_until(shutdown::signal()).await
}
