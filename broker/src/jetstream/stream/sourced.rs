//! A stream's mirror or sources, seen from the stream that takes their messages: where each
//! origin is read up to, how its messages come in (a mirror keeps the origin's sequences and
//! timestamps; a source stores copies marked with `Nats-Stream-Source`), and the `mirror` and
//! `sources` of the stream info. The task that follows an origin is in `jetstream/sourcing.rs`.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::extras::StreamSource;
use super::{Storage, Stream};
use crate::jetstream::errors::ApiError;
use crate::jetstream::headers::{self, HeaderBlock};
use crate::jetstream::subjects::matches;
use crate::jetstream::time::{now_nanos, parse};
use crate::jetstream::transform::Transform;
use crate::store::{Purge, StoredMsg};

/// The header a source's copies carry: `<stream> <sequence> <filters> <destinations>`.
pub(crate) const STREAM_SOURCE: &str = "Nats-Stream-Source";

/// Most messages read from an origin under its lock at a time.
pub(crate) const BATCH: usize = 256;

/// One origin of a stream: its mirror, or one of its sources.
pub(crate) struct Origin {
    pub config: StreamSource,
    /// nats-server's index name (see [`StreamSource::index_name`]).
    pub iname: String,
    pub mirror: bool,
    /// `(filter, transform)`: a message matching a filter comes, transformed.
    routes: Vec<(Option<String>, Option<Transform>)>,
    /// The origin's last sequence handled; `None` until it is known.
    position: parking_lot::Mutex<Option<u64>>,
    /// Messages of the origin not yet taken.
    lag: AtomicU64,
    /// When the origin was last heard from (Unix nanoseconds), 0 for never.
    last_active: AtomicI64,
    /// Cancelled when the origin is configured away or the stream closes.
    pub cancel: CancellationToken,
    /// The origin stream does not exist (reported as "stream not found" in the info).
    pub missing: AtomicBool,
    /// The origin sequence of the last message the stream refused (0 for none).
    failing: AtomicU64,
}

impl Origin {
    pub fn new(config: StreamSource, mirror: bool, parent: &CancellationToken) -> Origin {
        let routes = if config.subject_transforms.is_empty() {
            let filter = Some(config.filter_subject.clone()).filter(|f| !f.is_empty());
            vec![(filter, None)]
        } else {
            let all = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
            config
                .subject_transforms
                .iter()
                .map(|t| {
                    let transform = Transform::new(&t.src, &t.dest).ok().flatten();
                    (all(&t.src), transform)
                })
                .collect()
        };
        Origin {
            iname: config.index_name(),
            config,
            mirror,
            routes,
            position: parking_lot::Mutex::new(None),
            lag: AtomicU64::new(0),
            last_active: AtomicI64::new(0),
            cancel: parent.child_token(),
            missing: AtomicBool::new(false),
            failing: AtomicU64::new(0),
        }
    }

    /// The subject a message of the origin is stored under, or `None` when no filter takes it.
    fn route(&self, subject: &str) -> Option<String> {
        self.routes.iter().find_map(|(filter, transform)| {
            if filter.as_deref().is_some_and(|f| !matches(subject, f)) {
                return None;
            }
            Some(match transform.as_ref().and_then(|t| t.apply(subject)) {
                Some(to) => to,
                None => subject.to_string(),
            })
        })
    }

    /// Messages of the origin not yet taken.
    pub fn lag(&self) -> u64 {
        self.lag.load(Ordering::Relaxed)
    }

    /// The stream could not store the origin's message `seq`: said once per message,
    /// however often it is tried.
    fn refused(&self, stream: &str, seq: u64, e: &dyn std::fmt::Display) {
        if self.failing.swap(seq, Ordering::Relaxed) != seq {
            tracing::warn!(%stream, origin = %self.config.name, "storing {seq}: {e}");
        }
    }

    /// The origin was heard from.
    pub fn heard(&self) {
        self.last_active.store(now_nanos(), Ordering::Relaxed);
    }

    /// The `mirror` or `sources` entry of the stream info.
    pub fn info(&self) -> Value {
        let last = self.last_active.load(Ordering::Relaxed);
        let active = if last == 0 { -1 } else { now_nanos() - last };
        let mut info = json!({
            "name": self.config.name,
            "lag": self.lag(),
            "active": active,
        });
        if self.missing.load(Ordering::Relaxed) {
            info["error"] = json!(ApiError::stream_not_found());
        }
        if let Some(external) = &self.config.external {
            info["external"] = json!(external);
        }
        if !self.config.filter_subject.is_empty() && self.config.subject_transforms.is_empty() {
            info["filter_subject"] = json!(self.config.filter_subject);
        }
        if !self.config.subject_transforms.is_empty() {
            info["subject_transforms"] = json!(self.config.subject_transforms);
        }
        info
    }
}

impl Stream {
    /// Where `origin` is to be read from, found once: a mirror continues after its own last
    /// sequence, a source after the newest copy it stored (its `Nats-Stream-Source` header),
    /// otherwise from `opt_start_seq`, the first message at or after `opt_start_time`, or the
    /// beginning.
    fn start_position(&self, origin: &Origin, from: &Stream) -> u64 {
        let own_last = self.inner.lock().store.state().last_seq;
        let found = match origin.mirror {
            true => Some(own_last).filter(|&s| s > 0),
            false => self.last_sourced(origin, own_last),
        };
        if let Some(seq) = found {
            return seq;
        }
        if origin.config.opt_start_seq > 0 {
            return origin.config.opt_start_seq - 1;
        }
        if let Some(time) = origin.config.opt_start_time.as_deref().and_then(parse) {
            let inner = from.inner.lock();
            let st = inner.store.state();
            let mut seq = st.first_seq;
            while let Ok(Some(msg)) = inner.store.get_next(seq, None) {
                if msg.timestamp >= time {
                    return msg.seq - 1;
                }
                seq = msg.seq + 1;
            }
            return st.last_seq;
        }
        0
    }

    /// The origin sequence of the newest copy from `origin` stored here.
    fn last_sourced(&self, origin: &Origin, own_last: u64) -> Option<u64> {
        let inner = self.inner.lock();
        let first = inner.store.state().first_seq;
        (first.max(1)..=own_last).rev().find_map(|seq| {
            let msg = inner.store.get(seq).ok().flatten()?;
            let value = headers::get(msg.headers.as_deref()?, STREAM_SOURCE)?;
            let fields: Vec<&str> = value.split(' ').collect();
            let [name, seq, filters, dests] = fields[..] else {
                return None;
            };
            (format!("{name} {filters} {dests}") == origin.iname)
                .then(|| seq.parse().ok())
                .flatten()
        })
    }

    /// Takes the next messages of `from` for `origin`; true when more are waiting.
    pub fn take_from(&self, from: &Stream, origin: &Origin) -> bool {
        let position = {
            let mut position = origin.position.lock();
            *position.get_or_insert_with(|| self.start_position(origin, from))
        };
        let (batch, last_read, more) = {
            let inner = from.inner.lock();
            let mut batch = Vec::new();
            let mut seq = position + 1;
            while batch.len() < BATCH {
                match inner.store.get_next(seq, None) {
                    Ok(Some(msg)) => {
                        seq = msg.seq + 1;
                        batch.push(msg);
                    }
                    _ => break,
                }
            }
            let last_read = seq - 1;
            let lag: u64 = origin
                .routes
                .iter()
                .map(|(f, _)| inner.store.num_pending(last_read + 1, f.as_deref()))
                .sum();
            origin.lag.store(lag, Ordering::Relaxed);
            let more = batch.len() == BATCH;
            (batch, last_read, more)
        };
        origin.heard();
        for msg in batch {
            if origin.cancel.is_cancelled() {
                return false;
            }
            let seq = msg.seq;
            if let Some(subject) = origin.route(&msg.subject) {
                let stored = match origin.mirror {
                    true => self.store_mirrored(origin, &subject, msg),
                    false => self.store_sourced(origin, &subject, msg),
                };
                if !stored {
                    // Tried again on the next wake-up or heartbeat, as nats-server retries.
                    return false;
                }
            }
            *origin.position.lock() = Some(seq);
        }
        if !more {
            let mut position = origin.position.lock();
            *position = Some(position.unwrap_or(0).max(last_read));
        }
        more
    }

    /// A mirrored message, at its origin's sequence with its origin's timestamp. False when
    /// it could not be stored: it is to be tried again.
    fn store_mirrored(&self, origin: &Origin, subject: &str, msg: StoredMsg) -> bool {
        let mut inner = self.inner.lock();
        let st = inner.store.state();
        if msg.seq <= st.last_seq {
            return true;
        }
        if msg.seq > st.last_seq + 1 {
            let skipped = if st.msgs == 0 {
                let purge = Purge {
                    up_to_seq: Some(msg.seq),
                    ..Purge::default()
                };
                inner.store.purge(&purge).map(|_| ())
            } else {
                (st.last_seq + 1..msg.seq)
                    .try_for_each(|_| inner.skip(subject, msg.timestamp).map(|_| ()))
            };
            if let Err(e) = skipped {
                origin.refused(&self.name, msg.seq, &e);
                return false;
            }
        }
        let appended =
            inner
                .store
                .append(subject, msg.headers.as_deref(), &msg.payload, msg.timestamp);
        // A rollup the mirror allows is applied as on the origin.
        let rollup = msg.headers.as_deref().map(|h| inner.check_rollup(h));
        if let (Ok(_), Some(Ok(Some(all)))) = (&appended, rollup) {
            inner.roll_up(subject, all);
        }
        let flushed = match (&appended, inner.config.storage) {
            (Ok(_), Storage::File) => inner.store.flush(),
            _ => Ok(()),
        };
        if let Err(e) = flushed {
            inner.forget_rewound();
            origin.refused(&self.name, msg.seq, &e);
            return false;
        }
        drop(inner);
        match appended {
            Ok(seq) => {
                self.notify_stored(seq, subject);
                true
            }
            Err(e) => {
                origin.refused(&self.name, msg.seq, &e);
                false
            }
        }
    }

    /// A sourced message: the origin's headers without its own source and expectations, a
    /// `Nats-Stream-Source` of this origin, then the stream's usual path. False when the
    /// stream refused it (a limit under `discard: new`, say): it is to be tried again.
    fn store_sourced(&self, origin: &Origin, subject: &str, msg: StoredMsg) -> bool {
        let mut block = HeaderBlock::new();
        if let Some(h) = msg.headers.as_deref() {
            block = HeaderBlock::extend(&strip_headers(h));
        }
        let mut parts = origin.iname.splitn(3, ' ');
        let name = parts.next().unwrap_or(&origin.config.name);
        let (filters, dests) = (parts.next().unwrap_or(">"), parts.next().unwrap_or(">"));
        let value = format!("{name} {} {filters} {dests}", msg.seq);
        let block = block.add(STREAM_SOURCE, value).finish();
        match self.process(subject, None, Some(&block), &msg.payload) {
            Ok(()) => true,
            Err(e) => {
                origin.refused(&self.name, msg.seq, &e);
                false
            }
        }
    }
}

/// A header block without `Nats-Stream-Source` (a source of a source) and the
/// `Nats-Expected-*` headers (checked where the message was first published).
fn strip_headers(block: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(block);
    let mut lines = text.split("\r\n");
    let mut out = String::new();
    out.push_str(lines.next().unwrap_or("NATS/1.0"));
    out.push_str("\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default();
        if name == STREAM_SOURCE || name.starts_with("Nats-Expected-") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_lose_their_source_and_expectation_headers() {
        let block = b"NATS/1.0\r\nA: 1\r\nNats-Stream-Source: X 1 > >\r\nNats-Expected-Last-Sequence: 4\r\nB: 2\r\n\r\n";
        assert_eq!(strip_headers(block), b"NATS/1.0\r\nA: 1\r\nB: 2\r\n\r\n");
    }

    #[test]
    fn routes_take_the_first_matching_filter_and_transform() {
        let config: StreamSource = serde_json::from_value(json!({"name": "O",
            "subject_transforms": [{"src": "a.*", "dest": "x.$1"}, {"src": "b.>", "dest": ""}]}))
        .unwrap();
        let origin = Origin::new(config, false, &CancellationToken::new());
        assert_eq!(origin.route("a.q").as_deref(), Some("x.q"));
        assert_eq!(origin.route("b.q.r").as_deref(), Some("b.q.r"));
        assert_eq!(origin.route("c"), None);
        assert_eq!(origin.iname, "O a.*\x0cb.> x.$1\x0c>");
    }
}
