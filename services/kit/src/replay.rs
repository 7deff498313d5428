//! Replaying streams into a projection (event sourcing): each listener runs on a one-off
//! consumer that starts at the stream's first message ([`ConsumerSpec::replay`]); the replay is
//! over when every one of them has nothing pending and nothing unacknowledged, and then the
//! consumers are removed.
//!
//! Listeners added to one [`Replay`] run side by side. That matters for a projection fed by
//! several subjects that depend on each other (an account's applied and rejected transactions
//! share one sequence): each waits for the others through the sequence numbers, as it does live.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, consumer::PullConsumer};
use common_events::topology::{self, ConsumerSpec};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::listener::Listener;
use crate::runner::{self, ListenerStats};

/// How often a replay asks its consumers whether they caught up.
pub const CAUGHT_UP_POLL: Duration = Duration::from_millis(50);

/// Listeners replaying their streams, until [`Replay::finish`].
pub struct Replay {
    js: jetstream::Context,
    stop: CancellationToken,
    running: Vec<Running>,
}

struct Running {
    spec: ConsumerSpec,
    consumer: PullConsumer,
    task: JoinHandle<Result<(), topology::TopologyError>>,
}

impl Replay {
    /// A replay on `js`, abandoned when `stop` is cancelled (a shutdown).
    pub fn new(js: &jetstream::Context, stop: &CancellationToken) -> Self {
        Self {
            js: js.clone(),
            stop: stop.child_token(),
            running: Vec::new(),
        }
    }

    /// Starts `listener` on a fresh replay consumer of `subject` in `stream`; its counts are in
    /// the returned stats.
    pub async fn add<L: Listener>(
        &mut self,
        stream: topology::StreamSpec,
        subject: &'static str,
        listener: L,
    ) -> anyhow::Result<Arc<ListenerStats>> {
        let spec = ConsumerSpec::replay(stream, subject);
        let consumer = topology::ensure_consumer(&self.js, &spec).await?;
        let stats = Arc::new(ListenerStats::default());
        let task = tokio::spawn(runner::run(
            self.js.clone(),
            spec.clone(),
            Arc::new(listener),
            Arc::clone(&stats),
            self.stop.clone(),
        ));
        self.running.push(Running {
            spec,
            consumer,
            task,
        });
        Ok(stats)
    }

    /// Waits until every listener added caught up with its stream (as it was when it was asked),
    /// then stops them and removes their consumers. An error when the stop token was cancelled
    /// first or the broker failed; the consumers are removed either way (and the server removes
    /// what is left a minute later).
    pub async fn finish(self) -> anyhow::Result<()> {
        let Self { js, stop, running } = self;
        let caught_up = tokio::select! {
            caught_up = all_caught_up(&running) => caught_up,
            _ = stop.cancelled() => Err(anyhow::anyhow!("stopped before the replay caught up")),
        };
        stop.cancel();
        for run in running {
            let ended = run.task.await.context("a replay listener panicked")?;
            ended.context("a replay listener stopped")?;
            if let Ok(stream) = js.get_stream(run.spec.stream.name).await {
                let _ = stream.delete_consumer(&run.spec.durable).await;
            }
        }
        caught_up
    }
}

/// Caught up: nothing pending or unacknowledged on any consumer, seen on two polls in a row
/// (a message handed back for later is between deliveries for a moment).
async fn all_caught_up(running: &[Running]) -> anyhow::Result<()> {
    let mut quiet_polls = 0;
    loop {
        let mut done = true;
        for run in running {
            let mut consumer = run.consumer.clone();
            let info = consumer
                .info()
                .await
                .with_context(|| format!("reading replay consumer {}", run.spec.durable))?;
            done &= info.num_pending == 0 && info.num_ack_pending == 0;
        }
        quiet_polls = if done { quiet_polls + 1 } else { 0 };
        if quiet_polls >= 2 {
            return Ok(());
        }
        tokio::time::sleep(CAUGHT_UP_POLL).await;
    }
}
