//! Taking messages out of a [`Store`]: deletes, purges, limit eviction and `max_age` expiry.
//!
//! Two primitives do all of it: [`Store::remove_seq`] for one message (a tombstone in the file
//! store) and [`Store::remove_below`] for every message under a sequence (one compaction record,
//! whole segments dropped). Removing the first message is always a `remove_below`, so
//! `first_seq` moves with it.

use std::collections::HashSet;

use super::log::Last;
use super::subjects::{Filter, Removed, Sid};
use super::{Expired, Purge, Store, StoreError};

impl Store {
    /// Deletes the message at `seq`; false when there is none. An interior delete leaves a gap
    /// (`num_deleted`); deleting the first message moves `first_seq`.
    pub fn delete(&mut self, seq: u64) -> Result<bool, StoreError> {
        let result = self.remove_seq(seq);
        self.settle(result)
    }

    /// Purges messages and returns how many went. See [`Purge`] for the request; without a
    /// filter, `up_to_seq` past the end makes it the next sequence (nats-server's compact).
    pub fn purge(&mut self, req: &Purge) -> Result<u64, StoreError> {
        let result = self.purge_unsettled(req);
        self.settle(result)
    }

    fn purge_unsettled(&mut self, req: &Purge) -> Result<u64, StoreError> {
        let up_to = req.up_to_seq.filter(|&s| s > 0);
        let keep = req.keep.filter(|&k| k > 0);
        if up_to.is_some() && keep.is_some() {
            return Err(StoreError::InvalidPurge);
        }
        let filter = Filter::new(req.filter.as_deref());
        match (filter, up_to, keep) {
            (Filter::All, None, None) => self.remove_below(self.state.last_seq + 1),
            (Filter::All, Some(seq), None) => self.remove_below(seq),
            (Filter::All, None, Some(keep)) => {
                let Some(purge) = self.state.msgs.checked_sub(keep).filter(|&n| n > 0) else {
                    return Ok(0);
                };
                let nth = self
                    .log
                    .entries(self.state.first_seq)
                    .nth(purge as usize - 1);
                self.remove_below(nth.map_or(0, |e| e.seq + 1))
            }
            (filter, up_to, keep) => self.purge_filtered(filter, up_to, keep),
        }
    }

    /// Purges the messages matching a filter, below `up_to` and leaving `keep`, one by one.
    fn purge_filtered(
        &mut self,
        filter: Filter,
        up_to: Option<u64>,
        keep: Option<u64>,
    ) -> Result<u64, StoreError> {
        let matcher = self.subjects.resolve(&filter);
        let sids = matcher.sids(&self.subjects);
        let matching: u64 = sids.iter().map(|&sid| self.subjects.get(sid).msgs).sum();
        let most = matching.saturating_sub(keep.unwrap_or(0));
        let end = up_to.unwrap_or(u64::MAX);
        let seqs: Vec<u64> = self
            .log
            .entries(self.state.first_seq)
            .take_while(|e| e.seq < end)
            .filter(|e| matcher.contains(e.sid))
            .take(most as usize)
            .map(|e| e.seq)
            .collect();
        for &seq in &seqs {
            self.remove_seq(seq)?;
        }
        Ok(seqs.len() as u64)
    }

    /// Removes the messages older than `max_age` at `now_nanos` (from the first, stopping at the
    /// first younger one, as nats-server does) and says when the next one is due.
    pub fn expire(&mut self, now_nanos: i64) -> Result<Expired, StoreError> {
        let Some(max_age) = self.limits.max_age_nanos() else {
            return Ok(Expired::default());
        };
        let cutoff = now_nanos.saturating_sub(max_age);
        let last = self.log.expired_through(self.state.first_seq, cutoff)?;
        let removed = match last {
            Some(last) => {
                let result = self.remove_below(last + 1);
                self.settle(result)?
            }
            None => 0,
        };
        Ok(Expired {
            removed,
            next_due: self.next_expiry(),
        })
    }

    /// When the oldest message passes `max_age` (Unix nanoseconds), if any and if set: when the
    /// stream's timer should call [`Store::expire`].
    pub fn next_expiry(&self) -> Option<i64> {
        let max_age = self.limits.max_age_nanos()?;
        (self.state.msgs > 0).then(|| self.state.first_ts.saturating_add(max_age))
    }

    /// Enforces every limit but `max_age` (after open or a limits change).
    pub(super) fn enforce_all(&mut self) -> Result<(), StoreError> {
        if self.limits.max_msgs_per_subject.is_some() {
            let over: Vec<Sid> = self.subjects.iter().map(|(sid, _)| sid).collect();
            for sid in over {
                self.enforce_subject(sid)?;
            }
        }
        self.enforce_totals()
    }

    /// Evicts a subject's oldest messages while it is over `max_msgs_per_subject`.
    pub(super) fn enforce_subject(&mut self, sid: Sid) -> Result<(), StoreError> {
        let Some(max) = self.limits.max_msgs_per_subject else {
            return Ok(());
        };
        while self.subjects.contains(sid) && self.subjects.get(sid).msgs > max {
            let first = self.subjects.get(sid).first;
            if !self.remove_seq(first)? {
                break;
            }
        }
        Ok(())
    }

    /// Evicts the oldest messages while `max_msgs` or `max_bytes` is passed (`discard: old`).
    pub(super) fn enforce_totals(&mut self) -> Result<(), StoreError> {
        if !self.limits.evicts_old() {
            return Ok(());
        }
        let extra_msgs = self
            .limits
            .max_msgs
            .map_or(0, |max| self.state.msgs.saturating_sub(max));
        let extra_bytes = self
            .limits
            .max_bytes
            .map_or(0, |max| self.state.bytes.saturating_sub(max));
        if extra_msgs == 0 && extra_bytes == 0 {
            return Ok(());
        }
        let (mut count, mut bytes, mut floor) = (0, 0, 0);
        for e in self.log.entries(self.state.first_seq) {
            if count >= extra_msgs && bytes >= extra_bytes {
                break;
            }
            (count, bytes, floor) = (count + 1, bytes + e.size, e.seq + 1);
        }
        self.remove_below(floor).map(drop)
    }

    /// Removes one message; false when it is not there.
    pub(super) fn remove_seq(&mut self, seq: u64) -> Result<bool, StoreError> {
        let Some(e) = self.log.entry(seq) else {
            return Ok(false);
        };
        if seq == self.state.first_seq {
            return Ok(self.remove_below(seq + 1)? > 0);
        }
        self.log.remove(seq)?;
        self.state.msgs -= 1;
        self.count_bytes(0, e.size);
        match self.subjects.remove(e.sid, seq) {
            Removed::Done => {}
            Removed::NeedFirst => {
                let next = self.log.entries(seq + 1).find(|n| n.sid == e.sid);
                self.subjects.get_mut(e.sid).first = next.expect("subject has a later message").seq;
            }
            Removed::NeedLast => {
                let prev = self.log.entries_rev(seq - 1).find(|p| p.sid == e.sid);
                self.subjects.get_mut(e.sid).last = prev.expect("subject has an earlier one").seq;
            }
        }
        Ok(true)
    }

    /// Removes every message below `floor` and returns how many there were. A floor past the
    /// end makes `floor` the next sequence.
    pub(super) fn remove_below(&mut self, floor: u64) -> Result<u64, StoreError> {
        let st = self.state;
        if floor <= st.first_seq && floor <= st.last_seq + 1 {
            return Ok(0);
        }
        let last = Last {
            seq: st.last_seq.max(floor - 1),
            ts: st.last_ts,
        };
        let (mut removed, mut bytes) = (0, 0);
        let mut stale: Vec<Sid> = Vec::new();
        if floor > st.last_seq {
            removed = st.msgs;
            bytes = st.bytes;
            self.subjects.clear();
        } else {
            for e in self.log.entries(st.first_seq).take_while(|e| e.seq < floor) {
                removed += 1;
                bytes += e.size;
                if self.subjects.remove_uncounted(e.sid) {
                    stale.push(e.sid);
                }
            }
        }
        self.log.remove_below(floor, last)?;
        self.state.msgs -= removed;
        self.count_bytes(0, bytes);
        self.state.last_seq = last.seq;
        self.state.first_seq = match self.log.entries(floor).next() {
            Some(e) => e.seq,
            None => self.empty_first(),
        };
        stale.sort_unstable();
        stale.dedup();
        stale.retain(|&sid| self.subjects.contains(sid));
        self.refresh_firsts(floor, stale);
        // The counters are right by now; only the new first timestamp needs a read.
        self.state.first_ts = self.first_ts()?;
        Ok(removed)
    }

    /// Finds the new first message of subjects that lost theirs to a removal below `floor`.
    fn refresh_firsts(&mut self, floor: u64, mut stale: Vec<Sid>) {
        // A handful of subjects (one per eviction on append) is quicker to compare than hash.
        let mut many: HashSet<Sid> = HashSet::new();
        if stale.len() > 8 {
            many.extend(stale.drain(..));
        }
        for e in self.log.entries(floor) {
            if stale.is_empty() && many.is_empty() {
                break;
            }
            let found = match stale.iter().position(|&sid| sid == e.sid) {
                Some(i) => {
                    stale.swap_remove(i);
                    true
                }
                None => !many.is_empty() && many.remove(&e.sid),
            };
            if found {
                self.subjects.get_mut(e.sid).first = e.seq;
            }
        }
    }
}
