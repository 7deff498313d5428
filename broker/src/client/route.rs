//! Routing: from one client's PUB to every matching subscription, and its SUB/UNSUB.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Client, Delivered, Subscription};
use crate::accounts::Account;
use crate::proto::server_op::{self, Delivery};
use crate::proto::subject::{is_valid_queue, is_valid_subject};
use crate::proto::Publish;
use crate::server::ServerState;
use crate::sublist::Matches;

/// Subjects whose matches one connection remembers between sublist changes.
const MATCH_CACHE_SIZE: usize = 256;
/// The 503 status nats-server sends a requester when nobody listens.
const NO_RESPONDERS_STATUS: &[u8] = b"NATS/1.0 503\r\n\r\n";

/// A `SUB` that passed the permission check.
pub(super) struct NewSub<'a> {
    pub subject: &'a [u8],
    pub queue: Option<&'a [u8]>,
    pub sid: &'a [u8],
    /// See [`Subscription::deny`].
    pub deny: Option<Arc<crate::permissions::SubjectSet>>,
}

/// A match result shared between a connection's caches.
type SharedMatches = Arc<Matches<Subscription>>;

/// A connection's routing state: its match cache, its options, and the clients it must wake.
pub(super) struct Router {
    state: Arc<ServerState>,
    client: Arc<Client>,
    /// The client's account: where its publications are routed and its subscriptions live.
    account: Arc<Account>,
    echo: bool,
    no_responders: bool,
    cache: HashMap<Box<[u8]>, SharedMatches>,
    cache_generation: u64,
    /// The last subject looked up: streams of messages often repeat one subject.
    last: Option<(Box<[u8]>, SharedMatches)>,
    to_flush: Vec<Arc<Client>>,
    /// The client furthest behind that passed three quarters of `max_pending` in this batch.
    behind: Option<(usize, Arc<Client>)>,
    in_msgs: u64,
    in_bytes: u64,
    out_msgs: u64,
    out_bytes: u64,
}

impl Router {
    pub fn new(state: Arc<ServerState>, client: Arc<Client>) -> Router {
        Router {
            state,
            account: client.account(),
            client,
            echo: true,
            no_responders: false,
            cache: HashMap::new(),
            cache_generation: 0,
            last: None,
            to_flush: Vec::new(),
            behind: None,
            in_msgs: 0,
            in_bytes: 0,
            out_msgs: 0,
            out_bytes: 0,
        }
    }

    /// Applies the CONNECT options that shape routing.
    pub fn configure(&mut self, echo: bool, no_responders: bool) {
        self.echo = echo;
        self.no_responders = no_responders;
    }

    /// Moves the connection to `account` (after CONNECT logged it in); `false` when the
    /// account is at its connection limit.
    pub fn set_account(&mut self, account: &Arc<Account>) -> bool {
        if !self.client.move_to(account) {
            return false;
        }
        if !Arc::ptr_eq(&self.account, account) {
            self.account = account.clone();
            self.cache.clear();
            self.last = None;
        }
        true
    }

    /// Routes one published message.
    pub fn publish(&mut self, p: &Publish<'_>) {
        self.in_msgs += 1;
        self.in_bytes += p.message.len() as u64;
        let mapped = self.domain_api_subject(p.subject);
        let subject = mapped.as_deref().unwrap_or(p.subject);
        let matches = self.lookup(subject);
        let (headers, payload) = match p.header_len {
            Some(h) => (Some(&p.message[..h]), &p.message[h..]),
            None => (None, p.message),
        };
        let d = Delivery {
            subject,
            reply: p.reply,
            headers,
            payload,
        };
        let mut delivered = false;
        for sub in &matches.plain {
            delivered |= self.deliver(sub, &d);
        }
        for group in &matches.groups {
            let start = fastrand::usize(..group.len());
            for i in 0..group.len() {
                if self.deliver(&group[(start + i) % group.len()], &d) {
                    delivered = true;
                    break;
                }
            }
        }
        if let Some(links) = self.account.links.get() {
            delivered |= links.route_streams(&self.state, &d);
        }
        if !delivered && self.no_responders {
            if let Some(reply) = p.reply {
                self.send_no_responders(reply);
            }
        }
    }

    /// `$JS.<domain>.API.<rest>` as `$JS.API.<rest>` when the server has that JetStream domain:
    /// nats-server maps the domain's API subjects onto the local API this way.
    fn domain_api_subject(&self, subject: &[u8]) -> Option<Vec<u8>> {
        let domain = self.state.opts.jetstream_domain.as_deref()?;
        let rest = subject
            .strip_prefix(b"$JS.")?
            .strip_prefix(domain.as_bytes())?
            .strip_prefix(b".API.")?;
        Some([&b"$JS.API."[..], rest].concat())
    }

    fn deliver(&mut self, sub: &Arc<Subscription>, d: &Delivery<'_>) -> bool {
        if !self.echo && sub.client.id == self.client.id {
            return false;
        }
        match offer(&self.state, sub, d) {
            Offer::Refused => return false,
            Offer::Internal => {}
            Offer::Queued { pending } => {
                if pending > self.state.opts.max_pending / 4 * 3
                    && self.behind.as_ref().is_none_or(|(most, _)| pending > *most)
                {
                    self.behind = Some((pending, sub.client.clone()));
                }
                self.mark_flush(&sub.client);
            }
        }
        self.out_msgs += 1;
        self.out_bytes += (d.headers.map_or(0, <[u8]>::len) + d.payload.len()) as u64;
        true
    }

    fn send_no_responders(&mut self, reply: &[u8]) {
        let own = self.account.sublist.matches(reply);
        let Some(sub) = own.plain.iter().find(|s| s.client.id == self.client.id) else {
            return;
        };
        let d = Delivery {
            subject: reply,
            reply: None,
            headers: Some(NO_RESPONDERS_STATUS),
            payload: b"",
        };
        self.client.queue_proto(|out| {
            server_op::write_msg(out, &d, &sub.sid, true);
        });
        self.mark_own_flush();
    }

    fn lookup(&mut self, subject: &[u8]) -> SharedMatches {
        let generation = self.account.sublist.generation();
        if generation != self.cache_generation {
            self.cache.clear();
            self.last = None;
            self.cache_generation = generation;
        }
        if let Some((last, m)) = &self.last {
            if **last == *subject {
                return m.clone();
            }
        }
        let m = match self.cache.get(subject) {
            Some(m) => m.clone(),
            None => {
                let m = Arc::new(self.account.sublist.matches(subject));
                if self.cache.len() >= MATCH_CACHE_SIZE {
                    self.cache.clear();
                }
                self.cache.insert(subject.into(), m.clone());
                m
            }
        };
        self.last = Some((subject.into(), m.clone()));
        m
    }

    /// `SUB`: validates and registers a subscription; a repeated sid keeps the first one.
    pub fn subscribe(&mut self, sub: NewSub<'_>, verbose: bool) {
        let NewSub {
            subject,
            queue,
            sid,
            deny,
        } = sub;
        if !is_valid_subject(subject) || queue.is_some_and(|q| !is_valid_queue(q)) {
            self.client
                .queue_proto(|out| server_op::write_err(out, "Invalid Subject"));
            self.mark_own_flush();
            return;
        }
        let max_subs = self.state.opts.max_subscriptions;
        let mut subs = self.client.subs.lock();
        if max_subs > 0 && subs.len() >= max_subs && !subs.contains_key(sid) {
            drop(subs);
            self.client
                .queue_proto(|out| server_op::write_err(out, "maximum subscriptions exceeded"));
            self.mark_own_flush();
            return;
        }
        if !subs.contains_key(sid) {
            let sub = Arc::new(Subscription {
                client: self.client.clone(),
                sid: sid.into(),
                subject: subject.into(),
                queue: queue.map(Into::into),
                max: Default::default(),
                delivered: Default::default(),
                deny,
                internal: None,
            });
            subs.insert(sid.into(), sub.clone());
            self.account.sublist.insert(subject, queue, sub);
        }
        drop(subs);
        if let (Some(js), Ok(subject)) = (self.state.jetstream.get(), std::str::from_utf8(subject))
        {
            // A push consumer waiting for a subscriber on its deliver subject starts at once.
            js.interest_added(&self.account.name, subject);
        }
        if verbose {
            self.client
                .queue_proto(|out| out.extend_from_slice(server_op::OK));
            self.mark_own_flush();
        }
    }

    /// `UNSUB`: removes now, or after `max` deliveries in all.
    pub fn unsubscribe(&mut self, sid: &[u8], max: Option<u64>) {
        let Some(sub) = self.client.subs.lock().get(sid).cloned() else {
            return;
        };
        match max {
            Some(max) if max > sub.delivered.load(Ordering::Relaxed) => {
                sub.max.store(max, Ordering::Relaxed);
            }
            _ => self.state.unsubscribe(&sub),
        }
    }

    fn mark_flush(&mut self, client: &Arc<Client>) {
        if self.to_flush.last().is_none_or(|c| c.id != client.id) {
            self.to_flush.push(client.clone());
        }
    }

    /// Makes sure this connection's own writer runs at the end of the batch.
    pub fn mark_own_flush(&mut self) {
        let own = self.client.clone();
        self.mark_flush(&own);
    }

    /// The client that fell furthest behind in this batch, if any passed the stall threshold.
    pub fn take_behind(&mut self) -> Option<Arc<Client>> {
        self.behind.take().map(|(_, client)| client)
    }

    /// Wakes every writer that got bytes during this batch and folds counters into the stats.
    pub fn finish_batch(&mut self) {
        for client in self.to_flush.drain(..) {
            client.flush_soon();
        }
        let stats = &self.state.stats;
        if self.in_msgs > 0 {
            let (msgs, bytes) = (
                std::mem::take(&mut self.in_msgs),
                std::mem::take(&mut self.in_bytes),
            );
            stats.in_msgs.fetch_add(msgs, Ordering::Relaxed);
            stats.in_bytes.fetch_add(bytes, Ordering::Relaxed);
            self.client.in_msgs.fetch_add(msgs, Ordering::Relaxed);
            self.client.in_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        if self.out_msgs > 0 {
            stats
                .out_msgs
                .fetch_add(std::mem::take(&mut self.out_msgs), Ordering::Relaxed);
            stats
                .out_bytes
                .fetch_add(std::mem::take(&mut self.out_bytes), Ordering::Relaxed);
        }
    }
}

/// What offering one message to one subscription did.
pub(crate) enum Offer {
    /// Not delivered: a denied subject, past the auto-unsubscribe count, or a client that is
    /// closing (or was just cut off as a slow consumer).
    Refused,
    /// Handed to one of the broker's own subscriptions.
    Internal,
    /// Queued for the subscriber's connection, which now has this many bytes to write.
    Queued { pending: usize },
}

/// Offers `d` to `sub`: the steps every delivery shares, whoever publishes. It checks the
/// subscriber's permissions and auto-unsubscribe count, hands the message to an internal sink or
/// to the client's outbound buffer, and removes the subscription when it reached its count. The
/// caller wakes the writer and counts the message.
pub(crate) fn offer(state: &ServerState, sub: &Arc<Subscription>, d: &Delivery<'_>) -> Offer {
    if sub
        .deny
        .as_ref()
        .is_some_and(|deny| crate::permissions::matches(deny, d.subject))
    {
        return Offer::Refused;
    }
    if let Some(sink) = &sub.internal {
        return match sink.forward(d) {
            true => Offer::Internal,
            false => Offer::Refused,
        };
    }
    let max = sub.max.load(Ordering::Relaxed);
    let n = sub.delivered.fetch_add(1, Ordering::Relaxed) + 1;
    if max > 0 && n > max {
        return Offer::Refused;
    }
    let Delivered::Queued { pending } = sub.client.deliver(sub, d, state.opts.max_pending) else {
        return Offer::Refused;
    };
    if max > 0 && n == max {
        state.unsubscribe(sub);
    }
    Offer::Queued { pending }
}

/// Whom a message from the broker itself reached: JetStream learns from it which connection
/// holds a delivery (see `--redeliver_on_disconnect`).
#[derive(Default)]
pub(crate) enum Reached {
    /// Nobody took it.
    #[default]
    Nobody,
    /// Exactly one connection took it (through one or more of its subscriptions).
    Connection(Arc<Client>),
    /// Several connections, or one of the broker's own subscriptions, took it.
    Several,
}

impl Reached {
    /// Whether anyone took it.
    pub fn any(&self) -> bool {
        !matches!(self, Reached::Nobody)
    }

    /// Adds one taker: a connection, or `None` for the broker's own subscription.
    pub fn add(&mut self, taker: Option<&Arc<Client>>) {
        *self = match (std::mem::take(self), taker) {
            (Reached::Nobody, Some(client)) => Reached::Connection(client.clone()),
            (Reached::Connection(c), Some(client)) if c.id == client.id => Reached::Connection(c),
            _ => Reached::Several,
        };
    }
}
