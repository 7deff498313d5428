//! The operational routes every service serves: `/healthz` (the process answers), `/readyz`
//! (database and broker reachable) and `/metrics` (Prometheus text), plus a request counter
//! middleware.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::db::Db;

/// Renders a service's own metrics into Prometheus text.
pub type MetricsFn = Arc<dyn Fn(&mut String) + Send + Sync>;

/// What the operational routes look at.
#[derive(Clone)]
pub struct Ops {
    db: Db,
    nats: async_nats::Client,
    metrics: MetricsFn,
    requests: Arc<Mutex<BTreeMap<u16, u64>>>,
}

impl Ops {
    /// Operational state over the service's database, NATS client and metrics.
    pub fn new(db: Db, nats: async_nats::Client, metrics: MetricsFn) -> Self {
        Self {
            db,
            nats,
            metrics,
            requests: Arc::default(),
        }
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
    if let Ok(mut requests) = ops.requests.lock() {
        *requests.entry(status).or_default() += 1;
    }
    response
}

async fn readyz(State(ops): State<Ops>) -> impl IntoResponse {
    let database = ops.db.ping().await;
    let broker = ops.nats.connection_state() == async_nats::connection::State::Connected;
    let status = if database && broker {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({"database": database, "broker": broker});
    (status, Json(body))
}

async fn metrics(State(ops): State<Ops>) -> impl IntoResponse {
    let mut out = String::new();
    if let Ok(requests) = ops.requests.lock() {
        for (status, count) in requests.iter() {
            let _ = writeln!(out, "http_requests_total{{status=\"{status}\"}} {count}");
        }
    }
    (ops.metrics)(&mut out);
    let content_type = "text/plain; version=0.0.4";
    ([(header::CONTENT_TYPE, content_type)], out)
}
