//! A deliberately plain model of a stream for the property test: a `BTreeMap` of messages and
//! the limit rules written out the obvious way, with no indexes.

use std::collections::BTreeMap;

use crate::proto::subject::subject_matches;
use crate::store::{Discard, Limit, Limits, Purge, StoreError, StreamState, SubjectState};

/// A message in the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ModelMsg {
    pub subject: String,
    pub headers: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub ts: i64,
    pub size: u64,
}

/// The model stream.
#[derive(Debug)]
pub(super) struct Model {
    pub limits: Limits,
    pub msgs: BTreeMap<u64, ModelMsg>,
    pub last_seq: u64,
    pub last_ts: i64,
}

fn matches(filter: Option<&str>, subject: &str) -> bool {
    filter.is_none_or(|f| subject_matches(f.as_bytes(), subject.as_bytes()))
}

impl Model {
    pub fn new(limits: Limits) -> Model {
        Model {
            limits,
            msgs: BTreeMap::new(),
            last_seq: 0,
            last_ts: 0,
        }
    }

    fn bytes(&self) -> u64 {
        self.msgs.values().map(|m| m.size).sum()
    }

    fn on_subject(&self, subject: &str) -> Vec<u64> {
        let on = self.msgs.iter().filter(|(_, m)| m.subject == subject);
        on.map(|(&seq, _)| seq).collect()
    }

    fn pop_first(&mut self) {
        self.msgs.pop_first();
    }

    /// Appends with nats-server's rules; `msg.size` is the store's count for it.
    pub fn append(&mut self, msg: ModelMsg) -> Result<u64, Limit> {
        let l = self.limits.clone();
        let body = msg.headers.as_ref().map_or(0, Vec::len) + msg.payload.len();
        if l.max_msg_size.is_some_and(|max| body as u64 > max) {
            return Err(Limit::MaxMsgSize);
        }
        let same = self.on_subject(&msg.subject);
        if l.discard == Discard::New {
            let at_subject = l
                .max_msgs_per_subject
                .is_some_and(|m| same.len() as u64 >= m);
            if at_subject && l.discard_new_per_subject {
                return Err(Limit::MaxMsgsPerSubject);
            }
            if l.max_msgs.is_some_and(|m| self.msgs.len() as u64 >= m) && !at_subject {
                return Err(Limit::MaxMsgs);
            }
            let first_size = same.first().map_or(0, |s| self.msgs[s].size);
            if l.max_bytes.is_some_and(|m| self.bytes() + msg.size >= m)
                && (!at_subject || first_size <= msg.size)
            {
                return Err(Limit::MaxBytes);
            }
        }
        let seq = self.last_seq + 1;
        (self.last_seq, self.last_ts) = (seq, msg.ts);
        let subject = msg.subject.clone();
        self.msgs.insert(seq, msg);
        if let Some(max) = l.max_msgs_per_subject {
            let same = self.on_subject(&subject);
            for seq in &same[..same.len().saturating_sub(max as usize)] {
                self.msgs.remove(seq);
            }
        }
        if l.discard == Discard::Old {
            while l.max_msgs.is_some_and(|m| self.msgs.len() as u64 > m) {
                self.pop_first();
            }
            while l.max_bytes.is_some_and(|m| self.bytes() > m) {
                self.pop_first();
            }
        }
        Ok(seq)
    }

    pub fn delete(&mut self, seq: u64) -> bool {
        self.msgs.remove(&seq).is_some()
    }

    pub fn purge(&mut self, req: &Purge) -> Result<u64, StoreError> {
        let up_to = req.up_to_seq.filter(|&s| s > 0);
        let keep = req.keep.filter(|&k| k > 0);
        if up_to.is_some() && keep.is_some() {
            return Err(StoreError::InvalidPurge);
        }
        let filter = req.filter.as_deref().filter(|f| !f.is_empty() && *f != ">");
        let before = self.msgs.len();
        if filter.is_none() && keep.is_none() {
            let end = up_to.unwrap_or(self.last_seq + 1);
            self.msgs.retain(|&seq, _| seq >= end);
            self.last_seq = self.last_seq.max(end - 1);
            return Ok((before - self.msgs.len()) as u64);
        }
        let matching: Vec<u64> = self
            .msgs
            .iter()
            .filter(|(_, m)| matches(filter, &m.subject))
            .map(|(&seq, _)| seq)
            .collect();
        let most = matching.len().saturating_sub(keep.unwrap_or(0) as usize);
        let end = up_to.unwrap_or(u64::MAX);
        for seq in matching.into_iter().filter(|&s| s < end).take(most) {
            self.msgs.remove(&seq);
        }
        Ok((before - self.msgs.len()) as u64)
    }

    pub fn expire(&mut self, now: i64) -> u64 {
        let Some(age) = self.limits.max_age else {
            return 0;
        };
        let cutoff = now - age.as_nanos() as i64;
        let mut removed = 0;
        while self
            .msgs
            .first_key_value()
            .is_some_and(|(_, m)| m.ts <= cutoff)
        {
            self.pop_first();
            removed += 1;
        }
        removed
    }

    pub fn state(&self) -> StreamState {
        let first = self.msgs.first_key_value();
        let empty_first = if self.last_seq == 0 {
            0
        } else {
            self.last_seq + 1
        };
        let first_seq = first.map_or(empty_first, |(&s, _)| s);
        let msgs = self.msgs.len() as u64;
        StreamState {
            msgs,
            bytes: self.bytes(),
            first_seq,
            first_ts: first.map_or(0, |(_, m)| m.ts),
            last_seq: self.last_seq,
            last_ts: self.last_ts,
            num_deleted: if first_seq == 0 {
                0
            } else {
                (self.last_seq + 1)
                    .saturating_sub(first_seq)
                    .saturating_sub(msgs)
            },
            num_subjects: self.subjects_state(None).len() as u64,
        }
    }

    pub fn subjects_state(&self, filter: Option<&str>) -> BTreeMap<String, SubjectState> {
        let mut out: BTreeMap<String, SubjectState> = BTreeMap::new();
        for (&seq, m) in self
            .msgs
            .iter()
            .filter(|(_, m)| matches(filter, &m.subject))
        {
            let s = out.entry(m.subject.clone()).or_default();
            if s.msgs == 0 {
                s.first = seq;
            }
            s.msgs += 1;
            s.last = seq;
        }
        out
    }

    pub fn num_pending(&self, start: u64, filter: Option<&str>) -> u64 {
        let from = self.msgs.range(start..);
        from.filter(|(_, m)| matches(filter, &m.subject)).count() as u64
    }

    pub fn next(&self, start: u64, filter: Option<&str>) -> Option<u64> {
        let mut from = self.msgs.range(start..);
        from.find(|(_, m)| matches(filter, &m.subject))
            .map(|(&s, _)| s)
    }

    pub fn last_by(&self, filter: &str) -> Option<u64> {
        let mut all = self.msgs.iter().rev();
        all.find(|(_, m)| matches(Some(filter), &m.subject))
            .map(|(&s, _)| s)
    }
}
