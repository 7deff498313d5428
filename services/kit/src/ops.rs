//! The operational routes every service serves: `/healthz` (the process answers), `/readyz`
//! (started, and database and broker reachable) and `/metrics` (the service's [`Metrics`] in
//! the Prometheus text format), plus the layers that observe every request
//! ([`Ops::observe`]).
//!
//! They are served from the moment the HTTP port is bound, while the service is still
//! connecting: `/readyz` then answers `503` with `"starting": true` and says which of the
//! database and the broker is connected yet.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::db::Db;
use crate::metrics::{self, Metrics};
use crate::observe::{self, HttpMetrics};

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

struct Inner {
    db: OnceLock<Db>,
    nats: OnceLock<async_nats::Client>,
    metrics: Metrics,
    http: HttpMetrics,
    detail: OnceLock<DetailFn>,
    serving: AtomicBool,
}

impl Default for Inner {
    fn default() -> Self {
        let metrics = Metrics::new();
        Self {
            http: HttpMetrics::register(&metrics),
            metrics,
            db: OnceLock::new(),
            nats: OnceLock::new(),
            detail: OnceLock::new(),
            serving: AtomicBool::new(false),
        }
    }
}

impl Ops {
    /// A service still starting: nothing connected, not ready.
    pub fn starting() -> Self {
        Self::default()
    }

    /// A service already connected and serving, over its database and NATS client.
    pub fn new(db: Db, nats: async_nats::Client) -> Self {
        let ops = Self::starting();
        ops.database_up(db);
        ops.broker_up(nats);
        ops.serving();
        ops
    }

    /// The service's metrics registry, served at `/metrics`: register its own series here.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The database is connected: `/readyz` checks it from now on.
    pub fn database_up(&self, db: Db) {
        let _ = self.inner.db.set(db);
    }

    /// The broker is connected: `/readyz` follows the client's connection from now on.
    pub fn broker_up(&self, nats: async_nats::Client) {
        let _ = self.inner.nats.set(nats);
    }

    /// Start-up is over (listeners and relay running, API open).
    pub fn serving(&self) {
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
        let routes = Router::new()
            .route(
                "/healthz",
                get(|| async { Json(serde_json::json!({"status": "ok"})) }),
            )
            .route("/readyz", get(readyz))
            .route("/metrics", get(serve_metrics))
            .with_state(self.clone());
        observe::tag_routes(routes)
    }

    /// Wraps the whole HTTP `router` so every request is timed in `/metrics`, logged and
    /// traced (see [`observe`]).
    pub fn observe(&self, router: Router) -> Router {
        observe::observed(router, self.inner.http.clone())
    }
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

async fn serve_metrics(State(ops): State<Ops>) -> impl IntoResponse {
    let text = ops.inner.metrics.encode();
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text)
}
