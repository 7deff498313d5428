//! NATS header blocks: `NATS/1.0[ <status>[ <description>]]\r\n(<name>: <value>\r\n)*\r\n`.
//! JetStream reads a few headers of published messages and writes its own on status messages
//! and direct gets.

/// Headers a publisher sets to steer the stream.
pub(crate) const MSG_ID: &str = "Nats-Msg-Id";
pub(crate) const EXPECTED_STREAM: &str = "Nats-Expected-Stream";
pub(crate) const EXPECTED_LAST_SEQ: &str = "Nats-Expected-Last-Sequence";
pub(crate) const EXPECTED_LAST_SUBJECT_SEQ: &str = "Nats-Expected-Last-Subject-Sequence";
pub(crate) const EXPECTED_LAST_MSG_ID: &str = "Nats-Expected-Last-Msg-Id";
pub(crate) const ROLLUP: &str = "Nats-Rollup";

/// The value of header `name` (the first, when repeated); names match exactly, as in
/// nats-server.
pub(crate) fn get<'a>(block: &'a [u8], name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(block).ok()?;
    let mut lines = text.split("\r\n");
    lines.next()?; // NATS/1.0 status line
    lines.find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == name).then(|| value.trim())
    })
}

/// A sequence header (`Nats-Expected-Last-Sequence`, `-Last-Subject-Sequence`) read as
/// nats-server reads it: `None` when absent or empty (nothing to check); decimal digits as their
/// number, wrapping past `u64::MAX` as Go's arithmetic does; anything else (a sign, a letter) as
/// `u64::MAX`, which no stream's last sequence equals, so the check fails rather than the
/// request.
pub(crate) fn sequence(block: &[u8], name: &str) -> Option<u64> {
    let text = get(block, name).filter(|text| !text.is_empty())?;
    let number = text.bytes().try_fold(0u64, |n, b| {
        b.is_ascii_digit()
            .then(|| n.wrapping_mul(10).wrapping_add(u64::from(b - b'0')))
    });
    Some(number.unwrap_or(u64::MAX))
}

/// Builds a header block.
#[derive(Debug, Clone)]
pub(crate) struct HeaderBlock(Vec<u8>);

impl HeaderBlock {
    /// A block with no status.
    pub fn new() -> HeaderBlock {
        HeaderBlock(b"NATS/1.0\r\n".to_vec())
    }

    /// A status block, such as `NATS/1.0 404 No Messages`.
    pub fn status(code: u16, description: &str) -> HeaderBlock {
        let mut b = format!("NATS/1.0 {code}").into_bytes();
        if !description.is_empty() {
            b.push(b' ');
            b.extend_from_slice(description.as_bytes());
        }
        b.extend_from_slice(b"\r\n");
        HeaderBlock(b)
    }

    /// Starts from an existing block (its final empty line is dropped and written again).
    pub fn extend(block: &[u8]) -> HeaderBlock {
        let body = block.strip_suffix(b"\r\n").unwrap_or(block);
        HeaderBlock(body.to_vec())
    }

    /// Adds `name: value`.
    pub fn add(mut self, name: &str, value: impl std::fmt::Display) -> HeaderBlock {
        use std::io::Write;
        let _ = write!(self.0, "{name}: {value}\r\n");
        self
    }

    /// The finished block.
    pub fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(b"\r\n");
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_headers_by_exact_name() {
        let block = b"NATS/1.0\r\nNats-Msg-Id: abc \r\nX: 1\r\nX: 2\r\n\r\n";
        assert_eq!(get(block, MSG_ID), Some("abc"));
        assert_eq!(get(block, "X"), Some("1"));
        assert_eq!(get(block, "nats-msg-id"), None);
        assert_eq!(get(b"NATS/1.0\r\n\r\n", MSG_ID), None);
        assert_eq!(get(b"\xff\xfe", MSG_ID), None);
    }

    #[test]
    fn sequence_headers_read_as_nats_server_reads_them() {
        let block = |value: &str| format!("NATS/1.0\r\n{EXPECTED_LAST_SEQ}: {value}\r\n\r\n");
        let seq = |value: &str| sequence(block(value).as_bytes(), EXPECTED_LAST_SEQ);
        assert_eq!(seq("42"), Some(42));
        assert_eq!(seq("0"), Some(0));
        assert_eq!(seq(""), None, "empty: no check");
        assert_eq!(sequence(b"NATS/1.0\r\n\r\n", EXPECTED_LAST_SEQ), None);
        for junk in ["abc", "-1", "+1", "1x", "0x1", "1 2"] {
            assert_eq!(seq(junk), Some(u64::MAX), "{junk:?}");
        }
        assert_eq!(seq("18446744073709551615"), Some(u64::MAX));
        assert_eq!(seq("18446744073709551618"), Some(2), "2^64 + 2 wraps");
    }

    #[test]
    fn builds_status_blocks() {
        let b = HeaderBlock::status(408, "Request Timeout")
            .add("Nats-Pending-Messages", 2)
            .finish();
        assert_eq!(
            b,
            b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 2\r\n\r\n"
        );
        let more = HeaderBlock::extend(b"NATS/1.0\r\nA: b\r\n\r\n")
            .add("C", "d")
            .finish();
        assert_eq!(more, b"NATS/1.0\r\nA: b\r\nC: d\r\n\r\n");
    }
}
