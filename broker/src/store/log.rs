//! What a storage backend gives [`Store`](super::Store): the backends only keep messages by
//! sequence; counters, the subject index and the limits live in the store.

use std::sync::Arc;

use super::subjects::{Sid, SubjectIndex};
use super::{StoreError, StoredMsg, SyncHandle, SyncPolicy};

/// A live message as the backend's index knows it, without reading its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Its sequence.
    pub seq: u64,
    /// Its subject's id in the store's subject index.
    pub sid: Sid,
    /// Its size as counted in `bytes`.
    pub size: u64,
}

/// A message to append, already admitted by the limits.
pub(crate) struct NewMsg<'a> {
    /// The next sequence.
    pub seq: u64,
    /// Its subject's id.
    pub sid: Sid,
    /// Its subject.
    pub subject: &'a Arc<str>,
    /// Non-empty headers, if any.
    pub headers: Option<&'a [u8]>,
    /// The payload.
    pub payload: &'a [u8],
    /// Its timestamp in Unix nanoseconds.
    pub ts: i64,
}

/// Where the stream's sequence stands, which the file backend records with a compaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Last {
    /// The last sequence assigned.
    pub seq: u64,
    /// Its timestamp.
    pub ts: i64,
}

/// Messages by sequence, in memory or on disk.
pub(crate) trait Log: Send {
    /// How many bytes a message counts for in `bytes` (nats-server counts differently for
    /// memory and file storage).
    fn msg_size(&self, subject_len: usize, headers_len: Option<usize>, payload_len: usize) -> u64;

    /// Stores a message; its sequence is one past the last (or the floor of a compaction).
    fn append(&mut self, msg: &NewMsg) -> Result<u64, StoreError>;

    /// The live message at `seq`.
    fn entry(&self, seq: u64) -> Option<Entry>;

    /// Live messages from `from` upwards, in order.
    fn entries(&self, from: u64) -> Box<dyn Iterator<Item = Entry> + '_>;

    /// Live messages from `to` downwards, in order.
    fn entries_rev(&self, to: u64) -> Box<dyn Iterator<Item = Entry> + '_>;

    /// The timestamp of the live message at `seq` (the file backend reads it from the record).
    fn ts(&self, seq: u64) -> Result<Option<i64>, StoreError>;

    /// The last of the live messages from `from` on that are all stamped at or before
    /// `cutoff`: how far `max_age` expiry reaches, stopping at the first younger message.
    fn expired_through(&self, from: u64, cutoff: i64) -> Result<Option<u64>, StoreError>;

    /// Reads the message at `seq`, if it is live.
    fn read(&self, seq: u64) -> Result<Option<StoredMsg>, StoreError>;

    /// Deletes one live message.
    fn remove(&mut self, seq: u64) -> Result<(), StoreError>;

    /// Deletes every message below `floor`; `last` is the stream's last sequence afterwards,
    /// at least `floor - 1`.
    fn remove_below(&mut self, floor: u64, last: Last) -> Result<(), StoreError>;

    /// Hands appended data to the operating system: it survives the process, not the machine.
    fn flush(&mut self) -> Result<(), StoreError>;

    /// Makes appended data and deletes durable: they survive a power cut.
    fn sync(&mut self) -> Result<(), StoreError>;

    /// Writes appended data out and returns the fsync that makes it durable, to run without
    /// holding the store (group commit).
    fn prepare_sync(&mut self) -> Result<SyncHandle, StoreError>;

    /// When the caller should call [`Log::sync`].
    fn sync_policy(&self) -> SyncPolicy;

    /// Whether a write found the disk full and left memory ahead of the files.
    fn needs_rewind(&self) -> bool {
        false
    }

    /// Refuses every later write until the store is opened again: an fsync made outside the
    /// store ([`SyncHandle`]) failed, so the files may not hold what was written.
    fn fail(&mut self) {}

    /// Forgets what is not on disk: reads the files again, filling `subjects` (uncounted),
    /// and returns where the stream stands on disk. Only the file backend needs it.
    fn rewind(&mut self, _subjects: &mut SubjectIndex) -> Result<Last, StoreError> {
        Err(StoreError::Failed)
    }
}
