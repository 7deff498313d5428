//! What the HTTP port records of every request: its latency by route template and status in
//! `/metrics`, one log line at INFO (tower-http's `TraceLayer`: method, path, status, latency
//! and trace id), and its trace context, which handlers read with [`RequestTrace`] and put in
//! the events they cause.
//!
//! The layers, from the outside in: [`HttpMetrics`] times the whole request; the `TraceLayer`
//! opens the request's span (a child of the caller's `traceparent`, for OpenTelemetry) and
//! writes the log line; `trace_request` decides the trace context this hop hands on and
//! records its trace id on the span. Each router's own [`tag_route`] layer names the matched
//! route template (`/api/transactions/{id}`, never the raw path) for the span and the metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, Response};
use axum::middleware::Next;
use axum::Router;
use opentelemetry::trace::TraceContextExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use tower_http::trace::TraceLayer;
use tracing::field::Empty;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::{latency_histogram, Metrics};
use crate::telemetry;
use common_events::trace::{TraceContext, TRACEPARENT};

/// The `route` label of a request no route matched (an unknown path, or the API while the
/// service starts): raw paths are not labels, so a scan of random URLs cannot grow `/metrics`.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The route template a request matched, handed from the router that matched it to the
/// layers around the server.
#[derive(Clone, Debug)]
struct RouteTemplate(Arc<str>);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Arc<str>,
    status: u16,
}

type Durations = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// The HTTP series of a service: `http_requests_total{status}` and
/// `http_request_duration_seconds{method,route,status}`.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<StatusLabel, Counter>,
    durations: Durations,
}

impl HttpMetrics {
    /// The HTTP families, registered in `metrics`.
    pub fn register(metrics: &Metrics) -> Self {
        let requests = Family::<StatusLabel, Counter>::default();
        let durations = Durations::new_with_constructor(latency_histogram);
        metrics.register(
            "http_requests",
            "HTTP requests answered, by status.",
            requests.clone(),
        );
        metrics.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response head, by method, matched route \
             template and status.",
            durations.clone(),
        );
        Self {
            requests,
            durations,
        }
    }

    fn observe(&self, method: &Method, route: Arc<str>, status: u16, took: Duration) {
        self.requests.get_or_create(&StatusLabel { status }).inc();
        let labels = RequestLabels {
            method: method_label(method),
            route,
            status,
        };
        self.durations
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }
}

/// A method as a label: the standard ones by name, any other as `other` (a client may send any
/// token as a method).
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

/// Wraps a service's whole HTTP router: metrics, the request log line and the trace context
/// (see the module documentation).
pub fn observed(router: Router, metrics: HttpMetrics) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(request_span)
        .on_request(())
        .on_response(log_response)
        .on_failure(());
    router
        .layer(axum::middleware::from_fn(trace_request))
        .layer(trace)
        .layer(axum::middleware::from_fn_with_state(metrics, measure))
}

/// Names the matched route template of `router`'s requests, for the span and the metrics.
/// Every router whose routes should be labelled by template gets this layer.
pub fn tag_routes(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(tag_route))
}

async fn measure(
    State(metrics): State<HttpMetrics>,
    request: Request,
    next: Next,
) -> Response<axum::body::Body> {
    let begun = Instant::now();
    let method = request.method().clone();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or_else(|| Arc::from(UNMATCHED_ROUTE), |r| Arc::clone(&r.0));
    let status = response.status().as_u16();
    metrics.observe(&method, route, status, begun.elapsed());
    response
}

fn incoming_trace(headers: &axum::http::HeaderMap) -> Option<TraceContext> {
    let value = headers.get(TRACEPARENT)?.to_str().ok()?;
    TraceContext::parse(value)
}

fn request_span<B>(request: &axum::http::Request<B>) -> Span {
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        route = Empty,
        trace_id = Empty,
        otel.name = %request.method(),
        otel.kind = "server",
        http.response.status_code = Empty,
    );
    telemetry::set_remote_parent(&span, incoming_trace(request.headers()));
    span
}

fn log_response<B>(response: &Response<B>, latency: Duration, span: &Span) {
    let status = response.status().as_u16();
    // As an integer, as OpenTelemetry's HTTP conventions have it.
    span.record("http.response.status_code", i64::from(status));
    let latency_ms = latency.as_secs_f64() * 1000.0;
    tracing::info!(status, latency_ms, "request");
}

/// Decides the trace context of this hop (the span's own, with OpenTelemetry; else a child of
/// the caller's `traceparent`, or a new trace) and hands it to the handlers.
async fn trace_request(mut request: Request, next: Next) -> Response<axum::body::Body> {
    let span = Span::current();
    let hop = telemetry::hop(&span, incoming_trace(request.headers()));
    span.record("trace_id", hop.trace_id_hex());
    request.extensions_mut().insert(RequestTrace(hop));
    next.run(request).await
}

async fn tag_route(request: Request, next: Next) -> Response<axum::body::Body> {
    let Some(route) = request.extensions().get::<MatchedPath>() else {
        return next.run(request).await;
    };
    let route: Arc<str> = Arc::from(route.as_str());
    let span = Span::current();
    span.record("route", &*route);
    // The exported span started before routing: rename it after the route template.
    let name = format!("{} {route}", request.method());
    span.context().span().update_name(name);
    let mut response = next.run(request).await;
    response.extensions_mut().insert(RouteTemplate(route));
    response
}

/// The trace context of a request, to carry in the events it causes. Taken from what the HTTP
/// layers decided; without them (a router tested on its own), a child of the request's
/// `traceparent` header, or a new trace.
#[derive(Clone, Copy, Debug)]
pub struct RequestTrace(pub TraceContext);

impl<S: Send + Sync> FromRequestParts<S> for RequestTrace {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(trace) = parts.extensions.get::<RequestTrace>() {
            return Ok(*trace);
        }
        let incoming = incoming_trace(&parts.headers);
        Ok(RequestTrace(
            incoming.map_or_else(TraceContext::new_root, TraceContext::child),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    fn app(metrics: &Metrics) -> Router {
        let echo = |RequestTrace(trace): RequestTrace| async move { trace.trace_id_hex() };
        let routes = tag_routes(Router::new().route("/items/{id}", get(echo)));
        observed(routes, HttpMetrics::register(metrics))
    }

    async fn call(router: &Router, uri: &str, traceparent: Option<&str>) -> (u16, String) {
        let mut request = axum::http::Request::builder().uri(uri);
        if let Some(value) = traceparent {
            request = request.header(TRACEPARENT, value);
        }
        let response = router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn requests_are_timed_by_route_template_and_status_never_by_raw_path() {
        let metrics = Metrics::new();
        let router = app(&metrics);
        assert_eq!(call(&router, "/items/1", None).await.0, 200);
        assert_eq!(call(&router, "/items/2", None).await.0, 200);
        assert_eq!(call(&router, "/nowhere/3", None).await.0, 404);
        let text = metrics.encode();
        let ok = "http_request_duration_seconds_count{method=\"GET\",route=\"/items/{id}\",status=\"200\"} 2";
        assert!(text.contains(ok), "{text}");
        let missed = "route=\"unmatched\",status=\"404\"} 1";
        assert!(text.contains(missed), "{text}");
        assert!(!text.contains("/nowhere"), "{text}");
        assert!(
            text.contains("http_requests_total{status=\"200\"} 2"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_handler_continues_the_callers_trace() {
        let router = app(&Metrics::new());
        let caller = TraceContext::new_root();
        let (_, trace_id) = call(&router, "/items/1", Some(&caller.to_string())).await;
        assert_eq!(trace_id, caller.trace_id_hex());
        let (_, fresh) = call(&router, "/items/1", Some("garbage")).await;
        assert_eq!(fresh.len(), 32);
        assert_ne!(fresh, caller.trace_id_hex());
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let odd = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&odd), "other");
        assert_eq!(method_label(&Method::POST), "POST");
    }
}
