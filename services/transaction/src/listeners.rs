//! What the transaction service consumes: `AccountOpened` (to know accounts) and
//! `TransactionApplied` / `TransactionRejected` (to settle a transaction's status).

use std::time::Duration;

use common_events::{AccountOpened, Envelope, TransactionApplied, TransactionRejected};
use service_kit::batch::{BatchFailed, Batcher, OnFailure};
use service_kit::{Listener, MessageContext, Outcome};

use crate::store::{Settle, Store, StoreError};

/// How long a message waits before a retry after a database error.
const RETRY_AFTER_ERROR: Duration = Duration::from_millis(500);

fn outcome_of(result: Result<(), StoreError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Ack,
        Err(err) => {
            tracing::warn!(error = %err, "storing the event failed; retrying");
            Outcome::Retry(RETRY_AFTER_ERROR)
        }
    }
}

/// Learns accounts from `AccountOpened`.
pub struct AccountsListener(pub Store);

impl Listener for AccountsListener {
    type Event = AccountOpened;

    fn name(&self) -> &'static str {
        "accounts"
    }

    async fn on_message(&self, event: Envelope<AccountOpened>, _: MessageContext) -> Outcome {
        outcome_of(self.0.learn_account(event.data.account_id).await)
    }
}

/// Settles transactions in batches (one database transaction per batch).
pub type Settler = Batcher<Settle, ()>;

/// The most settlements written in one database transaction.
const SETTLE_BATCH: usize = 256;

/// Starts the settling task over `store`.
pub fn settler(store: Store) -> Settler {
    // Settling is safe to repeat (only a pending transaction changes).
    Batcher::spawn(
        "settle",
        SETTLE_BATCH,
        OnFailure::RetryEachAlone,
        move |settlements: Vec<Settle>| {
            let store = store.clone();
            async move {
                let count = settlements.len();
                store.settle(&settlements).await.map(|()| vec![(); count])
            }
        },
    )
}

/// Marks transactions applied.
pub struct AppliedListener(pub Settler);

impl Listener for AppliedListener {
    type Event = TransactionApplied;

    fn name(&self) -> &'static str {
        "applied"
    }

    async fn on_message(&self, event: Envelope<TransactionApplied>, _: MessageContext) -> Outcome {
        let id = event.data.transaction_id;
        settled(self.0.submit(Settle { id, reason: None }).await)
    }
}

/// Marks transactions rejected, with the reason.
pub struct RejectedListener(pub Settler);

impl Listener for RejectedListener {
    type Event = TransactionRejected;

    fn name(&self) -> &'static str {
        "rejected"
    }

    async fn on_message(&self, event: Envelope<TransactionRejected>, _: MessageContext) -> Outcome {
        let data = event.data;
        let settle = Settle {
            id: data.transaction_id,
            reason: Some(data.reason),
        };
        settled(self.0.submit(settle).await)
    }
}

fn settled(committed: Result<(), BatchFailed>) -> Outcome {
    match committed {
        Ok(()) => Outcome::Ack,
        Err(BatchFailed) => Outcome::Retry(RETRY_AFTER_ERROR),
    }
}
