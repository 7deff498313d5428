//! Wiring: the bound HTTP listener first, then the broker connection in the background, the
//! timeline feed, the broker panel's refresher, and the routes; a graceful stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use service_kit::metrics::{AtomicCounter, Metrics};
use service_kit::observe::{self, HttpMetrics};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::link::BrokerLink;
use crate::panel::Panel;
use crate::scenarios::RunStats;
use crate::timeline::{Timeline, TimelineStats};
use crate::upstream::Services;

/// How many scenario runs may go on at once.
const SCENARIO_RUNS: usize = 4;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The broker connection.
    pub link: BrokerLink,
    /// The services' APIs.
    pub services: Services,
    /// The live timeline.
    pub timeline: Arc<Timeline>,
    /// The broker panel.
    pub panel: Panel,
    /// Bounds concurrent scenario runs.
    pub scenario_permits: Arc<Semaphore>,
    /// Scenario runs and verdicts, for `/metrics`.
    pub scenario_stats: Arc<RunStats>,
    /// The `/metrics` registry: the console's own families and the HTTP ones.
    pub metrics: Metrics,
    /// Cancelled when the console stops (ends SSE streams and background tasks).
    pub shutdown: CancellationToken,
}

/// A console bound to its address, connecting to the broker in the background.
pub struct Console {
    listener: tokio::net::TcpListener,
    state: AppState,
    config: Config,
}

impl Console {
    /// Binds the HTTP address (a busy port is an error naming `--http-addr`/`HTTP_ADDR`) and
    /// starts connecting to the broker; needs a tokio runtime.
    pub async fn bind(config: Config) -> anyhow::Result<Self> {
        let addr = config.http_addr;
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!(
                "the console cannot listen on {addr} (--http-addr / HTTP_ADDR): is another \
                 process using the port? Choose another address, or port 0 for any free port"
            )
        })?;
        let login = (config.nats_auth.load_for(&config.nats_url))
            .map_err(anyhow::Error::msg)
            .context(
            "the broker login (NATS_USER and NATS_PASSWORD, NATS_TOKEN, NATS_CREDS or NATS_NKEY)",
        )?;
        let shutdown = CancellationToken::new();
        let link = BrokerLink::connect(&config.nats_url, login, shutdown.clone());
        let timeline = Arc::new(Timeline::new(config.timeline_history, config.sse_buffer));
        let scenario_stats = Arc::<RunStats>::default();
        let metrics = Metrics::new();
        register_metrics(&metrics, &link, &timeline.stats(), &scenario_stats);
        let state = AppState {
            services: Services::new(
                config.account_urls(),
                &config.transaction_url,
                &config.statement_url,
            ),
            timeline,
            panel: Panel::new(link.clone()),
            link,
            scenario_permits: Arc::new(Semaphore::new(SCENARIO_RUNS)),
            scenario_stats,
            metrics,
            shutdown,
        };
        Ok(Self {
            listener,
            state,
            config,
        })
    }

    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The shared state (tests push timeline entries through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then ends the event streams, stops the background
    /// tasks and finishes in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Console {
            listener,
            state,
            config,
        } = self;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "console listening");
        crate::feed::spawn(
            state.link.clone(),
            state.timeline.clone(),
            state.shutdown.clone(),
        );
        state.panel.spawn_refresher(
            Duration::from_millis(config.broker_refresh_ms),
            state.shutdown.clone(),
        );
        let stop = state.shutdown.clone();
        let router = router(state);
        let signal = async move {
            shutdown.await;
            // Ends the SSE streams, so the graceful shutdown does not wait for browsers.
            stop.cancel();
        };
        axum::serve(listener, router)
            .with_graceful_shutdown(signal)
            .await
            .context("serving HTTP")?;
        tracing::info!("console stopped");
        Ok(())
    }
}

/// Every route: the page, the API and the operational ones, with the services' body limit and
/// JSON error bodies.
pub fn router(state: AppState) -> Router {
    let ops = Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state.clone());
    let http = HttpMetrics::register(&state.metrics);
    let routes = crate::web::router()
        .merge(crate::api::router(state))
        .merge(ops);
    // Tagged before `json_api`, which serves the routes as its fallback.
    observe::observed(
        service_kit::http::json_api(observe::tag_routes(routes)),
        http,
    )
}

/// Ready when the broker connection is up (the page is served either way). The body also says
/// how many timeline sources are followed (3: both streams and the decision notes; fewer while
/// the services have not created their streams yet).
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let broker = state.link.is_connected();
    let status = if broker {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let sources = state.timeline.stats().sources.load(Ordering::Relaxed);
    let body = serde_json::json!({"broker": broker, "timeline_sources": sources});
    (status, Json(body))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.metrics.encode();
    (
        [(header::CONTENT_TYPE, service_kit::metrics::CONTENT_TYPE)],
        text,
    )
}

/// The console's own families, read at scrape time.
fn register_metrics(
    metrics: &Metrics,
    link: &BrokerLink,
    timeline: &Arc<TimelineStats>,
    scenarios: &Arc<RunStats>,
) {
    let browsers = Arc::clone(timeline);
    metrics.gauge_fn(
        "console_connected_browsers",
        "Browsers connected to the live event stream.",
        move || i64::try_from(browsers.followers.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
    );
    let counters: [AtomicCounter<TimelineStats>; 3] = [
        (
            "console_events_fanned_out",
            "Timeline entries sent to browsers (one per browser).",
            |s| &s.fanned_out,
        ),
        (
            "console_events_skipped",
            "Timeline entries browsers skipped because they did not keep up.",
            |s| &s.skipped,
        ),
        (
            "console_timeline_entries",
            "Events and decision notes received from the broker.",
            |s| &s.received,
        ),
    ];
    metrics.atomic_counters(timeline, &counters);
    let broker = link.clone();
    metrics.gauge_fn(
        "console_broker_connected",
        "1 when the console's broker connection is up.",
        move || i64::from(broker.is_connected()),
    );
    let runs = Arc::clone(scenarios);
    metrics.counters_fn(
        "console_scenario_runs",
        "Scenario runs by scenario and verdict.",
        move || {
            runs.snapshot()
                .into_iter()
                .map(|(scenario, passed, count)| {
                    let labels = vec![
                        ("scenario", scenario.to_owned()),
                        ("passed", passed.to_string()),
                    ];
                    (labels, count)
                })
                .collect()
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_busy_port_is_an_error_naming_the_flag() {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let config = Config::from_args([
            format!("--http-addr={addr}"),
            "--nats-url=nats://127.0.0.1:1".to_owned(),
        ])
        .unwrap();
        let err = Console::bind(config)
            .await
            .err()
            .expect("the port is taken");
        let text = format!("{err:#}");
        assert!(text.contains("--http-addr / HTTP_ADDR"), "{text}");
        assert!(text.contains(&addr.to_string()), "{text}");
    }
}
