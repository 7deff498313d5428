//! The file store's own behaviour: segments, reclaiming them, and refusing corruption.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Backend, Fixture};
use crate::store::{FileConfig, Limits, Purge, Store, StoreError, SyncPolicy};

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn filled(count: usize) -> Fixture {
    let mut f = Fixture::new(Backend::File, Limits::default());
    for i in 0..count {
        f.put(if i % 2 == 0 { "even" } else { "odd" }, &[i as u8; 100]);
    }
    f
}

#[test]
fn segments_roll_over_at_the_configured_size_with_zero_padded_names() {
    let mut f = filled(100);
    f.store.sync().unwrap();
    let files = segment_files(&f.path());
    assert!(files.len() > 2, "{files:?}");
    assert_eq!(name(&files[0]), "00000000000000000001.log");
    for file in &files {
        assert!(fs::metadata(file).unwrap().len() <= 4096 + 200, "{file:?}");
        let base: u64 = name(file)[..20].parse().unwrap();
        assert_eq!(f.store.get(base).unwrap().unwrap().seq, base);
    }
    f.reopen();
    assert_eq!(f.seqs().len(), 100);
}

#[test]
fn segments_below_a_purge_are_removed() {
    let mut f = filled(100);
    let before = segment_files(&f.path()).len();
    let req = Purge {
        up_to_seq: Some(80),
        ..Purge::default()
    };
    f.store.purge(&req).unwrap();
    let files = segment_files(&f.path());
    assert!(files.len() < before, "{files:?}");
    let oldest: u64 = name(&files[0])[..20].parse().unwrap();
    assert!(oldest <= 80 && oldest > 1);
    f.reopen();
    assert_eq!(f.seqs(), (80..=100).collect::<Vec<_>>());
    f.store.purge(&Purge::default()).unwrap();
    assert_eq!(segment_files(&f.path()).len(), 1);
    f.reopen();
    assert_eq!(f.put("x", b""), 101);
}

#[test]
fn an_interior_segment_emptied_by_deletes_is_removed() {
    let mut f = filled(100);
    let files = segment_files(&f.path());
    let base = |i: usize| -> u64 { name(&files[i])[..20].parse().unwrap() };
    let (from, to) = (base(1), base(2));
    for seq in from..to {
        f.store.delete(seq).unwrap();
    }
    assert!(!files[1].exists());
    f.reopen();
    assert_eq!(f.store.get(from).unwrap(), None);
    assert_eq!(f.store.state().num_deleted, to - from);
}

#[test]
fn a_segment_holding_tombstones_for_an_older_one_is_kept() {
    let mut f = Fixture::new(Backend::File, Limits::default());
    f.put("a", &[0; 100]);
    f.put("a", &[0; 100]);
    while segment_files(&f.path()).len() < 2 {
        f.put("b", &[0; 100]);
    }
    // The tombstone of 2 lands in the second segment.
    f.store.delete(2).unwrap();
    let second = segment_files(&f.path())[1].clone();
    let base: u64 = name(&second)[..20].parse().unwrap();
    while segment_files(&f.path()).len() < 3 {
        f.put("c", &[0; 100]);
    }
    let third: u64 = name(&segment_files(&f.path())[2])[..20].parse().unwrap();
    for seq in base..third {
        f.store.delete(seq).unwrap();
    }
    assert!(second.exists(), "dropping it would bring message 2 back");
    f.reopen();
    assert_eq!(f.store.get(2).unwrap(), None);
    let req = Purge {
        up_to_seq: Some(base),
        ..Purge::default()
    };
    f.store.purge(&req).unwrap();
    assert!(!second.exists(), "gone with the first segment");
    f.reopen();
    assert_eq!(f.store.state().first_seq, third);
}

#[test]
fn corruption_in_a_closed_segment_fails_open_with_file_and_offset() {
    let mut f = filled(100);
    f.store.sync().unwrap();
    let first = segment_files(&f.path())[0].clone();
    let mut bytes = fs::read(&first).unwrap();
    // The third record: header 32 bytes, records of 36 + 4 + 100 or 36 + 3 + 100 bytes.
    let offset = 32 + 140 + 139;
    bytes[offset + 60] ^= 0x40;
    fs::write(&first, bytes).unwrap();
    let dir = f.dir.take().unwrap();
    drop(f.store);
    match Store::open_file(dir.path(), f.config, Limits::default()) {
        Err(StoreError::Corrupt {
            path,
            offset: at,
            reason,
        }) => {
            assert_eq!((path, at), (first, offset as u64), "{reason}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn reading_a_record_that_went_bad_on_disk_is_an_error() {
    let mut f = filled(100);
    f.store.sync().unwrap();
    let first = segment_files(&f.path())[0].clone();
    let mut bytes = fs::read(&first).unwrap();
    bytes[32 + 50] ^= 1;
    fs::write(&first, bytes).unwrap();
    assert!(matches!(f.store.get(1), Err(StoreError::Corrupt { .. })));
    assert_eq!(f.msg(2).seq, 2);
}

#[test]
fn files_that_are_not_segments_are_left_alone() {
    let mut f = filled(3);
    fs::write(f.path().join("notes.txt"), b"hi").unwrap();
    fs::write(f.path().join("1.log"), b"not a segment").unwrap();
    f.reopen();
    assert_eq!(f.seqs(), [1, 2, 3]);
    assert!(f.path().join("1.log").exists());
}

#[test]
fn an_empty_last_segment_left_by_a_crash_gets_its_header_back() {
    let mut f = filled(3);
    let last_ts = f.now();
    f.store.sync().unwrap();
    fs::write(f.path().join("00000000000000000004.log"), b"").unwrap();
    f.reopen();
    assert_eq!(f.store.state().last_ts, last_ts);
    assert_eq!(f.put("a", b""), 4);
    f.reopen();
    assert_eq!(f.seqs(), [1, 2, 3, 4]);
}

#[test]
fn the_sync_policy_is_recorded_for_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let config = FileConfig {
        sync: SyncPolicy::Interval(Duration::from_secs(1)),
        ..FileConfig::default()
    };
    let store = Store::open_file(dir.path(), config, Limits::default()).unwrap();
    assert_eq!(
        store.sync_policy(),
        SyncPolicy::Interval(Duration::from_secs(1))
    );
    assert_eq!(
        Store::memory(Limits::default()).sync_policy(),
        SyncPolicy::Never
    );
    assert_eq!(FileConfig::default().sync, SyncPolicy::Always);
}

#[test]
fn flushed_appends_survive_without_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_file(dir.path(), FileConfig::default(), Limits::default()).unwrap();
    store.append("a", None, b"x", 1).unwrap();
    store.flush().unwrap();
    // A crashed process never runs its destructors; the OS still has the written bytes.
    std::mem::forget(store);
    let store = Store::open_file(dir.path(), FileConfig::default(), Limits::default()).unwrap();
    assert_eq!(store.state().msgs, 1);
}

#[test]
fn a_message_larger_than_a_segment_gets_a_segment_of_its_own() {
    let mut f = filled(3);
    let big = vec![7; 10_000];
    let seq = f.put("big", &big);
    f.put("after", b"");
    f.reopen();
    assert_eq!(&f.msg(seq).payload[..], &big[..]);
    assert_eq!(f.seqs(), [1, 2, 3, 4, 5]);
    let names: Vec<String> = segment_files(&f.path()).iter().map(|p| name(p)).collect();
    assert!(
        names.contains(&"00000000000000000004.log".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"00000000000000000005.log".to_string()),
        "{names:?}"
    );
}
