//! What `load` prints: the settings, the machine's load and the figures, as a summary for people
//! or, with `--json`, as one JSON object for scripts.

use std::time::Duration;

use e2e_tests::figures::{ClosedFigures, OpenFigures};
use serde::Serialize;
use service_kit::config::redact_url;

use crate::spawn::Broker;
use crate::Args;

/// A run's figures, by mode.
#[derive(Serialize)]
#[serde(tag = "mode", content = "figures", rename_all = "kebab-case")]
pub enum Figures {
    /// `--concurrency`.
    Closed(ClosedFigures),
    /// `--rate`.
    Open(OpenFigures),
}

/// Everything `load` reports.
#[derive(Serialize)]
pub struct Output {
    settings: Settings,
    /// CPUs of this machine.
    cpus: usize,
    /// The one-minute load average before and after the run.
    load_average: [Option<f64>; 2],
    #[serde(flatten)]
    figures: Figures,
    /// With `--check`: whether the invariants held, and on how much.
    invariants: Option<Invariants>,
}

/// The settings of a run, without the broker credentials.
#[derive(Serialize)]
struct Settings {
    accounts: u32,
    /// Closed loop: transactions; open loop without --duration: transactions measured.
    transactions: u64,
    concurrency: Option<u32>,
    rate: Option<u32>,
    duration_s: Option<f64>,
    warmup_s: Option<f64>,
    max_in_flight: Option<usize>,
    /// What it started: `None` when it drove running services.
    broker: Option<Broker>,
    replicas: Option<u32>,
    /// `sqlite`, or the PostgreSQL server's URL (password hidden); `None` when it drove running
    /// services.
    database: Option<String>,
    /// The services it drove, when running already.
    account_url: Option<String>,
    transaction_url: Option<String>,
    nats_url: Option<String>,
    check: bool,
}

/// What `--check` found.
#[derive(Serialize)]
struct Invariants {
    held: bool,
    accounts: usize,
    /// The ledger entries checked, when the invariants held.
    ledger_entries: Option<usize>,
    /// The violation, when one was found (or the check could not run).
    violation: Option<String>,
}

impl Output {
    /// The output of a run with `args`, which began at load average `load_before`.
    pub fn new(args: &Args, load_before: Option<f64>, figures: Figures) -> Self {
        let plan = args.plan();
        let secs = |d: Duration| d.as_secs_f64();
        let started = !args.external();
        let settings = Settings {
            accounts: args.accounts,
            transactions: args.transactions,
            concurrency: plan.is_none().then_some(args.concurrency),
            rate: args.rate,
            duration_s: plan.as_ref().map(|p| secs(p.duration)),
            warmup_s: plan.as_ref().map(|p| secs(p.warmup)),
            max_in_flight: plan.as_ref().map(|p| p.max_in_flight),
            broker: started.then_some(args.broker),
            replicas: started.then_some(args.replicas),
            database: started.then(|| match &args.postgres {
                Some(url) => redact_url(url),
                None => "sqlite".to_owned(),
            }),
            account_url: args.account_url.clone(),
            transaction_url: args.transaction_url.clone(),
            nats_url: args.nats_url.as_deref().map(redact_url),
            check: args.check,
        };
        Self {
            settings,
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_average: [load_before, load_average()],
            figures,
            invariants: None,
        }
    }

    /// Records what the check of the invariants on `accounts` accounts found: the ledger
    /// entries checked, or the violation.
    pub fn set_invariants(&mut self, accounts: usize, checked: Result<usize, String>) {
        self.invariants = Some(Invariants {
            held: checked.is_ok(),
            accounts,
            ledger_entries: checked.as_ref().ok().copied(),
            violation: checked.err(),
        });
    }

    /// Prints the figures' summary and the machine's load on stdout.
    pub fn print_figures(&self) {
        match &self.figures {
            Figures::Closed(figures) => println!("{}", figures.summary()),
            Figures::Open(figures) => println!("{}", figures.summary()),
        }
        let load = |l: Option<f64>| l.map_or("?".to_owned(), |l| format!("{l:.2}"));
        println!(
            "{} CPUs, load average {} before, {} after",
            self.cpus,
            load(self.load_average[0]),
            load(self.load_average[1])
        );
    }

    /// Prints that the invariants held, if they did (a violation is the verdict's error).
    pub fn print_invariants(&self) {
        if let Some(Invariants {
            accounts,
            ledger_entries: Some(entries),
            ..
        }) = &self.invariants
        {
            println!(
                "invariants hold on {accounts} accounts ({entries} ledger entries): every \
                 transaction settled once, numbers 1..n, balance = replay, never negative"
            );
        }
    }

    /// An error when a request failed (the figures do not describe the stack then) or an
    /// invariant did not hold.
    pub fn verdict(&self) -> anyhow::Result<()> {
        if let Figures::Open(OpenFigures {
            failed,
            first_failure,
            ..
        }) = &self.figures
        {
            anyhow::ensure!(
                *failed == 0,
                "{failed} requests failed; the first: {}",
                first_failure.as_deref().unwrap_or("?")
            );
        }
        if let Some(Invariants {
            violation: Some(violation),
            ..
        }) = &self.invariants
        {
            anyhow::bail!("{violation}");
        }
        Ok(())
    }
}

/// The one-minute load average, from `/proc/loadavg` (Linux).
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}
