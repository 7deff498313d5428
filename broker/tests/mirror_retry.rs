//! A mirror that cannot store its origin's next message (full, `discard: new`) takes it once it
//! has room, and loses nothing. nats-server takes it too, but only when its consumer retry comes
//! round, seconds later, so the differential suite does not pin this; it runs against the
//! bundled broker alone.

use std::time::Duration;

use anyhow::{ensure, Context};
use async_nats::jetstream::{self, stream};
use broker::harness::{ServerKind, ServerProcess};

/// Bound on every wait.
const WAIT: Duration = Duration::from_secs(10);

async fn state(js: &jetstream::Context, name: &str) -> anyhow::Result<stream::State> {
    let mut stream = js.get_stream(name).await?;
    Ok(stream.info().await?.state.clone())
}

/// Polls until `stream` holds `msgs` messages up to `last_seq`.
async fn await_state(
    js: &jetstream::Context,
    name: &str,
    msgs: u64,
    last_seq: u64,
) -> anyhow::Result<stream::State> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let st = state(js, name).await?;
        if st.messages == msgs && st.last_sequence == last_seq {
            return Ok(st);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{name}: {msgs} messages up to {last_seq} did not happen, {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn broker_a_full_mirror_takes_the_refused_message_once_it_has_room() -> anyhow::Result<()> {
    let store = tempfile::tempdir().context("creating a store directory")?;
    let dir = store.path().to_str().context("store path is not UTF-8")?;
    let kind = ServerKind::Bundled(env!("CARGO_BIN_EXE_broker").into());
    let server = ServerProcess::start(&kind, &["-js", "-sd", dir])?;
    let client = async_nats::connect(server.client_url()).await?;
    let js = jetstream::new(client);
    js.create_stream(stream::Config {
        name: "O".into(),
        subjects: vec!["o".into()],
        ..Default::default()
    })
    .await?;
    for i in 0..3 {
        js.publish("o", format!("m{i}").into()).await?.await?;
    }
    let mirror = js
        .create_stream(stream::Config {
            name: "M".into(),
            mirror: Some(stream::Source {
                name: "O".into(),
                ..Default::default()
            }),
            max_messages: 2,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await?;
    await_state(&js, "M", 2, 2).await?;
    mirror.purge().await?;
    let st = await_state(&js, "M", 1, 3).await?;
    ensure!(st.first_sequence == 3, "{st:?}");
    let copy = mirror.get_raw_message(3).await?;
    ensure!(copy.payload.as_ref() == b"m2", "{copy:?}");
    Ok(())
}
