//! Runs each scenario once per target with libtest-mimic, so trials are named
//! `<broker>/<database>::<scenario>` and can be filtered (`-- sqlite::gap`).
//!
//! A target that cannot run here is reported as ignored, with the reason printed, except in CI,
//! where it runs and fails with that reason.

use std::future::Future;
use std::pin::Pin;

use libtest_mimic::{Arguments, Failed, Trial};

use crate::brokers::{broker_targets, wanted, BrokerTarget};
use crate::databases::{database_targets, DatabaseTarget};

/// The future a scenario returns.
pub type ScenarioFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// One test, written once, run against every target.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// The sentence naming it: `gap_in_sequence_is_not_acked`.
    pub name: &'static str,
    /// The test itself.
    pub run: fn(Target) -> ScenarioFuture,
    /// The targets it runs on, when not all (a slow test run on fewer, say); on the others it
    /// has no trial.
    pub only: Option<fn(&Target) -> bool>,
}

/// What one trial runs against.
#[derive(Clone, Debug)]
pub struct Target {
    /// The broker to start.
    pub broker: BrokerTarget,
    /// The database to use (`None` for suites without one).
    pub database: Option<DatabaseTarget>,
}

impl Target {
    /// The database, for suites that have one.
    pub fn database(&self) -> DatabaseTarget {
        self.database.unwrap_or(DatabaseTarget::Sqlite)
    }

    /// Whether this is the `broker/database` target (`"nats-server"`, `"sqlite"`).
    pub fn is(&self, broker: &str, database: &str) -> bool {
        self.broker.name() == broker && self.database().name() == database
    }
}

/// Whether a suite runs over databases too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axes {
    /// Brokers only.
    Brokers,
    /// Every broker × every database.
    BrokersAndDatabases,
}

/// Runs `scenarios` over every target and exits with libtest's status.
pub fn run(scenarios: &[Scenario], axes: Axes) -> ! {
    run_with(scenarios, axes, Vec::new())
}

/// Like [`run`], with `extra` targets after the table's (the `nats-cluster` target of the
/// end-to-end test, say); `TEST_BROKERS` narrows them too.
pub fn run_with(scenarios: &[Scenario], axes: Axes, extra: Vec<Target>) -> ! {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    let extra = extra.into_iter().filter(|t| wanted(&t.broker));
    for target in targets(axes).into_iter().chain(extra) {
        let unavailable = target
            .broker
            .unavailable()
            .or_else(|| target.database?.unavailable());
        let label = match target.database {
            Some(db) => format!("{}/{}", target.broker, db),
            None => target.broker.to_string(),
        };
        if let Some(reason) = &unavailable {
            eprintln!("note: {label} unavailable ({reason}); its trials are ignored outside CI");
        }
        for scenario in scenarios {
            if scenario.only.is_some_and(|only| !only(&target)) {
                continue;
            }
            let trial_target = target.clone();
            let scenario = *scenario;
            let reason = unavailable.clone();
            let trial = Trial::test(format!("{label}::{}", scenario.name), move || {
                if let Some(reason) = reason {
                    return Err(Failed::from(format!("target unavailable in CI: {reason}")));
                }
                run_one(scenario, trial_target)
            });
            trials.push(trial.with_ignored_flag(unavailable.is_some() && !crate::in_ci()));
        }
    }
    libtest_mimic::run(&args, trials).exit()
}

fn targets(axes: Axes) -> Vec<Target> {
    let mut targets = Vec::new();
    for broker in broker_targets() {
        match axes {
            Axes::Brokers => targets.push(Target {
                broker: broker.clone(),
                database: None,
            }),
            Axes::BrokersAndDatabases => {
                targets.extend(database_targets().into_iter().map(|db| Target {
                    broker: broker.clone(),
                    database: Some(db),
                }))
            }
        }
    }
    targets
}

fn run_one(scenario: Scenario, target: Target) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| Failed::from(format!("building a runtime: {err}")))?;
    runtime
        .block_on((scenario.run)(target))
        .map_err(|err| Failed::from(format!("{err:#}")))
}
