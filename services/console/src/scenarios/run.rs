//! A run, step by step: preflight, open the account, start the naive handler, arm the fault and
//! publish in the plan's order, wait for both sides, and conclude with a [`Verdict`].

use std::time::{Duration, Instant};

use common_events::{
    AccountId, Amount, Envelope, Publisher, TransactionCreated, TransactionId, TransactionNumber,
};

use super::account::{ledger, open_account};
use super::explain::explain;
use super::faults::{self, ReplicaWatch};
use super::naive::Naive;
use super::notes::NoteCollector;
use super::preflight::{preflight, Ready};
use super::settle::{settle, Settle, Settled, QUIET};
use super::verdict::{seconds, verdict_line};
use super::{
    Fault, LedgerOutcome, Plan, ScenarioEnv, ScenarioError, ScenarioId, ScenarioInfo, Step, Verdict,
};
use crate::money::format_cents;

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

/// One run in progress: where it goes, what it does, and its log.
struct Run<'a> {
    env: &'a ScenarioEnv,
    plan: &'a Plan,
    ready: &'a Ready,
    account: AccountId,
    /// How long the fault's handler stalls, if it does (the ack wait + [`FAULT_MARGIN`](super::FAULT_MARGIN) for a
    /// slow or frozen one).
    stall: Option<Duration>,
    /// What the run did, step by step.
    log: Vec<String>,
}

/// What the publishing left behind.
struct Published {
    /// When the first `TransactionCreated` was published, on the monotonic clock.
    at: tokio::time::Instant,
    /// The same, in milliseconds since the epoch (0 without a publish).
    at_ms: i64,
    /// The stream sequence of the last publish.
    last_sequence: u64,
    /// The watch on the replicas, for a crash.
    watch: Option<ReplicaWatch>,
}

/// What the naive handler ended with.
struct NaiveEnd {
    balance: i64,
    rejected: usize,
    lost: usize,
    /// It handled every delivery in time.
    done: bool,
}

/// What the run saw of the account service after it settled.
struct Observed {
    settled: Settled,
    service_outcomes: Vec<LedgerOutcome>,
    decisions: Vec<common_events::observe::DecisionNote>,
    replicas_down: Vec<String>,
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
    let mut run = Run {
        env,
        plan,
        ready,
        account,
        stall: plan.fault_delay(ready.ack_wait),
        log: vec![format!("opened account {account} for {:?}", info.owner)],
    };
    let notes = NoteCollector::start(env, account).await;
    let naive_stall = run.stall.unwrap_or_default();
    let naive = Naive::start(env, account, plan.naive, ready.ack_wait, naive_stall).await?;
    run.log_naive_started(&naive);
    let mut published = run.publish().await?;
    let deadline = published.at + run.extra_wait() + env.settle_bound;
    let naive = run.finish_naive(naive, deadline).await;
    let settled = run.settle(&notes, &published, deadline).await?;
    let service_outcomes = ledger(env, account).await.unwrap_or_default();
    let decisions = notes.finish(plan.service_decisions()).await;
    let replicas_down = match published.watch.take() {
        Some(watch) => {
            let (down, lines) = watch.stop(published.at).await;
            run.log.extend(lines);
            down
        }
        None => Vec::new(),
    };
    if plan.fault().is_some() {
        run.log
            .extend(explain(id, &decisions, published.at_ms, &replicas_down));
    }
    let observed = Observed {
        settled,
        service_outcomes,
        decisions,
        replicas_down,
    };
    let verdict = run.conclude(info, started, naive, observed, &published, deadline);
    tracing::info!(scenario = info.slug, passed = verdict.passed, line = %verdict.line, "scenario ran");
    Ok(verdict)
}

impl Run<'_> {
    fn log_naive_started(&mut self, naive: &Naive) {
        let concurrency = self.plan.naive.concurrency;
        self.log.push(format!(
            "naive handler started on its own consumer {} (transactions.created, deliver new, ack \
             wait {} like the account service's, no progress acks, {} handler{} at once)",
            naive.consumer,
            seconds(self.ready.ack_wait),
            concurrency,
            if concurrency == 1 { "" } else { "s" }
        ));
    }

    /// Plays the plan's steps: arms its fault, publishes its deliveries.
    async fn publish(&mut self) -> Result<Published, ScenarioError> {
        let publisher = Publisher::new(self.env.js.clone());
        let mut last_sequence = 0;
        let mut first: Option<(tokio::time::Instant, i64)> = None;
        let mut watch = None;
        let ids: Vec<TransactionId> = self
            .plan
            .transactions
            .iter()
            .map(|_| TransactionId::new())
            .collect();
        for step in &self.plan.steps {
            match *step {
                Step::ArmFault { fault, note, .. } => watch = self.arm(fault, note).await?,
                Step::Deliver { tx, note } => {
                    first.get_or_insert_with(|| {
                        (
                            tokio::time::Instant::now(),
                            chrono::Utc::now().timestamp_millis(),
                        )
                    });
                    let sequence = self.deliver(&publisher, tx, ids[tx], note).await?;
                    last_sequence = last_sequence.max(sequence);
                }
            }
        }
        let (at, at_ms) = first.unwrap_or_else(|| (tokio::time::Instant::now(), 0));
        Ok(Published {
            at,
            at_ms,
            last_sequence,
            watch,
        })
    }

    /// Arms `fault` on every replica; a crash starts a watch on them.
    async fn arm(
        &mut self,
        fault: Fault,
        note: &str,
    ) -> Result<Option<ReplicaWatch>, ScenarioError> {
        let (env, replicas) = (self.env, &self.ready.replicas);
        let delay = self.stall;
        faults::arm(env, replicas, self.account, fault, delay).await?;
        self.log.push(format!(
            "armed a {} fault on {} for this account's first delivery ({note}{})",
            fault.as_str(),
            faults::names(replicas),
            delay.map_or_else(String::new, |d| format!(": {}", seconds(d)))
        ));
        Ok((fault == Fault::Crash).then(|| ReplicaWatch::start(env, replicas)))
    }

    /// Publishes `TransactionCreated` for `transactions[tx]`; its stream sequence.
    async fn deliver(
        &mut self,
        publisher: &Publisher,
        tx: usize,
        id: TransactionId,
        note: &str,
    ) -> Result<u64, ScenarioError> {
        let planned = self.plan.transactions[tx];
        let failed = |err: &dyn std::fmt::Display| ScenarioError::Failed(err.to_string());
        let number = TransactionNumber::new(planned.number).map_err(|err| failed(&err))?;
        let event = Envelope::new(TransactionCreated {
            transaction_id: id,
            account_id: self.account,
            number,
            kind: planned.kind,
            amount: Amount::new(planned.amount).map_err(|err| failed(&err))?,
        })
        .correlated(id.0);
        let done = publisher.publish(&event, None).await.map_err(|err| {
            ScenarioError::Failed(format!("publishing TransactionCreated: {err}"))
        })?;
        self.log.push(format!(
            "published #{} {} {} ({note}) as event {}, stream sequence {}",
            planned.number,
            planned.kind,
            format_cents(planned.amount),
            event.id,
            done.sequence
        ));
        Ok(done.sequence)
    }

    /// How much longer than the settle bound the run waits: a stalled handler, and a redelivery
    /// after the ack wait, take that much longer.
    fn extra_wait(&self) -> Duration {
        match self.plan.fault() {
            Some(Fault::Crash) => self.ready.ack_wait,
            _ => self.stall.unwrap_or_default(),
        }
    }

    /// Waits for the naive handler's deliveries (bounded), reads its result and stops it.
    async fn finish_naive(&mut self, naive: Naive, deadline: tokio::time::Instant) -> NaiveEnd {
        let expected = self.plan.naive_deliveries();
        let done = naive.wait_for(expected, deadline).await;
        let (balance, rejected) = naive.result();
        let lost = naive.lost();
        self.log.push(format!(
            "naive handler handled {} of {} deliveries: balance {}, {} withdrawal(s) refused{}",
            naive.handled(),
            expected,
            format_cents(balance),
            rejected,
            match lost {
                0 => String::new(),
                n => format!(
                    ", {n} acknowledged on receipt and lost: it \"crashed\" before applying \
                     (simulated)"
                ),
            }
        ));
        naive.stop(&self.ready.stream).await;
        NaiveEnd {
            balance,
            rejected,
            lost,
            done,
        }
    }

    /// Waits for the account service to settle, and says how it did.
    async fn settle(
        &mut self,
        notes: &NoteCollector,
        published: &Published,
        deadline: tokio::time::Instant,
    ) -> Result<Settled, ScenarioError> {
        // The stalled handler must have woken and decided before the verdict: its note says
        // so, or, without notes, enough time has passed.
        let faulted = self.stall.map(|stall| published.at + stall + QUIET);
        let wait = Settle {
            plan: self.plan,
            last_sequence: published.last_sequence,
            faulted,
            deadline,
        };
        let settled = settle(self.env, &self.ready.stream, notes, self.account, &wait).await?;
        self.log.push(match settled.evidence {
            Some(evidence) => format!(
                "account service settled: balance {}, last number {}; {evidence}",
                format_cents(settled.balance),
                settled.last
            ),
            None => format!(
                "account service did not settle within {}: balance {}, last number {}",
                seconds(deadline - published.at),
                format_cents(settled.balance),
                settled.last
            ),
        });
        Ok(settled)
    }

    /// The verdict: both balances against the truth, and the line that says so.
    fn conclude(
        self,
        info: &ScenarioInfo,
        started: Instant,
        naive: NaiveEnd,
        seen: Observed,
        published: &Published,
        deadline: tokio::time::Instant,
    ) -> Verdict {
        let (plan, settled) = (self.plan, &seen.settled);
        let truth = plan.truth();
        let expected_last = plan.last_number();
        let done = settled.evidence.is_some();
        let passed = done && settled.balance == truth && settled.last == expected_last;
        let mut verdict = Verdict {
            scenario: info.slug,
            title: info.title,
            account_id: self.account.to_string(),
            truth,
            naive: naive.balance,
            naive_rejected: naive.rejected,
            naive_lost: naive.lost,
            service: settled.balance,
            service_last_number: settled.last,
            expected_last_number: expected_last,
            service_outcomes: seen.service_outcomes,
            progress_acks: seen.decisions.iter().filter_map(|n| n.progress_acks).sum(),
            decisions: seen.decisions,
            settled: done && naive.done,
            naive_wrong: naive.balance != truth,
            passed,
            line: String::new(),
            steps: self.log,
            elapsed_ms: started.elapsed().as_millis() as u64,
            ack_wait_ms: self.ready.ack_wait.as_millis() as u64,
            fault: plan.fault(),
            fault_delay_ms: self.stall.map(|stall| stall.as_millis() as u64),
            replicas_down: seen.replicas_down,
            published_at_ms: published.at_ms,
        };
        verdict.line = verdict_line(&verdict, deadline - published.at);
        verdict
    }
}
