//! The catalog: which scenarios there are, and what the page says about each before it runs.

use serde::{Deserialize, Serialize};

/// Owners of scenario accounts start with this.
pub const OWNER_PREFIX: &str = "scenario: ";

/// The scenarios there are: the six failure modes of delivery, (a) to (f), the dead client's
/// in two forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScenarioId {
    /// (a) A deposit whose handler commits, then fails before its ack: it is redelivered.
    FailedBeforeAck,
    /// (b) A withdrawal (#2) arriving before its deposit (#1): one replica was faster.
    OutOfOrder,
    /// (c) A deposit whose first handler takes longer than the ack wait.
    SlowHandler,
    /// (d) A deposit whose first handler freezes past the ack wait, then wakes up.
    DeadClient,
    /// (d) A deposit whose first handler's process crashes before committing: its connection
    /// drops (the broker may redeliver at once).
    CrashedReplica,
    /// (e) A deposit delivered twice.
    DuplicateDelivery,
    /// (f) Two replicas holding the same number at once, both finding it next.
    ReplicaRace,
}

/// What the page says about a scenario before it runs.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ScenarioInfo {
    /// Which.
    pub id: ScenarioId,
    /// Its URL name: `duplicate-delivery`.
    pub slug: &'static str,
    /// The failure mode it shows, as docs/ordering.md letters them: `a` to `f`.
    pub mode: char,
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

const FAULTS: &str = "fault injection (--fault-injection) on every account-service replica";
const FAULTS_AND_TWO: &str =
    "fault injection (--fault-injection) on every account-service replica, and two replicas";

/// Every scenario, in the order the page shows them: by failure mode.
pub const CATALOG: &[ScenarioInfo] = &[
    ScenarioInfo {
        id: ScenarioId::FailedBeforeAck,
        slug: "failed-before-ack",
        mode: 'a',
        title: "Failed before the ack",
        owner: "scenario: failed before the ack",
        summary: "The handler of a deposit of 1.00 (#1) writes it, then fails before \
                  acknowledging it (an error after the commit, a connection lost before the ack \
                  went out): the broker delivers #1 again.",
        naive_expectation: "applied #1, failed, and applies the redelivery again: 2.00",
        service_expectation: "committed #1 and its number together, so the redelivery finds \
                              number 1 consumed: a duplicate, acknowledged: 1.00 at number 1",
        takes: "about a second",
        needs: Some(FAULTS),
    },
    ScenarioInfo {
        id: ScenarioId::OutOfOrder,
        slug: "out-of-order",
        mode: 'b',
        title: "Out-of-order arrival",
        owner: "scenario: out-of-order arrival",
        summary: "A withdrawal of 0.60 (#2) arrives before the deposit of 1.00 (#1) that pays for \
                  it: the replica that sent #2 was faster than the one that sent #1, or a \
                  handed-back message came back after later ones.",
        naive_expectation: "rejects the withdrawal for funds that were on their way: 1.00",
        service_expectation: "holds #2 back until #1 is in, then applies both in number order: \
                              0.40 at number 2",
        takes: "about a second",
        needs: None,
    },
    ScenarioInfo {
        id: ScenarioId::SlowHandler,
        slug: "slow-handler",
        mode: 'c',
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
        takes: "the ack wait + 2 s: 12 s with the default ack wait of 10 s",
        needs: Some(FAULTS),
    },
    ScenarioInfo {
        id: ScenarioId::DeadClient,
        slug: "dead-client",
        mode: 'd',
        title: "Dead client",
        owner: "scenario: dead client",
        summary: "The handler of the first delivery of a deposit of 1.00 (#1) freezes without \
                  closing its connection (a stopped process, a long pause, a partition): the \
                  broker still thinks it alive and waits the ack wait before redelivering; 2 s \
                  later it wakes up and commits its stale copy.",
        naive_expectation: "the redelivery is applied by another handler, then the frozen one \
                            wakes up and applies its stale copy again: 2.00",
        service_expectation: "the redelivery is applied; the stale commit's conditional update \
                              (where last_transaction_number = number - 1) matches nothing: a \
                              race, handed back: 1.00 at number 1",
        takes: "the ack wait + 2 s: 12 s with the default ack wait of 10 s",
        needs: Some(FAULTS_AND_TWO),
    },
    ScenarioInfo {
        id: ScenarioId::CrashedReplica,
        slug: "crashed-replica",
        mode: 'd',
        title: "Crashed replica",
        owner: "scenario: crashed replica",
        summary: "The replica handling the first delivery of a deposit of 1.00 (#1) crashes \
                  before committing it (like kill -9): a client dead for good, whose connection \
                  drops, so a broker that redelivers on disconnect need not wait the ack wait.",
        naive_expectation: "acknowledged #1 on receipt, then crashed before applying it: the \
                            broker never delivers it again, the deposit is lost: 0.00",
        service_expectation: "acknowledges only after the commit, so the broker redelivers #1 \
                              (at once on the bundled broker, after the ack wait on nats-server) \
                              to another replica or the restarted one: 1.00 at number 1",
        takes: "a second on the bundled broker, the ack wait (10 s by default) on nats-server",
        needs: Some(
            "fault injection (--fault-injection) on every account-service replica, and two \
             replicas (one crashes; the bank restarts it)",
        ),
    },
    ScenarioInfo {
        id: ScenarioId::DuplicateDelivery,
        slug: "duplicate-delivery",
        mode: 'e',
        title: "Duplicate delivery",
        owner: "scenario: duplicate delivery",
        summary: "A deposit of 1.00 (#1) is delivered twice, one copy after the other: a \
                  producer retried a publish whose confirmation it did not get, or a relay \
                  re-published it after the stream's duplicate window.",
        naive_expectation: "applies the second copy again: 2.00",
        service_expectation: "applies #1 once and acks the second delivery as a duplicate: 1.00 \
                              at number 1",
        takes: "about a second",
        needs: None,
    },
    ScenarioInfo {
        id: ScenarioId::ReplicaRace,
        slug: "replica-race",
        mode: 'f',
        title: "Two replicas racing on one number",
        owner: "scenario: two replicas racing",
        summary: "Two copies of a deposit of 1.00 (#1) reach two handlers at once (a redelivery \
                  while the first still works, or a duplicate): both read the account at \
                  number 0 and find #1 next before either writes.",
        naive_expectation: "even checking the number does not help: both handlers pass the \
                            check before either records #1, and both apply it: 2.00",
        service_expectation: "both commit with where last_transaction_number = 0; only the \
                              first matches, the other is a race, handed back and acknowledged \
                              as a duplicate: 1.00 at number 1",
        takes: "about 2 s",
        needs: Some(FAULTS_AND_TWO),
    },
];

impl ScenarioId {
    /// Every scenario.
    pub const ALL: [ScenarioId; 7] = [
        ScenarioId::FailedBeforeAck,
        ScenarioId::OutOfOrder,
        ScenarioId::SlowHandler,
        ScenarioId::DeadClient,
        ScenarioId::CrashedReplica,
        ScenarioId::DuplicateDelivery,
        ScenarioId::ReplicaRace,
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
    fn every_failure_mode_has_a_scenario_in_order() {
        let modes: String = CATALOG.iter().map(|info| info.mode).collect();
        assert_eq!(modes, "abcddef");
        let in_order: Vec<ScenarioId> = CATALOG.iter().map(|info| info.id).collect();
        assert_eq!(in_order, ScenarioId::ALL);
    }

    #[test]
    fn the_fault_scenarios_say_what_they_need_and_how_long_they_take() {
        for id in [ScenarioId::SlowHandler, ScenarioId::DeadClient] {
            assert!(id.info().takes.contains("12 s"), "{id:?}");
        }
        for id in ScenarioId::ALL {
            let needs_faults = id
                .info()
                .needs
                .is_some_and(|n| n.contains("--fault-injection"));
            assert_eq!(needs_faults, id.plan().fault().is_some(), "{id:?}");
            let needs_two = id.info().needs.is_some_and(|n| n.contains("two replicas"));
            assert_eq!(needs_two, id.plan().min_replicas == 2, "{id:?}");
        }
    }
}
