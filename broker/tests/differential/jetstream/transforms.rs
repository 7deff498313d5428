//! A stream's `subject_transform` (messages stored under the transformed subject) and
//! `republish` (a copy of each stored message sent on), with their configuration errors.

use std::time::Duration;

use anyhow::ensure;
use serde_json::{json, Value};

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_subject_transform_stores_messages_under_the_transformed_subject,
        js_subject_transform_mapping_functions_agree_with_nats_server,
        js_subject_transform_errors_name_the_transform_and_the_reason,
        js_republish_sends_each_stored_message_with_the_stream_headers,
        js_republish_headers_only_sends_the_size_instead_of_the_payload,
        js_republish_errors_are_invalid_configurations,
        js_kv_republish_reaches_a_plain_subscriber,
    ]
}

const BOUND: Duration = Duration::from_secs(5);

/// The subject stored at `seq` of `stream`.
async fn stored_subject(c: &async_nats::Client, stream: &str, seq: u64) -> anyhow::Result<Value> {
    let reply = api_ok(c, &format!("STREAM.MSG.GET.{stream}"), json!({"seq": seq})).await?;
    Ok(reply["message"]["subject"].clone())
}

fn js_subject_transform_stores_messages_under_the_transformed_subject(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        let transform = json!({"src": "tra.*.*", "dest": "trb.{{wildcard(2)}}.$1"});
        let info = create_stream(
            &c,
            json!({"name": "TRA", "subjects": ["tra.>"], "subject_transform": transform}),
        )
        .await?;
        ensure!(info["config"]["subject_transform"] == transform, "{info}");
        for subject in ["tra.x.y", "tra.one.two.three"] {
            let ack = publish(&c, subject, &[], "m").await?;
            ensure!(ack.get("error").is_none(), "{ack}");
        }
        // A subject the transform's source matches is stored transformed; others as sent.
        ensure!(stored_subject(&c, "TRA", 1).await? == "trb.y.x");
        ensure!(stored_subject(&c, "TRA", 2).await? == "tra.one.two.three");
        // Consumers see the stored subject.
        create_consumer(
            &c,
            "TRA",
            json!({"durable_name": "d", "filter_subject": "trb.>"}),
        )
        .await?;
        let mut inbox = pull(&c, "TRA", "d", json!({"batch": 1})).await?;
        let msg = inbox.next(BOUND, "the consumer's message").await?;
        ensure!(msg.subject.as_str() == "trb.y.x", "{}", describe(&msg));
        Ok(())
    })
}

fn js_subject_transform_mapping_functions_agree_with_nats_server(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        let dest = "trf.{{partition(5,1,2)}}.{{splitFromLeft(1,2)}}.{{sliceFromRight(2,3)}}.\
                    {{split(1,-)}}.{{SliceFromLeft(2,2)}}.{{splitFromRight(2,1)}}.>";
        create_stream(
            &c,
            json!({"name": "TRF", "subjects": ["trm.>"],
                "subject_transform": {"src": "trm.*.*.>", "dest": dest}}),
        )
        .await?;
        let sent = ["trm.ab-cd.abcdefg.z", "trm.key.12345.y.z", "trm.-x-.q.r"];
        let mut stored = Vec::new();
        for (i, subject) in sent.iter().enumerate() {
            publish_n(&c, subject, "m", 1).await?;
            stored.push(stored_subject(&c, "TRF", i as u64 + 1).await?);
        }
        let expected = json!([
            "trf.2.ab.-cd.a.bcd.efg.ab.cd.ab.cd.ef.g.abcdef.g.z",
            "trf.2.ke.y.12.345.key.12.34.5.1234.5.y.z",
            "trf.4.-x.-.q.x.q.q.r",
        ]);
        // The partition numbers are FNV-1a hashes: equal only if computed the same way.
        ensure!(json!(stored) == expected, "{}", json!(stored));
        Ok(())
    })
}

fn js_subject_transform_errors_name_the_transform_and_the_reason(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        let cases = [
            ("tre.*", "x.{{nope(1)}}", "invalid mapping destination: unknown function in {{nope(1)}}"),
            ("tre.*", "x.$2", "invalid mapping destination: wildcard index out of range in $2: [2]"),
            ("tre.*", "x.*", "invalid subject"),
            ("tre.>", "x", "invalid subject"),
            ("tre.*", "x.{{wildcard()}}",
                "invalid mapping destination: not enough arguments passed to the function in {{wildcard()}}"),
        ];
        for (src, dest, reason) in cases {
            let config = json!({"name": "TRE", "subjects": ["tre.>"],
                "subject_transform": {"src": src, "dest": dest}});
            let reply = api(&c, "STREAM.CREATE.TRE", config).await?;
            let text = format!("stream subject transform from '{src}' to '{dest}': {reason}");
            expect_error(&reply, 500, 10049, &text)?;
        }
        // On update the words differ.
        create_stream(&c, json!({"name": "TRE", "subjects": ["tre.>"]})).await?;
        let config = json!({"name": "TRE", "subjects": ["tre.>"],
            "subject_transform": {"src": "tre.*", "dest": "x.$3"}});
        let reply = api(&c, "STREAM.UPDATE.TRE", config).await?;
        let text = "stream configuration for subject transform from 'tre.*' to 'x.$3': \
                    invalid mapping destination: wildcard index out of range in $3: [3]";
        expect_error(&reply, 500, 10069, text)?;
        // A valid one can be added by an update, and applies at once.
        let config = json!({"name": "TRE", "subjects": ["tre.>"],
            "subject_transform": {"src": "tre.*", "dest": "tre.$1.moved"}});
        api_ok(&c, "STREAM.UPDATE.TRE", config).await?;
        publish_n(&c, "tre.a", "m", 1).await?;
        ensure!(stored_subject(&c, "TRE", 1).await? == "tre.a.moved");
        Ok(())
    })
}

fn js_republish_sends_each_stored_message_with_the_stream_headers(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        let info = create_stream(
            &c,
            json!({"name": "RPA", "subjects": ["rpa.>"],
                "republish": {"dest": "rpout.>"}}),
        )
        .await?;
        // The empty source is written back as `>`.
        ensure!(
            info["config"]["republish"] == json!({"src": ">", "dest": "rpout.>"}),
            "{info}"
        );
        let mut out = Inbox::on(&c, "rpout.>").await?;
        publish(&c, "rpa.k", &[("X-Mine", "1")], "first").await?;
        publish(&c, "rpa.j", &[], "other").await?;
        publish(&c, "rpa.k", &[], "second").await?;
        let mut seen = Vec::new();
        for _ in 0..3 {
            let msg = out.next(BOUND, "a republished message").await?;
            seen.push(json!({
                "subject": msg.subject.to_string(),
                "payload": String::from_utf8_lossy(&msg.payload),
                "stream": header(&msg, "Nats-Stream"),
                "orig": header(&msg, "Nats-Subject"),
                "seq": header(&msg, "Nats-Sequence"),
                "last": header(&msg, "Nats-Last-Sequence"),
                "mine": header(&msg, "X-Mine"),
                "has_ts": header(&msg, "Nats-Time-Stamp").is_some(),
                "size": header(&msg, "Nats-Msg-Size"),
            }));
        }
        let expected = json!([
            {"subject": "rpout.rpa.k", "payload": "first", "stream": "RPA", "orig": "rpa.k",
                "seq": "1", "last": "0", "mine": "1", "has_ts": true, "size": null},
            {"subject": "rpout.rpa.j", "payload": "other", "stream": "RPA", "orig": "rpa.j",
                "seq": "2", "last": "0", "mine": null, "has_ts": true, "size": null},
            {"subject": "rpout.rpa.k", "payload": "second", "stream": "RPA", "orig": "rpa.k",
                "seq": "3", "last": "1", "mine": null, "has_ts": true, "size": null},
        ]);
        ensure!(json!(seen) == expected, "{}", json!(seen));
        // A duplicate is not stored, so not republished.
        publish(&c, "rpa.d", &[("Nats-Msg-Id", "once")], "d").await?;
        publish(&c, "rpa.d", &[("Nats-Msg-Id", "once")], "d").await?;
        out.next(BOUND, "the first of the duplicates").await?;
        ensure!(out.drain_for(Duration::from_millis(200)).await.is_empty());
        Ok(())
    })
}

fn js_republish_headers_only_sends_the_size_instead_of_the_payload(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(
            &c,
            json!({"name": "RPH", "subjects": ["rph.*"],
                "republish": {"src": "rph.*", "dest": "rphout.$1", "headers_only": true}}),
        )
        .await?;
        let mut out = Inbox::on(&c, "rphout.>").await?;
        publish(&c, "rph.a", &[], "12345").await?;
        let msg = out.next(BOUND, "a republished message").await?;
        ensure!(msg.subject.as_str() == "rphout.a", "{}", describe(&msg));
        ensure!(msg.payload.is_empty(), "{}", describe(&msg));
        ensure!(
            header(&msg, "Nats-Msg-Size") == Some("5"),
            "{}",
            describe(&msg)
        );
        ensure!(
            header(&msg, "Nats-Sequence") == Some("1"),
            "{}",
            describe(&msg)
        );
        Ok(())
    })
}

fn js_republish_errors_are_invalid_configurations(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        let config = json!({"name": "RPE", "subjects": ["rpe.>"],
            "republish": {"src": "rpe.>", "dest": "rpe.out.>"}});
        let reply = api(&c, "STREAM.CREATE.RPE", config).await?;
        let cycle = "stream configuration for republish destination forms a cycle";
        expect_error(&reply, 500, 10052, cycle)?;
        let config = json!({"name": "RPE", "subjects": ["rpe.>"],
            "republish": {"src": "rpe.*", "dest": "out.$2"}});
        let reply = api(&c, "STREAM.CREATE.RPE", config).await?;
        let text =
            "stream configuration for republish with transform from 'rpe.*' to 'out.$2' not valid";
        expect_error(&reply, 500, 10052, text)?;
        Ok(())
    })
}

fn js_kv_republish_reaches_a_plain_subscriber(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        let js = async_nats::jetstream::new(c.clone());
        let kv = js
            .create_key_value(async_nats::jetstream::kv::Config {
                bucket: "RPKV".into(),
                history: 2,
                republish: Some(async_nats::jetstream::stream::Republish {
                    source: "$KV.RPKV.>".into(),
                    destination: "rpkv.changes.>".into(),
                    headers_only: false,
                }),
                ..Default::default()
            })
            .await?;
        let mut out = Inbox::on(&c, "rpkv.changes.>").await?;
        kv.put("color", "blue".into()).await?;
        kv.delete("color").await?;
        let put = out.next(BOUND, "the republished put").await?;
        ensure!(
            put.subject.as_str() == "rpkv.changes.color",
            "{}",
            describe(&put)
        );
        ensure!(put.payload.as_ref() == b"blue");
        let delete = out.next(BOUND, "the republished delete").await?;
        ensure!(
            header(&delete, "KV-Operation") == Some("DEL"),
            "{}",
            describe(&delete)
        );
        ensure!(
            header(&delete, "Nats-Last-Sequence") == Some("1"),
            "{}",
            describe(&delete)
        );
        Ok(())
    })
}
