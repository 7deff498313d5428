//! Mirrors and sources in one account: mirrors (which keep the origin's sequences), what both
//! share (following origins that come later, go or are missing, a restart, consumers of the
//! copies) and the helpers of `sources.rs`.

use std::time::Duration;

use anyhow::ensure;
use serde_json::{json, Value};

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_mirror_keeps_the_origins_sequences_and_follows_it,
        js_mirror_subject_transforms_filter_and_rename,
        js_mirror_configuration_errors,
        js_origins_created_after_their_mirror_and_source_are_followed,
        js_mirror_and_source_resume_after_a_restart_without_duplicates,
        js_consumers_of_a_mirror_and_a_source_get_the_copies_from_the_start_sequence,
        js_a_missing_origin_is_reported_in_the_stream_info,
        js_a_mirror_catches_up_on_more_messages_than_one_read_takes,
        js_a_caught_up_mirror_with_mirror_direct_answers_its_origins_direct_gets,
        js_a_mirror_allowing_rollups_applies_its_origins_rollups,
    ]
}

/// Long enough for a follower that looks for a missing origin once a second.
pub const FOLLOW: Duration = Duration::from_secs(10);

/// Waits until `stream` holds `msgs` messages with `last_seq` last.
pub async fn await_state(
    c: &async_nats::Client,
    stream: &str,
    msgs: u64,
    last_seq: u64,
) -> anyhow::Result<Value> {
    let what = format!("{stream} holding {msgs} messages up to {last_seq}");
    eventually(FOLLOW, &what, || async {
        let st = stream_state(c, stream).await?;
        Ok(st["messages"] == msgs && st["last_seq"] == last_seq)
    })
    .await?;
    stream_state(c, stream).await
}

/// `(subject, payload, Nats-Stream-Source)` of the message at `seq`.
pub async fn message(c: &async_nats::Client, stream: &str, seq: u64) -> anyhow::Result<Value> {
    let reply = api_ok(c, &format!("STREAM.MSG.GET.{stream}"), json!({"seq": seq})).await?;
    let m = &reply["message"];
    let decode = |v: &Value| -> anyhow::Result<String> {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or(""))?;
        Ok(String::from_utf8_lossy(&raw).into_owned())
    };
    let headers = decode(&m["hdrs"])?;
    let source = headers
        .split("\r\n")
        .find_map(|l| l.strip_prefix("Nats-Stream-Source: "))
        .map(str::to_string);
    let expected = headers.contains("Nats-Expected-");
    Ok(json!([
        m["subject"],
        decode(&m["data"])?,
        source,
        expected,
        m["time"]
    ]))
}

fn js_mirror_keeps_the_origins_sequences_and_follows_it(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(
            &c,
            json!({"name": "MO", "subjects": ["mo.>"], "allow_direct": true}),
        )
        .await?;
        publish_n(&c, "mo.a", "m", 4).await?;
        api_ok(&c, "STREAM.MSG.DELETE.MO", json!({"seq": 3})).await?;
        api_ok(&c, "STREAM.PURGE.MO", json!({"seq": 2})).await?;
        let info = create_stream(&c, json!({"name": "MM", "mirror": {"name": "MO"}})).await?;
        // No subjects, no duplicate window; direct gets inherited from the origin.
        let config = &info["config"];
        ensure!(config.get("subjects").is_none(), "{info}");
        ensure!(config.get("duplicate_window").is_none(), "{info}");
        ensure!(config["mirror"] == json!({"name": "MO"}), "{info}");
        ensure!(config["mirror_direct"] == true, "{info}");
        let st = await_state(&c, "MM", 2, 4).await?;
        ensure!(
            st["first_seq"] == 2 && st.get("num_deleted") == Some(&json!(1)),
            "{st}"
        );
        // The same message at the same sequence, with the origin's timestamp.
        ensure!(message(&c, "MM", 4).await? == message(&c, "MO", 4).await?);
        publish(&c, "mo.b", &[("Nats-Msg-Id", "x")], "new").await?;
        await_state(&c, "MM", 3, 5).await?;
        ensure!(message(&c, "MM", 5).await? == message(&c, "MO", 5).await?);
        eventually(FOLLOW, "a lag of 0", || async {
            let info = api_ok(&c, "STREAM.INFO.MM", Value::Null).await?;
            let m = &info["mirror"];
            Ok(m["name"] == "MO" && m["lag"] == 0 && m["active"].is_i64())
        })
        .await?;
        // Deleting the origin leaves the mirror as it was.
        api_ok(&c, "STREAM.DELETE.MO", Value::Null).await?;
        let info = api_ok(&c, "STREAM.INFO.MM", Value::Null).await?;
        ensure!(
            info["state"]["messages"] == 3 && info["mirror"]["name"] == "MO",
            "{info}"
        );
        Ok(())
    })
}

fn js_mirror_subject_transforms_filter_and_rename(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "MFO", "subjects": ["mfo.>"]})).await?;
        for subject in ["mfo.a.1", "mfo.b.2", "mfo.a.3"] {
            publish_n(&c, subject, "m", 1).await?;
        }
        let transforms = json!([{"src": "mfo.a.*", "dest": "moved.$1"}]);
        create_stream(
            &c,
            json!({"name": "MFM", "mirror": {"name": "MFO", "subject_transforms": transforms}}),
        )
        .await?;
        let st = await_state(&c, "MFM", 2, 3).await?;
        ensure!(st["first_seq"] == 1, "{st}");
        ensure!(message(&c, "MFM", 1).await?[0] == "moved.1");
        ensure!(message(&c, "MFM", 3).await?[0] == "moved.3");
        let info = api_ok(&c, "STREAM.INFO.MFM", Value::Null).await?;
        ensure!(info["mirror"]["subject_transforms"] == transforms, "{info}");
        Ok(())
    })
}

fn js_mirror_configuration_errors(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(
            &c,
            json!({"name": "MEO", "subjects": ["meo"], "max_msg_size": 100}),
        )
        .await?;
        let mirror = json!({"name": "MEO"});
        let cases = [
            (
                json!({"subjects": ["mex"], "mirror": mirror}),
                10034,
                "stream mirrors can not contain subjects",
            ),
            (
                json!({"first_seq": 5, "mirror": mirror}),
                10143,
                "stream mirrors can not have first sequence configured",
            ),
            (
                json!({"mirror": mirror, "sources": [{"name": "MEO"}]}),
                10031,
                "stream mirrors can not also contain other sources",
            ),
            (
                json!({"mirror": {"name": "MEO", "filter_subject": "meo",
                "subject_transforms": [{"src": "meo", "dest": "x"}]}}),
                10150,
                "mirror with multiple subject transforms cannot also have a single subject filter",
            ),
            (
                json!({"mirror": {"name": "MEO", "subject_transforms": [
                {"src": "a.*", "dest": "x.$1"}, {"src": "a.b", "dest": "y"}]}}),
                10152,
                "mirror subject filters can not overlap",
            ),
            (
                json!({"mirror": {"name": "MEO", "subject_transforms": [{"src": "a..b", "dest": "x"}]}}),
                10151,
                "mirror subject filter is invalid",
            ),
            (
                json!({"mirror": {"name": "a.b"}}),
                10142,
                "mirrored stream name is invalid",
            ),
            (
                json!({"mirror": mirror, "max_msg_size": 10}),
                10030,
                "stream mirror must have max message size >= source",
            ),
        ];
        for (mut config, err_code, text) in cases {
            config["name"] = json!("ME");
            let reply = api(&c, "STREAM.CREATE.ME", config).await?;
            expect_error(&reply, 400, err_code, text)?;
        }
        create_stream(&c, json!({"name": "ME", "mirror": mirror})).await?;
        let reply = api(
            &c,
            "STREAM.UPDATE.ME",
            json!({"name": "ME", "mirror": {"name": "MEO", "filter_subject": "meo"}}),
        )
        .await?;
        expect_error(
            &reply,
            400,
            10055,
            "stream mirror configuration can not be updated",
        )?;
        Ok(())
    })
}

fn js_origins_created_after_their_mirror_and_source_are_followed(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "LM", "mirror": {"name": "LATE"}})).await?;
        create_stream(&c, json!({"name": "LS", "sources": [{"name": "LATE"}]})).await?;
        create_stream(&c, json!({"name": "LATE", "subjects": ["late"]})).await?;
        publish_n(&c, "late", "m", 2).await?;
        await_state(&c, "LM", 2, 2).await?;
        await_state(&c, "LS", 2, 2).await?;
        Ok(())
    })
}

fn js_mirror_and_source_resume_after_a_restart_without_duplicates(
    t: &Target,
) -> anyhow::Result<()> {
    let mut server = JsServer::start(t)?;
    block_on(async move {
        let c = connect(&server.server.client_url()).await?;
        create_stream(&c, json!({"name": "RO", "subjects": ["ro.*"]})).await?;
        publish_n(&c, "ro.a", "m", 5).await?;
        create_stream(&c, json!({"name": "RM", "mirror": {"name": "RO"}})).await?;
        create_stream(
            &c,
            json!({"name": "RS", "sources": [{"name": "RO", "filter_subject": "ro.a"}]}),
        )
        .await?;
        await_state(&c, "RM", 5, 5).await?;
        await_state(&c, "RS", 5, 5).await?;
        drop(c);
        server.restart(false)?;
        let c = connect(&server.server.client_url()).await?;
        publish_n(&c, "ro.a", "n", 2).await?;
        publish_n(&c, "ro.b", "n", 1).await?;
        await_state(&c, "RM", 8, 8).await?;
        // The filter leaves ro.b out: seven copies, none twice.
        await_state(&c, "RS", 7, 7).await?;
        let m = message(&c, "RS", 7).await?;
        ensure!(m[1] == "n1" && m[2] == "RO 7 ro.a >", "{m}");
        Ok(())
    })
}

fn js_consumers_of_a_mirror_and_a_source_get_the_copies_from_the_start_sequence(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "CO", "subjects": ["co"]})).await?;
        publish_n(&c, "co", "m", 3).await?;
        create_stream(
            &c,
            json!({"name": "CM", "mirror": {"name": "CO", "opt_start_seq": 2}}),
        )
        .await?;
        create_stream(
            &c,
            json!({"name": "CS", "sources": [{"name": "CO", "opt_start_seq": 3}]}),
        )
        .await?;
        let st = await_state(&c, "CM", 2, 3).await?;
        ensure!(st["first_seq"] == 2, "{st}");
        await_state(&c, "CS", 1, 1).await?;
        for (stream, expected) in [("CM", ["m1", "m2", "CM-0"]), ("CS", ["m2", "CM-0", "CS-0"])] {
            create_consumer(&c, stream, json!({"durable_name": "d"})).await?;
            let mut inbox = pull(&c, stream, "d", json!({"batch": 3})).await?;
            let first = inbox.next(WAIT, "a copied message").await?;
            // A message stored after the consumer started reaches it as well.
            publish_n(&c, "co", &format!("{stream}-"), 1).await?;
            let mut got = vec![String::from_utf8_lossy(&first.payload).into_owned()];
            for _ in 0..2 {
                let msg = inbox.next(FOLLOW, "a copied message").await?;
                got.push(String::from_utf8_lossy(&msg.payload).into_owned());
            }
            ensure!(got == expected, "{stream}: {got:?}");
        }
        Ok(())
    })
}

fn js_a_missing_origin_is_reported_in_the_stream_info(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "NM", "mirror": {"name": "NONE"}})).await?;
        let sources = json!([{"name": "NONE", "filter_subject": "none.x"}, {"name": "NONE2"}]);
        create_stream(&c, json!({"name": "NS", "sources": sources})).await?;
        let not_found = json!({"code": 404, "err_code": 10059, "description": "stream not found"});
        let expected = json!({"name": "NONE", "lag": 0, "active": -1, "error": not_found});
        eventually(FOLLOW, "the mirror's origin reported missing", || async {
            let info = api_ok(&c, "STREAM.INFO.NM", Value::Null).await?;
            Ok(info["mirror"] == expected)
        })
        .await?;
        let mut expected_source = expected.clone();
        expected_source["filter_subject"] = json!("none.x");
        eventually(FOLLOW, "the sources reported missing", || async {
            let info = api_ok(&c, "STREAM.INFO.NS", Value::Null).await?;
            let all = info["sources"].as_array().cloned().unwrap_or_default();
            let first = all.iter().find(|s| s["name"] == "NONE");
            Ok(first == Some(&expected_source) && all.len() == 2)
        })
        .await?;
        // (nats-server then retries with a growing backoff, the broker every second; an origin
        // created soon after is followed by both, see the scenario before.)
        Ok(())
    })
}

/// More than the broker reads from an origin at once (256), so the catch-up takes several
/// reads.
fn js_a_mirror_catches_up_on_more_messages_than_one_read_takes(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "BO", "subjects": ["bo.*"]})).await?;
        for i in 0..600 {
            c.publish(format!("bo.{}", i % 7), format!("m{i}").into())
                .await?;
        }
        c.flush().await?;
        await_state(&c, "BO", 600, 600).await?;
        create_stream(&c, json!({"name": "BM", "mirror": {"name": "BO"}})).await?;
        create_stream(
            &c,
            json!({"name": "BS", "sources": [{"name": "BO", "filter_subject": "bo.3"}]}),
        )
        .await?;
        await_state(&c, "BM", 600, 600).await?;
        await_state(&c, "BS", 86, 86).await?;
        ensure!(message(&c, "BM", 599).await? == message(&c, "BO", 599).await?);
        let last = message(&c, "BS", 86).await?;
        ensure!(last[1] == "m598" && last[2] == "BO 599 bo.3 >", "{last}");
        Ok(())
    })
}

fn js_a_caught_up_mirror_with_mirror_direct_answers_its_origins_direct_gets(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(
            &c,
            json!({"name": "DO", "subjects": ["do.*"], "allow_direct": true}),
        )
        .await?;
        publish_n(&c, "do.a", "m", 3).await?;
        let info = create_stream(&c, json!({"name": "DM", "mirror": {"name": "DO"}})).await?;
        ensure!(info["config"]["mirror_direct"] == true, "{info}");
        await_state(&c, "DM", 3, 3).await?;
        // The origin and the mirror share the queue group: over many requests both answer,
        // with the same message.
        let mut answered_by = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let request = c.request("$JS.API.DIRECT.GET.DO", r#"{"seq": 2}"#.into());
            let reply = within(WAIT, "a direct get", request).await??;
            ensure!(reply.payload.as_ref() == b"m1", "{reply:?}");
            let stream = reply.headers.as_ref().and_then(|h| h.get("Nats-Stream"));
            answered_by.insert(stream.map(|s| s.to_string()).unwrap_or_default());
            if answered_by.len() == 2 {
                break;
            }
        }
        ensure!(answered_by.contains("DM"), "{answered_by:?}");
        Ok(())
    })
}

fn js_a_mirror_allowing_rollups_applies_its_origins_rollups(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        let rollups = json!({"name": "RUO", "subjects": ["ru.*"], "allow_rollup_hdrs": true});
        create_stream(&c, rollups).await?;
        publish_n(&c, "ru.a", "m", 2).await?;
        publish_n(&c, "ru.b", "m", 1).await?;
        let mirror = json!({"name": "RUM", "mirror": {"name": "RUO"}, "allow_rollup_hdrs": true});
        create_stream(&c, mirror).await?;
        await_state(&c, "RUM", 3, 3).await?;
        publish(&c, "ru.a", &[("Nats-Rollup", "sub")], "r").await?;
        publish_n(&c, "ru.b", "x", 1).await?;
        let origin = untimed(&await_state(&c, "RUO", 3, 5).await?);
        let mirrored = untimed(&await_state(&c, "RUM", 3, 5).await?);
        ensure!(origin == mirrored, "{origin} vs {mirrored}");
        ensure!(mirrored["first_seq"] == 3, "{mirrored}");
        Ok(())
    })
}
