//! A full disk under group commit (`--sync always`), through the store's write seam: a PubAck
//! waiting for its fsync never says "stored" for a message a rewind took back, whatever write
//! rewound (a later publish, a delete, a purge), and the `Nats-Msg-Id` of such a message is
//! not a duplicate when the publisher retries.

use std::path::Path;

use super::super::dedup::Dedup;
use super::super::StreamConfig;
use super::*;
use crate::store::{set_free, FileConfig, Store};

fn stream(dir: &Path) -> StreamInner {
    let config = serde_json::from_str::<StreamConfig>(r#"{"name":"S","subjects":["s.>"]}"#)
        .unwrap()
        .normalize()
        .unwrap();
    // Segments larger than the write buffer, so that it fills before a segment rolls.
    let file = FileConfig {
        segment_size: 16 << 20,
        ..FileConfig::default()
    };
    let store = Store::open_file(dir, file, config.limits()).unwrap();
    StreamInner {
        dedup: Dedup::new(config.duplicate_window),
        config,
        store,
        last_msg_id: String::new(),
        awaiting_sync: Vec::new(),
        compiled: Default::default(),
        republish_out: None,
    }
}

fn msg_id(id: &str) -> Vec<u8> {
    format!("NATS/1.0\r\nNats-Msg-Id: {id}\r\n\r\n").into_bytes()
}

/// Publishes as `receive` does under group commit: a stored message's PubAck waits.
fn publish(s: &mut StreamInner, id: Option<&str>, payload: &[u8]) -> Result<u64, ApiError> {
    let headers = id.map(msg_id);
    let admission = Admission {
        interested: true,
        resources_exceeded: false,
        account: None,
    };
    match s.ingest("s.a", headers.as_deref(), payload, admission)? {
        Ingested::Stored(seq) => {
            s.awaiting_sync.push(AwaitingAck {
                reply: format!("reply.{seq}"),
                body: b"stored".to_vec(),
                acknowledges: true,
                stored: Some(seq),
            });
            Ok(seq)
        }
        Ingested::Duplicate(seq) => panic!("called a duplicate of {seq}"),
        Ingested::Skipped(seq) => Ok(seq),
    }
}

fn is_refused_for_full_disk(ack: &AwaitingAck) -> bool {
    let body = String::from_utf8_lossy(&ack.body);
    !ack.acknowledges && body.contains("10077") && body.contains("no space left on device")
}

/// What the commit task does with the waiting PubAcks: prepare, fsync, and the PubAcks
/// that may say "stored" (`acknowledges`) once it succeeded.
fn commit(s: &mut StreamInner) -> Vec<AwaitingAck> {
    let mut handle = s.store.prepare_sync();
    if matches!(&handle, Err(e) if e.is_storage_full()) {
        handle = s.store.prepare_sync();
    }
    s.forget_rewound();
    let acks = std::mem::take(&mut s.awaiting_sync);
    handle.unwrap().sync().unwrap();
    acks
}

#[test]
fn a_waiting_pub_ack_of_a_message_a_later_write_took_back_is_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    set_free(None);
    let mut s = stream(dir.path());
    let p1 = publish(&mut s, Some("p1"), b"first").unwrap();
    assert_eq!(p1, 1);
    // P2 fills the write buffer; the write finds the disk full and the rewind takes P1
    // back with it.
    set_free(Some(100));
    let p2 = publish(&mut s, Some("p2"), &vec![7; 300 * 1024]);
    assert_eq!(p2.unwrap_err().err_code, 10077);
    assert_eq!(s.store.state().msgs, 0);
    let acks = commit(&mut s);
    assert_eq!(acks.len(), 1);
    assert!(is_refused_for_full_disk(&acks[0]), "{acks:?}");

    // Room again: P1's retry is stored, not called a duplicate of what was lost.
    set_free(None);
    let retry = publish(&mut s, Some("p1"), b"first").unwrap();
    assert!(retry > p1, "a new sequence");
    assert_eq!(
        s.store.get(retry).unwrap().unwrap().payload.as_ref(),
        b"first"
    );
    set_free(None);
}

#[test]
fn messages_written_when_the_buffer_filled_keep_their_pub_acks() {
    let dir = tempfile::tempdir().unwrap();
    // Room for one write of the 256 KiB buffer, not two.
    set_free(Some(400 * 1024));
    let mut s = stream(dir.path());
    let mut published = Vec::new();
    let refused = loop {
        match publish(&mut s, Some(&format!("m{}", published.len())), &[1; 1000]) {
            Ok(seq) => published.push(seq),
            Err(e) => break e,
        }
        assert!(published.len() < 1000, "the disk never filled");
    };
    assert_eq!(refused.err_code, 10077);
    let acks = commit(&mut s);
    assert_eq!(acks.len(), published.len());
    let (mut kept, mut taken_back) = (0, 0);
    for (ack, &seq) in acks.iter().zip(&published) {
        let stored = s.store.get(seq).unwrap().is_some();
        if stored {
            assert!(ack.acknowledges && ack.body == b"stored", "{seq}: {ack:?}");
            kept += 1;
        } else {
            assert!(is_refused_for_full_disk(ack), "{seq}: {ack:?}");
            taken_back += 1;
        }
    }
    assert!(
        kept > 200 && taken_back > 0,
        "{kept} kept, {taken_back} taken back"
    );
    set_free(None);
}

#[test]
fn a_delete_that_finds_the_disk_full_forgets_the_ids_it_took_back() {
    let dir = tempfile::tempdir().unwrap();
    set_free(None);
    let mut s = stream(dir.path());
    publish(&mut s, Some("keep"), b"kept").unwrap();
    assert!(commit(&mut s)[0].acknowledges);
    let lost = publish(&mut s, Some("lost"), b"buffered").unwrap();
    // An API delete (of another message) whose commit finds the disk full.
    set_free(Some(0));
    s.store.delete(1).unwrap();
    assert!(s.store.commit().unwrap_err().is_storage_full());
    // The next publish is the retry: stored again, not a duplicate of the lost one.
    set_free(None);
    let retry = publish(&mut s, Some("lost"), b"buffered").unwrap();
    assert!(retry > lost);
    let acks = commit(&mut s);
    assert!(is_refused_for_full_disk(&acks[0]), "{acks:?}");
    assert!(acks[1].acknowledges);
    assert_eq!(s.store.get(1).unwrap().unwrap().payload.as_ref(), b"kept");
    assert!(s.store.get(lost).unwrap().is_none());
}

#[test]
fn a_purge_that_finds_the_disk_full_turns_waiting_pub_acks_into_refusals() {
    let dir = tempfile::tempdir().unwrap();
    set_free(None);
    let mut s = stream(dir.path());
    let lost = publish(&mut s, Some("a"), b"buffered").unwrap();
    set_free(Some(0));
    s.store.purge(&Purge::default()).unwrap();
    assert!(s.store.commit().unwrap_err().is_storage_full());
    // The commit task finds nothing to write and its fsync succeeds; the PubAck still
    // must not say "stored".
    set_free(None);
    let acks = commit(&mut s);
    assert!(is_refused_for_full_disk(&acks[0]), "{acks:?}");
    assert!(
        s.dedup.check("a", now_nanos()).is_none(),
        "the id is forgotten"
    );
    let retry = publish(&mut s, Some("a"), b"buffered").unwrap();
    assert!(retry > lost);
}
