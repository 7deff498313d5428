//! Pull consumers over the wire: `CONSUMER.MSG.NEXT` with batch, expires, no_wait, max_bytes
//! and idle_heartbeat, the `$JS.ACK` reply subjects, and the status messages nats-server
//! sends (100, 400, 404, 408, 409, 503) with their exact lines and headers.

use std::time::Duration;

use anyhow::ensure;
use serde_json::{json, Value};

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_pull_batch_delivers_with_ack_reply_subjects_counting_down_pending,
        js_pull_no_wait_gets_404_when_empty_and_408_after_a_partial_batch,
        js_pull_expires_ends_with_408_and_the_unfilled_batch_in_headers,
        js_pull_idle_heartbeat_sends_100_with_the_last_sequences,
        js_pull_beyond_max_waiting_gets_409_exceeded_max_waiting,
        js_pull_max_bytes_gets_409_message_size_exceeds_max_bytes,
        js_pull_request_body_forms_and_bad_heartbeat,
        js_pull_waiting_request_gets_409_consumer_deleted,
        js_pull_on_a_push_consumer_or_a_missing_one,
    ]
}

/// A stream `<name>` on subject `<subject>` with `count` messages and an explicit-ack pull
/// durable `D` with these extra config fields.
async fn setup(
    c: &async_nats::Client,
    name: &str,
    subject: &str,
    count: usize,
    extra: Value,
) -> anyhow::Result<()> {
    create_stream(c, json!({"name": name, "subjects": [subject]})).await?;
    publish_n(c, subject, "m", count).await?;
    let mut config = json!({"durable_name": "D", "ack_policy": "explicit"});
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    create_consumer(c, name, config).await?;
    Ok(())
}

fn js_pull_batch_delivers_with_ack_reply_subjects_counting_down_pending(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(&c, "UBA", "uba", 3, json!({})).await?;
        let mut inbox = pull(&c, "UBA", "D", json!({"batch": 2})).await?;
        for i in 1..=2u64 {
            let msg = inbox.next(WAIT, "a pulled message").await?;
            ensure!(
                msg.status.is_none() && msg.subject.as_str() == "uba",
                "{}",
                describe(&msg)
            );
            ensure!(msg.payload == format!("m{}", i - 1), "{}", describe(&msg));
            let ack = AckReply::of(&msg)?;
            ensure!(ack.stream == "UBA" && ack.consumer == "D", "{ack:?}");
            // $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>, with
            // pending the messages left for the consumer after this one.
            ensure!(ack.numbers() == (1, i, i, 3 - i), "{ack:?}");
        }
        // A satisfied batch ends without a status.
        let extra = inbox.drain_for(Duration::from_millis(100)).await;
        ensure!(extra.is_empty(), "after the batch: {:?}", summary(&extra));
        expect_counters(&c, "UBA", "D", [2, 2, 0, 0, 2, 0, 1]).await
    })
}

fn js_pull_no_wait_gets_404_when_empty_and_408_after_a_partial_batch(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(&c, "UNW", "unw", 1, json!({})).await?;
        let mut inbox = pull(&c, "UNW", "D", json!({"batch": 5, "no_wait": true})).await?;
        let got = inbox.until_status(WAIT, 5).await?;
        ensure!(
            got.len() == 2 && payloads(&got) == ["m0"],
            "{:?}",
            summary(&got)
        );
        // nats-server ends a partly filled no_wait batch with 408 (not 404), counting the
        // unfilled part of the batch.
        expect_status(
            &got[1],
            "NATS/1.0 408 Request Timeout",
            &[("Nats-Pending-Messages", "4"), ("Nats-Pending-Bytes", "0")],
        )?;
        let mut inbox = pull(&c, "UNW", "D", json!({"batch": 1, "no_wait": true})).await?;
        let msg = inbox.next(WAIT, "the no-messages status").await?;
        expect_status(&msg, "NATS/1.0 404 No Messages", &[])?;
        // no_wait with expires behaves the same when nothing is there.
        let mut inbox = pull(
            &c,
            "UNW",
            "D",
            json!({"batch": 3, "no_wait": true, "expires": ms(300)}),
        )
        .await?;
        let msg = inbox.next(WAIT, "the status").await?;
        ensure!(status_line(&msg).is_some(), "{}", describe(&msg));
        Ok(())
    })
}

fn js_pull_expires_ends_with_408_and_the_unfilled_batch_in_headers(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(&c, "UEX", "uex", 1, json!({})).await?;
        let started = tokio::time::Instant::now();
        let mut inbox = pull(&c, "UEX", "D", json!({"batch": 3, "expires": ms(300)})).await?;
        let got = inbox.until_status(WAIT, 3).await?;
        ensure!(payloads(&got) == ["m0"], "{:?}", summary(&got));
        let last = got.last().expect("until_status returns at least one");
        expect_status(
            last,
            "NATS/1.0 408 Request Timeout",
            &[("Nats-Pending-Messages", "2"), ("Nats-Pending-Bytes", "0")],
        )?;
        let waited = started.elapsed();
        ensure!(
            waited >= Duration::from_millis(250),
            "expired after {waited:?}"
        );
        // A message published while the request waits is delivered to it.
        let mut inbox = pull(&c, "UEX", "D", json!({"batch": 1, "expires": ms(2000)})).await?;
        publish_n(&c, "uex", "late", 1).await?;
        let msg = inbox.next(WAIT, "the late message").await?;
        ensure!(msg.payload == "late0", "{}", describe(&msg));
        Ok(())
    })
}

fn js_pull_idle_heartbeat_sends_100_with_the_last_sequences(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(&c, "UHB", "uhb", 2, json!({})).await?;
        let mut inbox = pull(
            &c,
            "UHB",
            "D",
            json!({"batch": 5, "expires": ms(1000), "idle_heartbeat": ms(200)}),
        )
        .await?;
        let got = inbox.until_status(WAIT, 5).await?;
        ensure!(payloads(&got) == ["m0", "m1"], "{:?}", summary(&got));
        let heartbeat = got.last().expect("a status");
        expect_status(
            heartbeat,
            "NATS/1.0 100 Idle Heartbeat",
            &[("Nats-Last-Consumer", "2"), ("Nats-Last-Stream", "2")],
        )?;
        // Heartbeats repeat until the request expires with 408.
        let mut statuses = vec![heartbeat.clone()];
        loop {
            let msg = inbox.next(WAIT, "heartbeats then 408").await?;
            let done = msg.status.map(|s| s.as_u16()) == Some(408);
            statuses.push(msg);
            if done {
                break;
            }
        }
        let last = statuses.last().expect("408");
        expect_status(
            last,
            "NATS/1.0 408 Request Timeout",
            &[("Nats-Pending-Messages", "3"), ("Nats-Pending-Bytes", "0")],
        )?;
        ensure!(statuses.len() >= 3, "{:?}", summary(&statuses));
        for hb in &statuses[..statuses.len() - 1] {
            ensure!(
                status_line(hb).as_deref() == Some("NATS/1.0 100 Idle Heartbeat"),
                "{}",
                describe(hb)
            );
        }
        Ok(())
    })
}

fn js_pull_beyond_max_waiting_gets_409_exceeded_max_waiting(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(&c, "UMW", "umw", 0, json!({"max_waiting": 1})).await?;
        let mut first = pull(&c, "UMW", "D", json!({"batch": 1, "expires": ms(1000)})).await?;
        let c2 = c.clone();
        eventually(WAIT, "one waiting request", move || {
            let c = c2.clone();
            async move { Ok(consumer_info(&c, "UMW", "D").await?["num_waiting"] == 1) }
        })
        .await?;
        let mut second = pull(&c, "UMW", "D", json!({"batch": 1, "expires": ms(1000)})).await?;
        let msg = second.next(WAIT, "the max-waiting status").await?;
        expect_status(&msg, "NATS/1.0 409 Exceeded MaxWaiting", &[])?;
        let msg = first.next(WAIT, "the first request's expiry").await?;
        expect_status(
            &msg,
            "NATS/1.0 408 Request Timeout",
            &[("Nats-Pending-Messages", "1"), ("Nats-Pending-Bytes", "0")],
        )
    })
}

fn js_pull_max_bytes_gets_409_message_size_exceeds_max_bytes(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "UMB", "subjects": ["umb"]})).await?;
        let body = "x".repeat(100);
        for _ in 0..3 {
            publish(&c, "umb", &[], &body).await?;
        }
        create_consumer(
            &c,
            "UMB",
            json!({"durable_name": "D", "ack_policy": "explicit"}),
        )
        .await?;
        let mut inbox = pull(&c, "UMB", "D", json!({"batch": 3, "max_bytes": 10})).await?;
        let msg = inbox.next(WAIT, "the max-bytes status").await?;
        // Nothing fits: the request ends at once, reporting the whole batch and byte budget.
        expect_status(
            &msg,
            "NATS/1.0 409 Message Size Exceeds MaxBytes",
            &[("Nats-Pending-Messages", "3"), ("Nats-Pending-Bytes", "10")],
        )?;
        let mut inbox = pull(&c, "UMB", "D", json!({"batch": 3, "max_bytes": 150})).await?;
        let got = inbox.until_status(WAIT, 3).await?;
        ensure!(
            got.len() == 2 && got[0].status.is_none(),
            "{:?}",
            summary(&got)
        );
        // nats-server counts subject + ack reply subject + headers + payload against
        // max_bytes: 3 + 41 + 0 + 100 = 144 of 150 here, leaving 6.
        expect_status(
            &got[1],
            "NATS/1.0 409 Message Size Exceeds MaxBytes",
            &[("Nats-Pending-Messages", "2"), ("Nats-Pending-Bytes", "6")],
        )
    })
}

fn js_pull_request_body_forms_and_bad_heartbeat(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(&c, "UBF", "ubf", 4, json!({})).await?;
        // An empty body asks for one message.
        let mut inbox = pull(&c, "UBF", "D", Value::Null).await?;
        let msg = inbox.next(WAIT, "one message").await?;
        ensure!(msg.payload == "m0", "{}", describe(&msg));
        // A plain number is the batch size.
        let mut inbox = pull(&c, "UBF", "D", json!("2")).await?;
        let got = vec![inbox.next(WAIT, "m1").await?, inbox.next(WAIT, "m2").await?];
        ensure!(payloads(&got) == ["m1", "m2"], "{:?}", summary(&got));
        // A heartbeat over half the expiry is refused.
        let mut inbox = pull(
            &c,
            "UBF",
            "D",
            json!({"batch": 1, "expires": ms(1000), "idle_heartbeat": ms(800)}),
        )
        .await?;
        let msg = inbox.next(WAIT, "the bad-request status").await?;
        expect_status(
            &msg,
            "NATS/1.0 400 Bad Request - heartbeat value too large",
            &[],
        )?;
        expect_counters(&c, "UBF", "D", [3, 3, 0, 0, 3, 0, 1]).await
    })
}

fn js_pull_waiting_request_gets_409_consumer_deleted(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        setup(&c, "UCD", "ucd", 0, json!({})).await?;
        let mut inbox = pull(&c, "UCD", "D", json!({"batch": 1, "expires": ms(3000)})).await?;
        let c2 = c.clone();
        eventually(WAIT, "one waiting request", move || {
            let c = c2.clone();
            async move { Ok(consumer_info(&c, "UCD", "D").await?["num_waiting"] == 1) }
        })
        .await?;
        api_ok(&c, "CONSUMER.DELETE.UCD.D", Value::Null).await?;
        let msg = inbox.next(WAIT, "the consumer-deleted status").await?;
        expect_status(&msg, "NATS/1.0 409 Consumer Deleted", &[])
    })
}

fn js_pull_on_a_push_consumer_or_a_missing_one(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "UPP", "subjects": ["upp"]})).await?;
        create_consumer(
            &c,
            "UPP",
            json!({"durable_name": "P", "deliver_subject": "upp.deliver"}),
        )
        .await?;
        let mut inbox = pull(&c, "UPP", "P", json!({"batch": 1})).await?;
        let msg = inbox.next(WAIT, "the push-based status").await?;
        expect_status(&msg, "NATS/1.0 409 Consumer is push based", &[])?;
        // MSG.NEXT of a consumer that does not exist has no responder at all.
        let mut inbox = pull(&c, "UPP", "NONE", json!({"batch": 1})).await?;
        let msg = inbox.next(WAIT, "no responders").await?;
        expect_status(&msg, "NATS/1.0 503", &[])
    })
}
