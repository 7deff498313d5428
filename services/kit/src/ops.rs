//! The operational routes every service serves: `/healthz` (the process answers), `/readyz`
//! (started, and database and broker reachable) and `/metrics` (Prometheus text), plus a
//! request counter middleware.
//!
//! They are served from the moment the HTTP port is bound, while the service is still
//! connecting: `/readyz` then answers `503` with `"starting": true` and says which of the
//! database and the broker is connected yet.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::db::Db;

/// Renders a service's own metrics into Prometheus text.
pub type MetricsFn = Arc<dyn Fn(&mut String) + Send + Sync>;

/// Adds a service's own facts to the `/readyz` body (things people should see, such as parked
/// messages, that do not make the service unready).
pub type DetailFn = Arc<dyn Fn(&mut serde_json::Map<String, serde_json::Value>) + Send + Sync>;

/// How long `/readyz` waits for the database to answer.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// What the operational routes look at; cheap to clone, shared with the start-up code that
/// fills it in.
#[derive(Clone, Default)]
pub struct Ops {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    db: OnceLock<Db>,
    nats: OnceLock<async_nats::Client>,
    metrics: OnceLock<MetricsFn>,
    detail: OnceLock<DetailFn>,
    serving: AtomicBool,
    requests: Mutex<BTreeMap<u16, u64>>,
}

impl Ops {
    /// A service still starting: nothing connected, not ready.
    pub fn starting() -> Self {
        Self::default()
    }

    /// A service already connected and serving, over its database, NATS client and metrics.
    pub fn new(db: Db, nats: async_nats::Client, metrics: MetricsFn) -> Self {
        let ops = Self::starting();
        ops.database_up(db);
        ops.broker_up(nats);
        ops.serving(metrics);
        ops
    }

    /// The database is connected: `/readyz` checks it from now on.
    pub fn database_up(&self, db: Db) {
        let _ = self.inner.db.set(db);
    }

    /// The broker is connected: `/readyz` follows the client's connection from now on.
    pub fn broker_up(&self, nats: async_nats::Client) {
        let _ = self.inner.nats.set(nats);
    }

    /// Start-up is over (listeners and relay running, API open); `metrics` renders the
    /// service's own metrics from now on.
    pub fn serving(&self, metrics: MetricsFn) {
        let _ = self.inner.metrics.set(metrics);
        self.inner.serving.store(true, Ordering::Release);
    }

    /// `detail` adds the service's own facts to every `/readyz` body from now on.
    pub fn readiness_detail(&self, detail: DetailFn) {
        let _ = self.inner.detail.set(detail);
    }

    /// Whether start-up is over.
    pub fn is_serving(&self) -> bool {
        self.inner.serving.load(Ordering::Acquire)
    }

    /// `(ready, body)` as `/readyz` answers.
    pub async fn readiness(&self) -> (bool, serde_json::Value) {
        let database = match self.inner.db.get() {
            Some(db) => tokio::time::timeout(PING_TIMEOUT, db.ping())
                .await
                .unwrap_or(false),
            None => false,
        };
        let broker = self.inner.nats.get().is_some_and(|nats| {
            nats.connection_state() == async_nats::connection::State::Connected
        });
        let serving = self.is_serving();
        let mut body = serde_json::json!({"database": database, "broker": broker});
        if !serving {
            body["starting"] = serde_json::Value::Bool(true);
        }
        if let (Some(detail), Some(fields)) = (self.inner.detail.get(), body.as_object_mut()) {
            detail(fields);
        }
        (serving && database && broker, body)
    }

    /// `/healthz`, `/readyz`, `/metrics`.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/healthz",
                get(|| async { Json(serde_json::json!({"status": "ok"})) }),
            )
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(self.clone())
    }

    /// Wraps `router` so every response is counted by status in `/metrics`.
    pub fn count_requests(&self, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(self.clone(), count))
    }
}

async fn count(State(ops): State<Ops>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status().as_u16();
    if let Ok(mut requests) = ops.inner.requests.lock() {
        *requests.entry(status).or_default() += 1;
    }
    response
}

async fn readyz(State(ops): State<Ops>) -> impl IntoResponse {
    let (ready, body) = ops.readiness().await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn metrics(State(ops): State<Ops>) -> impl IntoResponse {
    let mut out = String::new();
    if let Ok(requests) = ops.inner.requests.lock() {
        for (status, count) in requests.iter() {
            let _ = writeln!(out, "http_requests_total{{status=\"{status}\"}} {count}");
        }
    }
    if let Some(metrics) = ops.inner.metrics.get() {
        metrics(&mut out);
    }
    let content_type = "text/plain; version=0.0.4";
    ([(header::CONTENT_TYPE, content_type)], out)
}
