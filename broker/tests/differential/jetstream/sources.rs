//! Sources: copies marked with `Nats-Stream-Source` from several streams, filters, start
//! positions, updates, KV buckets sourcing others, and the configuration errors.

use anyhow::ensure;
use serde_json::{json, Value};

use super::sourcing::{await_state, message};
use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_sources_copy_from_several_streams_with_a_source_header,
        js_source_configuration_errors,
        js_stream_update_adds_and_removes_sources,
        js_kv_bucket_sourcing_another_with_a_transform_serves_its_keys,
        js_a_source_with_a_start_time_begins_at_the_first_message_at_or_after_it,
        js_a_copy_the_stream_refuses_is_tried_again_once_there_is_room,
    ]
}

fn js_sources_copy_from_several_streams_with_a_source_header(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "SA", "subjects": ["sa.>"]})).await?;
        create_stream(&c, json!({"name": "SB", "subjects": ["sb.>"]})).await?;
        publish_n(&c, "sa.x", "a", 2).await?;
        publish_n(&c, "sb.x", "b", 1).await?;
        publish_n(&c, "sb.y", "b", 1).await?;
        let sources = json!([{"name": "SA"}, {"name": "SB", "filter_subject": "sb.y"}]);
        let info = create_stream(&c, json!({"name": "SS", "sources": sources})).await?;
        ensure!(info["config"]["sources"] == sources, "{info}");
        ensure!(info["config"].get("subjects").is_none(), "{info}");
        await_state(&c, "SS", 3, 3).await?;
        let mut copies = Vec::new();
        for seq in 1..=3 {
            let m = message(&c, "SS", seq).await?;
            copies.push(json!([m[0], m[1], m[2]]));
        }
        copies.sort_by_key(|v| v.to_string());
        let expected = json!([
            ["sa.x", "a0", "SA 1 > >"],
            ["sa.x", "a1", "SA 2 > >"],
            ["sb.y", "b0", "SB 2 sb.y >"],
        ]);
        ensure!(json!(copies) == expected, "{}", json!(copies));
        // New messages follow; the origin's expectations are not checked again.
        let ack = publish(&c, "sa.z", &[("Nats-Expected-Last-Sequence", "2")], "a2").await?;
        ensure!(ack.get("error").is_none(), "{ack}");
        await_state(&c, "SS", 4, 4).await?;
        let m = message(&c, "SS", 4).await?;
        ensure!(m[0] == "sa.z" && m[2] == "SA 3 > >" && m[3] == false, "{m}");
        let info = api_ok(&c, "STREAM.INFO.SS", Value::Null).await?;
        let mut names: Vec<Value> = info["sources"].as_array().cloned().unwrap_or_default();
        names.sort_by_key(|s| s["name"].to_string());
        ensure!(
            names.len() == 2 && names[1]["filter_subject"] == "sb.y",
            "{info}"
        );
        ensure!(
            names
                .iter()
                .all(|s| s["active"].is_i64() && s["lag"].is_u64()),
            "{info}"
        );
        Ok(())
    })
}

fn js_source_configuration_errors(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(
            &c,
            json!({"name": "SEO", "subjects": ["seo.>"], "max_msg_size": 100}),
        )
        .await?;
        let cases = [
            (
                json!([{"name": "SEO"}, {"name": "SEO"}]),
                10140,
                "duplicate source configuration detected",
            ),
            (
                json!([{"name": "a.b"}]),
                10141,
                "sourced stream name is invalid",
            ),
            (
                json!([{"name": "SEO", "filter_subject": "seo.a",
                "subject_transforms": [{"src": "seo.b", "dest": "x"}]}]),
                10144,
                "source with multiple subject transforms cannot also have a single subject filter",
            ),
            (
                json!([{"name": "SEO", "subject_transforms": [{"src": "seo.*", "dest": "x.{{bogus(1)}}"}]}]),
                10146,
                "source transform destination is invalid",
            ),
            (
                json!([{"name": "SEO", "subject_transforms": [{"src": "seo..a", "dest": "x"}]}]),
                10145,
                "source subject filter is invalid",
            ),
            (
                json!([{"name": "SEO", "subject_transforms": [
                {"src": "seo.a", "dest": "x"}, {"src": "seo.*", "dest": "y.$1"}]}]),
                10147,
                "source filters can not overlap",
            ),
        ];
        for (sources, err_code, text) in cases {
            let config = json!({"name": "SE", "sources": sources});
            let reply = api(&c, "STREAM.CREATE.SE", config).await?;
            expect_error(&reply, 400, err_code, text)?;
        }
        // An external origin's prefixes.
        let externals = [
            (
                json!({"api": "$JS.API", "deliver": "d"}),
                400,
                10021,
                "stream external api prefix $JS.API must not overlap with $JS.API",
            ),
            (
                json!({"api": "$JS.X.API", "deliver": "d.*"}),
                400,
                10024,
                "stream external delivery prefix d.* must not contain wildcards",
            ),
            (
                json!({"api": "x.>", "deliver": "d"}),
                500,
                10052,
                "stream external api prefix \"x.>\" must be a valid subject without wildcards",
            ),
        ];
        for (external, code, err_code, text) in externals {
            let config = json!({"name": "SE", "sources": [{"name": "SEO", "external": external}]});
            let reply = api(&c, "STREAM.CREATE.SE", config).await?;
            expect_error(&reply, code, err_code, text)?;
        }
        let config = json!({"name": "SE", "sources": [{"name": "SEO"}], "max_msg_size": 10});
        let reply = api(&c, "STREAM.CREATE.SE", config).await?;
        expect_error(
            &reply,
            400,
            10046,
            "stream source must have max message size >= target",
        )?;
        // A stream sourcing from one that sources from it, on the same subjects.
        create_stream(
            &c,
            json!({"name": "SC1", "subjects": ["sc1"], "sources": [{"name": "SC2"}]}),
        )
        .await?;
        let config = json!({"name": "SC2", "subjects": ["sc2"], "sources": [{"name": "SC1"}]});
        let reply = api(&c, "STREAM.CREATE.SC2", config).await?;
        expect_error(&reply, 500, 10052, "detected cycle")?;
        Ok(())
    })
}

fn js_stream_update_adds_and_removes_sources(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "UA", "subjects": ["ua"]})).await?;
        create_stream(&c, json!({"name": "UB", "subjects": ["ub"]})).await?;
        create_stream(
            &c,
            json!({"name": "US", "subjects": ["us"], "sources": [{"name": "UA"}]}),
        )
        .await?;
        publish_n(&c, "ua", "a", 1).await?;
        await_state(&c, "US", 1, 1).await?;
        let both = json!({"name": "US", "subjects": ["us"],
            "sources": [{"name": "UA"}, {"name": "UB"}]});
        api_ok(&c, "STREAM.UPDATE.US", both).await?;
        publish_n(&c, "ub", "b", 1).await?;
        await_state(&c, "US", 2, 2).await?;
        let only_b = json!({"name": "US", "subjects": ["us"], "sources": [{"name": "UB"}]});
        let info = api_ok(&c, "STREAM.UPDATE.US", only_b).await?;
        ensure!(
            info["config"]["sources"] == json!([{"name": "UB"}]),
            "{info}"
        );
        // UA is no longer followed: its next message does not come, UB's does.
        publish_n(&c, "ua", "late", 1).await?;
        publish_n(&c, "ub", "b", 1).await?;
        await_state(&c, "US", 3, 3).await?;
        ensure!(message(&c, "US", 3).await?[0] == "ub");
        // The stream's own subjects still take publishes.
        publish_n(&c, "us", "own", 1).await?;
        await_state(&c, "US", 4, 4).await?;
        Ok(())
    })
}

fn js_kv_bucket_sourcing_another_with_a_transform_serves_its_keys(
    t: &Target,
) -> anyhow::Result<()> {
    use async_nats::jetstream::{kv, stream};
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        let js = async_nats::jetstream::new(c.clone());
        let origin = js
            .create_key_value(kv::Config {
                bucket: "KVO".into(),
                history: 3,
                ..Default::default()
            })
            .await?;
        origin.put("a", "1".into()).await?;
        origin.put("b", "2".into()).await?;
        origin.put("a", "3".into()).await?;
        let copy = js
            .create_key_value(kv::Config {
                bucket: "KVS".into(),
                history: 3,
                sources: Some(vec![stream::Source {
                    name: "KVO".into(),
                    subject_transforms: vec![stream::SubjectTransform {
                        source: "$KV.KVO.>".into(),
                        destination: "$KV.KVS.>".into(),
                    }],
                    ..Default::default()
                }]),
                ..Default::default()
            })
            .await?;
        await_state(&c, "KV_KVS", 3, 3).await?;
        let a = copy.get("a").await?;
        let b = copy.entry("b").await?.map(|e| (e.value, e.revision));
        ensure!(a.as_deref() == Some(&b"3"[..]), "{a:?}");
        ensure!(b == Some(("2".into(), 2)), "{b:?}");
        // A delete in the origin reaches the copy as a delete marker.
        origin.delete("b").await?;
        await_state(&c, "KV_KVS", 4, 4).await?;
        ensure!(copy.get("b").await?.is_none());
        Ok(())
    })
}

fn js_a_source_with_a_start_time_begins_at_the_first_message_at_or_after_it(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "TO", "subjects": ["to"]})).await?;
        publish_n(&c, "to", "m", 3).await?;
        let second = api_ok(&c, "STREAM.MSG.GET.TO", json!({"seq": 2})).await?;
        let time = second["message"]["time"].clone();
        let source = json!({"name": "TO", "opt_start_time": time});
        let info = create_stream(&c, json!({"name": "TS", "sources": [source]})).await?;
        ensure!(
            info["config"]["sources"][0]["opt_start_time"] == time,
            "{info}"
        );
        await_state(&c, "TS", 2, 2).await?;
        let first = message(&c, "TS", 1).await?;
        ensure!(first[1] == "m1" && first[2] == "TO 2 > >", "{first}");
        Ok(())
    })
}

fn js_a_copy_the_stream_refuses_is_tried_again_once_there_is_room(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "FO", "subjects": ["fo"]})).await?;
        publish_n(&c, "fo", "m", 3).await?;
        let full = json!({"name": "FS", "sources": [{"name": "FO"}],
            "max_msgs": 2, "discard": "new"});
        create_stream(&c, full).await?;
        await_state(&c, "FS", 2, 2).await?;
        api_ok(&c, "STREAM.PURGE.FS", Value::Null).await?;
        // The third message comes once the purge made room, and nothing is lost or repeated.
        let st = await_state(&c, "FS", 1, 3).await?;
        ensure!(st["first_seq"] == 3, "{st}");
        let m = message(&c, "FS", 3).await?;
        ensure!(m[1] == "m2" && m[2] == "FO 3 > >", "{m}");
        Ok(())
    })
}
