//! The ordering scenarios, run live against a running stack: each failure mode of delivery,
//! with a naive handler (in the console) beside the account service, and a verdict comparing
//! both with the truth.
//!
//! A run opens a fresh account through the account service's HTTP API, starts the naive
//! handler on a consumer of its own (`transactions.created`, deliver new; the same listener
//! runner the services use, one message at a time), publishes `TransactionCreated` envelopes for
//! that account straight to the `TRANSACTIONS` stream in the problematic order (each publish
//! with its own `Nats-Msg-Id`, so a repeat is not deduplicated: it plays a redelivery, or a
//! re-publish after the duplicate window), then polls the account service until it has consumed
//! every number and acknowledged every delivery (bounded), and compares both balances with a
//! sequential replay in number order.
//!
//! Everything a run needs is a JetStream context and the account service's base URL
//! ([`ScenarioEnv`]), so the console and the account service's test suite run the same code:
//!
//! ```no_run
//! # async fn demo(js: async_nats::jetstream::Context) -> Result<(), console::scenarios::ScenarioError> {
//! use console::scenarios::{self, ScenarioEnv, ScenarioId};
//! let env = ScenarioEnv::new(js, "http://127.0.0.1:8082");
//! let verdict = scenarios::run(ScenarioId::DuplicateDelivery, &env).await?;
//! assert_eq!((verdict.truth, verdict.naive, verdict.service), (100, 200, 100));
//! println!("{}", verdict.line);
//! # Ok(()) }
//! ```
//!
//! The transaction service never heard of these transactions; it ignores their outcomes. So
//! that a later transaction through the transaction service does not reuse a number the
//! scenario consumed, the console refuses new transactions on scenario accounts (owners
//! starting with [`OWNER_PREFIX`]).
//!
//! Adding a scenario: a [`ScenarioId`] variant, its [`ScenarioInfo`] in [`CATALOG`] and its
//! [`Plan`]. A failure mode that needs more than publishing in an order (a handler slower than
//! the ack wait, a crashed replica, a dead client) adds a [`Step`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use common_events::observe::{DecisionKind, DecisionNote, DECISIONS_ALL};
use common_events::runner::ListenerStats;
use common_events::topology::{self, subjects, StartAt, TRANSACTIONS};
use common_events::{
    AccountId, Amount, ConsumerSpec, Envelope, Listener, MessageContext, Outcome, Publisher,
    TransactionCreated, TransactionId, TransactionKind,
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::money::format_cents;

/// Owners of scenario accounts start with this.
pub const OWNER_PREFIX: &str = "scenario: ";

/// How often the account service is polled while a run settles.
const POLL: Duration = Duration::from_millis(50);

/// How long an account that reached its last number must stay unchanged to count as settled
/// when nothing else confirms it.
const QUIET: Duration = Duration::from_secs(2);

/// The scenarios there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScenarioId {
    /// A deposit delivered twice.
    DuplicateDelivery,
    /// A withdrawal (#2) arriving before its deposit (#1).
    OutOfOrder,
}

/// What the page says about a scenario before it runs.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ScenarioInfo {
    /// Which.
    pub id: ScenarioId,
    /// Its URL name: `duplicate-delivery`.
    pub slug: &'static str,
    /// Its title.
    pub title: &'static str,
    /// The owner of the account each run opens.
    pub owner: &'static str,
    /// What happens, in a sentence.
    pub summary: &'static str,
    /// What the naive handler does with it.
    pub naive_expectation: &'static str,
    /// What the account service does with it.
    pub service_expectation: &'static str,
}

/// Every scenario, in the order the page shows them.
pub const CATALOG: &[ScenarioInfo] = &[
    ScenarioInfo {
        id: ScenarioId::DuplicateDelivery,
        slug: "duplicate-delivery",
        title: "Duplicate delivery",
        owner: "scenario: duplicate delivery",
        summary: "A deposit of 1.00 (#1) is delivered twice: the ack was lost, the handler was \
                  slower than the ack wait, or a relay re-published it after the duplicate window.",
        naive_expectation: "applies the redelivery again: 2.00",
        service_expectation: "applies #1 once and acks the second delivery as a duplicate: 1.00 \
                              at number 1",
    },
    ScenarioInfo {
        id: ScenarioId::OutOfOrder,
        slug: "out-of-order",
        title: "Out-of-order arrival",
        owner: "scenario: out-of-order arrival",
        summary: "A withdrawal of 0.60 (#2) arrives before the deposit of 1.00 (#1) that pays for \
                  it: two publishers raced, or a handed-back message came back after later ones.",
        naive_expectation: "rejects the withdrawal for funds that were on their way: 1.00",
        service_expectation: "holds #2 back until #1 is in, then applies both in number order: \
                              0.40 at number 2",
    },
];

impl ScenarioId {
    /// Every scenario.
    pub const ALL: [ScenarioId; 2] = [ScenarioId::DuplicateDelivery, ScenarioId::OutOfOrder];

    /// Its description.
    pub fn info(self) -> &'static ScenarioInfo {
        CATALOG
            .iter()
            .find(|info| info.id == self)
            .expect("every scenario is in the catalog")
    }

    /// Its URL name.
    pub fn slug(self) -> &'static str {
        self.info().slug
    }

    /// The scenario with this URL name.
    pub fn from_slug(slug: &str) -> Option<Self> {
        CATALOG.iter().find(|info| info.slug == slug).map(|i| i.id)
    }

    /// What a run publishes, and in which order.
    pub fn plan(self) -> Plan {
        match self {
            ScenarioId::DuplicateDelivery => Plan {
                transactions: vec![PlannedTx::deposit(1, 100)],
                steps: vec![
                    Step::Deliver {
                        tx: 0,
                        note: "the first delivery",
                    },
                    Step::Deliver {
                        tx: 0,
                        note: "again: a redelivery",
                    },
                ],
            },
            ScenarioId::OutOfOrder => Plan {
                transactions: vec![PlannedTx::deposit(1, 100), PlannedTx::withdrawal(2, 60)],
                steps: vec![
                    Step::Deliver {
                        tx: 1,
                        note: "first, before its deposit",
                    },
                    Step::Deliver {
                        tx: 0,
                        note: "second",
                    },
                ],
            },
        }
    }
}

/// One transaction of a plan, numbered in the account's sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedTx {
    /// Its number.
    pub number: u64,
    /// Deposit or withdrawal.
    pub kind: TransactionKind,
    /// Minor units.
    pub amount: i64,
}

impl PlannedTx {
    /// A deposit.
    pub fn deposit(number: u64, amount: i64) -> Self {
        Self {
            number,
            kind: TransactionKind::Deposit,
            amount,
        }
    }

    /// A withdrawal.
    pub fn withdrawal(number: u64, amount: i64) -> Self {
        Self {
            kind: TransactionKind::Withdrawal,
            ..Self::deposit(number, amount)
        }
    }
}

/// One step of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Publish `TransactionCreated` for `transactions[tx]` with a new event id (each publish is
    /// delivered, even a repeat).
    Deliver {
        /// Index into [`Plan::transactions`].
        tx: usize,
        /// Said in the run's log: "again: a redelivery".
        note: &'static str,
    },
}

/// What a scenario publishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The account's transactions (one per number).
    pub transactions: Vec<PlannedTx>,
    /// The deliveries, in the order they are published.
    pub steps: Vec<Step>,
}

impl Plan {
    /// How many messages the run publishes.
    pub fn deliveries(&self) -> usize {
        self.steps
            .iter()
            .filter(|step| matches!(step, Step::Deliver { .. }))
            .count()
    }

    /// The highest number: what `last_transaction_number` must reach.
    pub fn last_number(&self) -> u64 {
        self.transactions
            .iter()
            .map(|tx| tx.number)
            .max()
            .unwrap_or(0)
    }

    /// The truth: a sequential replay in number order, each number once, a withdrawal above
    /// the balance refused.
    pub fn truth(&self) -> i64 {
        let mut sorted = self.transactions.clone();
        sorted.sort_by_key(|tx| tx.number);
        sorted
            .iter()
            .fold(0, |balance, tx| apply(balance, tx.kind, tx.amount).0)
    }
}

/// A balance after one transaction, and whether a withdrawal was refused.
fn apply(balance: i64, kind: TransactionKind, amount: i64) -> (i64, bool) {
    match kind {
        TransactionKind::Deposit => (balance + amount, false),
        TransactionKind::Withdrawal if balance >= amount => (balance - amount, false),
        TransactionKind::Withdrawal => (balance, true),
    }
}

/// Where runs go: the broker (a JetStream context) and the account service (its base URL).
#[derive(Clone, Debug)]
pub struct ScenarioEnv {
    js: jetstream::Context,
    account_url: String,
    http: reqwest::Client,
    ready_bound: Duration,
    settle_bound: Duration,
}

impl ScenarioEnv {
    /// Runs against this broker and this account service; waits up to 5 s for the service to
    /// be ready and up to 15 s for it to settle.
    pub fn new(js: jetstream::Context, account_url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a plain HTTP client builds");
        Self {
            js,
            account_url: account_url.into().trim_end_matches('/').to_owned(),
            http,
            ready_bound: Duration::from_secs(5),
            settle_bound: Duration::from_secs(15),
        }
    }

    /// How long to wait for the account service's `/readyz` before giving up.
    pub fn with_ready_bound(mut self, bound: Duration) -> Self {
        self.ready_bound = bound;
        self
    }

    /// How long the naive handler and the account service may take to handle every delivery.
    pub fn with_settle_bound(mut self, bound: Duration) -> Self {
        self.settle_bound = bound;
        self
    }

    /// The account service's base URL.
    pub fn account_url(&self) -> &str {
        &self.account_url
    }
}

/// Why a scenario could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The stack cannot run it now (the account service or the broker is unreachable, not
    /// ready, or the account service does not consume this broker's stream).
    #[error("{0}")]
    Unavailable(String),
    /// Something unexpected went wrong mid-run.
    #[error("{0}")]
    Failed(String),
}

/// The number a service's ledger consumed, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerOutcome {
    /// The number.
    pub number: u64,
    /// `applied` or `rejected`.
    pub outcome: String,
}

/// How a run ended: the truth, the naive handler's balance and the service's, and a line to
/// read.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// The scenario's slug.
    pub scenario: &'static str,
    /// Its title.
    pub title: &'static str,
    /// The account the run opened.
    pub account_id: String,
    /// The balance a sequential replay in number order gives, in minor units.
    pub truth: i64,
    /// The naive handler's balance.
    pub naive: i64,
    /// How many withdrawals the naive handler refused.
    pub naive_rejected: usize,
    /// The account service's balance, through its API.
    pub service: i64,
    /// The account service's `last_transaction_number`.
    pub service_last_number: u64,
    /// The number it must reach.
    pub expected_last_number: u64,
    /// The account service's ledger: how it consumed each number.
    pub service_outcomes: Vec<LedgerOutcome>,
    /// The decision notes the account service published about this account during the run
    /// (none when it publishes none).
    pub decisions: Vec<DecisionNote>,
    /// Whether the service consumed every number and acknowledged every delivery in time.
    pub settled: bool,
    /// The naive handler got it wrong: the failure mode was reproduced.
    pub naive_wrong: bool,
    /// The account service got it right: its balance is the truth at the last number.
    pub passed: bool,
    /// The verdict in one line.
    pub line: String,
    /// What the run did, step by step.
    pub steps: Vec<String>,
    /// How long the run took.
    pub elapsed_ms: u64,
}

/// Runs one scenario against the stack at `env`.
pub async fn run(id: ScenarioId, env: &ScenarioEnv) -> Result<Verdict, ScenarioError> {
    let started = Instant::now();
    let info = id.info();
    let plan = id.plan();
    let mut log = Vec::new();
    let stream = preflight(env).await?;

    let account = open_account(env, info.owner).await?;
    log.push(format!("opened account {account} for {:?}", info.owner));

    let notes = NoteCollector::start(env, account).await;
    let naive = Naive::start(env, account).await?;
    log.push(format!(
        "naive handler started on its own consumer {} (transactions.created, deliver new)",
        naive.consumer
    ));

    let publisher = Publisher::new(env.js.clone());
    let mut last_sequence = 0;
    let ids: Vec<TransactionId> = plan
        .transactions
        .iter()
        .map(|_| TransactionId::new())
        .collect();
    for step in &plan.steps {
        match *step {
            Step::Deliver { tx, note } => {
                let planned = plan.transactions[tx];
                let event = Envelope::new(TransactionCreated {
                    transaction_id: ids[tx],
                    account_id: account,
                    number: planned.number,
                    kind: planned.kind,
                    amount: Amount::new(planned.amount)
                        .map_err(|err| ScenarioError::Failed(err.to_string()))?,
                })
                .correlated(ids[tx].0);
                let published = publisher.publish(&event, None).await.map_err(|err| {
                    ScenarioError::Failed(format!("publishing TransactionCreated: {err}"))
                })?;
                last_sequence = last_sequence.max(published.sequence);
                log.push(format!(
                    "published #{} {} {} ({note}) as event {}, stream sequence {}",
                    planned.number,
                    planned.kind,
                    format_cents(planned.amount),
                    event.id,
                    published.sequence
                ));
            }
        }
    }

    let deadline = tokio::time::Instant::now() + env.settle_bound;
    let naive_done = naive.wait_for(plan.deliveries(), deadline).await;
    let (naive_balance, naive_rejected) = naive.result();
    log.push(format!(
        "naive handler handled {} of {} deliveries: balance {}, {} withdrawal(s) refused",
        naive.handled(),
        plan.deliveries(),
        format_cents(naive_balance),
        naive_rejected
    ));
    naive.stop(&stream).await;

    let settled = settle(
        env,
        &stream,
        &notes,
        account,
        &plan,
        last_sequence,
        deadline,
    )
    .await?;
    log.push(match settled.evidence {
        Some(evidence) => format!(
            "account service settled: balance {}, last number {}; {evidence}",
            format_cents(settled.balance),
            settled.last
        ),
        None => format!(
            "account service did not settle within {:?}: balance {}, last number {}",
            env.settle_bound,
            format_cents(settled.balance),
            settled.last
        ),
    });
    let service_outcomes = ledger(env, account).await.unwrap_or_default();
    let decisions = notes.finish(plan.deliveries()).await;

    let truth = plan.truth();
    let expected_last = plan.last_number();
    let done = settled.evidence.is_some();
    let passed = done && settled.balance == truth && settled.last == expected_last;
    let naive_wrong = naive_balance != truth;
    let mut verdict = Verdict {
        scenario: info.slug,
        title: info.title,
        account_id: account.to_string(),
        truth,
        naive: naive_balance,
        naive_rejected,
        service: settled.balance,
        service_last_number: settled.last,
        expected_last_number: expected_last,
        service_outcomes,
        decisions,
        settled: done && naive_done,
        naive_wrong,
        passed,
        line: String::new(),
        steps: log,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    verdict.line = verdict_line(&verdict, env.settle_bound);
    tracing::info!(scenario = info.slug, passed, line = %verdict.line, "scenario ran");
    Ok(verdict)
}

/// The verdict in one line a reader can check against the numbers above it.
fn verdict_line(v: &Verdict, bound: Duration) -> String {
    let right = |ok: bool| if ok { "right" } else { "wrong" };
    let numbers = format!(
        "{}: truth {}; naive handler {} ({}); account service {} at number {} ({})",
        v.title,
        format_cents(v.truth),
        format_cents(v.naive),
        right(!v.naive_wrong),
        format_cents(v.service),
        v.service_last_number,
        right(v.passed),
    );
    let conclusion = if v.passed && v.naive_wrong {
        "PASSED: the account service kept the balance right where the naive handler did not"
            .to_owned()
    } else if v.passed {
        "PASSED: the account service is right (the naive handler happened to be right too)"
            .to_owned()
    } else if v.service_last_number < v.expected_last_number || !v.settled {
        format!(
            "FAILED: the account service did not consume every number within {bound:?} \
             (expected number {})",
            v.expected_last_number
        )
    } else {
        format!(
            "FAILED: the account service's balance {} is not the truth {}",
            format_cents(v.service),
            format_cents(v.truth)
        )
    };
    format!("{numbers}. {conclusion}.")
}

/// The account service answers `/readyz` (bounded wait), the broker has the `TRANSACTIONS`
/// stream and the account service's consumer on it.
async fn preflight(env: &ScenarioEnv) -> Result<jetstream::stream::Stream, ScenarioError> {
    let url = &env.account_url;
    let deadline = tokio::time::Instant::now() + env.ready_bound;
    loop {
        let problem = match env.http.get(format!("{url}/readyz")).send().await {
            Ok(response) if response.status().is_success() => break,
            Ok(response) => format!("is not ready ({})", response.status()),
            Err(err) => format!("is unreachable ({})", crate::upstream::describe(err)),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(ScenarioError::Unavailable(format!(
                "the account service at {url} {problem}; the scenario needs it running"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stream = env.js.get_stream(TRANSACTIONS.name).await.map_err(|err| {
        ScenarioError::Unavailable(format!(
            "the broker has no {} stream ({err}); is the broker up and have the services started?",
            TRANSACTIONS.name
        ))
    })?;
    let durable = ConsumerSpec::account_service().durable;
    stream.consumer_info(&durable).await.map_err(|err| {
        ScenarioError::Unavailable(format!(
            "the broker has no {durable} consumer on {} ({err}); does the account service use \
             this broker?",
            TRANSACTIONS.name
        ))
    })?;
    Ok(stream)
}

async fn open_account(env: &ScenarioEnv, owner: &str) -> Result<AccountId, ScenarioError> {
    let url = &env.account_url;
    let unreachable = |err: reqwest::Error| {
        ScenarioError::Unavailable(format!(
            "the account service at {url} is unreachable ({})",
            crate::upstream::describe(err)
        ))
    };
    let response = env
        .http
        .post(format!("{url}/api/accounts"))
        .json(&json!({"owner": owner}))
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    let body: Value = response.json().await.map_err(unreachable)?;
    if status.as_u16() != 201 {
        return Err(ScenarioError::Failed(format!(
            "opening the scenario account: {status} {body}"
        )));
    }
    let id: AccountId = body["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ScenarioError::Failed(format!("the account service answered {body}")))?;
    // Wait until the account is there to read (another replica may answer the next request).
    let deadline = tokio::time::Instant::now() + env.ready_bound;
    loop {
        if read_account(env, id).await?.is_some() {
            return Ok(id);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ScenarioError::Failed(format!(
                "account {id} was opened but cannot be read back"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `(balance, last_transaction_number)`, `None` while the account is unknown.
async fn read_account(
    env: &ScenarioEnv,
    id: AccountId,
) -> Result<Option<(i64, u64)>, ScenarioError> {
    let url = &env.account_url;
    let response = env
        .http
        .get(format!("{url}/api/accounts/{id}"))
        .send()
        .await
        .map_err(|err| {
            ScenarioError::Unavailable(format!(
                "the account service at {url} is unreachable ({})",
                crate::upstream::describe(err)
            ))
        })?;
    if response.status().as_u16() == 404 {
        return Ok(None);
    }
    let body: Value = response
        .json()
        .await
        .map_err(|err| ScenarioError::Failed(format!("reading account {id}: {err}")))?;
    let balance = body["balance"].as_i64();
    let last = body["last_transaction_number"].as_u64();
    match (balance, last) {
        (Some(balance), Some(last)) => Ok(Some((balance, last))),
        _ => Err(ScenarioError::Failed(format!(
            "account {id} reads as {body}"
        ))),
    }
}

async fn ledger(env: &ScenarioEnv, id: AccountId) -> Result<Vec<LedgerOutcome>, ScenarioError> {
    let url = &env.account_url;
    let body: Value = env
        .http
        .get(format!("{url}/api/accounts/{id}/ledger"))
        .send()
        .await
        .map_err(|err| ScenarioError::Failed(err.to_string()))?
        .json()
        .await
        .map_err(|err| ScenarioError::Failed(err.to_string()))?;
    let items = body["items"].as_array().cloned().unwrap_or_default();
    Ok(items
        .iter()
        .filter_map(|item| {
            Some(LedgerOutcome {
                number: item["number"].as_u64()?,
                outcome: item["outcome"].as_str()?.to_owned(),
            })
        })
        .collect())
}

/// What the account service ended with, and what shows it is done (`None`: it did not settle).
struct Settled {
    balance: i64,
    last: u64,
    evidence: Option<&'static str>,
}

/// Polls the account until it reached the plan's last number and every delivery is known to be
/// handled, so a late duplicate cannot change it after the verdict: the service's decision notes
/// say so (one final decision per delivery), or its consumer's ack floor passed
/// `last_sequence`, or, when neither says so (no notes, and other accounts' messages hold the
/// ack floor back), the account did not change for [`QUIET`]. Gives up at `deadline`.
async fn settle(
    env: &ScenarioEnv,
    stream: &jetstream::stream::Stream,
    notes: &NoteCollector,
    account: AccountId,
    plan: &Plan,
    last_sequence: u64,
    deadline: tokio::time::Instant,
) -> Result<Settled, ScenarioError> {
    let durable = ConsumerSpec::account_service().durable;
    let mut since: Option<((i64, u64), tokio::time::Instant)> = None;
    loop {
        let (balance, last) = read_account(env, account).await?.unwrap_or((0, 0));
        let now = tokio::time::Instant::now();
        if last >= plan.last_number() {
            let stable = match since {
                Some((seen, at)) if seen == (balance, last) => now.duration_since(at),
                _ => {
                    since = Some(((balance, last), now));
                    Duration::ZERO
                }
            };
            let acked = || async {
                stream.consumer_info(&durable).await.is_ok_and(|info| {
                    info.ack_floor.stream_sequence >= last_sequence
                        || (info.num_ack_pending == 0
                            && info.num_pending == 0
                            && info.delivered.stream_sequence >= last_sequence)
                })
            };
            let evidence = if notes.final_decisions() >= plan.deliveries() {
                Some("the service's decision notes account for every delivery")
            } else if acked().await {
                Some("its consumer acknowledged every delivery")
            } else if stable >= QUIET {
                Some("no change for 2 s (neither decision notes nor the ack floor confirm it)")
            } else {
                None
            };
            if let Some(evidence) = evidence {
                return Ok(Settled {
                    balance,
                    last,
                    evidence: Some(evidence),
                });
            }
        }
        if now >= deadline {
            return Ok(Settled {
                balance,
                last,
                evidence: None,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The naive handler: applies whatever arrives for its account, in arrival order, and acks at
/// once. A withdrawal above the balance is refused (and acked).
struct NaiveHandler {
    account: AccountId,
    state: Mutex<(i64, usize)>,
    handled: AtomicUsize,
}

impl Listener for NaiveHandler {
    type Event = TransactionCreated;

    fn name(&self) -> &'static str {
        "console-naive"
    }

    async fn on_message(&self, event: Envelope<TransactionCreated>, _: MessageContext) -> Outcome {
        let tx = &event.data;
        if tx.account_id == self.account {
            let mut state = self.state.lock().expect("not poisoned");
            let (balance, refused) = apply(state.0, tx.kind, tx.amount.get());
            state.0 = balance;
            state.1 += usize::from(refused);
            self.handled.fetch_add(1, Ordering::SeqCst);
        }
        Outcome::Ack
    }
}

/// The naive handler running on a consumer of its own.
struct Naive {
    handler: Arc<NaiveHandler>,
    consumer: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Naive {
    /// Creates its consumer (deliver new) before returning, so every later publish reaches it.
    async fn start(env: &ScenarioEnv, account: AccountId) -> Result<Self, ScenarioError> {
        let consumer = format!("console-naive-{}", uuid::Uuid::new_v4().simple());
        let spec = ConsumerSpec {
            durable: consumer.clone(),
            start_at: StartAt::New,
            concurrency: 1,
            inactive_threshold: Some(Duration::from_secs(60)),
            ..ConsumerSpec::replay(TRANSACTIONS, subjects::TRANSACTION_CREATED)
        };
        topology::ensure_consumer(&env.js, &spec)
            .await
            .map_err(|err| {
                ScenarioError::Unavailable(format!("creating the naive handler's consumer: {err}"))
            })?;
        let handler = Arc::new(NaiveHandler {
            account,
            state: Mutex::new((0, 0)),
            handled: AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        let run = common_events::runner::run(
            env.js.clone(),
            spec,
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

    fn handled(&self) -> usize {
        self.handler.handled.load(Ordering::SeqCst)
    }

    fn result(&self) -> (i64, usize) {
        *self.handler.state.lock().expect("not poisoned")
    }

    /// Waits until it handled `n` deliveries of its account; false at the deadline.
    async fn wait_for(&self, n: usize, deadline: tokio::time::Instant) -> bool {
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
    async fn stop(self, stream: &jetstream::stream::Stream) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        let _ = stream.delete_consumer(&self.consumer).await;
    }
}

/// Collects the decision notes about one account published during a run.
struct NoteCollector {
    notes: Arc<Mutex<Vec<DecisionNote>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl NoteCollector {
    async fn start(env: &ScenarioEnv, account: AccountId) -> Self {
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
    fn final_decisions(&self) -> usize {
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

    /// The notes collected; when the service publishes notes, waits briefly for one per
    /// delivery.
    async fn finish(mut self, deliveries: usize) -> Vec<DecisionNote> {
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

/// How many runs of each scenario the console has made, and how many passed.
#[derive(Debug, Default)]
pub struct RunStats {
    counts: Mutex<HashMap<(&'static str, bool), u64>>,
}

impl RunStats {
    /// Counts one run.
    pub fn record(&self, verdict: &Verdict) {
        let mut counts = self.counts.lock().expect("not poisoned");
        *counts
            .entry((verdict.scenario, verdict.passed))
            .or_default() += 1;
    }

    /// `(scenario, passed, count)` for every combination seen.
    pub fn snapshot(&self) -> Vec<(&'static str, bool, u64)> {
        let counts = self.counts.lock().expect("not poisoned");
        let mut rows: Vec<_> = counts.iter().map(|(&(s, p), &n)| (s, p, n)).collect();
        rows.sort();
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_is_in_the_catalog_with_a_unique_slug() {
        for id in ScenarioId::ALL {
            assert_eq!(ScenarioId::from_slug(id.slug()), Some(id));
            assert!(id.info().owner.starts_with(OWNER_PREFIX));
        }
        assert_eq!(CATALOG.len(), ScenarioId::ALL.len());
    }

    #[test]
    fn the_truth_is_a_replay_in_number_order() {
        let duplicate = ScenarioId::DuplicateDelivery.plan();
        assert_eq!(
            (
                duplicate.truth(),
                duplicate.last_number(),
                duplicate.deliveries()
            ),
            (100, 1, 2)
        );
        let reordered = ScenarioId::OutOfOrder.plan();
        assert_eq!(
            (
                reordered.truth(),
                reordered.last_number(),
                reordered.deliveries()
            ),
            (40, 2, 2)
        );
    }

    #[test]
    fn the_verdict_line_says_who_was_right() {
        let mut verdict = Verdict {
            scenario: "duplicate-delivery",
            title: "Duplicate delivery",
            account_id: String::new(),
            truth: 100,
            naive: 200,
            naive_rejected: 0,
            service: 100,
            service_last_number: 1,
            expected_last_number: 1,
            service_outcomes: vec![],
            decisions: vec![],
            settled: true,
            naive_wrong: true,
            passed: true,
            line: String::new(),
            steps: vec![],
            elapsed_ms: 0,
        };
        assert_eq!(
            verdict_line(&verdict, Duration::from_secs(15)),
            "Duplicate delivery: truth 1.00; naive handler 2.00 (wrong); account service 1.00 \
             at number 1 (right). PASSED: the account service kept the balance right where the \
             naive handler did not."
        );
        verdict.service = 200;
        verdict.passed = false;
        assert!(verdict_line(&verdict, Duration::from_secs(15))
            .ends_with("FAILED: the account service's balance 2.00 is not the truth 1.00."));
    }
}
