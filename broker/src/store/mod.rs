//! The message store of one JetStream stream: messages by sequence, limits, purges and expiry,
//! in memory or in files. No protocol here; the stream layer calls [`Store`] synchronously (from
//! a dedicated thread or `spawn_blocking`) and decides when to [`Store::sync`].
//!
//! A tour of the layout:
//! - [`Store`] (`stream.rs`): the API every stream uses, whatever the storage. It keeps the
//!   counters of [`StreamState`], the per-subject index (`subjects.rs`) and enforces [`Limits`]
//!   (`limits.rs` says what each limit means, `removal.rs` does the deleting, purging and expiry).
//! - `log.rs`: what a storage backend provides to [`Store`]: append, read, tombstone, compact,
//!   and a walk over the live messages' sequence, subject, size and timestamp.
//! - `memory.rs`: the backend of `storage: memory` streams, a `BTreeMap` by sequence.
//! - `file/`: the backend of `storage: file` streams, a directory of segments: `segment.rs` (one
//!   append-only file), `record.rs` (the checksummed record layout), `index.rs` (the in-memory
//!   sequence index of a segment), `recovery.rs` (rebuilding everything on open, cutting a torn
//!   tail), `disk.rs` (every write, and the seam where tests fill the disk). `docs/storage.md`
//!   describes the format byte by byte.
//! - `gauge.rs`: bytes stored by all the streams of a server, which each [`Store`] keeps up to
//!   date for JetStream's `max_storage` and `max_memory`.
//!
//! A full disk is not fatal: what could not be written is undone ([`StoreError::StorageFull`])
//! and the store goes on; any other write failure makes it refuse writes until reopened.
//!
//! Sequences start at 1 and are never reused: deletes leave gaps, purges move `first_seq` and
//! keep `last_seq`.

mod error;
mod file;
mod gauge;
mod limits;
mod log;
mod memory;
mod removal;
mod stream;
mod subjects;
#[cfg(test)]
mod tests;

use bytes::Bytes;

pub use error::{Limit, StoreError};
#[cfg(test)]
pub(crate) use file::set_free;
pub use file::{FileConfig, SyncHandle, SyncPolicy, FREE_FILE_VAR};
pub use gauge::UsageGauge;
pub use limits::{Discard, Limits};
pub use stream::{is_storable_subject, Rewound, Store, MAX_STORED_SUBJECT_LEN};

/// A message as stored: what a consumer delivers and `MSG.GET` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMsg {
    /// The stream sequence, from 1.
    pub seq: u64,
    /// The literal subject it was published to.
    pub subject: String,
    /// The NATS header block (`NATS/1.0\r\n…`), if the message had a non-empty one.
    pub headers: Option<Bytes>,
    /// The payload.
    pub payload: Bytes,
    /// When the stream received it, in nanoseconds since the Unix epoch.
    pub timestamp: i64,
}

/// The counters of a stream, as `STREAM.INFO` reports them in `state`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamState {
    /// Messages stored.
    pub msgs: u64,
    /// Bytes stored, counted per message as nats-server does (see [`Store::msg_size`]).
    pub bytes: u64,
    /// Sequence of the first stored message; `last_seq + 1` when empty (0 for a new stream).
    pub first_seq: u64,
    /// Timestamp of the first stored message in Unix nanoseconds; 0 when empty.
    pub first_ts: i64,
    /// The highest sequence ever assigned (or skipped to by a purge); 0 for a new stream.
    pub last_seq: u64,
    /// Timestamp of the message that got `last_seq`; 0 for a new stream.
    pub last_ts: i64,
    /// Sequences between first and last that hold no message (interior deletes).
    pub num_deleted: u64,
    /// Distinct subjects among the stored messages.
    pub num_subjects: u64,
}

/// Per-subject counters, as `STREAM.INFO` with `subjects_filter` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubjectState {
    /// Messages stored on this subject.
    pub msgs: u64,
    /// Sequence of the first of them.
    pub first: u64,
    /// Sequence of the last of them.
    pub last: u64,
}

/// A purge request, as `STREAM.PURGE` takes it: everything, or the messages matching `filter`,
/// bounded by `up_to_seq` or `keep`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purge {
    /// Only messages on subjects matching this filter (wildcards allowed); `None` or `>`: all.
    pub filter: Option<String>,
    /// Only messages with a sequence below this one (exclusive, as nats-server's `seq`). Without
    /// a filter, a value past the end moves the stream's next sequence up to it.
    pub up_to_seq: Option<u64>,
    /// Leave the newest `keep` matching messages in place.
    pub keep: Option<u64>,
}

/// What [`Store::expire`] did, and when to call it again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    /// Messages removed because they were older than `max_age`.
    pub removed: u64,
    /// When the oldest remaining message expires (Unix nanoseconds), if there is one and a
    /// `max_age` is set.
    pub next_due: Option<i64>,
}
