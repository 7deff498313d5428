//! The live timeline: every event the broker's streams carry and every decision note, kept in a
//! bounded ring buffer for pages that open later, and fanned out live to connected browsers
//! through a bounded broadcast channel.
//!
//! A browser that does not keep up never grows the console's memory: the channel holds at most
//! its capacity, and a receiver that falls behind learns how many entries it missed
//! ([`Follower::next`] yields [`Item::Skipped`]) and continues from the newest.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

/// One row of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    /// Increasing within one console process (the SSE `id`).
    pub id: u64,
    /// `event` (from a stream) or `decision` (a decision note).
    pub source: &'static str,
    /// The event type (`AccountOpened`, `TransactionCreated`, `TransactionApplied`,
    /// `TransactionRejected`, or another type a stream carries) or `decision`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The subject it was published on.
    pub subject: String,
    /// The stream it is stored in (events only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Its sequence in that stream (for a decision: the sequence of the event it is about).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_sequence: Option<u64>,
    /// The account it concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The transaction it concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// The transaction's number in its account's sequence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    /// For decision notes: `applied`, `rejected`, `duplicate`, `gap`, `poison`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// One sentence for people.
    pub summary: String,
    /// When it happened (the event's `occurred_at`, the note's `at_ms`), ms since the epoch.
    pub at_ms: i64,
    /// The event's `data` or the whole note.
    pub data: serde_json::Value,
}

/// What a follower receives.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// The next entry.
    Entry(Arc<Entry>),
    /// This many entries went by while the follower was too slow; it continues from the newest.
    Skipped(u64),
}

/// Counters the timeline keeps for `/metrics`.
#[derive(Debug, Default)]
pub struct TimelineStats {
    /// Entries received from the broker.
    pub received: AtomicU64,
    /// Sources being followed right now: each stream's ordered consumer and the decision notes'
    /// subscription (3 when all are up).
    pub sources: AtomicU64,
    /// Followers (connected browsers) right now.
    pub followers: AtomicU64,
    /// Entries handed to followers.
    pub fanned_out: AtomicU64,
    /// Entries followers skipped because they were too slow.
    pub skipped: AtomicU64,
}

/// The ring buffer and the broadcast channel.
#[derive(Debug)]
pub struct Timeline {
    inner: Mutex<Ring>,
    sender: broadcast::Sender<Arc<Entry>>,
    history: usize,
    stats: Arc<TimelineStats>,
}

#[derive(Debug)]
struct Ring {
    next_id: u64,
    entries: VecDeque<Arc<Entry>>,
}

impl Timeline {
    /// Keeps the last `history` entries; each follower may fall `buffer` entries behind.
    pub fn new(history: usize, buffer: usize) -> Self {
        let (sender, _) = broadcast::channel(buffer.max(1));
        Self {
            inner: Mutex::new(Ring {
                next_id: 1,
                entries: VecDeque::with_capacity(history.max(1)),
            }),
            sender,
            history: history.max(1),
            stats: Arc::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> Arc<TimelineStats> {
        Arc::clone(&self.stats)
    }

    /// Numbers `entry`, keeps it (dropping the oldest beyond the history) and sends it to every
    /// follower. Returns it numbered.
    pub fn push(&self, mut entry: Entry) -> Arc<Entry> {
        let mut ring = self.inner.lock().expect("timeline lock not poisoned");
        entry.id = ring.next_id;
        ring.next_id += 1;
        let entry = Arc::new(entry);
        if ring.entries.len() == self.history {
            ring.entries.pop_front();
        }
        ring.entries.push_back(Arc::clone(&entry));
        // Sent under the lock, so a follower that subscribes sees each entry exactly once:
        // either in its backlog or live. No receivers is fine.
        let _ = self.sender.send(Arc::clone(&entry));
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        entry
    }

    /// The kept entries, oldest first.
    pub fn recent(&self) -> Vec<Arc<Entry>> {
        let ring = self.inner.lock().expect("timeline lock not poisoned");
        ring.entries.iter().cloned().collect()
    }

    /// A follower that first gets the kept entries with an id above `after` (all of them for
    /// `None`), then live ones. When `after` is older than the oldest kept entry, the follower
    /// first learns how many it missed; an `after` this process never issued (the console
    /// restarted) counts as `None`.
    pub fn follow(&self, after: Option<u64>) -> Follower {
        let ring = self.inner.lock().expect("timeline lock not poisoned");
        let receiver = self.sender.subscribe();
        let after = after.filter(|after| *after < ring.next_id);
        let mut backlog = VecDeque::new();
        if let (Some(after), Some(oldest)) = (after, ring.entries.front()) {
            let missed = oldest.id.saturating_sub(after + 1);
            if missed > 0 {
                backlog.push_back(Item::Skipped(missed));
            }
        }
        backlog.extend(
            ring.entries
                .iter()
                .filter(|entry| after.is_none_or(|after| entry.id > after))
                .cloned()
                .map(Item::Entry),
        );
        drop(ring);
        self.stats.followers.fetch_add(1, Ordering::Relaxed);
        Follower {
            backlog,
            receiver,
            stats: Arc::clone(&self.stats),
        }
    }
}

/// One browser's view of the timeline: its backlog, then live entries.
#[derive(Debug)]
pub struct Follower {
    backlog: VecDeque<Item>,
    receiver: broadcast::Receiver<Arc<Entry>>,
    stats: Arc<TimelineStats>,
}

impl Follower {
    /// The next item; `None` once the timeline is gone.
    pub async fn next(&mut self) -> Option<Item> {
        if let Some(item) = self.backlog.pop_front() {
            return Some(self.count(item));
        }
        match self.receiver.recv().await {
            Ok(entry) => Some(self.count(Item::Entry(entry))),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                // Skip what is still queued too (counted), and continue from the newest.
                let mut skipped = missed;
                loop {
                    match self.receiver.try_recv() {
                        Ok(_) => skipped += 1,
                        Err(broadcast::error::TryRecvError::Lagged(more)) => skipped += more,
                        Err(_) => break,
                    }
                }
                Some(self.count(Item::Skipped(skipped)))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    fn count(&self, item: Item) -> Item {
        match &item {
            Item::Entry(_) => self.stats.fanned_out.fetch_add(1, Ordering::Relaxed),
            Item::Skipped(n) => self.stats.skipped.fetch_add(*n, Ordering::Relaxed),
        };
        item
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stats.followers.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> Entry {
        Entry {
            id: 0,
            source: "event",
            kind: "TransactionCreated".into(),
            subject: "transactions.created".into(),
            stream: Some("TRANSACTIONS".into()),
            stream_sequence: Some(n),
            account_id: None,
            transaction_id: None,
            number: Some(n),
            decision: None,
            summary: format!("entry {n}"),
            at_ms: 0,
            data: serde_json::Value::Null,
        }
    }

    fn number(item: Option<Item>) -> Option<u64> {
        match item {
            Some(Item::Entry(entry)) => entry.number,
            other => panic!("expected an entry, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_ring_keeps_the_last_entries_and_a_follower_gets_them_then_live_ones() {
        let timeline = Timeline::new(3, 8);
        for n in 1..=5 {
            timeline.push(entry(n));
        }
        let kept: Vec<u64> = timeline.recent().iter().map(|e| e.id).collect();
        assert_eq!(kept, [3, 4, 5]);
        let mut follower = timeline.follow(None);
        timeline.push(entry(6));
        for expected in [3, 4, 5, 6] {
            assert_eq!(number(follower.next().await), Some(expected));
        }
    }

    #[tokio::test]
    async fn a_follower_resuming_after_an_id_gets_only_newer_entries_and_what_it_missed() {
        let timeline = Timeline::new(3, 8);
        for n in 1..=5 {
            timeline.push(entry(n));
        }
        let mut resumed = timeline.follow(Some(4));
        assert_eq!(number(resumed.next().await), Some(5));
        let mut late = timeline.follow(Some(1));
        assert_eq!(late.next().await, Some(Item::Skipped(1)));
        assert_eq!(number(late.next().await), Some(3));
        let mut restarted = timeline.follow(Some(99));
        assert_eq!(number(restarted.next().await), Some(3));
    }

    #[tokio::test]
    async fn a_slow_follower_gets_a_skipped_marker_and_continues_from_the_newest() {
        let timeline = Timeline::new(4, 8);
        let mut slow = timeline.follow(None);
        for n in 1..=100 {
            timeline.push(entry(n));
        }
        // 100 went by with room for 8: all are skipped, none is replayed stale.
        assert_eq!(slow.next().await, Some(Item::Skipped(100)));
        timeline.push(entry(101));
        assert_eq!(number(slow.next().await), Some(101));
        let stats = timeline.stats();
        assert_eq!(stats.skipped.load(Ordering::Relaxed), 100);
        assert_eq!(stats.fanned_out.load(Ordering::Relaxed), 1);
        assert_eq!(stats.followers.load(Ordering::Relaxed), 1);
        drop(slow);
        assert_eq!(stats.followers.load(Ordering::Relaxed), 0);
    }
}
