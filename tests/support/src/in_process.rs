//! A service running in-process on a tokio task, with an HTTP client for its API.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use anyhow::{bail, Context};
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
    /// Taken by whoever reports how the service ended.
    task: std::sync::Mutex<Option<JoinHandle<anyhow::Result<()>>>>,
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
            task: std::sync::Mutex::new(Some(tokio::spawn(run(signal)))),
        }
    }

    fn take_task(&self) -> Option<JoinHandle<anyhow::Result<()>>> {
        self.task.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Waits (bounded) until `/readyz` answers 200: connected and serving. A service that
    /// ends meanwhile fails the wait with its own error.
    pub async fn wait_ready(&self, bound: Duration) -> anyhow::Result<()> {
        let ready = crate::wait::ready(&self.http, &self.url, bound);
        tokio::pin!(ready);
        loop {
            tokio::select! {
                ready = &mut ready => return ready,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    if self.is_finished() {
                        let ended = match self.take_task() {
                            Some(task) => task.await.context("the service task panicked")?,
                            None => Ok(()),
                        };
                        ended.context("the service ended before it was ready")?;
                        bail!("the service ended before it was ready, without an error");
                    }
                }
            }
        }
    }

    /// Whether the service has ended (it failed to start, or it was stopped).
    pub fn is_finished(&self) -> bool {
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits (bounded) for the service to end by itself, and returns its result.
    pub async fn finished(self, bound: Duration) -> anyhow::Result<anyhow::Result<()>> {
        let task = self
            .take_task()
            .context("the service's end was already reported")?;
        tokio::time::timeout(bound, task)
            .await
            .context("the service did not end in time")?
            .context("the service task panicked")
    }

    /// Stops the service gracefully and waits (bounded) for it to finish.
    pub async fn stop(self) -> anyhow::Result<()> {
        let task = self.take_task();
        let _ = self.stop.send(());
        let Some(task) = task else {
            return Ok(());
        };
        tokio::time::timeout(STOP_BOUND, task)
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
