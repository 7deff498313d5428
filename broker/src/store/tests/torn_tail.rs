//! Torn tails: whatever a crash leaves after the last whole record of the last segment is cut
//! on open and never served, and appends go on from the right sequence.

use std::fs;
use std::path::{Path, PathBuf};

use crate::store::{FileConfig, Limits, Store};

const SUBJECT: &str = "orders.created";
const PAYLOAD: &[u8] = b"a payload of some thirty bytes!";

/// A closed store of `count` messages in small segments: its directory, last segment, and the
/// offset where the last record of that segment starts.
struct Written {
    _dir: tempfile::TempDir,
    last: PathBuf,
    bytes: Vec<u8>,
    last_record: usize,
}

fn config() -> FileConfig {
    FileConfig {
        segment_size: 4096,
        ..FileConfig::default()
    }
}

fn write(count: u64, delete_last: bool) -> Written {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_file(dir.path(), config(), Limits::default()).unwrap();
    for i in 1..=count {
        store.append(SUBJECT, None, PAYLOAD, i as i64).unwrap();
    }
    if delete_last {
        store.delete(count - 1).unwrap();
    }
    store.sync().unwrap();
    drop(store);
    let mut segments: Vec<PathBuf> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segments.sort();
    let last = segments.pop().unwrap();
    let bytes = fs::read(&last).unwrap();
    let record = if delete_last {
        36
    } else {
        36 + SUBJECT.len() + PAYLOAD.len()
    };
    Written {
        last_record: bytes.len() - record,
        _dir: dir,
        last,
        bytes,
    }
}

/// Writes `bytes` as the last segment, opens the store and checks that a damaged tail was cut,
/// the store holds exactly 1..=`msgs` (less `gap`), appends continue at `next`, and all of it
/// survives another open.
fn open_with_tail(w: &Written, bytes: &[u8], msgs: u64, gap: Option<u64>, next: u64) {
    fs::write(&w.last, bytes).unwrap();
    let dir: &Path = w.last.parent().unwrap();
    let mut store = Store::open_file(dir, config(), Limits::default()).unwrap();
    let intact = bytes == w.bytes;
    let expected_len = if intact { bytes.len() } else { w.last_record };
    assert_eq!(
        fs::metadata(&w.last).unwrap().len(),
        expected_len as u64,
        "cut at the record"
    );
    let live = msgs - u64::from(gap.is_some());
    assert_eq!(store.state().msgs, live);
    assert_eq!(store.state().last_seq, msgs);
    for seq in 1..=msgs {
        let m = store.get(seq).unwrap();
        assert_eq!(m.is_none(), Some(seq) == gap, "seq {seq}");
    }
    assert_eq!(store.get(msgs + 1).unwrap(), None);
    assert_eq!(store.append(SUBJECT, None, b"after", 0).unwrap(), next);
    store.sync().unwrap();
    drop(store);
    let store = Store::open_file(dir, config(), Limits::default()).unwrap();
    assert_eq!(store.state().msgs, live + 1);
    assert_eq!(&store.get(next).unwrap().unwrap().payload[..], b"after");
}

#[test]
fn every_cut_inside_the_last_record_falls_back_to_the_record_before() {
    // 60 records of 81 bytes: the last one is in the second segment.
    let w = write(60, false);
    for cut in w.last_record..w.bytes.len() {
        open_with_tail(&w, &w.bytes[..cut], 59, None, 60);
    }
}

#[test]
fn every_flipped_byte_in_the_last_record_cuts_it() {
    let w = write(60, false);
    for at in w.last_record..w.bytes.len() {
        let mut bytes = w.bytes.clone();
        bytes[at] ^= 0x10;
        open_with_tail(&w, &bytes, 59, None, 60);
    }
}

#[test]
fn zero_padding_after_the_last_record_is_cut() {
    let w = write(10, false);
    let mut bytes = w.bytes[..w.last_record].to_vec();
    bytes.resize(bytes.len() + 4096, 0);
    open_with_tail(&w, &bytes, 9, None, 10);
}

#[test]
fn a_torn_tombstone_is_cut_and_its_message_is_back() {
    let w = write(10, true);
    for cut in w.last_record..w.bytes.len() {
        open_with_tail(&w, &w.bytes[..cut], 10, None, 11);
    }
    open_with_tail(&w, &w.bytes, 10, Some(9), 11);
}
