//! Listener runner scenarios: acks, retries, termination, progress and drain.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use common_events::topology::{self, subjects, ConsumerSpec};
use common_events::{Envelope, Publisher, TraceContext, TransactionCreated};
use service_kit::runner::{self, ListenerStats};
use service_kit::{Listener, MessageContext, Outcome, UndecodableMessage};
use test_support::scenario;
use test_support::wait::until_eq;
use test_support::{Scenario, Target};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use test_support::jetstream::{connect, consumer, created, pending};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(handled_messages_are_acked_once_their_handler_returns),
    scenario!(retry_hands_a_message_back_and_it_is_delivered_again),
    scenario!(a_rejected_message_is_terminated_and_not_redelivered),
    scenario!(an_undecodable_payload_is_terminated_counted_and_the_listener_keeps_going),
    scenario!(a_slow_handler_sends_progress_and_keeps_its_message),
    scenario!(a_handler_that_stops_its_progress_acks_is_redelivered_after_the_ack_wait),
    scenario!(shutdown_drains_a_running_handler_and_acks_it),
    scenario!(the_handler_sees_the_publishers_trace_id),
    scenario!(a_stalled_listener_still_shows_what_its_consumer_has_pending),
];

const BOUND: Duration = Duration::from_secs(10);

/// A listener whose outcome is `policy(number, delivered)`, after `delay`.
struct Probe {
    policy: fn(u64, i64) -> Outcome,
    delay: Duration,
    seen: Mutex<Vec<(u64, i64, TraceContext)>>,
    started: Mutex<usize>,
    undecodable: Mutex<Vec<UndecodableMessage>>,
}

impl Probe {
    fn new(policy: fn(u64, i64) -> Outcome, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            policy,
            delay,
            seen: Mutex::default(),
            started: Mutex::default(),
            undecodable: Mutex::default(),
        })
    }

    fn seen(&self) -> Vec<(u64, i64, TraceContext)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Listener for Probe {
    type Event = TransactionCreated;

    fn name(&self) -> &'static str {
        "probe"
    }

    async fn on_message(
        &self,
        event: Envelope<TransactionCreated>,
        ctx: MessageContext,
    ) -> Outcome {
        *self.started.lock().unwrap() += 1;
        tokio::time::sleep(self.delay).await;
        let number = event.data.number.get();
        self.seen
            .lock()
            .unwrap()
            .push((number, ctx.delivered, ctx.trace));
        (self.policy)(number, ctx.delivered)
    }

    async fn on_undecodable(&self, message: UndecodableMessage) {
        self.undecodable.lock().unwrap().push(message);
    }
}

/// A broker, a JetStream context and a running probe.
struct Running {
    js: jetstream::Context,
    probe: Arc<Probe>,
    stats: Arc<ListenerStats>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), topology::TopologyError>>,
    spec: ConsumerSpec,
}

async fn start(url: &str, probe: Arc<Probe>, ack_wait: Duration) -> anyhow::Result<Running> {
    let js = connect(url).await?;
    let spec = ConsumerSpec {
        ack_wait,
        ..ConsumerSpec::new(
            topology::TRANSACTIONS,
            "runner-test",
            subjects::TRANSACTION_CREATED,
        )
    };
    topology::ensure(&js, std::slice::from_ref(&spec)).await?;
    let stats = Arc::new(ListenerStats::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(runner::run(
        js.clone(),
        spec.clone(),
        Arc::clone(&probe),
        Arc::clone(&stats),
        shutdown.clone(),
    ));
    Ok(Running {
        js,
        probe,
        stats,
        shutdown,
        task,
        spec,
    })
}

impl Running {
    async fn settled(&self) -> anyhow::Result<()> {
        let what = "the consumer to have nothing pending";
        until_eq(what, BOUND, (0, 0), || {
            pending(&self.js, &self.spec.durable)
        })
        .await
    }
}

fn always_ack(_: u64, _: i64) -> Outcome {
    Outcome::Ack
}

async fn handled_messages_are_acked_once_their_handler_returns(t: Target) -> anyhow::Result<()> {
    let broker = t.broker.start()?;
    let run = start(
        &broker.url(),
        Probe::new(always_ack, Duration::ZERO),
        Duration::from_secs(30),
    )
    .await?;
    let publisher = Publisher::new(run.js.clone());
    for number in 1..=3 {
        publisher.publish(&created(number), None).await?;
    }
    until_eq("three acks", BOUND, 3, || async {
        Ok(run.stats.acked.load(Ordering::Relaxed))
    })
    .await?;
    run.settled().await?;
    let mut numbers: Vec<u64> = run.probe.seen().iter().map(|s| s.0).collect();
    numbers.sort();
    assert_eq!(numbers, [1, 2, 3]);
    Ok(())
}

async fn retry_hands_a_message_back_and_it_is_delivered_again(t: Target) -> anyhow::Result<()> {
    let broker = t.broker.start()?;
    let policy = |_, delivered| {
        if delivered == 1 {
            Outcome::Retry(Duration::from_millis(100))
        } else {
            Outcome::Ack
        }
    };
    let run = start(
        &broker.url(),
        Probe::new(policy, Duration::ZERO),
        Duration::from_secs(30),
    )
    .await?;
    Publisher::new(run.js.clone())
        .publish(&created(1), None)
        .await?;
    until_eq("an ack after a retry", BOUND, 1, || async {
        Ok(run.stats.acked.load(Ordering::Relaxed))
    })
    .await?;
    let deliveries: Vec<i64> = run.probe.seen().iter().map(|s| s.1).collect();
    assert_eq!(deliveries, [1, 2]);
    assert_eq!(run.stats.retried.load(Ordering::Relaxed), 1);
    run.settled().await
}

async fn a_rejected_message_is_terminated_and_not_redelivered(t: Target) -> anyhow::Result<()> {
    let broker = t.broker.start()?;
    let policy = |_, _| Outcome::Reject("invalid on purpose".into());
    let run = start(
        &broker.url(),
        Probe::new(policy, Duration::ZERO),
        Duration::from_millis(500),
    )
    .await?;
    Publisher::new(run.js.clone())
        .publish(&created(1), None)
        .await?;
    until_eq("a rejection", BOUND, 1, || async {
        Ok(run.stats.rejected.load(Ordering::Relaxed))
    })
    .await?;
    run.settled().await?;
    // Nothing is waiting for an ack, so the server has nothing to redeliver when the ack wait
    // passes: the message was terminated, not left to time out.
    let info = consumer(&run.js, &run.spec.durable)
        .await?
        .get_info()
        .await?;
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.num_redelivered, 0);
    assert_eq!(info.delivered.consumer_sequence, 1, "delivered once");
    assert_eq!(run.probe.seen().len(), 1);
    Ok(())
}

async fn an_undecodable_payload_is_terminated_counted_and_the_listener_keeps_going(
    t: Target,
) -> anyhow::Result<()> {
    let broker = t.broker.start()?;
    let run = start(
        &broker.url(),
        Probe::new(always_ack, Duration::ZERO),
        Duration::from_secs(30),
    )
    .await?;
    run.js
        .publish("transactions.created", "{not json".into())
        .await?
        .await?;
    Publisher::new(run.js.clone())
        .publish(&created(7), None)
        .await?;
    until_eq("one undecodable", BOUND, 1, || async {
        Ok(run.stats.undecodable.load(Ordering::Relaxed))
    })
    .await?;
    until_eq("the next message acked", BOUND, 1, || async {
        Ok(run.stats.acked.load(Ordering::Relaxed))
    })
    .await?;
    let dead = run.probe.undecodable.lock().unwrap().clone();
    assert_eq!(dead.len(), 1);
    assert_eq!(&dead[0].payload[..], b"{not json");
    run.settled().await
}

async fn a_slow_handler_sends_progress_and_keeps_its_message(t: Target) -> anyhow::Result<()> {
    let broker = t.broker.start()?;
    let probe = Probe::new(always_ack, Duration::from_millis(2500));
    let run = start(&broker.url(), probe, Duration::from_secs(1)).await?;
    Publisher::new(run.js.clone())
        .publish(&created(1), None)
        .await?;
    until_eq("the slow handler's ack", BOUND, 1, || async {
        Ok(run.stats.acked.load(Ordering::Relaxed))
    })
    .await?;
    assert!(
        run.stats.progress.load(Ordering::Relaxed) >= 2,
        "expected +WPI while the handler ran"
    );
    assert_eq!(
        *run.probe.started.lock().unwrap(),
        1,
        "progress must prevent a redelivery"
    );
    run.settled().await
}

/// Plays a frozen handler on the first delivery (stops its progress acks, then sleeps), and
/// records each delivery with the progress acks the runner sent for it.
struct Freezer {
    sleep: Duration,
    stop_progress: bool,
    seen: Mutex<Vec<(i64, u64)>>,
}

impl Listener for Freezer {
    type Event = TransactionCreated;

    fn name(&self) -> &'static str {
        "freezer"
    }

    async fn on_message(&self, _: Envelope<TransactionCreated>, ctx: MessageContext) -> Outcome {
        if ctx.delivered == 1 {
            if self.stop_progress {
                ctx.progress.stop();
            }
            tokio::time::sleep(self.sleep).await;
        }
        let sent = ctx.progress.sent();
        self.seen.lock().unwrap().push((ctx.delivered, sent));
        Outcome::Ack
    }
}

async fn run_freezer(t: &Target, stop_progress: bool) -> anyhow::Result<Vec<(i64, u64)>> {
    let broker = t.broker.start()?;
    let js = connect(&broker.url()).await?;
    let spec = ConsumerSpec {
        ack_wait: Duration::from_secs(1),
        ..ConsumerSpec::new(
            topology::TRANSACTIONS,
            "runner-test",
            subjects::TRANSACTION_CREATED,
        )
    };
    topology::ensure(&js, std::slice::from_ref(&spec)).await?;
    let freezer = Arc::new(Freezer {
        sleep: Duration::from_millis(2500),
        stop_progress,
        seen: Mutex::default(),
    });
    let shutdown = CancellationToken::new();
    let stats = Arc::new(ListenerStats::default());
    let task = tokio::spawn(runner::run(
        js.clone(),
        spec.clone(),
        Arc::clone(&freezer),
        stats,
        shutdown.clone(),
    ));
    Publisher::new(js.clone())
        .publish(&created(1), None)
        .await?;
    until_eq("the first delivery to finish", BOUND, true, || async {
        Ok(freezer.seen.lock().unwrap().iter().any(|(d, _)| *d == 1))
    })
    .await?;
    until_eq("nothing pending", BOUND, (0, 0), || {
        pending(&js, &spec.durable)
    })
    .await?;
    shutdown.cancel();
    tokio::time::timeout(BOUND, task).await???;
    let mut seen = freezer.seen.lock().unwrap().clone();
    seen.sort_unstable();
    Ok(seen)
}

/// A handler that stops its progress acks (as fault injection does, to play a frozen process)
/// sends none, so the broker redelivers its message after the ack wait while it still runs; the
/// same slow handler with progress acks keeps its message and reports how many were sent.
async fn a_handler_that_stops_its_progress_acks_is_redelivered_after_the_ack_wait(
    t: Target,
) -> anyhow::Result<()> {
    let frozen = run_freezer(&t, true).await?;
    assert_eq!(
        frozen,
        [(1, 0), (2, 0)],
        "delivery 1 sent no progress ack and was redelivered while it ran"
    );
    let slow = run_freezer(&t, false).await?;
    assert_eq!(
        slow.len(),
        1,
        "progress acks prevent the redelivery: {slow:?}"
    );
    assert!(
        slow[0].1 >= 2,
        "the context counts the progress acks sent: {slow:?}"
    );
    Ok(())
}

async fn shutdown_drains_a_running_handler_and_acks_it(t: Target) -> anyhow::Result<()> {
    let broker = t.broker.start()?;
    let probe = Probe::new(always_ack, Duration::from_millis(500));
    let run = start(&broker.url(), probe, Duration::from_secs(30)).await?;
    Publisher::new(run.js.clone())
        .publish(&created(1), None)
        .await?;
    until_eq("the handler to start", BOUND, 1, || async {
        Ok(*run.probe.started.lock().unwrap())
    })
    .await?;
    run.shutdown.cancel();
    tokio::time::timeout(BOUND, run.task).await???;
    assert_eq!(
        run.stats.acked.load(Ordering::Relaxed),
        1,
        "the running handler finished"
    );
    until_eq("the ack to reach the server", BOUND, (0, 0), || {
        pending(&run.js, &run.spec.durable)
    })
    .await
}

async fn the_handler_sees_the_publishers_trace_id(t: Target) -> anyhow::Result<()> {
    let broker = t.broker.start()?;
    let run = start(
        &broker.url(),
        Probe::new(always_ack, Duration::ZERO),
        Duration::from_secs(30),
    )
    .await?;
    let trace = TraceContext::new_root();
    Publisher::new(run.js.clone())
        .publish(&created(1), Some(trace))
        .await?;
    until_eq("one ack", BOUND, 1, || async {
        Ok(run.stats.acked.load(Ordering::Relaxed))
    })
    .await?;
    let seen = run.probe.seen()[0].2;
    assert_eq!(seen.trace_id, trace.trace_id);
    assert_ne!(
        seen.parent_id, trace.parent_id,
        "the handler is a child span"
    );
    Ok(())
}

/// A listener whose one handler is busy gets no deliveries, yet `listener_consumer_pending`
/// shows the messages that arrived since (from the consumer's info, every few seconds).
async fn a_stalled_listener_still_shows_what_its_consumer_has_pending(
    t: Target,
) -> anyhow::Result<()> {
    let broker = t.broker.start()?;
    let js = connect(&broker.url()).await?;
    let spec = ConsumerSpec {
        concurrency: 1,
        ..ConsumerSpec::new(
            topology::TRANSACTIONS,
            "runner-test",
            subjects::TRANSACTION_CREATED,
        )
    };
    topology::ensure(&js, std::slice::from_ref(&spec)).await?;
    let metrics = service_kit::metrics::Metrics::new();
    let stats = ListenerStats::registered(&metrics, "probe");
    let probe = Probe::new(always_ack, Duration::from_secs(60));
    let task = tokio::spawn(runner::run(
        js.clone(),
        spec,
        Arc::clone(&probe),
        stats,
        CancellationToken::new(),
    ));
    let publisher = Publisher::new(js.clone());
    publisher.publish(&created(1), None).await?;
    until_eq("the first delivery", BOUND, 1, || async {
        Ok(*probe.started.lock().unwrap())
    })
    .await?;
    for number in 2..=10 {
        publisher.publish(&created(number), None).await?;
    }
    // At most one of the nine waits in the client's pull buffer; the rest are on the consumer.
    let gauge = || {
        let text = metrics.encode();
        text.lines()
            .find_map(|l| l.strip_prefix("listener_consumer_pending{listener=\"probe\"} "))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(-1)
    };
    until_eq(
        "the pending gauge to show the waiting messages",
        BOUND,
        true,
        || async { Ok(gauge() >= 8) },
    )
    .await?;
    assert_eq!(
        *probe.started.lock().unwrap(),
        1,
        "no other delivery moved it"
    );
    task.abort();
    Ok(())
}
