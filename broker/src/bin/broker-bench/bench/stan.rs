//! NATS Streaming on the broker (`-cid`), in the shape of node-nats-streaming's own benchmarks:
//! `stan-pub` publishes with a window of PubAcks outstanding (its `bench-pub`), `stan-sub`
//! subscribes to a pre-filled channel with "deliver all available" and acks every message (its
//! `bench-sub`). No NATS Streaming server can run here, so the reference is the same work done
//! with JetStream: the other servers of the suite run `js-pub-async` and `js-consume` in their
//! place, and the ratio says what the STAN layer costs against nats-server's JetStream.
//!
//! The STAN client here is written on async-nats with the broker's own wire messages.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use bytes::Bytes;
use futures_util::StreamExt;

use super::{js_consume::JsConsume, js_publish::JsPublishAsync};
use super::{Benchmark, Case, Env, Sample, Suite, Work, WorkUnit};
use crate::system::CpuProbe;
use crate::targets::{Target, STAN_CLUSTER};
use broker::stan::wire;

/// The channel both benchmarks use (a fresh server per run keeps it empty).
const CHANNEL: &str = "bench.stan";
/// Longest any one wait of a run may take.
const WAIT: Duration = Duration::from_secs(30);

/// Publishing with up to `window` PubAcks outstanding.
pub(crate) struct StanPublish {
    pub window: usize,
}

/// Subscribing to a pre-filled channel and acking each message, `window` in flight.
pub(crate) struct StanSubscribe {
    pub window: usize,
    pub batch: usize,
}

impl Benchmark for StanPublish {
    fn name(&self) -> &'static str {
        "stan-pub"
    }

    fn title(&self) -> &'static str {
        "STAN publish, window (JetStream publish on the others)"
    }

    fn unit(&self) -> WorkUnit {
        WorkUnit::Messages
    }

    fn default_count(&self, _payload: usize) -> u64 {
        100_000
    }

    fn suite(&self) -> Suite {
        Suite::Stan
    }

    fn timeable(&self) -> bool {
        false
    }

    fn fresh_server(&self) -> bool {
        true
    }

    fn run(&self, env: &Env, target: &Target, case: &Case) -> anyhow::Result<Sample> {
        if !target.stan {
            return JsPublishAsync {
                window: self.window,
            }
            .run(env, target, case);
        }
        let Work::Count(count) = case.work else {
            bail!("stan-pub needs a message count");
        };
        let publish = Step::Publish(case.payload, self.window);
        measure(env, target, "bench-pub", count, None, publish)
    }
}

impl Benchmark for StanSubscribe {
    fn name(&self) -> &'static str {
        "stan-sub"
    }

    fn title(&self) -> &'static str {
        "STAN subscribe + ack (JetStream pull + ack on the others)"
    }

    fn unit(&self) -> WorkUnit {
        WorkUnit::Messages
    }

    fn default_count(&self, _payload: usize) -> u64 {
        100_000
    }

    fn suite(&self) -> Suite {
        Suite::Stan
    }

    fn timeable(&self) -> bool {
        false
    }

    fn fresh_server(&self) -> bool {
        true
    }

    fn run(&self, env: &Env, target: &Target, case: &Case) -> anyhow::Result<Sample> {
        if !target.stan {
            return JsConsume {
                window: self.window,
                batch: self.batch,
            }
            .run(env, target, case);
        }
        let Work::Count(count) = case.work else {
            bail!("stan-sub needs a message count");
        };
        let fill = Step::Publish(case.payload, self.window);
        measure(
            env,
            target,
            "bench-sub",
            count,
            Some(fill),
            Step::Receive(self.window),
        )
    }
}

/// What a STAN client does with `count` messages.
#[derive(Clone, Copy)]
enum Step {
    /// Publish them, `size` bytes each, with this many PubAcks outstanding.
    Publish(usize, usize),
    /// Receive and ack them from the first, with this many in flight.
    Receive(usize),
}

/// Connects client `id`, does `before` untimed, then measures `step` (the server's CPU with it),
/// and closes.
fn measure(
    env: &Env,
    target: &Target,
    id: &str,
    count: u64,
    before: Option<Step>,
    step: Step,
) -> anyhow::Result<Sample> {
    env.runtime.block_on(async {
        let client = StanClient::connect(&target.url, id).await?;
        if let Some(before) = before {
            client
                .perform(before, count)
                .await
                .context("before measuring")?;
        }
        let probe = CpuProbe::new(target.pid);
        let start = probe.snapshot();
        client.perform(step, count).await?;
        let end = probe.snapshot();
        client.close().await?;
        Ok(Sample::rate(
            count,
            end.at().duration_since(start.at()),
            start.usage_until(&end),
            Vec::new(),
        ))
    })
}

/// A connected STAN client: its NATS connection and what the ConnectResponse handed out.
struct StanClient {
    nc: async_nats::Client,
    id: String,
    conn_id: Vec<u8>,
    response: wire::ConnectResponse,
}

impl StanClient {
    async fn perform(&self, step: Step, count: u64) -> anyhow::Result<()> {
        match step {
            Step::Publish(size, window) => self.publish_all(count, size, window).await,
            Step::Receive(window) => self.receive_all(count, window).await,
        }
    }

    async fn connect(url: &str, id: &str) -> anyhow::Result<StanClient> {
        let nc = async_nats::connect(url).await.context("connecting")?;
        // Heartbeats are answered as any STAN client does.
        let hb_inbox = nc.new_inbox();
        let mut heartbeats = nc.subscribe(hb_inbox.clone()).await?;
        let answering = nc.clone();
        tokio::spawn(async move {
            while let Some(hb) = heartbeats.next().await {
                if let Some(reply) = hb.reply {
                    let _ = answering.publish(reply, Bytes::new()).await;
                }
            }
        });
        let conn_id = nc.new_inbox().into_bytes();
        let request = wire::ConnectRequest {
            client_id: id.to_string(),
            heartbeat_inbox: hb_inbox,
            protocol: 1,
            conn_id: conn_id.clone(),
            ping_interval: 5,
            ping_max_out: 3,
        };
        let discover = format!("_STAN.discover.{STAN_CLUSTER}");
        // The broker starts its streaming component just after its client port: until then
        // nobody answers.
        let deadline = Instant::now() + WAIT;
        let reply = loop {
            let asked = nc.request(discover.clone(), Bytes::from(wire::encode(&request)));
            match tokio::time::timeout(WAIT, asked).await {
                Ok(Ok(reply)) => break reply,
                Ok(Err(e)) if Instant::now() < deadline => {
                    tracing::debug!("connect request: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(Err(e)) => return Err(e).context("connect request"),
                Err(_) => bail!("connect request timed out"),
            }
        };
        let response: wire::ConnectResponse = wire::decode(&reply.payload)?;
        ensure!(response.error.is_empty(), "connect: {}", response.error);
        Ok(StanClient {
            nc,
            id: id.to_string(),
            conn_id,
            response,
        })
    }

    /// Publishes `count` messages of `size` bytes with up to `window` PubAcks outstanding, and
    /// returns once every one is acknowledged without an error.
    async fn publish_all(&self, count: u64, size: usize, window: usize) -> anyhow::Result<()> {
        let acks_inbox = self.nc.new_inbox();
        let mut acks = self.nc.subscribe(acks_inbox.clone()).await?;
        let subject = format!("{}.{CHANNEL}", self.response.pub_prefix);
        let data = vec![b'x'; size];
        let (mut sent, mut acked) = (0u64, 0u64);
        while acked < count {
            while sent < count && sent - acked < window as u64 {
                let msg = wire::PubMsg {
                    client_id: self.id.clone(),
                    guid: sent.to_string(),
                    subject: CHANNEL.to_string(),
                    data: data.clone(),
                    conn_id: self.conn_id.clone(),
                    ..Default::default()
                };
                self.nc
                    .publish_with_reply(
                        subject.clone(),
                        acks_inbox.clone(),
                        Bytes::from(wire::encode(&msg)),
                    )
                    .await?;
                sent += 1;
            }
            let ack = tokio::time::timeout(WAIT, acks.next())
                .await
                .with_context(|| format!("waiting for PubAck {acked} of {count}"))?
                .context("the PubAck subscription ended")?;
            let ack: wire::PubAck = wire::decode(&ack.payload)?;
            ensure!(ack.error.is_empty(), "PubAck {}: {}", ack.guid, ack.error);
            acked += 1;
        }
        Ok(())
    }

    /// Subscribes from the first message with `window` in flight, acks each, and returns once
    /// `count` distinct messages arrived in order.
    async fn receive_all(&self, count: u64, window: usize) -> anyhow::Result<()> {
        let inbox = self.nc.new_inbox();
        let mut messages = self.nc.subscribe(inbox.clone()).await?;
        let request = wire::SubscriptionRequest {
            client_id: self.id.clone(),
            subject: CHANNEL.to_string(),
            inbox,
            max_in_flight: i32::try_from(window).unwrap_or(i32::MAX),
            ack_wait_in_secs: 30,
            start_position: wire::StartPosition::First as i32,
            ..Default::default()
        };
        let reply = tokio::time::timeout(
            WAIT,
            self.nc.request(
                self.response.sub_requests.clone(),
                Bytes::from(wire::encode(&request)),
            ),
        )
        .await
        .context("subscription request timed out")??;
        let response: wire::SubscriptionResponse = wire::decode(&reply.payload)?;
        ensure!(response.error.is_empty(), "subscribe: {}", response.error);
        let mut seen: HashMap<u64, ()> = HashMap::with_capacity(count as usize);
        let started = Instant::now();
        while (seen.len() as u64) < count {
            let msg = tokio::time::timeout(WAIT, messages.next())
                .await
                .with_context(|| {
                    format!(
                        "{} of {count} messages after {:?}",
                        seen.len(),
                        started.elapsed()
                    )
                })?
                .context("the subscription ended")?;
            let msg: wire::MsgProto = wire::decode(&msg.payload)?;
            seen.insert(msg.sequence, ());
            let ack = wire::Ack {
                subject: CHANNEL.to_string(),
                sequence: msg.sequence,
            };
            self.nc
                .publish(response.ack_inbox.clone(), Bytes::from(wire::encode(&ack)))
                .await?;
        }
        ensure!(
            (1..=count).all(|s| seen.contains_key(&s)),
            "the sequences are not 1..={count}"
        );
        Ok(())
    }

    async fn close(self) -> anyhow::Result<()> {
        let request = wire::CloseRequest {
            client_id: self.id.clone(),
        };
        let reply = tokio::time::timeout(
            WAIT,
            self.nc.request(
                self.response.close_requests.clone(),
                Bytes::from(wire::encode(&request)),
            ),
        )
        .await
        .context("close request timed out")??;
        let response: wire::CloseResponse = wire::decode(&reply.payload)?;
        ensure!(response.error.is_empty(), "close: {}", response.error);
        Ok(())
    }
}
