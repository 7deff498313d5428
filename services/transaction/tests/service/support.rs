//! A transaction service in-process on port 0, with its own broker and database.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use clap::Parser;
use common_events::service::db::Db;
use common_events::{AccountId, AccountOpened, Envelope, Publisher};
use serde_json::{json, Value};
use tempfile::TempDir;
use test_support::{eventually, StartedBroker, Target};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use transaction::{Application, Config};

/// How long waits for asynchronous effects may take.
pub const BOUND: Duration = Duration::from_secs(15);

/// A running service and what it runs on.
pub struct TestApp {
    pub url: String,
    pub http: reqwest::Client,
    pub js: jetstream::Context,
    pub db: Db,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
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

/// The configuration for a service on `ground`, plus `extra` flags.
pub fn config(ground: &Ground, extra: &[&str]) -> Config {
    let mut args = vec![
        "transaction-service".to_owned(),
        format!("--nats-url={}", ground.broker.url()),
        format!("--database-url={}", ground.database_url),
        "--http-addr=127.0.0.1:0".to_owned(),
        "--max-amount=1000000".to_owned(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Config::parse_from(args)
}

/// Starts a service for `target`.
pub async fn spawn_app(target: &Target) -> anyhow::Result<TestApp> {
    let ground = ground(target).await?;
    start_on(ground, &[]).await
}

/// Starts a service on prepared ground.
pub async fn start_on(ground: Ground, extra: &[&str]) -> anyhow::Result<TestApp> {
    let app = Application::build(config(&ground, extra)).await?;
    let url = format!("http://{}", app.local_addr());
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = async_nats::connect(ground.broker.url()).await?;
    let db = Db::connect(&ground.database_url, 2).await?;
    Ok(TestApp {
        url,
        http: reqwest::Client::new(),
        js: jetstream::new(client),
        db,
        stop,
        task,
        ground,
    })
}

impl TestApp {
    /// Stops the service gracefully, waits for it, and hands back its broker and database.
    pub async fn stop(self) -> anyhow::Result<Ground> {
        let _ = self.stop.send(());
        tokio::time::timeout(BOUND, self.task)
            .await
            .context("the service did not stop")???;
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
        let mut request = self
            .http
            .post(format!("{}/api/transactions", self.url))
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
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

    /// `GET <path>`: status and JSON body (or the text as a JSON string).
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let response = self.http.get(format!("{}{path}", self.url)).send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, body))
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
