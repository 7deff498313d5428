//! Publishing into streams: the PubAck, `Nats-Msg-Id` deduplication and the
//! `Nats-Expected-*` headers.

use std::time::Duration;

use anyhow::ensure;
use serde_json::{json, Value};

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_puback_names_the_stream_and_sequence_and_omits_duplicate,
        js_msg_id_is_deduplicated_within_the_window_and_accepted_after_it,
        js_expected_stream_header_must_name_the_stream,
        js_expected_last_sequence_header_must_match_the_last_sequence,
        js_expected_last_subject_sequence_header_is_per_subject,
        js_expected_last_msg_id_compares_with_the_last_message_id_even_when_unset,
        js_publish_to_a_subject_without_a_stream_gets_no_responders,
        js_publish_without_reply_is_stored_silently,
    ]
}

/// The error PubAck nats-server sends: `{"error":{…},"stream":<name>,"seq":0}`.
fn error_ack(stream: &str, code: u64, err_code: u64, description: &str) -> Value {
    json!({"error": {"code": code, "err_code": err_code, "description": description},
        "stream": stream, "seq": 0})
}

fn js_puback_names_the_stream_and_sequence_and_omits_duplicate(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "PAK", "subjects": ["pak.>"]})).await?;
        // nats-server sends exactly {"stream":"PAK", "seq":1}: no `duplicate` when false, no
        // domain in a default setup.
        for seq in 1..=3 {
            let ack = publish(&c, "pak.x", &[], "m").await?;
            ensure!(ack == json!({"stream": "PAK", "seq": seq}), "{ack}");
        }
        Ok(())
    })
}

fn js_msg_id_is_deduplicated_within_the_window_and_accepted_after_it(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(
            &c,
            json!({"name": "PDD", "subjects": ["pdd"], "duplicate_window": ms(400)}),
        )
        .await?;
        let ack = publish(&c, "pdd", &[("Nats-Msg-Id", "id1")], "one").await?;
        ensure!(ack == json!({"stream": "PDD", "seq": 1}), "{ack}");
        // A duplicate gets the original's sequence and `"duplicate": true`, and is not stored.
        let ack = publish(&c, "pdd", &[("Nats-Msg-Id", "id1")], "one again").await?;
        ensure!(
            ack == json!({"stream": "PDD", "seq": 1, "duplicate": true}),
            "{ack}"
        );
        let ack = publish(&c, "pdd", &[("Nats-Msg-Id", "id2")], "two").await?;
        ensure!(ack == json!({"stream": "PDD", "seq": 2}), "{ack}");
        ensure!(
            stream_state(&c, "PDD").await?["messages"] == 2,
            "duplicate stored"
        );
        tokio::time::sleep(Duration::from_millis(900)).await;
        let ack = publish(&c, "pdd", &[("Nats-Msg-Id", "id1")], "one later").await?;
        ensure!(
            ack == json!({"stream": "PDD", "seq": 3}),
            "after the window: {ack}"
        );
        Ok(())
    })
}

fn js_expected_stream_header_must_name_the_stream(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "PES", "subjects": ["pes"]})).await?;
        let ack = publish(&c, "pes", &[("Nats-Expected-Stream", "PES")], "ok").await?;
        ensure!(ack == json!({"stream": "PES", "seq": 1}), "{ack}");
        let ack = publish(&c, "pes", &[("Nats-Expected-Stream", "OTHER")], "no").await?;
        let expected = error_ack("PES", 400, 10060, "expected stream does not match");
        ensure!(ack == expected, "{ack}");
        ensure!(stream_state(&c, "PES").await?["messages"] == 1, "stored");
        Ok(())
    })
}

fn js_expected_last_sequence_header_must_match_the_last_sequence(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "PEL", "subjects": ["pel.*"]})).await?;
        let ack = publish(
            &c,
            "pel.a",
            &[("Nats-Expected-Last-Sequence", "0")],
            "first",
        )
        .await?;
        ensure!(ack == json!({"stream": "PEL", "seq": 1}), "{ack}");
        let ack = publish(
            &c,
            "pel.b",
            &[("Nats-Expected-Last-Sequence", "1")],
            "second",
        )
        .await?;
        ensure!(ack == json!({"stream": "PEL", "seq": 2}), "{ack}");
        // The description names the stream's actual last sequence.
        let ack = publish(
            &c,
            "pel.a",
            &[("Nats-Expected-Last-Sequence", "1")],
            "stale",
        )
        .await?;
        ensure!(
            ack == error_ack("PEL", 400, 10071, "wrong last sequence: 2"),
            "{ack}"
        );
        Ok(())
    })
}

fn js_expected_last_subject_sequence_header_is_per_subject(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "PESS", "subjects": ["pess.*"]})).await?;
        let h = |seq: &'static str| [("Nats-Expected-Last-Subject-Sequence", seq)];
        // 0 means "no message on this subject yet".
        let ack = publish(&c, "pess.a", &h("0"), "a1").await?;
        ensure!(ack == json!({"stream": "PESS", "seq": 1}), "{ack}");
        let ack = publish(&c, "pess.b", &h("0"), "b1").await?;
        ensure!(ack == json!({"stream": "PESS", "seq": 2}), "{ack}");
        let ack = publish(&c, "pess.a", &h("0"), "a again").await?;
        // Same err_code as the stream-wide check; the description names the subject's last.
        ensure!(
            ack == error_ack("PESS", 400, 10071, "wrong last sequence: 1"),
            "{ack}"
        );
        let ack = publish(&c, "pess.a", &h("1"), "a2").await?;
        ensure!(ack == json!({"stream": "PESS", "seq": 3}), "{ack}");
        let ack = publish(&c, "pess.b", &h("3"), "b stale").await?;
        ensure!(
            ack == error_ack("PESS", 400, 10071, "wrong last sequence: 2"),
            "{ack}"
        );
        Ok(())
    })
}

fn js_expected_last_msg_id_compares_with_the_last_message_id_even_when_unset(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "PEM", "subjects": ["pem"]})).await?;
        publish(&c, "pem", &[("Nats-Msg-Id", "a")], "1").await?;
        let ack = publish(
            &c,
            "pem",
            &[("Nats-Expected-Last-Msg-Id", "a"), ("Nats-Msg-Id", "b")],
            "2",
        )
        .await?;
        ensure!(ack == json!({"stream": "PEM", "seq": 2}), "{ack}");
        let ack = publish(&c, "pem", &[("Nats-Expected-Last-Msg-Id", "a")], "3").await?;
        ensure!(
            ack == error_ack("PEM", 400, 10070, "wrong last msg ID: b"),
            "{ack}"
        );
        // nats-server tracks the id of the last message stored, which a message without
        // Nats-Msg-Id resets to empty.
        publish(&c, "pem", &[], "no id").await?;
        let ack = publish(&c, "pem", &[("Nats-Expected-Last-Msg-Id", "b")], "4").await?;
        ensure!(
            ack == error_ack("PEM", 400, 10070, "wrong last msg ID: "),
            "{ack}"
        );
        Ok(())
    })
}

fn js_publish_to_a_subject_without_a_stream_gets_no_responders(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        let mut inbox = Inbox::new(&c).await?;
        c.publish_with_reply("pnostream.x", inbox.subject.clone(), "x".into())
            .await?;
        let msg = inbox.next(WAIT, "the no-responders status").await?;
        expect_status(&msg, "NATS/1.0 503", &[])?;
        // async-nats turns that into a NoResponders request error.
        let err = c.request("pnostream.x", "x".into()).await;
        let is_no_responders =
            matches!(&err, Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders);
        ensure!(is_no_responders, "{err:?}");
        Ok(())
    })
}

fn js_publish_without_reply_is_stored_silently(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "PNR", "subjects": ["pnr"]})).await?;
        let mut watcher = Inbox::on(&c, "pnr").await?;
        for i in 0..3 {
            c.publish("pnr", format!("m{i}").into()).await?;
        }
        c.flush().await?;
        // Core subscribers on the subject see the messages as always.
        for _ in 0..3 {
            watcher.next(WAIT, "the core copy").await?;
        }
        let c2 = c.clone();
        eventually(WAIT, "three stored messages", move || {
            let c = c2.clone();
            async move { Ok(stream_state(&c, "PNR").await?["messages"] == 3) }
        })
        .await
    })
}
