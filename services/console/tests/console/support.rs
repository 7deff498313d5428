//! A stack and a console on port 0 in front of it, and a reader of server-sent events.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use console::timeline::Timeline;
use console::{Config, Console};
use e2e_tests::stack::Stack;
use serde_json::Value;
use test_support::{eventually, InProcess, Target};

/// How long waits for asynchronous effects may take.
pub const BOUND: Duration = Duration::from_secs(20);

/// A running stack and a console in front of it.
pub struct Rig {
    /// The console (its `url`, `get`, `post`).
    pub console: InProcess,
    /// The stack; declared last so it outlives the console.
    pub stack: Stack,
}

/// Starts a stack with one account-service replica, waits until the services are ready, then
/// starts a console in front of it and waits until it follows both streams and the notes.
pub async fn rig(target: &Target) -> anyhow::Result<Rig> {
    let stack = Stack::start(target, 1).await?;
    let http = reqwest::Client::new();
    for url in [
        &stack.replicas[0].url,
        &stack.transaction.url,
        &stack.statement.url,
    ] {
        ready(&http, url).await?;
    }
    let args = [
        format!("--nats-url={}", stack.broker.url()),
        format!("--account-url={}", stack.replicas[0].url),
        format!("--transaction-url={}", stack.transaction.url),
        format!("--statement-url={}", stack.statement.url),
    ];
    let (console, _) = start_console(&args).await?;
    eventually(
        "the console to follow both streams and the decision notes",
        BOUND,
        || async {
            let (status, body) = console.get("/readyz").await?;
            Ok((status == 200 && body["timeline_sources"] == 3).then_some(()))
        },
    )
    .await?;
    Ok(Rig { console, stack })
}

/// Starts a console on `127.0.0.1:0` with these flags.
pub async fn start_console(args: &[String]) -> anyhow::Result<(InProcess, Arc<Timeline>)> {
    let mut all = vec!["--http-addr=127.0.0.1:0".to_owned()];
    all.extend_from_slice(args);
    let console = Console::bind(Config::from_args(all)?).await?;
    let timeline = console.state().timeline.clone();
    let addr = console.local_addr();
    Ok((
        InProcess::spawn(addr, |stop| console.run_until(stop)),
        timeline,
    ))
}

/// Waits (bounded) until `<url>/readyz` answers 200: services bind first and become ready once
/// their broker and database are.
pub async fn ready(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    eventually(&format!("{url}/readyz to answer 200"), BOUND, || async {
        let response = http.get(format!("{url}/readyz")).send().await;
        Ok(response.ok().filter(|r| r.status() == 200).map(|_| ()))
    })
    .await
}

impl Rig {
    /// Opens an account through the console; its id.
    pub async fn open(&self, owner: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({"owner": owner});
        let (status, account) = self.console.post("/api/accounts", &body, &[]).await?;
        anyhow::ensure!(status == 201, "opening {owner}: {status} {account}");
        Ok(account["id"].as_str().unwrap_or_default().to_owned())
    }

    /// Creates a transaction through the console with `key`, retrying while the transaction
    /// service has not heard of the account yet (404); the created transaction.
    pub async fn transact(
        &self,
        account: &str,
        kind: &str,
        amount: &str,
        key: &str,
    ) -> anyhow::Result<Value> {
        let body = serde_json::json!({"account_id": account, "kind": kind, "amount": amount});
        eventually(
            &format!("{kind} {amount} to be accepted"),
            BOUND,
            || async {
                let (status, created) = self
                    .console
                    .post("/api/transactions", &body, &[("Idempotency-Key", key)])
                    .await?;
                match status {
                    201 => Ok(Some(created)),
                    404 => Ok(None),
                    other => bail!("{kind} {amount}: {other} {created}"),
                }
            },
        )
        .await
    }

    /// `(balance, last_transaction_number)` through the console.
    pub async fn balance(&self, account: &str) -> anyhow::Result<(i64, i64)> {
        let (status, body) = self
            .console
            .get(&format!("/api/accounts/{account}"))
            .await?;
        anyhow::ensure!(status == 200, "reading {account}: {status} {body}");
        Ok((
            body["balance"].as_i64().unwrap_or(-1),
            body["last_transaction_number"].as_i64().unwrap_or(-1),
        ))
    }
}

/// One server-sent event.
#[derive(Clone, Debug, PartialEq)]
pub struct SseEvent {
    /// `event:`.
    pub event: String,
    /// `data:` (lines joined), parsed as JSON.
    pub data: Value,
}

/// Reads `GET <url>` as server-sent events.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    /// Opens the stream.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let response = reqwest::Client::new()
            .get(url)
            .header("accept", "text/event-stream")
            .send()
            .await?;
        anyhow::ensure!(response.status() == 200, "GET {url}: {}", response.status());
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        anyhow::ensure!(
            content_type.starts_with("text/event-stream"),
            "content type {content_type}"
        );
        Ok(Self {
            response,
            buffer: String::new(),
        })
    }

    /// The next event (comments skipped), waiting at most until `deadline`.
    pub async fn next(&mut self, deadline: tokio::time::Instant) -> anyhow::Result<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        event = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push(value.trim_start().to_owned());
                    }
                }
                if data.is_empty() {
                    continue; // a comment (keep-alive)
                }
                let data = data.join("\n");
                let data = serde_json::from_str(&data).with_context(|| format!("data {data}"))?;
                return Ok(SseEvent { event, data });
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .context("timed out waiting for a server-sent event")??
                .context("the event stream ended")?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads events until `done` holds for one of them; every event read.
    pub async fn until(
        &mut self,
        what: &str,
        mut done: impl FnMut(&SseEvent) -> bool,
    ) -> anyhow::Result<Vec<SseEvent>> {
        let deadline = tokio::time::Instant::now() + BOUND;
        let mut seen = Vec::new();
        loop {
            let event = self
                .next(deadline)
                .await
                .with_context(|| format!("waiting for {what}; saw {seen:#?}"))?;
            let finished = done(&event);
            seen.push(event);
            if finished {
                return Ok(seen);
            }
        }
    }
}

/// The resident set size of this process, in kB (Linux).
pub fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A fresh idempotency key.
pub fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}
