//! One segment file: `{base:020}.log`, a header and then records, append-only. Appends collect
//! in a buffer that [`Segment::flush`] writes out (and [`Segment::sync`] makes durable); reads
//! are served from the file or, for what is not written yet, from the buffer.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::index::{Slot, SlotIndex};
use super::record::{self, Kind, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use crate::store::subjects::Sid;
use crate::store::{StoreError, StoredMsg};

/// An fsync to run later, away from the store's lock (see [`Store::prepare_sync`]).
///
/// [`Store::prepare_sync`]: crate::store::Store::prepare_sync
#[derive(Debug)]
pub struct SyncHandle {
    file: Option<File>,
    path: PathBuf,
}

impl SyncHandle {
    /// A handle with nothing to sync (memory storage).
    pub(crate) fn none() -> SyncHandle {
        SyncHandle {
            file: None,
            path: PathBuf::new(),
        }
    }

    /// Makes what was written before [`Store::prepare_sync`] durable. It blocks for the length
    /// of an fsync: call it from a blocking thread.
    ///
    /// [`Store::prepare_sync`]: crate::store::Store::prepare_sync
    pub fn sync(self) -> Result<(), StoreError> {
        match self.file {
            Some(file) => file.sync_data().map_err(StoreError::io(&self.path)),
            None => Ok(()),
        }
    }
}

/// The file name of the segment starting at `base`.
pub(crate) fn segment_name(base: u64) -> String {
    format!("{base:020}.log")
}

/// The base sequence a segment file name encodes, if it is one.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One open segment.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Its file.
    pub path: PathBuf,
    file: File,
    /// Its messages by sequence.
    pub index: SlotIndex,
    /// The highest sequence outside this segment that a tombstone or compaction in it deletes:
    /// while a segment at or below it exists, dropping this one would bring messages back.
    pub foreign_max: Option<u64>,
    written: u64,
    pending: Vec<u8>,
}

impl Segment {
    /// Creates a new, durable, empty segment starting at `base`.
    pub fn create(dir: &Path, base: u64, last_ts: i64) -> Result<Segment, StoreError> {
        let path = dir.join(segment_name(base));
        let err = StoreError::io(&path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(err)?;
        let mut segment = Segment::from_parts(path, file, SlotIndex::new(base), 0);
        segment.write_header(last_ts)?;
        Ok(segment)
    }

    /// A segment from a recovered file of `len` valid bytes.
    pub fn from_parts(path: PathBuf, file: File, index: SlotIndex, len: u64) -> Segment {
        Segment {
            path,
            file,
            index,
            foreign_max: None,
            written: len,
            pending: Vec::new(),
        }
    }

    /// Writes (or rewrites) the header of an empty segment and syncs it.
    pub fn write_header(&mut self, last_ts: i64) -> Result<(), StoreError> {
        let header = record::encode_segment_header(self.index.base(), last_ts);
        let io = || -> io::Result<()> {
            self.file.set_len(0)?;
            self.file.write_all_at(&header, 0)?;
            self.file.sync_data()
        };
        io().map_err(StoreError::io(&self.path))?;
        self.written = SEGMENT_HEADER_LEN as u64;
        self.pending.clear();
        Ok(())
    }

    /// Bytes in the segment, buffered ones included.
    pub fn len(&self) -> u64 {
        self.written + self.pending.len() as u64
    }

    /// Bytes appended but not yet written to the file.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Appends the message record of the next sequence.
    pub fn append_msg(
        &mut self,
        sid: Sid,
        ts: i64,
        subject: &[u8],
        headers: Option<&[u8]>,
        payload: &[u8],
    ) {
        let offset = self.len() as usize;
        let seq = self.index.next_seq();
        record::encode_msg(&mut self.pending, seq, ts, subject, headers, payload);
        let len = self.len() as usize - offset;
        self.index
            .push(Slot::new(offset, len, headers.is_some(), sid, ts));
    }

    /// Appends a tombstone (`seq` deleted) or a compaction (everything below `seq` removed).
    pub fn append_marker(&mut self, kind: Kind, seq: u64, ts: i64) {
        record::encode_marker(&mut self.pending, kind, seq, ts);
        self.note_marker(kind, seq);
    }

    /// Remembers which older sequences a tombstone or compaction in this segment deletes.
    pub fn note_marker(&mut self, kind: Kind, seq: u64) {
        let base = self.index.base();
        let foreign = match kind {
            Kind::Tombstone => (seq < base).then_some(seq),
            _ => (base > 1 && seq > 1).then(|| seq.min(base) - 1),
        };
        self.foreign_max = self.foreign_max.max(foreign);
    }

    /// Writes buffered records to the file.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let at = self.written;
        self.file
            .write_all_at(&self.pending, at)
            .map_err(StoreError::io(&self.path))?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Writes buffered records and waits until they are on disk.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.flush()?;
        self.file.sync_data().map_err(StoreError::io(&self.path))
    }

    /// Writes buffered records out and returns a handle that makes them durable without this
    /// segment: the fsync can then run while appends go on.
    pub fn flush_for_sync(&mut self) -> Result<SyncHandle, StoreError> {
        self.flush()?;
        let file = self.file.try_clone().map_err(StoreError::io(&self.path))?;
        Ok(SyncHandle {
            file: Some(file),
            path: self.path.clone(),
        })
    }

    /// Reads and checks the live message at `seq`.
    pub fn read(&self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        let Some(slot) = self.index.slot(seq) else {
            return Ok(None);
        };
        let (offset, len) = (u64::from(slot.offset), slot.len());
        let mut buf = vec![0; len];
        if offset >= self.written {
            let at = (offset - self.written) as usize;
            buf.copy_from_slice(&self.pending[at..at + len]);
        } else {
            self.file
                .read_exact_at(&mut buf, offset)
                .map_err(StoreError::io(&self.path))?;
        }
        self.decode(buf, seq, offset).map(Some)
    }

    fn decode(&self, buf: Vec<u8>, seq: u64, offset: u64) -> Result<StoredMsg, StoreError> {
        let corrupt = |reason: &str| StoreError::Corrupt {
            path: self.path.clone(),
            offset,
            reason: reason.to_string(),
        };
        let header: &[u8; RECORD_HEADER_LEN] = buf[..RECORD_HEADER_LEN].try_into().expect("len");
        let h = record::parse_header(header).map_err(corrupt)?;
        if h.len != buf.len() || h.kind != Kind::Msg || h.seq != seq {
            return Err(corrupt("record does not match the index"));
        }
        if !record::checksum_ok(&buf) {
            return Err(corrupt("checksum mismatch"));
        }
        let (subject, headers, payload) = record::body_ranges(&h);
        let subject = std::str::from_utf8(&buf[subject])
            .map_err(|_| corrupt("subject is not UTF-8"))?
            .to_string();
        let buf = Bytes::from(buf);
        Ok(StoredMsg {
            seq,
            subject,
            headers: h.has_headers.then(|| buf.slice(headers)),
            payload: buf.slice(payload),
            timestamp: h.ts,
        })
    }

    /// Closes and deletes the file.
    pub fn remove_file(self) -> Result<(), StoreError> {
        drop(self.file);
        std::fs::remove_file(&self.path).map_err(StoreError::io(&self.path))
    }
}
