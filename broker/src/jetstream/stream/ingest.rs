//! A message published on one of the stream's subjects: the checks nats-server makes, in its
//! order (sealed, expected stream, duplicate, expected last subject sequence, expected last
//! sequence, expected last id, rollup, size), then the store, then the PubAck.

use serde_json::json;

use super::commit::AwaitingAck;
use super::{Retention, Storage, Stream, StreamInner};
use crate::client::InternalSink;
use crate::jetstream::errors::ApiError;
use crate::jetstream::headers::{self, get};
use crate::jetstream::time::now_nanos;
use crate::proto::server_op::Delivery;
use crate::store::{Purge, StoreError, SyncPolicy};

/// Largest header block a stream takes.
const MAX_HEADER_LEN: usize = u16::MAX as usize;

/// What became of a published message.
enum Ingested {
    /// Stored at this sequence.
    Stored(u64),
    /// Stored before, at this sequence (`Nats-Msg-Id` within the window).
    Duplicate(u64),
    /// Not stored: nobody is interested (interest retention); the sequence is used up.
    Skipped(u64),
}

impl InternalSink for Stream {
    fn receive(&self, d: &Delivery<'_>) {
        let Ok(subject) = std::str::from_utf8(d.subject) else {
            return;
        };
        let reply = d
            .reply
            .and_then(|r| std::str::from_utf8(r).ok())
            .filter(|r| !r.is_empty());
        let mut inner = self.inner.lock();
        let can_respond = reply.is_some() && !inner.config.no_ack;
        let admission = Admission {
            interested: self.has_interest(&inner, subject),
            resources_exceeded: self.ctx.config.resources.exceeded(inner.config.storage),
        };
        let mut result = inner.ingest(subject, d.headers, d.payload, admission);
        let file = inner.config.storage == Storage::File;
        let group_commit = file && self.ctx.config.sync == SyncPolicy::Always;
        let deferred = can_respond
            && group_commit
            && (matches!(result, Ok(Ingested::Stored(_))) || !inner.awaiting_sync.is_empty());
        if matches!(result, Ok(Ingested::Stored(_))) && file && !deferred {
            // The PubAck says the message reached the operating system: only if it did.
            if let Err(e) = inner.store.flush() {
                tracing::error!(stream = %self.name, "writing a message: {e}");
                inner.forget_rewound();
                result = Err(store_error(e));
            }
        }
        let body = self.pub_ack_body(&result);
        if let (true, Some(reply)) = (deferred, reply) {
            inner.awaiting_sync.push(AwaitingAck {
                reply: reply.to_string(),
                body: body.clone(),
                acknowledges: result.is_ok(),
            });
        }
        drop(inner);
        if deferred {
            self.commit_wake.notify_one();
        } else if let (true, Some(reply)) = (can_respond, reply) {
            self.ctx.reply(reply, &body);
        }
        if let Ok(Ingested::Stored(seq)) = result {
            self.notify_stored(seq, subject);
        }
    }
}

impl Stream {
    /// Whether interest retention should store a message on `subject`.
    fn has_interest(&self, inner: &StreamInner, subject: &str) -> bool {
        if inner.config.retention != Retention::Interest {
            return true;
        }
        self.consumers
            .read()
            .values()
            .any(|c| c.filter_matches(subject))
    }

    /// The PubAck of a publish refused with `error`.
    pub(super) fn error_ack(&self, error: ApiError) -> Vec<u8> {
        self.pub_ack_body(&Err(error))
    }

    fn pub_ack_body(&self, result: &Result<Ingested, ApiError>) -> Vec<u8> {
        let name = &self.name;
        let body = match result {
            Ok(Ingested::Stored(seq) | Ingested::Skipped(seq)) => {
                return format!("{{\"stream\":{}, \"seq\":{seq}}}", json!(name)).into_bytes();
            }
            Ok(Ingested::Duplicate(seq)) => {
                return format!(
                    "{{\"stream\":{}, \"seq\":{seq},\"duplicate\": true}}",
                    json!(name)
                )
                .into_bytes();
            }
            Err(e) => json!({"error": e, "stream": name, "seq": 0}),
        };
        body.to_string().into_bytes()
    }
}

/// What the server says of a message before the stream looks at it.
struct Admission {
    /// Someone would consume it (always, but under interest retention).
    interested: bool,
    /// The server's storage of the stream's kind is past its limit (`max_storage`,
    /// `max_memory`).
    resources_exceeded: bool,
}

impl StreamInner {
    fn ingest(
        &mut self,
        subject: &str,
        hdrs: Option<&[u8]>,
        payload: &[u8],
        admission: Admission,
    ) -> Result<Ingested, ApiError> {
        if self.config.sealed {
            return Err(ApiError::stream_sealed());
        }
        let now = now_nanos();
        let hdrs = hdrs.filter(|h| !h.is_empty());
        let mut msg_id = None;
        let mut rollup = None;
        if let Some(h) = hdrs {
            if let Some(dup) = self.check_headers(h, subject, now)? {
                return Ok(Ingested::Duplicate(dup));
            }
            msg_id = get(h, headers::MSG_ID).filter(|id| !id.is_empty());
            rollup = self.check_rollup(h)?;
        }
        let body_len = hdrs.map_or(0, <[u8]>::len) + payload.len();
        if self.config.max_msg_size >= 0 && body_len as i64 > self.config.max_msg_size {
            return Err(ApiError::message_too_big());
        }
        if hdrs.map_or(0, <[u8]>::len) > MAX_HEADER_LEN {
            return Err(ApiError::header_too_big());
        }
        if admission.resources_exceeded {
            return Err(ApiError::insufficient_resources());
        }
        if !admission.interested {
            let seq = self.skip(subject, now).map_err(|e| self.refused(e))?;
            self.remember(msg_id, seq, now);
            return Ok(Ingested::Skipped(seq));
        }
        let seq = self
            .store
            .append(subject, hdrs, payload, now)
            .map_err(|e| self.refused(e))?;
        self.remember(msg_id, seq, now);
        if let Some(all) = rollup {
            let purge = Purge {
                filter: (!all).then(|| subject.to_string()),
                keep: Some(1),
                ..Purge::default()
            };
            if let Err(e) = self.store.purge(&purge) {
                tracing::warn!(stream = %self.config.name, "rollup: {e}");
            }
        }
        Ok(Ingested::Stored(seq))
    }

    /// A store refusal as the PubAck error, after forgetting what a full disk took back.
    fn refused(&mut self, e: StoreError) -> ApiError {
        self.forget_rewound();
        store_error(e)
    }

    /// Forgets the message ids of messages a full disk took back from the store.
    pub(super) fn forget_rewound(&mut self) {
        if let Some(seq) = self.store.take_rewound() {
            self.dedup.forget_from(seq);
        }
    }

    fn remember(&mut self, msg_id: Option<&str>, seq: u64, now: i64) {
        self.last_msg_id = msg_id.unwrap_or_default().to_string();
        if let Some(id) = msg_id {
            self.dedup.insert(id, seq, now);
        }
    }

    /// The expected-* headers and the duplicate window; `Some(seq)` for a duplicate.
    fn check_headers(
        &mut self,
        h: &[u8],
        subject: &str,
        now: i64,
    ) -> Result<Option<u64>, ApiError> {
        if let Some(name) = get(h, headers::EXPECTED_STREAM) {
            if !name.is_empty() && name != self.config.name {
                return Err(ApiError::stream_not_match());
            }
        }
        if let Some(id) = get(h, headers::MSG_ID).filter(|id| !id.is_empty()) {
            if let Some(seq) = self.dedup.check(id, now) {
                return Ok(Some(seq));
            }
        }
        if let Some(expected) = headers::sequence(h, headers::EXPECTED_LAST_SUBJECT_SEQ) {
            let last = match self.store.get_last_by_subject(subject) {
                Ok(Some(m)) => m.seq,
                Ok(None) => 0,
                Err(e) => return Err(store_error(e)),
            };
            if last != expected {
                return Err(ApiError::wrong_last_sequence(last));
            }
        }
        if let Some(expected) = headers::sequence(h, headers::EXPECTED_LAST_SEQ) {
            let last = self.store.state().last_seq;
            if expected != last {
                return Err(ApiError::wrong_last_sequence(last));
            }
        }
        if let Some(expected) = get(h, headers::EXPECTED_LAST_MSG_ID) {
            if !expected.is_empty() && expected != self.last_msg_id {
                return Err(ApiError::wrong_last_msg_id(&self.last_msg_id));
            }
        }
        Ok(None)
    }

    /// `Nats-Rollup`: `Some(false)` rolls up the subject, `Some(true)` the whole stream.
    fn check_rollup(&self, h: &[u8]) -> Result<Option<bool>, ApiError> {
        let Some(value) = get(h, headers::ROLLUP).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        if !self.config.allow_rollup_hdrs || self.config.deny_purge {
            return Err(ApiError::rollup_failed("rollup not permitted"));
        }
        match value {
            "sub" => Ok(Some(false)),
            "all" => Ok(Some(true)),
            other => Err(ApiError::rollup_failed(format!(
                "rollup value invalid: {other:?}"
            ))),
        }
    }

    /// Uses up a sequence without keeping a message, as interest retention does when nobody
    /// listens.
    fn skip(&mut self, subject: &str, now: i64) -> Result<u64, StoreError> {
        let seq = self.store.append(subject, None, b"", now)?;
        self.store.delete(seq)?;
        Ok(seq)
    }
}

/// A store refusal as the PubAck error nats-server sends.
fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::LimitExceeded(crate::store::Limit::MaxMsgSize) => ApiError::message_too_big(),
        other => ApiError::store_failed(other),
    }
}
