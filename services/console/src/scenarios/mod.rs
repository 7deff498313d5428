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
//! Five scenarios need more than publishing in an order, so their plans begin with a
//! [`Step::ArmFault`]: the run arms a fault (fail before the ack, slow, freeze, crash) on every
//! account-service replica it knows, through their `/faults` route (fault injection, on only
//! with `--fault-injection`; see the account service's `faults` module), for the scenario
//! account's first delivery; whichever replica gets that delivery plays it, the redelivery
//! passes. The naive handler plays the same fault inside the console ([`NaiveFirst`]). Slow and
//! frozen handlers stall for the service consumer's ack wait + [`FAULT_MARGIN`] (12 s with the
//! default ack wait of 10 s, 4 s with `ACK_WAIT=2s` as the tests run it); in the race of two
//! replicas, each handler that finds the number next holds it for [`RACE_HOLD`] before writing.
//!
//! The scenarios, by the failure mode each shows ([`ScenarioInfo::mode`]; docs/ordering.md has
//! a section on each): (a) [`ScenarioId::FailedBeforeAck`], (b) [`ScenarioId::OutOfOrder`], (c)
//! [`ScenarioId::SlowHandler`], (d) [`ScenarioId::DeadClient`] and, when the dead client's
//! connection drops, [`ScenarioId::CrashedReplica`], (e) [`ScenarioId::DuplicateDelivery`], (f)
//! [`ScenarioId::ReplicaRace`].
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
//! [`Plan`] (its steps, the naive handler's part and the replicas it needs); with a fault, what
//! its decision notes tell ([`explain`]).
//!
//! A tour of the module:
//! - [`catalog`]: [`ScenarioId`], [`ScenarioInfo`] and [`CATALOG`], what the page says;
//! - [`plan`]: [`Plan`] and its [`Step`]s, the naive handler's part ([`NaiveSpec`]) and the
//!   truth;
//! - [`env`]: [`ScenarioEnv`], where runs go, and [`ScenarioError`];
//! - [`run`](mod@run): [`run()`], a run step by step, after [`preflight`] checked the stack;
//! - [`account`]: the scenario account through the account service's HTTP API;
//! - [`naive`]: the naive handler; [`notes`]: the service's decision notes about the account;
//! - [`settle`]: waiting until the service is done;
//! - [`faults`]: arming and clearing the account service's faults; [`explain`]: what the
//!   decision notes say happened;
//! - [`verdict`]: [`Verdict`], its line, and [`RunStats`].

mod account;
mod catalog;
mod env;
mod explain;
mod faults;
mod naive;
mod notes;
mod plan;
mod preflight;
mod run;
mod settle;
mod verdict;

pub use account::LedgerOutcome;

/// The account service's durable consumer of `transactions.created` (its queue group), which a
/// scenario watches to know when the service has caught up. The account service's tests check
/// that it matches the name the service declares.
pub const ACCOUNT_CONSUMER: &str = "account-service";
pub use catalog::{ScenarioId, ScenarioInfo, CATALOG, OWNER_PREFIX};
pub use env::{ScenarioEnv, ScenarioError};
pub use faults::Fault;
pub use plan::{FaultDelay, NaiveFirst, NaiveSpec, Plan, PlannedTx, Step, FAULT_MARGIN, RACE_HOLD};
pub use run::run;
pub use verdict::{RunStats, Verdict};
