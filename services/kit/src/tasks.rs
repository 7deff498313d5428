//! The background tasks of a service (listeners and the outbox relay), started together and
//! stopped together: cancel, then wait for each to drain.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::listener::Listener;
use crate::nats_auth::Login;
use crate::outbox::Relay;
use crate::runner::{self, ListenerStats};
use common_events::topology::ConsumerSpec;

/// How long [`Tasks::shutdown`] waits: the listeners' drain plus a last outbox round.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// Connects to NATS as `name` with `login` (one attempt) and returns the client and its JetStream context.
/// Once connected, the client reconnects by itself for as long as it lives, whenever the
/// broker goes away; losing and regaining the connection is logged.
pub async fn connect_nats(
    url: &str,
    name: &str,
    login: &Login,
) -> Result<(async_nats::Client, jetstream::Context), async_nats::ConnectError> {
    let client = login
        .apply(async_nats::ConnectOptions::new())
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        .event_callback(|event| async move {
            use async_nats::Event;
            match event {
                Event::Disconnected => {
                    tracing::warn!("broker connection lost; reconnecting in the background");
                }
                Event::Connected => tracing::info!("broker connection up"),
                Event::LameDuckMode => tracing::warn!("the broker is entering lame duck mode"),
                other => tracing::debug!(event = %other, "broker connection event"),
            }
        })
        .connect(server_addrs(url)?)
        .await?;
    let js = jetstream::new(client.clone());
    Ok((client, js))
}

/// The servers of `url`, a NATS URL or a comma-separated list of them (a cluster's nodes, so
/// the client fails over between them).
pub fn server_addrs(url: &str) -> Result<Vec<async_nats::ServerAddr>, async_nats::ConnectError> {
    url.split(',')
        .map(|u| u.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<_, _>>()
        .map_err(|err| {
            async_nats::ConnectError::with_source(async_nats::ConnectErrorKind::ServerParse, err)
        })
}

/// A service's running background tasks.
pub struct Tasks {
    shutdown: CancellationToken,
    set: JoinSet<()>,
}

impl Default for Tasks {
    fn default() -> Self {
        Self::new()
    }
}

impl Tasks {
    /// No tasks yet.
    pub fn new() -> Self {
        Self {
            shutdown: CancellationToken::new(),
            set: JoinSet::new(),
        }
    }

    /// Runs `listener` on its consumer until shutdown.
    pub fn spawn_listener<L: Listener>(
        &mut self,
        js: &jetstream::Context,
        spec: ConsumerSpec,
        listener: L,
        stats: Arc<ListenerStats>,
    ) {
        let (js, token) = (js.clone(), self.shutdown.clone());
        let name = listener.name();
        self.set.spawn(async move {
            if let Err(err) = runner::run(js, spec, Arc::new(listener), stats, token).await {
                tracing::error!(listener = name, error = %err, "listener stopped");
            }
        });
    }

    /// Runs a background task of the service's own (a periodic sweep, say): `task` gets the
    /// shutdown token and must return soon after it is cancelled.
    pub fn spawn<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.set.spawn(task(self.shutdown.clone()));
    }

    /// Runs the outbox relay until shutdown.
    pub fn spawn_relay(&mut self, relay: Relay) {
        self.set.spawn(relay.run(self.shutdown.clone()));
    }

    /// Cancels every task and waits for each to drain, for at most [`SHUTDOWN_TIMEOUT`]; what
    /// is still running then is aborted (its messages are redelivered, its outbox rows stay).
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        let all = async { while self.set.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_TIMEOUT, all).await.is_err() {
            tracing::warn!(
                "background tasks still running after {SHUTDOWN_TIMEOUT:?}; aborting them"
            );
            self.set.abort_all();
        }
    }
}
