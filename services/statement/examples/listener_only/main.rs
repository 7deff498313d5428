//! `owners-service`: a listener-only service in one source file, the example of
//! `docs/new-service.md`. It keeps who owns each account (`AccountOpened` into table `owner` of
//! its own database), publishes nothing and serves only `/healthz`, `/readyz` and `/metrics`.
//!
//! `cargo run -p statement --example listener_only` runs it (`--help` lists its settings); the
//! statement service's test suite runs it in-process on every broker × database
//! (`cargo test -p statement --test service -- listener_only`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use common_events::topology::{subjects, ConsumerSpec, ACCOUNTS};
use common_events::{AccountOpened, Envelope};
use service_kit::app::{exit_code, App, Declared};
use service_kit::config::{parse_addr, CommonConfig};
use service_kit::db::Db;
use service_kit::foundation::Migrations;
use service_kit::{shutdown, telemetry, Listener, MessageContext, Outcome};
use sqlx::migrate::Migrator;

static SQLITE: Migrator = sqlx::migrate!("examples/listener_only/migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("examples/listener_only/migrations/postgres");

/// The durable consumer (queue group) every replica shares.
pub const OPENED: &str = "owners-service-opened";

/// `owners-service`: who owns each account.
#[derive(Parser, Clone, Debug)]
#[command(name = "owners-service")]
pub struct Config {
    /// Settings every service shares.
    #[command(flatten)]
    pub common: CommonConfig,

    /// Where `/healthz`, `/readyz` and `/metrics` listen.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8090", value_parser = parse_addr)]
    pub http_addr: SocketAddr,
}

/// Records the owner of each account opened; a redelivery changes nothing.
pub struct Owners(pub Db);

impl Listener for Owners {
    type Event = AccountOpened;

    fn name(&self) -> &'static str {
        "owners"
    }

    async fn on_message(&self, event: Envelope<AccountOpened>, _: MessageContext) -> Outcome {
        let recorded = async {
            let mut tx = self.0.begin_write().await?;
            sqlx::query(
                "insert into owner (account_id, owner, opened_at) values ($1, $2, $3) \
                 on conflict (account_id) do nothing",
            )
            .bind(event.data.account_id.to_string())
            .bind(&event.data.owner)
            .bind(event.occurred_at.timestamp_millis())
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        };
        match recorded.await {
            // Acked only once committed: a crash before the commit redelivers the event.
            Ok(()) => Outcome::Ack,
            Err(err) => {
                tracing::warn!(error = %err, "recording an owner failed; retrying");
                Outcome::Retry(Duration::from_millis(500))
            }
        }
    }
}

/// Binds the HTTP address (a busy port fails at once).
pub async fn bind(config: &Config) -> anyhow::Result<App> {
    let migrations = Migrations {
        sqlite: &SQLITE,
        postgres: &POSTGRES,
    };
    let opened = ConsumerSpec::new(ACCOUNTS, OPENED, subjects::ACCOUNT_OPENED);
    let declared = Declared::new("owners", migrations, vec![opened]);
    Ok(App::bind(&config.common, declared, config.http_addr).await?)
}

/// Connects, runs the listener and serves until `shutdown` resolves.
pub async fn run(
    app: App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    app.run_until(shutdown, |mut wiring| async move {
        let db = wiring.db.clone();
        wiring.listen(OPENED, Owners(db))?;
        Ok(wiring)
    })
    .await
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let telemetry = telemetry::init("owners-service", config.common.log_json);
    let served = async { run(bind(&config).await?, shutdown::signal()).await };
    let result = served.await;
    telemetry.shutdown();
    exit_code("owners-service", result)
}
