//! The `TransactionCreated` listener of queue group `account-service`, shared by every replica
//! (see `docs/ordering.md`): duplicate → ack; next → apply (or reject) with the outbox row in
//! one database transaction, then ack; gap → NAK with a short growing delay; poison → `+TERM`
//! and a dead-letter row. Each delivery handled also publishes a decision note (see
//! [`common_events::observe`]) unless notes are switched off. With fault injection on (see
//! [`crate::faults`]), an armed fault is played between the decision and the commit.

use std::time::Duration;

use common_events::observe::{DecisionKind, DecisionNotes};
use common_events::service::batch::Batcher;
use common_events::{
    AccountOpened, Envelope, Listener, MessageContext, Outcome, TransactionCreated,
    UndecodableMessage,
};

use crate::faults::{FaultKind, Faults, Injected};
use crate::ordering::{decide, gap_delay, AccountState, Decision};
use crate::store::{Effect, Record, Store};

/// How long a message waits before a retry after a database error.
const RETRY_AFTER_ERROR: Duration = Duration::from_millis(500);
/// How long a message waits when another replica changed the account first.
const RETRY_AFTER_RACE: Duration = Duration::from_millis(5);
/// How long a handler waits in-process for a missing predecessor (committed by a sibling
/// handler or another replica) before handing its message back with a NAK.
const GAP_WAIT: Duration = Duration::from_millis(100);
/// How often that wait re-reads the account (another replica's commit sends no notification).
const GAP_POLL: Duration = Duration::from_millis(20);

/// The most records written in one database transaction.
const RECORD_BATCH: usize = 64;

/// Records decided transactions in batches; `None` when the batch failed.
type Recorder = Batcher<Record, Option<bool>>;

fn recorder(store: Store) -> Recorder {
    Batcher::spawn(RECORD_BATCH, move |records: Vec<Record>| {
        let store = store.clone();
        async move {
            match store.record_batch(&records).await {
                Ok(done) => done.into_iter().map(Some).collect(),
                Err(err) => {
                    tracing::warn!(error = %err, count = records.len(), "recording a batch failed");
                    vec![None; records.len()]
                }
            }
        }
    })
}

/// Applies `TransactionCreated` events to the account projection.
pub struct TransactionsListener {
    store: Store,
    recorder: Recorder,
    emit_events: bool,
    notes: Option<DecisionNotes>,
    faults: Option<Faults>,
}

/// What one delivery came to: the outcome for the runner and the note for people.
struct Handled {
    outcome: Outcome,
    decision: DecisionKind,
    last_transaction_number: Option<u64>,
    detail: Option<String>,
    fault: Option<String>,
}

impl Handled {
    fn new(outcome: Outcome, decision: DecisionKind) -> Self {
        Self {
            outcome,
            decision,
            last_transaction_number: None,
            detail: None,
            fault: None,
        }
    }

    fn after(mut self, state: AccountState) -> Self {
        self.last_transaction_number = Some(state.last_transaction_number);
        self
    }

    fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

impl TransactionsListener {
    /// The live listener: every applied or rejected transaction emits its event; every
    /// delivery handled publishes a decision note when `notes` is set.
    pub fn live(store: Store, notes: Option<DecisionNotes>) -> Self {
        Self {
            recorder: recorder(store.clone()),
            store,
            emit_events: true,
            notes,
            faults: None,
        }
    }

    /// Plays the faults armed in `faults` (fault injection; `None` plays none).
    pub fn with_faults(mut self, faults: Option<Faults>) -> Self {
        self.faults = faults;
        self
    }

    /// The rebuild listener: the stream already holds the outcomes, so none are emitted (and
    /// no decision notes either).
    pub fn rebuild(store: Store) -> Self {
        Self {
            recorder: recorder(store.clone()),
            store,
            emit_events: false,
            notes: None,
            faults: None,
        }
    }

    /// The account's state once `event` is not ahead of it (or after [`GAP_WAIT`]); `None`
    /// when the account does not exist.
    async fn state_in_turn(
        &self,
        event: &TransactionCreated,
    ) -> Result<Option<AccountState>, sqlx::Error> {
        let deadline = tokio::time::Instant::now() + GAP_WAIT;
        loop {
            let progressed = self.store.progress().notified();
            tokio::pin!(progressed);
            progressed.as_mut().enable();
            let Some(state) = self.store.state(event.account_id).await? else {
                return Ok(None);
            };
            let ahead = event.number > state.last_transaction_number + 1;
            if !ahead || tokio::time::Instant::now() >= deadline {
                return Ok(Some(state));
            }
            tokio::select! {
                _ = progressed => {}
                _ = tokio::time::sleep(GAP_POLL) => {}
            }
        }
    }

    async fn poison(&self, subject: &str, sequence: u64, payload: &[u8], reason: &str) -> Handled {
        tracing::error!(%reason, "invalid event; dead-lettering and terminating it");
        let stored = self
            .store
            .dead_letter(subject, sequence, payload, reason)
            .await;
        match stored {
            Ok(()) => Handled::new(Outcome::Reject(reason.to_owned()), DecisionKind::Poison)
                .detail(reason),
            Err(err) => {
                tracing::warn!(error = %err, "cannot store the dead letter; retrying");
                Handled::new(Outcome::Retry(RETRY_AFTER_ERROR), DecisionKind::Error)
                    .detail(format!("{reason}; storing the dead letter failed: {err}"))
            }
        }
    }

    async fn handle(
        &self,
        envelope: &Envelope<TransactionCreated>,
        ctx: &MessageContext,
    ) -> Handled {
        let event = &envelope.data;
        if event.number == 0 {
            let payload = serde_json::to_vec(envelope).unwrap_or_default();
            let reason = "transaction number 0 (numbers start at 1)";
            return self
                .poison(&ctx.subject, ctx.stream_sequence, &payload, reason)
                .await;
        }
        let state = match self.state_in_turn(event).await {
            Ok(Some(state)) => state,
            Ok(None) => {
                tracing::warn!(account = %event.account_id, "transaction for an account not (yet) known; retrying");
                let retry = Outcome::Retry(gap_delay(ctx.delivered));
                return Handled::new(retry, DecisionKind::UnknownAccount);
            }
            Err(err) => {
                tracing::warn!(error = %err, "reading the account failed; retrying");
                return Handled::new(Outcome::Retry(RETRY_AFTER_ERROR), DecisionKind::Error)
                    .detail(format!("reading the account: {err}"));
            }
        };
        let (effect, decided) = match decide(state, event) {
            Decision::Duplicate => {
                return Handled::new(Outcome::Ack, DecisionKind::Duplicate).after(state);
            }
            Decision::Gap { expected } => {
                tracing::debug!(expected, number = event.number, "gap; handing it back");
                let retry = Outcome::Retry(gap_delay(ctx.delivered));
                return Handled::new(retry, DecisionKind::Gap)
                    .after(state)
                    .detail(format!("expected {expected}"));
            }
            Decision::Apply { balance_after } => (
                Effect::Applied { balance_after },
                Handled::new(Outcome::Ack, DecisionKind::Applied),
            ),
            Decision::Reject { reason } => {
                let decided = Handled::new(Outcome::Ack, DecisionKind::Rejected).detail(&reason);
                (Effect::Rejected { reason }, decided)
            }
        };
        let fault = self.inject(event, ctx).await;
        let record = Record {
            event: event.clone(),
            effect,
            state,
            trace: self.emit_events.then_some(ctx.trace),
        };
        let mut handled = match self.recorder.submit(record).await.flatten() {
            Some(true) => decided,
            Some(false) => Handled::new(Outcome::Retry(RETRY_AFTER_RACE), DecisionKind::Race)
                .detail("another replica changed the account first"),
            None => Handled::new(Outcome::Retry(RETRY_AFTER_ERROR), DecisionKind::Error)
                .detail("recording the decision failed"),
        };
        handled.fault = fault.map(|fault| fault.describe());
        handled.after(state)
    }

    /// Plays the fault armed for this delivery, if any (fault injection): between the decision
    /// and the commit, a slow handler sleeps (its progress acks go on), a frozen one stops its
    /// progress acks and sleeps, and a crash aborts the process.
    async fn inject(&self, event: &TransactionCreated, ctx: &MessageContext) -> Option<Injected> {
        let fault = self
            .faults
            .as_ref()?
            .take(event.account_id, ctx.delivered)?;
        let (account, number, delivered) = (event.account_id, event.number, ctx.delivered);
        match fault.kind {
            FaultKind::Crash => {
                tracing::error!(%account, number, delivered, "fault injection: aborting the process before committing");
                std::process::abort();
            }
            FaultKind::Slow => {
                tracing::warn!(%account, number, delivered, delay_ms = fault.delay.as_millis() as u64, "fault injection: a slow handler (progress acks go on)");
            }
            FaultKind::Freeze => {
                ctx.progress.stop();
                tracing::warn!(%account, number, delivered, delay_ms = fault.delay.as_millis() as u64, "fault injection: a frozen handler (no progress acks)");
            }
        }
        tokio::time::sleep(fault.delay).await;
        Some(fault)
    }

    /// Publishes the note of one delivery (subject, stream sequence, delivery count), when
    /// notes are on.
    fn note(
        &self,
        (subject, sequence, delivered): (&str, u64, i64),
        event: Option<&TransactionCreated>,
        handled: &Handled,
        progress_acks: Option<u64>,
    ) {
        let Some(notes) = &self.notes else { return };
        let mut note = notes.note(subject, sequence, delivered, handled.decision);
        if let Some(event) = event {
            note.account_id = Some(event.account_id);
            note.transaction_id = Some(event.transaction_id);
            note.number = Some(event.number);
        }
        note.last_transaction_number = handled.last_transaction_number;
        note.detail.clone_from(&handled.detail);
        note.fault.clone_from(&handled.fault);
        note.progress_acks = progress_acks;
        notes.publish(&note);
    }
}

impl Listener for TransactionsListener {
    type Event = TransactionCreated;

    fn name(&self) -> &'static str {
        "transactions-created"
    }

    async fn on_message(
        &self,
        envelope: Envelope<TransactionCreated>,
        ctx: MessageContext,
    ) -> Outcome {
        let handled = self.handle(&envelope, &ctx).await;
        let delivery = (ctx.subject.as_str(), ctx.stream_sequence, ctx.delivered);
        let progress_acks = Some(ctx.progress.sent()).filter(|sent| *sent > 0);
        self.note(delivery, Some(&envelope.data), &handled, progress_acks);
        handled.outcome
    }

    async fn on_undecodable(&self, message: UndecodableMessage) {
        let stored = self
            .store
            .dead_letter(
                &message.subject,
                message.stream_sequence,
                &message.payload,
                &message.error,
            )
            .await;
        if let Err(err) = stored {
            tracing::error!(error = %err, "cannot store the dead letter of an undecodable message");
        }
        // The runner terminates it whatever happened to the dead letter.
        let handled = Handled::new(Outcome::Reject(message.error.clone()), DecisionKind::Poison)
            .detail(&message.error);
        let delivery = (
            message.subject.as_str(),
            message.stream_sequence,
            message.delivered,
        );
        self.note(delivery, None, &handled, None);
    }
}

/// Restores accounts from `AccountOpened` during a rebuild.
pub struct AccountsProjector(pub Store);

impl Listener for AccountsProjector {
    type Event = AccountOpened;

    fn name(&self) -> &'static str {
        "accounts-opened"
    }

    async fn on_message(&self, envelope: Envelope<AccountOpened>, _: MessageContext) -> Outcome {
        match self.0.restore(&envelope).await {
            Ok(()) => Outcome::Ack,
            Err(err) => {
                tracing::warn!(error = %err, "restoring the account failed; retrying");
                Outcome::Retry(RETRY_AFTER_ERROR)
            }
        }
    }
}
