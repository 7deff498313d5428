//! Consumer management: CONSUMER.CREATE (both subject forms), DURABLE.CREATE, INFO, DELETE,
//! NAMES, LIST, their errors, and ephemeral consumers' inactive_threshold.

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_durable_consumer_create_returns_info_with_every_default,
        js_consumer_create_subject_may_carry_the_filter_which_must_match,
        js_consumer_create_errors_carry_nats_server_codes,
        js_consumer_info_names_list_and_delete,
        js_overlapping_filter_subjects_are_rejected,
        js_filters_need_not_meet_the_stream_subjects,
        js_consumer_info_reports_the_last_delivery_and_ack,
        js_create_reply_shows_the_consumer_before_its_first_delivery,
    ]
}

/// The config nats-server 2.10 returns for a pull durable `{"durable_name", "ack_policy":
/// "explicit"}` created through `CONSUMER.CREATE.<stream>.<name>`.
fn default_pull_config(name: &str) -> Value {
    json!({
        "durable_name": name, "name": name, "deliver_policy": "all", "ack_policy": "explicit",
        "ack_wait": 30_000_000_000u64, "max_deliver": -1, "replay_policy": "instant",
        "max_waiting": 512, "max_ack_pending": 1000, "num_replicas": 0
    })
}

fn js_durable_consumer_create_returns_info_with_every_default(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "CDF", "subjects": ["cdf.*"]})).await?;
        publish_n(&c, "cdf.a", "m", 4).await?;
        let reply = create_consumer(
            &c,
            "CDF",
            json!({"durable_name": "D1", "ack_policy": "explicit"}),
        )
        .await?;
        expect_type(&reply, "consumer_create_response")?;
        expect_fields(
            &reply,
            &[
                ("/stream_name", json!("CDF")),
                ("/name", json!("D1")),
                ("/config", default_pull_config("D1")),
            ],
        )?;
        let zero = json!({"consumer_seq": 0, "stream_seq": 0});
        let expected = json!({"delivered": zero, "ack_floor": zero, "num_ack_pending": 0,
            "num_redelivered": 0, "num_waiting": 0, "num_pending": 4});
        ensure!(counters(&reply) == expected, "{reply}");
        ensure!(reply["created"].is_string(), "{reply}");
        // A single server names no cluster in consumer info (stream info does).
        ensure!(reply.get("cluster").is_none(), "{reply}");
        ensure!(
            stream_state(&c, "CDF").await?["consumer_count"] == 1,
            "consumer_count"
        );
        Ok(())
    })
}

fn js_consumer_create_subject_may_carry_the_filter_which_must_match(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "CFS", "subjects": ["cfs.*"]})).await?;
        publish_n(&c, "cfs.a", "a", 2).await?;
        publish_n(&c, "cfs.b", "b", 3).await?;
        let body = |filter: &str| json!({"stream_name": "CFS", "config": {"durable_name": "F1", "ack_policy": "explicit", "filter_subject": filter}});
        // $JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>
        let reply = api(&c, "CONSUMER.CREATE.CFS.F1.cfs.b", body("cfs.b")).await?;
        ensure!(reply.get("error").is_none(), "{reply}");
        expect_fields(
            &reply,
            &[
                ("/config/filter_subject", json!("cfs.b")),
                ("/num_pending", json!(3)),
            ],
        )?;
        let reply = api(
            &c,
            "CONSUMER.CREATE.CFS.F2.cfs.b",
            json!({"stream_name": "CFS",
            "config": {"durable_name": "F2", "ack_policy": "explicit", "filter_subject": "cfs.a"}}),
        )
        .await?;
        expect_error(
            &reply,
            400,
            10131,
            "Consumer create request did not match filtered subject from create subject",
        )?;
        // A filter in the subject with filter_subjects in the body is refused too.
        let reply = api(&c, "CONSUMER.CREATE.CFS.F3.cfs.b", json!({"stream_name": "CFS",
            "config": {"durable_name": "F3", "ack_policy": "explicit", "filter_subjects": ["cfs.a", "cfs.b"]}})).await?;
        expect_error(
            &reply,
            400,
            10137,
            "consumer with multiple subject filters cannot use subject based API",
        )?;
        // The name in the subject wins over a different `name` in the body.
        let reply = api(
            &c,
            "CONSUMER.CREATE.CFS.F4",
            json!({"stream_name": "CFS",
            "config": {"name": "OTHER", "ack_policy": "explicit"}}),
        )
        .await?;
        ensure!(
            reply["name"] == "F4" && reply["config"]["name"] == "F4",
            "{reply}"
        );
        Ok(())
    })
}

fn js_consumer_create_errors_carry_nats_server_codes(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "CER", "subjects": ["cer"]})).await?;
        let cfg = |name: &str| json!({"durable_name": name, "ack_policy": "explicit"});
        let cases: Vec<(&str, Value, u64, u64, &str)> = vec![
            (
                "CONSUMER.CREATE.CERNONE.D",
                json!({"stream_name": "CERNONE", "config": cfg("D")}),
                404,
                10059,
                "stream not found",
            ),
            (
                "CONSUMER.CREATE.CER.D",
                json!({"stream_name": "OTHER", "config": cfg("D")}),
                400,
                10056,
                "stream name in subject does not match request",
            ),
            (
                "CONSUMER.CREATE.CER.D",
                json!({"stream_name": "CER", "config": cfg("E")}),
                400,
                10017,
                "consumer name in subject does not match durable name in request",
            ),
            (
                "CONSUMER.DURABLE.CREATE.CER.D",
                json!({"stream_name": "CER", "config": cfg("E")}),
                400,
                10017,
                "consumer name in subject does not match durable name in request",
            ),
            (
                "CONSUMER.CREATE.CER.D",
                json!({"stream_name": "CER", "config": {"durable_name": "D", "ack_policy": "explicit", "num_replicas": 3}}),
                500,
                10074,
                "replicas > 1 not supported in non-clustered mode",
            ),
            (
                "CONSUMER.CREATE.CER.D",
                Value::String("{bad".into()),
                400,
                10025,
                "invalid JSON",
            ),
        ];
        for (what, body, code, err_code, description) in cases {
            let reply = api(&c, what, body.clone()).await?;
            expect_type(&reply, "consumer_create_response")?;
            expect_error(&reply, code, err_code, description)
                .with_context(|| format!("{what} {body}"))?;
        }
        let names = api(&c, "CONSUMER.NAMES.CER", Value::Null).await?;
        ensure!(names["consumers"] == json!([]), "{names}");
        Ok(())
    })
}

fn js_consumer_info_names_list_and_delete(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "CIL", "subjects": ["cil"]})).await?;
        for name in ["B", "A", "C"] {
            create_consumer(
                &c,
                "CIL",
                json!({"durable_name": name, "ack_policy": "explicit"}),
            )
            .await?;
        }
        let info = api(&c, "CONSUMER.INFO.CIL.A", Value::Null).await?;
        expect_type(&info, "consumer_info_response")?;
        expect_fields(
            &info,
            &[
                ("/stream_name", json!("CIL")),
                ("/name", json!("A")),
                ("/config", default_pull_config("A")),
            ],
        )?;
        let names = api(&c, "CONSUMER.NAMES.CIL", Value::Null).await?;
        // Names come back sorted.
        let expected = json!({"type": "io.nats.jetstream.api.v1.consumer_names_response",
            "total": 3, "offset": 0, "limit": 1024, "consumers": ["A", "B", "C"]});
        ensure!(names == expected, "{names}");
        let list = api(&c, "CONSUMER.LIST.CIL", Value::Null).await?;
        expect_type(&list, "consumer_list_response")?;
        expect_fields(
            &list,
            &[
                ("/total", json!(3)),
                ("/offset", json!(0)),
                ("/limit", json!(256)),
            ],
        )?;
        let listed: Vec<&Value> = list["consumers"]
            .as_array()
            .context("consumers")?
            .iter()
            .map(|c| &c["name"])
            .collect();
        ensure!(listed == [&json!("A"), &json!("B"), &json!("C")], "{list}");
        let reply = api(&c, "CONSUMER.DELETE.CIL.B", Value::Null).await?;
        let expected =
            json!({"type": "io.nats.jetstream.api.v1.consumer_delete_response", "success": true});
        ensure!(reply == expected, "{reply}");
        for what in ["CONSUMER.DELETE.CIL.B", "CONSUMER.INFO.CIL.B"] {
            let reply = api(&c, what, Value::Null).await?;
            expect_error(&reply, 404, 10014, "consumer not found").context(what)?;
        }
        let reply = api(&c, "CONSUMER.INFO.CILNONE.A", Value::Null).await?;
        expect_error(&reply, 404, 10059, "stream not found")?;
        let names = api(&c, "CONSUMER.NAMES.CIL", Value::Null).await?;
        ensure!(names["consumers"] == json!(["A", "C"]), "{names}");
        ensure!(
            stream_state(&c, "CIL").await?["consumer_count"] == 2,
            "consumer_count"
        );
        Ok(())
    })
}

fn js_overlapping_filter_subjects_are_rejected(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "COF", "subjects": ["cof.*"]})).await?;
        let reply = api(&c, "CONSUMER.CREATE.COF.O1", json!({"stream_name": "COF",
            "config": {"name": "O1", "ack_policy": "explicit", "filter_subjects": ["cof.a", "cof.*"]}})).await?;
        expect_error(
            &reply,
            400,
            10138,
            "consumer subject filters cannot overlap",
        )?;
        let reply = create_consumer(
            &c,
            "COF",
            json!({"name": "O2", "ack_policy": "explicit",
            "filter_subjects": ["cof.a", "cof.b"]}),
        )
        .await?;
        ensure!(
            reply["config"]["filter_subjects"] == json!(["cof.a", "cof.b"]),
            "{reply}"
        );
        Ok(())
    })
}

fn js_filters_need_not_meet_the_stream_subjects(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "CFN", "subjects": ["cfn.events"]})).await?;
        // nats-server 2.10 takes filters that capture nothing of the stream, and changes them.
        let filters = |list: Value| json!({"name": "F", "filter_subjects": list});
        create_consumer(&c, "CFN", filters(json!(["one", "two"]))).await?;
        let reply = create_consumer(&c, "CFN", filters(json!(["one", "three"]))).await?;
        ensure!(
            reply["config"]["filter_subjects"] == json!(["one", "three"]),
            "{reply}"
        );
        let reply =
            create_consumer(&c, "CFN", json!({"name": "G", "filter_subject": "cfn.x"})).await?;
        ensure!(reply["num_pending"] == 0, "{reply}");
        Ok(())
    })
}

fn js_consumer_info_reports_the_last_delivery_and_ack(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "CLA", "subjects": ["cla"]})).await?;
        publish_n(&c, "cla", "m", 2).await?;
        create_consumer(
            &c,
            "CLA",
            json!({"durable_name": "D", "ack_policy": "explicit"}),
        )
        .await?;
        let last_active = |info: &Value, of: &str| info[of].get("last_active").cloned();
        // Nothing happened yet: neither pair has `last_active`.
        let info = consumer_info(&c, "CLA", "D").await?;
        ensure!(last_active(&info, "delivered").is_none(), "{info}");
        ensure!(last_active(&info, "ack_floor").is_none(), "{info}");
        let mut inbox = pull(&c, "CLA", "D", json!({"batch": 1})).await?;
        let msg = inbox.next(WAIT, "a pulled message").await?;
        let info = consumer_info(&c, "CLA", "D").await?;
        let delivered = last_active(&info, "delivered").context("delivered.last_active")?;
        ensure!(delivered.is_string(), "{info}");
        ensure!(last_active(&info, "ack_floor").is_none(), "{info}");
        // A NAK is not ack activity; an ack is.
        ack_sync(&c, &msg, "-NAK").await?;
        let info = consumer_info(&c, "CLA", "D").await?;
        ensure!(last_active(&info, "ack_floor").is_none(), "{info}");
        let mut inbox = pull(&c, "CLA", "D", json!({"batch": 1})).await?;
        let msg = inbox.next(WAIT, "the redelivery").await?;
        ack_sync(&c, &msg, "+ACK").await?;
        let info = consumer_info(&c, "CLA", "D").await?;
        ensure!(
            last_active(&info, "ack_floor").is_some_and(|v| v.is_string()),
            "{info}"
        );
        Ok(())
    })
}

fn js_create_reply_shows_the_consumer_before_its_first_delivery(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "ICR", "subjects": ["icr"]})).await?;
        publish_n(&c, "icr", "m", 20).await?;
        // The subscriber is there before the consumer (as the legacy client subscribes), so
        // deliveries may overtake the reply; the reply still shows the consumer as created.
        let mut inbox = Inbox::on(&c, "icrx.deliver").await?;
        let reply = create_consumer(
            &c,
            "ICR",
            json!({"durable_name": "D", "deliver_subject": "icrx.deliver", "ack_policy": "none"}),
        )
        .await?;
        expect_fields(
            &reply,
            &[
                ("/num_pending", json!(20)),
                ("/delivered/consumer_seq", json!(0)),
                ("/ack_floor/stream_seq", json!(0)),
            ],
        )?;
        for i in 1..=20u64 {
            let msg = inbox.next(WAIT, "a delivery").await?;
            ensure!(AckReply::of(&msg)?.numbers().1 == i, "{}", describe(&msg));
        }
        Ok(())
    })
}
