//! What can go wrong in a store: a limit refusing a message, bad input, or the disk.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// The stream limit that refused a message under `discard: new` (or `max_msg_size`, always).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `max_msgs`.
    MaxMsgs,
    /// `max_bytes`.
    MaxBytes,
    /// `max_msgs_per_subject` with `discard_new_per_subject`.
    MaxMsgsPerSubject,
    /// `max_msg_size`.
    MaxMsgSize,
}

impl fmt::Display for Limit {
    /// nats-server's text for the error, which its PubAck carries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::MaxMsgs => "maximum messages exceeded",
            Limit::MaxBytes => "maximum bytes exceeded",
            Limit::MaxMsgsPerSubject => "maximum messages per subject exceeded",
            Limit::MaxMsgSize => "message size exceeds maximum allowed",
        })
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A stream limit refused the message; nothing was stored.
    #[error("{0}")]
    LimitExceeded(Limit),
    /// The subject is empty, has an empty token or is longer than 65535 bytes.
    #[error("invalid subject for a stored message")]
    InvalidSubject,
    /// The record would not fit a segment (over 1 GiB).
    #[error("message too large for the store")]
    TooLarge,
    /// A purge with both `up_to_seq` and `keep`, which nats-server refuses too.
    #[error("purge takes a sequence or a keep count, not both")]
    InvalidPurge,
    /// A write found the file system full (`ENOSPC`, or a quota). What could not be written
    /// was undone, so the store goes on as if that operation had not happened, and messages
    /// appended before it but not yet written are taken back too ([`Store::take_rewound`]);
    /// a later write succeeds once there is room again. The text is nats-server's for the same
    /// failure. A failed fsync is never this, but [`StoreError::Io`], whatever its `errno`.
    ///
    /// [`Store::take_rewound`]: super::Store::take_rewound
    #[error("write {}: no space left on device", path.display())]
    StorageFull {
        /// The file that could not be written.
        path: PathBuf,
    },
    /// The file system failed; the store refuses writes until it is opened again.
    #[error("store i/o on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A record that cannot be trusted where acknowledged data lives: opening refuses to drop it.
    #[error("corrupt store file {path} at offset {offset}: {reason}; restore it from a backup or remove the stream directory")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the bad record.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// An earlier write failed, so the files may not match memory; open the store again.
    #[error("store failed earlier and refuses writes; open it again")]
    Failed,
}

impl StoreError {
    /// Wraps an I/O error with the path it concerns. Every failure but a write's is fatal,
    /// an fsync's included: [`StoreError::write`] is the one that knows a full disk.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }

    /// Wraps the error of a write (`write_all_at`): a full disk is [`StoreError::StorageFull`],
    /// which the store recovers from; anything else is [`StoreError::Io`]. Only a write can be
    /// undone by cutting the file back: an fsync that fails may have lost written pages, so it
    /// goes through [`StoreError::io`] and fails the store whatever its `errno`.
    pub(crate) fn write(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| match super::file::is_full(&source) {
            true => StoreError::StorageFull { path },
            false => StoreError::Io { path, source },
        }
    }

    /// Whether this is [`StoreError::StorageFull`].
    pub fn is_storage_full(&self) -> bool {
        matches!(self, StoreError::StorageFull { .. })
    }
}
