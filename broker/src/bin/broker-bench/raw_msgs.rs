//! Reading any MSG or HMSG frame from a [`RawConn`], for clients that must look at each
//! message (PubAcks, API replies, pull deliveries) rather than count identical frames.

use std::ops::Range;
use std::time::Instant;

use anyhow::{bail, Context};

use super::RawConn;

/// One message from the server, borrowed from the connection's read buffer.
#[derive(Debug)]
pub(crate) struct Msg<'a> {
    /// The subject it was published on.
    pub subject: &'a [u8],
    /// The subscription id it was delivered to.
    pub sid: u64,
    /// Its reply subject, if it has one.
    pub reply: Option<&'a [u8]>,
    /// The header block (`NATS/1.0 ...\r\n...\r\n\r\n`) of an HMSG; empty for MSG.
    pub headers: &'a [u8],
    /// The payload.
    pub payload: &'a [u8],
}

impl Msg<'_> {
    /// The status code of a header-only status message (`NATS/1.0 408 Request Timeout`).
    pub(crate) fn status(&self) -> Option<u16> {
        let line = self.headers.strip_prefix(b"NATS/1.0 ")?;
        let code = line.get(..3)?;
        std::str::from_utf8(code).ok()?.parse().ok()
    }
}

/// Where the parts of one MSG or HMSG lie in the read buffer.
struct Frame {
    subject: Range<usize>,
    sid: u64,
    reply: Option<Range<usize>>,
    headers: Range<usize>,
    payload: Range<usize>,
    /// Just past the CRLF after the payload.
    end: usize,
}

/// What the next complete protocol line in the buffer is.
enum Next {
    Msg(Frame),
    /// A PING, answered with PONG; the line ends here.
    Ping(usize),
    /// A PONG, `+OK` or INFO, skipped; the line ends here.
    Skip(usize),
}

impl RawConn {
    /// Hands every complete MSG and HMSG already read to `each`, answering PINGs and skipping
    /// PONG, `+OK` and INFO; if none is complete, reads from the socket once (waiting at most
    /// the 100 ms read timeout) and tries again. Returns how many messages `each` saw, 0 when
    /// nothing arrived. Fails on `-ERR` or any other line.
    pub(crate) fn read_msgs(
        &mut self,
        mut each: impl FnMut(&Msg<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<usize> {
        let mut seen = 0;
        loop {
            match self.next_frame()? {
                Some(Next::Msg(f)) => {
                    let buf = &self.buf;
                    each(&Msg {
                        subject: &buf[f.subject],
                        sid: f.sid,
                        reply: f.reply.map(|r| &buf[r]),
                        headers: &buf[f.headers],
                        payload: &buf[f.payload],
                    })?;
                    self.start = f.end;
                    seen += 1;
                }
                Some(Next::Ping(end)) => {
                    self.start = end;
                    self.write_all(b"PONG\r\n")?;
                }
                Some(Next::Skip(end)) => self.start = end,
                None if seen > 0 => return Ok(seen),
                None => {
                    if self.fill()? == 0 {
                        return Ok(0);
                    }
                }
            }
        }
    }

    /// The next complete line (with its payload, for messages), or `None` if more bytes are
    /// needed.
    fn next_frame(&self) -> anyhow::Result<Option<Next>> {
        let avail = &self.buf[self.start..self.end];
        let Some(eol) = memchr::memmem::find(avail, b"\r\n") else {
            return Ok(None);
        };
        let line = &avail[..eol];
        let after_line = self.start + eol + 2;
        if line.starts_with(b"MSG ") || line.starts_with(b"HMSG ") {
            return self.parse_msg(line, after_line);
        }
        if line == b"PING" {
            return Ok(Some(Next::Ping(after_line)));
        }
        if line == b"PONG" || line == b"+OK" || line.starts_with(b"INFO ") {
            return Ok(Some(Next::Skip(after_line)));
        }
        bail!(
            "unexpected from the server: {:?}",
            String::from_utf8_lossy(line)
        )
    }

    // MSG <subject> <sid> [reply-to] <#bytes>\r\n[payload]\r\n
    // HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>\r\n[headers][payload]\r\n
    fn parse_msg(&self, line: &[u8], after_line: usize) -> anyhow::Result<Option<Next>> {
        let malformed = || format!("a malformed line: {:?}", String::from_utf8_lossy(line));
        // Up to 6 words, as (start, end) in the buffer.
        let base = after_line - line.len() - 2;
        let mut words = [(0usize, 0usize); 6];
        let mut count = 0;
        let mut at = base;
        for word in line.split(|b| *b == b' ' || *b == b'\t') {
            if !word.is_empty() {
                *words.get_mut(count).with_context(malformed)? = (at, at + word.len());
                count += 1;
            }
            at += word.len() + 1;
        }
        let number = |(from, to): (usize, usize)| -> anyhow::Result<usize> {
            std::str::from_utf8(&self.buf[from..to])
                .ok()
                .and_then(|t| t.parse().ok())
                .with_context(malformed)
        };
        let has_headers = line.starts_with(b"H");
        let fixed = if has_headers { 5 } else { 4 };
        if count != fixed && count != fixed + 1 {
            bail!(malformed());
        }
        let total = number(words[count - 1])?;
        let header_len = if has_headers {
            number(words[count - 2])?
        } else {
            0
        };
        if header_len > total {
            bail!(malformed());
        }
        let end = after_line + total + 2;
        if end > self.end {
            return Ok(None);
        }
        if &self.buf[end - 2..end] != b"\r\n" {
            bail!("a message without CRLF after its payload");
        }
        let range = |(from, to): (usize, usize)| from..to;
        Ok(Some(Next::Msg(Frame {
            subject: range(words[1]),
            sid: number(words[2])? as u64,
            reply: (count == fixed + 1).then(|| range(words[3])),
            headers: after_line..after_line + header_len,
            payload: after_line + header_len..after_line + total,
            end,
        })))
    }
}

/// Fails a wait that sees no progress for the connection's stall timeout.
pub(crate) struct Stall {
    last_progress: Instant,
    timeout: std::time::Duration,
}

impl Stall {
    /// Starts watching `conn`'s waits.
    pub(crate) fn new(conn: &RawConn) -> Stall {
        Stall {
            last_progress: Instant::now(),
            timeout: conn.stall_timeout,
        }
    }

    /// Notes that `seen` messages arrived; fails, saying `waiting_for`, if none have arrived
    /// for too long.
    pub(crate) fn check(
        &mut self,
        seen: usize,
        waiting_for: impl Fn() -> String,
    ) -> anyhow::Result<()> {
        if seen > 0 {
            self.last_progress = Instant::now();
        } else if self.last_progress.elapsed() > self.timeout {
            bail!(
                "nothing for {:?} while waiting for {}",
                self.timeout,
                waiting_for()
            );
        }
        Ok(())
    }
}
