//! The fault scenarios' side of the account service's fault injection (`/faults`, on only with
//! `--fault-injection`): checking every replica has it on, arming a fault for the scenario
//! account on each, clearing it after the run, watching for a replica that stops answering, and
//! reading what happened from the decision notes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common_events::observe::{DecisionKind, DecisionNote};
use common_events::AccountId;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::{seconds, ScenarioEnv, ScenarioError};

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
}

impl Fault {
    /// As `/faults` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Slow => "slow",
            Fault::Crash => "crash",
            Fault::Freeze => "freeze",
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
         this scenario makes a replica slow, crash or freeze on purpose, so every replica must \
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

/// `#1 applied by account-2 on delivery 2, 10.1 s after the publish`.
fn describe(note: &DecisionNote, published_at_ms: i64) -> String {
    let after = Duration::from_millis(u64::try_from(note.at_ms - published_at_ms).unwrap_or(0));
    let number = note.number.map(|n| format!("#{n} ")).unwrap_or_default();
    format!(
        "{number}{} by {} on delivery {}, {} after the publish",
        note.decision.as_str(),
        note.replica,
        note.delivered,
        seconds(after)
    )
}

/// What the decision notes (sorted by time) say happened to the faulted delivery and its
/// redelivery, in lines for the run's log.
pub(super) fn explain(
    fault: Fault,
    notes: &[DecisionNote],
    published_at_ms: i64,
    replicas_down: &[String],
) -> Vec<String> {
    if notes.is_empty() {
        return vec![
            "the account service published no decision notes (DECISION_NOTES=false?), so the \
             run cannot say which replica did what"
                .to_owned(),
        ];
    }
    let faulted = notes.iter().find(|note| note.fault.is_some());
    let applied = notes
        .iter()
        .find(|note| note.decision == DecisionKind::Applied);
    let mut lines = Vec::new();
    match fault {
        Fault::Slow => {
            match faulted {
                Some(note) => lines.push(format!(
                    "the service's handler stalled on delivery 1 ({}) and decided: {}; {} \
                     progress ack(s) (+WPI) kept the message with it meanwhile",
                    note.fault.as_deref().unwrap_or_default(),
                    describe(note, published_at_ms),
                    note.progress_acks.unwrap_or(0)
                )),
                None => lines.push(
                    "no decision note names the slow fault: it did not fire (did delivery 1 go \
                     to a replica the console did not arm?)"
                        .to_owned(),
                ),
            }
            let redelivered: Vec<String> = notes
                .iter()
                .filter(|note| note.delivered > 1)
                .map(|note| describe(note, published_at_ms))
                .collect();
            if redelivered.is_empty() {
                lines.push("the broker did not redeliver #1".to_owned());
            } else {
                lines.push(format!(
                    "the broker redelivered #1 anyway: {}",
                    redelivered.join("; ")
                ));
            }
        }
        Fault::Crash => {
            if replicas_down.is_empty() {
                lines.push(
                    "no replica was seen to stop answering (restarted within the 100 ms between \
                     polls, or the fault did not fire)"
                        .to_owned(),
                );
            }
            match applied {
                Some(note) if note.delivered > 1 => lines.push(format!(
                    "the crashed replica never acknowledged delivery 1, so the broker redelivered \
                     #1: {}; applied once",
                    describe(note, published_at_ms)
                )),
                Some(note) => lines.push(format!(
                    "{}: the crash fault did not fire (did delivery 1 go to a replica the console \
                     did not arm?)",
                    describe(note, published_at_ms)
                )),
                None => lines.push("no decision note shows #1 applied".to_owned()),
            }
        }
        Fault::Freeze => {
            if let Some(note) = applied.filter(|note| note.fault.is_none()) {
                let mut line = format!(
                    "delivery 1's handler sent no progress ack, so after the ack wait the broker \
                     redelivered #1: {}",
                    describe(note, published_at_ms)
                );
                if faulted.is_some_and(|frozen| frozen.replica == note.replica) {
                    line.push_str(
                        " (on the frozen handler's own replica: only that handler froze, not the \
                         process, so another of its handlers took the redelivery; a truly frozen \
                         process could not have, and the outcome would be the same)",
                    );
                }
                lines.push(line);
            }
            match faulted {
                Some(note) if note.decision == DecisionKind::Race => lines.push(format!(
                    "the frozen handler woke up and committed its stale copy: the conditional \
                     update (where last_transaction_number = {}) matched nothing: {}; handed back",
                    note.number.unwrap_or(1).saturating_sub(1),
                    describe(note, published_at_ms)
                )),
                Some(note) => lines.push(format!(
                    "the frozen handler woke up and decided before the redelivery did: {}",
                    describe(note, published_at_ms)
                )),
                None => lines.push(
                    "no decision note names the freeze fault: it did not fire (did delivery 1 go \
                     to a replica the console did not arm?)"
                        .to_owned(),
                ),
            }
            let later: Vec<String> = notes
                .iter()
                .filter(|note| note.delivered > 2)
                .map(|note| describe(note, published_at_ms))
                .collect();
            if !later.is_empty() {
                lines.push(format!("then: {}", later.join("; ")));
            } else if faulted.is_some_and(|note| note.decision == DecisionKind::Race) {
                lines.push(
                    "the broker ignored the hand-back, the redelivery having acknowledged the \
                     message already: no further delivery"
                        .to_owned(),
                );
            }
        }
    }
    lines
}
