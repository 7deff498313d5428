//! Restarts: a file stream and a durable consumer survive SIGTERM and SIGKILL of the server
//! with their messages, stream state and ack state (ack floor, pending acks, redeliveries).
//!
//! The harness restarts a server on the same store directory but on new ports, so clients
//! reconnect to the new address.

use std::time::Duration;

use anyhow::ensure;
use serde_json::{json, Value};

use super::*;
use crate::{block_on, scenarios, with_log, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_restart_after_sigterm_restores_messages_and_the_consumer_ack_state,
        js_restart_after_kill_restores_acked_publishes_and_the_consumer_ack_state,
        js_restart_forgets_memory_streams_entirely,
    ]
}

/// Creates stream RST (file storage) with 10 messages on `rst.<i % 2>` (seq 3 deleted) and
/// durable D (explicit acks, ack_wait 500 ms); pulls 5 and acks consumer seqs 1, 2 and 4
/// (stream seqs 1, 2, 5), leaving stream seqs 4 and 6 unacked. Returns the stream info state
/// and the message at seq 7, for comparison after the restart.
async fn prepare(url: &str) -> anyhow::Result<(Value, Value)> {
    let c = connect(url).await?;
    create_stream(&c, json!({"name": "RST", "subjects": ["rst.*"]})).await?;
    for i in 0..10 {
        let id = format!("id{i}");
        publish(
            &c,
            &format!("rst.{}", i % 2),
            &[("Nats-Msg-Id", &id)],
            &format!("m{}", i + 1),
        )
        .await?;
    }
    api_ok(&c, "STREAM.MSG.DELETE.RST", json!({"seq": 3})).await?;
    create_consumer(
        &c,
        "RST",
        json!({"durable_name": "D", "ack_policy": "explicit", "ack_wait": ms(500)}),
    )
    .await?;
    let mut inbox = pull(&c, "RST", "D", json!({"batch": 5})).await?;
    let mut msgs = Vec::new();
    for _ in 0..5 {
        msgs.push(inbox.next(WAIT, "a pulled message").await?);
    }
    for i in [0, 1, 3] {
        ack_sync(&c, &msgs[i], "+ACK").await?;
    }
    // nats-server moves the ack floor's stream_seq over the deleted seq 3: the floor is the
    // stream seq just below the first unacked one (4).
    expect_counters(&c, "RST", "D", [5, 6, 2, 3, 2, 0, 4]).await?;
    let state = stream_state(&c, "RST").await?;
    let seven = api_ok(&c, "STREAM.MSG.GET.RST", json!({"seq": 7})).await?;
    Ok((state, seven))
}

/// After a restart: the same stream state and message, the same consumer counters, and a
/// pull that gets the two unacked messages again (delivery count 2) before the four new ones.
async fn check(url: &str, state: Value, seven: Value) -> anyhow::Result<()> {
    let c = connect(url).await?;
    let after = stream_state(&c, "RST").await?;
    ensure!(after == state, "stream state before {state}, after {after}");
    let again = api_ok(&c, "STREAM.MSG.GET.RST", json!({"seq": 7})).await?;
    ensure!(again == seven, "seq 7 before {seven}, after {again}");
    let reply = api(&c, "STREAM.MSG.GET.RST", json!({"seq": 3})).await?;
    expect_error(&reply, 404, 10037, "no message found")?;
    expect_counters(&c, "RST", "D", [5, 6, 2, 3, 2, 0, 4]).await?;
    // The duplicate window survives the restart too.
    let ack = publish(&c, "rst.1", &[("Nats-Msg-Id", "id9")], "again").await?;
    ensure!(
        ack == json!({"stream": "RST", "seq": 10, "duplicate": true}),
        "{ack}"
    );

    // Let the 500 ms ack_wait of the two unacked messages pass: then a pull is served their
    // redeliveries before any new message.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut inbox = pull(&c, "RST", "D", json!({"batch": 6, "expires": ms(3000)})).await?;
    let mut got = Vec::new();
    for _ in 0..6 {
        let msg = inbox.next(WAIT, "redeliveries then new messages").await?;
        got.push(AckReply::of(&msg)?.numbers());
        ack_sync(&c, &msg, "+ACK").await?;
    }
    let (redelivered, new) = got.split_at(2);
    let redelivered: Vec<(u64, u64)> = redelivered.iter().map(|n| (n.0, n.1)).collect();
    ensure!(
        redelivered == [(2, 4), (2, 6)],
        "redeliveries first, got {got:?}"
    );
    let new: Vec<(u64, u64)> = new.iter().map(|n| (n.0, n.1)).collect();
    ensure!(
        new == [(1, 7), (1, 8), (1, 9), (1, 10)],
        "then the new ones, got {got:?}"
    );
    // num_redelivered counts only unacked messages delivered more than once: back to 0.
    expect_counters(&c, "RST", "D", [11, 10, 11, 10, 0, 0, 0]).await
}

fn js_restart_after_sigterm_restores_messages_and_the_consumer_ack_state(
    t: &Target,
) -> anyhow::Result<()> {
    let mut js = JsServer::start(t)?;
    let (state, seven) = block_on(prepare(&js.server.client_url()))?;
    js.restart(false)?;
    let result = block_on(check(&js.server.client_url(), state, seven));
    with_log(&js.server, result)
}

fn js_restart_after_kill_restores_acked_publishes_and_the_consumer_ack_state(
    t: &Target,
) -> anyhow::Result<()> {
    let mut js = JsServer::start(t)?;
    let (state, seven) = block_on(prepare(&js.server.client_url()))?;
    // nats-server writes a consumer's state at most 100 ms after a change (and the messages
    // before the PubAck); give it that long before the SIGKILL.
    std::thread::sleep(Duration::from_millis(300));
    js.restart(true)?;
    let result = block_on(check(&js.server.client_url(), state, seven));
    with_log(&js.server, result)
}

fn js_restart_forgets_memory_streams_entirely(t: &Target) -> anyhow::Result<()> {
    let mut js = JsServer::start(t)?;
    let url = js.server.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(
            &c,
            json!({"name": "RMEM", "subjects": ["rmem"], "storage": "memory"}),
        )
        .await?;
        publish_n(&c, "rmem", "m", 3).await?;
        create_consumer(
            &c,
            "RMEM",
            json!({"durable_name": "D", "ack_policy": "explicit"}),
        )
        .await?;
        anyhow::Ok(())
    })?;
    js.restart(false)?;
    let url = js.server.client_url();
    let result = block_on(async move {
        let c = connect(&url).await?;
        // nats-server does not write a memory stream's config to the store: after a restart
        // the stream and its consumers are gone, and its subjects are free.
        let reply = api(&c, "STREAM.INFO.RMEM", Value::Null).await?;
        expect_error(&reply, 404, 10059, "stream not found")?;
        let names = api(&c, "STREAM.NAMES", Value::Null).await?;
        ensure!(names["total"] == 0, "{names}");
        create_stream(&c, json!({"name": "RMEM2", "subjects": ["rmem"]})).await?;
        Ok(())
    });
    with_log(&js.server, result)
}
