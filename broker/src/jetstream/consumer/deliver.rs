//! The consumer's task and the paths into it: pull requests, acks, and each round of work
//! (timers, recounts, deliveries, heartbeats, inactivity).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::pull::{status, PullRequest};
use super::state::AckKind;
use super::{ack, held};
use super::{AckPolicy, Consumer, ConsumerInner};
use crate::jetstream::context::Outgoing;
use crate::jetstream::headers::HeaderBlock;
use crate::jetstream::stream::{Retention, Stream};
use crate::jetstream::time::now_nanos;
use crate::proto::server_op::Delivery;
use crate::store::StoredMsg;

/// A durable consumer's state is written at most this often (nanoseconds), and on close.
pub(super) const PERSIST_EVERY: i64 = 50_000_000;
/// Longest a consumer task sleeps with nothing due.
const IDLE: i64 = 1_000_000_000;
/// Bytes delivered between flow control requests of a push consumer.
const FLOW_CONTROL_BYTES: u64 = 1024 * 1024;
/// Deliveries in one round before the task yields to others.
const ROUND: usize = 512;

/// Runs the consumer until it is closed.
pub(super) async fn run(consumer: Arc<Consumer>) {
    loop {
        let next = round(&consumer);
        let wait = Duration::from_nanos(u64::try_from(next - now_nanos()).unwrap_or(0));
        tokio::select! {
            _ = consumer.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = consumer.closed.cancelled() => return,
        }
    }
}

/// One round of work; returns when the next one is due (Unix nanoseconds).
fn round(consumer: &Arc<Consumer>) -> i64 {
    let Some(stream) = consumer.stream.upgrade() else {
        return now_nanos() + IDLE;
    };
    let now = now_nanos();
    let mut inner = consumer.inner.lock();
    if consumer.recount.load(Ordering::Relaxed) {
        let store_lock = stream.inner.lock();
        let first = store_lock.store.state().first_seq;
        inner.acks.forget_below(first);
        inner.holders.release_below(first);
        consumer.set_pending_from(&store_lock.store, &inner.acks);
    }
    inner.acks.expire(now);
    expire_requests(consumer, &mut inner, now);
    let more = deliver(consumer, &stream, &mut inner, now);
    heartbeats(consumer, &mut inner, now);
    let mut next = now + IDLE;
    if more {
        consumer.wake.notify_one();
    }
    if let Some(d) = inner.acks.next_deadline() {
        next = next.min(d);
    }
    for r in &inner.waiting {
        next = next.min(r.expires.unwrap_or(i64::MAX));
        next = next.min(r.next_heartbeat.unwrap_or(i64::MAX));
    }
    if let Some(hb) = inner.config.heartbeat() {
        next = next.min(inner.last_sent + hb.as_nanos() as i64);
    }
    let inactive = check_inactive(consumer, &mut inner, now);
    if let Some(at) = inactive {
        next = next.min(at);
    }
    let persist_due = inner.dirty.then(|| inner.last_persist + PERSIST_EVERY);
    drop(inner);
    if let Some(at) = persist_due {
        if at <= now {
            consumer.persist_soon();
        } else {
            next = next.min(at);
        }
    }
    if inactive == Some(i64::MIN) {
        expire_consumer(consumer, &stream);
    }
    next.max(now + 1_000_000)
}

/// Sends 408 to pull requests past their expiry, and drops those whose requester left.
fn expire_requests(consumer: &Consumer, inner: &mut ConsumerInner, now: i64) {
    inner.waiting.retain(|r| {
        if r.expires.is_some_and(|at| at <= now) {
            consumer.send_status(&r.reply, &r.timeout_status());
            return false;
        }
        true
    });
}

/// Delivers what it can; true when it stopped with more to do.
fn deliver(consumer: &Arc<Consumer>, stream: &Stream, inner: &mut ConsumerInner, now: i64) -> bool {
    let push = inner.config.is_push();
    if push && !has_push_interest(consumer, inner) {
        // Registered first, then checked again: a subscription in between wakes the task.
        consumer
            .ctx
            .await_interest(&inner.config.deliver_subject, consumer);
        if !has_push_interest(consumer, inner) {
            return false;
        }
    }
    for _ in 0..ROUND {
        if !push {
            // As nats-server: a request whose requester left (nobody subscribes to its reply
            // subject any more) is dropped rather than handed a message nobody receives.
            while inner
                .waiting
                .front()
                .is_some_and(|r| !consumer.ctx.has_interest(&r.reply, None))
            {
                inner.waiting.pop_front();
            }
            if inner.waiting.is_empty() {
                return false;
            }
        }
        if push && inner.flow_control.is_some() {
            return false;
        }
        let Some((msg, redelivery)) = next_message(consumer, stream, inner) else {
            end_of_stream(consumer, inner);
            return false;
        };
        if !send(consumer, inner, &msg, redelivery, now) {
            return false;
        }
    }
    true
}

/// The next message to deliver: a redelivery first, then a new one within max_ack_pending.
fn next_message(
    consumer: &Consumer,
    stream: &Stream,
    inner: &mut ConsumerInner,
) -> Option<(StoredMsg, bool)> {
    let max_deliver = inner.config.max_deliver;
    while let Some(seq) = inner.acks.redeliver.pop_first() {
        let deliveries = inner.acks.pending.get(&seq).map_or(0, |p| p.deliveries);
        if deliveries == 0 {
            continue;
        }
        if max_deliver > 0 && deliveries >= max_deliver as u64 {
            inner.acks.give_up(seq);
            inner.holders.release(seq);
            inner.dirty = true;
            continue;
        }
        match stream.get(seq) {
            Ok(Some(msg)) => return Some((msg, true)),
            _ => {
                inner.acks.forget(seq);
                inner.holders.release(seq);
                inner.dirty = true;
            }
        }
    }
    let max_pending = inner.config.max_ack_pending;
    let full = inner.config.ack_policy != AckPolicy::None
        && max_pending > 0
        && inner.acks.pending.len() as i64 >= max_pending;
    while !full && !inner.acks.start_list.is_empty() {
        let seq = inner.acks.start_list.remove(0);
        if inner.acks.start_list.is_empty() {
            inner.acks.next_sseq = inner.acks.next_sseq.max(inner.acks.start_list_end + 1);
        }
        if let Ok(Some(msg)) = stream.get(seq) {
            return Some((msg, false));
        }
    }
    if inner.config.ack_policy != AckPolicy::None
        && max_pending > 0
        && inner.acks.pending.len() as i64 >= max_pending
    {
        return None;
    }
    let filters = consumer.filters.read().clone();
    let store = &stream.inner.lock().store;
    let start = inner.acks.next_sseq;
    let found = if filters.len() <= 1 {
        store.get_next(start, filters.first().map(String::as_str))
    } else {
        let mut best: Option<StoredMsg> = None;
        for f in &filters {
            if let Ok(Some(m)) = store.get_next(start, Some(f)) {
                if best.as_ref().is_none_or(|b| m.seq < b.seq) {
                    best = Some(m);
                }
            }
        }
        Ok(best)
    };
    match found {
        Ok(found) => found.map(|m| (m, false)),
        Err(e) => {
            tracing::error!(consumer = %consumer.name, "reading the stream: {e}");
            None
        }
    }
}

/// Sends one message to the push subject or the first pull request; false when it could not
/// be delivered (and nothing was recorded).
fn send(
    consumer: &Arc<Consumer>,
    inner: &mut ConsumerInner,
    msg: &StoredMsg,
    redelivery: bool,
    now: i64,
) -> bool {
    // The delivery's identity is known before anything is recorded: nats-server counts the
    // ack reply subject in a pull request's max_bytes.
    let deliveries = if redelivery {
        match inner.acks.pending.get(&msg.seq) {
            Some(p) => p.deliveries + 1,
            None => return true,
        }
    } else {
        1
    };
    let pending_after =
        (consumer.num_pending.load(Ordering::Relaxed) - i64::from(!redelivery)).max(0) as u64;
    let reply = ack::reply_subject(
        &consumer.stream_name,
        &consumer.name,
        deliveries,
        msg.seq,
        inner.acks.delivered.consumer_seq + 1,
        msg.timestamp,
        pending_after,
    );
    let headers_only;
    let (headers, payload): (Option<&[u8]>, &[u8]) = if inner.config.headers_only {
        let base = msg
            .headers
            .as_deref()
            .map_or(HeaderBlock::new(), HeaderBlock::extend);
        headers_only = base.add("Nats-Msg-Size", msg.payload.len()).finish();
        (Some(&headers_only), b"")
    } else {
        (msg.headers.as_deref(), &msg.payload)
    };
    let size =
        (msg.subject.len() + reply.len() + headers.map_or(0, <[u8]>::len) + payload.len()) as u64;
    let route = if inner.config.is_push() {
        inner.config.deliver_subject.clone()
    } else {
        let Some(request) = inner.waiting.front_mut() else {
            return false;
        };
        if request.max_bytes > 0 {
            if size > request.max_bytes {
                let r = inner.waiting.pop_front().expect("front exists");
                consumer.send_status(
                    &r.reply,
                    &r.pending_status(409, "Message Size Exceeds MaxBytes"),
                );
                if redelivery {
                    inner.acks.redeliver.insert(msg.seq);
                }
                return true;
            }
            // As nats-server: a request whose bytes run out exactly ends with this message.
            request.max_bytes -= size;
            if request.max_bytes == 0 {
                request.batch = 1;
            }
        }
        request.reply.clone()
    };
    let track = inner.config.ack_policy != AckPolicy::None;
    let deadline = now.saturating_add(inner.config.redelivery_delay(1).as_nanos() as i64);
    let cseq = if redelivery {
        let delay = inner.config.redelivery_delay(deliveries).as_nanos() as i64;
        match inner.acks.deliver_again(msg.seq, now.saturating_add(delay)) {
            Some((cseq, _)) => cseq,
            None => return true,
        }
    } else {
        inner.acks.deliver_new(msg.seq, track, deadline)
    };
    let reached = consumer.ctx.deliver(&Outgoing {
        route: &route,
        subject: &msg.subject,
        reply: Some(&reply),
        headers,
        payload,
    });
    let delivered = reached.any();
    if track && held::enabled(consumer) {
        held::record(consumer, inner, (msg.seq, cseq), &reached);
    }
    if !redelivery {
        consumer.num_pending.fetch_sub(1, Ordering::Relaxed);
    }
    inner.dirty = true;
    inner.last_sent = now;
    inner.last_delivered = now;
    if inner.config.is_push() {
        inner.fc_bytes += size;
        if inner.config.flow_control && inner.fc_bytes >= FLOW_CONTROL_BYTES {
            request_flow_control(consumer, inner);
        }
    } else if let Some(r) = inner.waiting.front_mut() {
        r.batch = r.batch.saturating_sub(1);
        r.delivered += 1;
        if r.batch == 0 || !delivered {
            inner.waiting.pop_front();
        }
    }
    if !delivered && inner.config.is_push() {
        // Nobody took it: it waits for redelivery like any unacknowledged message.
        return false;
    }
    true
}

/// Forgets the pull requests whose reply subject nobody listens on any more.
pub(super) fn drop_abandoned_requests(consumer: &Consumer, inner: &mut ConsumerInner) {
    inner
        .waiting
        .retain(|r| consumer.ctx.has_interest(&r.reply, None));
}

/// No message left: no_wait requests that got something end with 408, as nats-server.
fn end_of_stream(consumer: &Consumer, inner: &mut ConsumerInner) {
    inner.waiting.retain(|r| {
        if r.no_wait && r.delivered > 0 {
            consumer.send_status(&r.reply, &r.timeout_status());
            return false;
        }
        if r.no_wait && r.expires.is_none() {
            consumer.send_status(&r.reply, &status(404, "No Messages"));
            return false;
        }
        true
    });
}

fn has_push_interest(consumer: &Consumer, inner: &ConsumerInner) -> bool {
    let group = Some(inner.config.deliver_group.as_str()).filter(|g| !g.is_empty());
    consumer
        .ctx
        .has_interest(&inner.config.deliver_subject, group)
}

fn request_flow_control(consumer: &Consumer, inner: &mut ConsumerInner) {
    let reply = format!(
        "$JS.FC.{}.{}.{}",
        consumer.stream_name,
        consumer.name,
        fastrand::u32(..)
    );
    consumer.ctx.send(&Outgoing {
        route: &inner.config.deliver_subject,
        subject: &inner.config.deliver_subject,
        reply: Some(&reply),
        headers: Some(&status(100, "FlowControl Request")),
        payload: b"",
    });
    inner.flow_control = Some(reply);
    inner.fc_bytes = 0;
}

/// Idle heartbeats: to the deliver subject of a push consumer, to pull requests that asked.
fn heartbeats(consumer: &Consumer, inner: &mut ConsumerInner, now: i64) {
    let block = HeaderBlock::status(100, "Idle Heartbeat")
        .add("Nats-Last-Consumer", inner.acks.delivered.consumer_seq)
        .add("Nats-Last-Stream", inner.acks.delivered.stream_seq);
    for r in inner.waiting.iter_mut() {
        if let Some(at) = r.next_heartbeat.filter(|at| *at <= now) {
            consumer.send_status(&r.reply, &block.clone().finish());
            r.next_heartbeat = Some(at.max(now) + r.heartbeat);
        }
    }
    let Some(hb) = inner.config.heartbeat() else {
        return;
    };
    if now - inner.last_sent < hb.as_nanos() as i64 || !has_push_interest(consumer, inner) {
        return;
    }
    let block = match &inner.flow_control {
        Some(fc) => block.add("Nats-Consumer-Stalled", fc),
        None => block,
    };
    let subject = inner.config.deliver_subject.clone();
    consumer.send_status(&subject, &block.finish());
    inner.last_sent = now;
}

/// The inactive threshold: `Some(i64::MIN)` when the consumer should go now, `Some(at)` when
/// it will unless interest returns.
fn check_inactive(consumer: &Consumer, inner: &mut ConsumerInner, now: i64) -> Option<i64> {
    let threshold = inner.config.inactive_threshold()?.as_nanos() as i64;
    let active = if inner.config.is_push() {
        has_push_interest(consumer, inner)
    } else {
        !inner.waiting.is_empty()
    };
    if active {
        inner.inactive_since = None;
        return None;
    }
    let since = *inner.inactive_since.get_or_insert(now);
    if now - since >= threshold {
        Some(i64::MIN)
    } else {
        Some(since + threshold)
    }
}

fn expire_consumer(consumer: &Arc<Consumer>, stream: &Arc<Stream>) {
    tracing::debug!(consumer = %consumer.name, stream = %stream.name, "inactive threshold passed");
    crate::jetstream::api::consumers::remove(stream, &consumer.name);
}

/// A pull request: checked against the consumer's limits, then queued.
pub(super) fn pull_request(consumer: &Arc<Consumer>, reply: &str, body: &[u8]) {
    let now = now_nanos();
    let owner = held::enabled(consumer)
        .then(|| consumer.ctx.sole_subscriber(reply))
        .flatten();
    let mut inner = consumer.inner.lock();
    if inner.config.is_push() {
        drop(inner);
        consumer.send_status(reply, &status(409, "Consumer is push based"));
        return;
    }
    let refusal = match PullRequest::parse(reply, body, now) {
        Err(e) => Some(status(400, &format!("Bad Request - {e}"))),
        Ok(r) => match owner {
            // Its connection is closing: nobody is left to answer.
            Some(client) if !held::admit(consumer, &mut inner, &client) => return,
            Some(client) => check_request(
                consumer,
                &mut inner,
                PullRequest {
                    owner: Some(client.id),
                    ..r
                },
                now,
            ),
            None => check_request(consumer, &mut inner, r, now),
        },
    };
    drop(inner);
    match refusal {
        Some(s) => consumer.send_status(reply, &s),
        None => consumer.wake(),
    }
}

/// Queues `r`, or returns the status that refuses it.
fn check_request(
    consumer: &Consumer,
    inner: &mut ConsumerInner,
    r: PullRequest,
    now: i64,
) -> Option<Vec<u8>> {
    let c = &inner.config;
    if c.max_batch > 0 && r.batch > c.max_batch as u64 {
        return Some(status(
            409,
            &format!("Exceeded MaxRequestBatch of {}", c.max_batch),
        ));
    }
    if c.max_expires > 0 && r.expires.is_some_and(|at| at - now > c.max_expires) {
        let max = humantime::format_duration(Duration::from_nanos(c.max_expires as u64));
        return Some(status(409, &format!("Exceeded MaxRequestExpires of {max}")));
    }
    if c.max_bytes > 0 && r.max_bytes > c.max_bytes as u64 {
        return Some(status(
            409,
            &format!("Exceeded MaxRequestMaxBytes of {}", c.max_bytes),
        ));
    }
    if r.no_wait {
        let pending = consumer.num_pending.load(Ordering::Relaxed).max(0) as u64
            + inner.acks.redeliver.len() as u64;
        if pending == 0 && r.expires.is_none() {
            return Some(status(404, "No Messages"));
        }
    }
    if inner.waiting.len() as i64 >= inner.config.max_waiting {
        // Requests whose requester left make room first.
        drop_abandoned_requests(consumer, inner);
    }
    if inner.waiting.len() as i64 >= inner.config.max_waiting {
        return Some(status(409, "Exceeded MaxWaiting"));
    }
    inner.inactive_since = None;
    inner.waiting.push_back(r);
    None
}

/// An ack (or nak, progress, term) for one delivery.
pub(super) fn on_ack(consumer: &Arc<Consumer>, d: &Delivery<'_>) {
    let Ok(subject) = std::str::from_utf8(d.subject) else {
        return;
    };
    let (Some((_, sseq, cseq)), Some(kind)) =
        (ack::parse_subject(subject), ack::parse_body(d.payload))
    else {
        return;
    };
    let now = now_nanos();
    let mut inner = consumer.inner.lock();
    let policy = inner.config.ack_policy;
    let wait = inner.config.ack_wait().as_nanos() as i64;
    if counts_as_activity(&inner, sseq, kind) {
        inner.last_acked = now;
    }
    let acked = match policy {
        AckPolicy::None => Vec::new(),
        AckPolicy::All => inner.acks.ack(sseq, kind, true, now, wait),
        AckPolicy::Explicit => inner.acks.ack(sseq, kind, false, now, wait),
    };
    if let AckKind::Nak(_) = kind {
        // Handed back: its connection no longer holds it (unless this NAK is for an earlier
        // delivery).
        inner.holders.release_delivery(sseq, cseq);
    }
    for seq in &acked {
        inner.holders.release(*seq);
    }
    inner.dirty = true;
    drop(inner);
    if let Some(stream) = consumer.stream.upgrade() {
        if stream.inner.lock().config.retention != Retention::Limits {
            for seq in acked {
                stream.remove_acked(seq);
            }
        }
    }
    if let Some(reply) = d.reply.and_then(|r| std::str::from_utf8(r).ok()) {
        consumer.ctx.reply(reply, b"");
    }
    consumer.wake();
}

/// Whether an ack is one nats-server records as ack activity (`ack_floor.last_active`): an
/// ack, `+NXT` or `+TERM` of a delivered message, not at or below the floor of an ack-all
/// consumer; never on a consumer that does not ack.
fn counts_as_activity(inner: &ConsumerInner, sseq: u64, kind: AckKind) -> bool {
    let delivered = sseq <= inner.acks.delivered.stream_seq;
    match inner.config.ack_policy {
        AckPolicy::None => false,
        AckPolicy::All if sseq <= inner.acks.ack_floor.stream_seq => false,
        AckPolicy::All | AckPolicy::Explicit => {
            delivered && matches!(kind, AckKind::Ack | AckKind::Next | AckKind::Term)
        }
    }
}

/// A flow control reply from the push subscriber: delivery resumes.
pub(crate) fn on_flow_control(consumer: &Consumer) {
    consumer.inner.lock().flow_control = None;
    consumer.wake();
}
