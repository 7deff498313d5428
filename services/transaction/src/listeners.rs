//! What the transaction service consumes: `AccountOpened` (to know accounts) and
//! `TransactionApplied` / `TransactionRejected` (to settle a transaction's status).

use std::time::Duration;

use common_events::{
    AccountOpened, Envelope, Listener, MessageContext, Outcome, TransactionApplied,
    TransactionRejected,
};

use crate::store::{Settlement, Store, StoreError};

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

/// Marks transactions applied.
pub struct AppliedListener(pub Store);

impl Listener for AppliedListener {
    type Event = TransactionApplied;

    fn name(&self) -> &'static str {
        "applied"
    }

    async fn on_message(&self, event: Envelope<TransactionApplied>, _: MessageContext) -> Outcome {
        let id = event.data.transaction_id;
        outcome_of(self.0.settle(id, Settlement::Applied, None).await)
    }
}

/// Marks transactions rejected, with the reason.
pub struct RejectedListener(pub Store);

impl Listener for RejectedListener {
    type Event = TransactionRejected;

    fn name(&self) -> &'static str {
        "rejected"
    }

    async fn on_message(&self, event: Envelope<TransactionRejected>, _: MessageContext) -> Outcome {
        let data = &event.data;
        let result = self
            .0
            .settle(
                data.transaction_id,
                Settlement::Rejected,
                Some(&data.reason),
            )
            .await;
        outcome_of(result)
    }
}
