//! The NATS Streaming server: discovery and connections, client heartbeats, publishing,
//! subscription requests and acks, each over the subjects its ConnectResponse hands out.
//!
//! Three tasks read the loopback connection:
//! - the control task takes connect, subscribe, unsubscribe, subscription-close and close
//!   requests one at a time, in the order they arrived (one wildcard subscription), and owns
//!   the groups ([`super::group`]);
//! - the publish task stores each PubMsg in its channel's stream and answers with a PubAck once
//!   the stream has it, many in flight at once;
//! - the ack task routes each Ack to the group of the subscription it names; pings are answered
//!   there too.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use parking_lot::Mutex;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::group::{self, Command, MemberSpec, MemberStats};
use super::names;
use super::wire::{self, StartPosition};
use super::{StanSettings, DUPLICATE_CLIENT_CHECK};
use crate::options::{Auth, Options, StoreType, User};

/// The header that carries a PubMsg's reply subject in the stream, for its subscribers.
pub(crate) const REPLY_HEADER: &str = "Stan-Reply";
/// How long an unused consumer of a subscription that is not durable outlives its group when
/// the broker stops without removing it.
const ORPHAN_CONSUMER_TTL: Duration = Duration::from_secs(3600);
/// Longest a PubAck waits for the channel's groups to take the message (see
/// [`group::Progress`]); a group that lags longer does not hold its publishers back.
const DELIVERY_WAIT: Duration = Duration::from_secs(1);
/// Longest a subscription response waits for the group's first messages, when its consumer has
/// some.
const FIRST_MESSAGES_WAIT: Duration = Duration::from_millis(500);
/// Longest wait for JetStream to answer the component's own API requests.
const API_TIMEOUT: Duration = Duration::from_secs(10);

const ERR_INVALID_SUBJECT: &str = "stan: invalid subject";
const ERR_INVALID_START: &str = "stan: invalid start position";
const ERR_INVALID_SUB: &str = "stan: invalid subscription";
const ERR_INVALID_CLIENT: &str = "stan: clientID already registered";
const ERR_MISSING_CLIENT: &str = "stan: clientID missing";
const ERR_INVALID_CLIENT_ID: &str =
    "stan: invalid clientID: only alphanumeric and `-` or `_` characters allowed";
const ERR_INVALID_ACK_WAIT: &str = "stan: invalid ack wait time, should be >= 1s";
const ERR_INVALID_MAX_INFLIGHT: &str = "stan: invalid MaxInflight, should be >= 1";
const ERR_INVALID_CONN_REQ: &str = "stan: invalid connection request";
const ERR_INVALID_PUB_REQ: &str = "stan: invalid publish request";
const ERR_INVALID_SUB_REQ: &str = "stan: invalid subscription request";
const ERR_INVALID_UNSUB_REQ: &str = "stan: invalid unsubscribe request";
const ERR_INVALID_CLOSE_REQ: &str = "stan: invalid close request";
const ERR_DUP_DURABLE: &str = "stan: duplicate durable registration";
const ERR_INVALID_DUR_NAME: &str =
    "stan: durable name of a durable queue subscriber can't contain the character ':'";
const ERR_UNKNOWN_CLIENT: &str = "stan: unknown clientID";
const ERR_UNKNOWN_CHANNEL: &str = "stan: unknown channel";
const ERR_TOO_MANY_CHANNELS: &str = "too many channels";
const ERR_TOO_MANY_SUBS: &str = "too many subscriptions per channel";
const ERR_PING_UNKNOWN: &str = "client has been replaced or is no longer registered";

/// The subjects of one cluster.
pub(crate) struct Subjects {
    pub discover: String,
    pub publish: String,
    pub subscribe: String,
    pub unsubscribe: String,
    pub sub_close: String,
    pub close: String,
    pub pings: String,
    /// Prefix of the subscriptions' ack inboxes.
    pub acks: String,
}

impl Subjects {
    fn new(cluster: &str) -> Subjects {
        Subjects {
            discover: format!("_STAN.discover.{cluster}"),
            publish: format!("_STAN.pub.{cluster}"),
            subscribe: format!("_STAN.sub.{cluster}"),
            unsubscribe: format!("_STAN.unsub.{cluster}"),
            sub_close: format!("_STAN.subclose.{cluster}"),
            close: format!("_STAN.close.{cluster}"),
            pings: format!("_STAN.discover.{cluster}.pings"),
            acks: format!("_STAN.ack.{cluster}"),
        }
    }
}

/// A connected STAN client.
pub(crate) struct StanClient {
    pub id: String,
    pub hb_inbox: String,
    pub conn_id: Vec<u8>,
    /// Stops its heartbeats.
    heartbeats: CancellationToken,
    /// Heartbeats missed in a row.
    pub failed_heartbeats: AtomicU32,
}

/// A subscription, as the monitoring endpoints and the ack router see it.
pub(crate) struct Sub {
    pub client_id: String,
    pub channel: String,
    pub inbox: String,
    pub ack_inbox: String,
    pub queue: Option<String>,
    pub durable: Option<String>,
    pub max_inflight: usize,
    pub ack_wait_secs: i32,
    pub stats: Arc<MemberStats>,
    group: Key,
    commands: mpsc::UnboundedSender<Command>,
}

/// A channel and the stream that holds it.
pub(crate) struct Channel {
    pub stream: String,
}

/// What the broker's monitoring and the tasks share.
pub(crate) struct Stan {
    pub cluster_id: String,
    pub settings: StanSettings,
    pub started: SystemTime,
    storage: stream::StorageType,
    subjects: Subjects,
    nc: async_nats::Client,
    js: jetstream::Context,
    pub clients: Mutex<BTreeMap<String, Arc<StanClient>>>,
    pub channels: Mutex<BTreeMap<String, Channel>>,
    /// By ack inbox.
    pub subs: Mutex<HashMap<String, Arc<Sub>>>,
    /// Held while a channel's stream is looked up or created.
    creating: tokio::sync::Mutex<()>,
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    /// What the groups sent.
    pub out: Arc<group::Traffic>,
    /// Each channel's groups' progress, for PubAcks to wait on.
    progress: Mutex<HashMap<String, Vec<tokio::sync::watch::Receiver<group::Progress>>>>,
    /// Barriers on their way through the ack subscription (see [`Stan::barrier`]).
    barriers: Mutex<HashMap<String, tokio::sync::oneshot::Sender<()>>>,
    shutdown: CancellationToken,
}

/// Which group a subscription joins.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Key {
    /// A plain subscription, alone in its group: its ack inbox.
    Plain(String),
    /// A durable subscription: channel and consumer name.
    Durable(String, String),
    /// A queue group, durable or not: channel and group name (`durable:group` when durable).
    Queue(String, String),
}

/// A running group, owned by the control task.
struct Group {
    stream: String,
    consumer: String,
    durable: bool,
    members: Vec<(String, usize)>,
    commands: mpsc::UnboundedSender<Command>,
}

/// Messages the control task sends itself.
enum Internal {
    /// The registered client of a connect request's ID answered its heartbeat (`alive`) or not.
    Checked {
        request: wire::ConnectRequest,
        reply: String,
        alive: bool,
    },
    /// The client missed too many heartbeats.
    Expired { client_id: String },
}

/// Checks that NATS Streaming can serve with `opts` (its cluster ID is a subject token, and it
/// can log in to the client port), and says how it connects.
pub(crate) fn connect_options(opts: &Options) -> anyhow::Result<async_nats::ConnectOptions> {
    let cluster_id = opts.cluster_id.as_deref().context("no cluster ID")?;
    anyhow::ensure!(
        !cluster_id.is_empty()
            && !cluster_id.contains(['.', '*', '>'])
            && !cluster_id.chars().any(char::is_whitespace),
        "NATS Streaming cluster ID {cluster_id:?} must be one subject token (no '.', '*', '>' or spaces)"
    );
    let connect = async_nats::ConnectOptions::new()
        .name(format!("NATS Streaming {cluster_id}"))
        .retry_on_initial_connect()
        .max_reconnects(None);
    // It logs in as the whole server's one identity: no user, the token, or the one user of
    // `--user/--pass`. With several users it would act as one of them, with that user's
    // permissions, so it does not serve.
    let plain = |secret: &crate::secret::Secret| match secret {
        crate::secret::Secret::Plain(text) => Some(text.clone()),
        crate::secret::Secret::Bcrypt(_) => None,
    };
    let connect = match &opts.auth {
        _ if opts.operator.is_some() || !opts.accounts.is_empty() => {
            anyhow::bail!("NATS Streaming cannot serve with accounts or operator mode yet")
        }
        Auth::None => connect,
        Auth::Token(token) => connect.token(
            plain(token).context("NATS Streaming needs the token in plain text, not a bcrypt hash")?,
        ),
        Auth::Users(users) => match users.as_slice() {
            [User::Password(up)] => connect.user_and_password(
                up.user.clone(),
                plain(&up.pass).context(
                    "NATS Streaming needs the user's password in plain text, not a bcrypt hash",
                )?,
            ),
            _ => anyhow::bail!(
                "NATS Streaming logs in as the server's only user; with several users it cannot serve yet"
            ),
        },
    };
    anyhow::ensure!(
        opts.tls.is_none() || opts.allow_non_tls,
        "NATS Streaming cannot yet serve on a client port that requires TLS"
    );
    Ok(connect)
}

/// Connects to the broker at `addr` and serves NATS Streaming until `shutdown`.
pub(crate) async fn serve(
    addr: SocketAddr,
    opts: &Options,
    shutdown: CancellationToken,
) -> anyhow::Result<Arc<Stan>> {
    let connect = connect_options(opts)?;
    let cluster_id = opts.cluster_id.clone().context("no cluster ID")?;
    let mut host = addr;
    if host.ip().is_unspecified() {
        host.set_ip(match host {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let nc = connect
        .connect(format!("nats://{host}"))
        .await
        .with_context(|| format!("NATS Streaming cannot connect to the broker on {host}"))?;
    let mut js = jetstream::new(nc.clone());
    js.set_timeout(API_TIMEOUT);
    let stan = Arc::new(Stan {
        subjects: Subjects::new(&cluster_id),
        cluster_id,
        settings: opts.stan.clone(),
        started: SystemTime::now(),
        storage: match opts.store_type {
            StoreType::File => stream::StorageType::File,
            StoreType::Memory => stream::StorageType::Memory,
        },
        nc: nc.clone(),
        js,
        clients: Mutex::new(BTreeMap::new()),
        channels: Mutex::new(BTreeMap::new()),
        subs: Mutex::new(HashMap::new()),
        creating: tokio::sync::Mutex::new(()),
        in_msgs: AtomicU64::new(0),
        in_bytes: AtomicU64::new(0),
        out: Arc::default(),
        barriers: Mutex::new(HashMap::new()),
        progress: Mutex::new(HashMap::new()),
        shutdown: shutdown.clone(),
    });
    let s = &stan.subjects;
    let control = nc.subscribe(format!("_STAN.*.{}", stan.cluster_id)).await?;
    let publishes = nc.subscribe(format!("{}.>", s.publish)).await?;
    let acks = nc.subscribe(format!("{}.*", s.acks)).await?;
    let pings = nc.subscribe(s.pings.clone()).await?;
    nc.flush().await?;
    tokio::spawn(control_task(stan.clone(), control));
    tokio::spawn(publish_task(stan.clone(), publishes));
    tokio::spawn(ack_task(stan.clone(), acks, pings));
    tracing::info!(cluster = stan.cluster_id, "Streaming Server is ready");
    Ok(stan)
}

fn reply_with(stan: &Stan, to: Option<&async_nats::Subject>, msg: impl prost::Message) {
    if let Some(to) = to {
        let nc = stan.nc.clone();
        let to = to.clone();
        let bytes = Bytes::from(msg.encode_to_vec());
        tokio::spawn(async move {
            let _ = nc.publish(to, bytes).await;
        });
    }
}

async fn reply_now(stan: &Stan, to: Option<&async_nats::Subject>, msg: impl prost::Message) {
    if let Some(to) = to {
        let _ = stan
            .nc
            .publish(to.clone(), Bytes::from(msg.encode_to_vec()))
            .await;
    }
}

async fn control_task(stan: Arc<Stan>, mut requests: async_nats::Subscriber) {
    let (to_self, mut internal) = mpsc::unbounded_channel::<Internal>();
    let mut control = Control {
        stan: stan.clone(),
        groups: HashMap::new(),
        checking: HashSet::new(),
        to_self,
    };
    loop {
        tokio::select! {
            msg = requests.next() => match msg {
                Some(msg) => control.request(msg).await,
                None => break,
            },
            Some(note) = internal.recv() => control.internal(note).await,
            _ = stan.shutdown.cancelled() => break,
        }
    }
}

struct Control {
    stan: Arc<Stan>,
    groups: HashMap<Key, Group>,
    /// Client IDs whose duplicate check is under way.
    checking: HashSet<String>,
    to_self: mpsc::UnboundedSender<Internal>,
}

impl Control {
    async fn request(&mut self, msg: async_nats::Message) {
        let s = &self.stan.subjects;
        let subject = msg.subject.as_str();
        if subject == s.discover {
            self.connect(msg).await;
        } else if subject == s.subscribe {
            self.subscribe(msg).await;
        } else if subject == s.unsubscribe || subject == s.sub_close {
            let closing = subject == s.sub_close;
            self.unsubscribe(msg, closing).await;
        } else if subject == s.close {
            self.close(msg).await;
        }
    }

    async fn internal(&mut self, note: Internal) {
        match note {
            Internal::Checked {
                request,
                reply,
                alive,
            } => {
                self.checking.remove(&request.client_id);
                if alive {
                    tracing::debug!(
                        client = request.client_id,
                        "Connect failed; already connected"
                    );
                    connect_error(&self.stan, &reply, ERR_INVALID_CLIENT).await;
                } else {
                    self.close_client(&request.client_id).await;
                    self.register(request, &reply, true).await;
                }
            }
            Internal::Expired { client_id } => {
                tracing::error!(client = client_id, "Timed out on heartbeats");
                self.close_client(&client_id).await;
            }
        }
    }

    async fn connect(&mut self, msg: async_nats::Message) {
        let Some(reply) = msg.reply.as_ref().map(|r| r.to_string()) else {
            return;
        };
        let request = match wire::decode::<wire::ConnectRequest>(&msg.payload) {
            Ok(r) if !r.heartbeat_inbox.is_empty() => r,
            _ => {
                tracing::error!("Invalid connect request");
                return connect_error(&self.stan, &reply, ERR_INVALID_CONN_REQ).await;
            }
        };
        if !names::valid_client_id(&request.client_id) {
            tracing::error!(client = request.client_id, "Invalid ClientID");
            return connect_error(&self.stan, &reply, ERR_INVALID_CLIENT_ID).await;
        }
        let registered = self.stan.clients.lock().get(&request.client_id).cloned();
        match registered {
            None => self.register(request, &reply, false).await,
            Some(_) if self.checking.contains(&request.client_id) => {
                connect_error(&self.stan, &reply, ERR_INVALID_CLIENT).await
            }
            Some(old) => {
                // Is the registered client still there? Ask its heartbeat inbox, off this task.
                self.checking.insert(request.client_id.clone());
                let nc = self.stan.nc.clone();
                let to_self = self.to_self.clone();
                tokio::spawn(async move {
                    let alive = answers(&nc, &old.hb_inbox, DUPLICATE_CLIENT_CHECK).await;
                    let _ = to_self.send(Internal::Checked {
                        request,
                        reply,
                        alive,
                    });
                });
            }
        }
    }

    async fn register(&mut self, request: wire::ConnectRequest, reply: &str, replaced: bool) {
        let client = Arc::new(StanClient {
            id: request.client_id.clone(),
            hb_inbox: request.heartbeat_inbox.clone(),
            conn_id: request.conn_id.clone(),
            heartbeats: self.stan.shutdown.child_token(),
            failed_heartbeats: AtomicU32::new(0),
        });
        self.stan
            .clients
            .lock()
            .insert(client.id.clone(), client.clone());
        tokio::spawn(heartbeats(
            self.stan.clone(),
            client.clone(),
            self.to_self.clone(),
        ));
        let s = &self.stan.subjects;
        let mut response = wire::ConnectResponse {
            pub_prefix: s.publish.clone(),
            sub_requests: s.subscribe.clone(),
            unsub_requests: s.unsubscribe.clone(),
            close_requests: s.close.clone(),
            sub_close_requests: s.sub_close.clone(),
            protocol: 1,
            ..Default::default()
        };
        if request.protocol >= 1 {
            response.ping_requests = s.pings.clone();
            response.ping_interval = request.ping_interval;
            response.ping_max_out = request.ping_max_out;
        }
        let _ = self
            .stan
            .nc
            .publish(reply.to_string(), Bytes::from(response.encode_to_vec()))
            .await;
        let verb = if replaced {
            "Replaced old client"
        } else {
            "Connected"
        };
        tracing::debug!(client = client.id, inbox = client.hb_inbox, "{verb}");
    }

    async fn close(&mut self, msg: async_nats::Message) {
        let response = match wire::decode::<wire::CloseRequest>(&msg.payload) {
            Err(_) => wire::CloseResponse {
                error: ERR_INVALID_CLOSE_REQ.into(),
            },
            Ok(request) => match self.close_client(&request.client_id).await {
                true => wire::CloseResponse::default(),
                false => wire::CloseResponse {
                    error: ERR_UNKNOWN_CLIENT.into(),
                },
            },
        };
        reply_now(&self.stan, msg.reply.as_ref(), response).await;
    }

    /// Removes the client and its subscriptions (a durable stays for its next subscriber);
    /// false when it is not registered.
    async fn close_client(&mut self, client_id: &str) -> bool {
        if !self.stan.clients.lock().contains_key(client_id) {
            return false;
        }
        self.stan.barrier().await;
        let Some(client) = self.stan.clients.lock().remove(client_id) else {
            return false;
        };
        client.heartbeats.cancel();
        let subs: Vec<Arc<Sub>> = self
            .stan
            .subs
            .lock()
            .values()
            .filter(|s| s.client_id == client_id)
            .cloned()
            .collect();
        for sub in subs {
            self.remove_sub(&sub, false).await;
        }
        tracing::debug!(client = client_id, "Closed");
        true
    }

    async fn subscribe(&mut self, msg: async_nats::Message) {
        let response = match self.try_subscribe(&msg.payload).await {
            Ok((ack_inbox, group, spec)) => {
                let response = wire::SubscriptionResponse {
                    ack_inbox,
                    error: String::new(),
                };
                // The group sends the response, then at once what it has for the new member:
                // no message before the response, and none long after it.
                let response = msg
                    .reply
                    .clone()
                    .map(|to| (to, Bytes::from(response.encode_to_vec())));
                if let Some(group) = self.groups.get(&group) {
                    let _ = group.commands.send(Command::Join { spec, response });
                }
                return;
            }
            Err(error) => wire::SubscriptionResponse {
                ack_inbox: String::new(),
                error,
            },
        };
        reply_now(&self.stan, msg.reply.as_ref(), response).await;
    }

    async fn try_subscribe(&mut self, payload: &[u8]) -> Result<(String, Key, MemberSpec), String> {
        let mut request = wire::decode::<wire::SubscriptionRequest>(payload)
            .map_err(|_| ERR_INVALID_SUB_REQ.to_string())?;
        if request.client_id.is_empty() {
            return Err(ERR_MISSING_CLIENT.into());
        }
        if request.ack_wait_in_secs <= 0 {
            return Err(ERR_INVALID_ACK_WAIT.into());
        }
        if request.max_in_flight <= 0 {
            return Err(ERR_INVALID_MAX_INFLIGHT.into());
        }
        let Some(start) = request.start() else {
            return Err(ERR_INVALID_START.into());
        };
        if !names::valid_channel(&request.subject) {
            return Err(ERR_INVALID_SUBJECT.into());
        }
        if !self.stan.clients.lock().contains_key(&request.client_id) {
            return Err(ERR_UNKNOWN_CLIENT.into());
        }
        let channel = request.subject.clone();
        let stream = self.stan.channel(&channel).await?;
        let max_subs = self.stan.settings.max_subs;
        if max_subs > 0
            && self
                .stan
                .subs
                .lock()
                .values()
                .filter(|s| s.channel == channel)
                .count()
                >= max_subs
        {
            return Err(ERR_TOO_MANY_SUBS.into());
        }
        let ack_inbox = format!("{}.{}", self.stan.subjects.acks, unique_id());
        let mut durable = (!request.durable_name.is_empty()).then(|| request.durable_name.clone());
        let queue = (!request.q_group.is_empty()).then(|| request.q_group.clone());
        let key = match (&queue, &durable) {
            (Some(q), Some(d)) => {
                if d.contains(':') {
                    return Err(ERR_INVALID_DUR_NAME.into());
                }
                let compound = format!("{d}:{q}");
                request.q_group = compound.clone();
                Key::Queue(channel.clone(), compound)
            }
            (Some(q), None) => Key::Queue(channel.clone(), q.clone()),
            (None, Some(d)) => Key::Durable(
                channel.clone(),
                names::durable_consumer(&channel, &request.client_id, d),
            ),
            (None, None) => Key::Plain(ack_inbox.clone()),
        };
        if queue.is_some() {
            durable = None;
        }
        let max_inflight = usize::try_from(request.max_in_flight).unwrap_or(usize::MAX);
        let ack_wait = Duration::from_secs(u64::try_from(request.ack_wait_in_secs).unwrap_or(1));
        match self.groups.get_mut(&key) {
            Some(_) if matches!(key, Key::Durable(..)) => return Err(ERR_DUP_DURABLE.into()),
            Some(group) => {
                group.members.push((ack_inbox.clone(), max_inflight));
                let total = group.members.iter().map(|(_, n)| *n).sum::<usize>();
                let (stream, consumer) = (group.stream.clone(), group.consumer.clone());
                self.stan.resize(&stream, &consumer, total).await;
            }
            None => {
                let durable_group = match &key {
                    Key::Durable(_, name) => Some(name.clone()),
                    Key::Queue(_, group) if request.q_group.contains(':') => {
                        let (d, q) = group.split_once(':').expect("a compound name");
                        Some(names::queue_consumer(&channel, d, q))
                    }
                    _ => None,
                };
                let consumer_name = durable_group
                    .clone()
                    .unwrap_or_else(|| format!("s:{}", unique_id()));
                let consumer = self
                    .stan
                    .consumer(
                        &stream,
                        &channel,
                        &consumer_name,
                        durable_group.is_some(),
                        start,
                        &request,
                        ack_wait,
                        max_inflight,
                    )
                    .await?;
                let (commands, receiver) = mpsc::unbounded_channel();
                let info = consumer.cached_info();
                let before_start = match info.config.deliver_policy {
                    consumer::DeliverPolicy::ByStartSequence { start_sequence } => {
                        start_sequence.saturating_sub(1)
                    }
                    _ => 0,
                };
                let (progress, watcher) = tokio::sync::watch::channel(group::Progress {
                    taken: info.delivered.stream_sequence.max(before_start),
                    blocked: true,
                });
                let has_messages = info.num_pending > 0 || info.num_ack_pending > 0;
                let start = info.delivered.stream_sequence.max(before_start);
                let mut first = watcher.clone();
                {
                    let mut all = self.stan.progress.lock();
                    let watchers = all.entry(channel.clone()).or_default();
                    watchers.retain(|w| w.has_changed().is_ok());
                    watchers.push(watcher);
                }
                tokio::spawn(group::run(
                    self.stan.nc.clone(),
                    consumer,
                    channel.clone(),
                    receiver,
                    self.stan.out.clone(),
                    progress,
                    self.stan.shutdown.clone(),
                ));
                if has_messages {
                    // As NATS Streaming, what is there already follows the subscription
                    // response at once: the group has its first messages in hand before it.
                    let taken = first.wait_for(|p| p.taken > start);
                    let _ = tokio::time::timeout(FIRST_MESSAGES_WAIT, taken).await;
                }
                self.groups.insert(
                    key.clone(),
                    Group {
                        stream,
                        consumer: consumer_name,
                        durable: durable_group.is_some(),
                        members: vec![(ack_inbox.clone(), max_inflight)],
                        commands,
                    },
                );
            }
        }
        let group = &self.groups[&key];
        let stats = Arc::new(MemberStats::default());
        let sub = Arc::new(Sub {
            client_id: request.client_id.clone(),
            channel,
            inbox: request.inbox.clone(),
            ack_inbox: ack_inbox.clone(),
            queue: queue.map(|_| request.q_group.clone()),
            durable,
            max_inflight,
            ack_wait_secs: request.ack_wait_in_secs,
            stats: stats.clone(),
            group: key.clone(),
            commands: group.commands.clone(),
        });
        self.stan.subs.lock().insert(ack_inbox.clone(), sub);
        let spec = MemberSpec {
            ack_inbox: ack_inbox.clone(),
            inbox: request.inbox,
            max_inflight,
            stats,
        };
        Ok((ack_inbox, key, spec))
    }

    async fn unsubscribe(&mut self, msg: async_nats::Message, closing: bool) {
        let error = match wire::decode::<wire::UnsubscribeRequest>(&msg.payload) {
            Err(_) => Some(ERR_INVALID_UNSUB_REQ),
            Ok(request) => {
                let known_channel = self.stan.channels.lock().contains_key(&request.subject);
                let sub = {
                    let subs = self.stan.subs.lock();
                    subs.get(&request.inbox)
                        .or_else(|| subs.values().find(|s| s.inbox == request.inbox))
                        .filter(|s| s.channel == request.subject)
                        .cloned()
                };
                match sub {
                    _ if !known_channel => Some(ERR_UNKNOWN_CHANNEL),
                    None => Some(ERR_INVALID_SUB),
                    Some(sub) if sub.client_id != request.client_id => Some(ERR_UNKNOWN_CLIENT),
                    Some(sub) => {
                        self.stan.barrier().await;
                        self.remove_sub(&sub, !closing).await;
                        None
                    }
                }
            }
        };
        let response = wire::SubscriptionResponse {
            ack_inbox: String::new(),
            error: error.unwrap_or_default().to_string(),
        };
        reply_now(&self.stan, msg.reply.as_ref(), response).await;
    }

    /// Takes `sub` out of its group. The last member out stops the group; its consumer stays
    /// when the group is durable and this is not an unsubscribe.
    async fn remove_sub(&mut self, sub: &Sub, unsubscribe: bool) {
        self.stan.subs.lock().remove(&sub.ack_inbox);
        let Some(group) = self.groups.get_mut(&sub.group) else {
            return;
        };
        group.members.retain(|(inbox, _)| *inbox != sub.ack_inbox);
        if !group.members.is_empty() {
            let _ = sub.commands.send(Command::Leave {
                ack_inbox: sub.ack_inbox.clone(),
            });
            let total = group.members.iter().map(|(_, n)| *n).sum::<usize>();
            let (stream, consumer) = (group.stream.clone(), group.consumer.clone());
            self.stan.resize(&stream, &consumer, total).await;
            return;
        }
        let group = self.groups.remove(&sub.group).expect("found above");
        let keep = group.durable && !unsubscribe;
        let (done, stopped) = tokio::sync::oneshot::channel();
        let _ = group.commands.send(Command::Stop {
            give_back: keep,
            done,
        });
        let _ = stopped.await;
        if !keep {
            if let Err(e) = self
                .stan
                .js
                .delete_consumer_from_stream(&group.consumer, &group.stream)
                .await
            {
                tracing::warn!(
                    stream = group.stream,
                    consumer = group.consumer,
                    "cannot remove a subscription's consumer: {e}"
                );
            }
        }
    }
}

async fn connect_error(stan: &Stan, reply: &str, error: &str) {
    let response = wire::ConnectResponse {
        error: error.to_string(),
        ..Default::default()
    };
    let _ = stan
        .nc
        .publish(reply.to_string(), Bytes::from(response.encode_to_vec()))
        .await;
}

/// Whether a request to `inbox` is answered within `timeout`. An unanswered one takes the whole
/// `timeout`, even when the broker says at once that nobody listens, as on NATS Streaming (whose
/// clients count on a connect that replaces a vanished client taking that long).
async fn answers(nc: &async_nats::Client, inbox: &str, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    let asked = nc.request(inbox.to_string(), Bytes::new());
    if let Ok(Ok(_)) = tokio::time::timeout_at(deadline, asked).await {
        return true;
    }
    tokio::time::sleep_until(deadline).await;
    false
}

/// Sends the client a heartbeat every `hb_interval`; after more than `hb_fail_count` missed in
/// a row, tells the control task.
async fn heartbeats(
    stan: Arc<Stan>,
    client: Arc<StanClient>,
    to_self: mpsc::UnboundedSender<Internal>,
) {
    let settings = &stan.settings;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(settings.hb_interval) => {}
            _ = client.heartbeats.cancelled() => return,
        }
        let answered = tokio::select! {
            answered = answers(&stan.nc, &client.hb_inbox, settings.hb_timeout) => answered,
            _ = client.heartbeats.cancelled() => return,
        };
        if answered {
            client.failed_heartbeats.store(0, Ordering::Relaxed);
            continue;
        }
        let failed = client.failed_heartbeats.fetch_add(1, Ordering::Relaxed) + 1;
        if failed > settings.hb_fail_count {
            let _ = to_self.send(Internal::Expired {
                client_id: client.id.clone(),
            });
            return;
        }
    }
}

impl Stan {
    /// Returns once every group on `channel` has taken `sequence` from its consumer or cannot
    /// take more for now, or after [`DELIVERY_WAIT`].
    async fn taken_by_groups(&self, channel: &str, sequence: u64) {
        let watchers: Vec<_> = match self.progress.lock().get(channel) {
            Some(w) => w.clone(),
            None => return,
        };
        let all = futures_util::future::join_all(watchers.into_iter().map(|mut w| async move {
            let _ = w.wait_for(|p| p.taken >= sequence || p.blocked).await;
        }));
        let _ = tokio::time::timeout(DELIVERY_WAIT, all).await;
    }

    /// Returns once every ack that reached the component before now has gone to its group.
    /// A client acks and then closes: the ack and the close arrive in that order, but on
    /// different subscriptions, read by different tasks. A message sent to the ack subscription
    /// comes back after the acks already there, so the close waits for it, and no message the
    /// client acknowledged is given back to its group.
    async fn barrier(&self) {
        let id = format!("{}.barrier-{}", self.subjects.acks, unique_id());
        let (passed, wait) = tokio::sync::oneshot::channel();
        self.barriers.lock().insert(id.clone(), passed);
        if self.nc.publish(id.clone(), Bytes::new()).await.is_ok() {
            let _ = tokio::time::timeout(API_TIMEOUT, wait).await;
        }
        self.barriers.lock().remove(&id);
    }

    /// The stream of `channel`: the one whose subjects take it, or a new one named after it.
    async fn channel(&self, channel: &str) -> Result<String, String> {
        if let Some(c) = self.channels.lock().get(channel) {
            return Ok(c.stream.clone());
        }
        let _creating = self.creating.lock().await;
        if let Some(c) = self.channels.lock().get(channel) {
            return Ok(c.stream.clone());
        }
        let stream = match self.js.stream_by_subject(channel).await {
            Ok(name) => name,
            Err(_) => {
                let max = self.settings.max_channels;
                if max > 0 && self.channels.lock().len() >= max {
                    return Err(ERR_TOO_MANY_CHANNELS.into());
                }
                let limit = |n: u64| i64::try_from(n).ok().filter(|n| *n > 0).unwrap_or(-1);
                let config = stream::Config {
                    name: names::stream_for(channel),
                    subjects: vec![channel.to_string()],
                    storage: self.storage,
                    max_messages: limit(self.settings.max_msgs),
                    max_bytes: limit(self.settings.max_bytes),
                    max_age: self.settings.max_age,
                    discard: stream::DiscardPolicy::Old,
                    description: Some(format!("NATS Streaming channel {channel}")),
                    metadata: HashMap::from([("stan_channel".to_string(), channel.to_string())]),
                    ..Default::default()
                };
                match self.js.create_stream(config).await {
                    Ok(mut s) => s
                        .info()
                        .await
                        .map(|i| i.config.name.clone())
                        .unwrap_or_else(|_| names::stream_for(channel)),
                    Err(e) => {
                        tracing::error!(channel, "cannot create the channel's stream: {e}");
                        return Err(format!("stan: cannot create channel {channel}: {e}"));
                    }
                }
            }
        };
        tracing::debug!(channel, stream, "channel ready");
        self.channels.lock().insert(
            channel.to_string(),
            Channel {
                stream: stream.clone(),
            },
        );
        Ok(stream)
    }

    /// The consumer of a new group: a durable one resumes where it was; a new one starts where
    /// the request says.
    #[allow(clippy::too_many_arguments)]
    async fn consumer(
        &self,
        stream: &str,
        channel: &str,
        name: &str,
        durable: bool,
        start: StartPosition,
        request: &wire::SubscriptionRequest,
        ack_wait: Duration,
        max_inflight: usize,
    ) -> Result<consumer::PullConsumer, String> {
        let failed =
            |e: &dyn std::fmt::Display| format!("stan: cannot subscribe to {channel}: {e}");
        let max_ack_pending = i64::try_from(max_inflight).unwrap_or(i64::MAX);
        if durable {
            if let Ok(existing) = self
                .js
                .get_consumer_from_stream::<consumer::pull::Config, _, _>(name, stream)
                .await
            {
                let mut config = existing.cached_info().config.clone();
                if config.ack_wait != ack_wait || config.max_ack_pending != max_ack_pending {
                    config.ack_wait = ack_wait;
                    config.max_ack_pending = max_ack_pending;
                    let config = consumer::pull::Config {
                        durable_name: config.durable_name,
                        name: config.name,
                        deliver_policy: config.deliver_policy,
                        ack_policy: config.ack_policy,
                        ack_wait: config.ack_wait,
                        max_ack_pending: config.max_ack_pending,
                        filter_subject: config.filter_subject,
                        ..Default::default()
                    };
                    return self
                        .js
                        .update_consumer_on_stream(config, stream)
                        .await
                        .map_err(|e| failed(&e));
                }
                return Ok(existing);
            }
        }
        let mut js_stream = self.js.get_stream(stream).await.map_err(|e| failed(&e))?;
        let state = js_stream
            .info()
            .await
            .map_err(|e| failed(&e))?
            .state
            .clone();
        let deliver_policy = match start {
            StartPosition::NewOnly => consumer::DeliverPolicy::ByStartSequence {
                start_sequence: state.last_sequence + 1,
            },
            StartPosition::LastReceived => consumer::DeliverPolicy::ByStartSequence {
                start_sequence: state.last_sequence.max(1),
            },
            StartPosition::TimeDeltaStart => consumer::DeliverPolicy::ByStartTime {
                start_time: time::OffsetDateTime::now_utc()
                    - Duration::from_nanos(u64::try_from(request.start_time_delta).unwrap_or(0)),
            },
            StartPosition::SequenceStart => consumer::DeliverPolicy::ByStartSequence {
                start_sequence: request
                    .start_sequence
                    .clamp(state.first_sequence.max(1), state.last_sequence + 1),
            },
            StartPosition::First => consumer::DeliverPolicy::All,
        };
        let config = consumer::pull::Config {
            durable_name: durable.then(|| name.to_string()),
            name: Some(name.to_string()),
            deliver_policy,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait,
            max_ack_pending,
            filter_subject: channel.to_string(),
            inactive_threshold: if durable {
                Duration::ZERO
            } else {
                ORPHAN_CONSUMER_TTL
            },
            ..Default::default()
        };
        js_stream
            .create_consumer(config)
            .await
            .map_err(|e| failed(&e))
    }

    /// Sets a group's consumer to let `total` messages be outstanding.
    async fn resize(&self, stream: &str, consumer_name: &str, total: usize) {
        let Ok(existing) = self
            .js
            .get_consumer_from_stream::<consumer::pull::Config, _, _>(consumer_name, stream)
            .await
        else {
            return;
        };
        let c = existing.cached_info().config.clone();
        let config = consumer::pull::Config {
            durable_name: c.durable_name,
            name: c.name,
            deliver_policy: c.deliver_policy,
            ack_policy: c.ack_policy,
            ack_wait: c.ack_wait,
            max_ack_pending: i64::try_from(total.max(1)).unwrap_or(i64::MAX),
            filter_subject: c.filter_subject,
            inactive_threshold: c.inactive_threshold,
            ..Default::default()
        };
        if let Err(e) = self.js.update_consumer_on_stream(config, stream).await {
            tracing::warn!(
                stream,
                consumer = consumer_name,
                "cannot resize a queue group: {e}"
            );
        }
    }
}

/// A unique token for inboxes and consumer names.
fn unique_id() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..22)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

/// Stores each PubMsg in its channel's stream and answers once it is stored.
async fn publish_task(stan: Arc<Stan>, mut publishes: async_nats::Subscriber) {
    let mut acks = FuturesUnordered::new();
    loop {
        tokio::select! {
            msg = publishes.next() => {
                let Some(msg) = msg else { break };
                if let Some(ack) = publish(&stan, msg).await {
                    acks.push(ack);
                }
            }
            Some(()) = acks.next(), if !acks.is_empty() => {}
            _ = stan.shutdown.cancelled() => break,
        }
    }
}

type PendingAck = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Sends one PubMsg on to its stream; the future answers the publisher.
async fn publish(stan: &Arc<Stan>, msg: async_nats::Message) -> Option<PendingAck> {
    let reply = msg.reply.clone();
    let refuse = |guid: String, error: &str| {
        reply_with(
            stan,
            reply.as_ref(),
            wire::PubAck {
                guid,
                error: error.to_string(),
            },
        );
        None
    };
    let pub_msg = match wire::decode::<wire::PubMsg>(&msg.payload) {
        Ok(m) => m,
        Err(_) => return refuse(String::new(), ERR_INVALID_PUB_REQ),
    };
    stan.in_msgs.fetch_add(1, Ordering::Relaxed);
    stan.in_bytes
        .fetch_add(msg.payload.len() as u64, Ordering::Relaxed);
    if pub_msg.guid.is_empty() || !names::valid_channel(&pub_msg.subject) {
        return refuse(pub_msg.guid, ERR_INVALID_PUB_REQ);
    }
    let known = stan
        .clients
        .lock()
        .get(&pub_msg.client_id)
        .is_some_and(|c| pub_msg.conn_id.is_empty() || c.conn_id == pub_msg.conn_id);
    if !known {
        return refuse(pub_msg.guid, ERR_INVALID_PUB_REQ);
    }
    let stream = match stan.channel(&pub_msg.subject).await {
        Ok(s) => s,
        Err(e) => return refuse(pub_msg.guid, &e),
    };
    let mut headers = async_nats::HeaderMap::new();
    if !pub_msg.reply.is_empty() {
        headers.insert(REPLY_HEADER, pub_msg.reply.as_str());
    }
    let sent = stan
        .js
        .publish_with_headers(pub_msg.subject.clone(), headers, Bytes::from(pub_msg.data))
        .await;
    let stan = stan.clone();
    let guid = pub_msg.guid;
    let channel = pub_msg.subject;
    Some(Box::pin(async move {
        let error = match sent {
            Err(e) => Some(e.to_string()),
            Ok(ack) => match ack.await {
                Ok(ack) => {
                    stan.taken_by_groups(&channel, ack.sequence).await;
                    None
                }
                Err(e) => Some(e.to_string()),
            },
        };
        if let Some(error) = &error {
            tracing::error!(channel, stream, "cannot store a message: {error}");
            // The stream may be gone: look it up again next time.
            stan.channels.lock().remove(&channel);
        }
        reply_now(
            &stan,
            reply.as_ref(),
            wire::PubAck {
                guid,
                error: error.unwrap_or_default(),
            },
        )
        .await;
    }))
}

/// Routes acks to their groups and answers client pings.
async fn ack_task(
    stan: Arc<Stan>,
    mut acks: async_nats::Subscriber,
    mut pings: async_nats::Subscriber,
) {
    let ok = Bytes::from(wire::PingResponse::default().encode_to_vec());
    let unknown = Bytes::from(
        wire::PingResponse {
            error: ERR_PING_UNKNOWN.into(),
        }
        .encode_to_vec(),
    );
    loop {
        tokio::select! {
            msg = acks.next() => {
                let Some(msg) = msg else { break };
                if let Some(passed) = stan.barriers.lock().remove(msg.subject.as_str()) {
                    let _ = passed.send(());
                    continue;
                }
                let Ok(ack) = wire::decode::<wire::Ack>(&msg.payload) else {
                    tracing::error!("Unable to unmarshal Ack");
                    continue;
                };
                let sub = stan.subs.lock().get(msg.subject.as_str()).cloned();
                if let Some(sub) = sub {
                    let _ = sub.commands.send(Command::Ack {
                        ack_inbox: sub.ack_inbox.clone(),
                        sequence: ack.sequence,
                    });
                }
            }
            msg = pings.next() => {
                let Some(msg) = msg else { break };
                let Ok(ping) = wire::decode::<wire::Ping>(&msg.payload) else { continue };
                let Some(reply) = msg.reply else { continue };
                let client = stan
                    .clients
                    .lock()
                    .values()
                    .find(|c| c.conn_id == ping.conn_id)
                    .cloned();
                // As NATS Streaming, a ping says nothing of the heartbeats: a client whose
                // heartbeat inbox is silent is closed even while it pings.
                let answer = match client {
                    Some(_) => ok.clone(),
                    None => unknown.clone(),
                };
                let _ = stan.nc.publish(reply, answer).await;
            }
            _ = stan.shutdown.cancelled() => break,
        }
    }
}
