//! A message published on one of the stream's subjects: the checks nats-server makes, in its
//! order (sealed, expected stream, duplicate, expected last subject sequence, expected last
//! sequence, expected last id, rollup, size), then the store, then the PubAck.

use serde_json::json;

use super::commit::{refuse_taken_back, AwaitingAck};
use super::extras::republished;
use super::{Retention, Storage, Stream, StreamInner};
use crate::client::InternalSink;
use crate::jetstream::account_limits;
use crate::jetstream::context::Outgoing;
use crate::jetstream::errors::ApiError;
use crate::jetstream::headers::{self, get};
use crate::jetstream::time::now_nanos;
use crate::proto::server_op::Delivery;
use crate::store::{Purge, Rewound, StoreError, SyncPolicy};

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
        // A refusal went back in the PubAck.
        let _ = self.process(subject, reply, d.headers, d.payload);
    }
}

impl Stream {
    /// A message for the stream, published on one of its subjects or taken from a source:
    /// stored (or refused), republished, acknowledged to `reply`, announced to consumers.
    /// `Err` is the refusal.
    pub(super) fn process(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(), ApiError> {
        let mut inner = self.inner.lock();
        // `subject_transform`: a matching subject is stored (and seen by consumers) as its
        // transform.
        let transformed = inner.compiled.input.as_ref().and_then(|t| t.apply(subject));
        let subject = transformed.as_deref().unwrap_or(subject);
        let can_respond = reply.is_some() && !inner.config.no_ack;
        let storage = inner.config.storage;
        let config = &self.ctx.config;
        let admission = Admission {
            interested: self.has_interest(&inner, subject),
            resources_exceeded: config.resources.exceeded(storage),
            account: account_limits::limits_publishes(&config.account, storage)
                .then(|| (config.account, config.resources.account_used(storage))),
        };
        let mut result = inner.ingest(subject, headers, payload, admission);
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
                stored: match result {
                    Ok(Ingested::Stored(seq) | Ingested::Duplicate(seq)) => Some(seq),
                    _ => None,
                },
            });
        }
        // Only what is stored is republished (a failed write took the message back).
        let republish = inner
            .republish_out
            .take()
            .filter(|_| matches!(result, Ok(Ingested::Stored(_))));
        drop(inner);
        if let Some(copy) = republish {
            self.ctx.send(&Outgoing {
                route: &copy.subject,
                subject: &copy.subject,
                reply: None,
                headers: Some(&copy.headers),
                payload: &copy.payload,
            });
        }
        if deferred {
            self.commit_wake.notify_one();
        } else if let (true, Some(reply)) = (can_respond, reply) {
            self.ctx.reply(reply, &body);
        }
        match result {
            Ok(Ingested::Stored(seq)) => {
                self.notify_stored(seq, subject);
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

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
        // nats-server's exact text: the domain, when there is one, between stream and seq.
        let head = match &self.ctx.config.domain {
            Some(domain) => format!(
                "{{\"stream\":{}, \"domain\":{}, ",
                json!(self.name),
                json!(domain)
            ),
            None => format!("{{\"stream\":{}, ", json!(self.name)),
        };
        match result {
            Ok(Ingested::Stored(seq) | Ingested::Skipped(seq)) => {
                format!("{head}\"seq\":{seq}}}").into_bytes()
            }
            Ok(Ingested::Duplicate(seq)) => {
                format!("{head}\"seq\":{seq},\"duplicate\": true}}").into_bytes()
            }
            Err(e) => error_body(&self.name, e),
        }
    }
}

/// The PubAck body of a publish refused with `e`.
fn error_body(stream: &str, e: &ApiError) -> Vec<u8> {
    json!({"error": e, "stream": stream, "seq": 0})
        .to_string()
        .into_bytes()
}

/// What the server says of a message before the stream looks at it.
struct Admission {
    /// Someone would consume it (always, but under interest retention).
    interested: bool,
    /// The server's storage of the stream's kind is past its limit (`max_storage`,
    /// `max_memory`).
    resources_exceeded: bool,
    /// The account's limits and what its streams of this storage hold, when it has limits a
    /// publish must fit.
    account: Option<(crate::options::AccountJetStreamLimits, u64)>,
}

impl StreamInner {
    fn ingest(
        &mut self,
        subject: &str,
        hdrs: Option<&[u8]>,
        payload: &[u8],
        admission: Admission,
    ) -> Result<Ingested, ApiError> {
        // Before the duplicate check: a rewind since the last publish (a delete, purge, expiry
        // or limits change on a full disk) may have taken back messages whose ids it holds.
        self.forget_rewound();
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
        if let Some((limits, used)) = admission.account {
            let size = self.store.msg_size(subject, hdrs, payload);
            if !account_limits::admits(&limits, self.config.storage, used, size) {
                return Err(ApiError::account_resources_exceeded());
            }
        }
        if !admission.interested {
            let seq = self.skip(subject, now).map_err(|e| self.refused(e))?;
            self.remember(msg_id, seq, now);
            return Ok(Ingested::Skipped(seq));
        }
        let last_on_subject = match self.compiled.republish {
            Some(_) => self.last_on_subject(subject)?,
            None => 0,
        };
        let seq = self
            .store
            .append(subject, hdrs, payload, now)
            .map_err(|e| self.refused(e))?;
        self.remember(msg_id, seq, now);
        if self.compiled.republish.is_some() {
            let stored = (subject, seq, now);
            self.republish_out = republished(
                &self.config.name,
                &self.compiled,
                stored,
                last_on_subject,
                hdrs,
                payload,
            );
        }
        if let Some(all) = rollup {
            self.roll_up(subject, all);
        }
        // The rollup's purge may have found the disk full and taken this message back.
        if let Some(rewound) = self.forget_rewound().filter(|r| seq >= r.from) {
            return Err(store_error(rewound.error()));
        }
        Ok(Ingested::Stored(seq))
    }

    /// A store refusal as the PubAck error, after forgetting what a full disk took back.
    fn refused(&mut self, e: StoreError) -> ApiError {
        self.forget_rewound();
        store_error(e)
    }

    /// Forgets what a full disk took back from the store, as soon as possible after any write
    /// (all of them can rewind) and at the latest before the next duplicate check or PubAck:
    /// the `Nats-Msg-Id`s of those messages, so that a retry is stored rather than called a
    /// duplicate, and the PubAcks waiting for an fsync that would say one of them is stored,
    /// which become the refusal a publish gets on a full disk (503, 10077). A waiting PubAck
    /// of a message below [`Rewound::from`] (written whole, say when the buffer filled) is
    /// left alone: its message is in the file and the next fsync makes it durable. Returns
    /// what was taken back, for PubAcks the caller holds elsewhere.
    pub(super) fn forget_rewound(&mut self) -> Option<Rewound> {
        let rewound = self.store.take_rewound()?;
        self.dedup.forget_from(rewound.from);
        let refusal = error_body(&self.config.name, &store_error(rewound.error()));
        refuse_taken_back(&mut self.awaiting_sync, rewound.from, &refusal);
        Some(rewound)
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
            let last = self.last_on_subject(subject)?;
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

    /// The sequence of the newest message on `subject` (0 for none).
    fn last_on_subject(&self, subject: &str) -> Result<u64, ApiError> {
        match self.store.get_last_by_subject(subject) {
            Ok(m) => Ok(m.map_or(0, |m| m.seq)),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Keeps only the message just stored on `subject` (or in the whole stream, `all`).
    pub(super) fn roll_up(&mut self, subject: &str, all: bool) {
        let purge = Purge {
            filter: (!all).then(|| subject.to_string()),
            keep: Some(1),
            ..Purge::default()
        };
        if let Err(e) = self.store.purge(&purge) {
            tracing::warn!(stream = %self.config.name, "rollup: {e}");
        }
    }

    /// `Nats-Rollup`: `Some(false)` rolls up the subject, `Some(true)` the whole stream.
    pub(super) fn check_rollup(&self, h: &[u8]) -> Result<Option<bool>, ApiError> {
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
    pub(super) fn skip(&mut self, subject: &str, now: i64) -> Result<u64, StoreError> {
        let seq = self.store.append(subject, None, b"", now)?;
        self.store.delete(seq)?;
        Ok(seq)
    }
}

/// A store refusal as the PubAck error nats-server sends.
pub(super) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::LimitExceeded(crate::store::Limit::MaxMsgSize) => ApiError::message_too_big(),
        other => ApiError::store_failed(other),
    }
}

#[cfg(test)]
#[path = "ingest_tests.rs"]
mod full_disk_tests;
