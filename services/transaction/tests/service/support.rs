//! A transaction service in-process on port 0, with its own broker and database.

use std::time::Duration;

use async_nats::jetstream;
use clap::Parser;
use common_events::{AccountId, AccountOpened, Envelope, Publisher};
use serde_json::{json, Value};
use service_kit::db::Db;
use tempfile::TempDir;
use test_support::{eventually, InProcess, StartedBroker, Target};
use transaction::{Application, Config};

/// How long waits for asynchronous effects may take.
pub const BOUND: Duration = Duration::from_secs(15);
/// How long a service may take to become ready: generous, to catch a hang on a loaded CI
/// machine rather than to time a start.
pub const START_BOUND: Duration = Duration::from_secs(60);

/// A running service and what it runs on.
pub struct TestApp {
    pub service: InProcess,
    pub js: jetstream::Context,
    pub db: Db,
    /// Declared last so it drops last: broker and files outlive the service.
    pub ground: Ground,
}

/// The broker, database and directory a service runs on, before it starts.
pub struct Ground {
    pub broker: StartedBroker,
    pub database_url: String,
    /// Holds the SQLite file; removed on drop.
    _dir: TempDir,
}

/// Starts a broker and creates a database for `target`.
pub async fn ground(target: &Target) -> anyhow::Result<Ground> {
    let broker = target.broker.start()?;
    let dir = tempfile::tempdir()?;
    let database_url = target
        .database()
        .fresh_url(dir.path(), "transaction")
        .await?;
    Ok(Ground {
        broker,
        database_url,
        _dir: dir,
    })
}

/// Starts a service for `target`.
pub async fn spawn_app(target: &Target) -> anyhow::Result<TestApp> {
    start_on(ground(target).await?).await
}

/// Starts a service for `target` with more `flags`.
pub async fn spawn_app_with(target: &Target, flags: &[&str]) -> anyhow::Result<TestApp> {
    start_with(ground(target).await?, flags).await
}

/// Starts a service on prepared ground and waits until it is ready.
pub async fn start_on(ground: Ground) -> anyhow::Result<TestApp> {
    start_with(ground, &[]).await
}

/// Starts a service with more `flags` on prepared ground and waits until it is ready.
async fn start_with(ground: Ground, flags: &[&str]) -> anyhow::Result<TestApp> {
    let service = spawn_service(&ground.broker.url(), &ground.database_url, flags).await?;
    service.wait_ready(START_BOUND).await?;
    let client = async_nats::connect(ground.broker.url()).await?;
    let db = Db::connect(&ground.database_url, 2).await?;
    Ok(TestApp {
        service,
        js: jetstream::new(client),
        db,
        ground,
    })
}

/// Starts a service on `nats_url` and `database_url` with more `flags`, without waiting for it
/// to connect.
pub async fn spawn_service(
    nats_url: &str,
    database_url: &str,
    flags: &[&str],
) -> anyhow::Result<InProcess> {
    let mut args = vec![
        "transaction-service".to_owned(),
        format!("--nats-url={nats_url}"),
        format!("--database-url={database_url}"),
        "--http-addr=127.0.0.1:0".to_owned(),
        "--max-amount=1000000".to_owned(),
    ];
    args.extend(flags.iter().map(|flag| (*flag).to_owned()));
    let app = Application::build(Config::parse_from(args)).await?;
    Ok(InProcess::spawn(app.local_addr(), |stop| {
        app.run_until(stop)
    }))
}

impl TestApp {
    /// Stops the service gracefully, waits for it, and hands back its broker and database.
    pub async fn stop(self) -> anyhow::Result<Ground> {
        self.service.stop().await?;
        Ok(self.ground)
    }

    /// Publishes `AccountOpened` and waits until the service knows the account.
    pub async fn known_account(&self) -> anyhow::Result<AccountId> {
        let id = AccountId::new();
        publish_account_opened(&self.js, id).await?;
        let pool = self.db.pool().clone();
        eventually("the service to learn the account", BOUND, || {
            let pool = pool.clone();
            async move {
                let n: i64 = sqlx::query_scalar("select count(*) from account where id = $1")
                    .bind(id.to_string())
                    .fetch_one(&pool)
                    .await?;
                Ok((n == 1).then_some(()))
            }
        })
        .await?;
        Ok(id)
    }

    /// `POST /api/transactions` with `body` and an optional idempotency key.
    pub async fn post(&self, body: &Value, key: Option<&str>) -> anyhow::Result<(u16, Value)> {
        let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
        self.service.post("/api/transactions", body, &headers).await
    }

    /// A deposit or withdrawal, which must be created (201).
    pub async fn create(
        &self,
        account: AccountId,
        kind: &str,
        amount: i64,
    ) -> anyhow::Result<Value> {
        let body = json!({"account_id": account.to_string(), "kind": kind, "amount": amount});
        let (status, body) = self.post(&body, None).await?;
        anyhow::ensure!(status == 201, "expected 201, got {status}: {body}");
        Ok(body)
    }

    /// `GET <path>`.
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        self.service.get(path).await
    }
}

/// Publishes `AccountOpened` for `id`, as the account service would.
pub async fn publish_account_opened(js: &jetstream::Context, id: AccountId) -> anyhow::Result<()> {
    common_events::topology::ensure(js, &[]).await?;
    let event = Envelope::new(AccountOpened {
        account_id: id,
        owner: "test".into(),
    });
    Publisher::new(js.clone()).publish(&event, None).await?;
    Ok(())
}
