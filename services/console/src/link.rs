//! The console's broker connection: made in the background with retry and backoff, so the page
//! is served (saying "broker unreachable") while the broker is not there yet.

use std::time::Duration;

use async_nats::jetstream;
use service_kit::config::redact_url;
use service_kit::nats_auth::Login;
use service_kit::tasks::server_addrs;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The first retry delay; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A handle on the broker connection, cheap to clone. Empty until the first connect succeeds;
/// after that the client reconnects by itself.
#[derive(Clone, Debug)]
pub struct BrokerLink {
    url: String,
    client: watch::Receiver<Option<async_nats::Client>>,
}

impl BrokerLink {
    /// Starts connecting to `url` (one NATS URL or a comma-separated list of a cluster's) with
    /// `login` in the background until connected or `shutdown`.
    pub fn connect(url: &str, login: Login, shutdown: CancellationToken) -> Self {
        let (sender, client) = watch::channel(None);
        tokio::spawn(connect_loop(url.to_owned(), login, sender, shutdown));
        Self {
            url: redact_url(url),
            client,
        }
    }

    /// A link over an existing client (tests).
    pub fn with_client(url: &str, client: async_nats::Client) -> Self {
        let (_sender, receiver) = watch::channel(Some(client));
        Self {
            url: url.to_owned(),
            client: receiver,
        }
    }

    /// The broker URL, passwords and tokens masked.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The client, once the first connection succeeded.
    pub fn client(&self) -> Option<async_nats::Client> {
        self.client.borrow().clone()
    }

    /// A JetStream context over the client, once connected.
    pub fn jetstream(&self) -> Option<jetstream::Context> {
        self.client().map(jetstream::new)
    }

    /// Whether the connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.client().is_some_and(|client| {
            client.connection_state() == async_nats::connection::State::Connected
        })
    }

    /// Waits for the first connection; `None` when the link gave up (shutdown).
    pub async fn ready(&self) -> Option<async_nats::Client> {
        let mut client = self.client.clone();
        let found = client.wait_for(Option::is_some).await.ok()?;
        found.clone()
    }
}

async fn connect_loop(
    url: String,
    login: Login,
    sender: watch::Sender<Option<async_nats::Client>>,
    shutdown: CancellationToken,
) {
    let mut delay = FIRST_BACKOFF;
    let mut attempt = 0u32;
    let shown = redact_url(&url);
    loop {
        attempt += 1;
        tracing::info!(url = %shown, attempt, "connecting to the broker");
        let options = login
            .apply(async_nats::ConnectOptions::new())
            .name("console")
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Disconnected => {
                        tracing::warn!("broker connection lost; reconnecting")
                    }
                    async_nats::Event::Connected => tracing::info!("broker connection up"),
                    other => tracing::debug!(event = %other, "broker connection event"),
                }
            });
        let attempt_result = tokio::select! {
            _ = shutdown.cancelled() => return,
            result = async {
                options.connect(server_addrs(&url)?).await
            } => result,
        };
        match attempt_result {
            Ok(client) => {
                tracing::info!(url = %shown, attempt, "connected to the broker");
                let _ = sender.send(Some(client));
                // Keep the sender alive so the link does not look closed; the client reconnects
                // by itself from now on.
                shutdown.cancelled().await;
                return;
            }
            Err(err) => {
                tracing::warn!(
                    url = %shown,
                    attempt,
                    error = %err,
                    retry_in_ms = delay.as_millis() as u64,
                    "broker unreachable; retrying"
                );
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
    }
}
