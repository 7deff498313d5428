//! Crash safety of the bundled broker's JetStream: `kill -9` in the middle of a load of acked
//! publishes and consumer acks, restart on the same store, and check that nothing acknowledged
//! was lost, nothing was stored twice, order held, and the durable consumer resumes from its ack
//! floor without losing an unacknowledged message. (A test of the bundled broker alone: it is
//! about its own file store.)

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use async_nats::jetstream::{self, consumer::pull, stream};
use broker::harness::{ServerKind, ServerProcess};
use futures_util::StreamExt;

/// Outstanding PubAcks the publisher allows itself.
const WINDOW: usize = 64;

fn bundled() -> ServerKind {
    ServerKind::Bundled(env!("CARGO_BIN_EXE_broker").into())
}

/// (payload index, stream sequence) of every publish whose PubAck arrived.
type Acked = Arc<Mutex<Vec<(u64, u64)>>>;

async fn publish_until_killed(js: jetstream::Context, acked: Acked) {
    let mut window = std::collections::VecDeque::new();
    for i in 0u64.. {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", i.to_string().as_str());
        let Ok(ack) = js
            .publish_with_headers(format!("crash.{}", i % 7), headers, i.to_string().into())
            .await
        else {
            return;
        };
        window.push_back((i, ack));
        if window.len() >= WINDOW {
            let (i, ack) = window.pop_front().expect("non-empty");
            match ack.await {
                Ok(ack) => acked.lock().unwrap().push((i, ack.sequence)),
                Err(_) => return,
            }
        }
    }
}

async fn consume_until_killed(
    consumer: jetstream::consumer::Consumer<pull::Config>,
    acked: Arc<Mutex<BTreeSet<u64>>>,
) {
    loop {
        let Ok(mut batch) = consumer
            .fetch()
            .max_messages(50)
            .expires(Duration::from_millis(200))
            .messages()
            .await
        else {
            return;
        };
        while let Some(Ok(msg)) = batch.next().await {
            let Ok(info) = msg.info().map(|i| i.stream_sequence) else {
                return;
            };
            // Acknowledge two of three: the third stays pending across the crash.
            if info % 3 != 0 {
                if msg.double_ack().await.is_err() {
                    return;
                }
                acked.lock().unwrap().insert(info);
            }
        }
    }
}

#[test]
fn acked_messages_and_consumer_acks_survive_kill_9() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(90), crash_and_check())
            .await
            .context("the crash test did not finish within 90 s")?
    })
}

async fn crash_and_check() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = dir.path().to_str().context("utf-8 path")?.to_string();
    let mut server = ServerProcess::start(&bundled(), &["-js", "-D", "-sd", &store])?;
    let result = load_and_kill(&mut server, &store).await;
    if result.is_err() {
        eprintln!(
            "--- log of the broker that was killed ---\n{}",
            server.log()
        );
    }
    result
}

/// Runs the load, kills the broker, restarts it on the same store and checks.
async fn load_and_kill(server: &mut ServerProcess, store: &str) -> anyhow::Result<()> {
    let client = async_nats::connect(server.client_url()).await?;
    let js = jetstream::new(client);
    let stream = js
        .create_stream(stream::Config {
            name: "CRASH".into(),
            subjects: vec!["crash.>".into()],
            ..Default::default()
        })
        .await?;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("worker".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(1),
            max_ack_pending: 100_000,
            ..Default::default()
        })
        .await?;
    let acked: Acked = Arc::default();
    let consumed: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
    let publisher = tokio::spawn(publish_until_killed(js.clone(), acked.clone()));
    let reader = tokio::spawn(consume_until_killed(consumer, consumed.clone()));
    // Let the load run, then crash the broker in the middle of it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 2_000 || consumed.lock().unwrap().len() < 300 {
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the load did not get going: {} acked",
                acked.lock().unwrap().len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill()?;
    let _ = tokio::time::timeout(Duration::from_secs(10), publisher).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
    let acked = acked.lock().unwrap().clone();
    let consumed = consumed.lock().unwrap().clone();

    let server = ServerProcess::start(&bundled(), &["-js", "-D", "-sd", store])?;
    let client = async_nats::connect(server.client_url()).await?;
    let js = jetstream::new(client);
    let stored = match read_all(&js).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("--- log of the restarted broker ---\n{}", server.log());
            return Err(e);
        }
    };
    check_publishes(&acked, &stored)?;
    check_consumer(&js, &stored, &consumed).await
}

/// Every stored message: sequence → payload index.
async fn read_all(js: &jetstream::Context) -> anyhow::Result<BTreeMap<u64, u64>> {
    let mut stream = js.get_stream("CRASH").await?;
    let last = stream.info().await?.state.last_sequence;
    let mut stored = BTreeMap::new();
    for seq in 1..=last {
        if let Ok(msg) = stream.get_raw_message(seq).await {
            let index: u64 = std::str::from_utf8(&msg.payload)?.parse()?;
            stored.insert(seq, index);
        }
    }
    Ok(stored)
}

fn check_publishes(acked: &[(u64, u64)], stored: &BTreeMap<u64, u64>) -> anyhow::Result<()> {
    for (index, seq) in acked {
        match stored.get(seq) {
            Some(found) if found == index => {}
            other => bail!("acked message {index} at sequence {seq} came back as {other:?}"),
        }
    }
    let indexes: Vec<u64> = stored.values().copied().collect();
    if indexes.windows(2).any(|w| w[0] >= w[1]) {
        bail!("stored messages are out of order or duplicated");
    }
    eprintln!(
        "{} acked publishes, {} stored after the crash",
        acked.len(),
        stored.len()
    );
    Ok(())
}

/// The durable consumer delivers every stored message it had not seen acknowledged.
async fn check_consumer(
    js: &jetstream::Context,
    stored: &BTreeMap<u64, u64>,
    consumed: &BTreeSet<u64>,
) -> anyhow::Result<()> {
    let stream = js.get_stream("CRASH").await?;
    let consumer: jetstream::consumer::Consumer<pull::Config> = stream
        .get_consumer("worker")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut delivered = BTreeSet::new();
    let expected: Vec<u64> = stored
        .keys()
        .filter(|seq| !consumed.contains(seq))
        .copied()
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let missing: Vec<u64> = expected
            .iter()
            .filter(|s| !delivered.contains(*s))
            .copied()
            .collect();
        if missing.is_empty() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{} unacknowledged messages were not redelivered, first {:?}",
                missing.len(),
                &missing[..missing.len().min(10)]
            );
        }
        let mut batch = consumer
            .fetch()
            .max_messages(500)
            .expires(Duration::from_millis(500))
            .messages()
            .await?;
        while let Some(msg) = batch.next().await {
            let msg = msg.map_err(|e| anyhow::anyhow!("{e}"))?;
            delivered.insert(
                msg.info()
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .stream_sequence,
            );
            msg.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    eprintln!(
        "{} acked by the consumer before the crash, {} delivered after",
        consumed.len(),
        delivered.len()
    );
    Ok(())
}
