//! The duplicate window: `Nats-Msg-Id`s seen within `duplicate_window`, and the sequence each
//! got, so that a re-published message is acknowledged again instead of stored twice.

use std::collections::{HashMap, VecDeque};

/// Message ids by age.
#[derive(Debug, Default)]
pub(crate) struct Dedup {
    window_nanos: i64,
    ids: HashMap<String, u64>,
    /// (timestamp, id) in arrival order, to forget ids as they leave the window.
    order: VecDeque<(i64, String)>,
}

impl Dedup {
    /// An empty window of this length.
    pub fn new(window_nanos: i64) -> Dedup {
        Dedup {
            window_nanos,
            ..Dedup::default()
        }
    }

    /// Changes the window length (stream update).
    pub fn set_window(&mut self, window_nanos: i64) {
        self.window_nanos = window_nanos;
    }

    /// The sequence of `id` if it was stored within the window before `now`.
    pub fn check(&mut self, id: &str, now: i64) -> Option<u64> {
        self.expire(now);
        self.ids.get(id).copied()
    }

    /// Remembers that `id` was stored at `seq` at time `ts`.
    pub fn insert(&mut self, id: &str, seq: u64, ts: i64) {
        if self.window_nanos <= 0 {
            return;
        }
        if self.ids.insert(id.to_string(), seq).is_none() {
            self.order.push_back((ts, id.to_string()));
        }
    }

    /// Forgets the ids of messages from `seq` on: a full disk took them back, and a retry
    /// must store them again rather than be told they are duplicates.
    pub fn forget_from(&mut self, seq: u64) {
        self.ids.retain(|_, s| *s < seq);
        let ids = &self.ids;
        self.order.retain(|(_, id)| ids.contains_key(id));
    }

    /// Ids currently remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    fn expire(&mut self, now: i64) {
        let oldest = now.saturating_sub(self.window_nanos);
        while let Some((ts, _)) = self.order.front() {
            if *ts >= oldest {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.ids.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_remembered_within_the_window_only() {
        let mut d = Dedup::new(100);
        d.insert("a", 1, 1_000);
        d.insert("b", 2, 1_050);
        assert_eq!(d.check("a", 1_080), Some(1));
        assert_eq!(d.check("a", 1_101), None);
        assert_eq!(d.check("b", 1_101), Some(2));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn a_zero_window_remembers_nothing() {
        let mut d = Dedup::new(0);
        d.insert("a", 1, 1);
        assert_eq!(d.check("a", 1), None);
    }
}
