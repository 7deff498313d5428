//! Limits set in a config file: max_payload, max_control_line, max_connections, max_pending.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::monitor::wait_for_connections;
use crate::protocol::expect_ops;
use crate::raw::{RawClient, ServerOp, WAIT};
use crate::{block_on, scenarios, with_log, within, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        low_max_payload_is_advertised_in_info_and_enforced,
        low_max_control_line_is_enforced,
        connection_over_max_connections_gets_info_then_an_error_and_close,
        slow_consumer_is_cut_off_while_a_healthy_subscriber_gets_everything,
    ]
}

fn low_max_payload_is_advertised_in_info_and_enforced(t: &Target) -> anyhow::Result<()> {
    let server = t.start_with_config("max_payload: 100\n", &[])?;
    block_on(async move {
        let mut c = RawClient::quiet(server.port()).await?;
        ensure!(c.info["max_payload"] == 100, "INFO max_payload: {}", c.info);
        let fits = "x".repeat(100);
        c.send(format!("SUB mp.s 1\r\nPUB mp.s 100\r\n{fits}\r\n"))
            .await?;
        let expected = [ServerOp::msg("mp.s", "1", fits.as_bytes())];
        expect_ops(c.ping_until_pong().await?, &expected, "a 100-byte PUB")?;
        c.send(format!("PUB mp.s 101\r\n{fits}x\r\n")).await?;
        c.expect_err_and_close("Maximum Payload Violation").await
    })
}

fn low_max_control_line_is_enforced(t: &Target) -> anyhow::Result<()> {
    let server = t.start_with_config("max_control_line: 256\n", &[])?;
    block_on(async move {
        let mut c = RawClient::quiet(server.port()).await?;
        c.send(format!("SUB {} 1\r\n", "a".repeat(200))).await?;
        c.expect_still_open().await?;
        c.send(format!("SUB {} 2\r\n", "b".repeat(300))).await?;
        c.expect_err_and_close("maximum control line exceeded")
            .await
    })
}

fn connection_over_max_connections_gets_info_then_an_error_and_close(
    t: &Target,
) -> anyhow::Result<()> {
    let server = t.start_with_config("max_connections: 2\n", &[])?;
    block_on(async move {
        // The harness's readiness probe was a connection too, and the server may still count
        // it for a moment: connect with retries, then wait until only our two are left.
        let first = connect_retrying(server.port()).await?;
        let _second = connect_retrying(server.port()).await?;
        wait_for_connections(server.http_port(), 2).await?;
        let ops = RawClient::open(server.port()).await?.until_closed().await?;
        let [ServerOp::Info(_), ServerOp::Err(err)] = ops.as_slice() else {
            bail!("third connection: expected INFO, -ERR and close, got {ops:?}");
        };
        ensure!(
            err == "'maximum connections exceeded'",
            "third connection got -ERR {err}"
        );
        drop(first);
        // The server notices the close asynchronously.
        connect_retrying(server.port())
            .await
            .context("no connection accepted after one closed")
            .map(drop)
    })
}

/// A [`RawClient::quiet`] connection, retried for up to [`WAIT`] while the server refuses it.
async fn connect_retrying(port: u16) -> anyhow::Result<RawClient> {
    let deadline = Instant::now() + WAIT;
    loop {
        match RawClient::quiet(port).await {
            Ok(client) => return Ok(client),
            Err(err) if Instant::now() >= deadline => return Err(err),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// A config whose max_pending is small enough that a subscriber that never reads is cut off
/// once the kernel's socket buffers are full.
const SLOW_CONSUMER_CONFIG: &str =
    "max_payload: 65536\nmax_pending: 262144\nwrite_deadline: \"2s\"\n";
/// 2,048 messages of 8 KiB: 16 MiB, far beyond any loopback socket buffer.
const FLOOD_MESSAGES: usize = 2048;
const FLOOD_SIZE: usize = 8192;
/// Messages go out in bursts of this many, each read by the healthy subscriber before the
/// next: 128 KiB, half of max_pending, so however slowly the healthy client is scheduled the
/// server never holds more than half the limit for it, while a client that never reads passes
/// the limit for sure. (With bursts of max_pending or more, or an unpaced flood, nats-server
/// itself cuts off the healthy client now and then on a busy machine: not deterministic.)
const BURST: usize = 16;

fn slow_consumer_is_cut_off_while_a_healthy_subscriber_gets_everything(
    t: &Target,
) -> anyhow::Result<()> {
    let server = t.start_with_config(SLOW_CONSUMER_CONFIG, &[])?;
    let result = block_on(async {
        let url = server.client_url();
        let mut slow = RawClient::quiet(server.port()).await?;
        slow.send("SUB flood.s 1\r\n").await?;
        slow.ping_until_pong().await?;
        let (healthy, healthy_events) = connect_recording_events(&url).await?;
        let mut sub = healthy.subscribe("flood.s").await?;
        healthy.flush().await?;
        let (publisher, publisher_events) = connect_recording_events(&url).await?;
        let payload = bytes::Bytes::from(vec![b'f'; FLOOD_SIZE]);
        let mut received = 0;
        let flood = async {
            for _ in 0..FLOOD_MESSAGES / BURST {
                for _ in 0..BURST {
                    publisher.publish("flood.s", payload.clone()).await?;
                }
                within(WAIT, "the publisher's flush", publisher.flush())
                    .await?
                    .context("the publisher was stalled or cut off")?;
                for _ in 0..BURST {
                    let next = within(WAIT, "the healthy subscriber", sub.next()).await?;
                    let msg = next.context("the healthy subscription ended")?;
                    ensure!(
                        msg.payload.len() == FLOOD_SIZE,
                        "{} bytes",
                        msg.payload.len()
                    );
                    received += 1;
                }
            }
            anyhow::Ok(())
        };
        let flooded = within(Duration::from_secs(30), "the flood", flood).await;
        let events = |e: &Arc<Mutex<Vec<String>>>| e.lock().unwrap().clone();
        if let Err(err) = flooded.and_then(|done| done) {
            bail!(
                "{err:#}; the healthy subscriber got {received} of {FLOOD_MESSAGES} messages; \
                 subscriber events {:?}, publisher events {:?}",
                events(&healthy_events),
                events(&publisher_events)
            );
        }
        for (who, events) in [
            ("publisher", events(&publisher_events)),
            ("subscriber", events(&healthy_events)),
        ] {
            let trouble = events.iter().any(|e| e != "connected");
            ensure!(
                !trouble,
                "the healthy {who} saw connection events {events:?}"
            );
        }
        let ops = slow
            .until_closed()
            .await
            .context("the slow consumer was not cut off")?;
        let delivered = ops
            .iter()
            .filter(|op| matches!(op, ServerOp::Msg(_)))
            .count();
        ensure!(
            delivered < FLOOD_MESSAGES,
            "the slow consumer got every message"
        );
        Ok(())
    });
    with_log(&server, result)
}

/// Connects with async-nats and records every connection event (disconnects, errors) for
/// failure messages.
async fn connect_recording_events(
    url: &str,
) -> anyhow::Result<(async_nats::Client, Arc<Mutex<Vec<String>>>)> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let recorder = Arc::clone(&events);
    let client = async_nats::ConnectOptions::new()
        .event_callback(move |event| {
            let recorder = Arc::clone(&recorder);
            async move { recorder.lock().unwrap().push(event.to_string()) }
        })
        .connect(url)
        .await
        .with_context(|| format!("connecting async-nats to {url}"))?;
    Ok((client, events))
}
