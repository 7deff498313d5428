//! Opening a stream directory: every segment is read back record by record, checksums checked,
//! and the sequence index, the subjects, the deletes and the last sequence rebuilt.
//!
//! The rules:
//! - In the last segment, the first record that is short, malformed, zeroed or fails its
//!   checksum is a torn tail: the file is cut there and the cut is made durable. Nothing after
//!   it was ever synced, because a sync covers everything before it.
//! - In any other segment the same is corruption of data that was synced when the segment was
//!   closed: opening fails with the file and offset, and drops nothing.
//! - A record whose checksum holds but does not fit (a sequence out of order, a subject that is
//!   not UTF-8, a header naming another base) is corruption wherever it is.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::index::{Slot, SlotIndex};
use super::record::{self, Kind, RecordHeader, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::segment::{parse_segment_name, Segment};
use super::sync_dir;
use crate::store::log::Last;
use crate::store::subjects::SubjectIndex;
use crate::store::StoreError;

/// What the scan of all segments gathers besides the segments themselves.
#[derive(Default)]
struct Scan {
    last: Last,
    floor: u64,
    tombstones: Vec<u64>,
}

impl Scan {
    fn note_last(&mut self, seq: u64, ts: i64) {
        if seq >= self.last.seq {
            self.last = Last { seq, ts };
        }
    }
}

/// Reads every segment in `dir` (creating the directory and a first segment if needed).
pub(super) fn recover(
    dir: &Path,
    subjects: &mut SubjectIndex,
) -> Result<(Vec<Segment>, Last), StoreError> {
    fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
    let files = segment_files(dir)?;
    if files.is_empty() {
        let first = Segment::create(dir, 1, 0)?;
        sync_dir(dir)?;
        return Ok((vec![first], Last::default()));
    }
    let mut scan = Scan::default();
    let mut segments: Vec<Segment> = Vec::with_capacity(files.len());
    for (i, (base, path)) in files.iter().enumerate() {
        if let Some(prev) = segments.last() {
            if *base < prev.index.next_seq() {
                return Err(corrupt(path, 0, "segment overlaps the one before it"));
            }
        }
        let is_last = i + 1 == files.len();
        segments.push(scan_segment(
            path.clone(),
            *base,
            is_last,
            subjects,
            &mut scan,
        )?);
    }
    for s in &mut segments {
        if s.index.base() >= scan.floor {
            break;
        }
        s.index.delete_below(scan.floor);
    }
    for seq in scan.tombstones {
        let i = segments.partition_point(|s| s.index.base() <= seq);
        if let Some(s) = i.checked_sub(1).map(|i| &mut segments[i]) {
            s.index.delete(seq);
        }
    }
    Ok((segments, scan.last))
}

/// The segment files in `dir`, by base sequence.
fn segment_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(StoreError::io(dir))? {
        let entry = entry.map_err(StoreError::io(dir))?;
        let name = entry.file_name();
        if let Some(base) = name.to_str().and_then(parse_segment_name) {
            files.push((base, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// Reads one segment back; cuts a torn tail when it is the last one.
fn scan_segment(
    path: PathBuf,
    base: u64,
    is_last: bool,
    subjects: &mut SubjectIndex,
    scan: &mut Scan,
) -> Result<Segment, StoreError> {
    let io = StoreError::io(&path);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io)?;
    let file_len = file.metadata().map_err(StoreError::io(&path))?.len();
    let last_ts = match read_segment_header(&path, &file, file_len)? {
        Ok((b, last_ts)) if b == base => last_ts,
        Ok(_) => return Err(corrupt(&path, 0, "segment header names another base")),
        Err(reason) if is_last => {
            tracing::warn!(path = %path.display(), reason, "rewriting the header of the last segment");
            let mut segment = Segment::from_parts(path, file, SlotIndex::new(base), 0);
            segment.write_header(scan.last.ts)?;
            scan.note_last(base - 1, scan.last.ts);
            return Ok(segment);
        }
        Err(reason) => return Err(corrupt(&path, 0, reason)),
    };
    scan.note_last(base.saturating_sub(1), last_ts);
    let mut rebuild = Rebuild {
        path: &path,
        index: SlotIndex::new(base),
        markers: Vec::new(),
        subjects,
        scan,
    };
    let mut records = Records::new(&path, &file, file_len)?;
    let end = loop {
        match records.next()? {
            Step::Record(offset, h) => rebuild.record(offset, &h, &records.buf)?,
            Step::End => break None,
            Step::Bad(offset, reason) => break Some((offset, reason)),
        }
    };
    let valid_len = match end {
        None => file_len,
        Some((offset, reason)) if is_last => {
            cut_torn_tail(&path, &file, offset, file_len, reason)?;
            offset
        }
        Some((offset, reason)) => return Err(corrupt(&path, offset, reason)),
    };
    let (index, markers) = (rebuild.index, rebuild.markers);
    let mut segment = Segment::from_parts(path, file, index, valid_len);
    for (kind, seq) in markers {
        segment.note_marker(kind, seq);
    }
    Ok(segment)
}

/// Reads the segment header: `Err(reason)` inside when it is missing or bad.
fn read_segment_header(
    path: &Path,
    file: &File,
    file_len: u64,
) -> Result<Result<(u64, i64), &'static str>, StoreError> {
    let mut header = [0; SEGMENT_HEADER_LEN];
    match file.read_exact_at(&mut header, 0) {
        Ok(()) => Ok(record::parse_segment_header(&header)),
        Err(_) if file_len < SEGMENT_HEADER_LEN as u64 => Ok(Err("partial segment header")),
        Err(e) => Err(StoreError::io(path)(e)),
    }
}

/// What one segment's records rebuild: its index, and its tombstones and compactions.
struct Rebuild<'a> {
    path: &'a Path,
    index: SlotIndex,
    markers: Vec<(Kind, u64)>,
    subjects: &'a mut SubjectIndex,
    scan: &'a mut Scan,
}

impl Rebuild<'_> {
    /// Takes in one record whose checksum holds.
    fn record(&mut self, offset: u64, h: &RecordHeader, buf: &[u8]) -> Result<(), StoreError> {
        match h.kind {
            Kind::Msg => {
                let expected = self.index.next_seq();
                if h.seq != expected {
                    let reason = format!("sequence {} where {expected} belongs", h.seq);
                    return Err(corrupt(self.path, offset, reason));
                }
                let (subject, _, _) = record::body_ranges(h);
                let Ok(subject) = std::str::from_utf8(&buf[subject]) else {
                    return Err(corrupt(self.path, offset, "subject is not UTF-8"));
                };
                let sid = self.subjects.intern(subject);
                let slot = Slot::new(offset as usize, h.len, h.has_headers, sid);
                self.index.push(slot, h.ts);
                self.scan.note_last(h.seq, h.ts);
            }
            Kind::Tombstone => self.scan.tombstones.push(h.seq),
            Kind::Compact => {
                self.scan.floor = self.scan.floor.max(h.seq);
                self.scan.note_last(h.seq.saturating_sub(1), h.ts);
            }
        }
        if h.kind != Kind::Msg {
            self.markers.push((h.kind, h.seq));
        }
        Ok(())
    }
}

/// Truncates the last segment at `offset`, durably.
fn cut_torn_tail(
    path: &Path,
    file: &File,
    offset: u64,
    file_len: u64,
    reason: &str,
) -> Result<(), StoreError> {
    tracing::warn!(
        path = %path.display(),
        offset,
        dropped_bytes = file_len - offset,
        reason,
        "cutting a torn tail off the last segment"
    );
    file.set_len(offset)
        .and_then(|()| file.sync_data())
        .map_err(StoreError::io(path))
}

/// One step of reading records.
enum Step {
    /// A record with a good checksum at this offset, now in `Records::buf`.
    Record(u64, RecordHeader),
    /// The end of the file, on a record boundary.
    End,
    /// A record that cannot be read at this offset, and why.
    Bad(u64, &'static str),
}

/// Reads a segment's records in order through a buffer.
struct Records<'a> {
    reader: BufReader<&'a File>,
    path: &'a Path,
    offset: u64,
    file_len: u64,
    buf: Vec<u8>,
}

impl<'a> Records<'a> {
    fn new(path: &'a Path, file: &'a File, file_len: u64) -> Result<Records<'a>, StoreError> {
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        reader
            .seek(SeekFrom::Start(SEGMENT_HEADER_LEN as u64))
            .map_err(StoreError::io(path))?;
        Ok(Records {
            reader,
            path,
            offset: SEGMENT_HEADER_LEN as u64,
            file_len,
            buf: Vec::new(),
        })
    }

    fn next(&mut self) -> Result<Step, StoreError> {
        let at = self.offset;
        let left = self.file_len - at;
        if left == 0 {
            return Ok(Step::End);
        }
        if left < RECORD_HEADER_LEN as u64 {
            return Ok(Step::Bad(at, "partial record header"));
        }
        let mut header = [0; RECORD_HEADER_LEN];
        self.read(&mut header)?;
        let h = match record::parse_header(&header) {
            Ok(h) => h,
            Err(reason) => return Ok(Step::Bad(at, reason)),
        };
        if h.len as u64 > left {
            return Ok(Step::Bad(at, "partial record"));
        }
        self.buf.clear();
        self.buf.extend_from_slice(&header);
        self.buf.resize(h.len, 0);
        let mut rest = std::mem::take(&mut self.buf);
        self.read(&mut rest[RECORD_HEADER_LEN..])?;
        self.buf = rest;
        if !record::checksum_ok(&self.buf) {
            return Ok(Step::Bad(at, "checksum mismatch"));
        }
        self.offset += h.len as u64;
        Ok(Step::Record(at, h))
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), StoreError> {
        self.reader
            .read_exact(buf)
            .map_err(StoreError::io(self.path))
    }
}
