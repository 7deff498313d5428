//! A consumer's delivery and acknowledgement state, without I/O: what was delivered, what
//! waits for an ack and until when, what is due for redelivery, and the ack floor. This is also
//! what a durable consumer persists.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One delivered, unacknowledged message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pending {
    /// The consumer sequence of its latest delivery.
    pub cseq: u64,
    /// Deliveries so far.
    pub deliveries: u64,
    /// When it is due for redelivery, Unix nanoseconds.
    pub deadline: i64,
}

/// A sequence pair, as `delivered` and `ack_floor` report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SeqPair {
    pub consumer_seq: u64,
    pub stream_seq: u64,
}

/// The state itself; serialised as is for durable consumers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AckState {
    /// The next stream sequence to look at for a first delivery.
    pub next_sseq: u64,
    /// The last consumer sequence given out, and the highest stream sequence delivered.
    pub delivered: SeqPair,
    /// Everything at or below is acknowledged (or will never be delivered again).
    pub ack_floor: SeqPair,
    /// Unacknowledged deliveries by stream sequence.
    pub pending: BTreeMap<u64, Pending>,
    /// Stream sequences due for redelivery, served before new messages, lowest first.
    #[serde(default)]
    pub redeliver: BTreeSet<u64>,
    /// `deliver_policy: last_per_subject`: the sequences delivered first (the last message of
    /// each subject when the consumer was created), before everything after `start_list_end`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub start_list: Vec<u64>,
    #[serde(default)]
    pub start_list_end: u64,
    /// Sequences dropped at max_deliver: nats-server keeps counting them in `num_redelivered`
    /// until they are acknowledged anyway or leave the stream.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub exhausted: BTreeSet<u64>,
}

/// What an ack asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckKind {
    /// `+ACK` (or an empty body).
    Ack,
    /// `-NAK`, redeliver after this many nanoseconds (0: at once).
    Nak(i64),
    /// `+WPI`: still working, restart the ack wait.
    Progress,
    /// `+TERM`: never redeliver.
    Term,
    /// `+NXT`: ack and ask for more (treated as an ack).
    Next,
}

impl AckState {
    /// A state that starts delivering at `start_sseq`.
    pub fn starting_at(start_sseq: u64) -> AckState {
        let floor = start_sseq.saturating_sub(1);
        AckState {
            next_sseq: start_sseq.max(1),
            delivered: SeqPair {
                consumer_seq: 0,
                stream_seq: floor,
            },
            ack_floor: SeqPair {
                consumer_seq: 0,
                stream_seq: floor,
            },
            ..AckState::default()
        }
    }

    /// Records a first delivery of `sseq`; returns its consumer sequence. With `track` (the
    /// consumer acks) it waits for an ack until `deadline`; without, it is acknowledged at once.
    pub fn deliver_new(&mut self, sseq: u64, track: bool, deadline: i64) -> u64 {
        self.delivered.consumer_seq += 1;
        self.delivered.stream_seq = sseq;
        self.next_sseq = self.next_sseq.max(sseq + 1);
        let cseq = self.delivered.consumer_seq;
        if track {
            self.pending.insert(
                sseq,
                Pending {
                    cseq,
                    deliveries: 1,
                    deadline,
                },
            );
        } else if self.pending.is_empty() {
            self.ack_floor = self.delivered;
        }
        cseq
    }

    /// Records a redelivery of a pending `sseq`; returns (consumer sequence, deliveries).
    pub fn deliver_again(&mut self, sseq: u64, deadline: i64) -> Option<(u64, u64)> {
        let p = self.pending.get_mut(&sseq)?;
        self.delivered.consumer_seq += 1;
        p.cseq = self.delivered.consumer_seq;
        p.deliveries += 1;
        p.deadline = deadline;
        Some((p.cseq, p.deliveries))
    }

    /// Moves pending messages whose deadline passed to the redelivery queue; returns how many.
    pub fn expire(&mut self, now: i64) -> usize {
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(seq, p)| p.deadline <= now && !self.redeliver.contains(seq))
            .map(|(seq, _)| *seq)
            .collect();
        self.redeliver.extend(&due);
        due.len()
    }

    /// The earliest redelivery deadline among messages not already queued.
    pub fn next_deadline(&self) -> Option<i64> {
        self.pending
            .iter()
            .filter(|(seq, _)| !self.redeliver.contains(seq))
            .map(|(_, p)| p.deadline)
            .min()
    }

    /// Applies an ack for `sseq`; `ack_all` acknowledges everything up to it. Returns the
    /// stream sequences that are now acknowledged.
    pub fn ack(
        &mut self,
        sseq: u64,
        kind: AckKind,
        ack_all: bool,
        now: i64,
        wait: i64,
    ) -> Vec<u64> {
        match kind {
            AckKind::Ack | AckKind::Next | AckKind::Term if ack_all => {
                let done: Vec<u64> = self.pending.range(..=sseq).map(|(s, _)| *s).collect();
                for s in &done {
                    self.remove(*s);
                }
                if let Some(cseq) = self.cseq_for_all(sseq) {
                    self.ack_floor = SeqPair {
                        consumer_seq: cseq,
                        stream_seq: sseq,
                    }
                    .max(self.ack_floor);
                }
                self.update_floor();
                done
            }
            AckKind::Ack | AckKind::Next | AckKind::Term => {
                if self.remove(sseq) {
                    self.update_floor();
                    vec![sseq]
                } else {
                    Vec::new()
                }
            }
            AckKind::Nak(delay) => {
                if let Some(p) = self.pending.get_mut(&sseq) {
                    if delay > 0 {
                        p.deadline = now.saturating_add(delay);
                        self.redeliver.remove(&sseq);
                    } else {
                        self.redeliver.insert(sseq);
                    }
                }
                Vec::new()
            }
            AckKind::Progress => {
                if let Some(p) = self.pending.get_mut(&sseq) {
                    p.deadline = now.saturating_add(wait);
                    self.redeliver.remove(&sseq);
                }
                Vec::new()
            }
        }
    }

    /// Drops a pending message that reached max_deliver: it counts as handled.
    pub fn give_up(&mut self, sseq: u64) {
        if self.remove(sseq) {
            self.exhausted.insert(sseq);
            self.update_floor();
        }
    }

    /// Drops a pending message the stream no longer has.
    pub fn forget(&mut self, sseq: u64) {
        if self.remove(sseq) {
            self.update_floor();
        }
    }

    /// Forgets pending messages the stream no longer has (purged, expired, deleted).
    pub fn forget_below(&mut self, first_seq: u64) {
        let gone: Vec<u64> = self.pending.range(..first_seq).map(|(s, _)| *s).collect();
        for s in gone {
            self.remove(s);
        }
        self.exhausted = self.exhausted.split_off(&first_seq);
        // The last messages per subject still to deliver first: those gone no longer count.
        if !self.start_list.is_empty() {
            self.start_list.retain(|seq| *seq >= first_seq);
            if self.start_list.is_empty() {
                self.next_sseq = self.next_sseq.max(self.start_list_end + 1);
            }
        }
        if self.next_sseq < first_seq {
            self.next_sseq = first_seq;
        }
        if self.ack_floor.stream_seq + 1 < first_seq && self.pending.is_empty() {
            self.ack_floor.stream_seq = first_seq - 1;
        }
        self.update_floor();
    }

    /// How many delivered messages were delivered more than once and are still pending.
    pub fn num_redelivered(&self) -> usize {
        self.pending.values().filter(|p| p.deliveries > 1).count() + self.exhausted.len()
    }

    fn remove(&mut self, sseq: u64) -> bool {
        self.redeliver.remove(&sseq);
        self.exhausted.remove(&sseq);
        self.pending.remove(&sseq).is_some()
    }

    /// The consumer sequence of the delivery of `sseq`, or of the last one before it.
    fn cseq_for_all(&self, sseq: u64) -> Option<u64> {
        if sseq >= self.delivered.stream_seq {
            return Some(self.delivered.consumer_seq);
        }
        self.pending
            .range(sseq + 1..)
            .next()
            .map(|(_, p)| p.cseq.saturating_sub(1))
    }

    fn update_floor(&mut self) {
        match self.pending.iter().next() {
            None => {
                self.ack_floor = self.delivered;
            }
            Some((&sseq, p)) => {
                let floor = SeqPair {
                    consumer_seq: p.cseq.saturating_sub(1).min(self.delivered.consumer_seq),
                    stream_seq: sseq - 1,
                };
                if floor.stream_seq >= self.ack_floor.stream_seq {
                    self.ack_floor = SeqPair {
                        consumer_seq: floor.consumer_seq.max(self.ack_floor.consumer_seq),
                        stream_seq: floor.stream_seq,
                    };
                }
            }
        }
    }
}

impl SeqPair {
    fn max(self, other: SeqPair) -> SeqPair {
        if self.stream_seq >= other.stream_seq {
            self
        } else {
            other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: i64 = 1_000;

    fn delivered(n: u64) -> AckState {
        let mut s = AckState::starting_at(1);
        for seq in 1..=n {
            s.deliver_new(seq, true, WAIT);
        }
        s
    }

    #[test]
    fn acks_in_order_move_the_floor() {
        let mut s = delivered(3);
        assert_eq!(s.ack(1, AckKind::Ack, false, 0, WAIT), vec![1]);
        assert_eq!(
            s.ack_floor,
            SeqPair {
                consumer_seq: 1,
                stream_seq: 1
            }
        );
        s.ack(3, AckKind::Ack, false, 0, WAIT);
        assert_eq!(s.ack_floor.stream_seq, 1, "2 is still pending");
        s.ack(2, AckKind::Ack, false, 0, WAIT);
        assert_eq!(
            s.ack_floor,
            SeqPair {
                consumer_seq: 3,
                stream_seq: 3
            }
        );
        assert!(s.pending.is_empty());
    }

    #[test]
    fn expired_deliveries_are_redelivered_with_a_new_consumer_sequence() {
        let mut s = delivered(2);
        assert_eq!(s.expire(WAIT - 1), 0);
        assert_eq!(s.expire(WAIT), 2);
        let first = *s.redeliver.iter().next().unwrap();
        s.redeliver.remove(&first);
        assert_eq!(s.deliver_again(first, 5_000), Some((3, 2)));
        assert_eq!(s.num_redelivered(), 1);
        assert_eq!(s.next_deadline(), Some(5_000));
    }

    #[test]
    fn nak_with_delay_postpones_and_without_queues_at_once() {
        let mut s = delivered(2);
        s.ack(1, AckKind::Nak(0), false, 10, WAIT);
        assert!(s.redeliver.contains(&1));
        s.ack(2, AckKind::Nak(500), false, 10, WAIT);
        assert_eq!(s.pending[&2].deadline, 510);
        s.ack(2, AckKind::Progress, false, 20, WAIT);
        assert_eq!(s.pending[&2].deadline, 20 + WAIT);
    }

    #[test]
    fn ack_all_acknowledges_everything_up_to_the_sequence() {
        let mut s = delivered(4);
        assert_eq!(s.ack(3, AckKind::Ack, true, 0, WAIT), vec![1, 2, 3]);
        assert_eq!(
            s.ack_floor,
            SeqPair {
                consumer_seq: 3,
                stream_seq: 3
            }
        );
    }

    #[test]
    fn without_acks_the_floor_follows_deliveries() {
        let mut s = AckState::starting_at(5);
        s.deliver_new(5, false, 0);
        s.deliver_new(7, false, 0);
        assert_eq!(
            s.ack_floor,
            SeqPair {
                consumer_seq: 2,
                stream_seq: 7
            }
        );
        assert_eq!(s.next_sseq, 8);
    }

    #[test]
    fn purged_messages_leave_the_start_list() {
        let mut s = AckState::starting_at(1);
        s.start_list = vec![2, 5, 9];
        s.start_list_end = 9;
        s.forget_below(6);
        assert_eq!(s.start_list, vec![9]);
        s.forget_below(12);
        assert!(s.start_list.is_empty());
        assert_eq!(s.next_sseq, 12);
    }

    #[test]
    fn purged_messages_leave_the_pending_set() {
        let mut s = delivered(3);
        s.forget_below(3);
        assert_eq!(s.pending.keys().copied().collect::<Vec<_>>(), vec![3]);
        assert_eq!(s.ack_floor.stream_seq, 2);
    }
}
