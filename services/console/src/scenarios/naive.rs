//! The naive handler: what a consumer without sequence numbers does with the same deliveries,
//! run inside the console on a consumer of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use common_events::topology::{self, subjects, StartAt, TRANSACTIONS};
use common_events::{AccountId, ConsumerSpec, Envelope, TransactionCreated};
use service_kit::runner::ListenerStats;
use service_kit::{Listener, MessageContext, Outcome};
use tokio_util::sync::CancellationToken;

use super::plan::apply;
use super::{NaiveFirst, NaiveSpec, ScenarioEnv, ScenarioError};

/// The naive handler: applies whatever arrives for its account, in arrival order, and acks at
/// once (a withdrawal above the balance is refused, and acked). It sends no progress acks. Its
/// first delivery it may stall on, lose, hand back after applying, or check against the last
/// number it applied ([`NaiveFirst`]).
struct NaiveHandler {
    account: AccountId,
    first: NaiveFirst,
    stall: Duration,
    state: Mutex<NaiveState>,
    handled: AtomicUsize,
    lost: AtomicUsize,
}

/// What the naive handler keeps: its balance, how many withdrawals it refused, and the highest
/// number it applied (only [`NaiveFirst::CheckThenWrite`] looks at it).
#[derive(Clone, Copy, Debug, Default)]
struct NaiveState {
    balance: i64,
    refused: usize,
    last: u64,
}

impl NaiveHandler {
    fn apply(&self, tx: &TransactionCreated) {
        let mut state = self.state.lock().expect("not poisoned");
        let (balance, refused) = apply(state.balance, tx.kind, tx.amount.get());
        state.balance = balance;
        state.refused += usize::from(refused);
        state.last = state.last.max(u64::from(tx.number));
    }

    fn last(&self) -> u64 {
        self.state.lock().expect("not poisoned").last
    }

    /// Counts a delivery handled, and answers the runner.
    fn done(&self, outcome: Outcome) -> Outcome {
        self.handled.fetch_add(1, Ordering::SeqCst);
        outcome
    }
}

impl Listener for NaiveHandler {
    type Event = TransactionCreated;

    fn name(&self) -> &'static str {
        "console-naive"
    }

    async fn on_message(
        &self,
        event: Envelope<TransactionCreated>,
        ctx: MessageContext,
    ) -> Outcome {
        let tx = &event.data;
        if tx.account_id != self.account {
            return Outcome::Ack;
        }
        // A naive handler knows nothing of progress acks.
        ctx.progress.stop();
        if ctx.delivered > 1 {
            self.apply(tx);
            return self.done(Outcome::Ack);
        }
        match self.first {
            NaiveFirst::Apply => {}
            NaiveFirst::Stall => tokio::time::sleep(self.stall).await,
            NaiveFirst::AckThenCrash => {
                // Acknowledged on receipt; the crash that follows skips the apply.
                self.lost.fetch_add(1, Ordering::SeqCst);
                return self.done(Outcome::Ack);
            }
            NaiveFirst::FailBeforeAck => {
                self.apply(tx);
                // Fails before its ack: handed back, redelivered at once.
                return self.done(Outcome::Retry(Duration::ZERO));
            }
            NaiveFirst::CheckThenWrite => {
                if u64::from(tx.number) <= self.last() {
                    return self.done(Outcome::Ack);
                }
                // Found it next; the write comes a moment later, without a condition.
                tokio::time::sleep(self.stall).await;
            }
        }
        self.apply(tx);
        self.done(Outcome::Ack)
    }
}

/// The naive handler running on a consumer of its own.
pub(super) struct Naive {
    handler: Arc<NaiveHandler>,
    pub(super) consumer: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Naive {
    /// Creates its consumer (deliver new, the account service consumer's `ack_wait`) before
    /// returning, so every later publish reaches it.
    pub(super) async fn start(
        env: &ScenarioEnv,
        account: AccountId,
        spec: NaiveSpec,
        ack_wait: Duration,
        stall: Duration,
    ) -> Result<Self, ScenarioError> {
        let consumer = format!("console-naive-{}", uuid::Uuid::new_v4().simple());
        let consumer_spec = ConsumerSpec {
            durable: consumer.clone(),
            start_at: StartAt::New,
            ack_wait,
            concurrency: spec.concurrency.max(1),
            inactive_threshold: Some(Duration::from_secs(60)),
            ..ConsumerSpec::replay(TRANSACTIONS, subjects::TRANSACTION_CREATED)
        };
        topology::ensure_consumer(&env.js, &consumer_spec)
            .await
            .map_err(|err| {
                ScenarioError::Unavailable(format!("creating the naive handler's consumer: {err}"))
            })?;
        let handler = Arc::new(NaiveHandler {
            account,
            first: spec.first_delivery,
            stall,
            state: Mutex::default(),
            handled: AtomicUsize::new(0),
            lost: AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        let run = service_kit::runner::run(
            env.js.clone(),
            consumer_spec,
            handler.clone(),
            Arc::new(ListenerStats::default()),
            stop.clone(),
        );
        let task = tokio::spawn(async move {
            if let Err(err) = run.await {
                tracing::warn!(error = %err, "the naive handler stopped");
            }
        });
        Ok(Self {
            handler,
            consumer,
            stop,
            task,
        })
    }

    pub(super) fn handled(&self) -> usize {
        self.handler.handled.load(Ordering::SeqCst)
    }

    pub(super) fn lost(&self) -> usize {
        self.handler.lost.load(Ordering::SeqCst)
    }

    /// Its balance, and how many withdrawals it refused.
    pub(super) fn result(&self) -> (i64, usize) {
        let state = *self.handler.state.lock().expect("not poisoned");
        (state.balance, state.refused)
    }

    /// Waits until it handled `n` deliveries of its account; false at the deadline.
    pub(super) async fn wait_for(&self, n: usize, deadline: tokio::time::Instant) -> bool {
        while self.handled() < n {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Stops the runner and deletes the consumer (best effort; the server removes it a minute
    /// after its last client anyway).
    pub(super) async fn stop(self, stream: &jetstream::stream::Stream) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        let _ = stream.delete_consumer(&self.consumer).await;
    }
}
