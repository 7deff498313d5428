//! A consumer: a view of a stream that delivers its messages, push (to a deliver subject,
//! optionally to a queue group) or pull (to waiting requests), and tracks their acks.
//!
//! - `config.rs`: the configuration, its defaults and checks.
//! - `state.rs`: delivered, pending and acknowledged sequences, without I/O.
//! - `deliver.rs`: the consumer's task: redelivery timers, pull requests, push delivery,
//!   heartbeats, flow control, inactivity.
//! - `pull.rs`, `ack.rs`: the wire forms of pull requests and acks.
//! - `held.rs`: which connection holds each delivery, for the redeliver-on-disconnect
//!   extension.

mod ack;
pub(crate) mod config;
mod deliver;
mod held;
mod pull;
pub(crate) mod state;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::context::Context;
use super::stream::Stream;
use super::subjects::matches;
use super::time::now_nanos;
use crate::client::{InternalSink, Subscription};
use crate::proto::server_op::Delivery;
pub(crate) use config::{AckPolicy, ConsumerConfig, DeliverPolicy};
use pull::PullRequest;
use state::AckState;

/// A consumer, shared by the API, its task and the ack path.
pub(crate) struct Consumer {
    pub name: String,
    pub stream_name: String,
    stream: Weak<Stream>,
    ctx: Arc<Context>,
    /// When it was created, Unix nanoseconds.
    pub created: i64,
    inner: Mutex<ConsumerInner>,
    /// Its subject filters, readable without the lock (the publish path checks them).
    filters: RwLock<Vec<String>>,
    /// Messages matching the filters at or after the delivery cursor.
    num_pending: AtomicI64,
    /// The last stream sequence `num_pending` accounts for.
    counted_through: AtomicU64,
    /// Set when the stream lost messages: `num_pending` and the pending set are rebuilt.
    recount: AtomicBool,
    wake: Notify,
    closed: CancellationToken,
    subs: Mutex<Vec<Arc<Subscription>>>,
    /// Where a durable consumer of a file stream keeps its state.
    pub dir: Option<PathBuf>,
    /// The generation of the state last written: writes happen off the consumer's task, and
    /// an older snapshot never replaces a newer one.
    written: Mutex<u64>,
    /// Generations handed out to snapshots.
    generation: AtomicU64,
    /// A periodic write is under way on a blocking thread.
    writing: AtomicBool,
}

/// What the consumer's lock guards.
pub(crate) struct ConsumerInner {
    pub config: ConsumerConfig,
    pub acks: AckState,
    pub waiting: VecDeque<PullRequest>,
    /// Last delivery or heartbeat to the deliver subject, Unix nanoseconds.
    last_sent: i64,
    /// Since when nobody has been interested (inactive threshold).
    inactive_since: Option<i64>,
    /// An unanswered flow control request's reply subject, and bytes sent since the last.
    flow_control: Option<String>,
    fc_bytes: u64,
    /// Which connection holds each delivery (redeliver on disconnect).
    holders: held::Holders,
    /// When a message last went out and an ack last moved the state, Unix nanoseconds (0:
    /// never): `last_active` of `delivered` and `ack_floor`. Not persisted, as on nats-server.
    last_delivered: i64,
    last_acked: i64,
    /// The state changed since it was last written.
    dirty: bool,
    last_persist: i64,
}

impl Consumer {
    /// A consumer of `stream` starting from `acks`; `start` runs it.
    pub fn new(
        stream: &Arc<Stream>,
        name: String,
        config: ConsumerConfig,
        acks: AckState,
        created: i64,
        dir: Option<PathBuf>,
    ) -> Arc<Consumer> {
        let filters = config.filters();
        Arc::new(Consumer {
            name,
            stream_name: stream.name.clone(),
            stream: Arc::downgrade(stream),
            ctx: stream.ctx.clone(),
            created,
            inner: Mutex::new(ConsumerInner {
                config,
                acks,
                waiting: VecDeque::new(),
                last_sent: now_nanos(),
                inactive_since: None,
                flow_control: None,
                fc_bytes: 0,
                holders: held::Holders::default(),
                last_delivered: 0,
                last_acked: 0,
                dirty: false,
                last_persist: 0,
            }),
            filters: RwLock::new(filters),
            num_pending: AtomicI64::new(0),
            counted_through: AtomicU64::new(0),
            recount: AtomicBool::new(true),
            wake: Notify::new(),
            closed: CancellationToken::new(),
            subs: Mutex::new(Vec::new()),
            dir,
            written: Mutex::new(0),
            generation: AtomicU64::new(0),
            writing: AtomicBool::new(false),
        })
    }

    /// Counts what is pending in `store` for this consumer; call with the stream locked, as
    /// the consumer joins the stream.
    pub fn count_pending(&self, store: &crate::store::Store) {
        let acks = self.inner.lock().acks.clone();
        self.set_pending_from(store, &acks);
    }

    fn set_pending_from(&self, store: &crate::store::Store, acks: &AckState) {
        let filters = self.filters.read().clone();
        let (from, listed) = match acks.start_list.len() {
            0 => (acks.next_sseq, 0),
            n => (acks.start_list_end + 1, n as u64),
        };
        let n = listed
            + if filters.is_empty() {
                store.num_pending(from, None)
            } else {
                filters
                    .iter()
                    .map(|f| store.num_pending(from, Some(f)))
                    .sum()
            };
        self.num_pending.store(n as i64, Ordering::Relaxed);
        self.counted_through
            .store(store.state().last_seq, Ordering::Relaxed);
        self.recount.store(false, Ordering::Relaxed);
    }

    /// Subscribes to its acks and starts its task.
    pub fn start(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let (stream, name) = (&self.stream_name, &self.name);
        // MSG.NEXT is answered for push consumers too, with nats-server's 409.
        let subjects = [
            (ack::subscription(stream, name), Route::Ack),
            (format!("$JS.FC.{stream}.{name}.*"), Route::FlowControl),
            (
                format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}"),
                Route::Next,
            ),
        ];
        for (subject, route) in subjects {
            let sink: Arc<dyn InternalSink> = Arc::new(ConsumerSink {
                consumer: weak.clone(),
                route,
            });
            if let Some(sub) = self.ctx.subscribe(&subject, None, sink) {
                self.subs.lock().push(sub);
            }
        }
        tokio::spawn(deliver::run(self.clone()));
    }

    /// Asks the task to look for work.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A message was stored at `seq` on `subject`.
    pub fn on_stored(&self, seq: u64, subject: &str) {
        if seq > self.counted_through.load(Ordering::Relaxed) && self.filter_matches(subject) {
            self.num_pending.fetch_add(1, Ordering::Relaxed);
        }
        self.wake.notify_one();
    }

    /// The stream lost messages (purge, delete, expiry): recount before the next delivery.
    pub fn on_removed(&self) {
        self.recount.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Stops the consumer: its task ends, its state is written one last time.
    pub fn close(&self) {
        for sub in self.subs.lock().drain(..) {
            self.ctx.unsubscribe(&sub);
        }
        self.ctx.stop_awaiting_interest(self);
        self.closed.cancel();
        self.persist_now();
    }

    /// Stops the consumer for good: waiting pull requests hear `409 Consumer Deleted`.
    pub fn delete(&self) {
        for sub in self.subs.lock().drain(..) {
            self.ctx.unsubscribe(&sub);
        }
        self.ctx.stop_awaiting_interest(self);
        self.closed.cancel();
        let waiting: Vec<PullRequest> = self.inner.lock().waiting.drain(..).collect();
        for r in waiting {
            self.send_status(&r.reply, &pull::status(409, "Consumer Deleted"));
        }
        if let Some(dir) = &self.dir {
            // No write under way or to come may bring the directory back.
            let mut written = self.written.lock();
            *written = u64::MAX;
            if let Err(e) = std::fs::remove_dir_all(dir) {
                tracing::warn!(consumer = %self.name, "removing {}: {e}", dir.display());
            }
        }
    }

    /// Whether a message on `subject` passes the filters.
    pub fn filter_matches(&self, subject: &str) -> bool {
        let filters = self.filters.read();
        filters.is_empty() || filters.iter().any(|f| matches(subject, f))
    }

    /// Whether the consumer still has to deliver or see acknowledged the message `seq` on
    /// `subject` (interest retention keeps it while some consumer does).
    pub fn still_needs(&self, seq: u64, subject: &str) -> bool {
        if !self.filter_matches(subject) {
            return false;
        }
        let inner = self.inner.lock();
        seq >= inner.acks.next_sseq || inner.acks.pending.contains_key(&seq)
    }

    /// The configuration.
    pub fn config(&self) -> ConsumerConfig {
        self.inner.lock().config.clone()
    }

    /// Replaces the configuration (consumer update) with one already checked.
    pub fn reconfigure(&self, config: ConsumerConfig) {
        *self.filters.write() = config.filters();
        self.inner.lock().config = config;
        self.on_removed();
    }

    /// What `CONSUMER.INFO` reports, gathered under the lock.
    pub fn snapshot(&self) -> Snapshot {
        let mut inner = self.inner.lock();
        // Only requests someone still waits on count, as on nats-server.
        deliver::drop_abandoned_requests(self, &mut inner);
        Snapshot {
            config: inner.config.clone(),
            delivered: inner.acks.delivered,
            ack_floor: inner.acks.ack_floor,
            last_delivered: inner.last_delivered,
            last_acked: inner.last_acked,
            num_ack_pending: inner.acks.pending.len() as u64,
            num_redelivered: inner.acks.num_redelivered() as u64,
            num_waiting: inner.waiting.len() as u64,
            num_pending: self.num_pending.load(Ordering::Relaxed).max(0) as u64,
            push_bound: inner.config.is_push()
                && self.ctx.has_interest(
                    &inner.config.deliver_subject,
                    Some(&inner.config.deliver_group)
                        .filter(|g| !g.is_empty())
                        .map(|g| g.as_str()),
                ),
        }
    }

    /// A pull request arrived.
    pub fn pull_request(self: &Arc<Self>, reply: &str, body: &[u8]) {
        deliver::pull_request(self, reply, body);
    }

    /// Connection `cid` closed (redeliver on disconnect): its waiting pull requests go, and
    /// what it held is due for redelivery now.
    pub fn connection_closed(&self, cid: u64) {
        held::connection_closed(self, cid);
    }

    fn send_status(&self, to: &str, headers: &[u8]) {
        self.ctx.send(&super::context::Outgoing {
            route: to,
            subject: to,
            reply: None,
            headers: Some(headers),
            payload: b"",
        });
    }

    /// Writes the state of a durable consumer (all of it, atomically) now, on this thread,
    /// after any write under way: for close and shutdown.
    fn persist_now(&self) {
        if let Some((state, generation)) = self.snapshot_for_write(true) {
            self.write_state(&state, generation);
        }
    }

    /// Writes the state if it changed and [`deliver::PERSIST_EVERY`] has passed, on a blocking
    /// thread so that the fsyncs do not stall deliveries; at most one such write at a time.
    fn persist_soon(self: &Arc<Self>) {
        if self.dir.is_none() || self.writing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some((state, generation)) = self.snapshot_for_write(false) else {
            self.writing.store(false, Ordering::Release);
            return;
        };
        let consumer = self.clone();
        tokio::task::spawn_blocking(move || {
            consumer.write_state(&state, generation);
            consumer.writing.store(false, Ordering::Release);
        });
    }

    /// The state to write and its generation, when there is something to write.
    fn snapshot_for_write(&self, force: bool) -> Option<(AckState, u64)> {
        self.dir.as_ref()?;
        let mut inner = self.inner.lock();
        let now = now_nanos();
        if !inner.dirty || (!force && now - inner.last_persist < deliver::PERSIST_EVERY) {
            return None;
        }
        inner.dirty = false;
        inner.last_persist = now;
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        Some((inner.acks.clone(), generation))
    }

    /// Writes a snapshot unless a newer one was written already.
    fn write_state(&self, state: &AckState, generation: u64) {
        let Some(dir) = &self.dir else {
            return;
        };
        let mut written = self.written.lock();
        if *written > generation {
            return;
        }
        match super::persist::write_consumer_state(dir, state) {
            Ok(()) => *written = generation,
            Err(e) => {
                tracing::error!(consumer = %self.name, "writing consumer state: {e:#}");
                self.inner.lock().dirty = true;
            }
        }
    }
}

/// A consumer's counters at one moment.
pub(crate) struct Snapshot {
    pub config: ConsumerConfig,
    pub delivered: state::SeqPair,
    pub ack_floor: state::SeqPair,
    /// Unix nanoseconds of the last delivery and the last ack; 0 when there was none.
    pub last_delivered: i64,
    pub last_acked: i64,
    pub num_ack_pending: u64,
    pub num_redelivered: u64,
    pub num_waiting: u64,
    pub num_pending: u64,
    pub push_bound: bool,
}

/// What a consumer's subscription receives.
#[derive(Clone, Copy)]
enum Route {
    Ack,
    FlowControl,
    Next,
}

/// Receives a consumer's acks, flow control replies and pull requests.
struct ConsumerSink {
    consumer: Weak<Consumer>,
    route: Route,
}

impl InternalSink for ConsumerSink {
    fn receive(&self, d: &Delivery<'_>) {
        let Some(consumer) = self.consumer.upgrade() else {
            return;
        };
        match self.route {
            Route::Ack => deliver::on_ack(&consumer, d),
            Route::FlowControl => deliver::on_flow_control(&consumer),
            Route::Next => {
                if let Some(reply) = d.reply.and_then(|r| std::str::from_utf8(r).ok()) {
                    consumer.pull_request(reply, d.payload);
                }
            }
        }
    }
}
