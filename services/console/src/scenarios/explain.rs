//! What the decision notes say happened in a fault scenario: the faulted delivery, its
//! redelivery and what came after, in lines for the run's log.

use std::time::Duration;

use common_events::observe::{DecisionKind, DecisionNote};

use super::verdict::seconds;
use super::ScenarioId;

/// `#1 applied by account-2 on delivery 2, 10.1 s after the publish`.
fn describe(note: &DecisionNote, published_at_ms: i64) -> String {
    let after = Duration::from_millis(u64::try_from(note.at_ms - published_at_ms).unwrap_or(0));
    let number = note.number.map(|n| format!("#{n} ")).unwrap_or_default();
    format!(
        "{number}{} by {} on delivery {}, {} after the publish",
        note.decision.as_str(),
        note.replica,
        note.delivered,
        seconds(after)
    )
}

/// What the decision notes (sorted by time) say happened to the faulted delivery and its
/// redelivery in scenario `id`, in lines for the run's log (none for a scenario without a
/// fault).
pub(super) fn explain(
    id: ScenarioId,
    notes: &[DecisionNote],
    published_at_ms: i64,
    replicas_down: &[String],
) -> Vec<String> {
    if notes.is_empty() {
        return vec![
            "the account service published no decision notes (DECISION_NOTES=false?), so the \
             run cannot say which replica did what"
                .to_owned(),
        ];
    }
    let told = Told {
        notes,
        published_at_ms,
    };
    match id {
        ScenarioId::FailedBeforeAck => told.failed_before_ack(),
        ScenarioId::SlowHandler => told.slow(),
        ScenarioId::DeadClient => told.freeze(),
        ScenarioId::CrashedReplica => told.crash(replicas_down),
        ScenarioId::ReplicaRace => told.race(),
        ScenarioId::OutOfOrder | ScenarioId::DuplicateDelivery => Vec::new(),
    }
}

/// The decision notes of a run, and when it published: what [`explain`] reads.
struct Told<'a> {
    notes: &'a [DecisionNote],
    published_at_ms: i64,
}

impl Told<'_> {
    /// `#1 applied by account-2 on delivery 2, 10.1 s after the publish`.
    fn describe(&self, note: &DecisionNote) -> String {
        describe(note, self.published_at_ms)
    }

    /// The note of the delivery the fault fired on.
    fn faulted(&self) -> Option<&DecisionNote> {
        self.notes.iter().find(|note| note.fault.is_some())
    }

    /// The note of the delivery that applied the number.
    fn applied(&self) -> Option<&DecisionNote> {
        self.notes
            .iter()
            .find(|note| note.decision == DecisionKind::Applied)
    }

    /// The notes of the deliveries after the `after`th, described.
    fn later_than(&self, after: i64) -> Vec<String> {
        self.notes
            .iter()
            .filter(|note| note.delivered > after)
            .map(|note| self.describe(note))
            .collect()
    }

    /// The first note with this decision.
    fn first(&self, decision: DecisionKind) -> Option<&DecisionNote> {
        self.notes.iter().find(|note| note.decision == decision)
    }

    fn failed_before_ack(&self) -> Vec<String> {
        let mut lines = vec![match self.faulted() {
            Some(note) => format!(
                "delivery 1: {}, committed; then its handler failed before the ack ({}) and \
                 handed #1 back",
                self.describe(note),
                note.fault.as_deref().unwrap_or_default()
            ),
            None => "no decision note names the fail_before_ack fault: it did not fire".to_owned(),
        }];
        lines.push(match self.first(DecisionKind::Duplicate) {
            Some(note) => format!(
                "the broker redelivered #1: {}: number 1 was consumed already, so it was \
                 acknowledged and changed nothing",
                self.describe(note)
            ),
            None => "no decision note shows the redelivery as a duplicate".to_owned(),
        });
        lines
    }

    fn race(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(note) = self.applied() {
            lines.push(format!(
                "both copies found #1 next (last number 0); the first commit won: {}",
                self.describe(note)
            ));
        }
        lines.push(match self.first(DecisionKind::Race) {
            Some(note) => format!(
                "the other's conditional update (where last_transaction_number = 0) matched \
                 nothing: {}; handed back",
                self.describe(note)
            ),
            None => "no decision note shows a race: the copies did not overlap (one was decided \
                     after the other committed)"
                .to_owned(),
        });
        if let Some(note) = self.first(DecisionKind::Duplicate) {
            lines.push(format!(
                "it came back: {}: acknowledged, nothing changed",
                self.describe(note)
            ));
        }
        let replicas: std::collections::BTreeSet<&str> = self
            .notes
            .iter()
            .map(|note| note.replica.as_str())
            .collect();
        if replicas.len() < 2 {
            lines.push(
                "both copies went to the same replica (the broker picks): two of its handlers \
                 raced, as two replicas would"
                    .to_owned(),
            );
        }
        lines
    }

    fn slow(&self) -> Vec<String> {
        let mut lines = vec![match self.faulted() {
            Some(note) => format!(
                "the service's handler stalled on delivery 1 ({}) and decided: {}; {} \
                 progress ack(s) (+WPI) kept the message with it meanwhile",
                note.fault.as_deref().unwrap_or_default(),
                self.describe(note),
                note.progress_acks.unwrap_or(0)
            ),
            None => "no decision note names the slow fault: it did not fire (did delivery 1 go \
                     to a replica the console did not arm?)"
                .to_owned(),
        }];
        let redelivered = self.later_than(1);
        if redelivered.is_empty() {
            lines.push("the broker did not redeliver #1".to_owned());
        } else {
            lines.push(format!(
                "the broker redelivered #1 anyway: {}",
                redelivered.join("; ")
            ));
        }
        lines
    }

    fn crash(&self, replicas_down: &[String]) -> Vec<String> {
        let mut lines = Vec::new();
        if replicas_down.is_empty() {
            lines.push(
                "no replica was seen to stop answering (restarted within the 100 ms between \
                 polls, or the fault did not fire)"
                    .to_owned(),
            );
        }
        lines.push(match self.applied() {
            Some(note) if note.delivered > 1 => format!(
                "the crashed replica never acknowledged delivery 1, so the broker redelivered \
                 #1: {}; applied once",
                self.describe(note)
            ),
            Some(note) => format!(
                "{}: the crash fault did not fire (did delivery 1 go to a replica the console \
                 did not arm?)",
                self.describe(note)
            ),
            None => "no decision note shows #1 applied".to_owned(),
        });
        lines
    }

    fn freeze(&self) -> Vec<String> {
        let faulted = self.faulted();
        let mut lines = Vec::new();
        if let Some(note) = self.applied().filter(|note| note.fault.is_none()) {
            let mut line = format!(
                "delivery 1's handler sent no progress ack, so after the ack wait the broker \
                 redelivered #1: {}",
                self.describe(note)
            );
            if faulted.is_some_and(|frozen| frozen.replica == note.replica) {
                line.push_str(
                    " (on the frozen handler's own replica: only that handler froze, not the \
                     process, so another of its handlers took the redelivery; a truly frozen \
                     process could not have, and the outcome would be the same)",
                );
            }
            lines.push(line);
        }
        lines.push(match faulted {
            Some(note) if note.decision == DecisionKind::Race => format!(
                "the frozen handler woke up and committed its stale copy: the conditional \
                 update (where last_transaction_number = {}) matched nothing: {}; handed back",
                note.number.unwrap_or(1).saturating_sub(1),
                self.describe(note)
            ),
            Some(note) => format!(
                "the frozen handler woke up and decided before the redelivery did: {}",
                self.describe(note)
            ),
            None => "no decision note names the freeze fault: it did not fire (did delivery 1 go \
                     to a replica the console did not arm?)"
                .to_owned(),
        });
        let later = self.later_than(2);
        if !later.is_empty() {
            lines.push(format!("then: {}", later.join("; ")));
        } else if faulted.is_some_and(|note| note.decision == DecisionKind::Race) {
            lines.push(
                "the broker ignored the hand-back, the redelivery having acknowledged the \
                 message already: no further delivery"
                    .to_owned(),
            );
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(
        replica: &str,
        delivered: i64,
        decision: DecisionKind,
        at_ms: i64,
        fault: Option<&str>,
    ) -> DecisionNote {
        DecisionNote {
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
        }
    }

    #[test]
    fn a_failure_before_the_ack_and_a_race_are_explained_from_the_decision_notes() {
        let failed = [
            note(
                "account-1",
                1,
                DecisionKind::Applied,
                30,
                Some("fail_before_ack"),
            ),
            note("account-1", 2, DecisionKind::Duplicate, 60, None),
        ];
        let lines = explain(ScenarioId::FailedBeforeAck, &failed, 0, &[]);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines[0].contains("failed before the ack (fail_before_ack)"));
        assert!(lines[1].contains("#1 duplicate by account-1 on delivery 2"));
        let raced = [
            note(
                "account-2",
                1,
                DecisionKind::Applied,
                1_010,
                Some("slow 1000 ms"),
            ),
            note(
                "account-1",
                1,
                DecisionKind::Race,
                1_020,
                Some("slow 1000 ms"),
            ),
            note("account-2", 2, DecisionKind::Duplicate, 1_040, None),
        ];
        let lines = explain(ScenarioId::ReplicaRace, &raced, 0, &[]);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(lines[0].contains("the first commit won: #1 applied by account-2"));
        assert!(lines[1].contains("race by account-1 on delivery 1"));
        assert!(lines[2].contains("duplicate by account-2 on delivery 2"));
        let one_replica = raced.clone().map(|mut n| {
            n.replica = "account-1".into();
            n
        });
        let lines = explain(ScenarioId::ReplicaRace, &one_replica, 0, &[]);
        assert!(lines[3].contains("the same replica"), "{lines:#?}");
        assert!(explain(ScenarioId::OutOfOrder, &raced, 0, &[]).is_empty());
    }

    #[test]
    fn a_freeze_is_explained_from_the_decision_notes() {
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
        let lines = explain(ScenarioId::DeadClient, &notes, 0, &[]);
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
        let lines = explain(ScenarioId::DeadClient, &same, 0, &[]);
        assert!(
            lines[0].contains("on the frozen handler's own replica"),
            "{lines:#?}"
        );
    }
}
