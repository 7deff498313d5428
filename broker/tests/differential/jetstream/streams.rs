//! Streams: account info, STREAM.CREATE/UPDATE/INFO/DELETE/NAMES/LIST/PURGE, MSG.GET,
//! MSG.DELETE and DIRECT.GET.

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_account_info_counts_streams_consumers_and_api_calls,
        js_stream_create_returns_the_config_with_every_default,
        js_stream_create_again_is_idempotent_but_a_different_config_is_rejected,
        js_stream_update_changes_subjects_and_limits_but_not_storage,
        js_stream_info_state_counts_messages_bytes_subjects_and_deletes,
        js_stream_names_and_list_filter_by_subject,
        js_stream_delete_then_every_stream_call_is_not_found,
        js_delete_and_info_take_no_request_but_an_empty_object_is_none,
    ]
}

fn js_account_info_counts_streams_consumers_and_api_calls(t: &Target) -> anyhow::Result<()> {
    // A server of its own: the account counters are server-wide.
    let js = JsServer::start(t)?;
    let url = js.server.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        let info = api(&c, "INFO", Value::Null).await?;
        // nats-server 2.10 reports unlimited limits as -1 and counts API calls in `api`; the
        // INFO request itself is counted after its reply is built.
        let expected = json!({
            "type": "io.nats.jetstream.api.v1.account_info_response",
            "memory": 0, "storage": 0, "reserved_memory": 0, "reserved_storage": 0,
            "streams": 0, "consumers": 0,
            "limits": {
                "max_memory": -1, "max_storage": -1, "max_streams": -1, "max_consumers": -1,
                "max_ack_pending": -1, "memory_max_stream_bytes": -1,
                "storage_max_stream_bytes": -1, "max_bytes_required": false
            },
            "api": {"total": 0, "errors": 0}
        });
        ensure!(info == expected, "fresh account info: {info}");
        create_stream(
            &c,
            json!({"name": "AI", "subjects": ["ai.>"], "storage": "memory"}),
        )
        .await?;
        create_consumer(
            &c,
            "AI",
            json!({"durable_name": "D", "ack_policy": "explicit"}),
        )
        .await?;
        publish_n(&c, "ai.x", "m", 2).await?;
        let failed = api(&c, "STREAM.INFO.NOPE", Value::Null).await?;
        expect_error(&failed, 404, 10059, "stream not found")?;
        let info = api(&c, "INFO", Value::Null).await?;
        // Two memory messages on "ai.x" with 2-byte payloads: 16 + 4 + 2 bytes each.
        expect_fields(
            &info,
            &[
                ("/streams", json!(1)),
                ("/consumers", json!(1)),
                ("/memory", json!(44)),
                ("/storage", json!(0)),
                ("/api", json!({"total": 4, "errors": 1})),
            ],
        )
    })
}

/// The full stream config nats-server 2.10 returns for `{"name", "subjects"}`.
fn default_config(name: &str, subjects: &[&str]) -> Value {
    json!({
        "name": name, "subjects": subjects, "retention": "limits", "max_consumers": -1,
        "max_msgs": -1, "max_bytes": -1, "max_age": 0, "max_msgs_per_subject": -1,
        "max_msg_size": -1, "discard": "old", "storage": "file", "num_replicas": 1,
        "duplicate_window": 120_000_000_000u64, "compression": "none", "allow_direct": false,
        "mirror_direct": false, "sealed": false, "deny_delete": false, "deny_purge": false,
        "allow_rollup_hdrs": false, "consumer_limits": {}
    })
}

fn js_stream_create_returns_the_config_with_every_default(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        let reply = create_stream(&c, json!({"name": "SCD", "subjects": ["scd.*"]})).await?;
        expect_type(&reply, "stream_create_response")?;
        let config = &reply["config"];
        ensure!(
            *config == default_config("SCD", &["scd.*"]),
            "config {config}"
        );
        let state =
            json!({"messages": 0, "bytes": 0, "first_seq": 0, "last_seq": 0, "consumer_count": 0});
        ensure!(
            untimed(&reply["state"]) == state,
            "state {}",
            reply["state"]
        );
        ensure!(reply["did_create"] == true, "did_create in {reply}");
        ensure!(reply["created"].is_string(), "created in {reply}");
        // Without subjects the stream takes its own name as its one subject.
        let reply = create_stream(&c, json!({"name": "SCDNOSUBJ"})).await?;
        ensure!(
            reply["config"]["subjects"] == json!(["SCDNOSUBJ"]),
            "{reply}"
        );
        let reply = create_stream(
            &c,
            json!({"name": "SCDMEM", "subjects": ["scdmem"], "storage": "memory"}),
        )
        .await?;
        ensure!(reply["config"]["storage"] == "memory", "{reply}");
        Ok(())
    })
}

fn js_stream_create_again_is_idempotent_but_a_different_config_is_rejected(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        let config = json!({"name": "SCA", "subjects": ["sca.>"]});
        create_stream(&c, config.clone()).await?;
        publish_n(&c, "sca.x", "m", 1).await?;
        let again = create_stream(&c, config).await?;
        ensure!(again["state"]["messages"] == 1, "{again}");
        let changed = api(
            &c,
            "STREAM.CREATE.SCA",
            json!({"name": "SCA", "subjects": ["sca.*"]}),
        )
        .await?;
        expect_type(&changed, "stream_create_response")?;
        expect_error(
            &changed,
            400,
            10058,
            "stream name already in use with a different configuration",
        )
    })
}

fn js_stream_update_changes_subjects_and_limits_but_not_storage(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "SUP", "subjects": ["sup.a"]})).await?;
        publish_n(&c, "sup.a", "m", 3).await?;
        let reply = api(
            &c,
            "STREAM.UPDATE.SUP",
            json!({"name": "SUP", "subjects": ["sup.a", "sup.b"], "max_msgs": 2}),
        )
        .await?;
        expect_type(&reply, "stream_update_response")?;
        ensure!(reply.get("error").is_none(), "{reply}");
        ensure!(
            reply["config"]["subjects"] == json!(["sup.a", "sup.b"]),
            "{reply}"
        );
        // Lowering max_msgs applies at once: the oldest message goes.
        expect_fields(
            &reply,
            &[
                ("/state/messages", json!(2)),
                ("/state/first_seq", json!(2)),
            ],
        )?;
        let ack = publish(&c, "sup.b", &[], "new").await?;
        ensure!(ack == json!({"stream": "SUP", "seq": 4}), "{ack}");
        let reply = api(
            &c,
            "STREAM.UPDATE.SUP",
            json!({"name": "SUP", "subjects": ["sup.a"], "storage": "memory"}),
        )
        .await?;
        // nats-server: changing the storage type is refused (500, err_code 10052).
        expect_error(
            &reply,
            500,
            10052,
            "stream configuration update can not change storage type",
        )?;
        let reply = api(
            &c,
            "STREAM.UPDATE.SUPNONE",
            json!({"name": "SUPNONE", "subjects": ["supnone"]}),
        )
        .await?;
        expect_error(&reply, 404, 10059, "stream not found")
    })
}

fn js_stream_info_state_counts_messages_bytes_subjects_and_deletes(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "SIS", "subjects": ["sis.*"]})).await?;
        for i in 0..5 {
            let subject = if i % 2 == 0 { "sis.a" } else { "sis.b" };
            publish(&c, subject, &[], &format!("m{i}")).await?;
        }
        let ack = publish(&c, "sis.c", &[("Foo", "bar")], "hdr").await?;
        ensure!(ack == json!({"stream": "SIS", "seq": 6}), "{ack}");
        let info = api_ok(&c, "STREAM.INFO.SIS", Value::Null).await?;
        expect_type(&info, "stream_info_response")?;
        // File-store accounting of nats-server: 30 + subject + headers (+4 with headers)
        // + payload per message: 5 × (30 + 5 + 2) + (30 + 5 + 22 + 4 + 3) = 249.
        let expected = json!({"messages": 6, "bytes": 249, "first_seq": 1, "last_seq": 6,
            "num_subjects": 3, "consumer_count": 0});
        ensure!(
            untimed(&info["state"]) == expected,
            "state {}",
            info["state"]
        );
        api_ok(&c, "STREAM.MSG.DELETE.SIS", json!({"seq": 2})).await?;
        let info = api_ok(&c, "STREAM.INFO.SIS", json!({"subjects_filter": ">"})).await?;
        let expected = json!({"messages": 5, "bytes": 212, "first_seq": 1, "last_seq": 6,
            "num_subjects": 3, "num_deleted": 1,
            "subjects": {"sis.a": 3, "sis.b": 1, "sis.c": 1}, "consumer_count": 0});
        ensure!(
            untimed(&info["state"]) == expected,
            "state {}",
            info["state"]
        );
        let info = api_ok(&c, "STREAM.INFO.SIS", json!({"subjects_filter": "sis.a"})).await?;
        ensure!(info["state"]["subjects"] == json!({"sis.a": 3}), "{info}");
        Ok(())
    })
}

fn js_stream_names_and_list_filter_by_subject(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "SNL1", "subjects": ["snl.one.*"]})).await?;
        create_stream(&c, json!({"name": "SNL2", "subjects": ["snl.two"]})).await?;
        let names = api(&c, "STREAM.NAMES", json!({"subject": "snl.one.x"})).await?;
        let expected = json!({"type": "io.nats.jetstream.api.v1.stream_names_response",
            "total": 1, "offset": 0, "limit": 1024, "streams": ["SNL1"]});
        ensure!(names == expected, "names {names}");
        let names = api(&c, "STREAM.NAMES", json!({"subject": "snl.>"})).await?;
        ensure!(names["streams"] == json!(["SNL1", "SNL2"]), "names {names}");
        let all = api(&c, "STREAM.NAMES", Value::Null).await?;
        let listed = all["streams"].as_array().context("streams")?;
        ensure!(
            listed.contains(&json!("SNL1")) && listed.contains(&json!("SNL2")),
            "all names {all}"
        );
        let list = api(&c, "STREAM.LIST", json!({"subject": "snl.two"})).await?;
        expect_type(&list, "stream_list_response")?;
        expect_fields(
            &list,
            &[
                ("/total", json!(1)),
                ("/offset", json!(0)),
                ("/limit", json!(256)),
            ],
        )?;
        let streams = list["streams"].as_array().context("streams in LIST")?;
        ensure!(streams.len() == 1, "{list}");
        ensure!(
            streams[0]["config"] == default_config("SNL2", &["snl.two"]),
            "{list}"
        );
        Ok(())
    })
}

fn js_stream_delete_then_every_stream_call_is_not_found(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "SDEL", "subjects": ["sdel"]})).await?;
        publish_n(&c, "sdel", "m", 1).await?;
        let reply = api(&c, "STREAM.DELETE.SDEL", Value::Null).await?;
        let expected =
            json!({"type": "io.nats.jetstream.api.v1.stream_delete_response", "success": true});
        ensure!(reply == expected, "{reply}");
        for what in [
            "STREAM.DELETE.SDEL",
            "STREAM.INFO.SDEL",
            "STREAM.PURGE.SDEL",
        ] {
            let reply = api(&c, what, Value::Null).await?;
            expect_error(&reply, 404, 10059, "stream not found").context(what)?;
        }
        let reply = api(&c, "STREAM.MSG.GET.SDEL", json!({"seq": 1})).await?;
        expect_error(&reply, 404, 10059, "stream not found")?;
        // With the stream gone its subject has no responder.
        let inbox = Inbox::new(&c).await?;
        c.publish_with_reply("sdel", inbox.subject.clone(), "x".into())
            .await?;
        let mut inbox = inbox;
        let msg = inbox.next(WAIT, "the no-responders status").await?;
        expect_status(&msg, "NATS/1.0 503", &[])
    })
}

fn js_delete_and_info_take_no_request_but_an_empty_object_is_none(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "SEMPTY", "subjects": ["sempty"]})).await?;
        create_consumer(&c, "SEMPTY", json!({"durable_name": "D"})).await?;
        // A body with members is refused before the names are even looked up.
        for what in [
            "CONSUMER.INFO.SEMPTY.D",
            "CONSUMER.DELETE.SEMPTY.D",
            "STREAM.DELETE.SEMPTY",
            "STREAM.DELETE.NOPE",
        ] {
            let reply = api(&c, what, json!({"x": 1})).await?;
            expect_error(&reply, 400, 10038, "expected an empty request payload").context(what)?;
        }
        // `{}` counts as no request, as clients send it.
        let info = api(&c, "CONSUMER.INFO.SEMPTY.D", json!({})).await?;
        ensure!(info["name"] == "D", "{info}");
        api_ok(&c, "CONSUMER.DELETE.SEMPTY.D", json!({})).await?;
        api_ok(&c, "STREAM.DELETE.SEMPTY", json!({})).await?;
        Ok(())
    })
}
