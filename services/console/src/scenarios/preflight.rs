//! Checking the stack before a run: the account service is ready, the broker has the stream
//! and the service's consumer on it, and a fault scenario finds fault injection on at enough
//! replicas.

use std::time::Duration;

use async_nats::jetstream;
use common_events::topology::TRANSACTIONS;

use super::faults::{self, Replica};
use super::{Plan, ScenarioEnv, ScenarioError};

/// What the preflight found.
pub(super) struct Ready {
    /// The `TRANSACTIONS` stream.
    pub(super) stream: jetstream::stream::Stream,
    /// The account service consumer's ack wait.
    pub(super) ack_wait: Duration,
    /// The replicas a fault is armed on (none without a fault).
    pub(super) replicas: Vec<Replica>,
}

/// The account service answers `/readyz` (bounded wait), the broker has the `TRANSACTIONS`
/// stream and the account service's consumer on it (whose ack wait the run uses); a plan with a
/// fault finds fault injection on at every replica, and as many replicas as it needs.
pub(super) async fn preflight(env: &ScenarioEnv, plan: &Plan) -> Result<Ready, ScenarioError> {
    wait_ready(env).await?;
    let stream = env.js.get_stream(TRANSACTIONS.name).await.map_err(|err| {
        ScenarioError::Unavailable(format!(
            "the broker has no {} stream ({err}); is the broker up and have the services started?",
            TRANSACTIONS.name
        ))
    })?;
    let durable = super::ACCOUNT_CONSUMER;
    let info = stream.consumer_info(&durable).await.map_err(|err| {
        ScenarioError::Unavailable(format!(
            "the broker has no {durable} consumer on {} ({err}); does the account service use \
             this broker?",
            TRANSACTIONS.name
        ))
    })?;
    let ack_wait = info.config.ack_wait;
    let known = env.account_urls.len();
    if known < plan.min_replicas {
        return Err(ScenarioError::Unavailable(format!(
            "this scenario needs at least {} account-service replicas (one plays the fault, \
             another takes the redelivery); the console knows {known} ({}): list every replica \
             with --account-url (ACCOUNT_URLS), as `cargo run` does",
            plan.min_replicas,
            env.account_urls.join(", ")
        )));
    }
    let replicas = match plan.fault() {
        Some(_) => faults::check(env).await?,
        None => Vec::new(),
    };
    Ok(Ready {
        stream,
        ack_wait,
        replicas,
    })
}

/// Waits, up to the ready bound, for the account service's `/readyz` to answer 200.
async fn wait_ready(env: &ScenarioEnv) -> Result<(), ScenarioError> {
    let url = env.account_url();
    let deadline = tokio::time::Instant::now() + env.ready_bound;
    loop {
        let problem = match env.http.get(format!("{url}/readyz")).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => format!("is not ready ({})", response.status()),
            Err(err) => format!("is unreachable ({})", crate::upstream::describe(err)),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(ScenarioError::Unavailable(format!(
                "the account service at {url} {problem}; the scenario needs it running"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
