//! The bytes on disk: a segment header, then records. Little-endian throughout.
//!
//! Segment header (32 bytes):
//! ```text
//! 0  magic   8  b"NSTRSEG1"
//! 8  base    8  first sequence this segment holds (also its file name)
//! 16 last_ts 8  the stream's last timestamp when the segment was created
//! 24 zero    4
//! 28 crc32c  4  over bytes 0..28
//! ```
//! Record (36 bytes + subject + headers + payload):
//! ```text
//! 0  len         4  whole record, crc included
//! 4  kind        1  1 message, 2 tombstone, 3 compaction
//! 5  flags       1  bit 0: the message has headers
//! 6  subject_len 2
//! 8  seq         8  message: its sequence; tombstone: the deleted one; compaction: the floor
//! 16 ts          8  message: its timestamp; compaction: the stream's last timestamp
//! 24 headers_len 4
//! 28 payload_len 4
//! 32 subject, headers, payload
//! .. crc32c      4  over every byte of the record before it
//! ```

/// Bytes in a segment header.
pub(crate) const SEGMENT_HEADER_LEN: usize = 32;
/// Bytes in a record before its subject.
pub(crate) const RECORD_HEADER_LEN: usize = 32;
/// Bytes a record adds to subject, headers and payload.
pub(crate) const RECORD_OVERHEAD: usize = RECORD_HEADER_LEN + 4;
/// Largest record accepted, so that offsets and lengths fit 32 bits.
pub(crate) const MAX_RECORD_LEN: usize = 1 << 30;

const MAGIC: &[u8; 8] = b"NSTRSEG1";
const FLAG_HEADERS: u8 = 1;

/// What a record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A stored message.
    Msg = 1,
    /// The message at `seq` was deleted.
    Tombstone = 2,
    /// Every message below `seq` was removed.
    Compact = 3,
}

/// The fixed part of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub len: usize,
    pub kind: Kind,
    pub has_headers: bool,
    pub subject_len: usize,
    pub seq: u64,
    pub ts: i64,
    pub headers_len: usize,
    pub payload_len: usize,
}

/// Length of a message record.
pub(crate) fn record_len(subject_len: usize, headers_len: usize, payload_len: usize) -> usize {
    RECORD_OVERHEAD + subject_len + headers_len + payload_len
}

/// Appends a message record to `out`.
pub(crate) fn encode_msg(
    out: &mut Vec<u8>,
    seq: u64,
    ts: i64,
    subject: &[u8],
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    let h = headers.unwrap_or_default();
    let len = record_len(subject.len(), h.len(), payload.len());
    let start = out.len();
    out.reserve(len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.push(Kind::Msg as u8);
    out.push(if headers.is_some() { FLAG_HEADERS } else { 0 });
    out.extend_from_slice(&(subject.len() as u16).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&ts.to_le_bytes());
    out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(subject);
    out.extend_from_slice(h);
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Appends a tombstone or compaction record to `out`.
pub(crate) fn encode_marker(out: &mut Vec<u8>, kind: Kind, seq: u64, ts: i64) {
    let start = out.len();
    out.extend_from_slice(&(RECORD_OVERHEAD as u32).to_le_bytes());
    out.extend_from_slice(&[kind as u8, 0, 0, 0]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&ts.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads and checks the fixed part of a record (not its checksum).
pub(crate) fn parse_header(b: &[u8; RECORD_HEADER_LEN]) -> Result<RecordHeader, &'static str> {
    let kind = match b[4] {
        1 => Kind::Msg,
        2 => Kind::Tombstone,
        3 => Kind::Compact,
        0 => return Err("zeroed record"),
        _ => return Err("unknown record kind"),
    };
    let h = RecordHeader {
        len: u32_at(b, 0) as usize,
        kind,
        has_headers: b[5] & FLAG_HEADERS != 0,
        subject_len: u16::from_le_bytes([b[6], b[7]]) as usize,
        seq: u64_at(b, 8),
        ts: u64_at(b, 16) as i64,
        headers_len: u32_at(b, 24) as usize,
        payload_len: u32_at(b, 28) as usize,
    };
    if b[5] & !FLAG_HEADERS != 0 || (!h.has_headers && h.headers_len != 0) {
        return Err("bad record flags");
    }
    if h.len > MAX_RECORD_LEN || h.len != record_len(h.subject_len, h.headers_len, h.payload_len) {
        return Err("record length does not add up");
    }
    if kind != Kind::Msg && h.len != RECORD_OVERHEAD {
        return Err("marker record with a body");
    }
    Ok(h)
}

/// Whether a whole record's checksum holds.
pub(crate) fn checksum_ok(record: &[u8]) -> bool {
    let (body, crc) = record.split_at(record.len() - 4);
    crc32c::crc32c(body) == u32_at(crc, 0)
}

/// Where subject, headers and payload lie in a message record.
pub(crate) fn body_ranges(
    h: &RecordHeader,
) -> (
    std::ops::Range<usize>,
    std::ops::Range<usize>,
    std::ops::Range<usize>,
) {
    let subject = RECORD_HEADER_LEN..RECORD_HEADER_LEN + h.subject_len;
    let headers = subject.end..subject.end + h.headers_len;
    let payload = headers.end..headers.end + h.payload_len;
    (subject, headers, payload)
}

/// The segment header of a segment starting at `base`.
pub(crate) fn encode_segment_header(base: u64, last_ts: i64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut b = [0; SEGMENT_HEADER_LEN];
    b[..8].copy_from_slice(MAGIC);
    b[8..16].copy_from_slice(&base.to_le_bytes());
    b[16..24].copy_from_slice(&last_ts.to_le_bytes());
    let crc = crc32c::crc32c(&b[..28]);
    b[28..].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Reads a segment header: its base sequence and the last timestamp it recorded.
pub(crate) fn parse_segment_header(
    b: &[u8; SEGMENT_HEADER_LEN],
) -> Result<(u64, i64), &'static str> {
    if &b[..8] != MAGIC {
        return Err("not a segment header");
    }
    if crc32c::crc32c(&b[..28]) != u32_at(b, 28) || b[24..28] != [0; 4] {
        return Err("segment header checksum mismatch");
    }
    Ok((u64_at(b, 8), u64_at(b, 16) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_record_reads_back_field_by_field() {
        let mut out = vec![7];
        encode_msg(
            &mut out,
            42,
            -5,
            b"a.b",
            Some(b"NATS/1.0\r\n\r\n"),
            b"hello",
        );
        let rec = &out[1..];
        assert_eq!(rec.len(), record_len(3, 12, 5));
        let h = parse_header(rec[..RECORD_HEADER_LEN].try_into().unwrap()).unwrap();
        assert_eq!(
            (h.kind, h.seq, h.ts, h.has_headers),
            (Kind::Msg, 42, -5, true)
        );
        let (s, hd, p) = body_ranges(&h);
        assert_eq!(
            (&rec[s], &rec[hd], &rec[p]),
            (&b"a.b"[..], &b"NATS/1.0\r\n\r\n"[..], &b"hello"[..])
        );
        assert!(checksum_ok(rec));
    }

    #[test]
    fn any_flipped_bit_fails_the_header_or_the_checksum() {
        let mut rec = Vec::new();
        encode_msg(&mut rec, 1, 2, b"s", None, b"xyz");
        for i in 0..rec.len() {
            for bit in 0..8 {
                let mut bad = rec.clone();
                bad[i] ^= 1 << bit;
                let header = parse_header(bad[..RECORD_HEADER_LEN].try_into().unwrap());
                assert!(header.is_err() || !checksum_ok(&bad), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn markers_and_segment_headers_round_trip() {
        let mut rec = Vec::new();
        encode_marker(&mut rec, Kind::Compact, 9, 77);
        let h = parse_header(rec[..RECORD_HEADER_LEN].try_into().unwrap()).unwrap();
        assert_eq!(
            (h.kind, h.seq, h.ts, h.len),
            (Kind::Compact, 9, 77, RECORD_OVERHEAD)
        );
        assert!(checksum_ok(&rec));
        assert_eq!(
            parse_segment_header(&encode_segment_header(5, 6)),
            Ok((5, 6))
        );
        assert!(parse_segment_header(&[0; SEGMENT_HEADER_LEN]).is_err());
    }
}
