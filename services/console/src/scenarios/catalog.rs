//! The catalog: which scenarios there are, and what the page says about each before it runs.

use serde::{Deserialize, Serialize};

/// Owners of scenario accounts start with this.
pub const OWNER_PREFIX: &str = "scenario: ";

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
    }
}
