//! One client connection.
//!
//! A connection is two tasks: the reader ([`reader`]) parses operations and routes messages, the
//! writer ([`writer`]) drains the outbound buffer to the socket. Other connections reach this one
//! through its [`Client`] handle: they append deliveries to its outbound buffer and wake its
//! writer once per batch of work.

mod liveness;
mod login;
mod reader;
mod route;
mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::accounts::Account;
use crate::proto::server_op::{self, Delivery};

pub(crate) use reader::{refuse, serve};
pub(crate) use route::{offer, Offer, Reached};

/// Why a connection ended, as `/connz?state=closed` would say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseReason {
    ClientClosed,
    ReadError,
    WriteError,
    SlowConsumerPendingBytes,
    SlowConsumerWriteDeadline,
    StaleConnection,
    AuthenticationTimeout,
    AuthenticationViolation,
    AuthenticationExpired,
    MaxAccountConnectionsExceeded,
    MaxConnectionsExceeded,
    ProtocolViolation,
    MaxPayloadExceeded,
    MaxControlLineExceeded,
    ServerShutdown,
    TlsHandshakeError,
}

impl CloseReason {
    /// nats-server's wording for the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "Client Closed",
            CloseReason::ReadError => "Read Error",
            CloseReason::WriteError => "Write Error",
            CloseReason::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            CloseReason::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            CloseReason::StaleConnection => "Stale Connection",
            CloseReason::AuthenticationTimeout => "Authentication Timeout",
            CloseReason::AuthenticationViolation => "Authentication Failure",
            CloseReason::AuthenticationExpired => "Authentication Expired",
            CloseReason::MaxAccountConnectionsExceeded => "Maximum Account Connections Exceeded",
            CloseReason::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            CloseReason::ProtocolViolation => "Protocol Violation",
            CloseReason::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            CloseReason::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            CloseReason::ServerShutdown => "Server Shutdown",
            CloseReason::TlsHandshakeError => "TLS Handshake Failure",
        }
    }
}

/// What a client told us about itself in CONNECT.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientMeta {
    pub name: String,
    pub lang: String,
    pub version: String,
    /// The user logged in as: name, nkey or JWT subject; empty without users.
    pub user: String,
}

/// Bytes waiting to be written to a client, and counters kept under the same lock.
#[derive(Default)]
struct Outbound {
    buf: Vec<u8>,
    in_flight: usize,
    out_msgs: u64,
    out_bytes: u64,
}

/// The handle other connections hold to deliver to this one.
pub(crate) struct Client {
    pub id: u64,
    pub addr: SocketAddr,
    pub started: SystemTime,
    out: Mutex<Outbound>,
    wake_writer: Notify,
    drained: Notify,
    closed: CancellationToken,
    /// Set with `closed`; cheaper to read on the delivery path than the token.
    closing: AtomicBool,
    close_reason: Mutex<Option<CloseReason>>,
    headers: AtomicBool,
    /// The `protocol` of the client's CONNECT; -1 until CONNECT arrives.
    pub protocol: std::sync::atomic::AtomicI64,
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub last_activity: AtomicU64,
    pub subs: Mutex<HashMap<Box<[u8]>, Arc<Subscription>>>,
    pub meta: Mutex<ClientMeta>,
    /// The account the client's subscriptions are in: `$G` until CONNECT says otherwise.
    account: Mutex<Arc<Account>>,
    /// The connection's TLS, once its handshake is done.
    tls: std::sync::OnceLock<crate::tls::Session>,
    /// Told by a configuration reload: the reader then checks the login again and takes the
    /// new limits.
    pub reloaded: Notify,
}

/// One subscription of one client.
pub(crate) struct Subscription {
    pub client: Arc<Client>,
    pub sid: Box<[u8]>,
    pub subject: Box<[u8]>,
    pub queue: Option<Box<[u8]>>,
    /// Auto-unsubscribe after this many deliveries; 0 means never.
    pub max: AtomicU64,
    pub delivered: AtomicU64,
    /// Denied subjects a wildcard subscription must not receive, from the user's permissions.
    pub deny: Option<Arc<crate::permissions::SubjectSet>>,
    /// Set on the broker's own subscriptions (JetStream): messages go here, not to a socket.
    pub internal: Option<Arc<dyn InternalSink>>,
}

/// Receives the messages of one of the broker's own subscriptions.
pub(crate) trait InternalSink: Send + Sync {
    /// Handles one message. It runs on the publisher's task with no lock held, so it must not
    /// block for long; slow work goes to a task of its own.
    fn receive(&self, msg: &Delivery<'_>);

    /// Handles one message and says whether it reached anyone: a sink that passes messages
    /// on (a service import) can fail to, and then the publisher may hear "no responders".
    fn forward(&self, msg: &Delivery<'_>) -> bool {
        self.receive(msg);
        true
    }
}

/// What `Client::deliver` did.
pub(crate) enum Delivered {
    /// Queued for the writer, which now has this many bytes to write.
    Queued { pending: usize },
    /// The client is closing, or was just cut off as a slow consumer.
    Dropped,
}

impl Client {
    /// A client in `account` (which must have room: `$G` always has).
    pub fn new(id: u64, addr: SocketAddr, account: Arc<Account>) -> Client {
        account.join();
        Self::uncounted(id, addr, account)
    }

    /// A client without a socket that owns the broker's own subscriptions in `account`
    /// (JetStream, imports): as on nats-server, it does not count against the account's
    /// connection limit.
    pub fn internal(account: Arc<Account>) -> Client {
        Self::uncounted(0, SocketAddr::from(([0, 0, 0, 0], 0)), account)
    }

    fn uncounted(id: u64, addr: SocketAddr, account: Arc<Account>) -> Client {
        Client {
            id,
            addr,
            started: SystemTime::now(),
            out: Mutex::new(Outbound::default()),
            wake_writer: Notify::new(),
            drained: Notify::new(),
            closed: CancellationToken::new(),
            closing: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            headers: AtomicBool::new(false),
            protocol: std::sync::atomic::AtomicI64::new(-1),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            last_activity: AtomicU64::new(unix_nanos()),
            subs: Mutex::new(HashMap::new()),
            meta: Mutex::new(ClientMeta::default()),
            account: Mutex::new(account),
            tls: std::sync::OnceLock::new(),
            reloaded: Notify::new(),
        }
    }

    /// Records the connection's TLS once its handshake is done.
    pub fn set_tls(&self, session: crate::tls::Session) {
        let _ = self.tls.set(session);
    }

    /// The connection's TLS, if it has any.
    pub fn tls(&self) -> Option<&crate::tls::Session> {
        self.tls.get()
    }

    /// The account the client is in.
    pub fn account(&self) -> Arc<Account> {
        self.account.lock().clone()
    }

    /// Puts the client in `account`, moving its subscriptions there (a client that logs in
    /// again as someone else keeps its subscriptions, in its new account); `false` when the
    /// account is at its connection limit.
    pub fn move_to(&self, account: &Arc<Account>) -> bool {
        let mut current = self.account.lock();
        if Arc::ptr_eq(&current, account) {
            return true;
        }
        if !account.join() {
            return false;
        }
        current.leave();
        for sub in self.subs.lock().values() {
            let queue = sub.queue.as_deref();
            current.sublist.remove(&sub.subject, queue, sub);
            account.sublist.insert(&sub.subject, queue, sub.clone());
        }
        *current = account.clone();
        true
    }

    /// Appends a message for `sub`; cuts the client off when it has more than `max_pending`
    /// bytes waiting.
    pub fn deliver(&self, sub: &Subscription, d: &Delivery<'_>, max_pending: usize) -> Delivered {
        let mut out = self.out.lock();
        if self.closing.load(Ordering::Relaxed) {
            return Delivered::Dropped;
        }
        if out.buf.len() + out.in_flight > max_pending {
            drop(out);
            self.close(CloseReason::SlowConsumerPendingBytes);
            return Delivered::Dropped;
        }
        let n = server_op::write_msg(
            &mut out.buf,
            d,
            &sub.sid,
            self.headers.load(Ordering::Relaxed),
        );
        out.out_msgs += 1;
        out.out_bytes += n as u64;
        Delivered::Queued {
            pending: out.buf.len() + out.in_flight,
        }
    }

    /// Waits until the writer has written something, or `bound` passes: a publisher feeding a
    /// client that is falling behind gives it a moment to catch up before more arrives.
    pub async fn wait_drained(&self, bound: std::time::Duration) {
        let _ = tokio::time::timeout(bound, self.drained.notified()).await;
    }

    /// Appends raw protocol bytes (INFO, PONG, +OK, -ERR, a 503 status).
    pub fn queue_proto(&self, f: impl FnOnce(&mut Vec<u8>)) {
        f(&mut self.out.lock().buf);
    }

    /// Wakes the writer to flush what is queued.
    pub fn flush_soon(&self) {
        self.wake_writer.notify_one();
    }

    /// Starts closing the connection; the first reason given is kept.
    pub fn close(&self, reason: CloseReason) {
        let mut slot = self.close_reason.lock();
        if slot.is_none() {
            *slot = Some(reason);
        }
        drop(slot);
        self.closing.store(true, Ordering::Relaxed);
        self.closed.cancel();
        self.wake_writer.notify_one();
    }

    /// Whether the connection is closing (or closed).
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        *self.close_reason.lock()
    }

    /// Bytes queued and not yet written.
    pub fn pending_bytes(&self) -> usize {
        let out = self.out.lock();
        out.buf.len() + out.in_flight
    }

    /// Messages and bytes delivered to this client.
    pub fn out_counts(&self) -> (u64, u64) {
        let out = self.out.lock();
        (out.out_msgs, out.out_bytes)
    }

    pub(crate) fn set_headers(&self, on: bool) {
        self.headers.store(on, Ordering::Relaxed);
    }

    pub(crate) fn touch(&self) {
        self.last_activity.store(unix_nanos(), Ordering::Relaxed);
    }
}

/// Nanoseconds since the Unix epoch.
pub(crate) fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
