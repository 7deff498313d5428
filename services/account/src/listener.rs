//! The `TransactionCreated` listener of queue group `account-service`, shared by every replica,
//! exactly as DESIGN decision 4 says: duplicate → ack; next → apply (or reject) with the outbox
//! row in one database transaction, then ack; gap → NAK with a short growing delay; poison →
//! `+TERM` and a dead-letter row.

use std::time::Duration;

use common_events::service::batch::Batcher;
use common_events::{
    AccountOpened, Envelope, Listener, MessageContext, Outcome, TransactionCreated,
    UndecodableMessage,
};

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
}

impl TransactionsListener {
    /// The live listener: every applied or rejected transaction emits its event.
    pub fn live(store: Store) -> Self {
        Self {
            recorder: recorder(store.clone()),
            store,
            emit_events: true,
        }
    }

    /// The rebuild listener: the stream already holds the outcomes, so none are emitted.
    pub fn rebuild(store: Store) -> Self {
        Self {
            recorder: recorder(store.clone()),
            store,
            emit_events: false,
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

    async fn poison(&self, ctx: &MessageContext, payload: &[u8], reason: &str) -> Outcome {
        tracing::error!(%reason, "invalid event; dead-lettering and terminating it");
        let stored = self
            .store
            .dead_letter(&ctx.subject, ctx.stream_sequence, payload, reason)
            .await;
        match stored {
            Ok(()) => Outcome::Reject(reason.to_owned()),
            Err(err) => {
                tracing::warn!(error = %err, "cannot store the dead letter; retrying");
                Outcome::Retry(RETRY_AFTER_ERROR)
            }
        }
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
        let event = &envelope.data;
        if event.number == 0 {
            let payload = serde_json::to_vec(&envelope).unwrap_or_default();
            return self
                .poison(&ctx, &payload, "transaction number 0 (numbers start at 1)")
                .await;
        }
        let state = match self.state_in_turn(event).await {
            Ok(Some(state)) => state,
            Ok(None) => {
                tracing::warn!(account = %event.account_id, "transaction for an account not (yet) known; retrying");
                return Outcome::Retry(gap_delay(ctx.delivered));
            }
            Err(err) => {
                tracing::warn!(error = %err, "reading the account failed; retrying");
                return Outcome::Retry(RETRY_AFTER_ERROR);
            }
        };
        let effect = match decide(state, event) {
            Decision::Duplicate => return Outcome::Ack,
            Decision::Gap { expected } => {
                tracing::debug!(expected, number = event.number, "gap; handing it back");
                return Outcome::Retry(gap_delay(ctx.delivered));
            }
            Decision::Apply { balance_after } => Effect::Applied { balance_after },
            Decision::Reject { reason } => Effect::Rejected { reason },
        };
        let record = Record {
            event: event.clone(),
            effect,
            state,
            trace: self.emit_events.then_some(ctx.trace),
        };
        match self.recorder.submit(record).await.flatten() {
            Some(true) => Outcome::Ack,
            Some(false) => Outcome::Retry(RETRY_AFTER_RACE),
            None => Outcome::Retry(RETRY_AFTER_ERROR),
        }
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
