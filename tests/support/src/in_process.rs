//! A service running in-process on a tokio task, with an HTTP client for its API.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The future a service's `run_until` waits on before shutting down.
pub type StopSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How long a graceful stop may take.
const STOP_BOUND: Duration = Duration::from_secs(20);

/// A running in-process service.
pub struct InProcess {
    /// `http://<addr>`.
    pub url: String,
    /// A client for its API.
    pub http: reqwest::Client,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    /// Runs `run(stop_signal)` (a service's `run_until`) on a task; `addr` is where it listens.
    pub fn spawn<F>(addr: SocketAddr, run: impl FnOnce(StopSignal) -> F) -> Self
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let signal: StopSignal = Box::pin(async {
            let _ = stopped.await;
        });
        Self {
            url: format!("http://{addr}"),
            http: reqwest::Client::new(),
            stop,
            task: tokio::spawn(run(signal)),
        }
    }

    /// Stops the service gracefully and waits (bounded) for it to finish.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        tokio::time::timeout(STOP_BOUND, self.task)
            .await
            .context("the service did not stop in time")?
            .context("the service task panicked")?
    }

    /// `GET <path>`: status and JSON body (or the text as a JSON string).
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let response = self.http.get(format!("{}{path}", self.url)).send().await?;
        read(response).await
    }

    /// `POST <path>` with a JSON body and extra headers: status and JSON body.
    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self.http.post(format!("{}{path}", self.url)).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read(request.send().await?).await
    }

    /// `POST <path>` with a raw body sent as JSON: status and JSON body.
    pub async fn post_raw(&self, path: &str, body: &'static str) -> anyhow::Result<(u16, Value)> {
        let request = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body);
        read(request.send().await?).await
    }
}

async fn read(response: reqwest::Response) -> anyhow::Result<(u16, Value)> {
    let status = response.status().as_u16();
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, body))
}
