//! The bundled broker's redeliver-on-disconnect extension (`--redeliver_on_disconnect`, on by
//! default): when a connection closes, the unacknowledged messages it held for a consumer are
//! redelivered to the remaining members at once, as NATS Streaming did with queue groups,
//! instead of after `ack_wait`. nats-server does not do this (it waits for `ack_wait`), so these
//! tests run against the bundled broker alone and their names say `broker_extension`.
//!
//! Each test starts a broker of its own with `ack_wait` at 30 s and expects the redelivery
//! within [`SOON`]: a functional bound (at once rather than at `ack_wait`), not a timing.

use std::convert::Infallible;
use std::future::IntoFuture;
use std::time::Duration;

use anyhow::{ensure, Context};
use async_nats::jetstream::{self, consumer, stream, AckKind};
use broker::harness::{ServerKind, ServerProcess};
use futures_util::{Stream, StreamExt};
use tempfile::TempDir;

/// Long enough that a redelivery before it proves the extension did it.
const ACK_WAIT: Duration = Duration::from_secs(30);
/// How long a redelivery "at once" may take.
const SOON: Duration = Duration::from_secs(5);
/// Bound on every other wait.
const WAIT: Duration = Duration::from_secs(10);

/// A broker with JetStream on a store of its own, and a stream `WORK` on `work.>`.
struct Broker {
    server: ServerProcess,
    _store: TempDir,
}

impl Broker {
    async fn start(extra: &[&str]) -> anyhow::Result<Broker> {
        let store = tempfile::tempdir().context("creating a store directory")?;
        let dir = store.path().to_str().context("store path is not UTF-8")?;
        let mut args = vec!["-js", "-sd", dir];
        args.extend_from_slice(extra);
        let kind = ServerKind::Bundled(env!("CARGO_BIN_EXE_broker").into());
        let server = ServerProcess::start(&kind, &args)?;
        let broker = Broker {
            server,
            _store: store,
        };
        broker
            .jetstream()
            .await?
            .create_stream(stream::Config {
                name: "WORK".into(),
                subjects: vec!["work.>".into()],
                ..Default::default()
            })
            .await
            .context("creating stream WORK")?;
        Ok(broker)
    }

    async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        bounded(
            WAIT,
            "connecting",
            async_nats::connect(self.server.client_url()),
        )
        .await?
        .context("connecting to the broker")
    }

    async fn jetstream(&self) -> anyhow::Result<jetstream::Context> {
        Ok(jetstream::new(self.connect().await?))
    }

    /// Publishes `n` messages `work.0`, `work.1`, … and awaits their PubAcks.
    async fn publish(&self, n: usize) -> anyhow::Result<()> {
        let js = self.jetstream().await?;
        for i in 0..n {
            let ack = js.publish(format!("work.{i}"), "job".into()).await?;
            bounded(WAIT, "a PubAck", ack.into_future()).await??;
        }
        Ok(())
    }
}

async fn bounded<T>(
    bound: Duration,
    what: &str,
    f: impl std::future::Future<Output = T>,
) -> anyhow::Result<T> {
    tokio::time::timeout(bound, f)
        .await
        .map_err(|_| anyhow::anyhow!("timed out after {bound:?} waiting for {what}"))
}

/// A durable pull consumer of `WORK`, the way the services share one.
async fn pull_consumer(
    js: &jetstream::Context,
    ack_wait: Duration,
) -> anyhow::Result<consumer::PullConsumer> {
    js.get_stream("WORK")
        .await?
        .get_or_create_consumer(
            "workers",
            consumer::pull::Config {
                durable_name: Some("workers".into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait,
                ..Default::default()
            },
        )
        .await
        .context("creating the pull consumer")
}

/// Fetches exactly `n` messages (without acknowledging them).
async fn fetch(c: &consumer::PullConsumer, n: usize) -> anyhow::Result<Vec<jetstream::Message>> {
    let mut batch = c
        .fetch()
        .max_messages(n)
        .expires(Duration::from_secs(2))
        .messages()
        .await?;
    let mut got = Vec::new();
    while let Some(msg) = bounded(WAIT, "a fetched message", batch.next()).await? {
        got.push(msg.map_err(|e| anyhow::anyhow!("fetch: {e}"))?);
    }
    ensure!(got.len() == n, "fetched {} messages, wanted {n}", got.len());
    Ok(got)
}

/// Connection "a": connects and fetches `n` messages of the pull consumer, acknowledging none.
async fn holder(
    broker: &Broker,
    n: usize,
    ack_wait: Duration,
) -> anyhow::Result<(async_nats::Client, Vec<jetstream::Message>)> {
    let a = broker.connect().await?;
    let held = fetch(
        &pull_consumer(&jetstream::new(a.clone()), ack_wait).await?,
        n,
    )
    .await?;
    Ok((a, held))
}

/// Connection "b": pulls continuously from the same consumer, as a service replica does.
async fn puller(
    broker: &Broker,
    ack_wait: Duration,
) -> anyhow::Result<(consumer::PullConsumer, consumer::pull::Stream)> {
    let b = pull_consumer(&broker.jetstream().await?, ack_wait).await?;
    let messages = b.stream().expires(ACK_WAIT).messages().await?;
    Ok((b, messages))
}

/// (stream sequence, delivery count) of a message.
fn delivery(msg: &jetstream::Message) -> anyhow::Result<(u64, i64)> {
    let info = msg
        .info()
        .map_err(|e| anyhow::anyhow!("ack subject: {e}"))?;
    Ok((info.stream_sequence, info.delivered))
}

/// Receives `n` messages within `bound`, acknowledging each if `ack`; returns them as
/// (stream sequence, delivery count), sorted.
async fn receive<E: std::fmt::Display>(
    messages: &mut (impl Stream<Item = Result<jetstream::Message, E>> + Unpin),
    n: usize,
    ack: bool,
    bound: Duration,
) -> anyhow::Result<Vec<(u64, i64)>> {
    let mut got = Vec::new();
    bounded(bound, "the messages", async {
        while got.len() < n {
            let msg = messages.next().await.context("the message stream ended")?;
            let msg = msg.map_err(|e| anyhow::anyhow!("receiving: {e}"))?;
            got.push(delivery(&msg)?);
            if ack {
                msg.double_ack()
                    .await
                    .map_err(|e| anyhow::anyhow!("ack: {e}"))?;
            }
        }
        anyhow::Ok(())
    })
    .await??;
    got.sort();
    Ok(got)
}

/// Closes a connection the way a crashed replica does: nothing acknowledged, nothing handed
/// back.
async fn close(client: async_nats::Client) -> anyhow::Result<()> {
    client.drain().await.context("closing the connection")
}

/// The extension (nats-server does not have it): two connections pull from one durable
/// consumer; the one holding messages closes without acking, and the other receives them at
/// once, delivered a second time, instead of after `ack_wait`.
#[tokio::test]
async fn broker_extension_pull_messages_of_a_closed_connection_are_redelivered_at_once(
) -> anyhow::Result<()> {
    let broker = Broker::start(&[]).await?;
    broker.publish(3).await?;
    let (a, held) = holder(&broker, 3, ACK_WAIT).await?;
    for msg in &held {
        ensure!(delivery(msg)?.1 == 1, "first delivery counts 1");
    }
    let (_b, mut messages) = puller(&broker, ACK_WAIT).await?;
    close(a).await?;
    let got = receive(&mut messages, 3, true, SOON).await?;
    ensure!(
        got == vec![(1, 2), (2, 2), (3, 2)],
        "want stream sequences 1..=3 delivered twice, got {got:?}"
    );
    Ok(())
}

/// The extension (nats-server does not have it), for messages acknowledged before the close:
/// they stay acknowledged, and only the others come back.
#[tokio::test]
async fn broker_extension_acked_messages_of_a_closed_connection_are_not_redelivered(
) -> anyhow::Result<()> {
    let broker = Broker::start(&[]).await?;
    broker.publish(4).await?;
    let (a, held) = holder(&broker, 4, ACK_WAIT).await?;
    for msg in held
        .iter()
        .filter(|m| delivery(m).is_ok_and(|(seq, _)| seq % 2 == 1))
    {
        msg.double_ack()
            .await
            .map_err(|e| anyhow::anyhow!("ack: {e}"))?;
    }
    let nak = &held[1];
    nak.ack_with(AckKind::Nak(Some(ACK_WAIT)))
        .await
        .map_err(|e| anyhow::anyhow!("nak: {e}"))?;
    let (mut b, mut messages) = puller(&broker, ACK_WAIT).await?;
    close(a).await?;
    let got = receive(&mut messages, 1, true, SOON).await?;
    ensure!(
        got == vec![(4, 2)],
        "only the unanswered message 4 comes back at once (1 and 3 were acked, 2 handed \
         back with a delay), got {got:?}"
    );
    let info = b.info().await?;
    ensure!(
        info.num_ack_pending == 1 && info.num_redelivered == 0,
        "message 2 waits for its NAK delay: {info:?}"
    );
    Ok(())
}

/// With the extension switched off, a closed connection's messages wait for `ack_wait`, as on
/// nats-server.
#[tokio::test]
async fn switched_off_the_messages_of_a_closed_connection_wait_for_ack_wait() -> anyhow::Result<()>
{
    let ack_wait = Duration::from_secs(3);
    let broker = Broker::start(&["--redeliver_on_disconnect=false"]).await?;
    broker.publish(1).await?;
    let (a, _held) = holder(&broker, 1, ack_wait).await?;
    let (_b, mut messages) = puller(&broker, ack_wait).await?;
    close(a).await?;
    let early = tokio::time::timeout(ack_wait / 2, messages.next()).await;
    ensure!(early.is_err(), "redelivered before ack_wait: {early:?}");
    let got = receive(&mut messages, 1, true, ack_wait + WAIT).await?;
    ensure!(got == vec![(1, 2)], "redelivered after ack_wait: {got:?}");
    Ok(())
}

/// A push subscription's messages as JetStream messages (to read their ack subject and ack).
async fn push_subscriber(
    client: &async_nats::Client,
    group: Option<&str>,
) -> anyhow::Result<impl Stream<Item = Result<jetstream::Message, Infallible>> + Unpin> {
    let sub = match group {
        Some(group) => client.queue_subscribe("deliver.work", group.into()).await?,
        None => client.subscribe("deliver.work").await?,
    };
    client.flush().await?;
    let context = jetstream::new(client.clone());
    Ok(sub.map(move |message| {
        Ok(jetstream::Message {
            message,
            context: context.clone(),
        })
    }))
}

async fn push_consumer(js: &jetstream::Context, group: Option<&str>) -> anyhow::Result<()> {
    js.get_stream("WORK")
        .await?
        .create_consumer(consumer::push::Config {
            durable_name: Some("pushed".into()),
            deliver_subject: "deliver.work".into(),
            deliver_group: group.map(Into::into),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            ..Default::default()
        })
        .await
        .context("creating the push consumer")?;
    Ok(())
}

/// The extension (nats-server does not have it) for a push consumer with a deliver group: what
/// the member that closed held goes to the remaining member at once.
#[tokio::test]
async fn broker_extension_push_group_messages_of_a_closed_member_go_to_the_others_at_once(
) -> anyhow::Result<()> {
    let broker = Broker::start(&[]).await?;
    push_consumer(&broker.jetstream().await?, Some("workers")).await?;
    let a = broker.connect().await?;
    let mut member_a = push_subscriber(&a, Some("workers")).await?;
    broker.publish(3).await?;
    let first = receive(&mut member_a, 3, false, WAIT).await?;
    ensure!(first == vec![(1, 1), (2, 1), (3, 1)], "member a: {first:?}");
    let b = broker.connect().await?;
    let mut member_b = push_subscriber(&b, Some("workers")).await?;
    close(a).await?;
    let got = receive(&mut member_b, 3, true, SOON).await?;
    ensure!(got == vec![(1, 2), (2, 2), (3, 2)], "member b: {got:?}");
    Ok(())
}

/// The extension (nats-server does not have it) for a push consumer without a group, as a NATS
/// Streaming durable: what its subscriber held when it closed is redelivered as soon as a
/// subscriber is back, instead of after `ack_wait`.
#[tokio::test]
async fn broker_extension_push_messages_of_a_closed_subscriber_go_to_the_next_one_at_once(
) -> anyhow::Result<()> {
    let broker = Broker::start(&[]).await?;
    push_consumer(&broker.jetstream().await?, None).await?;
    let a = broker.connect().await?;
    let mut subscriber_a = push_subscriber(&a, None).await?;
    broker.publish(2).await?;
    let first = receive(&mut subscriber_a, 2, false, WAIT).await?;
    ensure!(first == vec![(1, 1), (2, 1)], "subscriber a: {first:?}");
    close(a).await?;
    let b = broker.connect().await?;
    let mut subscriber_b = push_subscriber(&b, None).await?;
    let got = receive(&mut subscriber_b, 2, true, SOON).await?;
    ensure!(got == vec![(1, 2), (2, 2)], "subscriber b: {got:?}");
    Ok(())
}
