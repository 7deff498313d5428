//! What streams and consumers need of the server: publishing replies and deliveries, internal
//! subscriptions, interest checks, and JetStream's own settings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::consumer::Consumer;
use super::subjects::matches;
use crate::accounts::Account;
use crate::client::{Client, InternalSink, Reached, Subscription};
use crate::proto::server_op::Delivery;
use crate::server::ServerState;
use crate::store::SyncPolicy;

/// JetStream's settings, from the command line and config file.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    /// Where file streams live: `<store_dir>/jetstream/`.
    pub store_dir: PathBuf,
    /// When a PubAck may be sent for a file stream (see `--sync`).
    pub sync: SyncPolicy,
    /// The account's own limits (none, -1, unless its config block or JWT sets them).
    pub account: crate::options::AccountJetStreamLimits,
    /// The server's `max_memory` and `max_storage`, what all accounts use of them, and what
    /// this account uses.
    pub resources: super::Resources,
    /// Whether a closed connection's unacknowledged deliveries are due for redelivery at once
    /// (`--redeliver_on_disconnect`, an extension).
    pub redeliver_on_disconnect: bool,
    /// Server-wide consumer limits (`jetstream { limits { ... } }`).
    pub limits: crate::options::JetStreamLimits,
    /// The JetStream domain, which PubAcks, stream info and account info report.
    pub domain: Option<String>,
}

/// Longest the broker keeps an ephemeral consumer without interest, unless it says otherwise.
pub(crate) const DEFAULT_INACTIVE_THRESHOLD: Duration = Duration::from_secs(5);

/// The server as JetStream sees it; shared by every stream and consumer.
pub(crate) struct Context {
    server: Weak<ServerState>,
    /// The account whose subject space the streams and consumers live in.
    pub account: Arc<Account>,
    /// Owns the broker's subscriptions in that account.
    owner: Arc<Client>,
    pub config: JetStreamConfig,
    /// The server's name, which stream and consumer info report as the cluster leader.
    pub server_name: String,
    /// Cancelled when the server shuts down: background tasks finish.
    pub shutdown: CancellationToken,
    /// Connection id to the consumers where it holds deliveries or has pull requests waiting,
    /// so that its close reaches them and no others (redeliver on disconnect).
    holders: Mutex<HashMap<u64, Vec<Weak<Consumer>>>>,
    /// Push consumers that found nobody on their deliver subject, by deliver subject: a new
    /// subscription there wakes them at once, as nats-server's interest callback does.
    awaiting_interest: Mutex<HashMap<String, Vec<Weak<Consumer>>>>,
}

impl Context {
    pub fn new(
        server: &Arc<ServerState>,
        account: &Arc<Account>,
        config: JetStreamConfig,
    ) -> Context {
        Context {
            server: Arc::downgrade(server),
            account: account.clone(),
            owner: server.system_client(account),
            server_name: server.info.server_name.clone(),
            config,
            shutdown: CancellationToken::new(),
            holders: Mutex::new(HashMap::new()),
            awaiting_interest: Mutex::new(HashMap::new()),
        }
    }

    /// Sends a reply with no headers to `to`.
    pub fn reply(&self, to: &str, payload: &[u8]) {
        self.send(&Outgoing {
            route: to,
            subject: to,
            reply: None,
            headers: None,
            payload,
        });
    }

    /// The server, unless it is gone.
    pub fn server(&self) -> Option<Arc<ServerState>> {
        self.server.upgrade()
    }

    /// Sends a message from the broker; false when nobody received it.
    pub fn send(&self, msg: &Outgoing<'_>) -> bool {
        self.deliver(msg).any()
    }

    /// Sends a message from the broker and says whom it reached.
    pub fn deliver(&self, msg: &Outgoing<'_>) -> Reached {
        let Some(server) = self.server.upgrade() else {
            return Reached::Nobody;
        };
        let d = Delivery {
            subject: msg.subject.as_bytes(),
            reply: msg.reply.map(str::as_bytes),
            headers: msg.headers,
            payload: msg.payload,
        };
        server.publish_internal(&self.account, msg.route.as_bytes(), &d)
    }

    /// Whether any subscription (of `queue`, when given) matches `subject`.
    pub fn has_interest(&self, subject: &str, queue: Option<&str>) -> bool {
        let m = self.account.sublist.matches(subject.as_bytes());
        match queue {
            None => {
                !m.plain.is_empty()
                    || !m.groups.is_empty()
                    || self
                        .account
                        .links
                        .get()
                        .is_some_and(|links| links.streams_interest(subject))
            }
            Some(q) => m
                .groups
                .iter()
                .any(|g| g.first().and_then(|s| s.queue.as_deref()) == Some(q.as_bytes())),
        }
    }

    /// The one connection subscribed to `subject` (a pull request's reply subject), if exactly
    /// one is and the broker itself is not.
    pub fn sole_subscriber(&self, subject: &str) -> Option<Arc<Client>> {
        let m = self.account.sublist.matches(subject.as_bytes());
        let mut reached = Reached::Nobody;
        for sub in m.plain.iter().chain(m.groups.iter().flatten()) {
            reached.add(sub.internal.is_none().then_some(&sub.client));
        }
        match reached {
            Reached::Connection(client) => Some(client),
            _ => None,
        }
    }

    /// Lists `consumer` as one whose deliveries or pull requests `client` holds; false, listing
    /// nothing, when the connection is closing. (Its close sets `closing` before it takes this
    /// lock in [`Context::connection_closed`], so a consumer either is found by the close or
    /// hears false here.)
    pub fn add_holder(&self, client: &Client, consumer: &Arc<Consumer>) -> bool {
        let mut holders = self.holders.lock();
        if client.is_closing() {
            return false;
        }
        holders
            .entry(client.id)
            .or_default()
            .push(Arc::downgrade(consumer));
        true
    }

    /// Connection `cid` closed: every consumer where it held something hears of it. Call with
    /// no consumer locked.
    pub fn connection_closed(&self, cid: u64) {
        let consumers = self.holders.lock().remove(&cid).unwrap_or_default();
        for consumer in consumers.iter().filter_map(Weak::upgrade) {
            consumer.connection_closed(cid);
        }
    }

    /// Wakes `consumer` when a subscription on `deliver_subject` arrives. Call it before
    /// looking for interest, so that a subscription arriving in between is not missed.
    pub fn await_interest(&self, deliver_subject: &str, consumer: &Arc<Consumer>) {
        let mut awaiting = self.awaiting_interest.lock();
        let list = awaiting.entry(deliver_subject.to_string()).or_default();
        if !list.iter().any(|w| w.as_ptr() == Arc::as_ptr(consumer)) {
            list.push(Arc::downgrade(consumer));
        }
    }

    /// `consumer` no longer waits for interest (it is closing).
    pub fn stop_awaiting_interest(&self, consumer: &Consumer) {
        let mut awaiting = self.awaiting_interest.lock();
        awaiting.retain(|_, list| {
            list.retain(|w| !std::ptr::eq(w.as_ptr(), consumer));
            !list.is_empty()
        });
    }

    /// A client subscribed to `subject` (perhaps a wildcard): the push consumers waiting for
    /// a subscriber on a deliver subject it matches look for work.
    pub fn interest_added(&self, subject: &str) {
        let woken: Vec<Weak<Consumer>> = {
            let mut awaiting = self.awaiting_interest.lock();
            if awaiting.is_empty() {
                return;
            }
            let matching: Vec<String> = awaiting
                .keys()
                .filter(|deliver| matches(deliver, subject))
                .cloned()
                .collect();
            matching
                .iter()
                .flat_map(|deliver| awaiting.remove(deliver).unwrap_or_default())
                .collect()
        };
        for consumer in woken.iter().filter_map(Weak::upgrade) {
            consumer.wake();
        }
    }

    /// Subscribes the broker to `subject`.
    pub fn subscribe(
        &self,
        subject: &str,
        queue: Option<&str>,
        sink: Arc<dyn InternalSink>,
    ) -> Option<Arc<Subscription>> {
        let server = self.server.upgrade()?;
        Some(server.subscribe_internal(&self.owner, subject, queue, sink))
    }

    /// Removes an internal subscription.
    pub fn unsubscribe(&self, sub: &Arc<Subscription>) {
        if let Some(server) = self.server.upgrade() {
            server.unsubscribe(sub);
        }
    }
}

/// A message the broker sends: routed by `route`, shown as `subject`.
pub(crate) struct Outgoing<'a> {
    pub route: &'a str,
    pub subject: &'a str,
    pub reply: Option<&'a str>,
    pub headers: Option<&'a [u8]>,
    pub payload: &'a [u8],
}
