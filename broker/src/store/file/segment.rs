//! One segment file: `{base:020}.log`, a header and then records, append-only. Appends collect
//! in a buffer that [`Segment::flush`] writes out (and [`Segment::sync`] makes durable); reads
//! are served from the file or, for what is not written yet, from the buffer.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::disk;
use super::index::{Slot, SlotIndex};
use super::record::{self, Kind, RecordHeader, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
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
            Some(file) => disk::sync_data(&file).map_err(StoreError::io(&self.path)),
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

/// Bytes read at once when walking record headers in order.
const WINDOW: u64 = 64 * 1024;

/// How far `max_age` reaches into one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expiry {
    /// The last live message from the start of the walk that has expired.
    pub last: Option<u64>,
    /// Whether the walk stopped at a younger message (else every live message has expired).
    pub stopped: bool,
}

/// A window of a segment's bytes, to read many record headers in order with few reads.
#[derive(Debug, Default)]
struct Window {
    start: u64,
    bytes: Vec<u8>,
}

impl Window {
    /// The header of the record at `slot`, the message `seq`, reading the next window when
    /// it is not in this one.
    fn header(
        &mut self,
        segment: &Segment,
        seq: u64,
        slot: Slot,
    ) -> Result<RecordHeader, StoreError> {
        let offset = u64::from(slot.offset);
        let end = offset + RECORD_HEADER_LEN as u64;
        if offset < self.start || end > self.start + self.bytes.len() as u64 {
            let len = WINDOW
                .min(segment.len() - offset)
                .max(RECORD_HEADER_LEN as u64);
            self.bytes.resize(len as usize, 0);
            segment.read_at(&mut self.bytes, offset)?;
            self.start = offset;
        }
        let at = (offset - self.start) as usize;
        segment.check_header(&self.bytes[at..], seq, slot)
    }
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
        if let Err(e) = segment.write_header(last_ts) {
            // A half-made segment would stop the next attempt (`create_new`): it goes.
            let _ = std::fs::remove_file(&segment.path);
            return Err(e);
        }
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
        let io = StoreError::io(&self.path);
        self.file.set_len(0).map_err(io)?;
        disk::write_all_at(&self.file, &header, 0).map_err(StoreError::write(&self.path))?;
        disk::sync_data(&self.file).map_err(StoreError::io(&self.path))?;
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
        let slot = Slot::new(offset, len, headers.is_some(), sid);
        self.index.push(slot, ts);
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
        // A failed write keeps `pending` and `written` as they were: whatever part reached
        // the file lies past `written`, where the next write or a recovery's cut replaces it.
        disk::write_all_at(&self.file, &self.pending, at).map_err(StoreError::write(&self.path))?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Takes back the message record just appended (from `pending_from`, the buffer's length
    /// before it), when it could not be written, and cuts the file back to what was written
    /// whole: the part of the record that reached the disk goes at once, not at the next
    /// write or open. Call only when nothing else was buffered before it.
    pub fn unappend_msg(&mut self, pending_from: usize) {
        self.pending.truncate(pending_from);
        self.index.pop();
        if let Err(e) = self.file.set_len(self.written) {
            // Harmless: the next write starts at `written` and a recovery cuts a torn tail.
            tracing::warn!(path = %self.path.display(), "cutting a torn record: {e}");
        }
    }

    /// Drops what is buffered and cuts the file back to what was written whole, so that the
    /// file is exactly the records written before a failed write.
    pub fn discard_unwritten(&mut self) -> Result<(), StoreError> {
        self.pending.clear();
        self.file
            .set_len(self.written)
            .map_err(StoreError::io(&self.path))
    }

    /// Gives back the space of a segment whose messages are all gone: it becomes its header
    /// and one compaction record (`floor`, `ts`), written over its first record before the
    /// rest is cut, so that every state a crash can leave reads back as that floor. Its index
    /// starts over, so the next message starts a new segment. Call with nothing buffered.
    pub fn cut_to_floor(&mut self, floor: u64, ts: i64) -> Result<(), StoreError> {
        let mut marker = Vec::new();
        record::encode_marker(&mut marker, Kind::Compact, floor, ts);
        let at = SEGMENT_HEADER_LEN as u64;
        let end = at + marker.len() as u64;
        disk::write_all_at(&self.file, &marker, at).map_err(StoreError::write(&self.path))?;
        let io = || -> io::Result<()> {
            disk::sync_data(&self.file)?;
            self.file.set_len(end)?;
            disk::sync_data(&self.file)
        };
        io().map_err(StoreError::io(&self.path))?;
        self.written = end;
        self.index = SlotIndex::new(self.index.base());
        self.foreign_max = None;
        self.note_marker(Kind::Compact, floor);
        Ok(())
    }

    /// Writes buffered records and waits until they are on disk.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.flush()?;
        disk::sync_data(&self.file).map_err(StoreError::io(&self.path))
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
        let offset = u64::from(slot.offset);
        let mut buf = vec![0; slot.len()];
        self.read_at(&mut buf, offset)?;
        self.decode(buf, seq, slot).map(Some)
    }

    /// The timestamp of the live message at `seq`, from its record header: one small read.
    pub fn ts(&self, seq: u64) -> Result<Option<i64>, StoreError> {
        let Some(slot) = self.index.slot(seq) else {
            return Ok(None);
        };
        let mut header = [0; RECORD_HEADER_LEN];
        self.read_at(&mut header, u64::from(slot.offset))?;
        Ok(Some(self.check_header(&header, seq, slot)?.ts))
    }

    /// Walks the live messages from `from` while they are stamped at or before `cutoff`
    /// (`max_age` expiry). A segment whose newest message is that old is not read at all;
    /// otherwise the record headers are read in windows of [`WINDOW`] bytes.
    pub fn expired_through(&self, from: u64, cutoff: i64) -> Result<Expiry, StoreError> {
        if self.index.max_ts() <= cutoff {
            let to = self.index.next_seq().saturating_sub(1);
            let last = self.index.entries_rev(to).next().map(|e| e.seq);
            return Ok(Expiry {
                last: last.filter(|&seq| seq >= from),
                stopped: false,
            });
        }
        let mut window = Window::default();
        let mut last = None;
        for (seq, slot) in self.index.slots_from(from) {
            if window.header(self, seq, slot)?.ts > cutoff {
                return Ok(Expiry {
                    last,
                    stopped: true,
                });
            }
            last = Some(seq);
        }
        Ok(Expiry {
            last,
            stopped: false,
        })
    }

    /// Fills `buf` from `offset`, from the file and, past what is written, the buffer.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), StoreError> {
        let in_file = self.written.saturating_sub(offset).min(buf.len() as u64) as usize;
        let (from_file, from_pending) = buf.split_at_mut(in_file);
        if !from_file.is_empty() {
            self.file
                .read_exact_at(from_file, offset)
                .map_err(StoreError::io(&self.path))?;
        }
        if !from_pending.is_empty() {
            let at = (offset + in_file as u64 - self.written) as usize;
            from_pending.copy_from_slice(&self.pending[at..at + from_pending.len()]);
        }
        Ok(())
    }

    fn corrupt(&self, slot: Slot, reason: &str) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            offset: u64::from(slot.offset),
            reason: reason.to_string(),
        }
    }

    /// Parses the header of the record at `slot` and checks it is the message `seq`.
    fn check_header(&self, b: &[u8], seq: u64, slot: Slot) -> Result<RecordHeader, StoreError> {
        let header: &[u8; RECORD_HEADER_LEN] = b[..RECORD_HEADER_LEN].try_into().expect("len");
        let h = record::parse_header(header).map_err(|r| self.corrupt(slot, r))?;
        if h.len != slot.len() || h.kind != Kind::Msg || h.seq != seq {
            return Err(self.corrupt(slot, "record does not match the index"));
        }
        Ok(h)
    }

    fn decode(&self, buf: Vec<u8>, seq: u64, slot: Slot) -> Result<StoredMsg, StoreError> {
        let h = self.check_header(&buf, seq, slot)?;
        if !record::checksum_ok(&buf) {
            return Err(self.corrupt(slot, "checksum mismatch"));
        }
        let (subject, headers, payload) = record::body_ranges(&h);
        let subject = std::str::from_utf8(&buf[subject])
            .map_err(|_| self.corrupt(slot, "subject is not UTF-8"))?
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
