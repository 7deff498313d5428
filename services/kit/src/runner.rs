//! Runs a [`Listener`] on its durable pull consumer: manual acks, `+WPI` progress while a handler
//! is slow (unless the handler stopped them, as fault injection does), `-NAK` with a delay for
//! retries, `+TERM` for payloads that do not decode, a tracing span per message (a child of the
//! publisher's `traceparent`), its counts and timings in [`ListenerStats`], and a graceful drain
//! on shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::PullConsumer, AckKind};
use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::listener::{
    DecisionLabel, Listener, MessageContext, Outcome, ProgressAcks, UndecodableMessage,
};
pub use crate::listener_stats::ListenerStats;
use crate::log_limit::LogLimiter;
use crate::telemetry;
use common_events::envelope::Envelope;
use common_events::events::Event;
use common_events::topology::{self, ConsumerSpec, TopologyError};
use common_events::trace::{TraceContext, TRACEPARENT};

/// How long a shutdown spends handing back messages pulled but not started.
const HAND_BACK_TIME: Duration = Duration::from_millis(200);

/// How often the broker confirms an idle pull request is still alive. Two missed in a row mean
/// the request is lost (a broker restarted, a consumer's leader moved) and the runner pulls
/// anew, so this bounds how long a lost pull stalls delivery.
const PULL_HEARTBEAT: Duration = Duration::from_secs(5);

/// How often the runner reads its consumer's info to refresh `listener_consumer_pending`
/// between deliveries (a stalled or idle listener gets none).
const PENDING_REFRESH: Duration = Duration::from_secs(5);

/// How long a shutdown waits for handlers that are still running.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `listener` until `shutdown` is cancelled, then drains: stops pulling, lets running
/// handlers finish (up to [`DRAIN_TIMEOUT`]) and acks what they finished.
pub async fn run<L: Listener>(
    js: jetstream::Context,
    spec: ConsumerSpec,
    listener: Arc<L>,
    stats: Arc<ListenerStats>,
    shutdown: CancellationToken,
) -> Result<(), TopologyError> {
    // A shutdown right after start-up (the broker gone meanwhile) must not wait for this
    // request's timeout.
    let mut consumer = tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        consumer = topology::ensure_consumer(&js, &spec) => consumer?,
    };
    let refresh = tokio::spawn(refresh_pending(
        consumer.clone(),
        Arc::clone(&stats),
        shutdown.clone(),
    ));
    let permits = Arc::new(Semaphore::new(spec.concurrency.max(1)));
    let mut handlers = JoinSet::new();
    let worker = Worker {
        listener,
        stats,
        ack_wait: spec.ack_wait,
        logs: Arc::default(),
    };
    while !shutdown.is_cancelled() {
        let pulled = pump(
            &consumer,
            &spec,
            &worker,
            &permits,
            &mut handlers,
            &shutdown,
        )
        .await;
        if let Err(err) = pulled {
            tracing::warn!(listener = worker.listener.name(), error = %err, "pulling messages failed; pulling anew");
            // The consumer may be gone (deleted, or lost with a broker's store): make sure it
            // is there before pulling again. If that fails too, the next round tries again.
            // Both waits give way to a shutdown: with the broker gone, the request would hold
            // the stop for its whole timeout.
            let ensured = tokio::select! {
                _ = shutdown.cancelled() => break,
                ensured = async {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    topology::ensure_consumer(&js, &spec).await
                } => ensured,
            };
            match ensured {
                Ok(ensured) => consumer = ensured,
                Err(err) => tracing::warn!(
                    listener = worker.listener.name(),
                    error = %err,
                    "the consumer could not be checked; retrying"
                ),
            }
        }
    }
    refresh.abort();
    drain(handlers, worker.listener.name()).await;
    Ok(())
}

/// Every [`PENDING_REFRESH`] until `shutdown`, sets the pending gauge from the consumer's info
/// (a failed look leaves the last value; the next one tries again).
async fn refresh_pending(
    consumer: PullConsumer,
    stats: Arc<ListenerStats>,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(PENDING_REFRESH);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Ok(info) = consumer.get_info().await {
            stats.pending(info.num_pending);
        }
    }
}

/// Pulls and dispatches messages until shutdown (`Ok`) or until the message stream fails.
async fn pump<L: Listener>(
    consumer: &PullConsumer,
    spec: &ConsumerSpec,
    worker: &Worker<L>,
    permits: &Arc<Semaphore>,
    handlers: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> Result<(), async_nats::Error> {
    let open = consumer
        .stream()
        .max_messages_per_batch(spec.concurrency.max(1))
        .heartbeat(PULL_HEARTBEAT)
        .expires(Duration::from_secs(30))
        .messages();
    // Opening waits for the broker; a shutdown must not.
    let mut messages = tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        messages = open => messages?,
    };
    loop {
        while handlers.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return hand_back(messages, spec.concurrency).await,
            permit = Arc::clone(permits).acquire_owned() => permit?,
        };
        let message = tokio::select! {
            _ = shutdown.cancelled() => return hand_back(messages, spec.concurrency).await,
            message = messages.next() => message,
        };
        let message = match message {
            Some(Ok(message)) => message,
            Some(Err(err)) => {
                use async_nats::jetstream::consumer::pull::MessagesErrorKind as Kind;
                match err.kind() {
                    // The pull request in flight is lost (a broker restarted, a stream's leader
                    // moved, the consumer went away): this stream would wait for its answer for
                    // ever, so a fresh one pulls anew.
                    Kind::MissingHeartbeat
                    | Kind::NoResponders
                    | Kind::Pull
                    | Kind::ConsumerDeleted
                    | Kind::PushBasedConsumer
                    | Kind::RequestLimitExceeded => return Err(err.into()),
                    Kind::Other => {
                        tracing::debug!(error = %err, "pull consumer reported an error");
                        continue;
                    }
                }
            }
            None => return Err("the consumer's message stream ended".into()),
        };
        let worker = worker.clone();
        handlers.spawn(async move {
            worker.handle(message).await;
            drop(permit);
        });
    }
}

/// On shutdown, NAKs the messages already pulled but not yet handled (at most one batch, for at
/// most [`HAND_BACK_TIME`]), so the server redelivers them to another replica at once instead of
/// after the ack wait.
async fn hand_back(
    mut messages: jetstream::consumer::pull::Stream,
    batch: usize,
) -> Result<(), async_nats::Error> {
    let deadline = tokio::time::Instant::now() + HAND_BACK_TIME;
    let mut handed_back = 0;
    while handed_back < batch {
        let next = tokio::time::timeout_at(deadline, messages.next()).await;
        let Ok(Some(Ok(message))) = next else { break };
        let _ = message.ack_with(AckKind::Nak(None)).await;
        handed_back += 1;
    }
    if handed_back > 0 {
        tracing::info!(handed_back, "handed back messages pulled but not started");
    }
    Ok(())
}

async fn drain(mut handlers: JoinSet<()>, name: &str) {
    let running = handlers.len();
    if running > 0 {
        tracing::info!(listener = name, running, "draining handlers");
    }
    let all_done = async { while handlers.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, all_done).await.is_err() {
        tracing::warn!(
            listener = name,
            "handlers still running after the drain timeout; their messages will be redelivered"
        );
        handlers.abort_all();
    }
}

/// What each spawned handler needs.
struct Worker<L> {
    listener: Arc<L>,
    stats: Arc<ListenerStats>,
    ack_wait: Duration,
    /// One producer can send thousands of rejected or undecodable messages a second: their
    /// log lines are rate-limited (the counters in [`ListenerStats`] still count each).
    logs: Arc<WorkerLogs>,
}

#[derive(Default)]
struct WorkerLogs {
    rejected: LogLimiter,
    undecodable: LogLimiter,
}

impl<L> Clone for Worker<L> {
    fn clone(&self) -> Self {
        Self {
            listener: Arc::clone(&self.listener),
            stats: Arc::clone(&self.stats),
            ack_wait: self.ack_wait,
            logs: Arc::clone(&self.logs),
        }
    }
}

impl<L: Listener> Worker<L> {
    async fn handle(&self, message: jetstream::Message) {
        let Some((context, pending)) = context_of(&message) else {
            tracing::warn!(subject = %message.subject, "message without JetStream metadata; terminating it");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        };
        self.stats.delivery(pending, context.delivered);
        let span = tracing::info_span!(
            "message",
            listener = self.listener.name(),
            subject = %context.subject,
            stream_seq = context.stream_sequence,
            delivered = context.delivered,
            event_id = context.message_id.as_deref().unwrap_or(""),
            trace_id = tracing::field::Empty,
            otel.name = format!("process {}", context.subject),
            otel.kind = "consumer",
        );
        let incoming = incoming_trace(&message);
        telemetry::set_remote_parent(&span, incoming);
        let trace = telemetry::hop(&span, incoming);
        span.record("trace_id", trace.trace_id_hex());
        let context = MessageContext { trace, ..context };
        self.dispatch(message, context).instrument(span).await;
    }

    async fn dispatch(&self, message: jetstream::Message, context: MessageContext) {
        let begun = Instant::now();
        let event = match Envelope::<L::Event>::decode(&message.payload) {
            Ok(event) => event,
            Err(err) => return self.terminate_undecodable(message, context, err).await,
        };
        let decision = context.decision.clone();
        let outcome = self.with_progress(&message, event, context).await;
        let (counter, fallback) = match &outcome {
            Outcome::Ack => (&self.stats.acked, "acked"),
            Outcome::Retry(_) => (&self.stats.retried, "retried"),
            Outcome::Reject(reason) => {
                if let Some(suppressed) = self.logs.rejected.allow() {
                    tracing::warn!(%reason, suppressed, "handler rejected the message; terminating it");
                }
                (&self.stats.rejected, "rejected")
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let decision = decision.get().unwrap_or(fallback);
        self.stats
            .handled(L::Event::TYPE, decision, begun.elapsed());
        if let Err(err) = message.ack_with(ack_for(&outcome)).await {
            tracing::warn!(error = %err, ?outcome, "could not send the ack; the message will be redelivered");
        }
    }

    async fn terminate_undecodable(
        &self,
        message: jetstream::Message,
        context: MessageContext,
        err: common_events::envelope::DecodeError,
    ) {
        let begun = Instant::now();
        self.stats.undecodable.fetch_add(1, Ordering::Relaxed);
        if let Some(suppressed) = self.logs.undecodable.allow() {
            tracing::error!(error = %err, suppressed, "payload does not decode; terminating the message");
        }
        let undecodable = UndecodableMessage {
            subject: context.subject,
            stream_sequence: context.stream_sequence,
            delivered: context.delivered,
            payload: message.payload.clone(),
            error: err.to_string(),
        };
        self.listener.on_undecodable(undecodable).await;
        let took = begun.elapsed();
        self.stats.handled(L::Event::TYPE, "undecodable", took);
        if let Err(err) = message.ack_with(AckKind::Term).await {
            tracing::warn!(error = %err, "could not terminate the message");
        }
    }

    /// Runs the handler, sending `+WPI` every half ack wait so a slow handler keeps its message,
    /// unless the handler stopped them (see [`crate::listener::ProgressAcks`]).
    async fn with_progress(
        &self,
        message: &jetstream::Message,
        event: Envelope<L::Event>,
        context: MessageContext,
    ) -> Outcome {
        let progress = context.progress.clone();
        let handler = self.listener.on_message(event, context);
        tokio::pin!(handler);
        let period = (self.ack_wait / 2).max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                outcome = &mut handler => return outcome,
                _ = ticker.tick() => {
                    if progress.is_stopped() {
                        continue;
                    }
                    self.stats.progress.fetch_add(1, Ordering::Relaxed);
                    match message.ack_with(AckKind::Progress).await {
                        Ok(()) => progress.count_sent(),
                        Err(err) => tracing::debug!(error = %err, "could not send +WPI"),
                    }
                }
            }
        }
    }
}

/// What the server is told of a handled message: `+ACK` (done, never again), `-NAK` with the
/// handler's delay (redeliver to any replica after it), or `+TERM` (never again, not done).
fn ack_for(outcome: &Outcome) -> AckKind {
    match outcome {
        Outcome::Ack => AckKind::Ack,
        Outcome::Retry(delay) => AckKind::Nak(Some(*delay)),
        Outcome::Reject(_) => AckKind::Term,
    }
}

fn header(message: &jetstream::Message, name: &str) -> Option<String> {
    let headers = message.headers.as_ref()?;
    headers.get(name).map(|v| v.as_str().to_owned())
}

/// The publisher's trace context, from the `traceparent` header (none when absent or malformed).
fn incoming_trace(message: &jetstream::Message) -> Option<TraceContext> {
    TraceContext::parse(&header(message, TRACEPARENT)?)
}

/// The message's context (its trace still the publisher's: [`Worker::handle`] makes it this
/// hop's) and how many messages follow it on the consumer.
fn context_of(message: &jetstream::Message) -> Option<(MessageContext, u64)> {
    let info = message.info().ok()?;
    let trace = incoming_trace(message).unwrap_or_else(TraceContext::new_root);
    let context = MessageContext {
        subject: message.subject.to_string(),
        stream_sequence: info.stream_sequence,
        delivered: info.delivered,
        message_id: header(message, "Nats-Msg-Id"),
        trace,
        progress: ProgressAcks::default(),
        decision: DecisionLabel::default(),
    };
    Some((context, info.pending))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(outcome: Outcome) -> bytes::Bytes {
        ack_for(&outcome).into()
    }

    #[test]
    fn each_outcome_is_its_own_ack_on_the_wire() {
        assert_eq!(wire(Outcome::Ack), "+ACK");
        assert_eq!(
            wire(Outcome::Retry(Duration::from_millis(250))),
            "-NAK {\"delay\":250000000}",
            "a retry keeps the handler's delay"
        );
        assert_eq!(wire(Outcome::Reject("poison".into())), "+TERM");
    }
}
