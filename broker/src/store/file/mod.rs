//! The file backend: a directory per stream holding segments `{base:020}.log`, each an
//! append-only run of checksummed records (`record.rs`). Deletes are tombstone records and
//! removals from the front are compaction records, both written to the newest (active) segment;
//! a segment whose messages are all gone is deleted once no record in it still hides a message
//! of an older segment. On open, `recovery.rs` reads every segment back.

mod disk;
mod index;
mod record;
mod recovery;
mod segment;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::log::{Entry, Last, Log, NewMsg};
use super::subjects::SubjectIndex;
use super::{StoreError, StoredMsg};
pub(crate) use disk::is_full;
pub use disk::FREE_FILE_VAR;
#[cfg(test)]
pub(crate) use disk::{set_free, set_sync_error};
use record::{Kind, RECORD_OVERHEAD, SEGMENT_HEADER_LEN};
use segment::Segment;
pub use segment::SyncHandle;

/// Buffered appends are written out once they pass this many bytes, even without a flush.
const WRITE_BUFFER: usize = 256 * 1024;
/// An emptied active segment larger than this is cut back when it is the only segment, so
/// that a purge gives the disk its space at once (a full disk needs it).
const CUT_EMPTY_ACTIVE: u64 = 64 * 1024;

/// When the stream layer makes appends durable. The store records it; the caller acts on it
/// around [`Store::sync`](super::Store::sync) (group commit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync before acknowledging: a PubAck means the message is on disk (the default).
    #[default]
    Always,
    /// Write before acknowledging, fsync at this interval (nats-server's behaviour).
    Interval(Duration),
    /// Write before acknowledging, leave fsync to the operating system.
    Never,
}

/// Settings of a file store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileConfig {
    /// A segment is closed and a new one started when an append would pass this size (kept
    /// between 512 bytes and 1 GiB; a larger message gets a segment of its own).
    pub segment_size: u64,
    /// When the caller syncs; recorded for it.
    pub sync: SyncPolicy,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            segment_size: 64 * 1024 * 1024,
            sync: SyncPolicy::Always,
        }
    }
}

/// The segments of one stream directory; the last is the active one, there is always one.
#[derive(Debug)]
pub(crate) struct FileLog {
    dir: PathBuf,
    config: FileConfig,
    segments: Vec<Segment>,
    last: Last,
    dir_dirty: bool,
    failed: bool,
    /// A write found the disk full with records still buffered: memory is ahead of the files
    /// and the store must [`Log::rewind`].
    rewind_needed: bool,
    /// The disk was full at the last rewind: appends are written at once, and taken back alone
    /// when that fails, until one gets through.
    full: bool,
}

impl FileLog {
    /// Opens or creates the store in `dir`, filling `subjects` with the subjects of the messages
    /// found (uncounted); returns the stream's last sequence and timestamp.
    pub fn open(
        dir: &Path,
        config: FileConfig,
        subjects: &mut SubjectIndex,
    ) -> Result<(FileLog, Last), StoreError> {
        let config = FileConfig {
            segment_size: config.segment_size.clamp(512, 1 << 30),
            ..config
        };
        let (segments, last) = recovery::recover(dir, subjects)?;
        let log = FileLog {
            dir: dir.to_path_buf(),
            config,
            segments,
            last,
            dir_dirty: false,
            failed: false,
            rewind_needed: false,
            full: false,
        };
        Ok((log, last))
    }

    fn active(&mut self) -> &mut Segment {
        self.segments.last_mut().expect("an active segment")
    }

    /// Index of the segment that holds `seq`, if any.
    fn find(&self, seq: u64) -> Option<usize> {
        let i = self.segments.partition_point(|s| s.index.base() <= seq);
        let i = i.checked_sub(1)?;
        (seq < self.segments[i].index.next_seq()).then_some(i)
    }

    /// Runs a write. A full disk that leaves records buffered asks for a rewind; any other
    /// failure makes the store refuse every later write until it is opened again.
    fn guarded<T>(
        &mut self,
        op: impl FnOnce(&mut FileLog) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.failed {
            return Err(StoreError::Failed);
        }
        let result = op(self);
        match &result {
            Ok(_) => {}
            Err(e) if e.is_storage_full() => {
                self.rewind_needed = self.active().pending_len() > 0;
            }
            Err(_) => self.failed = true,
        }
        result
    }

    /// Closes the active segment (durably) and starts one at `base`.
    fn roll(&mut self, base: u64, last_ts: i64) -> Result<(), StoreError> {
        self.active().sync()?;
        let segment = Segment::create(&self.dir, base, last_ts)?;
        self.segments.push(segment);
        self.dir_dirty = true;
        sync_dir(&self.dir)?;
        self.dir_dirty = false;
        Ok(())
    }

    /// Appends a message record to the active segment. While the disk is full it is written
    /// at once, and taken back if that fails, so nothing unwritable stays buffered.
    fn append_record(&mut self, msg: &NewMsg) -> Result<(), StoreError> {
        let full = self.full;
        let active = self.active();
        assert_eq!(active.index.next_seq(), msg.seq, "appends follow the index");
        let from = active.pending_len();
        let subject = msg.subject.as_bytes();
        active.append_msg(msg.sid, msg.ts, subject, msg.headers, msg.payload);
        if full || active.pending_len() >= WRITE_BUFFER {
            if let Err(e) = active.flush() {
                if full {
                    active.unappend_msg(from);
                }
                return Err(e);
            }
        }
        self.full = false;
        Ok(())
    }

    /// Deletes the segments that hold no live message, oldest first, unless a record in one
    /// still deletes a message of an older segment that exists.
    fn reclaim(&mut self) -> Result<(), StoreError> {
        if self.segments[..self.segments.len() - 1]
            .iter()
            .all(|s| s.index.live() > 0)
        {
            return self.cut_empty_active();
        }
        // Deletion records reach the file before the files they stand for go.
        self.active().flush()?;
        let mut i = 0;
        while i + 1 < self.segments.len() {
            let oldest = self.segments[0].index.base();
            let s = &self.segments[i];
            if s.index.live() == 0 && s.foreign_max.is_none_or(|m| m < oldest) {
                self.segments.remove(i).remove_file()?;
                self.dir_dirty = true;
            } else {
                i += 1;
            }
        }
        self.cut_empty_active()
    }

    /// Cuts the active segment back to a compaction record when it is the only segment, has
    /// no live message and is large: nothing in it is needed but where the stream stands.
    fn cut_empty_active(&mut self) -> Result<(), StoreError> {
        let last = self.last;
        let [active] = self.segments.as_mut_slice() else {
            return Ok(());
        };
        if active.index.live() > 0 || active.len() <= CUT_EMPTY_ACTIVE {
            return Ok(());
        }
        // The records deleting its messages reach the disk before the messages go.
        active.sync()?;
        active.cut_to_floor(last.seq + 1, last.ts)
    }
}

impl Drop for FileLog {
    /// Writes out what is buffered, as a clean shutdown should; syncing is the caller's call.
    fn drop(&mut self) {
        if !self.failed {
            if let Err(e) = self.active().flush() {
                tracing::error!(error = %e, "could not write the store's last appends on close");
            }
        }
    }
}

/// fsyncs a directory, so that files created or removed in it stay so.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io(dir))
}

impl Log for FileLog {
    /// nats-server's file store: its record size (see the slot index).
    fn msg_size(&self, subject_len: usize, headers_len: Option<usize>, payload_len: usize) -> u64 {
        let headers = headers_len.map_or(0, |h| h + 4);
        (22 + subject_len + headers + payload_len + 8) as u64
    }

    fn append(&mut self, msg: &NewMsg) -> Result<u64, StoreError> {
        let body = msg.subject.len() + msg.headers.map_or(0, <[u8]>::len) + msg.payload.len();
        if body + RECORD_OVERHEAD > record::MAX_RECORD_LEN {
            return Err(StoreError::TooLarge);
        }
        self.guarded(|log| {
            let size = record::record_len(body, 0, 0) as u64;
            let active = log.active();
            // Sequences skipped by a rewind start a segment of their own (a gap between
            // segments is allowed, within one it is not).
            let gap = active.index.next_seq() < msg.seq;
            if gap
                || active.len() > SEGMENT_HEADER_LEN as u64
                    && active.len() + size > log.config.segment_size
            {
                log.roll(msg.seq, log.last.ts)?;
            }
            log.append_record(msg)?;
            log.last = Last {
                seq: msg.seq,
                ts: msg.ts,
            };
            Ok(())
        })?;
        Ok(self.msg_size(
            msg.subject.len(),
            msg.headers.map(<[u8]>::len),
            msg.payload.len(),
        ))
    }

    fn entry(&self, seq: u64) -> Option<Entry> {
        self.segments[self.find(seq)?].index.entry(seq)
    }

    fn entries(&self, from: u64) -> Box<dyn Iterator<Item = Entry> + '_> {
        let start = self
            .segments
            .partition_point(|s| s.index.next_seq() <= from);
        let segments = self.segments[start..].iter();
        Box::new(segments.flat_map(move |s| s.index.entries(from)))
    }

    fn entries_rev(&self, to: u64) -> Box<dyn Iterator<Item = Entry> + '_> {
        let end = self.segments.partition_point(|s| s.index.base() <= to);
        let segments = self.segments[..end].iter().rev();
        Box::new(segments.flat_map(move |s| s.index.entries_rev(to)))
    }

    fn ts(&self, seq: u64) -> Result<Option<i64>, StoreError> {
        match self.find(seq) {
            Some(i) => self.segments[i].ts(seq),
            None => Ok(None),
        }
    }

    fn expired_through(&self, from: u64, cutoff: i64) -> Result<Option<u64>, StoreError> {
        let start = self
            .segments
            .partition_point(|s| s.index.next_seq() <= from);
        let mut last = None;
        for segment in &self.segments[start..] {
            let reach = segment.expired_through(from, cutoff)?;
            last = reach.last.or(last);
            if reach.stopped {
                break;
            }
        }
        Ok(last)
    }

    fn read(&self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        match self.find(seq) {
            Some(i) => self.segments[i].read(seq),
            None => Ok(None),
        }
    }

    fn remove(&mut self, seq: u64) -> Result<(), StoreError> {
        self.guarded(|log| {
            let Some(i) = log.find(seq) else {
                return Ok(());
            };
            if !log.segments[i].index.delete(seq) {
                return Ok(());
            }
            log.active().append_marker(Kind::Tombstone, seq, 0);
            log.reclaim()
        })
    }

    fn remove_below(&mut self, floor: u64, last: Last) -> Result<(), StoreError> {
        self.guarded(|log| {
            for s in &mut log.segments {
                if s.index.base() >= floor {
                    break;
                }
                s.index.delete_below(floor);
            }
            log.last = last;
            // The record says where the stream stands; a floor past the end gets its segment
            // with the next append (a write less while the disk may be full).
            log.active().append_marker(Kind::Compact, floor, last.ts);
            log.reclaim()
        })
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.guarded(|log| log.active().flush())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.guarded(|log| {
            log.active().sync()?;
            if log.dir_dirty {
                sync_dir(&log.dir)?;
                log.dir_dirty = false;
            }
            Ok(())
        })
    }

    fn prepare_sync(&mut self) -> Result<SyncHandle, StoreError> {
        self.guarded(|log| {
            if log.dir_dirty {
                log.active().sync()?;
                sync_dir(&log.dir)?;
                log.dir_dirty = false;
            }
            log.active().flush_for_sync()
        })
    }

    fn sync_policy(&self) -> SyncPolicy {
        self.config.sync
    }

    fn needs_rewind(&self) -> bool {
        self.rewind_needed && !self.failed
    }

    fn fail(&mut self) {
        self.failed = true;
    }

    /// Cuts the active segment back to what was written whole and reads the directory again,
    /// as opening it would.
    fn rewind(&mut self, subjects: &mut SubjectIndex) -> Result<Last, StoreError> {
        let result = self.active().discard_unwritten().and_then(|()| {
            let (segments, last) = recovery::recover(&self.dir, subjects)?;
            self.segments = segments;
            self.last = last;
            Ok(last)
        });
        self.rewind_needed = false;
        self.full = result.is_ok();
        self.failed = result.is_err();
        result
    }
}
