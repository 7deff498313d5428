//! The ordering scenarios, run live against a running stack: each failure mode of delivery,
//! with a naive handler (in the console) beside the account service, and a verdict comparing
//! both with the truth.
//!
//! A run opens a fresh account through the account service's HTTP API, starts the naive
//! handler on a consumer of its own (`transactions.created`, deliver new, the account service
//! consumer's ack wait; the same listener runner the services use), publishes
//! `TransactionCreated` envelopes for that account straight to the `TRANSACTIONS` stream in the
//! problematic order (each publish with its own `Nats-Msg-Id`, so a repeat is not deduplicated:
//! it plays a redelivery, or a re-publish after the duplicate window), then polls the account
//! service until it has consumed every number and acknowledged every delivery (bounded), and
//! compares both balances with a sequential replay in number order.
//!
//! Three failure modes need more than publishing in an order, so their plans begin with a
//! [`Step::ArmFault`]: the run arms a fault (slow, crash, freeze) on every account-service
//! replica it knows, through their `/faults` route (fault injection, on only with
//! `--fault-injection`; see the account service's `faults` module), for the scenario account's
//! first delivery; whichever replica gets that delivery plays it, the redelivery passes. The
//! naive handler plays the same fault inside the console ([`NaiveFirst`]). Slow and frozen
//! handlers stall for the service consumer's ack wait + [`FAULT_MARGIN`], so those runs take
//! about 12 s with the default ack wait of 10 s.
//!
//! Everything a run needs is a JetStream context and the account service's base URLs
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
//! [`Plan`] (its steps, the naive handler's part and the replicas it needs).

mod faults;

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

pub use faults::Fault;
use faults::{Replica, ReplicaWatch};

/// Owners of scenario accounts start with this.
pub const OWNER_PREFIX: &str = "scenario: ";

/// How often the account service is polled while a run settles.
const POLL: Duration = Duration::from_millis(50);

/// How long an account that reached its last number must stay unchanged to count as settled
/// when nothing else confirms it.
const QUIET: Duration = Duration::from_secs(2);

/// How much longer than the ack wait a slow or frozen handler stalls: long enough for the
/// broker to have redelivered a message whose handler sent no progress ack.
pub const FAULT_MARGIN: Duration = Duration::from_secs(2);

/// The scenarios there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScenarioId {
    /// A deposit delivered twice.
    DuplicateDelivery,
    /// A withdrawal (#2) arriving before its deposit (#1).
    OutOfOrder,
    /// A deposit whose first handler takes longer than the ack wait.
    SlowHandler,
    /// A deposit whose first handler's process crashes before committing.
    CrashedReplica,
    /// A deposit whose first handler freezes past the ack wait, then wakes up.
    DeadClient,
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
    /// How long a run takes, for people waiting for it.
    pub takes: &'static str,
    /// What the stack needs beyond a running broker and account service, when anything.
    pub needs: Option<&'static str>,
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
        takes: "about a second",
        needs: None,
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
        takes: "about a second",
        needs: None,
    },
    ScenarioInfo {
        id: ScenarioId::SlowHandler,
        slug: "slow-handler",
        title: "Slow handler",
        owner: "scenario: slow handler",
        summary:
            "A deposit of 1.00 (#1) meets a handler that takes 2 s longer than the ack wait on \
                  its first delivery: the broker redelivers a message whose handler has not \
                  acknowledged it in time.",
        naive_expectation: "sends no progress ack, so the broker redelivers #1 while it still \
                            works; it applies the redelivery, then its own copy: 2.00",
        service_expectation: "the runner sends +WPI progress acks every half ack wait, so the \
                              broker keeps #1 with the slow handler (and a redelivery would be a \
                              duplicate): 1.00 at number 1",
        takes: "the ack wait + 2 s: about 12 s",
        needs: Some("fault injection (--fault-injection) on every account-service replica"),
    },
    ScenarioInfo {
        id: ScenarioId::CrashedReplica,
        slug: "crashed-replica",
        title: "Crashed replica",
        owner: "scenario: crashed replica",
        summary: "The replica handling the first delivery of a deposit of 1.00 (#1) crashes \
                  before committing it (like kill -9: its connection drops, the message stays \
                  unacknowledged).",
        naive_expectation: "acknowledged #1 on receipt, then crashed before applying it: the \
                            broker never delivers it again, the deposit is lost: 0.00",
        service_expectation: "acknowledges only after the commit, so the broker redelivers #1 \
                              (at once on the bundled broker, after the ack wait on nats-server) \
                              to another replica or the restarted one: 1.00 at number 1",
        takes: "a second on the bundled broker, the ack wait (about 10 s) on nats-server",
        needs: Some(
            "fault injection (--fault-injection) on every account-service replica, and two \
             replicas (one crashes; the bank restarts it)",
        ),
    },
    ScenarioInfo {
        id: ScenarioId::DeadClient,
        slug: "dead-client",
        title: "Dead client",
        owner: "scenario: dead client",
        summary: "The handler of the first delivery of a deposit of 1.00 (#1) freezes without \
                  closing its connection (a stopped process, a long pause, a partition) for 2 s \
                  past the ack wait, then wakes up and commits its stale copy.",
        naive_expectation: "the redelivery is applied by another handler, then the frozen one \
                            wakes up and applies its stale copy again: 2.00",
        service_expectation: "the redelivery is applied; the stale commit's conditional update \
                              (where last_transaction_number = number - 1) matches nothing: a \
                              race, handed back: 1.00 at number 1",
        takes: "the ack wait + 2 s: about 12 s",
        needs: Some(
            "fault injection (--fault-injection) on every account-service replica, and two \
             replicas",
        ),
    },
];

impl ScenarioId {
    /// Every scenario.
    pub const ALL: [ScenarioId; 5] = [
        ScenarioId::DuplicateDelivery,
        ScenarioId::OutOfOrder,
        ScenarioId::SlowHandler,
        ScenarioId::CrashedReplica,
        ScenarioId::DeadClient,
    ];

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

    /// What a run does, and in which order.
    pub fn plan(self) -> Plan {
        let ordering = |transactions, steps| Plan {
            transactions,
            steps,
            naive: NaiveSpec::default(),
            min_replicas: 1,
        };
        let with_fault = |fault, note, naive, min_replicas| Plan {
            transactions: vec![PlannedTx::deposit(1, 100)],
            steps: vec![
                Step::ArmFault { fault, note },
                Step::Deliver {
                    tx: 0,
                    note: "once",
                },
            ],
            naive,
            min_replicas,
        };
        // A stalled naive handler needs a second handler free for the redelivery.
        let stalls = NaiveSpec {
            concurrency: 2,
            first_delivery: NaiveFirst::Stall,
        };
        match self {
            ScenarioId::DuplicateDelivery => ordering(
                vec![PlannedTx::deposit(1, 100)],
                vec![
                    Step::Deliver {
                        tx: 0,
                        note: "the first delivery",
                    },
                    Step::Deliver {
                        tx: 0,
                        note: "again: a redelivery",
                    },
                ],
            ),
            ScenarioId::OutOfOrder => ordering(
                vec![PlannedTx::deposit(1, 100), PlannedTx::withdrawal(2, 60)],
                vec![
                    Step::Deliver {
                        tx: 1,
                        note: "first, before its deposit",
                    },
                    Step::Deliver {
                        tx: 0,
                        note: "second",
                    },
                ],
            ),
            ScenarioId::SlowHandler => with_fault(
                Fault::Slow,
                "its handler stalls for the ack wait + 2 s, progress acks going on",
                stalls,
                1,
            ),
            ScenarioId::CrashedReplica => with_fault(
                Fault::Crash,
                "its replica aborts before committing",
                NaiveSpec {
                    concurrency: 1,
                    first_delivery: NaiveFirst::AckThenCrash,
                },
                2,
            ),
            ScenarioId::DeadClient => with_fault(
                Fault::Freeze,
                "its handler freezes for the ack wait + 2 s: no progress acks",
                stalls,
                2,
            ),
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
    /// Arm `fault` on every account-service replica for the scenario account's first delivery
    /// (it fires once, on the replica that gets it; the redelivery passes). Slow and frozen
    /// handlers stall for the service consumer's ack wait + [`FAULT_MARGIN`].
    ArmFault {
        /// What the replica's handler does.
        fault: Fault,
        /// Said in the run's log.
        note: &'static str,
    },
}

/// How the naive handler plays its part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NaiveSpec {
    /// Handlers at once (a stalled handler needs another for the redelivery).
    pub concurrency: usize,
    /// What it does with the first delivery of the account's messages.
    pub first_delivery: NaiveFirst,
}

impl Default for NaiveSpec {
    fn default() -> Self {
        Self {
            concurrency: 1,
            first_delivery: NaiveFirst::Apply,
        }
    }
}

/// What the naive handler does with a first delivery; later ones it always applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NaiveFirst {
    /// Applies it and acks, as with every delivery.
    Apply,
    /// Stalls for the ack wait + [`FAULT_MARGIN`] (slow, or frozen: a naive handler sends no
    /// progress acks either way), then applies it.
    Stall,
    /// Acks it on receipt, then "crashes" before applying it (simulated: the apply is skipped).
    AckThenCrash,
}

/// What a scenario does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The account's transactions (one per number).
    pub transactions: Vec<PlannedTx>,
    /// The faults to arm and the deliveries, in order.
    pub steps: Vec<Step>,
    /// The naive handler's part.
    pub naive: NaiveSpec,
    /// The fewest account-service replicas the run needs.
    pub min_replicas: usize,
}

impl Plan {
    /// How many messages the run publishes.
    pub fn deliveries(&self) -> usize {
        self.steps
            .iter()
            .filter(|step| matches!(step, Step::Deliver { .. }))
            .count()
    }

    /// The fault the run arms on the account service, if any.
    pub fn fault(&self) -> Option<Fault> {
        self.steps.iter().find_map(|step| match step {
            Step::ArmFault { fault, .. } => Some(*fault),
            Step::Deliver { .. } => None,
        })
    }

    /// How many deliveries the naive handler gets: one per publish, and the redelivery of a
    /// first delivery it stalled on.
    pub fn naive_deliveries(&self) -> usize {
        match self.naive.first_delivery {
            NaiveFirst::Stall => self.deliveries() + 1,
            NaiveFirst::Apply | NaiveFirst::AckThenCrash => self.deliveries(),
        }
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

/// Where runs go: the broker (a JetStream context) and the account service (the base URLs of
/// its replicas).
#[derive(Clone, Debug)]
pub struct ScenarioEnv {
    js: jetstream::Context,
    account_urls: Vec<String>,
    http: reqwest::Client,
    ready_bound: Duration,
    settle_bound: Duration,
}

impl ScenarioEnv {
    /// Runs against this broker and this account service; waits up to 5 s for the service to
    /// be ready and up to 15 s (plus the fault's stall, for the fault scenarios) for it to
    /// settle.
    pub fn new(js: jetstream::Context, account_url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a plain HTTP client builds");
        Self {
            js,
            account_urls: vec![account_url.into().trim_end_matches('/').to_owned()],
            http,
            ready_bound: Duration::from_secs(5),
            settle_bound: Duration::from_secs(15),
        }
    }

    /// Every account-service replica, for the scenarios that arm faults on each (and need two):
    /// the URL given to [`ScenarioEnv::new`] stays first, these follow (repeats are dropped).
    pub fn with_replicas<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for url in urls {
            let url = url.into().trim_end_matches('/').to_owned();
            if !url.is_empty() && !self.account_urls.contains(&url) {
                self.account_urls.push(url);
            }
        }
        self
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

    /// The account service's base URL (the first replica's).
    pub fn account_url(&self) -> &str {
        &self.account_urls[0]
    }

    /// Every account-service replica's base URL.
    pub fn account_urls(&self) -> &[String] {
        &self.account_urls
    }

    /// `GET <path>` on the account service: each replica in turn, until one answers.
    async fn account_get(&self, path: &str) -> Result<reqwest::Response, ScenarioError> {
        let mut problem = String::new();
        for url in &self.account_urls {
            match self.http.get(format!("{url}{path}")).send().await {
                Ok(response) => return Ok(response),
                Err(err) => {
                    problem = format!(
                        "the account service at {url} is unreachable ({})",
                        crate::upstream::describe(err)
                    );
                }
            }
        }
        Err(ScenarioError::Unavailable(problem))
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
    /// How many deliveries the naive handler acknowledged and lost (its simulated crash).
    pub naive_lost: usize,
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
    /// The account service consumer's ack wait, as the broker reports it.
    pub ack_wait_ms: u64,
    /// The fault the run armed on the account service (`slow`, `crash`, `freeze`), if any.
    pub fault: Option<Fault>,
    /// How long its slow or frozen handler stalled (the ack wait + [`FAULT_MARGIN`]).
    pub fault_delay_ms: Option<u64>,
    /// The `+WPI` progress acks the service's handlers sent, as their decision notes report.
    pub progress_acks: u64,
    /// The account-service replicas seen to stop answering during the run (the crash).
    pub replicas_down: Vec<String>,
    /// When the first `TransactionCreated` was published, in milliseconds since the epoch (the
    /// decision notes' `at_ms` are on the same clock).
    pub published_at_ms: i64,
}

/// Runs one scenario against the stack at `env`.
pub async fn run(id: ScenarioId, env: &ScenarioEnv) -> Result<Verdict, ScenarioError> {
    let plan = id.plan();
    let ready = preflight(env, &plan).await?;
    let account = open_account(env, id.info().owner).await?;
    let outcome = run_on(id, env, &plan, &ready, account).await;
    if plan.fault().is_some() {
        // Best effort: a fault that did not fire expires by itself anyway.
        faults::clear(env, &ready.replicas, account).await;
    }
    outcome
}

/// What the preflight found.
struct Ready {
    stream: jetstream::stream::Stream,
    ack_wait: Duration,
    replicas: Vec<Replica>,
}

async fn run_on(
    id: ScenarioId,
    env: &ScenarioEnv,
    plan: &Plan,
    ready: &Ready,
    account: AccountId,
) -> Result<Verdict, ScenarioError> {
    let started = Instant::now();
    let info = id.info();
    let stall = ready.ack_wait + FAULT_MARGIN;
    let mut log = vec![format!("opened account {account} for {:?}", info.owner)];

    let notes = NoteCollector::start(env, account).await;
    let naive = Naive::start(env, account, plan.naive, ready.ack_wait, stall).await?;
    log.push(format!(
        "naive handler started on its own consumer {} (transactions.created, deliver new, ack \
         wait {} like the account service's, no progress acks, {} handler{} at once)",
        naive.consumer,
        seconds(ready.ack_wait),
        plan.naive.concurrency,
        if plan.naive.concurrency == 1 { "" } else { "s" }
    ));

    let publisher = Publisher::new(env.js.clone());
    let mut last_sequence = 0;
    let mut published: Option<(tokio::time::Instant, i64)> = None;
    let mut watch = None;
    let ids: Vec<TransactionId> = plan
        .transactions
        .iter()
        .map(|_| TransactionId::new())
        .collect();
    for step in &plan.steps {
        match *step {
            Step::ArmFault { fault, note } => {
                let delay = (fault != Fault::Crash).then_some(stall);
                faults::arm(env, &ready.replicas, account, fault, delay).await?;
                log.push(format!(
                    "armed a {} fault on {} for this account's first delivery ({note}{})",
                    fault.as_str(),
                    faults::names(&ready.replicas),
                    delay.map_or_else(String::new, |d| format!(": {}", seconds(d)))
                ));
                if fault == Fault::Crash {
                    watch = Some(ReplicaWatch::start(env, &ready.replicas));
                }
            }
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
                published.get_or_insert_with(|| {
                    (
                        tokio::time::Instant::now(),
                        chrono::Utc::now().timestamp_millis(),
                    )
                });
                let done = publisher.publish(&event, None).await.map_err(|err| {
                    ScenarioError::Failed(format!("publishing TransactionCreated: {err}"))
                })?;
                last_sequence = last_sequence.max(done.sequence);
                log.push(format!(
                    "published #{} {} {} ({note}) as event {}, stream sequence {}",
                    planned.number,
                    planned.kind,
                    format_cents(planned.amount),
                    event.id,
                    done.sequence
                ));
            }
        }
    }
    let (published_at, published_at_ms) =
        published.unwrap_or_else(|| (tokio::time::Instant::now(), 0));

    // A stalled handler, and a redelivery after the ack wait, take that much longer.
    let extra = match plan.fault() {
        Some(Fault::Slow | Fault::Freeze) => stall,
        Some(Fault::Crash) => ready.ack_wait,
        None => Duration::ZERO,
    };
    let deadline = published_at + extra + env.settle_bound;
    let naive_done = naive.wait_for(plan.naive_deliveries(), deadline).await;
    let (naive_balance, naive_rejected) = naive.result();
    let naive_lost = naive.lost();
    log.push(format!(
        "naive handler handled {} of {} deliveries: balance {}, {} withdrawal(s) refused{}",
        naive.handled(),
        plan.naive_deliveries(),
        format_cents(naive_balance),
        naive_rejected,
        match naive_lost {
            0 => String::new(),
            n => format!(
                ", {n} acknowledged on receipt and lost: it \"crashed\" before applying (simulated)"
            ),
        }
    ));
    naive.stop(&ready.stream).await;

    // The stalled handler must have woken and decided before the verdict: its note says so,
    // or, without notes, enough time has passed.
    let faulted = match plan.fault() {
        Some(Fault::Slow | Fault::Freeze) => Some(published_at + stall + QUIET),
        _ => None,
    };
    let wait = Settle {
        plan,
        last_sequence,
        faulted,
        deadline,
    };
    let settled = settle(env, &ready.stream, &notes, account, &wait).await?;
    log.push(match settled.evidence {
        Some(evidence) => format!(
            "account service settled: balance {}, last number {}; {evidence}",
            format_cents(settled.balance),
            settled.last
        ),
        None => format!(
            "account service did not settle within {}: balance {}, last number {}",
            seconds(deadline - published_at),
            format_cents(settled.balance),
            settled.last
        ),
    });
    let service_outcomes = ledger(env, account).await.unwrap_or_default();
    let decisions = notes.finish(plan.deliveries()).await;
    let replicas_down = match watch {
        Some(watch) => {
            let (down, lines) = watch.stop(published_at).await;
            log.extend(lines);
            down
        }
        None => Vec::new(),
    };
    if let Some(fault) = plan.fault() {
        log.extend(faults::explain(
            fault,
            &decisions,
            published_at_ms,
            &replicas_down,
        ));
    }

    let truth = plan.truth();
    let expected_last = plan.last_number();
    let done = settled.evidence.is_some();
    let passed = done && settled.balance == truth && settled.last == expected_last;
    let naive_wrong = naive_balance != truth;
    let progress_acks = decisions.iter().filter_map(|n| n.progress_acks).sum();
    let mut verdict = Verdict {
        scenario: info.slug,
        title: info.title,
        account_id: account.to_string(),
        truth,
        naive: naive_balance,
        naive_rejected,
        naive_lost,
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
        ack_wait_ms: ready.ack_wait.as_millis() as u64,
        fault: plan.fault(),
        fault_delay_ms: match plan.fault() {
            Some(Fault::Slow | Fault::Freeze) => Some(stall.as_millis() as u64),
            _ => None,
        },
        progress_acks,
        replicas_down,
        published_at_ms,
    };
    verdict.line = verdict_line(&verdict, deadline - published_at);
    tracing::info!(scenario = info.slug, passed, line = %verdict.line, "scenario ran");
    Ok(verdict)
}

/// `12 s`, `1.5 s`, `40 ms`.
fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        return format!("{} ms", duration.as_millis());
    }
    let secs = duration.as_secs_f64();
    if (secs - secs.round()).abs() < 0.05 {
        format!("{secs:.0} s")
    } else {
        format!("{secs:.1} s")
    }
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
            "FAILED: the account service did not consume every number within {} (expected \
             number {})",
            seconds(bound),
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
/// stream and the account service's consumer on it (whose ack wait the run uses); a plan with a
/// fault finds fault injection on at every replica, and as many replicas as it needs.
async fn preflight(env: &ScenarioEnv, plan: &Plan) -> Result<Ready, ScenarioError> {
    let url = env.account_url();
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
    let info = stream.consumer_info(&durable).await.map_err(|err| {
        ScenarioError::Unavailable(format!(
            "the broker has no {durable} consumer on {} ({err}); does the account service use \
             this broker?",
            TRANSACTIONS.name
        ))
    })?;
    let ack_wait = info.config.ack_wait;
    let known = env.account_urls.len();
    if known < plan.min_replicas {
        return Err(ScenarioError::Unavailable(format!(
            "this scenario needs at least {} account-service replicas (one plays the fault, \
             another takes the redelivery); the console knows {known} ({}): list every replica \
             with --account-url (ACCOUNT_URLS), as `cargo run` does",
            plan.min_replicas,
            env.account_urls.join(", ")
        )));
    }
    let replicas = match plan.fault() {
        Some(_) => faults::check(env).await?,
        None => Vec::new(),
    };
    Ok(Ready {
        stream,
        ack_wait,
        replicas,
    })
}

async fn open_account(env: &ScenarioEnv, owner: &str) -> Result<AccountId, ScenarioError> {
    let url = env.account_url();
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

/// `(balance, last_transaction_number)`, `None` while the account is unknown; from the first
/// replica that answers (one may have crashed).
async fn read_account(
    env: &ScenarioEnv,
    id: AccountId,
) -> Result<Option<(i64, u64)>, ScenarioError> {
    let response = env.account_get(&format!("/api/accounts/{id}")).await?;
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
    let body: Value = env
        .account_get(&format!("/api/accounts/{id}/ledger"))
        .await?
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

/// What [`settle`] waits for.
struct Settle<'a> {
    plan: &'a Plan,
    /// The stream sequence of the last publish.
    last_sequence: u64,
    /// For a stalled handler: it must have noted its decision, or this instant passed (without
    /// notes).
    faulted: Option<tokio::time::Instant>,
    /// When to give up.
    deadline: tokio::time::Instant,
}

/// Polls the account until it reached the plan's last number and every delivery is known to be
/// handled, so a late duplicate cannot change it after the verdict: the service's decision notes
/// say so (one final decision per delivery), or its consumer's ack floor passed the last
/// publish, or, when neither says so (no notes, and other accounts' messages hold the ack floor
/// back), the account did not change for [`QUIET`]. A stalled handler (slow or frozen) must also
/// have woken and decided: its note (which names its fault) says so, or, without notes, the
/// stall and [`QUIET`] have passed. Gives up at the deadline.
async fn settle(
    env: &ScenarioEnv,
    stream: &jetstream::stream::Stream,
    notes: &NoteCollector,
    account: AccountId,
    wait: &Settle<'_>,
) -> Result<Settled, ScenarioError> {
    let durable = ConsumerSpec::account_service().durable;
    let mut since: Option<((i64, u64), tokio::time::Instant)> = None;
    loop {
        let (balance, last) = read_account(env, account).await?.unwrap_or((0, 0));
        let now = tokio::time::Instant::now();
        let woke = wait
            .faulted
            .is_none_or(|fallback| notes.faulted() > 0 || now >= fallback);
        if last >= wait.plan.last_number() && woke {
            let stable = match since {
                Some((seen, at)) if seen == (balance, last) => now.duration_since(at),
                _ => {
                    since = Some(((balance, last), now));
                    Duration::ZERO
                }
            };
            let acked = || async {
                stream.consumer_info(&durable).await.is_ok_and(|info| {
                    info.ack_floor.stream_sequence >= wait.last_sequence
                        || (info.num_ack_pending == 0
                            && info.num_pending == 0
                            && info.delivered.stream_sequence >= wait.last_sequence)
                })
            };
            let evidence = if notes.final_decisions() >= wait.plan.deliveries() {
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
        if now >= wait.deadline {
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
/// once (a withdrawal above the balance is refused, and acked). It sends no progress acks. Its
/// first delivery it may stall on, or lose ([`NaiveFirst`]).
struct NaiveHandler {
    account: AccountId,
    first: NaiveFirst,
    stall: Duration,
    state: Mutex<(i64, usize)>,
    handled: AtomicUsize,
    lost: AtomicUsize,
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
        if ctx.delivered == 1 {
            match self.first {
                NaiveFirst::Apply => {}
                NaiveFirst::Stall => tokio::time::sleep(self.stall).await,
                NaiveFirst::AckThenCrash => {
                    // Acknowledged on receipt; the crash that follows skips the apply.
                    self.lost.fetch_add(1, Ordering::SeqCst);
                    self.handled.fetch_add(1, Ordering::SeqCst);
                    return Outcome::Ack;
                }
            }
        }
        {
            let mut state = self.state.lock().expect("not poisoned");
            let (balance, refused) = apply(state.0, tx.kind, tx.amount.get());
            state.0 = balance;
            state.1 += usize::from(refused);
        }
        self.handled.fetch_add(1, Ordering::SeqCst);
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
    /// Creates its consumer (deliver new, the account service consumer's `ack_wait`) before
    /// returning, so every later publish reaches it.
    async fn start(
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
            state: Mutex::new((0, 0)),
            handled: AtomicUsize::new(0),
            lost: AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        let run = common_events::runner::run(
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

    fn handled(&self) -> usize {
        self.handler.handled.load(Ordering::SeqCst)
    }

    fn lost(&self) -> usize {
        self.handler.lost.load(Ordering::SeqCst)
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

    /// How many noted deliveries had a fault injected (their handler woke and decided).
    fn faulted(&self) -> usize {
        let notes = self.notes.lock().expect("not poisoned");
        notes.iter().filter(|note| note.fault.is_some()).count()
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
        for (id, fault, naive_deliveries, min_replicas) in [
            (ScenarioId::SlowHandler, Fault::Slow, 2, 1),
            (ScenarioId::CrashedReplica, Fault::Crash, 1, 2),
            (ScenarioId::DeadClient, Fault::Freeze, 2, 2),
        ] {
            let plan = id.plan();
            assert_eq!(
                (
                    plan.truth(),
                    plan.last_number(),
                    plan.deliveries(),
                    plan.fault(),
                    plan.naive_deliveries(),
                    plan.min_replicas
                ),
                (100, 1, 1, Some(fault), naive_deliveries, min_replicas),
                "{id:?}"
            );
            assert!(
                matches!(plan.steps[0], Step::ArmFault { .. }),
                "the fault is armed before the publish"
            );
        }
        assert_eq!(ScenarioId::DuplicateDelivery.plan().fault(), None);
    }

    #[test]
    fn the_fault_scenarios_say_what_they_need_and_how_long_they_take() {
        for id in [ScenarioId::SlowHandler, ScenarioId::DeadClient] {
            assert!(id.info().takes.contains("12 s"), "{id:?}");
        }
        for id in [
            ScenarioId::SlowHandler,
            ScenarioId::CrashedReplica,
            ScenarioId::DeadClient,
        ] {
            assert!(
                id.info()
                    .needs
                    .is_some_and(|n| n.contains("--fault-injection")),
                "{id:?}"
            );
        }
        assert_eq!(ScenarioId::OutOfOrder.info().needs, None);
        assert_eq!(seconds(Duration::from_secs(12)), "12 s");
        assert_eq!(seconds(Duration::from_millis(10_140)), "10.1 s");
        assert_eq!(seconds(Duration::from_millis(40)), "40 ms");
    }

    #[test]
    fn a_freeze_is_explained_from_the_decision_notes() {
        let note = |replica: &str, delivered, decision, at_ms, fault: Option<&str>| DecisionNote {
            service: "account-service".into(),
            replica: replica.into(),
            subject: "transactions.created".into(),
            stream_sequence: 1,
            delivered,
            account_id: None,
            transaction_id: None,
            number: Some(1),
            last_transaction_number: Some(0),
            decision,
            detail: None,
            progress_acks: None,
            fault: fault.map(str::to_owned),
            at_ms,
        };
        let notes = [
            note("account-2", 2, DecisionKind::Applied, 10_100, None),
            note(
                "account-1",
                1,
                DecisionKind::Race,
                12_050,
                Some("freeze 12000 ms"),
            ),
        ];
        let lines = faults::explain(Fault::Freeze, &notes, 0, &[]);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines[0].ends_with("#1 applied by account-2 on delivery 2, 10.1 s after the publish")
        );
        assert!(lines[1].contains("race by account-1 on delivery 1, 12.1 s after the publish"));
        assert!(lines[2].contains("no further delivery"));
        let same = [
            note("account-1", 2, DecisionKind::Applied, 10_100, None),
            notes[1].clone(),
        ];
        let lines = faults::explain(Fault::Freeze, &same, 0, &[]);
        assert!(
            lines[0].contains("on the frozen handler's own replica"),
            "{lines:#?}"
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
            naive_lost: 0,
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
            ack_wait_ms: 10_000,
            fault: None,
            fault_delay_ms: None,
            progress_acks: 0,
            replicas_down: vec![],
            published_at_ms: 0,
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
