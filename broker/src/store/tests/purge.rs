//! Purges, on both backends, with nats-server's `STREAM.PURGE` semantics.

use super::{Backend, Fixture};
use crate::store::{Limits, Purge, StoreError};

fn fill(f: &mut Fixture, subjects: &[&str]) {
    for s in subjects {
        f.put(s, s.as_bytes());
    }
}

pub(super) fn purge_all_moves_first_seq_and_keeps_last_seq(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    fill(&mut f, &["a", "b", "a"]);
    let last_ts = f.now();
    assert_eq!(f.store.purge(&Purge::default()).unwrap(), 3);
    f.reopen();
    let st = f.store.state();
    assert_eq!((st.msgs, st.bytes, st.first_seq, st.first_ts), (0, 0, 4, 0));
    assert_eq!((st.last_seq, st.last_ts, st.num_subjects), (3, last_ts, 0));
    assert_eq!(f.store.get_last_by_subject("a").unwrap(), None);
}

pub(super) fn purge_up_to_a_sequence_is_exclusive(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    fill(&mut f, &["a", "b", "a", "b", "a"]);
    let req = Purge {
        up_to_seq: Some(3),
        ..Purge::default()
    };
    assert_eq!(f.store.purge(&req).unwrap(), 2);
    f.reopen();
    assert_eq!(f.seqs(), [3, 4, 5]);
    assert_eq!(f.store.subjects_state(None)["b"].first, 4);
    let req = Purge {
        up_to_seq: Some(1),
        ..Purge::default()
    };
    assert_eq!(f.store.purge(&req).unwrap(), 0);
}

pub(super) fn purge_past_the_end_moves_the_next_sequence(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    fill(&mut f, &["a", "b"]);
    let req = Purge {
        up_to_seq: Some(100),
        ..Purge::default()
    };
    assert_eq!(f.store.purge(&req).unwrap(), 2);
    f.reopen();
    let st = f.store.state();
    assert_eq!((st.msgs, st.first_seq, st.last_seq), (0, 100, 99));
    assert_eq!(f.put("c", b""), 100);
    f.reopen();
    assert_eq!(f.seqs(), [100]);
}

pub(super) fn purge_keep_leaves_the_newest(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    fill(&mut f, &["a", "b", "a", "b", "a"]);
    f.store.delete(4).unwrap();
    let keep = |n| Purge {
        keep: Some(n),
        ..Purge::default()
    };
    assert_eq!(f.store.purge(&keep(2)).unwrap(), 2);
    assert_eq!(f.seqs(), [3, 5]);
    assert_eq!(f.store.purge(&keep(5)).unwrap(), 0);
    f.reopen();
    assert_eq!(f.seqs(), [3, 5]);
}

pub(super) fn purge_by_subject_filter_with_keep_and_sequence(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    fill(&mut f, &["a.1", "b", "a.2", "b", "a.1", "b", "a.1"]);
    let filtered = |filter: &str, up_to_seq, keep| Purge {
        filter: Some(filter.to_string()),
        up_to_seq,
        keep,
    };
    assert_eq!(f.store.purge(&filtered("a.1", None, Some(1))).unwrap(), 2);
    assert_eq!(f.seqs(), [2, 3, 4, 6, 7]);
    assert_eq!(f.store.purge(&filtered("b", Some(6), None)).unwrap(), 2);
    assert_eq!(f.seqs(), [3, 6, 7]);
    f.reopen();
    assert_eq!(f.store.purge(&filtered("a.*", None, None)).unwrap(), 2);
    assert_eq!(f.seqs(), [6]);
    let st = f.store.state();
    assert_eq!(
        (st.first_seq, st.last_seq, st.num_deleted, st.num_subjects),
        (6, 7, 1, 1)
    );
}

pub(super) fn purge_with_both_sequence_and_keep_is_refused(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    fill(&mut f, &["a"]);
    let req = Purge {
        up_to_seq: Some(2),
        keep: Some(1),
        ..Purge::default()
    };
    assert!(matches!(f.store.purge(&req), Err(StoreError::InvalidPurge)));
}

pub(super) fn sequences_are_never_reused_after_purge(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    fill(&mut f, &["a", "b"]);
    f.store.purge(&Purge::default()).unwrap();
    f.reopen();
    assert_eq!(f.put("a", b""), 3);
    f.store.delete(3).unwrap();
    f.reopen();
    assert_eq!(f.put("a", b""), 4);
}
