//! Server operations: the bytes the server writes to a client.

use serde::Serialize;

/// `PING`
pub const PING: &[u8] = b"PING\r\n";
/// `PONG`
pub const PONG: &[u8] = b"PONG\r\n";
/// `+OK`, sent after each operation in verbose mode.
pub const OK: &[u8] = b"+OK\r\n";

/// The JSON body of `INFO`, with nats-server's field names.
#[derive(Clone, Debug, Serialize)]
pub struct Info {
    /// Unique id of this server process.
    pub server_id: String,
    /// Configured name, the id by default.
    pub server_name: String,
    /// The nats-server version whose behaviour is implemented (clients gate features on it).
    pub version: String,
    /// Protocol level.
    pub proto: u8,
    /// Language of the implementation; nats-server reports its Go version here.
    pub go: String,
    /// Interface the client port is bound to.
    pub host: String,
    /// Client port.
    pub port: u16,
    /// Headers are supported.
    pub headers: bool,
    /// Largest message accepted.
    pub max_payload: usize,
    /// The client must authenticate.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auth_required: bool,
    /// The client must upgrade to TLS (after this INFO, or it already has with
    /// `handshake_first`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_required: bool,
    /// The server asks for and checks client certificates.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_verify: bool,
    /// The client may upgrade to TLS, or not (`allow_non_tls`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_available: bool,
    /// JetStream is enabled.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub jetstream: bool,
    /// The connection's id.
    #[serde(skip_serializing_if = "is_zero")]
    pub client_id: u64,
    /// The connection's remote address.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_ip: String,
    /// The JetStream domain, when one is configured.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// Random text an nkey user signs to log in; only when nkey users are configured.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    /// The server is in lame duck mode: clients should move to another server.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ldm: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Appends `INFO {json}\r\n`.
pub fn write_info(out: &mut Vec<u8>, info: &Info) {
    out.extend_from_slice(b"INFO ");
    // Serialising a struct of strings and numbers into a Vec cannot fail.
    serde_json::to_writer(&mut *out, info).expect("INFO serialises");
    out.extend_from_slice(b"\r\n");
}

/// Appends `-ERR '<text>'\r\n`.
pub fn write_err(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"-ERR '");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"'\r\n");
}

/// A message on its way to one subscription.
pub struct Delivery<'a> {
    /// Subject it was published to.
    pub subject: &'a [u8],
    /// Reply subject, if any.
    pub reply: Option<&'a [u8]>,
    /// The header block (`NATS/1.0\r\n…\r\n`), if the message has one.
    pub headers: Option<&'a [u8]>,
    /// The payload.
    pub payload: &'a [u8],
}

// MSG <subject> <sid> [reply-to] <#bytes>\r\n[payload]\r\n
// HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>\r\n[headers][payload]\r\n
/// Appends the delivery of `d` to subscription `sid`; headers are stripped for clients that did
/// not ask for them. Returns the bytes of message counted as delivered.
pub fn write_msg(out: &mut Vec<u8>, d: &Delivery<'_>, sid: &[u8], client_headers: bool) -> usize {
    let headers = d.headers.filter(|_| client_headers);
    let header_len = headers.map(<[u8]>::len);
    let body_len = header_len.unwrap_or(0) + d.payload.len();
    out.reserve(d.subject.len() + sid.len() + body_len + 64);
    out.extend_from_slice(if header_len.is_some() {
        b"HMSG "
    } else {
        b"MSG "
    });
    out.extend_from_slice(d.subject);
    out.push(b' ');
    out.extend_from_slice(sid);
    out.push(b' ');
    if let Some(reply) = d.reply {
        out.extend_from_slice(reply);
        out.push(b' ');
    }
    if let Some(h) = header_len {
        write_decimal(out, h);
        out.push(b' ');
    }
    write_decimal(out, body_len);
    out.extend_from_slice(b"\r\n");
    if let Some(h) = headers {
        out.extend_from_slice(h);
    }
    out.extend_from_slice(d.payload);
    out.extend_from_slice(b"\r\n");
    body_len
}

fn write_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_lines_carry_sid_reply_and_sizes() {
        let mut out = Vec::new();
        let d = Delivery {
            subject: b"foo",
            reply: Some(b"_INBOX.1"),
            headers: None,
            payload: b"hi",
        };
        write_msg(&mut out, &d, b"7", true);
        assert_eq!(out, b"MSG foo 7 _INBOX.1 2\r\nhi\r\n");
    }

    #[test]
    fn headers_are_stripped_for_clients_without_header_support() {
        let d = Delivery {
            subject: b"foo",
            reply: None,
            headers: Some(b"NATS/1.0\r\nA: b\r\n\r\n"),
            payload: b"payload",
        };
        let mut with = Vec::new();
        write_msg(&mut with, &d, b"1", true);
        assert_eq!(
            with,
            b"HMSG foo 1 18 25\r\nNATS/1.0\r\nA: b\r\n\r\npayload\r\n"
        );
        let mut without = Vec::new();
        write_msg(&mut without, &d, b"1", false);
        assert_eq!(without, b"MSG foo 1 7\r\npayload\r\n");
    }

    #[test]
    fn zero_and_large_sizes_are_written_in_decimal() {
        let mut out = Vec::new();
        write_decimal(&mut out, 0);
        out.push(b' ');
        write_decimal(&mut out, 1_048_576);
        assert_eq!(out, b"0 1048576");
    }
}
