//! Stream config validation and limits: names, subjects, replicas, max_msgs, max_bytes,
//! max_age, max_msgs_per_subject, max_msg_size, discard old/new, deny_delete, deny_purge,
//! retention limits/interest/workqueue, memory storage.

use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_stream_create_rejects_bad_requests_with_nats_server_errors,
        js_stream_subjects_overlapping_another_stream_are_rejected,
        js_max_msgs_discard_old_evicts_and_discard_new_refuses,
        js_max_bytes_discard_old_evicts_and_discard_new_refuses,
        js_max_msgs_per_subject_keeps_the_newest_or_refuses_per_subject,
        js_max_msg_size_refuses_larger_messages,
        js_max_age_expires_messages_and_bounds_the_duplicate_window,
    ]
}

fn js_stream_create_rejects_bad_requests_with_nats_server_errors(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        let create = |name: &'static str, body: Value| {
            let c = c.clone();
            async move { api(&c, &format!("STREAM.CREATE.{name}"), body).await }
        };
        // Each case: subject name, body, code, err_code, description (nats-server 2.10.26).
        let cases: Vec<(&str, Value, u64, u64, &str)> = vec![
            (
                "LBAD1",
                Value::String("{bad".into()),
                400,
                10025,
                "invalid JSON",
            ),
            (
                "LBAD1",
                json!({"name": "LOTHER", "subjects": ["lbad1"]}),
                400,
                10056,
                "stream name in subject does not match request",
            ),
            // Replicas need a cluster: 500 with err_code 10074.
            (
                "LBAD2",
                json!({"name": "LBAD2", "subjects": ["lbad2"], "num_replicas": 3}),
                500,
                10074,
                "replicas > 1 not supported in non-clustered mode",
            ),
            (
                "LBAD*",
                json!({"name": "LBAD*", "subjects": ["lbad3"]}),
                500,
                10052,
                "stream name is required and can not contain '.', '*', '>'",
            ),
            (
                "LBAD>",
                json!({"name": "LBAD>", "subjects": ["lbad3"]}),
                500,
                10052,
                "stream name is required and can not contain '.', '*', '>'",
            ),
            (
                "L/BAD",
                json!({"name": "L/BAD", "subjects": ["lbad3"]}),
                400,
                10128,
                "Stream name can not contain path separators",
            ),
            (
                "LBAD4",
                json!({"name": "LBAD4", "subjects": ["lbad.>.x"]}),
                500,
                10052,
                "invalid subject",
            ),
            (
                "LBAD5",
                json!({"name": "LBAD5", "subjects": ["lbad5", "lbad5"]}),
                500,
                10052,
                "duplicate subjects detected",
            ),
            (
                "LBAD6",
                json!({"name": "LBAD6", "subjects": ["$JS.API.>"]}),
                500,
                10052,
                "subjects that overlap with jetstream api require no-ack to be true",
            ),
            // An unknown enum value fails JSON decoding.
            (
                "LBAD7",
                json!({"name": "LBAD7", "subjects": ["lbad7"], "retention": "bogus"}),
                400,
                10025,
                "invalid JSON",
            ),
        ];
        for (name, body, code, err_code, description) in cases {
            let reply = create(name, body.clone()).await?;
            expect_type(&reply, "stream_create_response")?;
            expect_error(&reply, code, err_code, description).with_context(|| format!("{body}"))?;
        }
        let long = "L".repeat(256);
        let reply = api(
            &c,
            &format!("STREAM.CREATE.{long}"),
            json!({"name": long, "subjects": ["lbad8"]}),
        )
        .await?;
        expect_error(
            &reply,
            500,
            10052,
            "stream name is too long, maximum allowed is 255",
        )?;
        // None of them was created.
        let names = api(&c, "STREAM.NAMES", json!({"subject": "lbad.>"})).await?;
        ensure!(names["total"] == 0, "{names}");
        Ok(())
    })
}

fn js_stream_subjects_overlapping_another_stream_are_rejected(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "LOV1", "subjects": ["lov.a.*"]})).await?;
        for subjects in [
            json!(["lov.a.b"]),
            json!(["lov.>"]),
            json!(["lov.*.b"]),
            json!(["x.lov", "lov.a.*"]),
        ] {
            let reply = api(
                &c,
                "STREAM.CREATE.LOV2",
                json!({"name": "LOV2", "subjects": subjects}),
            )
            .await?;
            expect_error(
                &reply,
                400,
                10065,
                "subjects overlap with an existing stream",
            )
            .with_context(|| format!("{subjects}"))?;
        }
        // An update into an overlap is refused alike.
        create_stream(&c, json!({"name": "LOV3", "subjects": ["lov.c"]})).await?;
        let reply = api(
            &c,
            "STREAM.UPDATE.LOV3",
            json!({"name": "LOV3", "subjects": ["lov.c", "lov.a.x"]}),
        )
        .await?;
        expect_error(
            &reply,
            400,
            10065,
            "subjects overlap with an existing stream",
        )?;
        // Disjoint subjects are fine.
        create_stream(&c, json!({"name": "LOV4", "subjects": ["lov.b.*"]})).await?;
        Ok(())
    })
}

fn js_max_msgs_discard_old_evicts_and_discard_new_refuses(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(
            &c,
            json!({"name": "LMO", "subjects": ["lmo"], "max_msgs": 3}),
        )
        .await?;
        publish_n(&c, "lmo", "m", 5).await?;
        let state = stream_state(&c, "LMO").await?;
        expect_fields(
            &state,
            &[
                ("/messages", json!(3)),
                ("/first_seq", json!(3)),
                ("/last_seq", json!(5)),
            ],
        )?;
        create_stream(
            &c,
            json!({"name": "LMN", "subjects": ["lmn"], "max_msgs": 2, "discard": "new"}),
        )
        .await?;
        publish_n(&c, "lmn", "m", 2).await?;
        let ack = publish(&c, "lmn", &[], "third").await?;
        // Discard new: 503 with err_code 10077, and the PubAck error names the stream, seq 0.
        let expected = json!({"error": {"code": 503, "err_code": 10077,
            "description": "maximum messages exceeded"}, "stream": "LMN", "seq": 0});
        ensure!(ack == expected, "{ack}");
        let state = stream_state(&c, "LMN").await?;
        expect_fields(&state, &[("/messages", json!(2)), ("/last_seq", json!(2))])
    })
}

fn js_max_bytes_discard_old_evicts_and_discard_new_refuses(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        // File-store size of a 10-byte payload on "lbo"/"lbn": 30 + 3 + 10 = 43 bytes.
        create_stream(
            &c,
            json!({"name": "LBO", "subjects": ["lbo"], "max_bytes": 100}),
        )
        .await?;
        for i in 0..5 {
            publish(&c, "lbo", &[], &format!("{i:010}")).await?;
        }
        let state = stream_state(&c, "LBO").await?;
        expect_fields(
            &state,
            &[
                ("/messages", json!(2)),
                ("/bytes", json!(86)),
                ("/first_seq", json!(4)),
            ],
        )?;
        create_stream(
            &c,
            json!({"name": "LBN", "subjects": ["lbn"], "max_bytes": 100, "discard": "new"}),
        )
        .await?;
        for i in 0..2 {
            let ack = publish(&c, "lbn", &[], &format!("{i:010}")).await?;
            ensure!(ack.get("error").is_none(), "{ack}");
        }
        let ack = publish(&c, "lbn", &[], "0123456789").await?;
        let expected = json!({"error": {"code": 503, "err_code": 10077,
            "description": "maximum bytes exceeded"}, "stream": "LBN", "seq": 0});
        ensure!(ack == expected, "{ack}");
        Ok(())
    })
}

fn js_max_msgs_per_subject_keeps_the_newest_or_refuses_per_subject(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(
            &c,
            json!({"name": "LPS", "subjects": ["lps.*"], "max_msgs_per_subject": 2}),
        )
        .await?;
        publish_n(&c, "lps.a", "a", 4).await?;
        publish_n(&c, "lps.b", "b", 1).await?;
        let info = api_ok(&c, "STREAM.INFO.LPS", json!({"subjects_filter": ">"})).await?;
        expect_fields(
            &info["state"],
            &[
                ("/messages", json!(3)),
                ("/first_seq", json!(3)),
                ("/subjects", json!({"lps.a": 2, "lps.b": 1})),
            ],
        )?;
        let reply = api(&c, "STREAM.MSG.GET.LPS", json!({"seq": 3})).await?;
        ensure!(reply["message"]["subject"] == "lps.a", "{reply}");
        create_stream(
            &c,
            json!({"name": "LPN", "subjects": ["lpn.*"], "max_msgs_per_subject": 1,
            "discard": "new", "discard_new_per_subject": true}),
        )
        .await?;
        publish_n(&c, "lpn.a", "a", 1).await?;
        let ack = publish(&c, "lpn.a", &[], "again").await?;
        let expected = json!({"error": {"code": 503, "err_code": 10077,
            "description": "maximum messages per subject exceeded"}, "stream": "LPN", "seq": 0});
        ensure!(ack == expected, "{ack}");
        let ack = publish(&c, "lpn.b", &[], "other subject").await?;
        ensure!(ack == json!({"stream": "LPN", "seq": 2}), "{ack}");
        Ok(())
    })
}

fn js_max_msg_size_refuses_larger_messages(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(
            &c,
            json!({"name": "LMS", "subjects": ["lms"], "max_msg_size": 10}),
        )
        .await?;
        let ack = publish(&c, "lms", &[], "01234567890").await?;
        let expected = json!({"error": {"code": 400, "err_code": 10054,
            "description": "message size exceeds maximum allowed"}, "stream": "LMS", "seq": 0});
        ensure!(ack == expected, "{ack}");
        let ack = publish(&c, "lms", &[], "0123456789").await?;
        ensure!(ack == json!({"stream": "LMS", "seq": 1}), "{ack}");
        Ok(())
    })
}

fn js_max_age_expires_messages_and_bounds_the_duplicate_window(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        // A duplicate window longer than max_age is refused...
        let reply = api(
            &c,
            "STREAM.CREATE.LMA",
            json!({"name": "LMA", "subjects": ["lma"],
            "max_age": ms(1000), "duplicate_window": ms(2000)}),
        )
        .await?;
        expect_error(
            &reply,
            500,
            10052,
            "duplicates window can not be larger then max age",
        )?;
        // ...and without one it defaults to max_age when max_age is under two minutes.
        let reply = create_stream(
            &c,
            json!({"name": "LMA", "subjects": ["lma"], "max_age": ms(300)}),
        )
        .await?;
        ensure!(reply["config"]["duplicate_window"] == ms(300), "{reply}");
        publish_n(&c, "lma", "m", 3).await?;
        let state = stream_state(&c, "LMA").await?;
        ensure!(state["messages"] == 3, "{state}");
        let c2 = c.clone();
        eventually(Duration::from_secs(3), "max_age expiry", move || {
            let c = c2.clone();
            async move { Ok(stream_state(&c, "LMA").await?["messages"] == 0) }
        })
        .await?;
        let state = stream_state(&c, "LMA").await?;
        expect_fields(&state, &[("/first_seq", json!(4)), ("/last_seq", json!(3))])
    })
}
