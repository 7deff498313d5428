//! The memory backend: messages in a `BTreeMap` by sequence, for `storage: memory` streams.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use super::log::{Entry, Last, Log, NewMsg};
use super::subjects::Sid;
use super::{StoreError, StoredMsg, SyncHandle, SyncPolicy};

/// One message held in memory.
#[derive(Debug)]
struct MemMsg {
    sid: Sid,
    subject: Arc<str>,
    headers: Option<Bytes>,
    payload: Bytes,
    ts: i64,
    size: u64,
}

/// Messages in memory; nothing survives the process.
#[derive(Debug, Default)]
pub(crate) struct MemoryLog {
    msgs: BTreeMap<u64, MemMsg>,
}

impl MemMsg {
    fn entry(&self, seq: u64) -> Entry {
        Entry {
            seq,
            sid: self.sid,
            size: self.size,
        }
    }
}

impl Log for MemoryLog {
    /// nats-server's memory store: subject, headers and payload plus 16 bytes (sequence and
    /// timestamp).
    fn msg_size(&self, subject_len: usize, headers_len: Option<usize>, payload_len: usize) -> u64 {
        (subject_len + headers_len.unwrap_or(0) + payload_len + 16) as u64
    }

    fn append(&mut self, msg: &NewMsg) -> Result<u64, StoreError> {
        let size = self.msg_size(
            msg.subject.len(),
            msg.headers.map(<[u8]>::len),
            msg.payload.len(),
        );
        let stored = MemMsg {
            sid: msg.sid,
            subject: msg.subject.clone(),
            headers: msg.headers.map(Bytes::copy_from_slice),
            payload: Bytes::copy_from_slice(msg.payload),
            ts: msg.ts,
            size,
        };
        self.msgs.insert(msg.seq, stored);
        Ok(size)
    }

    fn entry(&self, seq: u64) -> Option<Entry> {
        self.msgs.get(&seq).map(|m| m.entry(seq))
    }

    fn entries(&self, from: u64) -> Box<dyn Iterator<Item = Entry> + '_> {
        Box::new(self.msgs.range(from..).map(|(&seq, m)| m.entry(seq)))
    }

    fn entries_rev(&self, to: u64) -> Box<dyn Iterator<Item = Entry> + '_> {
        Box::new(self.msgs.range(..=to).rev().map(|(&seq, m)| m.entry(seq)))
    }

    fn ts(&self, seq: u64) -> Result<Option<i64>, StoreError> {
        Ok(self.msgs.get(&seq).map(|m| m.ts))
    }

    fn expired_through(&self, from: u64, cutoff: i64) -> Result<Option<u64>, StoreError> {
        let expired = self.msgs.range(from..).take_while(|(_, m)| m.ts <= cutoff);
        Ok(expired.last().map(|(&seq, _)| seq))
    }

    fn read(&self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        Ok(self.msgs.get(&seq).map(|m| StoredMsg {
            seq,
            subject: m.subject.to_string(),
            headers: m.headers.clone(),
            payload: m.payload.clone(),
            timestamp: m.ts,
        }))
    }

    fn remove(&mut self, seq: u64) -> Result<(), StoreError> {
        self.msgs.remove(&seq);
        Ok(())
    }

    fn remove_below(&mut self, floor: u64, _last: Last) -> Result<(), StoreError> {
        self.msgs = self.msgs.split_off(&floor);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn prepare_sync(&mut self) -> Result<SyncHandle, StoreError> {
        Ok(SyncHandle::none())
    }

    fn sync_policy(&self) -> SyncPolicy {
        SyncPolicy::Never
    }
}
