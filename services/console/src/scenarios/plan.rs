//! A scenario's plan: the account's transactions, the steps of a run (arm a fault, deliver),
//! the naive handler's part, and the truth a sequential replay gives.

use std::time::Duration;

use common_events::TransactionKind;
use serde::Serialize;

use super::{Fault, ScenarioId};

/// How much longer than the ack wait a slow or frozen handler stalls: long enough for the
/// broker to have redelivered a message whose handler sent no progress ack.
pub const FAULT_MARGIN: Duration = Duration::from_secs(2);

/// How long each racing handler holds the number it found next before writing, in the race
/// of two replicas: ample for the other copy to be delivered and decided meanwhile.
pub const RACE_HOLD: Duration = Duration::from_secs(1);

impl ScenarioId {
    /// What a run does, and in which order.
    pub fn plan(self) -> Plan {
        let deliver = |tx, note| Step::Deliver { tx, note };
        let ordering = |transactions, steps| Plan {
            transactions,
            steps,
            naive: NaiveSpec::default(),
            min_replicas: 1,
        };
        let arm = |fault, delay, note| Step::ArmFault { fault, delay, note };
        let with_fault = |fault, delay, note, naive, min_replicas| Plan {
            transactions: vec![PlannedTx::deposit(1, 100)],
            steps: vec![arm(fault, delay, note), deliver(0, "once")],
            naive,
            min_replicas,
        };
        let naive = |concurrency, first_delivery| NaiveSpec {
            concurrency,
            first_delivery,
        };
        // A stalled naive handler needs a second handler free for the redelivery.
        let stalls = naive(2, NaiveFirst::Stall);
        match self {
            ScenarioId::FailedBeforeAck => with_fault(
                Fault::FailBeforeAck,
                FaultDelay::None,
                "its handler commits, then fails before its ack and hands it back",
                naive(1, NaiveFirst::FailBeforeAck),
                1,
            ),
            ScenarioId::OutOfOrder => ordering(
                vec![PlannedTx::deposit(1, 100), PlannedTx::withdrawal(2, 60)],
                vec![
                    deliver(1, "first: the faster replica's"),
                    deliver(0, "second: the slower replica's"),
                ],
            ),
            ScenarioId::SlowHandler => with_fault(
                Fault::Slow,
                FaultDelay::PastAckWait,
                "its handler stalls for the ack wait + 2 s, progress acks going on",
                stalls,
                1,
            ),
            ScenarioId::DeadClient => with_fault(
                Fault::Freeze,
                FaultDelay::PastAckWait,
                "its handler freezes for the ack wait + 2 s: no progress acks",
                stalls,
                2,
            ),
            ScenarioId::CrashedReplica => with_fault(
                Fault::Crash,
                FaultDelay::None,
                "its replica aborts before committing",
                naive(1, NaiveFirst::AckThenCrash),
                2,
            ),
            ScenarioId::DuplicateDelivery => ordering(
                vec![PlannedTx::deposit(1, 100)],
                vec![
                    deliver(0, "the first delivery"),
                    deliver(0, "again: a duplicate"),
                ],
            ),
            ScenarioId::ReplicaRace => Plan {
                transactions: vec![PlannedTx::deposit(1, 100)],
                steps: vec![
                    arm(
                        Fault::Slow,
                        FaultDelay::Fixed(RACE_HOLD),
                        "the handler that finds it next holds it before writing",
                    ),
                    deliver(0, "a copy for one replica"),
                    deliver(0, "at once, a copy for the other"),
                ],
                naive: naive(2, NaiveFirst::CheckThenWrite),
                min_replicas: 2,
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
    /// Arm `fault` on every account-service replica for the scenario account's first delivery
    /// (it fires once, on the replica that gets it; the redelivery passes).
    ArmFault {
        /// What the replica's handler does.
        fault: Fault,
        /// How long a slow or frozen handler stalls.
        delay: FaultDelay,
        /// Said in the run's log.
        note: &'static str,
    },
}

/// How long a fault's handler stalls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultDelay {
    /// Not at all (a crash, a failure before the ack).
    None,
    /// The service consumer's ack wait + [`FAULT_MARGIN`]: past the point where the broker
    /// redelivers a message without progress acks.
    PastAckWait,
    /// This long.
    Fixed(Duration),
}

impl FaultDelay {
    /// The stall with this `ack_wait`, if any.
    pub fn with_ack_wait(self, ack_wait: Duration) -> Option<Duration> {
        match self {
            FaultDelay::None => None,
            FaultDelay::PastAckWait => Some(ack_wait + FAULT_MARGIN),
            FaultDelay::Fixed(delay) => Some(delay),
        }
    }
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
    /// Applies it, then fails before its ack: hands it back, to be redelivered at once.
    FailBeforeAck,
    /// Checks its number against the last one it applied, holds for the plan's fault delay
    /// (while the other copy is checked too), then applies it and records its number: a check
    /// and a write that are not one step.
    CheckThenWrite,
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

    /// The fault the run arms on the account service, and how long it stalls, if any.
    pub fn fault_step(&self) -> Option<(Fault, FaultDelay)> {
        self.steps.iter().find_map(|step| match step {
            Step::ArmFault { fault, delay, .. } => Some((*fault, *delay)),
            Step::Deliver { .. } => None,
        })
    }

    /// The fault the run arms on the account service, if any.
    pub fn fault(&self) -> Option<Fault> {
        self.fault_step().map(|(fault, _)| fault)
    }

    /// How long the fault's handler stalls with this `ack_wait`, if it does.
    pub fn fault_delay(&self, ack_wait: Duration) -> Option<Duration> {
        self.fault_step()?.1.with_ack_wait(ack_wait)
    }

    /// How many final decisions (applied, rejected, duplicate) the account service takes: one
    /// per publish, and one more for a delivery it applied and then handed back (its
    /// redelivery is a duplicate).
    pub fn service_decisions(&self) -> usize {
        self.deliveries() + usize::from(self.fault() == Some(Fault::FailBeforeAck))
    }

    /// How many deliveries the naive handler gets: one per publish, and the redelivery of a
    /// first delivery it stalled on or handed back.
    pub fn naive_deliveries(&self) -> usize {
        match self.naive.first_delivery {
            NaiveFirst::Stall | NaiveFirst::FailBeforeAck => self.deliveries() + 1,
            NaiveFirst::Apply | NaiveFirst::AckThenCrash | NaiveFirst::CheckThenWrite => {
                self.deliveries()
            }
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
pub(super) fn apply(balance: i64, kind: TransactionKind, amount: i64) -> (i64, bool) {
    match kind {
        TransactionKind::Deposit => (balance + amount, false),
        TransactionKind::Withdrawal if balance >= amount => (balance - amount, false),
        TransactionKind::Withdrawal => (balance, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_truth_is_a_replay_in_number_order() {
        let reordered = ScenarioId::OutOfOrder.plan();
        assert_eq!(
            (
                reordered.truth(),
                reordered.last_number(),
                reordered.deliveries(),
                reordered.fault()
            ),
            (40, 2, 2, None)
        );
        let duplicate = ScenarioId::DuplicateDelivery.plan();
        assert_eq!(
            (
                duplicate.truth(),
                duplicate.last_number(),
                duplicate.deliveries(),
                duplicate.fault()
            ),
            (100, 1, 2, None)
        );
    }

    #[test]
    fn the_fault_plans_arm_their_fault_before_publishing() {
        let ack_wait = Duration::from_secs(2);
        let stall = Some(Duration::from_secs(4));
        for (id, fault, delay, deliveries, decisions, naive_deliveries, min_replicas) in [
            (
                ScenarioId::FailedBeforeAck,
                Fault::FailBeforeAck,
                None,
                1,
                2,
                2,
                1,
            ),
            (ScenarioId::SlowHandler, Fault::Slow, stall, 1, 1, 2, 1),
            (ScenarioId::DeadClient, Fault::Freeze, stall, 1, 1, 2, 2),
            (ScenarioId::CrashedReplica, Fault::Crash, None, 1, 1, 1, 2),
            (
                ScenarioId::ReplicaRace,
                Fault::Slow,
                Some(RACE_HOLD),
                2,
                2,
                2,
                2,
            ),
        ] {
            let plan = id.plan();
            assert_eq!(
                (
                    plan.truth(),
                    plan.last_number(),
                    plan.deliveries(),
                    plan.service_decisions(),
                    plan.fault(),
                    plan.fault_delay(ack_wait),
                    plan.naive_deliveries(),
                    plan.min_replicas
                ),
                (
                    100,
                    1,
                    deliveries,
                    decisions,
                    Some(fault),
                    delay,
                    naive_deliveries,
                    min_replicas
                ),
                "{id:?}"
            );
            assert!(
                matches!(plan.steps[0], Step::ArmFault { .. }),
                "the fault is armed before the publish"
            );
        }
    }
}
