//! JetStream: streams and consumers on the message store (`crate::store`), served over the
//! `$JS.API.*` subjects so that NATS clients use them unchanged.
//!
//! A tour of the layout:
//! - [`JetStreams`] (here): which accounts have JetStream, and the refusal the others get.
//! - [`JetStream`] (here): the streams of one account, start-up recovery, creating and deleting
//!   streams, attaching consumers, shutdown.
//! - `api/`: the request/reply endpoints, one file per family, and the info JSON.
//! - `stream/`: one stream: configuration, the publish path and PubAck, group commit,
//!   expiry, the duplicate window.
//! - `consumer/`: one consumer: configuration, ack state, push and pull delivery.
//! - `context.rs`: what streams and consumers need of the server (publishing, subscribing).
//! - `usage.rs`: what JetStream holds and has served, for `/jsz` and `/metrics`.
//! - `resources.rs`: the server's `max_storage` and `max_memory`, sized from the machine or
//!   configured, which stream creation and publishing are held to.
//! - `transform.rs`: subject transforms (stream `subject_transform`, `republish`, mirror and
//!   source `subject_transforms`); `sourcing.rs`: the tasks that follow mirrors' and sources'
//!   origins, and the checks of those configurations against other streams.
//! - `persist.rs`: the metadata and consumer-state files; `errors.rs`: nats-server's API
//!   errors; `headers.rs`, `subjects.rs`, `time.rs`: small wire helpers.

mod account_limits;
pub(crate) mod api;
pub(crate) mod consumer;
mod context;
mod errors;
mod headers;
pub(crate) mod persist;
mod resources;
mod sourcing;
pub(crate) mod stream;
pub(crate) mod subjects;
pub(crate) mod time;
pub(crate) mod transform;
pub(crate) mod usage;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;
use std::sync::Arc;

use anyhow::Context as _;
use parking_lot::{Mutex, RwLock};

use crate::accounts::Account;
use crate::client::{InternalSink, Subscription};
use crate::server::ServerState;
use crate::store::{FileConfig, Purge, Store};
use api::{ApiSink, Request};
use consumer::Consumer;
use context::Context;
pub use context::JetStreamConfig;
use errors::ApiError;
use persist::{ConsumerMeta, StreamMeta};
pub use resources::Resources;
use stream::{Storage, Stream, StreamConfig};

/// JetStream of every account that has it. As nats-server: with no accounts configured, the
/// global account `$G`; with accounts configured, those whose block says `jetstream: enabled`,
/// while every other account's API requests are refused with "JetStream not enabled for
/// account" (503, 10039). In operator mode, the global account and each account whose JWT's
/// limits enable JetStream (the others are refused likewise).
pub(crate) struct JetStreams {
    config: JetStreamConfig,
    by_account: BTreeMap<String, Arc<JetStream>>,
    /// The refusals' subscriptions, each with the context (account) that made it.
    refusals: Mutex<Vec<(Arc<Context>, Arc<Subscription>)>>,
}

impl JetStreams {
    /// Starts JetStream in each account that has it and the refusal in the others. Call from
    /// within the tokio runtime.
    pub fn start(server: &Arc<ServerState>, config: JetStreamConfig) -> anyhow::Result<JetStreams> {
        let opts = &server.opts;
        let global = (crate::accounts::GLOBAL_ACCOUNT, Default::default());
        let enabled: Vec<(&str, crate::options::AccountJetStreamLimits)> = match &server.trust {
            // Operator mode: the global account as before, and each account whose JWT
            // enables JetStream, with the JWT's limits.
            Some(trust) => std::iter::once(global)
                .chain(trust.jetstream_accounts())
                .collect(),
            None if opts.accounts.is_empty() => vec![global],
            None => opts
                .accounts
                .iter()
                .filter(|a| a.jetstream)
                .map(|a| (a.name.as_str(), a.jetstream_limits))
                .collect(),
        };
        if let Some(system) = opts.system_account.as_deref() {
            anyhow::ensure!(
                !enabled.iter().any(|(name, _)| *name == system),
                "Not allowed to enable JetStream on the system account"
            );
        }
        let mut by_account = BTreeMap::new();
        for (name, limits) in enabled {
            let account = server
                .accounts
                .get(name)
                .with_context(|| format!("account {name} is not configured"))?;
            let mut config = config.clone();
            config.resources = config.resources.for_account();
            config.account = limits;
            let js = JetStream::start(server, &account, config)
                .with_context(|| format!("account {name}"))?;
            tracing::debug!(account = name, ?limits, "JetStream enabled");
            by_account.insert(name.to_string(), js);
        }
        let mut refusals = Vec::new();
        let accounts: Vec<&str> = match &server.trust {
            Some(trust) => trust.account_limits().map(|(key, _)| key).collect(),
            None => opts.accounts.iter().map(|a| a.name.as_str()).collect(),
        };
        let others = std::iter::once(crate::accounts::GLOBAL_ACCOUNT)
            .chain(accounts)
            .filter(|name| !by_account.contains_key(*name));
        for name in others {
            let Some(account) = server.accounts.get(name) else {
                continue;
            };
            let ctx = Arc::new(Context::new(server, &account, config.clone()));
            for (subject, endpoint) in api::ENDPOINTS {
                let sink: Arc<dyn InternalSink> = Arc::new(api::NotEnabled {
                    ctx: Arc::downgrade(&ctx),
                    endpoint: *endpoint,
                });
                if let Some(sub) = ctx.subscribe(subject, None, sink) {
                    refusals.push((ctx.clone(), sub));
                }
            }
        }
        Ok(JetStreams {
            config,
            by_account,
            refusals: Mutex::new(refusals),
        })
    }

    /// The settings every account's JetStream shares.
    pub fn config(&self) -> &JetStreamConfig {
        &self.config
    }

    /// The JetStream of `account`, if it has JetStream.
    pub fn get(&self, account: &str) -> Option<&Arc<JetStream>> {
        self.by_account.get(account)
    }

    /// Every account's JetStream, by account name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<JetStream>> {
        self.by_account.values()
    }

    /// A client of `account` subscribed to `subject`: that account's push consumers waiting
    /// for a subscriber on a deliver subject it matches start at once.
    pub fn interest_added(&self, account: &str, subject: &str) {
        if let Some(js) = self.by_account.get(account) {
            js.ctx.interest_added(subject);
        }
        // A push consumer of another account may deliver here through a stream import.
        for js in self.by_account.values() {
            if let Some(links) = js.ctx.account.links.get() {
                for filter in links.routes_to(account) {
                    js.ctx.interest_added(filter);
                }
            }
        }
    }

    /// A connection closed: what it held in any account is due for redelivery.
    pub fn connection_closed(&self, cid: u64) {
        for js in self.iter() {
            js.ctx.connection_closed(cid);
        }
    }

    /// Stops every account's JetStream (see [`JetStream::shutdown`]).
    pub fn shutdown(&self) {
        for (ctx, sub) in self.refusals.lock().drain(..) {
            ctx.unsubscribe(&sub);
        }
        for js in self.iter() {
            js.shutdown();
        }
    }
}

/// JetStream for one account.
pub(crate) struct JetStream {
    pub(crate) ctx: Arc<Context>,
    pub streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    pub api_total: AtomicU64,
    pub api_errors: AtomicU64,
    api_tx: Mutex<Option<mpsc::Sender<Request>>>,
    api_subs: Mutex<Vec<Arc<Subscription>>>,
    direct_subs: Mutex<HashMap<String, Vec<Arc<Subscription>>>>,
}

impl JetStream {
    /// Recovers the streams under the store directory, subscribes to the API and starts the
    /// API thread. Call from within the tokio runtime.
    pub fn start(
        server: &Arc<ServerState>,
        account: &Arc<Account>,
        config: JetStreamConfig,
    ) -> anyhow::Result<Arc<JetStream>> {
        let dir = persist::streams_dir(&config.store_dir, &account.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let ctx = Arc::new(Context::new(server, account, config));
        let (tx, rx) = mpsc::channel::<Request>();
        let js = Arc::new(JetStream {
            ctx,
            streams: RwLock::new(BTreeMap::new()),
            api_total: AtomicU64::new(0),
            api_errors: AtomicU64::new(0),
            api_tx: Mutex::new(Some(tx)),
            api_subs: Mutex::new(Vec::new()),
            direct_subs: Mutex::new(HashMap::new()),
        });
        js.recover(&dir)?;
        for (subject, endpoint) in api::ENDPOINTS {
            let sink: Arc<dyn InternalSink> = Arc::new(ApiSink {
                js: Arc::downgrade(&js),
                endpoint: *endpoint,
            });
            if let Some(sub) = js.ctx.subscribe(subject, None, sink) {
                js.api_subs.lock().push(sub);
            }
        }
        let runtime = tokio::runtime::Handle::current();
        let weak = Arc::downgrade(&js);
        std::thread::Builder::new()
            .name(format!("jetstream-api-{}", account.name))
            .spawn(move || {
                let _runtime = runtime.enter();
                while let Ok(request) = rx.recv() {
                    let Some(js) = weak.upgrade() else { break };
                    api::handle(&js, &request);
                }
            })
            .context("starting the JetStream API thread")?;
        Ok(js)
    }

    /// Queues a request for the API thread.
    pub fn queue_request(&self, request: Request) {
        if let Some(tx) = self.api_tx.lock().as_ref() {
            let _ = tx.send(request);
        }
    }

    /// Stops the API, then closes every stream: what waits for an fsync gets it, consumer
    /// state is written.
    pub fn shutdown(&self) {
        self.api_tx.lock().take();
        for sub in self.api_subs.lock().drain(..) {
            self.ctx.unsubscribe(&sub);
        }
        self.ctx.shutdown.cancel();
        for stream in self.streams.read().values() {
            stream.close();
        }
    }

    /// The stream called `name`.
    pub fn lookup(&self, name: &str) -> Result<Arc<Stream>, ApiError> {
        self.streams
            .read()
            .get(name)
            .cloned()
            .ok_or_else(ApiError::stream_not_found)
    }

    /// Refuses subjects that another stream (than `except`) captures.
    pub fn check_overlap(
        &self,
        config: &StreamConfig,
        except: Option<&str>,
    ) -> Result<(), ApiError> {
        for other in self.streams.read().values() {
            if Some(other.name.as_str()) == except || other.name == config.name {
                continue;
            }
            let theirs = other.config().subjects;
            if config
                .subjects
                .iter()
                .any(|s| theirs.iter().any(|t| subjects::collide(s, t)))
            {
                return Err(ApiError::subject_overlap());
            }
        }
        Ok(())
    }

    /// Creates a stream, or returns the existing one with the same configuration.
    pub fn create_stream(self: &Arc<Self>, config: StreamConfig) -> Result<Arc<Stream>, ApiError> {
        if let Some(existing) = self.streams.read().get(&config.name) {
            return match existing.config() == config {
                true => Ok(existing.clone()),
                false => Err(ApiError::stream_name_exist()),
            };
        }
        let reserved = self.reserved_by_others(&config);
        let streams = self.streams.read().len();
        account_limits::check_new_stream(&self.ctx.config.account, &config, streams, reserved)?;
        config.check_transforms().map_err(ApiError::stream_create)?;
        self.check_overlap(&config, None)?;
        let resources = &self.ctx.config.resources;
        resources.check_reservation(config.storage, config.max_bytes, reserved)?;
        let created = time::now_nanos();
        let (store, dir) = self
            .open_store(&config, created, true)
            .map_err(|e| ApiError::stream_create(format!("{e:#}")))?;
        let stream = Stream::new(self.ctx.clone(), config, store, created, dir);
        self.streams
            .write()
            .insert(stream.name.clone(), stream.clone());
        stream.start();
        self.direct_get_subscriptions(&stream);
        self.follow_origins(&stream);
        Ok(stream)
    }

    /// Opens a stream's store; `fresh` for a new stream (its directory is written anew).
    fn open_store(
        &self,
        config: &StreamConfig,
        created: i64,
        fresh: bool,
    ) -> anyhow::Result<(Store, Option<std::path::PathBuf>)> {
        let limits = config.limits();
        if config.storage == Storage::Memory {
            let mut store = Store::memory(limits);
            store.track_usage(self.ctx.config.resources.gauge(Storage::Memory));
            apply_first_seq(&mut store, config)?;
            return Ok((store, None));
        }
        let dir = persist::streams_dir(&self.ctx.config.store_dir, &self.ctx.account.name)
            .join(&config.name);
        if fresh {
            persist::remove_dir(&dir)?;
            persist::write_stream_meta(
                &dir,
                &StreamMeta {
                    config: config.clone(),
                    created,
                },
            )?;
        }
        let file = FileConfig {
            sync: self.ctx.config.sync,
            ..FileConfig::default()
        };
        let mut store = Store::open_file(&persist::msgs_dir(&dir), file, limits)
            .with_context(|| format!("opening the store of stream {}", config.name))?;
        store.track_usage(self.ctx.config.resources.gauge(Storage::File));
        if fresh {
            apply_first_seq(&mut store, config)?;
        }
        Ok((store, Some(dir)))
    }

    /// Writes a file stream's meta file again (after an update).
    pub fn save_stream_meta(&self, stream: &Stream) -> anyhow::Result<()> {
        let Some(dir) = &stream.dir else {
            return Ok(());
        };
        let meta = StreamMeta {
            config: stream.config(),
            created: stream.created,
        };
        persist::write_stream_meta(dir, &meta)
    }

    /// Deletes a stream, its consumers and its files.
    pub fn delete_stream(&self, name: &str) -> Result<(), ApiError> {
        let stream = self
            .streams
            .write()
            .remove(name)
            .ok_or_else(ApiError::stream_not_found)?;
        for sub in self.direct_subs.lock().remove(name).into_iter().flatten() {
            self.ctx.unsubscribe(&sub);
        }
        for consumer in stream.consumers.write().values() {
            consumer.delete();
        }
        stream.close();
        if let Some(dir) = &stream.dir {
            persist::remove_dir(dir).map_err(|e| ApiError::stream_general(format!("{e:#}")))?;
        }
        Ok(())
    }

    /// Subscribes `DIRECT.GET` for a stream with `allow_direct` (and drops it without).
    pub fn direct_get_subscriptions(&self, stream: &Arc<Stream>) {
        let mut all = self.direct_subs.lock();
        for sub in all.remove(&stream.name).into_iter().flatten() {
            self.ctx.unsubscribe(&sub);
        }
        if !stream.config().allow_direct {
            return;
        }
        let mut subs = Vec::new();
        for subject in [
            format!("$JS.API.DIRECT.GET.{}", stream.name),
            format!("$JS.API.DIRECT.GET.{}.>", stream.name),
        ] {
            let sink: Arc<dyn InternalSink> =
                Arc::new(api::msgs::DirectGet(Arc::downgrade(stream)));
            if let Some(sub) = self.ctx.subscribe(&subject, Some("_sys_"), sink) {
                subs.push(sub);
            }
        }
        all.insert(stream.name.clone(), subs);
    }

    /// Joins a consumer to its stream and starts it.
    pub fn attach_consumer(&self, stream: &Arc<Stream>, consumer: Arc<Consumer>) {
        self.join_consumer(stream, &consumer);
        consumer.start();
    }

    /// Counts what is pending for `consumer` and lists it in `stream`, without starting it.
    pub fn join_consumer(&self, stream: &Arc<Stream>, consumer: &Arc<Consumer>) {
        let inner = stream.inner.lock();
        consumer.count_pending(&inner.store);
        stream
            .consumers
            .write()
            .insert(consumer.name.clone(), consumer.clone());
    }

    /// Opens every stream (and its durable consumers) found under `dir`.
    fn recover(self: &Arc<Self>, dir: &Path) -> anyhow::Result<()> {
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.join("meta.json").exists() {
                continue;
            }
            if let Err(e) = self.recover_stream(&path) {
                tracing::error!(
                    "JetStream: not restoring the stream in {}: {e:#}",
                    path.display()
                );
            }
        }
        Ok(())
    }

    fn recover_stream(self: &Arc<Self>, path: &Path) -> anyhow::Result<()> {
        let meta: StreamMeta = persist::read_json(&path.join("meta.json"))?;
        let (store, dir) = self.open_store(&meta.config, meta.created, false)?;
        let stream = Stream::new(self.ctx.clone(), meta.config, store, meta.created, dir);
        self.streams
            .write()
            .insert(stream.name.clone(), stream.clone());
        stream.start();
        self.direct_get_subscriptions(&stream);
        self.follow_origins(&stream);
        let obs = path.join("obs");
        for entry in std::fs::read_dir(&obs).into_iter().flatten().flatten() {
            let dir = entry.path();
            if let Err(e) = self.recover_consumer(&stream, &dir) {
                tracing::error!(
                    "JetStream: not restoring the consumer in {}: {e:#}",
                    dir.display()
                );
            }
        }
        tracing::info!(stream = %stream.name, messages = stream.inner.lock().store.state().msgs, "restored stream");
        Ok(())
    }

    fn recover_consumer(&self, stream: &Arc<Stream>, dir: &Path) -> anyhow::Result<()> {
        let meta: ConsumerMeta = persist::read_json(&dir.join("meta.json"))?;
        let state = match persist::read_consumer_state(dir)? {
            Some(state) => state,
            None => api::consumers::start_state(stream, &meta.config),
        };
        let consumer = Consumer::new(
            stream,
            meta.name,
            meta.config,
            state,
            meta.created,
            Some(dir.to_path_buf()),
        );
        self.attach_consumer(stream, consumer);
        Ok(())
    }
}

/// `first_seq`: a new stream starts numbering there.
fn apply_first_seq(store: &mut Store, config: &StreamConfig) -> anyhow::Result<()> {
    if config.first_seq > 1 {
        let purge = Purge {
            up_to_seq: Some(config.first_seq),
            ..Purge::default()
        };
        store.purge(&purge).context("setting the first sequence")?;
    }
    Ok(())
}
