//! Timestamps the file store does not keep in memory: `max_age` expiry walks record headers
//! (skipping segments whose newest message has expired) and `first_ts` is read from the new
//! first record after every removal from the front.

use std::time::Duration;

use super::{Backend, Fixture};
use crate::store::{FileConfig, Limits, Purge};

fn max_age(nanos: u64) -> Limits {
    Limits {
        max_age: Some(Duration::from_nanos(nanos)),
        ..Limits::default()
    }
}

/// Appends `count` messages of 100 bytes, ten ticks apart; returns their timestamps by
/// sequence from 1.
fn fill(f: &mut Fixture, count: usize) -> Vec<i64> {
    (0..count)
        .map(|_| {
            f.advance(9);
            f.put("t", &[7; 100]);
            f.now()
        })
        .collect()
}

/// The store's `first_ts` is the timestamp of its first message.
fn assert_first_ts_is_the_first_messages(f: &Fixture) {
    let st = f.store.state();
    assert_eq!(st.first_ts, f.msg(st.first_seq).timestamp, "{st:?}");
}

pub(super) fn expiry_crosses_segments_and_survives_reopen(b: Backend) {
    let mut f = Fixture::new(b, max_age(1000));
    let ts = fill(&mut f, 100);
    f.reopen();
    let out = f.store.expire(ts[69] + 1000).unwrap();
    assert_eq!((out.removed, out.next_due), (70, Some(ts[70] + 1000)));
    let st = f.store.state();
    assert_eq!((st.msgs, st.first_seq, st.first_ts), (30, 71, ts[70]));
    f.reopen();
    assert_eq!(f.store.expire(ts[99] + 999).unwrap().removed, 29);
    assert_eq!(f.seqs(), [100]);
}

pub(super) fn expiry_stops_at_a_young_message_even_when_later_ones_are_old(b: Backend) {
    let mut f = Fixture::new(b, max_age(10));
    for seq in 1..=80 {
        let ts = if seq == 40 { 10_000 } else { 100 };
        f.store.append("t", None, &[7; 100], ts).unwrap();
    }
    f.reopen();
    assert_eq!(f.store.expire(200).unwrap().removed, 39);
    let st = f.store.state();
    assert_eq!((st.first_seq, st.first_ts), (40, 10_000));
    assert_eq!(f.store.expire(10_009).unwrap().removed, 0);
    f.reopen();
    assert_eq!(f.store.expire(10_010).unwrap().removed, 41);
    assert_eq!(f.store.state().msgs, 0);
}

pub(super) fn first_ts_follows_every_removal_from_the_front(b: Backend) {
    let limits = Limits {
        max_msgs: Some(5),
        ..Limits::default()
    };
    let mut f = Fixture::new(b, limits);
    for _ in 0..50 {
        f.advance(3);
        f.put("t", &[7; 100]);
        assert_first_ts_is_the_first_messages(&f);
    }
    let first = f.store.state().first_seq;
    f.store.delete(first).unwrap();
    assert_first_ts_is_the_first_messages(&f);
    let keep = Purge {
        keep: Some(2),
        ..Purge::default()
    };
    f.store.purge(&keep).unwrap();
    assert_first_ts_is_the_first_messages(&f);
    f.reopen();
    assert_first_ts_is_the_first_messages(&f);
    f.store.purge(&Purge::default()).unwrap();
    assert_eq!(f.store.state().first_ts, 0);
}

/// In one large segment the oldest records are written out and the newest still buffered: the
/// walk reads its windows across both.
#[test]
fn expiry_reads_stamps_across_written_and_buffered_records() {
    let config = FileConfig::default();
    let mut f = Fixture::with_config(Backend::File, max_age(1000), config);
    let ts = fill(&mut f, 4000);
    // 137-byte records, written out every 256 KiB: the last 170 or so are still buffered.
    let out = f.store.expire(ts[3899] + 1000).unwrap();
    assert_eq!((out.removed, out.next_due), (3900, Some(ts[3900] + 1000)));
    assert_first_ts_is_the_first_messages(&f);
    f.reopen();
    assert_eq!(f.store.expire(ts[3999] + 999).unwrap().removed, 99);
    assert_first_ts_is_the_first_messages(&f);
}
