//! Limits on consumers: the server's `jetstream { limits }` and a stream's `consumer_limits`,
//! each a default and a ceiling.

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        js_server_limits_cap_and_default_max_batch_and_max_ack_pending,
        js_stream_consumer_limits_cap_consumers_and_updates_that_break_them,
    ]
}

/// A JetStream server with a store of its own and these consumer limits.
fn limited_server(t: &Target, store: &std::path::Path) -> anyhow::Result<ServerProcess> {
    let config = format!(
        "jetstream {{\n  store_dir: \"{}\"\n  limits {{\n    max_request_batch: 10\n    \
         max_ack_pending: 20\n  }}\n}}\n",
        store.display()
    );
    t.start_with_config(&config, &[])
}

async fn create_on(c: &async_nats::Client, stream: &str, config: Value) -> anyhow::Result<Value> {
    let name = config["durable_name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let body = json!({"stream_name": stream, "config": config});
    api(c, &format!("CONSUMER.CREATE.{stream}.{name}"), body).await
}

fn js_server_limits_cap_and_default_max_batch_and_max_ack_pending(
    t: &Target,
) -> anyhow::Result<()> {
    let store = tempfile::Builder::new().prefix("js-limits-").tempdir()?;
    let server = limited_server(t, store.path())?;
    let url = server.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "SLM", "subjects": ["slm"]})).await?;
        publish_n(&c, "slm", "m", 1).await?;
        // A pull consumer that sets neither gets the limits as its own.
        let reply = create_on(
            &c,
            "SLM",
            json!({"durable_name": "P", "ack_policy": "explicit"}),
        )
        .await?;
        expect_fields(
            &reply,
            &[
                ("/config/max_batch", json!(10)),
                ("/config/max_ack_pending", json!(20)),
            ],
        )?;
        // A push consumer has no max_batch.
        let push = json!({"durable_name": "Q", "ack_policy": "explicit",
            "deliver_subject": "slmx.q"});
        let reply = create_on(&c, "SLM", push).await?;
        ensure!(reply["config"].get("max_batch").is_none(), "{reply}");
        let refused = [
            (
                json!({"max_batch": 11}),
                10125,
                "request batch exceeds server limit of 10",
            ),
            (
                json!({"max_ack_pending": 21}),
                10121,
                "ack pending exceeds system limit of 20",
            ),
        ];
        for (extra, err_code, what) in refused {
            let mut config = json!({"durable_name": "R", "ack_policy": "explicit"});
            config
                .as_object_mut()
                .context("config")?
                .extend(extra.as_object().cloned().context("extra")?);
            let reply = create_on(&c, "SLM", config).await?;
            expect_error(&reply, 400, err_code, &format!("consumer max {what}"))?;
        }
        // A larger pull request is refused by the consumer's own max_batch.
        let mut inbox = pull(&c, "SLM", "P", json!({"batch": 11})).await?;
        let msg = inbox.next(WAIT, "the refusal").await?;
        expect_status(&msg, "NATS/1.0 409 Exceeded MaxRequestBatch of 10", &[])?;
        let mut inbox = pull(&c, "SLM", "P", json!({"batch": 10, "no_wait": true})).await?;
        let msg = inbox.next(WAIT, "a message").await?;
        ensure!(msg.payload == "m0", "{}", describe(&msg));
        Ok(())
    })
}

fn js_stream_consumer_limits_cap_consumers_and_updates_that_break_them(
    t: &Target,
) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        let stream = json!({"name": "SCL", "subjects": ["scl"]});
        create_stream(&c, stream.clone()).await?;
        create_consumer(
            &c,
            "SCL",
            json!({"durable_name": "D", "ack_policy": "explicit"}),
        )
        .await?;
        // D has the default max_ack_pending of 1000: new limits below it are refused.
        let mut limited = stream.clone();
        limited["consumer_limits"] = json!({"max_ack_pending": 10});
        let reply = api(&c, "STREAM.UPDATE.SCL", limited.clone()).await?;
        expect_type(&reply, "stream_update_response")?;
        expect_error(&reply, 500, 10069, "change to limits violates consumers: D")?;
        api_ok(&c, "CONSUMER.DELETE.SCL.D", Value::Null).await?;
        let reply = api_ok(&c, "STREAM.UPDATE.SCL", limited).await?;
        ensure!(
            reply["config"]["consumer_limits"] == json!({"max_ack_pending": 10}),
            "{reply}"
        );
        // Now the stream's limit is the default and the ceiling.
        let reply = create_on(
            &c,
            "SCL",
            json!({"durable_name": "E", "ack_policy": "explicit"}),
        )
        .await?;
        ensure!(reply["config"]["max_ack_pending"] == 10, "{reply}");
        let reply = create_on(
            &c,
            "SCL",
            json!({"durable_name": "F", "ack_policy": "explicit", "max_ack_pending": 11}),
        )
        .await?;
        expect_error(
            &reply,
            400,
            10121,
            "consumer max ack pending exceeds system limit of 10",
        )
    })
}
