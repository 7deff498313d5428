//! When each transaction's outcome reached the broker: a core NATS subscription to
//! `transactions.*` records the arrival of every `TransactionApplied` and `TransactionRejected`
//! and wakes whoever waits for that transaction. Both load modes time their transactions by it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// How long the outcomes may stop arriving, while someone waits for one, before the watch also
/// reads them back from the stream (see [`fill_from_stream`]).
pub const STREAM_LOOK_AFTER: Duration = Duration::from_secs(5);

/// How often the watch checks whether it should read the stream.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// When a transaction's outcome arrived, and whether it was applied (else rejected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// When the event reached this process (or, read back from the stream, its own time).
    pub at: Instant,
    /// `TransactionApplied` rather than `TransactionRejected`.
    pub applied: bool,
}

/// The outcomes seen so far, and the waiters for those still to come. A cheap `Clone` handle;
/// the subscription and the watch stop when the last handle is dropped.
#[derive(Clone)]
pub struct Outcomes {
    inner: Arc<Inner>,
}

struct Inner {
    state: Arc<Mutex<State>>,
    tasks: Vec<AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.tasks.iter().for_each(AbortHandle::abort);
    }
}

#[derive(Default)]
struct State {
    arrived: HashMap<String, Outcome>,
    waiting: HashMap<String, oneshot::Sender<Outcome>>,
    /// The last arrival, or the last read of the stream.
    progress: Option<Instant>,
}

impl State {
    fn record(&mut self, id: String, outcome: Outcome) {
        self.progress = Some(Instant::now());
        if let Some(waiter) = self.waiting.remove(&id) {
            let _ = waiter.send(outcome);
        }
        self.arrived.entry(id).or_insert(outcome);
    }
}

impl Outcomes {
    /// Subscribes to the outcome subjects (the subscription is in place when this returns) and
    /// starts the watch that reads the stream when the subscription seems to have missed some.
    pub async fn watch(nats: &async_nats::Client) -> anyhow::Result<Self> {
        let mut events = nats
            .subscribe("transactions.*")
            .await
            .context("subscribing to the outcome events")?;
        nats.flush().await.context("flushing the subscription")?;
        let state = Arc::new(Mutex::new(State::default()));
        let subscription = {
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                while let Some(message) = events.next().await {
                    if let Some((id, applied)) = parse(&message.subject, &message.payload) {
                        let outcome = Outcome {
                            at: Instant::now(),
                            applied,
                        };
                        lock(&state).record(id, outcome);
                    }
                }
            })
        };
        let watch = tokio::spawn(look_at_the_stream_when_stuck(
            nats.clone(),
            Arc::clone(&state),
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                state,
                tasks: vec![subscription.abort_handle(), watch.abort_handle()],
            }),
        })
    }

    /// The outcome of transaction `id`, once it has arrived.
    pub async fn of(&self, id: &str) -> anyhow::Result<Outcome> {
        let receiver = {
            let mut state = lock(&self.inner.state);
            if let Some(outcome) = state.arrived.get(id) {
                return Ok(*outcome);
            }
            let (sender, receiver) = oneshot::channel();
            state.waiting.insert(id.to_owned(), sender);
            receiver
        };
        receiver
            .await
            .context("the outcome watch stopped before the outcome arrived")
    }

    /// The outcome of transaction `id`, if it has arrived.
    pub fn get(&self, id: &str) -> Option<Outcome> {
        lock(&self.inner.state).arrived.get(id).copied()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves the maps consistent (each step is one insert).
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The transaction id of an outcome event, and whether it is `transactions.applied`.
fn parse(subject: &str, payload: &[u8]) -> Option<(String, bool)> {
    let applied = match subject {
        "transactions.applied" => true,
        "transactions.rejected" => false,
        _ => return None,
    };
    let event = serde_json::from_slice::<serde_json::Value>(payload).ok()?;
    let id = event["data"]["transaction_id"].as_str()?;
    Some((id.to_owned(), applied))
}

/// Reads the stream whenever someone has waited [`STREAM_LOOK_AFTER`] without any outcome
/// arriving.
async fn look_at_the_stream_when_stuck(nats: async_nats::Client, state: Arc<Mutex<State>>) {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let stuck = {
            let mut state = lock(&state);
            let since = *state.progress.get_or_insert_with(Instant::now);
            !state.waiting.is_empty() && since.elapsed() >= STREAM_LOOK_AFTER
        };
        if stuck {
            fill_from_stream(&nats, &state).await;
            lock(&state).progress = Some(Instant::now());
        }
    }
}

/// Adds the outcomes the subscription missed, read back from the stream. A plain subscription
/// loses what is published while its client reconnects, and the cluster target kills a node this
/// client may be connected to. Such an outcome's arrival is its event's own time. A failure (a
/// broker user without JetStream rights, as the Kubernetes load job's) leaves the subscription's
/// record as it was.
async fn fill_from_stream(nats: &async_nats::Client, state: &Mutex<State>) {
    use common_events::inspect::read_all;
    use common_events::{TransactionApplied, TransactionRejected};
    let js = async_nats::jetstream::new(nats.clone());
    let (Ok(applied), Ok(rejected)) = (
        read_all::<TransactionApplied>(&js).await,
        read_all::<TransactionRejected>(&js).await,
    ) else {
        return;
    };
    let (now, wall) = (Instant::now(), chrono::Utc::now());
    let at = |time: chrono::DateTime<chrono::Utc>| {
        let ago = (wall - time).to_std().unwrap_or_default();
        now.checked_sub(ago).unwrap_or(now)
    };
    let mut state = lock(state);
    let applied = applied
        .into_iter()
        .map(|(_, e)| (e.data.transaction_id, e.occurred_at, true));
    let rejected = rejected
        .into_iter()
        .map(|(_, e)| (e.data.transaction_id, e.occurred_at, false));
    for (id, time, applied) in applied.chain(rejected) {
        let id = id.to_string();
        if !state.arrived.contains_key(&id) {
            let outcome = Outcome {
                at: at(time),
                applied,
            };
            state.record(id, outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_events_are_read_by_subject_and_transaction_id() {
        let payload = br#"{"data": {"transaction_id": "t-1"}}"#;
        assert_eq!(
            parse("transactions.applied", payload),
            Some(("t-1".to_owned(), true))
        );
        assert_eq!(
            parse("transactions.rejected", payload),
            Some(("t-1".to_owned(), false))
        );
        assert_eq!(parse("transactions.created", payload), None);
        assert_eq!(parse("transactions.applied", b"not json"), None);
    }

    #[tokio::test]
    async fn a_waiter_is_woken_by_the_arrival_and_a_late_one_finds_it() {
        let state = Arc::new(Mutex::new(State::default()));
        let outcomes = Outcomes {
            inner: Arc::new(Inner {
                state: Arc::clone(&state),
                tasks: Vec::new(),
            }),
        };
        let early = tokio::spawn({
            let outcomes = outcomes.clone();
            async move { outcomes.of("t-1").await }
        });
        while lock(&state).waiting.is_empty() {
            tokio::task::yield_now().await;
        }
        let outcome = Outcome {
            at: Instant::now(),
            applied: false,
        };
        lock(&state).record("t-1".to_owned(), outcome);
        assert_eq!(early.await.unwrap().unwrap(), outcome);
        assert_eq!(outcomes.of("t-1").await.unwrap(), outcome);
        assert_eq!(outcomes.get("t-1"), Some(outcome));
    }
}
