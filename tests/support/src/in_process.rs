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

    /// Any request: status, `Allow` header and JSON body (or the text as a JSON string).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, Option<String>, Value)> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.body(body).send().await?;
        let allow = response.headers().get("allow");
        let allow = allow.and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (status, body) = read(response).await?;
        Ok((status, allow, body))
    }

    /// Checks the HTTP rules every service shares (`service_kit::http::json_api`)
    /// on `path`, a route served with `POST` and not `DELETE` whose body has a string `field`:
    /// a body over the limit is `413`, one not sent as JSON `415`, one not UTF-8 `400`, an
    /// unknown route `404`, a method a route does not serve `405` with its `Allow` header;
    /// each with the JSON error body.
    pub async fn check_http_rules(&self, path: &str, field: &str) -> anyhow::Result<()> {
        let long = format!("{{\"pad\": \"{}\"}}", "x".repeat(70_000)).into_bytes();
        let mut truncated_utf8 = format!("{{\"{field}\": \"").into_bytes();
        truncated_utf8.extend_from_slice(b"\xe2\x82\"}");
        let (json, text) = ("application/json", "text/plain");
        // Method, path, content type ("" for none), body; the status and error code expected.
        let cases = [
            ("POST", path, json, long, 413, "body_too_large"),
            (
                "POST",
                path,
                text,
                b"{}".to_vec(),
                415,
                "unsupported_media_type",
            ),
            (
                "POST",
                path,
                "",
                b"{}".to_vec(),
                415,
                "unsupported_media_type",
            ),
            ("POST", path, json, truncated_utf8, 400, "malformed_request"),
            ("GET", "/api/nowhere", "", vec![], 404, "not_found"),
            ("DELETE", path, "", vec![], 405, "method_not_allowed"),
        ];
        for (method, path, content_type, body, status, code) in cases {
            let headers: &[_] = match content_type {
                "" => &[],
                some => &[("content-type", some)],
            };
            let (got, allow, answer) = self.send(method, path, headers, body).await?;
            let what = format!("{method} {path} as {content_type:?}: {got} {answer}");
            anyhow::ensure!(
                (got, answer["error"].as_str()) == (status, Some(code)),
                "{what}"
            );
            let message = answer["message"].as_str().unwrap_or_default();
            anyhow::ensure!(!message.is_empty(), "{what}");
            if status == 405 {
                let allow = allow.unwrap_or_default();
                anyhow::ensure!(allow.contains("POST"), "{what}: Allow {allow}");
                anyhow::ensure!(message.contains("POST"), "{what}");
            }
        }
        let (status, allow, answer) = self.send("POST", "/healthz", &[], vec![]).await?;
        anyhow::ensure!(
            status == 405 && answer["error"] == "method_not_allowed",
            "{answer}"
        );
        anyhow::ensure!(allow.is_some_and(|a| a.contains("GET")), "/healthz Allow");
        Ok(())
    }
}

async fn read(response: reqwest::Response) -> anyhow::Result<(u16, Value)> {
    let status = response.status().as_u16();
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, body))
}
