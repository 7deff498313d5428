//! The in-memory sequence index of one segment: one 12-byte slot per sequence from the
//! segment's base, rebuilt on open. A slot says where the record is, how long it is and its
//! subject id, so limits and filters never read the disk. Timestamps stay in the records; the
//! index keeps only the newest one of the segment, which lets expiry skip whole segments.

use super::super::log::Entry;
use super::super::subjects::Sid;
use super::record::RECORD_OVERHEAD;

const DELETED: Sid = Sid::MAX;
const HEADERS_BIT: u32 = 1 << 31;

/// Where one message lives: 12 bytes, so a million messages cost 12 MB.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    /// Byte offset of the record in the segment file.
    pub offset: u32,
    /// Record length, with the top bit set when the message has headers.
    len: u32,
    sid: Sid,
}

impl Slot {
    /// A slot for a message record.
    pub fn new(offset: usize, len: usize, has_headers: bool, sid: Sid) -> Slot {
        let flag = if has_headers { HEADERS_BIT } else { 0 };
        Slot {
            offset: offset as u32,
            len: len as u32 | flag,
            sid,
        }
    }

    /// Record length in bytes.
    pub fn len(&self) -> usize {
        (self.len & !HEADERS_BIT) as usize
    }

    /// nats-server's file store size: its record is 22 bytes of header, subject, payload and an
    /// 8-byte hash, plus 4 bytes of length and the headers when there are headers.
    fn msg_size(&self) -> u64 {
        let body = self.len() - RECORD_OVERHEAD;
        let headers = if self.len & HEADERS_BIT != 0 { 4 } else { 0 };
        (22 + body + 8 + headers) as u64
    }

    fn live(&self) -> bool {
        self.sid != DELETED
    }

    fn entry(&self, seq: u64) -> Entry {
        Entry {
            seq,
            sid: self.sid,
            size: self.msg_size(),
        }
    }
}

/// The slots of one segment, by sequence from `base`.
#[derive(Debug)]
pub(crate) struct SlotIndex {
    base: u64,
    slots: Vec<Slot>,
    live: u64,
    /// Every slot below this position is deleted: removals from the front start here, so
    /// evicting one message per append stays cheap in a large segment.
    low: usize,
    /// The newest timestamp of any message pushed, deleted ones included: when it has passed
    /// `max_age`, so has every message of the segment.
    max_ts: i64,
}

impl SlotIndex {
    /// An empty index for a segment starting at `base`.
    pub fn new(base: u64) -> SlotIndex {
        SlotIndex {
            base,
            slots: Vec::new(),
            live: 0,
            low: 0,
            max_ts: i64::MIN,
        }
    }

    /// First sequence of the segment.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The sequence the next message appended here gets.
    pub fn next_seq(&self) -> u64 {
        self.base + self.slots.len() as u64
    }

    /// Live messages.
    pub fn live(&self) -> u64 {
        self.live
    }

    /// The newest timestamp of the segment's messages (`i64::MIN` when it never had one).
    pub fn max_ts(&self) -> i64 {
        self.max_ts
    }

    /// Adds the slot of the next sequence, a message stamped `ts`.
    pub fn push(&mut self, slot: Slot, ts: i64) {
        self.slots.push(slot);
        self.live += 1;
        self.max_ts = self.max_ts.max(ts);
    }

    /// Takes back the last slot pushed (an append that could not be written).
    pub fn pop(&mut self) {
        if let Some(slot) = self.slots.pop() {
            self.live -= u64::from(slot.live());
            self.low = self.low.min(self.slots.len());
        }
    }

    fn pos(&self, seq: u64) -> Option<usize> {
        let i = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        (i < self.slots.len()).then_some(i)
    }

    /// The live slot of `seq`.
    pub fn slot(&self, seq: u64) -> Option<Slot> {
        self.pos(seq).map(|i| self.slots[i]).filter(Slot::live)
    }

    /// The live message at `seq`.
    pub fn entry(&self, seq: u64) -> Option<Entry> {
        self.slot(seq).map(|s| s.entry(seq))
    }

    /// Marks `seq` deleted; false when it was not live.
    pub fn delete(&mut self, seq: u64) -> bool {
        match self.pos(seq) {
            Some(i) if self.slots[i].live() => {
                self.slots[i].sid = DELETED;
                self.live -= 1;
                true
            }
            _ => false,
        }
    }

    /// Marks every sequence below `floor` deleted.
    pub fn delete_below(&mut self, floor: u64) {
        let end = floor.saturating_sub(self.base).min(self.slots.len() as u64) as usize;
        for slot in &mut self.slots[self.low.min(end)..end] {
            if slot.live() {
                slot.sid = DELETED;
                self.live -= 1;
            }
        }
        self.low = self.low.max(end);
    }

    /// Live messages from `from` upwards.
    pub fn entries(&self, from: u64) -> impl Iterator<Item = Entry> + '_ {
        self.slots_from(from).map(|(seq, s)| s.entry(seq))
    }

    /// Live slots from `from` upwards, with their sequences.
    pub fn slots_from(&self, from: u64) -> impl Iterator<Item = (u64, Slot)> + '_ {
        let start = from.saturating_sub(self.base).min(self.slots.len() as u64) as usize;
        let base = self.base;
        self.slots[start..]
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live())
            .map(move |(i, &s)| (base + (start + i) as u64, s))
    }

    /// Live messages from `to` downwards.
    pub fn entries_rev(&self, to: u64) -> impl Iterator<Item = Entry> + '_ {
        let end = match to.checked_sub(self.base) {
            Some(i) => (i + 1).min(self.slots.len() as u64) as usize,
            None => 0,
        };
        let base = self.base;
        self.slots[..end]
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, s)| s.live())
            .map(move |(i, s)| s.entry(base + i as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> SlotIndex {
        let mut ix = SlotIndex::new(10);
        for i in 0..5 {
            ix.push(
                Slot::new(32 + i * 40, 40, i % 2 == 0, i as Sid),
                100 - i as i64,
            );
        }
        ix
    }

    #[test]
    fn slots_are_twelve_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 12);
    }

    #[test]
    fn max_ts_is_the_newest_pushed_even_out_of_order() {
        let mut ix = index();
        assert_eq!(ix.max_ts(), 100);
        ix.delete_below(15);
        assert_eq!(
            ix.max_ts(),
            100,
            "deletes keep it: it is only an upper bound"
        );
        assert_eq!(SlotIndex::new(1).max_ts(), i64::MIN);
    }

    #[test]
    fn deletes_hide_slots_from_lookups_and_walks() {
        let mut ix = index();
        assert!(ix.delete(11));
        assert!(!ix.delete(11));
        ix.delete_below(11);
        assert_eq!(ix.live(), 3);
        let up: Vec<u64> = ix.entries(0).map(|e| e.seq).collect();
        assert_eq!(up, [12, 13, 14]);
        let down: Vec<u64> = ix.entries_rev(13).map(|e| e.seq).collect();
        assert_eq!(down, [13, 12]);
        assert!(ix.entry(10).is_none() && ix.entry(15).is_none());
        assert_eq!(ix.entries_rev(9).count(), 0);
    }

    #[test]
    fn sizes_follow_nats_server_file_store() {
        let ix = index();
        // 40-byte record: 4 bytes of body; nats-server: 22 + 4 + 8, plus 4 with headers.
        assert_eq!(ix.entry(10).unwrap().size, 38);
        assert_eq!(ix.entry(11).unwrap().size, 34);
    }
}
