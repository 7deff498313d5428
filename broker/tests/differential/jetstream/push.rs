//! Push consumers: delivery to deliver_subject, deliver_group queue groups, idle heartbeats
//! and flow control.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{ensure, Context};
use futures_util::StreamExt;
use serde_json::json;

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_push_consumer_delivers_to_its_deliver_subject_with_ack_replies,
        js_push_deliver_group_shares_messages_among_queue_members,
        js_push_idle_heartbeat_is_a_100_status_with_the_last_sequences,
        js_push_flow_control_request_stalls_delivery_until_answered,
    ]
}

fn js_push_consumer_delivers_to_its_deliver_subject_with_ack_replies(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "HPD", "subjects": ["hpd.*"]})).await?;
        publish_n(&c, "hpd.a", "m", 3).await?;
        // A deliver subject inside the stream's own subjects is refused.
        let reply = api(
            &c,
            "CONSUMER.CREATE.HPD.D",
            json!({"stream_name": "HPD", "config": {"durable_name": "D",
            "deliver_subject": "hpd.deliver", "ack_policy": "explicit"}}),
        )
        .await?;
        expect_error(&reply, 400, 10081, "consumer deliver subject forms a cycle")?;
        let mut inbox = Inbox::on(&c, "hpdx.deliver").await?;
        let reply = create_consumer(
            &c,
            "HPD",
            json!({"durable_name": "D", "deliver_subject": "hpdx.deliver",
            "ack_policy": "explicit"}),
        )
        .await?;
        // With a subscriber on the deliver subject the consumer reports itself bound.
        ensure!(reply["push_bound"] == true, "{reply}");
        for i in 1..=3u64 {
            let msg = inbox.next(WAIT, "a pushed message").await?;
            // The message keeps its original subject; the reply is the $JS.ACK subject.
            ensure!(
                msg.subject.as_str() == "hpd.a" && msg.payload == format!("m{}", i - 1),
                "{}",
                describe(&msg)
            );
            let ack = AckReply::of(&msg)?;
            ensure!(
                ack.stream == "HPD" && ack.consumer == "D" && ack.numbers() == (1, i, i, 3 - i),
                "{ack:?}"
            );
            ack_sync(&c, &msg, "+ACK").await?;
        }
        // New messages are pushed as they are stored.
        publish_n(&c, "hpd.b", "new", 1).await?;
        let msg = inbox.next(WAIT, "a new pushed message").await?;
        ensure!(
            msg.payload == "new0" && AckReply::of(&msg)?.numbers() == (1, 4, 4, 0),
            "{}",
            describe(&msg)
        );
        ack_sync(&c, &msg, "+ACK").await?;
        expect_counters(&c, "HPD", "D", [4, 4, 4, 4, 0, 0, 0]).await
    })
}

fn js_push_deliver_group_shares_messages_among_queue_members(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "HPG", "subjects": ["hpg"]})).await?;
        let one = connect(&url).await?;
        let two = connect(&url).await?;
        let mut first = one.queue_subscribe("hpg.deliver", "workers".into()).await?;
        let mut second = two.queue_subscribe("hpg.deliver", "workers".into()).await?;
        one.flush().await?;
        two.flush().await?;
        create_consumer(
            &c,
            "HPG",
            json!({"durable_name": "D", "deliver_subject": "hpg.deliver",
            "deliver_group": "workers", "ack_policy": "explicit"}),
        )
        .await?;
        publish_n(&c, "hpg", "m", 20).await?;
        let mut seen = [BTreeSet::new(), BTreeSet::new()];
        let mut total = 0;
        while total < 20 {
            let (i, msg) = tokio::select! {
                Some(msg) = first.next() => (0, msg),
                Some(msg) = second.next() => (1, msg),
                _ = tokio::time::sleep(WAIT) => anyhow::bail!("only {total} of 20 messages arrived"),
            };
            ensure!(
                seen[i].insert(AckReply::of(&msg)?.stream_seq),
                "member {i} got a duplicate"
            );
            ack_sync(if i == 0 { &one } else { &two }, &msg, "+ACK").await?;
            total += 1;
        }
        ensure!(
            seen[0].is_disjoint(&seen[1]),
            "a message went to both members: {seen:?}"
        );
        ensure!(
            !seen[0].is_empty() && !seen[1].is_empty(),
            "one member got everything: {seen:?}"
        );
        expect_counters(&c, "HPG", "D", [20, 20, 20, 20, 0, 0, 0]).await
    })
}

fn js_push_idle_heartbeat_is_a_100_status_with_the_last_sequences(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "HPH", "subjects": ["hph"]})).await?;
        publish_n(&c, "hph", "m", 2).await?;
        let mut inbox = Inbox::on(&c, "hph.deliver").await?;
        create_consumer(
            &c,
            "HPH",
            json!({"durable_name": "D", "deliver_subject": "hph.deliver",
            "idle_heartbeat": ms(200)}),
        )
        .await?;
        let got = vec![inbox.next(WAIT, "m0").await?, inbox.next(WAIT, "m1").await?];
        ensure!(payloads(&got) == ["m0", "m1"], "{:?}", summary(&got));
        let hb = inbox.next(WAIT, "an idle heartbeat").await?;
        // Heartbeats go to the deliver subject without a reply subject.
        ensure!(
            hb.subject.as_str() == "hph.deliver" && hb.reply.is_none(),
            "{}",
            describe(&hb)
        );
        expect_status(
            &hb,
            "NATS/1.0 100 Idle Heartbeat",
            &[("Nats-Last-Consumer", "2"), ("Nats-Last-Stream", "2")],
        )?;
        publish_n(&c, "hph", "n", 1).await?;
        let msg = inbox.next(WAIT, "n0").await?;
        ensure!(msg.payload == "n0", "{}", describe(&msg));
        let hb = inbox.next(WAIT, "the next idle heartbeat").await?;
        expect_status(
            &hb,
            "NATS/1.0 100 Idle Heartbeat",
            &[("Nats-Last-Consumer", "3"), ("Nats-Last-Stream", "3")],
        )
    })
}

fn js_push_flow_control_request_stalls_delivery_until_answered(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "HPF", "subjects": ["hpf"]})).await?;
        // 40 × 64 KiB = 2.5 MiB. nats-server starts a push consumer's flow-control window at
        // 2 MiB and asks for a flow-control reply once more than half of it is unanswered.
        let body = "f".repeat(64 * 1024);
        for _ in 0..40 {
            let ack = publish(&c, "hpf", &[], &body).await?;
            ensure!(ack.get("error").is_none(), "{ack}");
        }
        let mut inbox = Inbox::on(&c, "hpf.deliver").await?;
        create_consumer(
            &c,
            "HPF",
            json!({"durable_name": "D", "deliver_subject": "hpf.deliver",
            "flow_control": true, "idle_heartbeat": ms(250)}),
        )
        .await?;
        let mut data = 0;
        let fc = loop {
            let msg = inbox.next(WAIT, "a flow-control request").await?;
            if msg.status.is_none() {
                data += 1;
                continue;
            }
            break msg;
        };
        ensure!(
            data < 40,
            "all 40 messages came before any flow-control request"
        );
        // "NATS/1.0 100 FlowControl Request" with a reply subject $JS.FC.<stream>.<consumer>.…
        expect_status(&fc, "NATS/1.0 100 FlowControl Request", &[])?;
        let fc_reply = fc
            .reply
            .clone()
            .context("flow-control request without a reply subject")?;
        ensure!(
            fc_reply.starts_with("$JS.FC.HPF.D."),
            "flow-control reply {fc_reply}"
        );
        // Unanswered, delivery stalls before the end; the idle heartbeat then names the
        // outstanding request in Nats-Consumer-Stalled.
        let stalled = loop {
            let msg = inbox.next(WAIT, "a heartbeat while stalled").await?;
            if msg.status.is_none() {
                data += 1;
                continue;
            }
            break msg;
        };
        ensure!(
            data < 40,
            "delivery did not stall without a flow-control reply"
        );
        let last = data.to_string();
        expect_status(
            &stalled,
            "NATS/1.0 100 Idle Heartbeat",
            &[
                ("Nats-Last-Consumer", &last),
                ("Nats-Last-Stream", &last),
                ("Nats-Consumer-Stalled", &fc_reply),
            ],
        )?;
        c.publish(fc_reply, "".into()).await?;
        c.flush().await?;
        while data < 40 {
            let msg = inbox
                .next(WAIT, "the rest after the flow-control reply")
                .await?;
            match (status_line(&msg), msg.reply.clone()) {
                (None, _) => data += 1,
                (Some(line), Some(reply)) if line.contains("FlowControl") => {
                    c.publish(reply, "".into()).await?;
                }
                _ => {}
            }
        }
        let extra = inbox.drain_for(Duration::from_millis(100)).await;
        ensure!(
            payloads(&extra).is_empty(),
            "more than 40 messages: {:?}",
            summary(&extra)
        );
        Ok(())
    })
}
