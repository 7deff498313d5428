//! The server: binds its listeners, accepts connections up to `max_connections`, and shuts down
//! gracefully, flushing what every connection has queued.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use parking_lot::{Mutex, RwLock};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounts::{Account, Accounts};
use crate::client::{self, Client, InternalSink, Offer, Reached, Subscription};
use crate::options::Options;
use crate::proto::server_op::{self, Delivery, Info};
use crate::trust::Trust;

/// The nats-server version whose client-visible behaviour the broker implements; clients gate
/// features on the `version` in INFO, so this is what INFO reports (see docs/broker.md).
pub const COMPATIBLE_VERSION: &str = "2.10.26";
/// The broker's own version, reported by `--version` and in `/varz`.
pub const BROKER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Counters for the whole server, folded in by each connection after each batch it handles.
#[derive(Default)]
pub(crate) struct Stats {
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub out_msgs: AtomicU64,
    pub out_bytes: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub total_connections: AtomicU64,
}

/// What a configuration reload may change: the options and the INFO new connections get. Read
/// once per connection event (accept, CONNECT, a reload), never per message.
pub(crate) struct Live {
    pub opts: Options,
    pub info: Info,
    /// TLS of new connections, rebuilt by a reload that changes `tls {}` (certificate rotation).
    pub tls: Option<Arc<crate::tls::Tls>>,
}

/// State shared by every connection and the monitor.
pub(crate) struct ServerState {
    /// The options of start-up. Read from here only the settings a reload cannot change (see
    /// `reload::diff`): the others are in [`ServerState::live`].
    pub opts: Options,
    /// The INFO of start-up, for what never changes (server id and name, version, port); the
    /// INFO clients are sent is `live().info`, whose `max_payload` and `auth_required` a reload
    /// may change.
    pub info: Info,
    /// The reloadable settings, swapped whole by a reload.
    live: RwLock<Arc<Live>>,
    /// Serialises reloads.
    pub reloading: Mutex<()>,
    /// When the configuration in force was loaded: start-up, or the last successful reload
    /// (`/varz` `config_load_time`).
    pub config_loaded: Mutex<SystemTime>,
    /// Every account, each with its own subscriptions.
    pub accounts: Accounts,
    /// Operator mode's trusted operators and accounts.
    pub trust: Option<Trust>,
    pub clients: Mutex<HashMap<u64, Arc<Client>>>,
    pub stats: Stats,
    pub started: SystemTime,
    pub shutdown: CancellationToken,
    next_client_id: AtomicU64,
    next_internal_sid: AtomicU64,
    /// JetStream of each account that has it, when enabled (`-js`).
    pub jetstream: std::sync::OnceLock<crate::jetstream::JetStreams>,
    /// NATS Streaming, once it is serving (with `-cid`).
    pub stan: std::sync::OnceLock<Arc<crate::stan::server::Stan>>,
    /// TLS of start-up, which the monitoring port's HTTPS keeps; clients get `live().tls`.
    pub tls: Option<Arc<crate::tls::Tls>>,
}

impl ServerState {
    /// The reloadable settings now in force.
    pub fn live(&self) -> Arc<Live> {
        self.live.read().clone()
    }

    /// Puts `live` in force for every connection event from now on.
    pub fn set_live(&self, live: Live) {
        *self.live.write() = Arc::new(live);
    }

    /// A client without a socket that owns the broker's own subscriptions in `account` (see
    /// [`ServerState::subscribe_internal`]).
    pub fn system_client(&self, account: &Arc<Account>) -> Arc<Client> {
        Arc::new(Client::internal(account.clone()))
    }

    /// Subscribes the broker itself, as `owner` (a [`ServerState::system_client`]), to
    /// `subject` in the owner's account (in queue group `queue`): matching messages go to
    /// `sink`. Remove it with [`ServerState::unsubscribe`].
    pub fn subscribe_internal(
        &self,
        owner: &Arc<Client>,
        subject: &str,
        queue: Option<&str>,
        sink: Arc<dyn InternalSink>,
    ) -> Arc<Subscription> {
        let sid = self.next_internal_sid.fetch_add(1, Ordering::Relaxed);
        let sub = Arc::new(Subscription {
            client: owner.clone(),
            sid: sid.to_string().into_bytes().into(),
            subject: subject.as_bytes().into(),
            queue: queue.map(|q| q.as_bytes().into()),
            max: Default::default(),
            delivered: Default::default(),
            deny: None,
            internal: Some(sink),
        });
        owner.subs.lock().insert(sub.sid.clone(), sub.clone());
        owner
            .account()
            .sublist
            .insert(subject.as_bytes(), queue.map(str::as_bytes), sub.clone());
        sub
    }

    /// Sends a message from the broker itself (a JetStream reply or delivery) to the
    /// subscribers of `route`; they see it as `d.subject`, which may differ (a consumer delivers
    /// to its deliver subject a message that keeps its own subject). Returns whom it reached.
    pub fn publish_internal(&self, account: &Account, route: &[u8], d: &Delivery<'_>) -> Reached {
        let mut reached = self.publish_internal_once(account, route, d);
        if let Some(links) = account.links.get() {
            if links.route_streams(self, d) {
                reached.add(None);
            }
        }
        reached
    }

    /// [`ServerState::publish_internal`] to `account`'s own subscribers only, not on through
    /// its stream exports: what a stream import delivers.
    pub fn publish_internal_once(
        &self,
        account: &Account,
        route: &[u8],
        d: &Delivery<'_>,
    ) -> Reached {
        let matches = account.sublist.matches(route);
        let mut reached = Reached::Nobody;
        for sub in &matches.plain {
            self.deliver_internal(sub, d, &mut reached);
        }
        for group in &matches.groups {
            let start = fastrand::usize(..group.len());
            (0..group.len()).any(|i| {
                let sub = &group[(start + i) % group.len()];
                self.deliver_internal(sub, d, &mut reached)
            });
        }
        reached
    }

    fn deliver_internal(
        &self,
        sub: &Arc<Subscription>,
        d: &Delivery<'_>,
        to: &mut Reached,
    ) -> bool {
        match client::offer(self, sub, d) {
            Offer::Refused => return false,
            Offer::Internal => to.add(None),
            Offer::Queued { .. } => {
                sub.client.flush_soon();
                let bytes = d.headers.map_or(0, <[u8]>::len) + d.payload.len();
                self.stats.out_msgs.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .out_bytes
                    .fetch_add(bytes as u64, Ordering::Relaxed);
                to.add(Some(&sub.client));
            }
        }
        true
    }

    /// Removes `sub` from its account's subject index and from its client.
    pub fn unsubscribe(&self, sub: &Arc<Subscription>) {
        let account = sub.client.account();
        account
            .sublist
            .remove(&sub.subject, sub.queue.as_deref(), sub);
        let mut subs = sub.client.subs.lock();
        if subs.get(&sub.sid).is_some_and(|s| Arc::ptr_eq(s, sub)) {
            subs.remove(&sub.sid);
        }
    }
}

/// A bound, not yet running, broker.
pub struct Server {
    state: Arc<ServerState>,
    listener: TcpListener,
    monitor: Option<TcpListener>,
}

impl Server {
    /// Binds the client port and, if configured, the monitoring port.
    pub async fn bind(opts: Options) -> anyhow::Result<Server> {
        let tls = match &opts.tls {
            Some(settings) => Some(
                crate::tls::Tls::new(settings, opts.allow_non_tls)
                    .map(Arc::new)
                    .map_err(|e| anyhow::anyhow!("TLS: {e}"))?,
            ),
            None => None,
        };
        let monitor_port = match (opts.http_port, opts.https_port) {
            (Some(http), Some(https)) => {
                anyhow::bail!("can't specify both HTTP ({http}) and HTTPs ({https}) ports")
            }
            (_, Some(_)) if tls.is_none() => anyhow::bail!("TLS cert and key required for HTTPS"),
            (http, https) => http.or(https),
        };
        let addr = format!("{}:{}", opts.host, opts.port);
        let listener = TcpListener::bind(&addr)
            .await
            .with_context(|| format!("cannot listen for clients on {addr}"))?;
        let monitor = match monitor_port {
            Some(port) => {
                let host = opts.http_host.clone().unwrap_or_else(|| opts.host.clone());
                let addr = format!("{host}:{port}");
                let l = TcpListener::bind(&addr)
                    .await
                    .with_context(|| format!("cannot listen for monitoring on {addr}"))?;
                Some(l)
            }
            None => None,
        };
        let port = listener
            .local_addr()
            .context("client listener address")?
            .port();
        let id = server_id();
        let info = Info {
            server_id: id.clone(),
            server_name: opts.server_name.clone().unwrap_or_else(|| id.clone()),
            version: COMPATIBLE_VERSION.to_string(),
            proto: 1,
            go: format!("rust broker {BROKER_VERSION}"),
            host: opts.host.clone(),
            port,
            headers: true,
            max_payload: opts.max_payload,
            auth_required: opts.auth_required(),
            tls_required: tls.as_ref().is_some_and(|t| t.required()),
            tls_verify: opts.tls.as_ref().is_some_and(|t| t.verify),
            tls_available: tls.as_ref().is_some_and(|t| !t.required()),
            jetstream: opts.jetstream,
            client_id: 0,
            client_ip: String::new(),
            domain: opts
                .jetstream_domain
                .clone()
                .filter(|_| opts.jetstream)
                .unwrap_or_default(),
            ldm: false,
            nonce: String::new(),
        };
        let trust = opts
            .operator
            .as_ref()
            .map(Trust::new)
            .transpose()
            .context("operator mode")?;
        let accounts = accounts(&opts, trust.as_ref());
        let live = RwLock::new(Arc::new(Live {
            opts: opts.clone(),
            info: info.clone(),
            tls: tls.clone(),
        }));
        let state = Arc::new(ServerState {
            opts,
            info,
            live,
            reloading: Mutex::new(()),
            config_loaded: Mutex::new(SystemTime::now()),
            accounts,
            trust,
            clients: Mutex::new(HashMap::new()),
            stats: Stats::default(),
            started: SystemTime::now(),
            shutdown: CancellationToken::new(),
            next_client_id: AtomicU64::new(1),
            next_internal_sid: AtomicU64::new(1),
            jetstream: std::sync::OnceLock::new(),
            stan: std::sync::OnceLock::new(),
            tls,
        });
        crate::links::start(&state).context("setting up account imports and exports")?;
        if state.opts.jetstream {
            let js = crate::jetstream::JetStreams::start(&state, jetstream_config(&state.opts))
                .context("starting JetStream")?;
            let _ = state.jetstream.set(js);
        }
        if state.opts.cluster_id.is_some() {
            if let Err(e) = crate::stan::server::connect_options(&state.opts) {
                // The flags of a NATS Streaming deployment still start the broker.
                tracing::warn!("NATS Streaming clients are not served: {e:#}");
            }
        }
        Ok(Server {
            state,
            listener,
            monitor,
        })
    }

    /// The address clients connect to.
    pub fn client_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The monitoring address, when monitoring is on.
    pub fn monitor_addr(&self) -> Option<SocketAddr> {
        self.monitor.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The server's unique id.
    pub fn server_id(&self) -> &str {
        &self.state.info.server_id
    }

    /// A handle that reloads the configuration of this server (see `reload`).
    pub fn reloader(&self) -> crate::reload::Reloader {
        crate::reload::Reloader::new(self.state.clone())
    }

    /// Serves until `shutdown` completes, then stops accepting, flushes and closes every
    /// connection (waiting at most `write_deadline` for them). When `lame_duck` completes first,
    /// it stops accepting and runs lame duck mode (see `lame_duck`) before shutting down.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()>,
        lame_duck: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let Server {
            state,
            listener,
            monitor,
        } = self;
        let tracker = TaskTracker::new();
        if let Some(monitor) = monitor {
            let state = state.clone();
            tracker.spawn(async move {
                if let Err(e) = crate::monitor::serve(monitor, state).await {
                    tracing::error!("monitoring stopped: {e:#}");
                }
            });
        }
        if state.opts.cluster_id.is_some()
            && crate::stan::server::connect_options(&state.opts).is_ok()
        {
            let addr = listener.local_addr().context("client listener address")?;
            let state = state.clone();
            tracker.spawn(async move {
                let stopping = state.shutdown.clone();
                match crate::stan::server::serve(addr, &state.opts, stopping.child_token()).await {
                    Ok(stan) => {
                        let _ = state.stan.set(stan);
                    }
                    Err(e) => tracing::error!("NATS Streaming is not serving: {e:#}"),
                }
            });
        }
        tokio::pin!(shutdown);
        tokio::pin!(lame_duck);
        let mut entering_lame_duck = false;
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, addr)) => accept(&state, &tracker, socket, addr),
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::error!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = &mut shutdown => break,
                _ = &mut lame_duck => {
                    entering_lame_duck = true;
                    break;
                }
            }
        }
        drop(listener);
        if entering_lame_duck {
            crate::lame_duck::run(&state, shutdown.as_mut()).await;
        }
        if let Some(js) = state.jetstream.get() {
            // PubAcks waiting for an fsync go out before the connections are flushed.
            js.shutdown();
        }
        tracing::info!(
            "shutting down: flushing {} connections",
            state.clients.lock().len()
        );
        state.shutdown.cancel();
        tracker.close();
        let bound = state.live().opts.write_deadline + Duration::from_secs(1);
        if tokio::time::timeout(bound, tracker.wait()).await.is_err() {
            tracing::warn!("some connections did not close within {bound:?}");
        }
        Ok(())
    }
}

fn accept(state: &Arc<ServerState>, tracker: &TaskTracker, socket: TcpStream, addr: SocketAddr) {
    let _ = socket.set_nodelay(true);
    let id = state.next_client_id.fetch_add(1, Ordering::Relaxed);
    let live = state.live();
    if state.clients.lock().len() >= live.opts.max_connections {
        tracing::warn!(cid = id, %addr, "maximum connections exceeded");
        let mut bytes = Vec::new();
        server_op::write_info(&mut bytes, &live.info);
        server_op::write_err(&mut bytes, "maximum connections exceeded");
        tracker.spawn(client::refuse(socket, bytes));
        return;
    }
    state
        .stats
        .total_connections
        .fetch_add(1, Ordering::Relaxed);
    let client = Arc::new(Client::new(id, addr, state.accounts.global().clone()));
    state.clients.lock().insert(id, client.clone());
    tracker.spawn(client::serve(state.clone(), live, client, socket));
}

/// JetStream's settings from the server's options.
fn jetstream_config(opts: &Options) -> crate::jetstream::JetStreamConfig {
    let store_dir = opts
        .store_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("nats"));
    crate::jetstream::JetStreamConfig {
        store_dir: store_dir.clone(),
        sync: opts.sync,
        account: Default::default(),
        resources: crate::jetstream::Resources::new(
            &store_dir.join("jetstream"),
            opts.jetstream_max_memory,
            opts.jetstream_max_store,
        ),
        redeliver_on_disconnect: opts.redeliver_on_disconnect,
        limits: opts.jetstream_limits,
        domain: opts.jetstream_domain.clone(),
    }
}

/// The configured accounts, or in operator mode the loaded account JWTs (warning about those
/// no trusted operator signed).
fn accounts(opts: &Options, trust: Option<&Trust>) -> Accounts {
    match trust {
        Some(trust) => {
            for key in trust.untrusted_accounts() {
                tracing::warn!(
                    "account {key} is not signed by a trusted operator: its users cannot log in"
                );
            }
            Accounts::new(trust.account_limits())
        }
        None => Accounts::new(opts.accounts.iter().map(|a| (a.name.as_str(), None))),
    }
}

/// A fresh server id in nats-server's shape: `N` and 55 base32 characters.
fn server_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id = String::from("N");
    id.extend((0..55).map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jetstream_on_the_system_account_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("sys.conf");
        std::fs::write(
            &conf,
            "system_account: SYS\naccounts { SYS { jetstream: enabled } }\n",
        )
        .unwrap();
        let mut opts = Options {
            port: 0,
            jetstream: true,
            store_dir: Some(dir.path().join("store")),
            ..Options::default()
        };
        crate::config_file::load_into(&conf, &mut opts).unwrap();
        let err = Server::bind(opts).await.err().expect("refused");
        assert!(
            format!("{err:#}").contains("Not allowed to enable JetStream on the system account"),
            "{err:#}"
        );
    }
}
