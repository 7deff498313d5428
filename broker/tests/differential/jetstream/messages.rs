//! Messages in a stream: PURGE (filter, seq, keep), MSG.GET (seq, last_by_subj,
//! next_by_subj), MSG.DELETE and DIRECT.GET.

use anyhow::{ensure, Context};
use base64::Engine;
use serde_json::{json, Value};

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_stream_purge_by_filter_keep_and_seq,
        js_msg_get_by_seq_last_by_subject_and_next_by_subject,
        js_msg_delete_leaves_a_gap_and_a_second_delete_fails,
        js_direct_get_answers_with_headers_and_404_when_missing,
    ]
}

fn js_stream_purge_by_filter_keep_and_seq(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "SPU", "subjects": ["spu.*"]})).await?;
        for i in 0..10 {
            let subject = if i % 2 == 0 { "spu.a" } else { "spu.b" };
            publish(&c, subject, &[], &format!("m{i}")).await?;
        }
        // Seqs 1,3,5,7,9 on spu.a; 2,4,6,8,10 on spu.b.
        let reply = api(
            &c,
            "STREAM.PURGE.SPU",
            json!({"filter": "spu.a", "keep": 2}),
        )
        .await?;
        let expected = json!({"type": "io.nats.jetstream.api.v1.stream_purge_response",
            "success": true, "purged": 3});
        ensure!(reply == expected, "{reply}");
        // `seq` purges everything below it (here on spu.b: 2 and 4).
        let reply = api(&c, "STREAM.PURGE.SPU", json!({"filter": "spu.b", "seq": 6})).await?;
        ensure!(reply["purged"] == 2, "{reply}");
        let state = stream_state(&c, "SPU").await?;
        expect_fields(
            &state,
            &[
                ("/messages", json!(5)),
                ("/first_seq", json!(6)),
                ("/last_seq", json!(10)),
            ],
        )?;
        let reply = api(&c, "STREAM.PURGE.SPU", json!({"keep": 1})).await?;
        ensure!(reply["purged"] == 4, "{reply}");
        let reply = api(&c, "STREAM.PURGE.SPU", Value::Null).await?;
        ensure!(reply["purged"] == 1, "{reply}");
        let state = stream_state(&c, "SPU").await?;
        // An emptied stream's first_seq is last_seq + 1.
        let expected = json!({"messages": 0, "bytes": 0, "first_seq": 11, "last_seq": 10, "consumer_count": 0});
        ensure!(untimed(&state) == expected, "state {state}");
        let ack = publish(&c, "spu.a", &[], "after").await?;
        ensure!(ack == json!({"stream": "SPU", "seq": 11}), "{ack}");
        Ok(())
    })
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn js_msg_get_by_seq_last_by_subject_and_next_by_subject(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "SMG", "subjects": ["smg.*"]})).await?;
        for i in 0..5 {
            let subject = if i % 2 == 0 { "smg.a" } else { "smg.b" };
            publish(&c, subject, &[], &format!("m{i}")).await?;
        }
        publish(&c, "smg.c", &[("Foo", "bar")], "hdr").await?;
        let get = |body: Value| {
            let c = c.clone();
            async move { api(&c, "STREAM.MSG.GET.SMG", body).await }
        };
        let without_time = |reply: &Value| {
            let mut message = reply["message"].clone();
            ensure!(message["time"].is_string(), "no time in {reply}");
            message.as_object_mut().context("message")?.remove("time");
            anyhow::Ok(message)
        };
        let reply = get(json!({"seq": 2})).await?;
        expect_type(&reply, "stream_msg_get_response")?;
        let expected = json!({"subject": "smg.b", "seq": 2, "data": b64("m1")});
        ensure!(without_time(&reply)? == expected, "{reply}");
        // Headers come back base64-encoded in `hdrs`, as stored.
        let reply = get(json!({"seq": 6})).await?;
        let expected = json!({"subject": "smg.c", "seq": 6,
            "hdrs": b64("NATS/1.0\r\nFoo: bar\r\n\r\n"), "data": b64("hdr")});
        ensure!(without_time(&reply)? == expected, "{reply}");
        let reply = get(json!({"last_by_subj": "smg.a"})).await?;
        ensure!(reply["message"]["seq"] == 5, "{reply}");
        let reply = get(json!({"next_by_subj": "smg.b", "seq": 3})).await?;
        ensure!(reply["message"]["seq"] == 4, "{reply}");
        let reply = get(json!({"next_by_subj": "smg.*", "seq": 6})).await?;
        ensure!(reply["message"]["seq"] == 6, "{reply}");
        for body in [
            json!({"seq": 99}),
            json!({"last_by_subj": "smg.zz"}),
            json!({"next_by_subj": "smg.a", "seq": 6}),
        ] {
            let reply = get(body.clone()).await?;
            expect_error(&reply, 404, 10037, "no message found").context(body)?;
        }
        // Neither seq nor subject: nats-server answers a plain bad request.
        let reply = get(json!({})).await?;
        expect_error(&reply, 400, 10003, "bad request")
    })
}

fn js_msg_delete_leaves_a_gap_and_a_second_delete_fails(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "SMD", "subjects": ["smd"]})).await?;
        publish_n(&c, "smd", "m", 4).await?;
        let reply = api(&c, "STREAM.MSG.DELETE.SMD", json!({"seq": 2})).await?;
        let expected =
            json!({"type": "io.nats.jetstream.api.v1.stream_msg_delete_response", "success": true});
        ensure!(reply == expected, "{reply}");
        let reply = api(&c, "STREAM.MSG.DELETE.SMD", json!({"seq": 2})).await?;
        expect_error(&reply, 400, 10043, "sequence 2 not found")?;
        let reply = api(
            &c,
            "STREAM.MSG.DELETE.SMD",
            json!({"seq": 3, "no_erase": true}),
        )
        .await?;
        ensure!(reply["success"] == true, "{reply}");
        // Deleting the first message moves first_seq; the others stay as interior deletes.
        api_ok(&c, "STREAM.MSG.DELETE.SMD", json!({"seq": 1})).await?;
        let state = stream_state(&c, "SMD").await?;
        expect_fields(
            &state,
            &[
                ("/messages", json!(1)),
                ("/first_seq", json!(4)),
                ("/last_seq", json!(4)),
            ],
        )?;
        ensure!(state.get("num_deleted").is_none(), "{state}");
        let reply = api(&c, "STREAM.MSG.GET.SMD", json!({"seq": 2})).await?;
        expect_error(&reply, 404, 10037, "no message found")
    })
}

fn js_direct_get_answers_with_headers_and_404_when_missing(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(
            &c,
            json!({"name": "SDG", "subjects": ["sdg.*"], "allow_direct": true}),
        )
        .await?;
        publish(&c, "sdg.a", &[], "first").await?;
        publish(&c, "sdg.b", &[("Foo", "bar")], "second").await?;
        publish(&c, "sdg.a", &[], "third").await?;
        let direct = |subject: String, body: &'static str| {
            let c = c.clone();
            async move {
                within(WAIT, "a DIRECT.GET reply", c.request(subject, body.into()))
                    .await?
                    .context("DIRECT.GET")
            }
        };
        let msg = direct("$JS.API.DIRECT.GET.SDG".into(), r#"{"seq":2}"#).await?;
        ensure!(
            msg.status.is_none() && msg.payload == "second",
            "{}",
            describe(&msg)
        );
        // The stored headers are kept, and nats-server adds these four.
        for (name, value) in [
            ("Foo", Some("bar")),
            ("Nats-Stream", Some("SDG")),
            ("Nats-Subject", Some("sdg.b")),
            ("Nats-Sequence", Some("2")),
            ("Nats-Time-Stamp", None),
        ] {
            let actual = header(&msg, name);
            ensure!(actual.is_some(), "no {name} header on {:?}", msg.headers);
            if value.is_some() {
                ensure!(actual == value, "{name}: {actual:?}");
            }
        }
        let msg = direct(
            "$JS.API.DIRECT.GET.SDG".into(),
            r#"{"last_by_subj":"sdg.a"}"#,
        )
        .await?;
        ensure!(
            msg.payload == "third" && header(&msg, "Nats-Sequence") == Some("3"),
            "{}",
            describe(&msg)
        );
        // The subject form: DIRECT.GET.<stream>.<subject> gets the last message on it.
        let msg = direct("$JS.API.DIRECT.GET.SDG.sdg.a".into(), "").await?;
        ensure!(
            msg.payload == "first" || msg.payload == "third",
            "{}",
            describe(&msg)
        );
        ensure!(
            msg.payload == "third",
            "the subject form returned {}",
            describe(&msg)
        );
        let msg = direct("$JS.API.DIRECT.GET.SDG".into(), r#"{"seq":99}"#).await?;
        expect_status(&msg, "NATS/1.0 404 Message Not Found", &[])
    })
}
