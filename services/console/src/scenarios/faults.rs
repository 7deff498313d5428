//! The fault scenarios' side of the account service's fault injection (`/faults`, on only with
//! `--fault-injection`): checking every replica has it on, arming a fault for the scenario
//! account on each, clearing it after the run, and watching for a replica that stops answering
//! (what the decision notes say happened is [`explain`](super::explain)'s).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common_events::AccountId;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::verdict::seconds;
use super::{ScenarioEnv, ScenarioError};

/// A fault the account service plays on the handler of one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The handler stalls, its runner's progress acks going on.
    Slow,
    /// The replica's process aborts before committing.
    Crash,
    /// The handler stalls without progress acks, then commits what it decided before.
    Freeze,
    /// The handler commits, then fails before its ack: it hands the message back instead.
    FailBeforeAck,
}

impl Fault {
    /// As `/faults` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Slow => "slow",
            Fault::Crash => "crash",
            Fault::Freeze => "freeze",
            Fault::FailBeforeAck => "fail_before_ack",
        }
    }
}

/// An account-service replica: its URL and the name its decision notes give it.
#[derive(Clone, Debug)]
pub(super) struct Replica {
    pub url: String,
    pub name: String,
}

/// `account-1 (http://…), account-2 (http://…)`.
pub(super) fn names(replicas: &[Replica]) -> String {
    let names: Vec<String> = replicas
        .iter()
        .map(|r| format!("{} ({})", r.name, r.url))
        .collect();
    names.join(" and ")
}

fn off(url: &str) -> ScenarioError {
    ScenarioError::Unavailable(format!(
        "fault injection is off on the account service at {url} (403 fault_injection_off): \
         this scenario makes a replica misbehave on purpose (slow, crash, freeze, fail before its \
         ack), so every replica must \
         run with --fault-injection (FAULT_INJECTION=true), which is for demonstrations and \
         tests, never for production (`cargo run` turns it on for the bank's replicas)"
    ))
}

/// How long [`check`] waits at least for a replica that does not answer yet: one that crashed
/// in the previous run may be restarting (the bank restarts it after 0.5 s, doubling up to 10 s
/// when it keeps dying).
const RESTART_WAIT: Duration = Duration::from_secs(15);

/// `GET /faults` on every replica answers 200 (waiting up to the ready bound, and at least
/// [`RESTART_WAIT`], for one that is starting or restarting); their names.
pub(super) async fn check(env: &ScenarioEnv) -> Result<Vec<Replica>, ScenarioError> {
    let deadline = tokio::time::Instant::now() + env.ready_bound.max(RESTART_WAIT);
    let mut replicas = Vec::new();
    for url in &env.account_urls {
        loop {
            let problem = match env.http.get(format!("{url}/faults")).send().await {
                Ok(response) if response.status().is_success() => {
                    let body: Value = response.json().await.unwrap_or_default();
                    let name = body["replica"].as_str().unwrap_or(url).to_owned();
                    replicas.push(Replica {
                        url: url.clone(),
                        name,
                    });
                    break;
                }
                Ok(response) if response.status().as_u16() == 403 => return Err(off(url)),
                Ok(response) if response.status().as_u16() == 404 => {
                    return Err(ScenarioError::Unavailable(format!(
                        "the account service at {url} has no /faults route (404): it predates \
                         fault injection, which this scenario needs on every replica"
                    )))
                }
                Ok(response) => format!("is not ready ({})", response.status()),
                Err(err) => format!("is unreachable ({})", crate::upstream::describe(err)),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(ScenarioError::Unavailable(format!(
                    "the account-service replica at {url} {problem}: this scenario arms a fault \
                     on every replica, so each must be up"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(replicas)
}

/// Arms `fault` for `account`'s first delivery on every replica.
pub(super) async fn arm(
    env: &ScenarioEnv,
    replicas: &[Replica],
    account: AccountId,
    fault: Fault,
    delay: Option<Duration>,
) -> Result<(), ScenarioError> {
    let mut body = json!({
        "account_id": account.to_string(),
        "fault": fault.as_str(),
        "on_delivery": 1,
    });
    if let Some(delay) = delay {
        body["delay_ms"] = json!(delay.as_millis() as u64);
    }
    for replica in replicas {
        let url = &replica.url;
        let response = env
            .http
            .post(format!("{url}/faults"))
            .json(&body)
            .send()
            .await
            .map_err(|err| {
                ScenarioError::Unavailable(format!(
                    "the account-service replica at {url} is unreachable ({}): this scenario \
                     arms a fault on every replica",
                    crate::upstream::describe(err)
                ))
            })?;
        match response.status().as_u16() {
            201 => {}
            403 => return Err(off(url)),
            status => {
                let answer = response.text().await.unwrap_or_default();
                return Err(ScenarioError::Failed(format!(
                    "arming the {} fault on {url}: {status} {answer}",
                    fault.as_str()
                )));
            }
        }
    }
    Ok(())
}

/// Clears `account`'s faults on every replica (best effort: a fault that did not fire expires
/// by itself, and a crashed replica forgot its own).
pub(super) async fn clear(env: &ScenarioEnv, replicas: &[Replica], account: AccountId) {
    for replica in replicas {
        let url = format!("{}/faults?account_id={account}", replica.url);
        let _ = env
            .http
            .delete(url)
            .timeout(Duration::from_secs(2))
            .send()
            .await;
    }
}

/// Polls every replica's `/healthz` while a crash may happen, to say which replica stopped
/// answering and when it answered again.
pub(super) struct ReplicaWatch {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// (replica, when, answering) for every change seen.
    changes: Arc<Mutex<Vec<(String, tokio::time::Instant, bool)>>>,
}

/// How often the watch polls.
const WATCH_POLL: Duration = Duration::from_millis(100);

impl ReplicaWatch {
    pub(super) fn start(env: &ScenarioEnv, replicas: &[Replica]) -> Self {
        let stop = CancellationToken::new();
        let changes = Arc::new(Mutex::new(Vec::new()));
        let (http, replicas) = (env.http.clone(), replicas.to_vec());
        let task = tokio::spawn({
            let (stop, changes) = (stop.clone(), changes.clone());
            async move {
                let mut up = vec![true; replicas.len()];
                while !stop.is_cancelled() {
                    for (index, replica) in replicas.iter().enumerate() {
                        let answer = http
                            .get(format!("{}/healthz", replica.url))
                            .timeout(Duration::from_millis(500))
                            .send()
                            .await;
                        let answering = answer.is_ok_and(|r| r.status().is_success());
                        if answering != up[index] {
                            up[index] = answering;
                            let name = format!("{} ({})", replica.name, replica.url);
                            let now = tokio::time::Instant::now();
                            changes
                                .lock()
                                .expect("not poisoned")
                                .push((name, now, answering));
                        }
                    }
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::time::sleep(WATCH_POLL) => {}
                    }
                }
            }
        });
        Self {
            stop,
            task,
            changes,
        }
    }

    /// Stops watching: the replicas that stopped answering, and a line per change, timed from
    /// `published_at`.
    pub(super) async fn stop(
        self,
        published_at: tokio::time::Instant,
    ) -> (Vec<String>, Vec<String>) {
        self.stop.cancel();
        let _ = self.task.await;
        let changes = std::mem::take(&mut *self.changes.lock().expect("not poisoned"));
        let mut down = Vec::new();
        let mut lines = Vec::new();
        for (name, at, answering) in changes {
            let after = seconds(at.saturating_duration_since(published_at));
            if answering {
                lines.push(format!(
                    "replica {name} answered again (seen {after} after the publish): restarted"
                ));
            } else {
                lines.push(format!(
                    "replica {name} stopped answering (seen {after} after the publish): the \
                     injected crash"
                ));
                if !down.contains(&name) {
                    down.push(name);
                }
            }
        }
        (down, lines)
    }
}
