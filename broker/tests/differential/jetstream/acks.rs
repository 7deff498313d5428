//! Acknowledgements: ack policies explicit/all/none, +ACK, -NAK (with delay), +WPI, +TERM,
//! acks sent as requests, ack_wait redelivery with the delivery count, max_deliver, backoff
//! and max_ack_pending.

use std::time::Duration;

use anyhow::ensure;
use async_nats::Message;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_explicit_acks_move_the_ack_floor_over_contiguous_acks_only,
        js_ack_policy_all_acks_every_message_up_to_the_acked_one,
        js_ack_policy_none_needs_no_acks,
        js_ack_sent_as_a_request_is_answered_even_when_repeated,
        js_nak_redelivers_at_once_with_the_delivery_count_in_the_reply_subject,
        js_nak_with_a_delay_redelivers_after_the_delay,
        js_ack_wait_expiry_redelivers_with_a_growing_delivery_count,
        js_in_progress_extends_the_ack_wait,
        js_term_stops_redelivery_and_counts_as_acked,
        js_max_deliver_stops_redelivery_after_that_many_deliveries,
        js_backoff_spaces_redeliveries_by_its_durations,
        js_max_ack_pending_stops_delivery_until_an_ack,
    ]
}

/// Stream `<name>` on subject `<lowercase name>` with `count` messages and a pull durable `D`
/// with this config (`durable_name` added).
async fn setup(
    c: &async_nats::Client,
    name: &str,
    count: usize,
    config: Value,
) -> anyhow::Result<()> {
    let subject = name.to_lowercase();
    create_stream(c, json!({"name": name, "subjects": [subject]})).await?;
    publish_n(c, &subject, "m", count).await?;
    let mut config = config;
    config["durable_name"] = json!("D");
    create_consumer(c, name, config).await?;
    Ok(())
}

/// Pulls `n` messages in one request (bounded by a 2 s expiry).
async fn take(c: &async_nats::Client, stream: &str, n: usize) -> anyhow::Result<Vec<Message>> {
    let mut inbox = pull(c, stream, "D", json!({"batch": n, "expires": ms(2000)})).await?;
    let mut out = Vec::new();
    for i in 0..n {
        let msg = inbox.next(WAIT, &format!("message {i} of {n}")).await?;
        ensure!(
            msg.status.is_none(),
            "got {} after {:?}",
            describe(&msg),
            summary(&out)
        );
        out.push(msg);
    }
    Ok(out)
}

fn js_explicit_acks_move_the_ack_floor_over_contiguous_acks_only(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(&c, "KEX", 4, json!({"ack_policy": "explicit"})).await?;
        let msgs = take(&c, "KEX", 3).await?;
        ack_sync(&c, &msgs[0], "+ACK").await?;
        ack_sync(&c, &msgs[2], "+ACK").await?;
        // [delivered cseq, sseq, ack floor cseq, sseq, num_ack_pending, num_redelivered, num_pending]
        expect_counters(&c, "KEX", "D", [3, 3, 1, 1, 1, 0, 1]).await?;
        ack_sync(&c, &msgs[1], "+ACK").await?;
        expect_counters(&c, "KEX", "D", [3, 3, 3, 3, 0, 0, 1]).await
    })
}

fn js_ack_policy_all_acks_every_message_up_to_the_acked_one(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(&c, "KAL", 4, json!({"ack_policy": "all"})).await?;
        let msgs = take(&c, "KAL", 3).await?;
        expect_counters(&c, "KAL", "D", [3, 3, 0, 0, 3, 0, 1]).await?;
        ack_sync(&c, &msgs[1], "+ACK").await?;
        expect_counters(&c, "KAL", "D", [3, 3, 2, 2, 1, 0, 1]).await
    })
}

fn js_ack_policy_none_needs_no_acks(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(&c, "KNO", 3, json!({"ack_policy": "none"})).await?;
        let msgs = take(&c, "KNO", 2).await?;
        // Messages still carry a $JS.ACK reply subject.
        let ack = AckReply::of(&msgs[1])?;
        ensure!(ack.numbers() == (1, 2, 2, 1), "{ack:?}");
        expect_counters(&c, "KNO", "D", [2, 2, 2, 2, 0, 0, 1]).await
    })
}

fn js_ack_sent_as_a_request_is_answered_even_when_repeated(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(&c, "KAS", 3, json!({"ack_policy": "explicit"})).await?;
        let msgs = take(&c, "KAS", 3).await?;
        // nats-server answers an ack with a reply subject with an empty message (what
        // async-nats' double_ack waits for), also for an already acked message.
        for (msg, body) in [
            (&msgs[0], "+ACK"),
            (&msgs[0], "+ACK"),
            (&msgs[1], "-NAK"),
            (&msgs[2], "+TERM"),
        ] {
            let answer = ack_sync(&c, msg, body).await?;
            ensure!(
                answer.payload.is_empty() && answer.status.is_none(),
                "{body}: {}",
                describe(&answer)
            );
        }
        // An empty ack body is an ack too.
        let again = take(&c, "KAS", 1).await?;
        ack_sync(&c, &again[0], "").await?;
        // delivered.stream_seq is the highest stream seq delivered, not the last one.
        expect_counters(&c, "KAS", "D", [4, 3, 4, 3, 0, 0, 0]).await
    })
}

fn js_nak_redelivers_at_once_with_the_delivery_count_in_the_reply_subject(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(&c, "KNK", 2, json!({"ack_policy": "explicit"})).await?;
        let msgs = take(&c, "KNK", 1).await?;
        ensure!(
            AckReply::of(&msgs[0])?.numbers() == (1, 1, 1, 1),
            "{}",
            describe(&msgs[0])
        );
        ack_sync(&c, &msgs[0], "-NAK").await?;
        // The NAKed message comes back before the next new one, with delivered = 2 and a new
        // consumer sequence.
        let msgs = take(&c, "KNK", 2).await?;
        let first = AckReply::of(&msgs[0])?;
        ensure!(first.numbers() == (2, 1, 2, 1), "{first:?}");
        ensure!(msgs[0].payload == "m0", "{}", describe(&msgs[0]));
        let second = AckReply::of(&msgs[1])?;
        ensure!(second.numbers() == (1, 2, 3, 0), "{second:?}");
        expect_counters(&c, "KNK", "D", [3, 2, 0, 0, 2, 1, 0]).await
    })
}

fn js_nak_with_a_delay_redelivers_after_the_delay(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(&c, "KND", 1, json!({"ack_policy": "explicit"})).await?;
        let msgs = take(&c, "KND", 1).await?;
        let naked = Instant::now();
        ack_with(&c, &msgs[0], &format!("-NAK {{\"delay\": {}}}", ms(400))).await?;
        let again = take(&c, "KND", 1).await?;
        let waited = naked.elapsed();
        ensure!(
            waited >= Duration::from_millis(350),
            "redelivered after {waited:?}"
        );
        ensure!(
            AckReply::of(&again[0])?.delivered == 2,
            "{}",
            describe(&again[0])
        );
        Ok(())
    })
}

fn js_ack_wait_expiry_redelivers_with_a_growing_delivery_count(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(
            &c,
            "KAW",
            1,
            json!({"ack_policy": "explicit", "ack_wait": ms(200)}),
        )
        .await?;
        let mut inbox = pull(&c, "KAW", "D", json!({"batch": 3, "expires": ms(2000)})).await?;
        let mut seen = Vec::new();
        let mut last = Instant::now();
        for _ in 0..3 {
            let msg = inbox.next(WAIT, "a (re)delivery").await?;
            let gap = last.elapsed();
            last = Instant::now();
            seen.push((AckReply::of(&msg)?.numbers(), gap));
        }
        let numbers: Vec<_> = seen.iter().map(|(n, _)| *n).collect();
        ensure!(
            numbers == [(1, 1, 1, 0), (2, 1, 2, 0), (3, 1, 3, 0)],
            "{seen:?}"
        );
        for (_, gap) in &seen[1..] {
            ensure!(
                *gap >= Duration::from_millis(150),
                "redelivered too early: {seen:?}"
            );
        }
        expect_counters(&c, "KAW", "D", [3, 1, 0, 0, 1, 1, 0]).await
    })
}

fn js_in_progress_extends_the_ack_wait(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(
            &c,
            "KWP",
            1,
            json!({"ack_policy": "explicit", "ack_wait": ms(500)}),
        )
        .await?;
        let msgs = take(&c, "KWP", 1).await?;
        let mut inbox = pull(&c, "KWP", "D", json!({"batch": 1, "expires": ms(3000)})).await?;
        // +WPI every 150 ms for 750 ms (longer than the 500 ms ack_wait): no redelivery.
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            ack_with(&c, &msgs[0], "+WPI").await?;
        }
        let early = inbox.drain_for(Duration::from_millis(100)).await;
        ensure!(
            early.is_empty(),
            "redelivered despite +WPI: {:?}",
            summary(&early)
        );
        // A +WPI sent as a request is answered, and then silence lets ack_wait expire.
        let answer = ack_sync(&c, &msgs[0], "+WPI").await?;
        ensure!(answer.payload.is_empty(), "{}", describe(&answer));
        let msg = inbox
            .next(WAIT, "the redelivery after +WPI stopped")
            .await?;
        ensure!(AckReply::of(&msg)?.delivered == 2, "{}", describe(&msg));
        Ok(())
    })
}

fn js_term_stops_redelivery_and_counts_as_acked(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(
            &c,
            "KTM",
            1,
            json!({"ack_policy": "explicit", "ack_wait": ms(200)}),
        )
        .await?;
        let msgs = take(&c, "KTM", 1).await?;
        ack_sync(&c, &msgs[0], "+TERM").await?;
        let mut inbox = pull(&c, "KTM", "D", json!({"batch": 1, "expires": ms(500)})).await?;
        let msg = inbox.next(WAIT, "the expiry").await?;
        expect_status(
            &msg,
            "NATS/1.0 408 Request Timeout",
            &[("Nats-Pending-Messages", "1"), ("Nats-Pending-Bytes", "0")],
        )?;
        expect_counters(&c, "KTM", "D", [1, 1, 1, 1, 0, 0, 0]).await
    })
}

fn js_max_deliver_stops_redelivery_after_that_many_deliveries(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(
            &c,
            "KMD",
            1,
            json!({"ack_policy": "explicit", "ack_wait": ms(150), "max_deliver": 2}),
        )
        .await?;
        let mut inbox = pull(&c, "KMD", "D", json!({"batch": 3, "expires": ms(900)})).await?;
        let got = inbox.until_status(WAIT, 3).await?;
        let deliveries: Vec<u64> = got
            .iter()
            .filter(|m| m.status.is_none())
            .map(|m| AckReply::of(m).map(|a| a.delivered))
            .collect::<anyhow::Result<_>>()?;
        ensure!(deliveries == [1, 2], "{:?}", summary(&got));
        let last = got.last().expect("a status");
        expect_status(
            last,
            "NATS/1.0 408 Request Timeout",
            &[("Nats-Pending-Messages", "1"), ("Nats-Pending-Bytes", "0")],
        )?;
        // nats-server drops a message that hit max_deliver from the pending acks and moves the
        // ack floor over it, but still counts it in num_redelivered.
        expect_counters(&c, "KMD", "D", [2, 1, 2, 1, 0, 1, 0]).await
    })
}

fn js_backoff_spaces_redeliveries_by_its_durations(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "KBO", "subjects": ["kbo"]})).await?;
        // backoff needs max_deliver at least its length (nats-server 2.10: lbo > max_deliver).
        let reply = api(
            &c,
            "CONSUMER.CREATE.KBO.D",
            json!({"stream_name": "KBO", "config": {"durable_name": "D",
            "ack_policy": "explicit", "backoff": [ms(100), ms(500)], "max_deliver": 1}}),
        )
        .await?;
        expect_error(
            &reply,
            400,
            10116,
            "max deliver is required to be > length of backoff values",
        )?;
        let reply = create_consumer(
            &c,
            "KBO",
            json!({"durable_name": "D", "ack_policy": "explicit",
            "backoff": [ms(100), ms(500)], "max_deliver": 4}),
        )
        .await?;
        // The first backoff value becomes the ack_wait.
        ensure!(reply["config"]["ack_wait"] == ms(100), "{reply}");
        publish_n(&c, "kbo", "m", 1).await?;
        let mut inbox = pull(&c, "KBO", "D", json!({"batch": 3, "expires": ms(3000)})).await?;
        let mut times = Vec::new();
        for _ in 0..3 {
            let msg = inbox.next(WAIT, "a (re)delivery").await?;
            times.push((AckReply::of(&msg)?.delivered, Instant::now()));
        }
        ensure!(
            times.iter().map(|t| t.0).eq([1, 2, 3]),
            "{:?}",
            times.iter().map(|t| t.0).collect::<Vec<_>>()
        );
        let first_gap = times[1].1 - times[0].1;
        let second_gap = times[2].1 - times[1].1;
        ensure!(
            first_gap >= Duration::from_millis(80),
            "first redelivery after {first_gap:?}"
        );
        ensure!(
            second_gap >= Duration::from_millis(450),
            "second redelivery after {second_gap:?}"
        );
        Ok(())
    })
}

fn js_max_ack_pending_stops_delivery_until_an_ack(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(
            &c,
            "KMP",
            4,
            json!({"ack_policy": "explicit", "max_ack_pending": 2}),
        )
        .await?;
        let mut inbox = pull(&c, "KMP", "D", json!({"batch": 4, "expires": ms(2000)})).await?;
        let first = inbox.next(WAIT, "message 1").await?;
        let _second = inbox.next(WAIT, "message 2").await?;
        let stalled = inbox.drain_for(Duration::from_millis(200)).await;
        ensure!(
            stalled.is_empty(),
            "delivered beyond max_ack_pending: {:?}",
            summary(&stalled)
        );
        expect_counters(&c, "KMP", "D", [2, 2, 0, 0, 2, 0, 2]).await?;
        ack_sync(&c, &first, "+ACK").await?;
        let third = inbox.next(WAIT, "message 3 after an ack").await?;
        ensure!(third.payload == "m2", "{}", describe(&third));
        let stalled = inbox.drain_for(Duration::from_millis(200)).await;
        ensure!(
            stalled.is_empty(),
            "delivered beyond max_ack_pending: {:?}",
            summary(&stalled)
        );
        Ok(())
    })
}
