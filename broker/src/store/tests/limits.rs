//! Stream limits, on both backends, with nats-server's semantics.

use std::time::Duration;

use super::{Backend, Fixture};
use crate::store::{Discard, Limit, Limits, StoreError};

fn refused(result: Result<u64, StoreError>) -> Limit {
    match result {
        Err(StoreError::LimitExceeded(limit)) => limit,
        other => panic!("expected a limit error, got {other:?}"),
    }
}

pub(super) fn max_msgs_with_discard_old_evicts_the_oldest(b: Backend) {
    let limits = Limits {
        max_msgs: Some(3),
        ..Limits::default()
    };
    let mut f = Fixture::new(b, limits);
    for i in 0..5 {
        f.put("s", &[i]);
    }
    f.reopen();
    assert_eq!(f.seqs(), [3, 4, 5]);
    let st = f.store.state();
    assert_eq!((st.msgs, st.first_seq, st.last_seq), (3, 3, 5));
}

pub(super) fn max_msgs_with_discard_new_refuses_and_names_the_limit(b: Backend) {
    let limits = Limits {
        max_msgs: Some(2),
        discard: Discard::New,
        ..Limits::default()
    };
    let mut f = Fixture::new(b, limits);
    f.put("s", b"1");
    f.put("s", b"2");
    let err = f.store.append("s", None, b"3", 9);
    assert_eq!(refused(err), Limit::MaxMsgs);
    assert_eq!(Limit::MaxMsgs.to_string(), "maximum messages exceeded");
    assert_eq!(f.store.state().last_seq, 2);
    f.store.delete(1).unwrap();
    assert_eq!(f.put("s", b"3"), 3);
}

pub(super) fn max_bytes_with_discard_old_evicts_until_under(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    let size = f.store.msg_size("s", None, &[0; 10]);
    let limits = Limits {
        max_bytes: Some(size * 3 + 1),
        ..Limits::default()
    };
    f.store.set_limits(limits).unwrap();
    for _ in 0..4 {
        f.put("s", &[0; 10]);
    }
    assert_eq!(f.seqs(), [2, 3, 4]);
    // A large message evicts as many as needed.
    let big = vec![0; size as usize * 2];
    f.put("s", &big);
    f.reopen();
    assert_eq!(f.seqs(), [5]);
    assert_eq!(f.store.state().bytes, f.store.msg_size("s", None, &big));
}

pub(super) fn max_bytes_with_discard_new_refuses_on_reaching_the_limit(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    let size = f.store.msg_size("s", None, b"x");
    f.store
        .set_limits(Limits {
            max_bytes: Some(size * 2),
            discard: Discard::New,
            ..Limits::default()
        })
        .unwrap();
    f.put("s", b"x");
    // nats-server refuses when bytes + size >= max_bytes: the stream never reaches it.
    assert_eq!(refused(f.store.append("s", None, b"x", 5)), Limit::MaxBytes);
    assert_eq!(f.store.state().msgs, 1);
}

pub(super) fn per_subject_limit_evicts_that_subjects_oldest_even_with_discard_new(b: Backend) {
    for discard in [Discard::Old, Discard::New] {
        let limits = Limits {
            max_msgs_per_subject: Some(2),
            discard,
            ..Limits::default()
        };
        let mut f = Fixture::new(b, limits);
        for s in ["a", "b", "a", "a", "b", "a"] {
            f.put(s, b"");
        }
        f.reopen();
        assert_eq!(f.seqs(), [2, 4, 5, 6], "{discard:?}");
        assert_eq!(f.store.subjects_state(Some("a"))["a"].first, 4);
        assert_eq!(f.store.state().num_deleted, 1);
    }
}

pub(super) fn discard_new_per_subject_refuses_at_the_subject_limit(b: Backend) {
    let limits = Limits {
        max_msgs_per_subject: Some(1),
        discard: Discard::New,
        discard_new_per_subject: true,
        ..Limits::default()
    };
    let mut f = Fixture::new(b, limits);
    f.put("a", b"");
    f.put("b", b"");
    assert_eq!(
        refused(f.store.append("a", None, b"", 9)),
        Limit::MaxMsgsPerSubject
    );
    assert_eq!(f.seqs(), [1, 2]);
}

pub(super) fn discard_new_lets_a_replacing_message_past_max_msgs(b: Backend) {
    let limits = Limits {
        max_msgs: Some(2),
        max_msgs_per_subject: Some(1),
        discard: Discard::New,
        ..Limits::default()
    };
    let mut f = Fixture::new(b, limits);
    f.put("a", b"");
    f.put("b", b"");
    assert_eq!(f.put("a", b""), 3);
    assert_eq!(f.seqs(), [2, 3]);
    assert_eq!(refused(f.store.append("c", None, b"", 9)), Limit::MaxMsgs);
}

pub(super) fn max_msg_size_refuses_large_headers_plus_payload(b: Backend) {
    let limits = Limits {
        max_msg_size: Some(10),
        ..Limits::default()
    };
    let mut f = Fixture::new(b, limits);
    f.store.append("a", Some(b"12345"), b"12345", 1).unwrap();
    let err = f.store.append("a", Some(b"12345"), b"123456", 2);
    assert_eq!(refused(err), Limit::MaxMsgSize);
    assert_eq!(f.store.state().last_seq, 1);
}

pub(super) fn expire_removes_messages_older_than_max_age_and_says_when_next(b: Backend) {
    let limits = Limits {
        max_age: Some(Duration::from_nanos(100)),
        ..Limits::default()
    };
    let mut f = Fixture::new(b, limits);
    f.put("a", b"");
    f.put("b", b"");
    let t2 = f.now();
    f.advance(50);
    f.put("a", b"");
    let t3 = f.now();
    assert_eq!(f.store.next_expiry(), Some(t2 - 1 + 100));
    let out = f.store.expire(t2 + 99).unwrap();
    assert_eq!((out.removed, out.next_due), (1, Some(t2 + 100)));
    let out = f.store.expire(t2 + 100).unwrap();
    assert_eq!((out.removed, out.next_due), (1, Some(t3 + 100)));
    f.reopen();
    assert_eq!(f.seqs(), [3]);
    let out = f.store.expire(t3 + 1000).unwrap();
    assert_eq!((out.removed, out.next_due), (1, None));
    let st = f.store.state();
    assert_eq!((st.msgs, st.first_seq, st.last_seq), (0, 4, 3));
}

pub(super) fn expire_stops_at_the_first_young_message(b: Backend) {
    let limits = Limits {
        max_age: Some(Duration::from_nanos(10)),
        ..Limits::default()
    };
    let mut f = Fixture::new(b, limits);
    f.store.append("a", None, b"", 100).unwrap();
    f.store.append("a", None, b"", 500).unwrap();
    f.store.append("a", None, b"", 50).unwrap();
    assert_eq!(f.store.expire(200).unwrap().removed, 1);
    assert_eq!(f.seqs(), [2, 3]);
    let mut plain = Fixture::new(b, Limits::default());
    plain.put("a", b"");
    assert_eq!(plain.store.expire(i64::MAX).unwrap().removed, 0);
}

pub(super) fn shrinking_limits_enforces_them_at_once(b: Backend) {
    let mut f = Fixture::new(b, Limits::default());
    for s in ["a", "a", "b", "a", "b", "c"] {
        f.put(s, b"");
    }
    let limits = Limits {
        max_msgs_per_subject: Some(1),
        ..Limits::default()
    };
    f.store.set_limits(limits).unwrap();
    assert_eq!(f.seqs(), [4, 5, 6]);
    let limits = Limits {
        max_msgs: Some(2),
        ..f.store.limits().clone()
    };
    f.store.set_limits(limits).unwrap();
    assert_eq!(f.seqs(), [5, 6]);
    f.reopen();
    assert_eq!(f.store.state().first_seq, 5);
}
