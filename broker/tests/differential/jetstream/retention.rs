//! Retention and stream-level permissions: interest and workqueue retention, deny_delete,
//! deny_purge, and memory storage accounting.

use anyhow::ensure;
use serde_json::{json, Value};

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_deny_delete_and_deny_purge_refuse_with_their_errors,
        js_memory_storage_counts_bytes_without_the_file_overhead,
        js_interest_retention_keeps_messages_until_every_consumer_acks,
        js_workqueue_removes_acked_messages_and_rejects_overlapping_consumers,
    ]
}

fn js_deny_delete_and_deny_purge_refuse_with_their_errors(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(
            &c,
            json!({"name": "LDD", "subjects": ["ldd"], "deny_delete": true, "deny_purge": true}),
        )
        .await?;
        publish_n(&c, "ldd", "m", 2).await?;
        let reply = api(&c, "STREAM.MSG.DELETE.LDD", json!({"seq": 1})).await?;
        expect_error(&reply, 500, 10057, "message delete not permitted")?;
        let reply = api(&c, "STREAM.PURGE.LDD", Value::Null).await?;
        expect_error(&reply, 500, 10110, "stream purge not permitted")?;
        // The purge error still carries `purged: 0`.
        ensure!(reply["purged"] == 0, "{reply}");
        ensure!(
            stream_state(&c, "LDD").await?["messages"] == 2,
            "messages gone"
        );
        // The stream itself can still be deleted.
        api_ok(&c, "STREAM.DELETE.LDD", Value::Null).await?;
        Ok(())
    })
}

fn js_memory_storage_counts_bytes_without_the_file_overhead(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(
            &c,
            json!({"name": "LMEM", "subjects": ["lmem"], "storage": "memory"}),
        )
        .await?;
        publish(&c, "lmem", &[], "abc").await?;
        publish(&c, "lmem", &[("K", "v")], "abc").await?;
        // Memory-store accounting: 16 + subject + headers + payload, so 16+4+3 and
        // 16+4+18+3 ("NATS/1.0\r\nK: v\r\n\r\n" is 18 bytes).
        let state = stream_state(&c, "LMEM").await?;
        expect_fields(&state, &[("/messages", json!(2)), ("/bytes", json!(64))])
    })
}

fn js_interest_retention_keeps_messages_until_every_consumer_acks(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(
            &c,
            json!({"name": "LIN", "subjects": ["lin"], "retention": "interest"}),
        )
        .await?;
        // With no consumer there is no interest: the message is acked but not kept.
        let ack = publish(&c, "lin", &[], "nobody").await?;
        ensure!(ack == json!({"stream": "LIN", "seq": 1}), "{ack}");
        ensure!(
            stream_state(&c, "LIN").await?["messages"] == 0,
            "kept without interest"
        );
        for name in ["I1", "I2"] {
            create_consumer(
                &c,
                "LIN",
                json!({"durable_name": name, "ack_policy": "explicit"}),
            )
            .await?;
        }
        publish_n(&c, "lin", "m", 2).await?;
        ensure!(stream_state(&c, "LIN").await?["messages"] == 2, "not kept");
        let mut one = pull(&c, "LIN", "I1", json!({"batch": 2})).await?;
        for _ in 0..2 {
            let msg = one.next(WAIT, "a message for I1").await?;
            ack_sync(&c, &msg, "+ACK").await?;
        }
        ensure!(
            stream_state(&c, "LIN").await?["messages"] == 2,
            "removed before I2 acked"
        );
        let mut two = pull(&c, "LIN", "I2", json!({"batch": 1})).await?;
        let msg = two.next(WAIT, "a message for I2").await?;
        ack_sync(&c, &msg, "+ACK").await?;
        let state = stream_state(&c, "LIN").await?;
        expect_fields(&state, &[("/messages", json!(1)), ("/first_seq", json!(3))])
    })
}

fn js_workqueue_removes_acked_messages_and_rejects_overlapping_consumers(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(
            &c,
            json!({"name": "LWQ", "subjects": ["lwq.*"], "retention": "workqueue"}),
        )
        .await?;
        create_consumer(
            &c,
            "LWQ",
            json!({"durable_name": "WA", "ack_policy": "explicit", "filter_subject": "lwq.a"}),
        )
        .await?;
        let body = |name: &str, config: Value| {
            let mut config = config;
            config["durable_name"] = json!(name);
            json!({"stream_name": "LWQ", "config": config})
        };
        let reply = api(
            &c,
            "CONSUMER.CREATE.LWQ.WB",
            body(
                "WB",
                json!({"ack_policy": "explicit", "filter_subject": "lwq.a"}),
            ),
        )
        .await?;
        expect_error(
            &reply,
            400,
            10100,
            "filtered consumer not unique on workqueue stream",
        )?;
        let reply = api(
            &c,
            "CONSUMER.CREATE.LWQ.WC",
            body(
                "WC",
                json!({"ack_policy": "explicit", "filter_subject": "lwq.*"}),
            ),
        )
        .await?;
        expect_error(
            &reply,
            400,
            10100,
            "filtered consumer not unique on workqueue stream",
        )?;
        let reply = api(
            &c,
            "CONSUMER.CREATE.LWQ.WD",
            body("WD", json!({"ack_policy": "explicit"})),
        )
        .await?;
        expect_error(
            &reply,
            400,
            10099,
            "multiple non-filtered consumers not allowed on workqueue stream",
        )?;
        // A pull consumer on a workqueue needs acks.
        let reply = api(
            &c,
            "CONSUMER.CREATE.LWQ.WE",
            body(
                "WE",
                json!({"ack_policy": "none", "filter_subject": "lwq.b"}),
            ),
        )
        .await?;
        expect_error(
            &reply,
            400,
            10084,
            "consumer in pull mode requires ack policy",
        )?;
        create_consumer(
            &c,
            "LWQ",
            json!({"durable_name": "WB2", "ack_policy": "explicit", "filter_subject": "lwq.b"}),
        )
        .await?;

        publish_n(&c, "lwq.a", "a", 3).await?;
        publish_n(&c, "lwq.b", "b", 1).await?;
        let mut inbox = pull(&c, "LWQ", "WA", json!({"batch": 3})).await?;
        let first = inbox.next(WAIT, "lwq.a 1").await?;
        let second = inbox.next(WAIT, "lwq.a 2").await?;
        ack_sync(&c, &first, "+ACK").await?;
        let state = stream_state(&c, "LWQ").await?;
        expect_fields(&state, &[("/messages", json!(3)), ("/first_seq", json!(2))])?;
        ack_sync(&c, &second, "+ACK").await?;
        ensure!(
            stream_state(&c, "LWQ").await?["messages"] == 2,
            "second ack kept the message"
        );
        Ok(())
    })
}
