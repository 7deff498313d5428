//! The decision notes the account service publishes about the scenario account during a run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common_events::observe::{DecisionKind, DecisionNote, DECISIONS_ALL};
use common_events::AccountId;
use futures_util::StreamExt;

use super::ScenarioEnv;

/// Collects the decision notes about one account published during a run.
pub(super) struct NoteCollector {
    notes: Arc<Mutex<Vec<DecisionNote>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl NoteCollector {
    pub(super) async fn start(env: &ScenarioEnv, account: AccountId) -> Self {
        let notes = Arc::new(Mutex::new(Vec::new()));
        let task = match env.js.client().subscribe(DECISIONS_ALL).await {
            Ok(mut subscription) => {
                let notes = notes.clone();
                Some(tokio::spawn(async move {
                    while let Some(message) = subscription.next().await {
                        let Ok(note) = serde_json::from_slice::<DecisionNote>(&message.payload)
                        else {
                            continue;
                        };
                        if note.account_id == Some(account) {
                            notes.lock().expect("not poisoned").push(note);
                        }
                    }
                }))
            }
            Err(err) => {
                tracing::debug!(error = %err, "no decision notes for this run");
                None
            }
        };
        Self { notes, task }
    }

    /// How many final decisions (applied, rejected, duplicate) were noted so far.
    pub(super) fn final_decisions(&self) -> usize {
        let notes = self.notes.lock().expect("not poisoned");
        notes
            .iter()
            .filter(|note| {
                matches!(
                    note.decision,
                    DecisionKind::Applied | DecisionKind::Rejected | DecisionKind::Duplicate
                )
            })
            .count()
    }

    /// Whether any note came yet (the service publishes them).
    pub(super) fn any(&self) -> bool {
        !self.notes.lock().expect("not poisoned").is_empty()
    }

    /// How many noted deliveries had a fault injected (their handler woke and decided).
    pub(super) fn faulted(&self) -> usize {
        let notes = self.notes.lock().expect("not poisoned");
        notes.iter().filter(|note| note.fault.is_some()).count()
    }

    /// The notes collected; when the service publishes notes, waits briefly for one per
    /// delivery.
    pub(super) async fn finish(mut self, deliveries: usize) -> Vec<DecisionNote> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            let count = self.notes.lock().expect("not poisoned").len();
            if count == 0 || count >= deliveries || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
        let mut notes = std::mem::take(&mut *self.notes.lock().expect("not poisoned"));
        notes.sort_by_key(|note| note.at_ms);
        notes
    }
}
