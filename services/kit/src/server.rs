//! A service's HTTP server and life cycle.
//!
//! 1. [`Server::bind`] binds the HTTP port before anything else, so a busy port fails at once
//!    with an error that names the setting.
//! 2. [`Server::run`] serves `/healthz`, `/readyz` and `/metrics` at once, and answers every
//!    other path with `503 {"error": "starting", …}` while the service's start-up (connecting
//!    to the database and the broker, with retries) runs. Every route has the body limit and
//!    the JSON error bodies of [`json_api`].
//! 3. Once start-up hands back a [`Started`], the API opens, listeners and relay run, and
//!    `/readyz` turns 200.
//! 4. On shutdown it stops accepting, finishes in-flight requests, drains the background
//!    tasks, flushes the broker connection and closes the database. A shutdown during start-up
//!    abandons the connection attempts at once.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tower::ServiceExt;

use crate::db::Db;
use crate::http::{error_response, json_api};
use crate::observe;
use crate::ops::Ops;
use crate::tasks::Tasks;

/// How long a shutdown waits to flush a connected broker connection.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// The error code of API answers while the service starts.
pub const STARTING: &str = "starting";

/// The HTTP port could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({setting}): {reason}")]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The flag and variable that set it: `HTTP_ADDR / --http-addr`.
    pub setting: &'static str,
    /// Why, for people.
    pub reason: String,
    /// The kind of I/O error.
    pub kind: std::io::ErrorKind,
}

/// What a service runs once connected, handed to [`Server::run`] by its start-up.
pub struct Started {
    /// The API routes (the operational ones are the server's).
    pub router: Router,
    /// Listeners and relay, already running.
    pub tasks: Tasks,
    /// The broker connection.
    pub nats: async_nats::Client,
    /// The database.
    pub db: Db,
}

/// A service's bound HTTP port, before it serves.
pub struct Server {
    name: &'static str,
    listener: tokio::net::TcpListener,
    ops: Ops,
}

impl Server {
    /// Binds `addr` for service `name`; `setting` names the flag and variable that chose it,
    /// for the error.
    pub async fn bind(
        name: &'static str,
        addr: SocketAddr,
        setting: &'static str,
    ) -> Result<Self, BindError> {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|err| {
            use std::io::ErrorKind;
            let reason = match err.kind() {
                ErrorKind::AddrInUse => "address in use".to_owned(),
                ErrorKind::AddrNotAvailable => "no such address on this host".to_owned(),
                ErrorKind::PermissionDenied => {
                    "permission denied (ports below 1024 need privileges)".to_owned()
                }
                _ => err.to_string(),
            };
            BindError {
                addr,
                setting,
                reason,
                kind: err.kind(),
            }
        })?;
        Ok(Self {
            name,
            listener,
            ops: Ops::starting(),
        })
    }

    /// The bound HTTP address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The operational state its routes report.
    pub fn ops(&self) -> &Ops {
        &self.ops
    }

    /// Serves until `shutdown` resolves (see the module documentation). `start` connects and
    /// wires the service; it gets the [`Ops`] to report connections to and a token cancelled
    /// on shutdown (for work it spawns), and is dropped if shutdown comes first. Its error ends
    /// the run with that error once the HTTP server has stopped.
    pub async fn run<F, Fut>(
        self,
        start: F,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()>
    where
        F: FnOnce(Ops, CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<Started>>,
    {
        let (name, addr, ops) = (self.name, self.local_addr(), self.ops);
        let stop = CancellationToken::new();
        let _signal = AbortOnDropHandle::new(tokio::spawn({
            let stop = stop.clone();
            async move {
                shutdown.await;
                stop.cancel();
            }
        }));
        let api = Api::default();
        let gate = api.clone();
        let router = ops.router().fallback(move |request: Request| {
            let api = gate.clone();
            async move { api.call(request).await }
        });
        let router = ops.observe(json_api(router));
        let http = axum::serve(self.listener, router)
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future();
        let http = AbortOnDropHandle::new(tokio::spawn(http));
        tracing::info!(%addr, "{name} listening");

        let started = tokio::select! {
            biased;
            _ = stop.cancelled() => None,
            started = start(ops.clone(), stop.child_token()) => Some(started),
        };
        let started = match started {
            Some(Ok(started)) => started,
            Some(Err(err)) => {
                stop.cancel();
                let _ = http.await;
                return Err(err);
            }
            None => {
                tracing::info!("{name}: shutdown requested while starting; stopping");
                let served = http.await.context("the HTTP server task failed")?;
                tracing::info!("{name} stopped");
                return served.context("serving HTTP");
            }
        };
        let Started {
            router,
            tasks,
            nats,
            db,
        } = started;
        api.open(observe::tag_routes(router));
        ops.serving();
        tracing::info!(%addr, "{name} ready");

        let served = http.await.context("the HTTP server task failed")?;
        tasks.shutdown().await;
        if nats.connection_state() == async_nats::connection::State::Connected {
            if tokio::time::timeout(FLUSH_TIMEOUT, nats.flush())
                .await
                .is_err()
            {
                tracing::warn!(
                    "the broker did not confirm the last writes within {FLUSH_TIMEOUT:?}"
                );
            }
        } else {
            tracing::info!("broker unreachable; nothing to flush");
        }
        db.close().await;
        tracing::info!("{name} stopped");
        served.context("serving HTTP")
    }
}

/// The API routes, once the service has started.
#[derive(Clone, Default)]
struct Api(Arc<OnceLock<Router>>);

impl Api {
    fn open(&self, router: Router) {
        let _ = self.0.set(router);
    }

    async fn call(&self, request: Request) -> Response {
        match self.0.get() {
            Some(router) => match router.clone().oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            },
            None => starting(),
        }
    }
}

/// `503 {"error": "starting", …}` with `Retry-After: 1`.
fn starting() -> Response {
    let mut response = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        STARTING,
        "the service is starting: waiting for the database and the broker".to_owned(),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_busy_port_fails_at_once_naming_the_setting() {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let err = Server::bind("test-service", addr, "HTTP_ADDR / --http-addr")
            .await
            .err()
            .expect("the port is taken");
        assert_eq!(
            err.to_string(),
            format!("cannot listen on {addr} (HTTP_ADDR / --http-addr): address in use")
        );
        assert_eq!(err.kind, std::io::ErrorKind::AddrInUse);
    }

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).await.unwrap();
        let status = text[9..12].parse().unwrap();
        let body = text.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    }

    #[tokio::test]
    async fn while_starting_health_is_200_readiness_503_and_the_api_503_until_shutdown_stops_it() {
        let server = Server::bind("test-service", "127.0.0.1:0".parse().unwrap(), "HTTP_ADDR")
            .await
            .unwrap();
        let addr = server.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(server.run(
            |_, _| std::future::pending::<anyhow::Result<Started>>(),
            async {
                let _ = stopped.await;
            },
        ));
        assert_eq!(get(addr, "/healthz").await.0, 200);
        let (status, body) = get(addr, "/readyz").await;
        assert_eq!(status, 503);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"database": false, "broker": false, "starting": true})
        );
        let (status, body) = get(addr, "/api/anything").await;
        assert_eq!(status, 503);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], "starting");
        let (_, metrics) = get(addr, "/metrics").await;
        assert!(
            metrics.contains("http_requests_total{status=\"503\"} 2"),
            "{metrics}"
        );
        let begun = std::time::Instant::now();
        stop.send(()).unwrap();
        let result = tokio::time::timeout(Duration::from_secs(2), run)
            .await
            .expect("a shutdown while starting stops at once")
            .unwrap();
        assert!(result.is_ok(), "{result:?}");
        assert!(begun.elapsed() < Duration::from_millis(500));
    }

    #[tokio::test]
    async fn a_start_up_error_ends_the_run_with_it() {
        let server = Server::bind("test-service", "127.0.0.1:0".parse().unwrap(), "HTTP_ADDR")
            .await
            .unwrap();
        let result = server
            .run(
                |_, _| async { Err(anyhow::anyhow!("gave up on the broker")) },
                std::future::pending(),
            )
            .await;
        assert_eq!(result.unwrap_err().to_string(), "gave up on the broker");
    }
}
