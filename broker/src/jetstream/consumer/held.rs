//! Which connection holds each unacknowledged delivery of a consumer, for the broker's
//! redeliver-on-disconnect extension (`--redeliver_on_disconnect`): when a connection closes,
//! the messages it held are due for redelivery at once instead of after `ack_wait`.
//!
//! A delivery is held by the one connection that received it (the member of the deliver group,
//! the single push subscriber, the owner of the pull request's reply subject) until it is
//! acknowledged, handed back, terminated, given up or delivered again. Nothing here is
//! persisted: after a restart every connection is new, and `ack_wait` brings messages back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::{Consumer, ConsumerInner};
use crate::client::{Client, Reached};

/// The holders of one consumer's deliveries, indexed both ways so that a connection's close
/// and an ack each cost only what they touch.
#[derive(Debug, Default)]
pub(super) struct Holders {
    /// Stream sequence to (connection id, consumer sequence of the delivery it holds).
    by_seq: BTreeMap<u64, (u64, u64)>,
    /// Connection id to the stream sequences it holds. A connection stays listed (perhaps with
    /// none) until it closes: that it is listed means the server-wide index knows this consumer.
    by_client: HashMap<u64, BTreeSet<u64>>,
}

impl Holders {
    /// Whether connection `cid` is listed: held something, or has a pull request waiting.
    pub fn knows(&self, cid: u64) -> bool {
        self.by_client.contains_key(&cid)
    }

    /// Lists connection `cid`, holding nothing yet.
    pub fn add_client(&mut self, cid: u64) {
        self.by_client.entry(cid).or_default();
    }

    /// Delivery `cseq` of stream sequence `sseq` went to connection `cid`, which must be listed.
    pub fn hold(&mut self, sseq: u64, cseq: u64, cid: u64) {
        self.release(sseq);
        self.by_seq.insert(sseq, (cid, cseq));
        self.by_client.entry(cid).or_default().insert(sseq);
    }

    /// Nobody holds `sseq` any more.
    pub fn release(&mut self, sseq: u64) {
        if let Some((cid, _)) = self.by_seq.remove(&sseq) {
            if let Some(seqs) = self.by_client.get_mut(&cid) {
                seqs.remove(&sseq);
            }
        }
    }

    /// Nobody holds delivery `cseq` of `sseq` any more (a later delivery stays held).
    pub fn release_delivery(&mut self, sseq: u64, cseq: u64) {
        if self
            .by_seq
            .get(&sseq)
            .is_some_and(|(_, held)| *held == cseq)
        {
            self.release(sseq);
        }
    }

    /// Nobody holds anything below `first` (the stream no longer has it).
    pub fn release_below(&mut self, first: u64) {
        let gone: Vec<u64> = self.by_seq.range(..first).map(|(s, _)| *s).collect();
        for sseq in gone {
            self.release(sseq);
        }
    }

    /// Connection `cid` closed: forgets it and returns what it held, as (stream sequence,
    /// consumer sequence of the delivery).
    pub fn take_client(&mut self, cid: u64) -> Vec<(u64, u64)> {
        let seqs = self.by_client.remove(&cid).unwrap_or_default();
        seqs.into_iter()
            .filter_map(|sseq| {
                let (holder, cseq) = self.by_seq.remove(&sseq)?;
                debug_assert_eq!(holder, cid);
                Some((sseq, cseq))
            })
            .collect()
    }

    /// How many deliveries are held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_seq.len()
    }
}

/// Whether the extension is on for `consumer`.
pub(super) fn enabled(consumer: &Consumer) -> bool {
    consumer.ctx.config.redeliver_on_disconnect
}

/// Lists `client` as one that holds deliveries or pull requests of `consumer`, in the
/// server-wide index too; false when it is closing (its close may have run already).
pub(super) fn admit(consumer: &Arc<Consumer>, inner: &mut ConsumerInner, client: &Client) -> bool {
    if inner.holders.knows(client.id) {
        return true;
    }
    if !consumer.ctx.add_holder(client, consumer) {
        return false;
    }
    inner.holders.add_client(client.id);
    true
}

/// Records whom delivery `cseq` of `sseq` reached. One connection holds it until it answers or
/// closes. A pull delivery that reached nobody went to a request whose connection is gone, so
/// it is due at once; a push delivery that reached nobody, or several connections, waits for
/// `ack_wait` as on nats-server.
pub(super) fn record(
    consumer: &Arc<Consumer>,
    inner: &mut ConsumerInner,
    (sseq, cseq): (u64, u64),
    reached: &Reached,
) {
    match reached {
        Reached::Connection(client) if admit(consumer, inner, client) => {
            inner.holders.hold(sseq, cseq, client.id);
        }
        Reached::Connection(_) => due_now(inner, sseq),
        Reached::Nobody if !inner.config.is_push() => due_now(inner, sseq),
        Reached::Nobody | Reached::Several => inner.holders.release(sseq),
    }
}

fn due_now(inner: &mut ConsumerInner, sseq: u64) {
    inner.holders.release(sseq);
    inner.acks.redeliver.insert(sseq);
}

/// Connection `cid` closed: its waiting pull requests go, and each delivery it still holds
/// (unacknowledged, not delivered again since) is due for redelivery now, as if its `ack_wait`
/// had passed: the delivery count grows when it goes out again, `max_deliver` still ends it.
pub(super) fn connection_closed(consumer: &Consumer, cid: u64) {
    let mut inner = consumer.inner.lock();
    inner.waiting.retain(|r| r.owner != Some(cid));
    let mut due = 0;
    for (sseq, cseq) in inner.holders.take_client(cid) {
        let current = inner
            .acks
            .pending
            .get(&sseq)
            .is_some_and(|p| p.cseq == cseq);
        if current && inner.acks.redeliver.insert(sseq) {
            due += 1;
        }
    }
    if due > 0 {
        inner.dirty = true;
        tracing::debug!(consumer = %consumer.name, cid, due, "redelivering what a closed connection held");
    }
    drop(inner);
    consumer.wake();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_connection_gives_back_only_what_it_still_holds() {
        let mut h = Holders::default();
        h.add_client(7);
        h.add_client(8);
        h.hold(1, 1, 7);
        h.hold(2, 2, 7);
        h.hold(3, 3, 8);
        h.release(2);
        assert_eq!(h.take_client(7), vec![(1, 1)]);
        assert!(!h.knows(7));
        assert!(h.knows(8));
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn a_redelivery_moves_the_message_to_its_new_holder() {
        let mut h = Holders::default();
        h.hold(5, 1, 7);
        h.hold(5, 4, 8);
        h.release_delivery(5, 1);
        assert_eq!(h.take_client(7), Vec::new());
        assert_eq!(h.take_client(8), vec![(5, 4)]);
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn messages_the_stream_lost_are_no_longer_held() {
        let mut h = Holders::default();
        for seq in 1..=4 {
            h.hold(seq, seq, 7);
        }
        h.release_below(3);
        assert_eq!(h.take_client(7), vec![(3, 3), (4, 4)]);
    }

    #[test]
    fn a_connection_that_never_held_anything_gives_back_nothing() {
        let mut h = Holders::default();
        h.add_client(9);
        assert!(h.knows(9));
        assert_eq!(h.take_client(9), Vec::new());
        assert!(!h.knows(9));
    }
}
