//! One subscription, or one queue group, and the pull consumer that feeds it.
//!
//! A task per group takes the consumer's messages and hands each to a member with room under
//! its MaxInflight (the members with room take turns), turns a member's STAN ack into the
//! consumer's ack, and gives back (NAKs) what a departing member
//! held, so that the consumer redelivers it to another member at once. The consumer's
//! `max_ack_pending` is the members' MaxInflight added up, so it sends no more than they can
//! hold; its `ack_wait` redelivers what a member did not acknowledge in time, and its delivery
//! count is the redelivery flag and count the client sees.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use bytes::Bytes;
use futures_util::StreamExt;
use prost::Message as _;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::wire::MsgProto;

/// Most messages a group holds while every member is at its MaxInflight (after a member left
/// and before the consumer heard the group is smaller).
pub(crate) const HELD_BOUND: usize = 4096;

/// Messages one pull request asks for.
const PULL_BATCH: usize = 1024;
/// How long one pull request lasts.
const PULL_EXPIRES: Duration = Duration::from_secs(30);
/// How often the broker confirms an idle pull request is alive; two missed mean it is lost.
const PULL_HEARTBEAT: Duration = Duration::from_secs(5);

/// What a member's subscription shares with the monitoring endpoints.
#[derive(Default)]
pub(crate) struct MemberStats {
    /// Messages sent and not yet acknowledged.
    pub pending: AtomicUsize,
    /// The sequence last sent.
    pub last_sent: AtomicU64,
}

/// What every group has sent, for `/streaming/serverz`.
#[derive(Default)]
pub(crate) struct Traffic {
    pub msgs: AtomicU64,
    pub bytes: AtomicU64,
}

/// How far a group has taken its channel: a publisher's PubAck waits until each group has taken
/// the message, or cannot take more for now, so that subscribers get a message before its
/// publisher hears it is stored, as on NATS Streaming.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Progress {
    /// The highest stream sequence taken from the consumer (or before the group's start).
    pub taken: u64,
    /// No member has room: the consumer sends nothing more until some member acks.
    pub blocked: bool,
}

/// A member as its group knows it.
pub(crate) struct MemberSpec {
    pub ack_inbox: String,
    pub inbox: String,
    pub max_inflight: usize,
    pub stats: Arc<MemberStats>,
}

/// What the group's task is asked to do.
pub(crate) enum Command {
    /// A member joins; the group first sends `response` (the subscription response) to its
    /// subject.
    Join {
        spec: MemberSpec,
        response: Option<(async_nats::Subject, Bytes)>,
    },
    /// The member is gone; what it held goes back to the consumer.
    Leave { ack_inbox: String },
    /// A member acknowledged `sequence`.
    Ack { ack_inbox: String, sequence: u64 },
    /// The group is done: with `give_back`, what its members held goes back to the consumer
    /// (a durable that may resume); then `done` hears it stopped.
    Stop {
        give_back: bool,
        done: oneshot::Sender<()>,
    },
}

/// A message taken from the consumer: where to ack it, and what to send.
struct Taken {
    sequence: u64,
    reply: String,
    proto: Bytes,
}

struct Member {
    spec: MemberSpec,
    /// Sequence to the consumer's reply subject for it.
    pending: HashMap<u64, String>,
}

impl Member {
    fn room(&self) -> bool {
        self.pending.len() < self.spec.max_inflight
    }
}

/// Runs a group until it is stopped or the server shuts down.
pub(crate) async fn run(
    nc: async_nats::Client,
    consumer: PullConsumer,
    channel: String,
    mut commands: mpsc::UnboundedReceiver<Command>,
    traffic: Arc<Traffic>,
    progress: watch::Sender<Progress>,
    shutdown: CancellationToken,
) {
    let mut messages = match open(&consumer).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(channel, "cannot pull from the channel's consumer: {e}");
            return;
        }
    };
    let mut members: Vec<Member> = Vec::new();
    let mut held: VecDeque<Taken> = VecDeque::new();
    let report = |members: &[Member], held: &VecDeque<Taken>, taken: u64| {
        let blocked = !held.is_empty() || !members.iter().any(Member::room);
        progress.send_if_modified(|p| {
            let before = (p.taken, p.blocked);
            p.taken = p.taken.max(taken);
            p.blocked = blocked;
            before != (p.taken, p.blocked)
        });
    };
    let give_back = |nc: &async_nats::Client, reply: String| {
        let nc = nc.clone();
        async move {
            let _ = nc.publish(reply, Bytes::from_static(b"-NAK")).await;
        }
    };
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => break,
                Some(Command::Join { spec, response }) => {
                    if let Some((to, bytes)) = response {
                        let _ = nc.publish(to, bytes).await;
                    }
                    members.push(Member { spec, pending: HashMap::new() });
                    send_held(&nc, &traffic, &mut members, &mut held).await;
                    report(&members, &held, 0);
                }
                Some(Command::Leave { ack_inbox }) => {
                    if let Some(i) = members.iter().position(|m| m.spec.ack_inbox == ack_inbox) {
                        let member = members.remove(i);
                        for (_, reply) in member.pending {
                            give_back(&nc, reply).await;
                        }
                    }
                    report(&members, &held, 0);
                }
                Some(Command::Ack { ack_inbox, sequence }) => {
                    if let Some(member) = members.iter_mut().find(|m| m.spec.ack_inbox == ack_inbox) {
                        if let Some(reply) = member.pending.remove(&sequence) {
                            member.spec.stats.pending.store(member.pending.len(), Ordering::Relaxed);
                            let _ = nc.publish(reply, Bytes::from_static(b"+ACK")).await;
                            send_held(&nc, &traffic, &mut members, &mut held).await;
                            report(&members, &held, 0);
                        }
                    }
                }
                Some(Command::Stop { give_back: back, done }) => {
                    // Its pull request goes first, so that the consumer does not hand what is
                    // given back to a request nobody reads any more.
                    drop(messages);
                    if back {
                        let replies = members
                            .drain(..)
                            .flat_map(|m| m.pending.into_values())
                            .chain(held.drain(..).map(|t| t.reply));
                        for reply in replies {
                            give_back(&nc, reply).await;
                        }
                    }
                    let _ = nc.flush().await;
                    let _ = done.send(());
                    return;
                }
            },
            next = messages.next(), if held.len() < HELD_BOUND => match next {
                None => {
                    tracing::warn!(channel, "the channel's consumer stopped delivering");
                    break;
                }
                Some(Err(e)) => {
                    use async_nats::jetstream::consumer::pull::MessagesErrorKind as Kind;
                    match e.kind() {
                        // The pull request in flight is lost (the loopback connection was cut
                        // and came back, say): this stream would wait for it for ever.
                        Kind::MissingHeartbeat | Kind::NoResponders | Kind::Pull => {
                            tracing::debug!(channel, "the pull request is lost ({e}); pulling anew");
                            match open(&consumer).await {
                                Ok(m) => messages = m,
                                Err(e) => {
                                    tracing::error!(channel, "cannot pull from the channel's consumer: {e}");
                                    break;
                                }
                            }
                        }
                        Kind::ConsumerDeleted => {
                            tracing::warn!(channel, "the subscription's consumer was deleted");
                            break;
                        }
                        _ => tracing::debug!(channel, "pulling from the channel: {e}"),
                    }
                }
                Some(Ok(msg)) => {
                    if let Some(taken) = take(&msg, &channel) {
                        let sequence = taken.sequence;
                        offer(&nc, &traffic, &mut members, &mut held, taken).await;
                        report(&members, &held, sequence);
                    }
                }
            },
            _ = shutdown.cancelled() => break,
        }
    }
    // Publishers no longer wait for this group.
    progress.send_modify(|p| p.blocked = true);
    // Wait for the stop that the server sends when it removes the group.
    while let Some(command) = commands.recv().await {
        if let Command::Stop { done, .. } = command {
            let _ = done.send(());
            return;
        }
    }
}

/// Opens the consumer's message stream: a large batch keeps a pull request waiting at the
/// consumer, so that a stored message goes out at once rather than after another request's round
/// trip; the idle heartbeat tells a lost request from a quiet channel.
async fn open(
    consumer: &PullConsumer,
) -> Result<
    async_nats::jetstream::consumer::pull::Stream,
    async_nats::jetstream::consumer::StreamError,
> {
    consumer
        .stream()
        .max_messages_per_batch(PULL_BATCH)
        .expires(PULL_EXPIRES)
        .heartbeat(PULL_HEARTBEAT)
        .messages()
        .await
}

/// The STAN message for a consumer's delivery.
fn take(msg: &async_nats::jetstream::Message, channel: &str) -> Option<Taken> {
    let info = match msg.info() {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(channel, "a delivery without its metadata: {e}");
            return None;
        }
    };
    let reply = msg.reply.as_ref()?.to_string();
    let delivered = u32::try_from(info.delivered.max(1)).unwrap_or(u32::MAX);
    let proto = MsgProto {
        sequence: info.stream_sequence,
        subject: channel.to_string(),
        reply: msg
            .headers
            .as_ref()
            .and_then(|h| h.get(super::server::REPLY_HEADER))
            .map(|v| v.as_str().to_string())
            .unwrap_or_default(),
        data: msg.payload.to_vec(),
        timestamp: i64::try_from(info.published.unix_timestamp_nanos()).unwrap_or(i64::MAX),
        redelivered: delivered > 1,
        redelivery_count: delivered - 1,
        crc32: 0,
    };
    Some(Taken {
        sequence: info.stream_sequence,
        reply,
        proto: Bytes::from(proto.encode_to_vec()),
    })
}

/// Sends `taken` to the member that holds it already (a redelivery), else to the next member
/// with room in turn, else holds it.
async fn offer(
    nc: &async_nats::Client,
    traffic: &Traffic,
    members: &mut [Member],
    held: &mut VecDeque<Taken>,
    taken: Taken,
) {
    let holder = members
        .iter()
        .position(|m| m.pending.contains_key(&taken.sequence));
    let chosen = holder.or_else(|| {
        members
            .iter()
            .enumerate()
            .find(|(_, m)| m.room())
            .map(|(i, _)| i)
    });
    match chosen {
        Some(i) => send(nc, traffic, rotate(members, i), taken).await,
        None => match held.iter_mut().find(|h| h.sequence == taken.sequence) {
            Some(h) => *h = taken,
            None => held.push_back(taken),
        },
    }
}

/// Sends what is held to members that have room again.
async fn send_held(
    nc: &async_nats::Client,
    traffic: &Traffic,
    members: &mut [Member],
    held: &mut VecDeque<Taken>,
) {
    while !held.is_empty() {
        let Some(i) = members
            .iter()
            .enumerate()
            .find(|(_, m)| m.room())
            .map(|(i, _)| i)
        else {
            return;
        };
        let taken = held.pop_front().expect("not empty");
        send(nc, traffic, rotate(members, i), taken).await;
    }
}

/// Moves member `i` to the end, so that the members with room take turns, and returns it.
fn rotate(members: &mut [Member], i: usize) -> &mut Member {
    members[i..].rotate_left(1);
    members.last_mut().expect("member i exists")
}

async fn send(nc: &async_nats::Client, traffic: &Traffic, member: &mut Member, taken: Taken) {
    traffic.msgs.fetch_add(1, Ordering::Relaxed);
    traffic
        .bytes
        .fetch_add(taken.proto.len() as u64, Ordering::Relaxed);
    member.pending.insert(taken.sequence, taken.reply);
    let stats = &member.spec.stats;
    stats.pending.store(member.pending.len(), Ordering::Relaxed);
    stats.last_sent.fetch_max(taken.sequence, Ordering::Relaxed);
    let _ = nc.publish(member.spec.inbox.clone(), taken.proto).await;
}
