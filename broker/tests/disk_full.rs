//! A full disk under the bundled broker's JetStream, simulated through its write seam (the
//! file named by `BROKER_TEST_DISK_FREE_FILE` holds the bytes left; no mount, no root): a
//! publish is refused with 503 and the disk's error, as nats-server answers on a real full
//! disk; nothing acknowledged before is lost; a purge that fits works during, one that does not
//! is refused cleanly; once there is room again publishing works without a restart; and a
//! restart, full or not, finds a consistent stream. (The bundled broker alone: nats-server has
//! no such seam; `docs/broker.md` says what it does on a real full disk.)

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context};
use broker::harness::{ServerKind, ServerProcess};
use broker::store::FREE_FILE_VAR;
use serde_json::{json, Value};

/// The bound on each request.
const WAIT: Duration = Duration::from_secs(10);

fn start(store: &Path, free_file: &Path) -> anyhow::Result<ServerProcess> {
    let kind = ServerKind::Bundled(env!("CARGO_BIN_EXE_broker").into());
    let store = store.to_str().context("store path is not UTF-8")?;
    let free_file = free_file.to_str().context("path is not UTF-8")?;
    ServerProcess::start_with_env(&kind, &["-js", "-sd", store], &[(FREE_FILE_VAR, free_file)])
}

async fn request(
    client: &async_nats::Client,
    subject: &str,
    body: String,
) -> anyhow::Result<Value> {
    let reply = tokio::time::timeout(WAIT, client.request(subject.to_string(), body.into()))
        .await
        .with_context(|| format!("no reply to {subject} within {WAIT:?}"))?
        .with_context(|| format!("request to {subject}"))?;
    serde_json::from_slice(&reply.payload).context("the reply is not JSON")
}

async fn publish(client: &async_nats::Client, payload: &str) -> anyhow::Result<Value> {
    request(client, "full.a", payload.to_string()).await
}

/// Asserts a 503 PubAck error with the text nats-server gives a write on a full disk.
fn refused_for_full_disk(ack: &Value) -> anyhow::Result<()> {
    let error = &ack["error"];
    let text = error["description"].as_str().unwrap_or_default();
    ensure!(
        error["code"] == 503 && error["err_code"] == 10077,
        "not refused: {ack}"
    );
    ensure!(text.ends_with(": no space left on device"), "{ack}");
    Ok(())
}

async fn state(client: &async_nats::Client) -> anyhow::Result<Value> {
    let info = request(client, "$JS.API.STREAM.INFO.FULL", String::new()).await?;
    let s = &info["state"];
    Ok(json!({"messages": s["messages"], "first_seq": s["first_seq"], "last_seq": s["last_seq"]}))
}

/// Asserts the stream's messages, first and last sequence.
async fn expect_state(client: &async_nats::Client, expected: [u64; 3]) -> anyhow::Result<()> {
    let [messages, first_seq, last_seq] = expected;
    let expected = json!({"messages": messages, "first_seq": first_seq, "last_seq": last_seq});
    let actual = state(client).await?;
    ensure!(actual == expected, "state {actual}, expected {expected}");
    Ok(())
}

async fn purge(client: &async_nats::Client) -> anyhow::Result<Value> {
    request(client, "$JS.API.STREAM.PURGE.FULL", String::new()).await
}

/// Stops the broker (SIGTERM) and starts it again on the same store, connected.
async fn restart(
    mut server: ServerProcess,
    store: &Path,
    free: &Path,
) -> anyhow::Result<(ServerProcess, async_nats::Client)> {
    server.terminate(WAIT)?;
    let server = start(store, free)?;
    let client = async_nats::connect(server.client_url()).await?;
    Ok((server, client))
}

async fn scenario(store: &Path, free: &Path) -> anyhow::Result<()> {
    let server = start(store, free)?;
    let client = async_nats::connect(server.client_url()).await?;
    let config = json!({"name": "FULL", "subjects": ["full.>"]}).to_string();
    let created = request(&client, "$JS.API.STREAM.CREATE.FULL", config).await?;
    ensure!(created.get("error").is_none(), "{created}");
    for i in 1..=5 {
        let ack = publish(&client, &format!("acked {i}")).await?;
        ensure!(ack["seq"] == i, "{ack}");
    }

    std::fs::write(free, "0")?;
    refused_for_full_disk(&publish(&client, "buffered, then taken back").await?)?;
    refused_for_full_disk(&publish(&client, "refused at once").await?)?;
    let refused = purge(&client).await?;
    ensure!(refused["error"]["err_code"] == 10110, "{refused}");
    expect_state(&client, [5, 1, 6]).await?;

    // A restart while the disk is still full finds what was acknowledged.
    drop(client);
    let (server, client) = restart(server, store, free).await?;
    expect_state(&client, [5, 1, 5]).await?;
    let first = request(
        &client,
        "$JS.API.STREAM.MSG.GET.FULL",
        json!({"seq": 1}).to_string(),
    );
    ensure!(first.await?["message"]["seq"] == 1, "message 1 is readable");

    // Room for a purge record, not for a message.
    std::fs::write(free, "64")?;
    let purged = purge(&client).await?;
    ensure!(purged["purged"] == 5, "{purged}");
    refused_for_full_disk(&publish(&client, &"x".repeat(1000)).await?)?;

    // Room again: no restart needed. Sequence 6, taken back, is not used again.
    std::fs::remove_file(free)?;
    let ack = publish(&client, "room again").await?;
    ensure!(ack["seq"] == 7, "{ack}");
    expect_state(&client, [1, 7, 7]).await?;

    drop(client);
    let (_server, client) = restart(server, store, free).await?;
    expect_state(&client, [1, 7, 7]).await?;
    let ack = publish(&client, "after restart").await?;
    ensure!(ack["seq"] == 8, "{ack}");
    Ok(())
}

#[test]
fn a_full_disk_refuses_publishes_and_recovers_without_a_restart() -> anyhow::Result<()> {
    let store = tempfile::tempdir()?;
    let free = store.path().join("free-bytes");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), scenario(store.path(), &free))
            .await
            .context("the scenario did not finish within 2 minutes")?
    })
}
