//! A built service ready to serve: its bound HTTP listener, routes, background tasks, broker
//! connection and database, stopped in that order.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;

use super::db::Db;
use super::tasks::Tasks;

/// How long a shutdown waits to flush the broker connection.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything a service runs, bound and connected.
pub struct Server {
    /// Name for logs.
    pub name: &'static str,
    /// The bound HTTP listener.
    pub listener: tokio::net::TcpListener,
    /// Every route, operational ones included.
    pub router: Router,
    /// Listeners and relay.
    pub tasks: Tasks,
    /// The broker connection.
    pub nats: async_nats::Client,
    /// The database.
    pub db: Db,
}

impl Server {
    /// The bound HTTP address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then stops accepting, finishes in-flight requests,
    /// drains the listeners and the relay, flushes the broker connection and closes the database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (name, addr) = (self.name, self.local_addr());
        tracing::info!(%addr, "{name} listening");
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await;
        self.tasks.shutdown().await;
        // A broker that went away must not hold the shutdown up.
        let _ = tokio::time::timeout(FLUSH_TIMEOUT, self.nats.flush()).await;
        self.db.close().await;
        tracing::info!("{name} stopped");
        served
    }
}
