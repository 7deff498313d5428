//! Client operations: the bytes a client sends, parsed without copying.
//!
//! The parser works on whatever bytes have arrived so far. It answers `Ok(None)` when it needs
//! more bytes, `Ok(Some((op, n)))` with the operation and how many bytes it used, and `Err(..)`
//! when the bytes can never become a valid operation.

use super::ProtocolError;

/// One operation sent by a client; slices borrow the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientOp<'a> {
    /// `CONNECT <json>`
    Connect(&'a [u8]),
    /// `PUB` or `HPUB`.
    Pub(Publish<'a>),
    /// `SUB <subject> [queue group] <sid>`
    Sub {
        /// Subject, possibly with wildcards.
        subject: &'a [u8],
        /// Queue group.
        queue: Option<&'a [u8]>,
        /// Subscription id chosen by the client.
        sid: &'a [u8],
    },
    /// `UNSUB <sid> [max_msgs]`
    Unsub {
        /// Subscription id.
        sid: &'a [u8],
        /// Unsubscribe after this many messages in all; `None` unsubscribes now.
        max: Option<u64>,
    },
    /// `PING`
    Ping,
    /// `PONG`
    Pong,
    /// `INFO <json>`: accepted and ignored, as nats-server does for clients.
    Info,
    /// `+OK`: accepted and ignored.
    Ok,
    /// `-ERR <message>`: nats-server closes a client that sends it.
    Err,
}

/// A message published by a client.
#[derive(Debug, PartialEq, Eq)]
pub struct Publish<'a> {
    /// Literal subject.
    pub subject: &'a [u8],
    /// Reply subject.
    pub reply: Option<&'a [u8]>,
    /// Header block length at the start of `message`, for `HPUB`.
    pub header_len: Option<usize>,
    /// Headers (if any) followed by the payload.
    pub message: &'a [u8],
}

/// What the parser is allowed to accept.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest control line after the operation name.
    pub max_control_line: usize,
    /// Largest message (headers plus payload).
    pub max_payload: usize,
    /// Whether the client negotiated headers; HPUB without them closes the connection.
    pub headers: bool,
}

const OPS: [&[u8]; 10] = [
    b"PUB", b"HPUB", b"SUB", b"UNSUB", b"PING", b"PONG", b"CONNECT", b"INFO", b"+OK", b"-ERR",
];

/// Parses the next operation at the start of `buf`.
pub fn parse<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<(ClientOp<'a>, usize)>, ProtocolError> {
    let name_len = buf
        .iter()
        .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(buf.len());
    let name = &buf[..name_len];
    if name_len == buf.len() {
        // The name is still arriving: reject it as soon as it cannot become a known one.
        return if OPS
            .iter()
            .any(|op| starts_with_ignore_case(op, name) || ping_pong(name))
        {
            Ok(None)
        } else {
            Err(ProtocolError::UnknownOperation)
        };
    }
    let Some(nl) = memchr::memchr(b'\n', buf) else {
        let pending_cr = usize::from(buf.ends_with(b"\r"));
        if buf.len() - name_len - pending_cr > limits.max_control_line {
            return Err(ProtocolError::MaxControlLine);
        }
        check_name(name)?;
        return Ok(None);
    };
    let line_end = if nl > 0 && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    let args = if line_end > name_len {
        &buf[name_len..line_end]
    } else {
        &[][..]
    };
    if args.len() > limits.max_control_line {
        return Err(ProtocolError::MaxControlLine);
    }
    let after = nl + 1;
    let op = check_name(name)?;
    // nats-server wants a blank after these names; CONNECT alone may run into its argument.
    let takes_args = matches!(op, Op::Pub | Op::HPub | Op::Sub | Op::Unsub);
    if takes_args && !matches!(buf[name_len], b' ' | b'\t') {
        return Err(ProtocolError::UnknownOperation);
    }
    let op = match op {
        Op::Pub => return parse_pub(buf, args, after, limits, false),
        Op::HPub => return parse_pub(buf, args, after, limits, true),
        Op::Sub => parse_sub(args)?,
        Op::Unsub => parse_unsub(args)?,
        Op::Connect => ClientOp::Connect(trim(args)),
        Op::Ping => ClientOp::Ping,
        Op::Pong => ClientOp::Pong,
        Op::Info => ClientOp::Info,
        Op::Ok => ClientOp::Ok,
        Op::Err => ClientOp::Err,
    };
    Ok(Some((op, after)))
}

#[derive(Clone, Copy)]
enum Op {
    Pub,
    HPub,
    Sub,
    Unsub,
    Ping,
    Pong,
    Connect,
    Info,
    Ok,
    Err,
}

fn check_name(name: &[u8]) -> Result<Op, ProtocolError> {
    const NAMES: [(&[u8], Op); 8] = [
        (b"PUB", Op::Pub),
        (b"HPUB", Op::HPub),
        (b"SUB", Op::Sub),
        (b"UNSUB", Op::Unsub),
        (b"CONNECT", Op::Connect),
        (b"INFO", Op::Info),
        (b"+OK", Op::Ok),
        (b"-ERR", Op::Err),
    ];
    if let Some((_, op)) = NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        return Ok(*op);
    }
    // nats-server ignores whatever follows PING or PONG up to the end of the line.
    if starts_with_ignore_case(name, b"PING") {
        Ok(Op::Ping)
    } else if starts_with_ignore_case(name, b"PONG") {
        Ok(Op::Pong)
    } else {
        Err(ProtocolError::UnknownOperation)
    }
}

fn ping_pong(name: &[u8]) -> bool {
    name.len() >= 4
        && (starts_with_ignore_case(name, b"PING") || starts_with_ignore_case(name, b"PONG"))
}

fn starts_with_ignore_case(haystack: &[u8], prefix: &[u8]) -> bool {
    haystack.len() >= prefix.len() && haystack[..prefix.len()].eq_ignore_ascii_case(prefix)
}

// PUB <subject> [reply-to] <#bytes>\r\n[payload]\r\n
// HPUB <subject> [reply-to] <#header bytes> <#total bytes>\r\n[headers][payload]\r\n
fn parse_pub<'a>(
    buf: &'a [u8],
    args: &'a [u8],
    start: usize,
    limits: &Limits,
    headers: bool,
) -> Result<Option<(ClientOp<'a>, usize)>, ProtocolError> {
    if headers && !limits.headers {
        return Err(ProtocolError::Malformed("HPUB without headers in CONNECT"));
    }
    let mut parts = [&[][..]; 4];
    let n = split_args(args, &mut parts).ok_or(ProtocolError::Malformed("too many arguments"))?;
    let (subject, reply, header_len, total) = match (headers, n) {
        (false, 2) => (parts[0], None, None, parse_size(parts[1])?),
        (false, 3) => (parts[0], Some(parts[1]), None, parse_size(parts[2])?),
        (true, 3) => (
            parts[0],
            None,
            Some(parse_size(parts[1])?),
            parse_size(parts[2])?,
        ),
        (true, 4) => (
            parts[0],
            Some(parts[1]),
            Some(parse_size(parts[2])?),
            parse_size(parts[3])?,
        ),
        _ => return Err(ProtocolError::Malformed("wrong number of arguments")),
    };
    if header_len.is_some_and(|h| h > total) {
        return Err(ProtocolError::Malformed(
            "header size larger than total size",
        ));
    }
    if total > limits.max_payload {
        return Err(ProtocolError::MaxPayload);
    }
    let end = start + total;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(ProtocolError::UnknownOperation);
    }
    let publish = Publish {
        subject,
        reply,
        header_len,
        message: &buf[start..end],
    };
    Ok(Some((ClientOp::Pub(publish), end + 2)))
}

// SUB <subject> [queue group] <sid>
fn parse_sub(args: &[u8]) -> Result<ClientOp<'_>, ProtocolError> {
    let mut parts = [&[][..]; 3];
    match split_args(args, &mut parts) {
        Some(2) => Ok(ClientOp::Sub {
            subject: parts[0],
            queue: None,
            sid: parts[1],
        }),
        Some(3) => Ok(ClientOp::Sub {
            subject: parts[0],
            queue: Some(parts[1]),
            sid: parts[2],
        }),
        _ => Err(ProtocolError::Malformed(
            "SUB takes a subject, an optional queue and a sid",
        )),
    }
}

// UNSUB <sid> [max_msgs]
fn parse_unsub(args: &[u8]) -> Result<ClientOp<'_>, ProtocolError> {
    let mut parts = [&[][..]; 2];
    match split_args(args, &mut parts) {
        Some(1) => Ok(ClientOp::Unsub {
            sid: parts[0],
            max: None,
        }),
        // As nats-server, a count that is not a positive number means "now".
        Some(2) => {
            let max = parse_size(parts[1])
                .ok()
                .filter(|&n| n > 0)
                .map(|n| n as u64);
            Ok(ClientOp::Unsub { sid: parts[0], max })
        }
        _ => Err(ProtocolError::Malformed(
            "UNSUB takes a sid and an optional count",
        )),
    }
}

/// Splits on spaces and tabs into `out`; `None` when there are more parts than `out` holds.
fn split_args<'a>(args: &'a [u8], out: &mut [&'a [u8]]) -> Option<usize> {
    let mut n = 0;
    for part in args
        .split(|b| matches!(b, b' ' | b'\t'))
        .filter(|p| !p.is_empty())
    {
        *out.get_mut(n)? = part;
        n += 1;
    }
    Some(n)
}

fn parse_size(digits: &[u8]) -> Result<usize, ProtocolError> {
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError::Malformed("bad or missing size"));
    }
    Ok(digits
        .iter()
        .fold(0usize, |n, d| n * 10 + usize::from(d - b'0')))
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

#[cfg(test)]
#[path = "client_op_tests.rs"]
mod tests;
