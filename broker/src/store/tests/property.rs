//! The property test: random operations on a store and on the model side by side, with
//! reopens of the file store in between; after every step the two must agree on the state,
//! every message, the per-subject counters and the filtered lookups.

use std::time::Duration;

use proptest::prelude::*;

use super::model::{Model, ModelMsg};
use super::{Backend, Fixture};
use crate::store::{Discard, FileConfig, Limits, Purge, StoreError};

const SUBJECTS: [&str; 5] = ["a.1", "a.2", "b.1", "b.2.x", "c"];
const FILTERS: [&str; 9] = ["a.1", "b.2.x", "c", "a.*", "b.>", "*.1", ">", "d", "*.*"];

#[derive(Debug, Clone)]
enum Op {
    Append {
        subject: usize,
        headers: bool,
        len: usize,
        dt: i64,
    },
    Delete(u16),
    Purge {
        filter: Option<usize>,
        seq: Option<u16>,
        keep: Option<u8>,
    },
    Expire(i64),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..SUBJECTS.len(), any::<bool>(), 0..200usize, 0..40i64)
            .prop_map(|(subject, headers, len, dt)| Op::Append { subject, headers, len, dt }),
        3 => any::<u16>().prop_map(Op::Delete),
        1 => (
            proptest::option::of(0..FILTERS.len()),
            proptest::option::weighted(0.3, any::<u16>()),
            proptest::option::weighted(0.3, 0..8u8),
        )
            .prop_map(|(filter, seq, keep)| Op::Purge { filter, seq, keep }),
        1 => (0..200i64).prop_map(Op::Expire),
        1 => Just(Op::Reopen),
    ]
}

fn limits() -> impl Strategy<Value = Limits> {
    let opt = |lo: u64, hi: u64| proptest::option::weighted(0.3, lo..hi);
    (
        (opt(1, 30), opt(300, 4000), opt(50, 600)),
        (opt(1, 5), opt(20, 220)),
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |((msgs, bytes, age), (per_subject, size), (new, per))| Limits {
                max_msgs: msgs,
                max_bytes: bytes,
                max_age: age.map(Duration::from_nanos),
                max_msgs_per_subject: per_subject,
                max_msg_size: size,
                discard: if new { Discard::New } else { Discard::Old },
                discard_new_per_subject: per,
            },
        )
}

/// Applies one operation to both sides and checks the results agree.
fn apply(f: &mut Fixture, model: &mut Model, op: &Op) {
    match *op {
        Op::Append {
            subject,
            headers,
            len,
            dt,
        } => {
            f.advance(dt);
            let subject = SUBJECTS[subject];
            let hdr = headers.then(|| b"NATS/1.0\r\nK: v\r\n\r\n".to_vec());
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let size = f.store.msg_size(subject, hdr.as_deref(), &payload);
            let got = f.store.append(subject, hdr.as_deref(), &payload, f.now());
            let msg = ModelMsg {
                subject: subject.to_string(),
                headers: hdr,
                payload,
                ts: f.now(),
                size,
            };
            match (got, model.append(msg)) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(StoreError::LimitExceeded(a)), Err(b)) => assert_eq!(a, b),
                (got, want) => panic!("append: store {got:?}, model {want:?}"),
            }
        }
        Op::Delete(pick) => {
            let seqs: Vec<u64> = model.msgs.keys().copied().collect();
            let seq = match seqs.len() {
                n if n > 0 && pick % 4 != 0 => seqs[pick as usize % n],
                _ => u64::from(pick) % (model.last_seq + 3),
            };
            assert_eq!(
                f.store.delete(seq).unwrap(),
                model.delete(seq),
                "delete {seq}"
            );
        }
        Op::Purge { filter, seq, keep } => {
            let req = Purge {
                filter: filter.map(|i| FILTERS[i].to_string()),
                up_to_seq: seq.map(|s| u64::from(s) % (model.last_seq + 6)),
                keep: keep.map(u64::from),
            };
            match (f.store.purge(&req), model.purge(&req)) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{req:?}"),
                (Err(StoreError::InvalidPurge), Err(StoreError::InvalidPurge)) => {}
                (got, want) => panic!("purge {req:?}: store {got:?}, model {want:?}"),
            }
        }
        Op::Expire(dt) => {
            f.advance(dt);
            let removed = f.store.expire(f.now()).unwrap().removed;
            assert_eq!(removed, model.expire(f.now()));
        }
        Op::Reopen => f.reopen(),
    }
}

/// Everything a reader can see agrees with the model.
fn check(f: &Fixture, model: &Model) {
    assert_eq!(f.store.state(), model.state());
    for seq in 0..=model.last_seq + 1 {
        let got = f.store.get(seq).unwrap();
        let want = model.msgs.get(&seq);
        assert_eq!(got.is_some(), want.is_some(), "presence of {seq}");
        if let (Some(got), Some(want)) = (got, want) {
            assert_eq!(got.subject, want.subject);
            assert_eq!(got.headers.as_deref(), want.headers.as_deref());
            assert_eq!(&got.payload[..], &want.payload[..]);
            assert_eq!(got.timestamp, want.ts);
        }
    }
    let first = model.state().first_seq;
    for name in FILTERS {
        let filter = Some(name);
        assert_eq!(f.store.subjects_state(filter), model.subjects_state(filter));
        let last = f.store.get_last_by_subject(name).unwrap().map(|m| m.seq);
        assert_eq!(last, model.last_by(name), "{name}");
        for start in [0, first + 1, first + 5, model.last_seq] {
            let np = f.store.num_pending(start, filter);
            assert_eq!(np, model.num_pending(start, filter), "{start} {filter:?}");
            let next = f.store.get_next(start, filter).unwrap().map(|m| m.seq);
            assert_eq!(next, model.next(start, filter), "{start} {filter:?}");
        }
    }
}

fn run(backend: Backend, limits: Limits, ops: &[Op]) {
    let config = FileConfig {
        segment_size: 1024,
        ..FileConfig::default()
    };
    let mut f = Fixture::with_config(backend, limits.clone(), config);
    let mut model = Model::new(limits);
    for op in ops {
        apply(&mut f, &mut model, op);
        check(&f, &model);
    }
}

proptest! {
    #[test]
    fn file_store_agrees_with_the_model(limits in limits(), ops in prop::collection::vec(op(), 1..60)) {
        run(Backend::File, limits, &ops);
    }

    #[test]
    fn memory_store_agrees_with_the_model(limits in limits(), ops in prop::collection::vec(op(), 1..60)) {
        run(Backend::Memory, limits, &ops);
    }
}
