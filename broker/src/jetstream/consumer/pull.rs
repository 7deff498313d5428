//! Pull requests (`$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`): what a request asks for,
//! and the status messages nats-server answers with.

use serde::Deserialize;

use crate::jetstream::headers::HeaderBlock;

/// A pull request as the client sends it: a JSON object, a bare batch size, or nothing
/// (one message).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
struct RequestBody {
    batch: i64,
    expires: i64,
    no_wait: bool,
    max_bytes: i64,
    idle_heartbeat: i64,
}

/// A waiting pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PullRequest {
    /// Where messages and statuses go.
    pub reply: String,
    /// Messages still wanted.
    pub batch: u64,
    /// Bytes still allowed; 0 for no limit.
    pub max_bytes: u64,
    /// When it expires, Unix nanoseconds; `None` for never.
    pub expires: Option<i64>,
    /// Return at once when nothing (more) is there.
    pub no_wait: bool,
    /// Heartbeat interval, nanoseconds; 0 for none.
    pub heartbeat: i64,
    /// When the next heartbeat is due.
    pub next_heartbeat: Option<i64>,
    /// Messages delivered to it so far.
    pub delivered: u64,
    /// The connection subscribed to `reply`, when the broker redelivers on disconnect: the
    /// request goes when that connection closes.
    pub owner: Option<u64>,
}

impl PullRequest {
    /// Parses a request body received at `now`.
    pub fn parse(reply: &str, body: &[u8], now: i64) -> Result<PullRequest, String> {
        let text = std::str::from_utf8(body).map_err(|_| "invalid request".to_string())?;
        let text = text.trim();
        let req = if text.is_empty() {
            RequestBody {
                batch: 1,
                ..RequestBody::default()
            }
        } else if text.bytes().all(|b| b.is_ascii_digit()) {
            RequestBody {
                batch: text.parse().map_err(|_| "invalid batch size".to_string())?,
                ..RequestBody::default()
            }
        } else {
            serde_json::from_str(text).map_err(|e| e.to_string())?
        };
        if req.expires < 0 || req.max_bytes < 0 || req.idle_heartbeat < 0 {
            return Err("negative values are not allowed".into());
        }
        if req.idle_heartbeat > 0 && req.expires == 0 {
            return Err("heartbeat value too large".into());
        }
        if req.idle_heartbeat > 0 && req.idle_heartbeat * 2 > req.expires {
            return Err("heartbeat value too large".into());
        }
        let expires = (req.expires > 0).then(|| now.saturating_add(req.expires));
        Ok(PullRequest {
            reply: reply.to_string(),
            batch: u64::try_from(req.batch.max(1)).unwrap_or(1),
            max_bytes: u64::try_from(req.max_bytes).unwrap_or(0),
            expires,
            no_wait: req.no_wait,
            heartbeat: req.idle_heartbeat,
            next_heartbeat: (req.idle_heartbeat > 0).then(|| now + req.idle_heartbeat),
            delivered: 0,
            owner: None,
        })
    }

    /// The `408 Request Timeout` that ends an expired request.
    pub fn timeout_status(&self) -> Vec<u8> {
        self.pending_status(408, "Request Timeout")
    }

    /// A status carrying the request's remaining messages and bytes.
    pub fn pending_status(&self, code: u16, text: &str) -> Vec<u8> {
        HeaderBlock::status(code, text)
            .add("Nats-Pending-Messages", self.batch)
            .add("Nats-Pending-Bytes", self.max_bytes)
            .finish()
    }
}

/// A status line with no headers, such as `NATS/1.0 404 No Messages`.
pub(crate) fn status(code: u16, text: &str) -> Vec<u8> {
    HeaderBlock::status(code, text).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_come_in_three_shapes() {
        let empty = PullRequest::parse("r", b"", 0).unwrap();
        assert_eq!(empty.batch, 1);
        assert_eq!(PullRequest::parse("r", b"10", 0).unwrap().batch, 10);
        let json = PullRequest::parse(
            "r",
            br#"{"batch":5,"expires":1000000,"no_wait":true,"max_bytes":64}"#,
            7,
        )
        .unwrap();
        assert_eq!(
            (json.batch, json.expires, json.no_wait, json.max_bytes),
            (5, Some(1_000_007), true, 64)
        );
    }

    #[test]
    fn bad_bodies_are_refused() {
        assert!(PullRequest::parse("r", b"{", 0).is_err());
        assert!(PullRequest::parse("r", br#"{"expires":-1}"#, 0).is_err());
        assert!(PullRequest::parse("r", br#"{"idle_heartbeat":10}"#, 0).is_err());
        assert!(PullRequest::parse("r", b"\xff", 0).is_err());
    }

    #[test]
    fn timeouts_carry_what_was_left() {
        let mut r = PullRequest::parse("r", br#"{"batch":3,"max_bytes":100}"#, 0).unwrap();
        r.batch = 2;
        assert_eq!(
            r.timeout_status(),
            b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 2\r\nNats-Pending-Bytes: 100\r\n\r\n"
        );
    }
}
