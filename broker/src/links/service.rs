//! Service imports: the subscription in the importing account that forwards requests to the
//! exporter, and the exporter's table of replies owed to the requesters.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::accounts::Account;
use crate::client::{Client, InternalSink};
use crate::jetstream::transform::Transform;
use crate::options::ResponseType;
use crate::proto::server_op::Delivery;
use crate::server::ServerState;

/// The reply subjects made for requests through service imports start with this, as in
/// nats-server; clients may not use it for replies of their own.
pub(crate) const REPLY_PREFIX: &str = "_R_.";

/// Replies one exporting account may owe at once; a request that would pass it is not
/// forwarded (its requester hears "no responders" like for a service nobody answers).
pub(crate) const MAX_OWED_REPLIES: usize = 1_000_000;

/// How often the table of owed replies drops those past their threshold.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The header that tells a service which account a request came from.
const REQUEST_INFO: &str = "Nats-Request-Info";

/// A service import: requests published in the importing account on the subscription's
/// subject, forwarded to the exporter.
pub(crate) struct ServiceImport {
    pub state: Weak<ServerState>,
    /// The importing account, where requesters wait for their responses.
    pub importer: Arc<Account>,
    pub exporter: Arc<Account>,
    /// The local subject's mapping onto the exporter's; `None`: the same subject.
    pub transform: Option<Transform>,
    pub response: ResponseType,
    pub threshold: Duration,
    pub responses: Arc<Responses>,
}

impl ServiceImport {
    /// Subscribes the import in `importer` on its local subject.
    pub fn subscribe(state: &Arc<ServerState>, importer: &Arc<Account>, local: &str, import: Self) {
        let owner = state.system_client(importer);
        state.subscribe_internal(&owner, local, None, Arc::new(import));
    }
}

impl InternalSink for ServiceImport {
    fn receive(&self, msg: &Delivery<'_>) {
        self.forward(msg);
    }

    fn forward(&self, msg: &Delivery<'_>) -> bool {
        let Some(state) = self.state.upgrade() else {
            return false;
        };
        let Ok(local) = std::str::from_utf8(msg.subject) else {
            return false;
        };
        let mapped = match &self.transform {
            Some(t) => match t.apply(local) {
                Some(s) => s,
                None => return false,
            },
            // A wildcard import without a mapping keeps the subject as published.
            None => local.to_string(),
        };
        let reply = match msg.reply {
            // An acknowledgement subject names the consumer itself: it passes unchanged.
            Some(r) if r.starts_with(b"$JS.ACK.") => Some(r.to_vec()),
            Some(r) => {
                match self
                    .responses
                    .owe(&self.importer, r, self.response, self.threshold)
                {
                    Some(new) => Some(new.into_bytes()),
                    None => return false,
                }
            }
            None => None,
        };
        let headers = with_request_info(msg.headers, &self.importer.name);
        let d = Delivery {
            subject: mapped.as_bytes(),
            reply: reply.as_deref(),
            headers: Some(&headers),
            payload: msg.payload,
        };
        let reached = super::one_hop_deeper(|| {
            state
                .publish_internal(&self.exporter, mapped.as_bytes(), &d)
                .any()
        })
        .unwrap_or(false);
        if !reached {
            if let Some(r) = &reply {
                self.responses.forget(r);
            }
        }
        reached
    }
}

/// `headers` plus `Nats-Request-Info: {"acc":"<importer>"}`, replacing one already there.
fn with_request_info(headers: Option<&[u8]>, importer: &str) -> Vec<u8> {
    let info = serde_json::json!({ "acc": importer }).to_string();
    let mut out = Vec::with_capacity(headers.map_or(0, <[u8]>::len) + info.len() + 40);
    match headers {
        Some(h) if h.starts_with(b"NATS/1.0") => {
            let mut lines = h.split(|&b| b == b'\n');
            // The status line, then each header but an earlier request info, then ours.
            if let Some(first) = lines.next() {
                out.extend_from_slice(first);
                out.push(b'\n');
            }
            for line in lines {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let is_info = line
                    .split(|&b| b == b':')
                    .next()
                    .is_some_and(|name| name.eq_ignore_ascii_case(REQUEST_INFO.as_bytes()));
                if line.is_empty() || is_info {
                    continue;
                }
                out.extend_from_slice(line);
                out.extend_from_slice(b"\r\n");
            }
        }
        _ => out.extend_from_slice(b"NATS/1.0\r\n"),
    }
    out.extend_from_slice(format!("{REQUEST_INFO}: {info}\r\n\r\n").as_bytes());
    out
}

/// The replies an exporting account owes to requesters in other accounts, by the reply
/// subject made for each request, and the subscription that hears the responses.
pub(crate) struct Responses {
    state: Weak<ServerState>,
    /// `_R_.<token>.`: the start of every reply subject made here.
    prefix: String,
    owed: Mutex<Owed>,
    max: usize,
}

#[derive(Default)]
struct Owed {
    by_reply: HashMap<String, Owing>,
    next_sweep: Option<Instant>,
}

impl Owed {
    /// Lists `owing` under `subject` unless `max` are listed (after dropping those past
    /// their threshold, at most every [`SWEEP_EVERY`]).
    fn owe(&mut self, subject: String, owing: Owing, max: usize) -> Option<String> {
        let now = owing.touched;
        if self.next_sweep.is_none_or(|at| now >= at) {
            self.by_reply
                .retain(|_, o| now.duration_since(o.touched) < o.threshold);
            self.next_sweep = Some(now + SWEEP_EVERY);
        }
        if self.by_reply.len() >= max {
            return None;
        }
        self.by_reply.insert(subject.clone(), owing);
        Some(subject)
    }
}

/// One requester waiting for a response.
struct Owing {
    account: Arc<Account>,
    reply: Vec<u8>,
    response: ResponseType,
    threshold: Duration,
    /// When it was made, or when the last response went through.
    touched: Instant,
}

impl Responses {
    /// The table of `exporter`, with its subscription on `_R_.<token>.>`.
    pub fn start(state: &Arc<ServerState>, exporter: &Arc<Account>) -> Arc<Responses> {
        let responses = Arc::new(Responses {
            state: Arc::downgrade(state),
            prefix: format!("{REPLY_PREFIX}{}.", token(6)),
            owed: Mutex::new(Owed::default()),
            max: MAX_OWED_REPLIES,
        });
        let owner: Arc<Client> = state.system_client(exporter);
        let sink = Arc::new(ResponseSink(Arc::downgrade(&responses)));
        state.subscribe_internal(&owner, &format!("{}>", responses.prefix), None, sink);
        responses
    }

    /// Makes a reply subject for a request whose requester in `requester` waits on `reply`;
    /// `None` when the table is full.
    fn owe(
        &self,
        requester: &Arc<Account>,
        reply: &[u8],
        response: ResponseType,
        threshold: Duration,
    ) -> Option<String> {
        let owing = Owing {
            account: requester.clone(),
            reply: reply.to_vec(),
            response,
            threshold,
            touched: Instant::now(),
        };
        let subject = format!("{}{}", self.prefix, token(10));
        let owed = self.owed.lock().owe(subject, owing, self.max);
        if owed.is_none() {
            tracing::warn!(
                max = self.max,
                "a service export owes too many replies; a request is not forwarded"
            );
        }
        owed
    }

    fn forget(&self, reply: &[u8]) {
        if let Ok(reply) = std::str::from_utf8(reply) {
            self.owed.lock().by_reply.remove(reply);
        }
    }
}

/// Hears the responses published on the exporter's reply subjects and passes each to its
/// requester.
struct ResponseSink(Weak<Responses>);

impl InternalSink for ResponseSink {
    fn receive(&self, msg: &Delivery<'_>) {
        self.forward(msg);
    }

    fn forward(&self, msg: &Delivery<'_>) -> bool {
        let (Some(responses), Ok(subject)) = (self.0.upgrade(), std::str::from_utf8(msg.subject))
        else {
            return false;
        };
        let Some(state) = responses.state.upgrade() else {
            return false;
        };
        let now = Instant::now();
        let (account, reply, end) = {
            let mut owed = responses.owed.lock();
            let Some(o) = owed.by_reply.get_mut(subject) else {
                return false;
            };
            if now.duration_since(o.touched) >= o.threshold {
                owed.by_reply.remove(subject);
                return false;
            }
            o.touched = now;
            let empty = msg.payload.is_empty() && msg.headers.is_none();
            let end = match o.response {
                ResponseType::Singleton => true,
                ResponseType::Stream => false,
                ResponseType::Chunked => empty,
            };
            (o.account.clone(), o.reply.clone(), end)
        };
        let d = Delivery {
            subject: &reply,
            ..*msg
        };
        let reached = super::one_hop_deeper(|| state.publish_internal(&account, &reply, &d).any())
            .unwrap_or(false);
        if end || !reached {
            responses.owed.lock().by_reply.remove(subject);
        }
        reached
    }
}

/// `n` random characters from [0-9a-zA-Z].
fn token(n: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    (0..n)
        .map(|_| DIGITS[fastrand::usize(..DIGITS.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_info_header_is_added_once_and_other_headers_stay() {
        let fresh = with_request_info(None, "B");
        assert_eq!(
            fresh,
            b"NATS/1.0\r\nNats-Request-Info: {\"acc\":\"B\"}\r\n\r\n"
        );
        let existing = b"NATS/1.0\r\nX-One: 1\r\nnats-request-info: {\"acc\":\"EVIL\"}\r\n\r\n";
        let replaced = String::from_utf8(with_request_info(Some(existing), "B")).unwrap();
        assert_eq!(
            replaced,
            "NATS/1.0\r\nX-One: 1\r\nNats-Request-Info: {\"acc\":\"B\"}\r\n\r\n"
        );
    }

    fn owing(threshold_ms: u64, touched: Instant) -> Owing {
        Owing {
            account: crate::accounts::Accounts::new([]).global().clone(),
            reply: b"_INBOX.x".to_vec(),
            response: ResponseType::Singleton,
            threshold: Duration::from_millis(threshold_ms),
            touched,
        }
    }

    #[test]
    fn the_table_refuses_past_its_limit_and_drops_replies_past_their_threshold() {
        let start = Instant::now();
        let mut owed = Owed::default();
        assert!(owed.owe("r1".into(), owing(100, start), 2).is_some());
        assert!(owed.owe("r2".into(), owing(10_000, start), 2).is_some());
        assert!(
            owed.owe("r3".into(), owing(100, start), 2).is_none(),
            "full"
        );
        // A sweep later, the first one is past its threshold and makes room.
        let later = start + SWEEP_EVERY;
        assert_eq!(
            owed.owe("r4".into(), owing(100, later), 2).as_deref(),
            Some("r4")
        );
        let mut left: Vec<&String> = owed.by_reply.keys().collect();
        left.sort();
        assert_eq!(left, ["r2", "r4"]);
    }

    #[test]
    fn reply_tokens_use_letters_and_digits() {
        let t = token(10);
        assert_eq!(t.len(), 10);
        assert!(t.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
