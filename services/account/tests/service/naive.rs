//! The worked example of docs/ordering.md, run: each way delivery order breaks a balance, shown
//! failing with a naive handler and passing with the account service's sequence numbers.
//!
//! Both read the same `TransactionCreated` events from the same stream through the same
//! listener runner. The naive handler does what a first version would: apply whatever arrives,
//! in arrival order, and ack at once. The service applies number `last + 1` only, acks what is
//! at or below `last` and hands back what is ahead (DESIGN decision 4). The truth is a
//! sequential replay of the account's transactions in number order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common_events::topology::{subjects, TRANSACTIONS};
use common_events::{
    AccountId, ConsumerSpec, Envelope, Listener, ListenerStats, MessageContext, Outcome,
    TransactionCreated, TransactionKind,
};
use test_support::scenario;
use test_support::wait::until_eq;
use test_support::{Scenario, Target};
use tokio_util::sync::CancellationToken;

use crate::support::{spawn_app, TestApp, Tx, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(a_redelivered_deposit_is_applied_twice_by_the_naive_handler_and_once_by_the_service),
    scenario!(a_withdrawal_arriving_before_its_deposit_is_misjudged_by_the_naive_handler_only),
];

/// A redelivery (the ack was lost, the handler was slower than ack_wait, or a relay
/// re-published after the duplicate window) hands the same transaction over twice.
async fn a_redelivered_deposit_is_applied_twice_by_the_naive_handler_and_once_by_the_service(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.open("a").await?;
    let naive = Naive::start(&app)?;
    let deposit = Tx::deposit(account, 1, 100);
    app.created(&deposit).await?;
    app.created(&deposit).await?;
    let truth = replay(&[&deposit]);
    assert_eq!(truth, 100);
    naive.wait_for(2).await?;
    assert_eq!(
        naive.balance(account),
        200,
        "the naive handler applies the redelivery again"
    );
    until_eq("the service applied it once", BOUND, (truth, 1), || {
        app.balance(account)
    })
    .await?;
    until_eq("both deliveries acked", BOUND, 2, || {
        app.listener_count("acked")
    })
    .await?;
    assert_eq!(app.balance(account).await?, (truth, 1));
    naive.stop();
    Ok(())
}

/// Events of one account can arrive out of number order: two replicas' publishes race, a
/// NAKed or timed-out message comes back after later ones, the stream is replayed by a
/// consumer that started late. Here the withdrawal (number 2) arrives before the deposit
/// (number 1) that pays for it.
async fn a_withdrawal_arriving_before_its_deposit_is_misjudged_by_the_naive_handler_only(
    t: Target,
) -> anyhow::Result<()> {
    let app = spawn_app(&t).await?;
    let account = app.open("a").await?;
    let deposit = Tx::deposit(account, 1, 100);
    let withdrawal = Tx::withdrawal(account, 2, 60);
    app.created(&withdrawal).await?;
    app.created(&deposit).await?;
    let naive = Naive::start(&app)?;
    let truth = replay(&[&deposit, &withdrawal]);
    assert_eq!(truth, 40);
    naive.wait_for(2).await?;
    assert_eq!(
        (naive.balance(account), naive.rejected()),
        (100, 1),
        "the naive handler rejects the withdrawal for funds that were on their way"
    );
    until_eq(
        "the service applied both in order",
        BOUND,
        (truth, 2),
        || app.balance(account),
    )
    .await?;
    let (_, ledger) = app.get(&format!("/api/accounts/{account}/ledger")).await?;
    let outcomes: Vec<&str> = ledger["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["outcome"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        outcomes,
        ["applied", "applied"],
        "the service rejected nothing: {ledger}"
    );
    naive.stop();
    Ok(())
}

/// The balance a sequential replay in number order gives.
fn replay(txs: &[&Tx]) -> i64 {
    let mut sorted = txs.to_vec();
    sorted.sort_by_key(|tx| tx.number);
    sorted.iter().fold(0, |balance, tx| match tx.kind {
        TransactionKind::Deposit => balance + tx.amount,
        TransactionKind::Withdrawal if balance >= tx.amount => balance - tx.amount,
        TransactionKind::Withdrawal => balance,
    })
}

/// The naive handler: apply whatever arrives, in arrival order; ack at once.
#[derive(Default)]
struct NaiveHandler {
    balances: Mutex<HashMap<AccountId, i64>>,
    handled: AtomicUsize,
    rejected: AtomicUsize,
}

impl Listener for NaiveHandler {
    type Event = TransactionCreated;

    fn name(&self) -> &'static str {
        "naive"
    }

    async fn on_message(&self, event: Envelope<TransactionCreated>, _: MessageContext) -> Outcome {
        let tx = &event.data;
        {
            let mut balances = self.balances.lock().expect("not poisoned");
            let balance = balances.entry(tx.account_id).or_default();
            match tx.kind {
                TransactionKind::Deposit => *balance += tx.amount.get(),
                TransactionKind::Withdrawal if *balance >= tx.amount.get() => {
                    *balance -= tx.amount.get();
                }
                TransactionKind::Withdrawal => {
                    self.rejected.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        self.handled.fetch_add(1, Ordering::SeqCst);
        Outcome::Ack
    }
}

/// The naive handler running on a consumer of its own over the whole stream.
struct Naive {
    handler: Arc<NaiveHandler>,
    stop: CancellationToken,
}

impl Naive {
    fn start(app: &TestApp) -> anyhow::Result<Self> {
        let handler = Arc::new(NaiveHandler::default());
        let stop = CancellationToken::new();
        let spec = ConsumerSpec {
            concurrency: 1,
            ..ConsumerSpec::replay(TRANSACTIONS, subjects::TRANSACTION_CREATED)
        };
        tokio::spawn(common_events::runner::run(
            app.js.clone(),
            spec,
            handler.clone(),
            Arc::new(ListenerStats::default()),
            stop.clone(),
        ));
        Ok(Self { handler, stop })
    }

    async fn wait_for(&self, n: usize) -> anyhow::Result<()> {
        let handled = || async { Ok(self.handler.handled.load(Ordering::SeqCst)) };
        until_eq("the naive handler saw every delivery", BOUND, n, handled).await
    }

    fn balance(&self, account: AccountId) -> i64 {
        let balances = self.handler.balances.lock().expect("not poisoned");
        balances.get(&account).copied().unwrap_or_default()
    }

    fn rejected(&self) -> usize {
        self.handler.rejected.load(Ordering::SeqCst)
    }

    fn stop(&self) {
        self.stop.cancel();
    }
}
