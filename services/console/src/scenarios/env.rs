//! Where runs go ([`ScenarioEnv`]: the broker and the account service's replicas) and why a run
//! could not go there ([`ScenarioError`]).

use std::time::Duration;

use async_nats::jetstream;

/// How often the account service is polled while an account is opened or a run settles.
pub(super) const POLL: Duration = Duration::from_millis(50);

/// Where runs go: the broker (a JetStream context) and the account service (the base URLs of
/// its replicas).
#[derive(Clone, Debug)]
pub struct ScenarioEnv {
    pub(super) js: jetstream::Context,
    pub(super) account_urls: Vec<String>,
    pub(super) http: reqwest::Client,
    pub(super) ready_bound: Duration,
    pub(super) settle_bound: Duration,
}

impl ScenarioEnv {
    /// Runs against this broker and this account service; waits up to 5 s for the service to
    /// be ready and up to 15 s (plus the fault's stall, for the fault scenarios) for it to
    /// settle.
    pub fn new(js: jetstream::Context, account_url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a plain HTTP client builds");
        Self {
            js,
            account_urls: vec![account_url.into().trim_end_matches('/').to_owned()],
            http,
            ready_bound: Duration::from_secs(5),
            settle_bound: Duration::from_secs(15),
        }
    }

    /// Every account-service replica, for the scenarios that arm faults on each (and need two):
    /// the URL given to [`ScenarioEnv::new`] stays first, these follow (repeats are dropped).
    pub fn with_replicas<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for url in urls {
            let url = url.into().trim_end_matches('/').to_owned();
            if !url.is_empty() && !self.account_urls.contains(&url) {
                self.account_urls.push(url);
            }
        }
        self
    }

    /// How long to wait for the account service's `/readyz` before giving up.
    pub fn with_ready_bound(mut self, bound: Duration) -> Self {
        self.ready_bound = bound;
        self
    }

    /// How long the naive handler and the account service may take to handle every delivery.
    pub fn with_settle_bound(mut self, bound: Duration) -> Self {
        self.settle_bound = bound;
        self
    }

    /// The account service's base URL (the first replica's).
    pub fn account_url(&self) -> &str {
        &self.account_urls[0]
    }

    /// Every account-service replica's base URL.
    pub fn account_urls(&self) -> &[String] {
        &self.account_urls
    }

    /// `GET <path>` on the account service: each replica in turn, until one answers.
    pub(super) async fn account_get(&self, path: &str) -> Result<reqwest::Response, ScenarioError> {
        let mut problem = String::new();
        for url in &self.account_urls {
            match self.http.get(format!("{url}{path}")).send().await {
                Ok(response) => return Ok(response),
                Err(err) => problem = unreachable(url, err),
            }
        }
        Err(ScenarioError::Unavailable(problem))
    }
}

/// Why a scenario could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The stack cannot run it now (the account service or the broker is unreachable, not
    /// ready, or the account service does not consume this broker's stream).
    #[error("{0}")]
    Unavailable(String),
    /// Something unexpected went wrong mid-run.
    #[error("{0}")]
    Failed(String),
}

/// `the account service at <url> is unreachable (<why>)`.
pub(super) fn unreachable(url: &str, err: reqwest::Error) -> String {
    format!(
        "the account service at {url} is unreachable ({})",
        crate::upstream::describe(err)
    )
}
