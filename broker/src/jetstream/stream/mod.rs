//! One stream: its configuration, its message store, the duplicate window, and the path of a
//! published message from the stream's subjects to the store and back as a PubAck.
//!
//! - `config.rs`: the configuration, its defaults and checks.
//! - `ingest.rs`: a published message's checks (expected headers, dedup, rollup) and its PubAck.
//! - `commit.rs`: group commit, one fsync for every PubAck waiting, and max_age expiry.
//! - `dedup.rs`: the `Nats-Msg-Id` window.
//! - `extras.rs`: `subject_transform`, `republish`, `mirror` and `sources` configuration and
//!   checks; `sourced.rs`: how a mirror's or source's messages come in, and their info.

mod commit;
pub(crate) mod config;
mod dedup;
mod extras;
mod ingest;
pub(crate) mod sourced;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::consumer::Consumer;
use super::context::Context;
use crate::client::Subscription;
use crate::store::{Store, StoreError, StoredMsg};
pub(crate) use config::{Retention, Storage, StreamConfig, StreamSource};
use dedup::Dedup;

/// A stream: shared by the API, the publishers' tasks and its consumers.
pub(crate) struct Stream {
    pub name: String,
    pub(super) ctx: Arc<Context>,
    /// When it was created, Unix nanoseconds.
    pub created: i64,
    pub inner: Mutex<StreamInner>,
    pub consumers: RwLock<BTreeMap<String, Arc<Consumer>>>,
    /// Its subscriptions to its subjects.
    subs: Mutex<Vec<Arc<Subscription>>>,
    /// Wakes the group-commit task.
    commit_wake: Notify,
    /// Wakes the maintenance task after a configuration change.
    maintenance_wake: Notify,
    /// The directory of a file stream (its metadata, messages and consumers).
    pub dir: Option<PathBuf>,
    pub closed: CancellationToken,
    /// How many mirrors and sources follow this stream; they wait on `follow_wake`, which a
    /// stored message wakes only when there are some.
    pub followers: AtomicUsize,
    pub follow_wake: Notify,
    /// This stream's own mirror or sources.
    pub origins: Mutex<Vec<Arc<sourced::Origin>>>,
}

/// What the stream's lock guards.
pub(crate) struct StreamInner {
    pub config: StreamConfig,
    pub store: Store,
    dedup: Dedup,
    /// The `Nats-Msg-Id` of the last stored message, for `Nats-Expected-Last-Msg-Id`.
    last_msg_id: String,
    /// PubAcks waiting for the next fsync.
    awaiting_sync: Vec<commit::AwaitingAck>,
    /// The configuration's subject transform and republish, built.
    compiled: extras::Compiled,
    /// The republished copy of the message just stored, for the publisher's task to send.
    republish_out: Option<extras::Republished>,
}

impl Stream {
    /// A stream over an opened store; `start` runs its tasks and subscriptions.
    pub fn new(
        ctx: Arc<Context>,
        config: StreamConfig,
        store: Store,
        created: i64,
        dir: Option<PathBuf>,
    ) -> Arc<Stream> {
        let dedup = Dedup::new(config.duplicate_window);
        let compiled = extras::Compiled::of(&config);
        let stream = Arc::new(Stream {
            name: config.name.clone(),
            ctx,
            created,
            inner: Mutex::new(StreamInner {
                config,
                store,
                dedup,
                last_msg_id: String::new(),
                awaiting_sync: Vec::new(),
                compiled,
                republish_out: None,
            }),
            consumers: RwLock::new(BTreeMap::new()),
            subs: Mutex::new(Vec::new()),
            commit_wake: Notify::new(),
            maintenance_wake: Notify::new(),
            dir,
            closed: CancellationToken::new(),
            followers: AtomicUsize::new(0),
            follow_wake: Notify::new(),
            origins: Mutex::new(Vec::new()),
        });
        stream.rebuild_dedup();
        stream
    }

    /// Subscribes to the stream's subjects and starts its background tasks.
    pub fn start(self: &Arc<Self>) {
        self.resubscribe();
        tokio::spawn(commit::run(self.clone()));
        tokio::spawn(commit::maintain(self.clone()));
    }

    /// (Re)subscribes to the configured subjects, after creation or an update.
    pub fn resubscribe(self: &Arc<Self>) {
        let subjects = self.inner.lock().config.subjects.clone();
        let mut subs = self.subs.lock();
        for sub in subs.drain(..) {
            self.ctx.unsubscribe(&sub);
        }
        for subject in subjects {
            let sink: Arc<dyn crate::client::InternalSink> = self.clone();
            if let Some(sub) = self.ctx.subscribe(&subject, None, sink) {
                subs.push(sub);
            }
        }
        drop(subs);
        self.maintenance_wake.notify_one();
    }

    /// Stops taking messages and stops the tasks; the caller deletes or keeps the files.
    pub fn close(&self) {
        for sub in self.subs.lock().drain(..) {
            self.ctx.unsubscribe(&sub);
        }
        for consumer in self.consumers.read().values() {
            consumer.close();
        }
        self.closed.cancel();
        let mut inner = self.inner.lock();
        let synced = inner.store.sync();
        if let Err(e) = &synced {
            tracing::error!(stream = %self.name, "syncing on close: {e}");
            inner.forget_rewound();
        }
        let acks = std::mem::take(&mut inner.awaiting_sync);
        drop(inner);
        commit::answer(self, acks, synced);
    }

    /// The configuration.
    pub fn config(&self) -> StreamConfig {
        self.inner.lock().config.clone()
    }

    /// Reads one message.
    pub fn get(&self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        self.inner.lock().store.get(seq)
    }

    /// Tells the consumers about a new message.
    pub fn notify_stored(&self, seq: u64, subject: &str) {
        for consumer in self.consumers.read().values() {
            consumer.on_stored(seq, subject);
        }
        if self.followers.load(Ordering::Relaxed) > 0 {
            self.follow_wake.notify_waiters();
        }
    }

    /// Tells the consumers that messages went (purge, delete, expiry).
    pub fn notify_removed(&self) {
        for consumer in self.consumers.read().values() {
            consumer.on_removed();
        }
    }

    /// Removes a message that every interested consumer has acknowledged (interest and work
    /// queue retention). The stream's lock is not held while the consumers are asked.
    pub fn remove_acked(&self, seq: u64) {
        let subject = {
            let inner = self.inner.lock();
            if inner.config.retention == Retention::Limits {
                return;
            }
            match inner.store.get(seq) {
                Ok(Some(msg)) => msg.subject,
                _ => return,
            }
        };
        let interested = self
            .consumers
            .read()
            .values()
            .any(|c| c.still_needs(seq, &subject));
        if interested {
            return;
        }
        if let Err(e) = self.inner.lock().store.delete(seq) {
            tracing::warn!(stream = %self.name, seq, "removing an acknowledged message: {e}");
        }
    }

    /// Interest retention after a consumer left: removes every message no consumer needs.
    pub fn remove_unwanted(&self) {
        let (first, last) = {
            let st = self.inner.lock().store.state();
            (st.first_seq, st.last_seq)
        };
        for seq in first..=last {
            self.remove_acked(seq);
        }
        self.notify_removed();
    }

    /// Rebuilds the duplicate window from the stored messages it covers.
    fn rebuild_dedup(&self) {
        let mut inner = self.inner.lock();
        let window = inner.config.duplicate_window;
        let state = inner.store.state();
        let oldest = super::time::now_nanos().saturating_sub(window);
        let mut found = Vec::new();
        let mut seq = state.last_seq;
        while seq >= state.first_seq && seq > 0 {
            match inner.store.get(seq) {
                Ok(Some(msg)) if msg.timestamp < oldest => break,
                Ok(Some(msg)) => {
                    let id = msg.headers.as_deref().and_then(|h| {
                        super::headers::get(h, super::headers::MSG_ID).map(str::to_string)
                    });
                    if let Some(id) = id {
                        found.push((id, msg.seq, msg.timestamp));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(stream = %self.name, seq, "reading for the duplicate window: {e}");
                    break;
                }
            }
            seq -= 1;
        }
        if let Some((id, _, _)) = found.first() {
            inner.last_msg_id = id.clone();
        }
        for (id, seq, ts) in found.into_iter().rev() {
            inner.dedup.insert(&id, seq, ts);
        }
    }
}

impl StreamInner {
    /// Applies a changed configuration (stream update) to the store and the window.
    pub fn reconfigure(&mut self, config: StreamConfig) -> Result<(), StoreError> {
        self.store.set_limits(config.limits())?;
        self.dedup.set_window(config.duplicate_window);
        self.compiled = extras::Compiled::of(&config);
        self.config = config;
        Ok(())
    }
}
