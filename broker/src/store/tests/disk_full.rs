//! A full disk (`ENOSPC`), simulated by the write seam (`file/disk.rs`): the write fails, what
//! did not reach the disk is taken back, nothing synced before is lost, the sequence keeps
//! moving forward, and the store works again once there is room, without reopening.

use std::fs;

use super::{Backend, Fixture};
use crate::store::file::{set_free, set_sync_error};
use crate::store::{FileConfig, Limits, Purge, StoreError, UsageGauge};

/// A file store with `count` messages, synced.
fn synced(count: usize) -> Fixture {
    set_free(None);
    let mut f = Fixture::new(Backend::File, Limits::default());
    for i in 0..count {
        f.put("orders", &[i as u8; 50]);
    }
    f.store.sync().unwrap();
    f
}

/// The one segment file of a store that has not rolled.
fn only_segment(f: &Fixture) -> std::path::PathBuf {
    let mut files = fs::read_dir(f.path()).unwrap();
    let segment = files.next().unwrap().unwrap().path();
    assert!(files.next().is_none(), "one segment");
    segment
}

fn is_full<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::StorageFull { .. }))
}

#[test]
fn a_full_disk_takes_back_the_unwritten_and_keeps_the_synced() {
    let mut f = synced(5);
    set_free(Some(10));
    assert_eq!(f.put("orders", b"buffered"), 6, "an append only buffers");
    let failed = f.store.sync();
    let text = failed.as_ref().unwrap_err().to_string();
    assert!(is_full(failed), "{text}");
    assert!(text.ends_with("no space left on device"), "{text}");
    assert_eq!(f.seqs(), vec![1, 2, 3, 4, 5]);
    assert_eq!(f.store.state().last_seq, 6, "sequence 6 is not reused");
    assert_eq!(f.store.take_rewound().map(|r| r.from), Some(6));
    assert_eq!(f.store.take_rewound(), None);

    assert!(is_full(f.store.append("orders", None, b"refused", 10)));
    assert_eq!(f.store.state().msgs, 5, "a refused append leaves nothing");

    set_free(None);
    assert_eq!(f.put("orders", b"room again"), 7);
    f.store.sync().unwrap();
    f.reopen();
    assert_eq!(f.seqs(), vec![1, 2, 3, 4, 5, 7]);
    assert_eq!(f.msg(7).payload.as_ref(), b"room again");
}

#[test]
fn a_purge_works_while_the_disk_is_full_when_its_record_fits() {
    let mut f = synced(5);
    set_free(Some(10));
    f.put("orders", b"lost");
    assert!(is_full(f.store.sync()));
    set_free(Some(40));
    let purged = f.store.purge(&Purge::default()).unwrap();
    f.store.commit().unwrap();
    assert_eq!(purged, 5);
    set_free(None);
    assert_eq!(f.put("orders", b"after"), 7);
    f.reopen();
    assert_eq!(f.seqs(), vec![7]);
}

#[test]
fn a_purge_that_cannot_be_written_is_undone_and_works_once_there_is_room() {
    let mut f = synced(5);
    set_free(Some(0));
    f.store.purge(&Purge::default()).unwrap();
    assert!(is_full(f.store.commit()));
    assert_eq!(f.seqs(), vec![1, 2, 3, 4, 5], "the purge was taken back");
    set_free(None);
    assert_eq!(f.store.purge(&Purge::default()).unwrap(), 5);
    f.store.commit().unwrap();
    f.reopen();
    assert!(f.seqs().is_empty());
}

#[test]
fn a_torn_record_left_by_a_full_disk_is_cut_on_reopen() {
    let mut f = synced(3);
    set_free(Some(0));
    f.store.delete(2).unwrap();
    assert!(is_full(f.store.commit()), "the delete cannot be written");
    let segment = only_segment(&f);
    let whole = fs::metadata(&segment).unwrap().len();
    // Full since the rewind: the next append is written at once, part of it gets there, and
    // it is cut at once.
    set_free(Some(20));
    assert!(is_full(f.store.append("orders", None, b"torn", 5)));
    assert_eq!(fs::metadata(&segment).unwrap().len(), whole);
    // A torn record left by a crash at that moment is cut on reopen.
    set_free(None);
    let torn = fs::OpenOptions::new().append(true).open(&segment).unwrap();
    std::io::Write::write_all(&mut &torn, &[0xAB; 20]).unwrap();
    drop(torn);
    assert_eq!(fs::metadata(&segment).unwrap().len(), whole + 20);
    let dir = f.dir.take().unwrap();
    drop(f);
    let store = crate::store::Store::open_file(dir.path(), super::config(), Limits::default());
    let mut store = store.unwrap();
    assert_eq!(
        fs::metadata(&segment).unwrap().len(),
        whole,
        "the torn record is cut"
    );
    assert_eq!(store.state().msgs, 3);
    assert_eq!(store.append("orders", None, b"next", 6).unwrap(), 4);
}

#[test]
fn acknowledged_messages_survive_a_disk_filling_across_segment_rolls() {
    let mut f = synced(0);
    let mut acked = Vec::new();
    set_free(Some(6000));
    for i in 0..200u64 {
        let Ok(seq) = f.store.append("orders", None, &[7; 100], i as i64 + 1) else {
            continue;
        };
        if f.store.sync().is_ok() {
            acked.push(seq);
        }
    }
    assert!(!acked.is_empty() && acked.len() < 200, "{}", acked.len());
    set_free(None);
    let next = f.put("orders", b"room again");
    f.store.sync().unwrap();
    acked.push(next);
    f.reopen();
    assert_eq!(f.seqs(), acked, "every synced message, nothing else");
}

#[test]
fn the_usage_gauge_follows_appends_removals_and_drop() {
    set_free(None);
    let gauge = UsageGauge::new();
    let mut f = Fixture::new(Backend::Memory, Limits::default());
    f.put("a", b"one");
    f.store.track_usage(gauge.clone());
    f.put("a", b"two");
    assert_eq!(gauge.get(), f.store.state().bytes);
    f.store.delete(1).unwrap();
    assert_eq!(gauge.get(), f.store.state().bytes);
    drop(f);
    assert_eq!(gauge.get(), 0);
}

#[test]
fn a_purge_gives_back_the_space_of_the_emptied_active_segment() {
    set_free(None);
    let config = FileConfig {
        segment_size: 1 << 20,
        ..FileConfig::default()
    };
    let mut f = Fixture::with_config(Backend::File, Limits::default(), config);
    for _ in 0..100 {
        f.put("orders", &[1; 1000]);
    }
    f.store.commit().unwrap();
    let segment = only_segment(&f);
    assert!(fs::metadata(&segment).unwrap().len() > 100_000);
    // Room for the purge's record only: the cut overwrites and shrinks.
    set_free(Some(36));
    assert_eq!(f.store.purge(&Purge::default()).unwrap(), 100);
    f.store.commit().unwrap();
    assert_eq!(fs::metadata(&segment).unwrap().len(), 32 + 36);
    set_free(None);
    f.reopen();
    assert_eq!(f.put("orders", b"next"), 101);
    f.reopen();
    assert_eq!(f.seqs(), vec![101]);
}

/// A store whose segments are larger than the 256 KiB write buffer, so that it fills.
fn big_segments() -> Fixture {
    let config = FileConfig {
        segment_size: 16 << 20,
        ..FileConfig::default()
    };
    Fixture::with_config(Backend::File, Limits::default(), config)
}

#[test]
fn a_rewind_takes_back_only_what_the_filled_buffer_did_not_write() {
    // Room for one write of the full buffer, not for two.
    set_free(Some(400 * 1024));
    let mut f = big_segments();
    let mut appended = Vec::new();
    let failed = loop {
        match f
            .store
            .append("orders", None, &[3; 1000], appended.len() as i64 + 1)
        {
            Ok(seq) => appended.push(seq),
            Err(e) => break e,
        }
        assert!(appended.len() < 1000, "the disk never filled");
    };
    assert!(failed.is_storage_full(), "{failed}");
    let from = f.store.take_rewound().expect("a rewind").from;
    assert!(from > 200 && from <= *appended.last().unwrap(), "{from}");
    let mut kept: Vec<u64> = appended.iter().copied().filter(|&s| s < from).collect();
    assert_eq!(
        f.seqs(),
        kept,
        "what the buffer wrote stays, the rest is gone"
    );
    f.store.sync().unwrap();
    set_free(None);
    kept.push(f.put("orders", b"room again"));
    f.reopen();
    assert_eq!(f.seqs(), kept);
}

#[test]
fn a_delete_or_purge_that_finds_the_disk_full_says_what_it_took_back() {
    for purge in [false, true] {
        let mut f = synced(3);
        f.put("orders", b"buffered 4");
        f.put("orders", b"buffered 5");
        set_free(Some(0));
        if purge {
            f.store.purge(&Purge::default()).unwrap();
        } else {
            f.store.delete(2).unwrap();
        }
        assert!(is_full(f.store.commit()));
        let rewound = f.store.take_rewound().expect("a rewind");
        assert_eq!(rewound.from, 4, "purge {purge}");
        assert!(rewound.error().is_storage_full());
        assert_eq!(f.seqs(), vec![1, 2, 3], "purge {purge}");
        set_free(None);
    }
}

#[test]
fn rewinds_not_yet_taken_keep_the_lowest_sequence() {
    let mut f = synced(3);
    f.put("orders", b"buffered 4");
    set_free(Some(0));
    assert!(is_full(f.store.flush()));
    set_free(None);
    assert_eq!(f.put("orders", b"written at once"), 5);
    f.put("orders", b"buffered 6");
    set_free(Some(0));
    assert!(is_full(f.store.commit()));
    assert_eq!(f.store.take_rewound().map(|r| r.from), Some(4));
    assert_eq!(f.store.take_rewound(), None);
    set_free(None);
    assert_eq!(f.seqs(), vec![1, 2, 3, 5]);
}

#[test]
fn an_fsync_that_finds_the_disk_full_fails_the_store() {
    let mut f = synced(3);
    f.put("orders", b"written, not synced");
    set_sync_error(Some(libc::ENOSPC));
    let failed = f.store.sync();
    set_sync_error(None);
    assert!(
        matches!(failed, Err(StoreError::Io { .. })),
        "not a full disk: {failed:?}"
    );
    assert_eq!(f.store.take_rewound(), None, "nothing taken back");
    assert!(matches!(
        f.store.append("orders", None, b"after", 9),
        Err(StoreError::Failed)
    ));
    assert_eq!(reopened(f).1, vec![1, 2, 3, 4], "what was written is there");
}

#[test]
fn an_fsync_outside_the_store_that_fails_fails_it_too() {
    let mut f = synced(3);
    f.put("orders", b"written, not synced");
    let handle = f.store.prepare_sync().unwrap();
    set_sync_error(Some(libc::EDQUOT));
    let failed = handle.sync();
    set_sync_error(None);
    let failed = failed.unwrap_err();
    assert!(!failed.is_storage_full(), "{failed}");
    f.store.fail();
    assert!(matches!(f.store.sync(), Err(StoreError::Failed)));
    assert_eq!(reopened(f).1, vec![1, 2, 3, 4], "what was written is there");
}

/// Opens a failed store's directory again (a failed store cannot sync, as `reopen` does).
fn reopened(mut f: Fixture) -> (Fixture, Vec<u64>) {
    let dir = f.dir.as_ref().unwrap().path().to_path_buf();
    f.store = crate::store::Store::memory(Limits::default());
    f.store = crate::store::Store::open_file(&dir, f.config, Limits::default()).unwrap();
    let seqs = f.seqs();
    (f, seqs)
}
