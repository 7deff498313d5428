//! Appends, reads, deletes and the counters, on both backends.

use super::{Backend, Fixture};
use crate::store::{Limits, StoreError, SubjectState};

pub(super) fn sequences_start_at_one_and_messages_read_back(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    let hdr = b"NATS/1.0\r\nA: b\r\n\r\n";
    let s1 = f.store.append("orders.new", Some(hdr), b"one", 11).unwrap();
    let s2 = f.store.append("orders.paid", None, b"", 12).unwrap();
    assert_eq!((s1, s2), (1, 2));
    f.reopen();
    let m = f.msg(1);
    assert_eq!(
        (m.seq, m.subject.as_str(), m.timestamp),
        (1, "orders.new", 11)
    );
    assert_eq!(
        (m.headers.as_deref(), &m.payload[..]),
        (Some(&hdr[..]), &b"one"[..])
    );
    let m = f.msg(2);
    assert_eq!(
        (m.headers, &m.payload[..], m.timestamp),
        (None, &b""[..], 12)
    );
    assert_eq!(f.store.get(3).unwrap(), None);
    assert_eq!(f.store.get(0).unwrap(), None);
    let st = f.store.state();
    assert_eq!(
        (st.msgs, st.first_seq, st.first_ts, st.last_seq, st.last_ts),
        (2, 1, 11, 2, 12)
    );
}

pub(super) fn empty_headers_are_stored_as_none(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    f.store.append("a", Some(b""), b"x", 1).unwrap();
    assert_eq!(f.msg(1).headers, None);
    assert_eq!(f.store.state().bytes, f.store.msg_size("a", None, b"x"));
}

pub(super) fn subjects_nats_server_stores_are_kept_and_only_unroutable_ones_refused(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    let too_long = "x".repeat(crate::store::MAX_STORED_SUBJECT_LEN + 1);
    for bad in ["", ".", "a..b", "a.", ".a", too_long.as_str()] {
        let err = f.store.append(bad, None, b"x", 1).unwrap_err();
        assert!(matches!(err, StoreError::InvalidSubject), "{bad:?}: {err}");
    }
    assert_eq!(f.put("ok", b"x"), 1);
    // What nats-server stores from a publish: wildcard characters and odd bytes are literal.
    let longest = "y".repeat(crate::store::MAX_STORED_SUBJECT_LEN);
    let good = ["a.*", "a.>", "*", "a\x0cb", "a b", "k.\u{e9}", &longest];
    for (seq, subject) in (2..).zip(good) {
        assert_eq!(f.put(subject, b"x"), seq, "{subject:?}");
    }
    f.reopen();
    for (seq, subject) in (2..).zip(good) {
        assert_eq!(f.msg(seq).subject, subject);
    }
}

pub(super) fn last_by_subject_follows_appends_and_deletes(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    for s in ["a.1", "b", "a.1", "a.2", "b"] {
        f.put(s, s.as_bytes());
    }
    let last = |f: &Fixture, s: &str| f.store.get_last_by_subject(s).unwrap().map(|m| m.seq);
    assert_eq!(last(&f, "a.1"), Some(3));
    assert_eq!(last(&f, "a.*"), Some(4));
    assert_eq!(last(&f, ">"), Some(5));
    assert_eq!(last(&f, "c"), None);
    assert!(f.store.delete(3).unwrap());
    f.reopen();
    assert_eq!(last(&f, "a.1"), Some(1));
    assert!(f.store.delete(5).unwrap());
    assert_eq!(last(&f, "b"), Some(2));
    assert_eq!(last(&f, ">"), Some(4));
}

pub(super) fn next_by_subject_honours_wildcards(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    for s in ["x.a", "y", "x.b.c", "x.a", "y"] {
        f.put(s, b"");
    }
    let next = |f: &Fixture, at, filter| f.store.get_next(at, filter).unwrap().map(|m| m.seq);
    assert_eq!(next(&f, 0, None), Some(1));
    assert_eq!(next(&f, 2, Some("x.*")), Some(4));
    assert_eq!(next(&f, 2, Some("x.>")), Some(3));
    assert_eq!(next(&f, 1, Some("y")), Some(2));
    assert_eq!(next(&f, 3, Some("y")), Some(5));
    assert_eq!(next(&f, 6, None), None);
    assert_eq!(next(&f, 1, Some("z")), None);
    f.store.delete(2).unwrap();
    assert_eq!(next(&f, 1, Some("y")), Some(5));
}

pub(super) fn interior_deletes_leave_gaps_and_first_deletes_move_first_seq(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    for i in 0..5 {
        f.put("s", &[i]);
    }
    assert!(f.store.delete(3).unwrap());
    assert!(!f.store.delete(3).unwrap());
    assert!(!f.store.delete(9).unwrap());
    let st = f.store.state();
    assert_eq!((st.msgs, st.first_seq, st.num_deleted), (4, 1, 1));
    assert!(f.store.delete(1).unwrap());
    assert!(f.store.delete(2).unwrap());
    f.reopen();
    let st = f.store.state();
    assert_eq!(
        (st.msgs, st.first_seq, st.first_ts, st.num_deleted),
        (2, 4, f.msg(4).timestamp, 0)
    );
    assert_eq!(f.seqs(), [4, 5]);
    assert_eq!(f.store.get(3).unwrap(), None);
}

pub(super) fn deleting_everything_empties_the_stream_but_keeps_last_seq(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    f.put("a", b"1");
    f.put("b", b"2");
    let last_ts = f.now();
    f.store.delete(2).unwrap();
    f.store.delete(1).unwrap();
    f.reopen();
    let st = f.store.state();
    assert_eq!((st.msgs, st.bytes, st.first_seq, st.first_ts), (0, 0, 3, 0));
    assert_eq!(
        (st.last_seq, st.last_ts, st.num_deleted, st.num_subjects),
        (2, last_ts, 0, 0)
    );
    assert_eq!(f.put("a", b"3"), 3);
}

pub(super) fn subjects_state_counts_per_subject_with_filters(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    for s in ["a.x", "a.y", "b", "a.x", "b", "a.x"] {
        f.put(s, b"");
    }
    f.store.delete(6).unwrap();
    f.reopen();
    let all = f.store.subjects_state(None);
    let ss = |msgs, first, last| SubjectState { msgs, first, last };
    assert_eq!(all["a.x"], ss(2, 1, 4));
    assert_eq!(all["a.y"], ss(1, 2, 2));
    assert_eq!(all["b"], ss(2, 3, 5));
    assert_eq!(f.store.subjects_state(Some("a.*")).len(), 2);
    assert_eq!(f.store.subjects_state(Some("b")).len(), 1);
    assert!(f.store.subjects_state(Some("c")).is_empty());
    assert_eq!(f.store.state().num_subjects, 3);
}

pub(super) fn num_pending_counts_from_a_sequence_with_filters(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    for s in ["a", "b", "a", "c.1", "a", "c.2"] {
        f.put(s, b"");
    }
    f.store.delete(3).unwrap();
    let np = |f: &Fixture, at, filter| f.store.num_pending(at, filter);
    assert_eq!(np(&f, 0, None), 5);
    assert_eq!(np(&f, 4, None), 3);
    assert_eq!(np(&f, 1, Some("a")), 2);
    assert_eq!(np(&f, 2, Some("a")), 1);
    assert_eq!(np(&f, 1, Some("c.*")), 2);
    assert_eq!(np(&f, 5, Some("c.>")), 1);
    assert_eq!(np(&f, 7, None), 0);
    assert_eq!(np(&f, 1, Some("zzz")), 0);
}

pub(super) fn bytes_count_subject_headers_and_payload_plus_overhead(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    f.store.append("abc", Some(b"hh"), b"payload", 1).unwrap();
    f.store.append("abc", None, b"payload", 2).unwrap();
    let (with, without) = match b {
        // nats-server's fileStoreMsgSize: 22 + subject + payload + 8, plus 4 + headers.
        Backend::File => (22 + 3 + 4 + 2 + 7 + 8, 22 + 3 + 7 + 8),
        // nats-server's memStoreMsgSize: subject + headers + payload + 16.
        Backend::Memory => (3 + 2 + 7 + 16, 3 + 7 + 16),
    };
    assert_eq!(f.store.msg_size("abc", Some(b"hh"), b"payload"), with);
    assert_eq!(f.store.state().bytes, with + without);
    f.store.delete(1).unwrap();
    f.reopen();
    assert_eq!(f.store.state().bytes, without);
}

pub(super) fn a_new_store_is_empty_at_sequence_zero(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    let st = f.store.state();
    assert_eq!(
        (st.msgs, st.first_seq, st.last_seq, st.last_ts),
        (0, 0, 0, 0)
    );
    f.reopen();
    assert_eq!(f.store.get_next(0, None).unwrap(), None);
    assert_eq!(f.store.get_last_by_subject("a").unwrap(), None);
    assert_eq!(f.store.purge(&Default::default()).unwrap(), 0);
    assert_eq!(f.put("a", b""), 1);
}
