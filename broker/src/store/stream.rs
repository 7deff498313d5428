//! [`Store`]: one stream's messages, whatever the storage, with its counters, subject index and
//! limits. Reads and appends live here; deletes, purges, limits and expiry in `removal.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::file::FileLog;
use super::limits::Admission;
use super::log::{Log, NewMsg};
use super::memory::MemoryLog;
use super::subjects::{Filter, Matcher, SubjectIndex};
use super::{
    FileConfig, Limits, StoreError, StoredMsg, StreamState, SubjectState, SyncHandle, SyncPolicy,
    UsageGauge,
};

/// The messages of one stream, in memory ([`Store::memory`]) or in a directory
/// ([`Store::open_file`]), with the same behaviour either way.
pub struct Store {
    pub(super) log: Box<dyn Log>,
    pub(super) limits: Limits,
    pub(super) subjects: SubjectIndex,
    pub(super) state: Counters,
    /// Where this store's bytes are counted with other stores' (JetStream's server limits).
    gauge: Option<UsageGauge>,
    /// What rewinds after a full disk took back, until the caller asks.
    rewound: Option<Rewound>,
}

/// Messages a full disk took back: every sequence from `from` up to where the stream stood
/// was appended (and perhaps answered as stored, or waiting for an fsync) but never reached
/// the disk, and is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewound {
    /// The first sequence taken back; several rewinds since the last ask keep the lowest.
    pub from: u64,
    /// The file whose write found the disk full.
    pub path: PathBuf,
}

impl Rewound {
    /// The error of a publish whose message was taken back, the same a refused one gets.
    pub fn error(&self) -> StoreError {
        StoreError::StorageFull {
            path: self.path.clone(),
        }
    }
}

/// The counters [`StreamState`] is made from.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counters {
    pub msgs: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub first_ts: i64,
    pub last_seq: u64,
    pub last_ts: i64,
}

impl Store {
    /// An empty store in memory, for `storage: memory` streams.
    pub fn memory(limits: Limits) -> Store {
        Store {
            log: Box::new(MemoryLog::default()),
            limits,
            subjects: SubjectIndex::default(),
            state: Counters::default(),
            gauge: None,
            rewound: None,
        }
    }

    /// Opens (or creates) the file store in `dir`, recovering what is there: a torn tail of the
    /// last segment is cut, any other damage is an error. The limits are enforced at once, in
    /// case they shrank since the store was last open.
    pub fn open_file(dir: &Path, config: FileConfig, limits: Limits) -> Result<Store, StoreError> {
        let mut subjects = SubjectIndex::default();
        let (log, last) = FileLog::open(dir, config, &mut subjects)?;
        let mut store = Store {
            log: Box::new(log),
            limits,
            subjects,
            state: Counters {
                last_seq: last.seq,
                last_ts: last.ts,
                ..Counters::default()
            },
            gauge: None,
            rewound: None,
        };
        store.rebuild_counters()?;
        store.enforce_all()?;
        Ok(store)
    }

    /// Counts the live messages of a freshly opened backend.
    fn rebuild_counters(&mut self) -> Result<(), StoreError> {
        let mut first = None;
        for e in self.log.entries(0) {
            first.get_or_insert(e.seq);
            self.state.msgs += 1;
            self.state.bytes += e.size;
            self.subjects.add(e.sid, e.seq);
        }
        self.subjects.drop_empty();
        self.state.first_seq = first.unwrap_or_else(|| self.empty_first());
        self.state.first_ts = self.first_ts()?;
        Ok(())
    }

    /// Counts this store's bytes in `gauge` from now on (and no longer once it is dropped).
    pub fn track_usage(&mut self, gauge: UsageGauge) {
        gauge.add(self.state.bytes);
        if let Some(old) = self.gauge.replace(gauge) {
            old.sub(self.state.bytes);
        }
    }

    /// Counts bytes that came in and went out.
    pub(super) fn count_bytes(&mut self, added: u64, removed: u64) {
        self.state.bytes = self.state.bytes + added - removed;
        if let Some(gauge) = &self.gauge {
            gauge.add(added);
            gauge.sub(removed);
        }
    }

    /// Passes on the result of a write; when the disk was full and left memory ahead of the
    /// files, the store first goes back to what the files hold ([`Store::rewind`]).
    /// Every write path (append, flush, sync, delete, purge, expiry, limits) ends here, so a
    /// rewind is always noted for [`Store::take_rewound`].
    pub(super) fn settle<T>(&mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &result {
            if self.log.needs_rewind() {
                let path = match e {
                    StoreError::StorageFull { path } => path.clone(),
                    _ => PathBuf::new(),
                };
                self.rewind(path);
            }
        }
        result
    }

    /// Reads the files again, as a reopen would, keeping the sequence moving forward: the
    /// messages that never reached the disk are gone and their sequences are not reused.
    fn rewind(&mut self, path: PathBuf) {
        let (high_seq, high_ts) = (self.state.last_seq, self.state.last_ts);
        let mut subjects = SubjectIndex::default();
        let last = match self.log.rewind(&mut subjects) {
            Ok(last) => last,
            Err(e) => {
                tracing::error!("could not read the store back after a full disk: {e}");
                return;
            }
        };
        let old_bytes = self.state.bytes;
        self.subjects = subjects;
        self.state = Counters {
            last_seq: last.seq.max(high_seq),
            last_ts: if high_seq > last.seq {
                high_ts
            } else {
                last.ts
            },
            ..Counters::default()
        };
        if let Err(e) = self.rebuild_counters() {
            tracing::error!("could not count the store after a full disk: {e}");
        }
        let new_bytes = self.state.bytes;
        if let Some(gauge) = &self.gauge {
            gauge.add(new_bytes);
            gauge.sub(old_bytes);
        }
        if high_seq > last.seq {
            let from = last.seq + 1;
            if self.rewound.as_ref().is_none_or(|r| from < r.from) {
                self.rewound = Some(Rewound { from, path });
            }
        }
        tracing::warn!(
            from_seq = last.seq + 1,
            to_seq = high_seq,
            "disk full: messages not yet written were taken back"
        );
    }

    /// What a full disk took back since the last call, if anything: the caller forgets what
    /// it knew of those messages (their `Nats-Msg-Id`s) and must not acknowledge any of them
    /// as stored. Messages below [`Rewound::from`] are in the files (written whole, if not
    /// yet synced) and stay. Any write can rewind, a delete, purge, expiry or limits change
    /// too: ask after each, or at the latest before the next duplicate check or PubAck.
    pub fn take_rewound(&mut self) -> Option<Rewound> {
        self.rewound.take()
    }

    /// Refuses every later write until the store is opened again, as any failed write does:
    /// for the caller of a [`SyncHandle`] whose fsync failed (the written pages may be lost).
    pub fn fail(&mut self) {
        self.log.fail();
    }

    /// The timestamp of the message at `first_seq`, 0 when there is none.
    pub(super) fn first_ts(&self) -> Result<i64, StoreError> {
        Ok(self.log.ts(self.state.first_seq)?.unwrap_or(0))
    }

    /// `first_seq` of an empty store: one past the last, or 0 for a stream that never had one.
    pub(super) fn empty_first(&self) -> u64 {
        match self.state.last_seq {
            0 => 0,
            last => last + 1,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Changes the limits (stream update) and enforces them at once; `max_age` is enforced by
    /// the next [`Store::expire`].
    pub fn set_limits(&mut self, limits: Limits) -> Result<(), StoreError> {
        self.limits = limits;
        let result = self.enforce_all();
        self.settle(result)
    }

    /// When the caller should [`Store::sync`]: the file store's configured policy, `Never`
    /// for memory.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.log.sync_policy()
    }

    /// How many bytes a message counts for in [`StreamState::bytes`] and `max_bytes`, as
    /// nats-server counts them: for files, its record size (subject, headers and payload plus
    /// 30 bytes, and 4 more with headers); in memory, subject, headers and payload plus 16.
    pub fn msg_size(&self, subject: &str, headers: Option<&[u8]>, payload: &[u8]) -> u64 {
        let headers = headers.filter(|h| !h.is_empty()).map(<[u8]>::len);
        self.log.msg_size(subject.len(), headers, payload.len())
    }

    /// Stores a message and returns its sequence. Empty headers are stored as none. A message
    /// a limit refuses (`discard: new`, `max_msg_size`) is not stored and takes no sequence.
    pub fn append(
        &mut self,
        subject: &str,
        headers: Option<&[u8]>,
        payload: &[u8],
        timestamp_nanos: i64,
    ) -> Result<u64, StoreError> {
        let result = self.append_admitted(subject, headers, payload, timestamp_nanos);
        self.settle(result)
    }

    fn append_admitted(
        &mut self,
        subject: &str,
        headers: Option<&[u8]>,
        payload: &[u8],
        timestamp_nanos: i64,
    ) -> Result<u64, StoreError> {
        if !is_storable_subject(subject) {
            return Err(StoreError::InvalidSubject);
        }
        let headers = headers.filter(|h| !h.is_empty());
        let size = self.msg_size(subject, headers, payload);
        let existing = self.subjects.id(subject).map(|sid| self.subjects.get(sid));
        self.limits.admit(&Admission {
            msgs: self.state.msgs,
            bytes: self.state.bytes,
            subject_msgs: existing.map_or(0, |s| s.msgs),
            subject_first_size: existing
                .and_then(|s| self.log.entry(s.first))
                .map_or(0, |e| e.size),
            size,
            body_len: (headers.map_or(0, <[u8]>::len) + payload.len()) as u64,
        })?;
        let seq = self.state.last_seq + 1;
        let sid = self.subjects.intern(subject);
        let name = self.subjects.get(sid).name.clone();
        let new = NewMsg {
            seq,
            sid,
            subject: &name,
            headers,
            payload,
            ts: timestamp_nanos,
        };
        if let Err(e) = self.log.append(&new) {
            self.subjects.drop_if_empty(sid);
            return Err(e);
        }
        let st = &mut self.state;
        if st.msgs == 0 {
            (st.first_seq, st.first_ts) = (seq, timestamp_nanos);
        }
        st.msgs += 1;
        (st.last_seq, st.last_ts) = (seq, timestamp_nanos);
        self.count_bytes(size, 0);
        self.subjects.add(sid, seq);
        self.enforce_subject(sid)?;
        self.enforce_totals()?;
        Ok(seq)
    }

    /// The message at `seq`, if it is stored.
    pub fn get(&self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        self.log.read(seq)
    }

    /// The newest message on a subject, or matching a filter with wildcards.
    pub fn get_last_by_subject(&self, subject: &str) -> Result<Option<StoredMsg>, StoreError> {
        let last = match Filter::new(Some(subject)) {
            Filter::All => self
                .log
                .entries_rev(self.state.last_seq)
                .next()
                .map(|e| e.seq),
            filter => {
                let matcher = self.subjects.resolve(&filter);
                let sids = matcher.sids(&self.subjects);
                sids.iter().map(|&sid| self.subjects.get(sid).last).max()
            }
        };
        last.map_or(Ok(None), |seq| self.log.read(seq))
    }

    /// The first message at or after `start_seq` whose subject matches `filter` (`None`: any).
    pub fn get_next(
        &self,
        start_seq: u64,
        filter: Option<&str>,
    ) -> Result<Option<StoredMsg>, StoreError> {
        let matcher = self.subjects.resolve(&Filter::new(filter));
        let mut start = start_seq.max(self.state.first_seq);
        if let Matcher::One(one) = matcher {
            let Some(s) = one.map(|sid| self.subjects.get(sid)) else {
                return Ok(None);
            };
            if s.last < start {
                return Ok(None);
            }
            start = start.max(s.first);
        }
        let next = self.log.entries(start).find(|e| matcher.contains(e.sid));
        next.map_or(Ok(None), |e| self.log.read(e.seq))
    }

    /// The stream's counters.
    pub fn state(&self) -> StreamState {
        let st = &self.state;
        StreamState {
            msgs: st.msgs,
            bytes: st.bytes,
            first_seq: st.first_seq,
            first_ts: st.first_ts,
            last_seq: st.last_seq,
            last_ts: st.last_ts,
            // A fresh stream has first_seq 0 and last_seq 0 and nothing deleted.
            num_deleted: if st.first_seq == 0 {
                0
            } else {
                (st.last_seq + 1)
                    .saturating_sub(st.first_seq)
                    .saturating_sub(st.msgs)
            },
            num_subjects: self.subjects.len() as u64,
        }
    }

    /// Per-subject counters of the subjects matching `filter` (`None`: all).
    pub fn subjects_state(&self, filter: Option<&str>) -> BTreeMap<String, SubjectState> {
        let matcher = self.subjects.resolve(&Filter::new(filter));
        let subject_state = |sid| {
            let s = self.subjects.get(sid);
            let state = SubjectState {
                msgs: s.msgs,
                first: s.first,
                last: s.last,
            };
            (s.name.to_string(), state)
        };
        matcher
            .sids(&self.subjects)
            .into_iter()
            .map(subject_state)
            .collect()
    }

    /// How many messages at or after `start_seq` match `filter`: a consumer's `num_pending`.
    pub fn num_pending(&self, start_seq: u64, filter: Option<&str>) -> u64 {
        let start = start_seq.max(self.state.first_seq);
        if start > self.state.last_seq || self.state.msgs == 0 {
            return 0;
        }
        let matcher = self.subjects.resolve(&Filter::new(filter));
        if let Matcher::All = matcher {
            if start <= self.state.first_seq {
                return self.state.msgs;
            }
            return self.log.entries(start).count() as u64;
        }
        let mut total = 0;
        let mut partial = false;
        for sid in matcher.sids(&self.subjects) {
            let s = self.subjects.get(sid);
            if s.first >= start {
                total += s.msgs;
            } else if s.last >= start {
                partial = true;
            }
        }
        if !partial {
            return total;
        }
        let from = self.log.entries(start);
        from.filter(|e| matcher.contains(e.sid)).count() as u64
    }

    /// Hands appended data to the operating system (file store): it then survives a crash of
    /// the process, not of the machine. Call before acknowledging under `SyncPolicy::Interval`
    /// or `Never`.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let result = self.log.flush();
        self.settle(result)
    }

    /// Makes everything appended, deleted and purged so far durable (file store: fsync of the
    /// active segment, and of the directory when segments came or went). One call covers any
    /// number of appends: the caller's group commit.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        let result = self.log.sync();
        self.settle(result)
    }

    /// Makes a change answered right away (an API delete or purge) as durable as the policy
    /// makes a PubAck: fsync under `Always`, handed to the operating system otherwise.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        match self.sync_policy() {
            SyncPolicy::Always => self.sync(),
            SyncPolicy::Interval(_) | SyncPolicy::Never => self.flush(),
        }
    }

    /// The first half of a sync that does not hold the store during the fsync: writes
    /// everything out now and returns the fsync, which covers every append made before this
    /// call. Appends made meanwhile need a later sync.
    pub fn prepare_sync(&mut self) -> Result<SyncHandle, StoreError> {
        let result = self.log.prepare_sync();
        self.settle(result)
    }
}

impl Drop for Store {
    /// Its bytes no longer count (the stream was deleted, or the server stops).
    fn drop(&mut self) {
        if let Some(gauge) = &self.gauge {
            gauge.sub(self.state.bytes);
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("limits", &self.limits)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// The longest subject a stored record can hold (its length is written in two bytes).
pub const MAX_STORED_SUBJECT_LEN: usize = u16::MAX as usize;

/// True when `subject` can be stored: 1 to [`MAX_STORED_SUBJECT_LEN`] bytes of non-empty tokens.
/// Anything else is taken, as nats-server stores whatever a publish delivered to the stream:
/// `*` and `>` tokens (literal characters in a published subject), control characters, any
/// token length. A subject with an empty token never reaches a stream (it matches nothing).
pub fn is_storable_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.len() <= MAX_STORED_SUBJECT_LEN
        && subject.split('.').all(|t| !t.is_empty())
}
